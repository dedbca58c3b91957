"""What the tests of the hardening passes share: running one pass, its fixture stacks, and
Compose's own model of a stack before and after."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from e2i_fix import project as proj
from e2i_fix._main import main

from conftest import compose_config, corpus_run, outside_the_repository, snapshot

FIXTURES = Path(__file__).parent / "fixtures"


def apply(pass_id: str, *args: str | Path) -> int:
    return main(["--apply", "--unsafe-fixes", "--select", pass_id, *map(str, args)])


def check(pass_id: str, folder: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What `--check` reports on `folder` as a production stack (a copy outside the repository),
    the copy named as `folder`."""
    capsys.readouterr()
    with outside_the_repository(folder) as work:
        main(["--check", "--unsafe-fixes", "--select", pass_id, str(work)])
        return capsys.readouterr().out.replace(str(work), str(folder)).splitlines()


def cases(pass_id: str) -> list[str]:
    return sorted(p.name for p in (FIXTURES / pass_id).iterdir() if p.is_dir())


def compose_files(folder: Path) -> list[str]:
    stacks = [s for s in proj.discover([folder]) if isinstance(s, proj.Stack)]
    assert len(stacks) == 1
    return [p.name for p in stacks[0].compose]


def config_json(folder: Path, files: list[str] | None = None) -> dict[str, Any]:
    proc = named_config(folder, files or compose_files(folder))
    assert proc.returncode == 0, proc.stderr
    return loads(proc.stdout, folder)


def loads(out: str, folder: Path) -> dict[str, Any]:
    """Compose's JSON with the folder's path (in build contexts, bind mounts) made neutral."""
    return json.loads(out.replace(str(folder.resolve()), "<folder>").replace(str(folder), "<folder>"))  # type: ignore[no-any-return]


def named_config(folder: Path, files: list[str]) -> subprocess.CompletedProcess[str]:
    """`docker compose config --format json` under one project name: the name comes from the
    folder otherwise, and two copies of a stack would differ in every volume and network."""
    old = os.environ.get("COMPOSE_PROJECT_NAME")
    os.environ["COMPOSE_PROJECT_NAME"] = "stack"
    try:
        return compose_config(folder, files, "--format", "json")
    finally:
        if old is None:
            del os.environ["COMPOSE_PROJECT_NAME"]
        else:
            os.environ["COMPOSE_PROJECT_NAME"] = old


def without(model: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    """Compose's model with the given service keys taken out of every service, and without the
    `x-` blocks (a template the services merge gets the key there)."""
    out = {k: v for k, v in model.items() if not k.startswith("x-")}
    out["services"] = {n: {k: v for k, v in s.items() if k not in keys} for n, s in model.get("services", {}).items()}
    return out


def passes_of(pass_id: str, case: str) -> str:
    """The passes a case runs: the pass, or those its `passes` file names (a case about what
    passes of one run decide together)."""
    named = FIXTURES / pass_id / case / "passes"
    return named.read_text().strip() if named.is_file() else pass_id


def run_fixture(pass_id: str, case: str, tmp_path: Path) -> None:
    """The case's input, fixed, is its expected output byte for byte (unchanged: a case the
    pass reports), and a second run changes nothing."""
    work = tmp_path / case
    shutil.copytree(FIXTURES / pass_id / case / "input", work)
    expected = snapshot(FIXTURES / pass_id / case / "expected")
    ids = passes_of(pass_id, case)
    unchanged = expected == snapshot(work)
    assert apply(ids, work) == (0 if unchanged else 1)
    assert snapshot(work) == expected
    assert apply(ids, work) == 0, "not idempotent"
    assert snapshot(work) == expected


def only_keys_changed(pass_id: str, case: str, keys: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Compose loads the fixture before and after, and the two mean the same but for `keys`."""
    before = config_json(FIXTURES / pass_id / case / "input")
    after = config_json(FIXTURES / pass_id / case / "expected")
    same = [{k: v for k, v in snapshot(FIXTURES / pass_id / case / side).items() if k.endswith((".yaml", ".yml"))}
            for side in ("input", "expected")]
    assert (before == after) if same[0] == same[1] else (before != after)
    assert without(before, keys) == without(after, keys)
    return before, after


def corpus(pass_id: str, tmp_path: Path, keys: set[str], judge: bool = False) -> list[str]:
    """The pass (or passes, comma-separated) over the corpus: something changes and a second
    run changes nothing. With `judge`, Compose also accepts every changed variant it accepted,
    and its model of each changes only at `keys`. Returns the changed files."""
    run, extra = corpus_run(tmp_path, lambda *a: apply(pass_id, *a))
    changed = set(run.changed)
    assert changed
    for folder, files in run.variants if judge else ():
        rel = folder.relative_to(run.root)
        if not any(str(rel / f) in changed for f in files):
            continue
        old = run.before_root / rel
        # Compose accepts what it accepted (with interpolation, as `up` reads it) and means the same.
        a = named_config(old, files)
        b = named_config(folder, files)
        assert a.returncode == b.returncode, (rel, files, b.stderr)
        if a.returncode == 0:
            assert without(loads(a.stdout, old), keys) == without(loads(b.stdout, folder), keys), (rel, files)
    assert apply(pass_id, run.root, *extra) == 0
    assert snapshot(run.root) == run.after
    return sorted(changed)


def bad_option_is_an_error(pass_id: str, tmp_path: Path, toml: str, capsys: pytest.CaptureFixture[str]) -> str:
    """A bad option value: exit 2 in --check and --apply, nothing written; returns stderr."""
    text = "services:\n  a:\n    image: redis\n    ports: ['6379:6379']\n"
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    (tmp_path / ".e2i-fix.toml").write_text(f"[{pass_id}]\n{toml}\n")
    capsys.readouterr()
    assert main(["--check", "--unsafe-fixes", "--select", pass_id, str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert apply(pass_id, tmp_path) == 2
    assert f.read_text() == text
    return err
