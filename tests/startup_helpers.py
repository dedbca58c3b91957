"""Helpers shared by the tests of the startup-order and privilege passes (depends-on-healthy,
no-force-root, healthcheck-probes): fixture stacks with per-case arguments, the real Compose CLI
as the judge of every variant."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from e2i_fix import project as proj
from e2i_fix._main import main

from conftest import compose_config, outside_the_repository, snapshot

FIXTURES = Path(__file__).parent / "fixtures"


def cases(pass_id: str) -> list[str]:
    return sorted(p.name for p in (FIXTURES / pass_id).iterdir() if p.is_dir())


def case_args(pass_id: str, case: str) -> list[str]:
    f = FIXTURES / pass_id / case / "args"
    return f.read_text().split() if f.is_file() else []


def run_fixture(tmp_path: Path, pass_id: str, case: str) -> Path:
    """Apply the pass to a copy of the case's input: the result is its `expected`, a second run
    changes nothing, and Compose accepts every variant of the result."""
    work = tmp_path / case
    shutil.copytree(FIXTURES / pass_id / case / "input", work)
    before = snapshot(work)
    expected = snapshot(FIXTURES / pass_id / case / "expected")
    args = ["--apply", "--select", pass_id, *case_args(pass_id, case)]
    assert main([*args, str(work)]) == (0 if expected == before else 1)
    assert snapshot(work) == expected
    assert main([*args, str(work)]) == 0, "not idempotent"
    assert snapshot(work) == expected
    for folder, files in stack_variants(work):
        proc = compose_config(folder, files, "-q")
        assert proc.returncode == 0, (folder, files, proc.stderr)
    return work


def stack_variants(folder: Path) -> list[tuple[Path, list[str]]]:
    """Each stack under `folder` (its own folder) with each list of files Compose runs it with
    (`Project.variants`: the base, the base with each override, a file that runs alone, the
    `.env` chain)."""
    from conftest import stack_variants as of_stack

    return [(s.folder, files) for s in proj.discover([folder]) if isinstance(s, proj.Stack) for files in of_stack(s)]


def variants(folder: Path) -> list[list[str]]:
    return [files for _, files in stack_variants(folder)]


def config(folder: Path, files: list[str]) -> dict[str, Any]:
    proc = compose_config(folder, files, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def findings(folder: Path, pass_id: str, *extra: str) -> list[str]:
    """What `--check` reports, one line each, with the folder shown as `<dir>`."""
    import contextlib
    import io

    out = io.StringIO()
    with outside_the_repository(folder) as work, contextlib.redirect_stdout(out):  # a production stack
        main(["--check", "--select", pass_id, *extra, str(work)])
        return [line.replace(str(work), "<dir>") for line in out.getvalue().splitlines()]
