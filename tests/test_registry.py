"""The pass registry: its table is the modules' own, and a run imports only the passes it runs."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from e2i_fix.passes import PASSES, registry

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("pass_id", "module", "needs"), PASSES, ids=[p[0] for p in PASSES])
def test_the_table_is_the_modules_own(pass_id: str, module: str, needs: str | None) -> None:
    mod = importlib.import_module(f"e2i_fix.passes.{module}")
    assert mod.ID == pass_id
    assert getattr(mod, "NEEDS", None) == needs
    p = registry()[pass_id]
    assert (p.SUMMARY, p.SAFETY, p.DEFAULTS, p.__doc__) == (mod.SUMMARY, mod.SAFETY, mod.DEFAULTS, mod.__doc__)
    assert getattr(p, "READS", None) == getattr(mod, "READS", None)
    assert getattr(p, "ROLES", None) == getattr(mod, "ROLES", None)


def test_every_pass_module_is_in_the_table() -> None:
    modules = {p.stem for p in (REPO / "e2i_fix" / "passes").glob("*.py") if not p.stem.startswith("_")}
    assert modules == {m for _, m, _ in PASSES}


_RUN = """\
import contextlib, io, sys
from e2i_fix._main import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["--dry-run", sys.argv[1]])
print(code, " ".join(sorted(m for m in sys.modules if m.startswith(("e2i_fix.passes.", "dockerfile")))))
"""


def _imported(folder: Path) -> tuple[int, set[str]]:
    got = subprocess.run([sys.executable, "-c", _RUN, str(folder)], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout.split()
    return int(got[0]), set(got[1:])


def test_a_stack_that_builds_nothing_imports_no_dockerfile_pass(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  db:\n    image: postgres:16\n")
    code, modules = _imported(tmp_path)
    assert code == 1
    dockerfile_passes = {f"e2i_fix.passes.{m}" for _, m, needs in PASSES if needs == "build"}
    assert "e2i_fix.passes.deploy_limits" in modules
    assert not modules & dockerfile_passes
    assert "dockerfile" not in modules  # BuildKit's parser


def test_a_stack_that_builds_runs_them(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n")
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\nRUN pip install flask\nCMD [\"flask\", \"run\"]\n")
    _, modules = _imported(tmp_path)
    assert {f"e2i_fix.passes.{m}" for _, m, needs in PASSES if needs == "build"} <= modules
    assert "dockerfile" in modules
