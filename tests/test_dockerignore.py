"""dockerignore: a new file per build context, chosen by what it holds, never leaving out what
a Dockerfile copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix import buildctx
from e2i_fix._main import main

from conftest import fixture_case

ID = "dockerignore"
FIXTURES = Path(__file__).parent / "fixtures" / ID
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_fixture(tmp_path: Path, case: str) -> None:
    fixture_case(FIXTURES, case, ID, tmp_path)


def rules(path: Path) -> buildctx.IgnoreRules:
    return buildctx.IgnoreRules(path.read_text().splitlines())


def test_what_the_python_build_copies_stays() -> None:
    r = rules(FIXTURES / "python-readme" / "expected" / ".dockerignore")
    for kept in ("pyproject.toml", "README.md", "src/x/__init__.py", "docs/conf.py", ".env.example"):
        assert not r.excluded(kept), kept
    for gone in (".git/config", ".venv/bin/python", "src/x/__pycache__/a.pyc", "tests/test_x.py", ".env", "compose.yaml"):
        assert r.excluded(gone), gone


def test_copy_everything_keeps_tests_and_docs() -> None:
    r = rules(FIXTURES / "node-copy-all" / "expected" / "ui" / ".dockerignore")
    assert r.excluded("node_modules/x/index.js") and r.excluded("a/node_modules/b")
    assert not r.excluded("tests/a.test.js") and not r.excluded("src/main.tsx") and not r.excluded("package.json")


def test_diff_shows_a_new_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n")
    (tmp_path / "Dockerfile").write_text("FROM alpine\nCOPY . /src\n")
    capsys.readouterr()
    assert main(["--dry-run", "--select", ID, str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"--- /dev/null\n+++ {(tmp_path / '.dockerignore').as_posix()}\n@@ -0,0 +1," in out
    assert not (tmp_path / ".dockerignore").exists()


def test_vcs_versioning_keeps_git(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n")
    (tmp_path / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools", "setuptools-scm"]\n')
    (tmp_path / "Dockerfile").write_text("FROM python:3.12\nCOPY . /src\nRUN pip install /src\n")
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 1
    assert not rules(tmp_path / ".dockerignore").excluded(".git/HEAD")


def test_context_outside_the_project_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "Dockerfile").write_text("FROM alpine\nCOPY . /src\n")
    app = tmp_path / "app"
    app.mkdir()
    (app / "compose.yaml").write_text("services:\n  app:\n    build: ../elsewhere\n")
    capsys.readouterr()
    assert main(["--apply", "--select", ID, str(app)]) == 0
    cap = capsys.readouterr()
    assert "is outside the project" in cap.out + cap.err
    assert sorted(p.name for p in elsewhere.iterdir()) == ["Dockerfile"]


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["docs"], "docs/a/b.txt", True),
        (["/build"], "build/x", True),
        (["**/*.pyc"], "a/b/c.pyc", True),
        (["**/*.pyc"], "c.pyc", True),
        (["a/*/c"], "a/b/c", True),
        (["a/*/c"], "a/b/d/c", False),
        (["./x/../y"], "y", True),
    ],
)
def test_ignore_rules(patterns: list[str], path: str, excluded: bool) -> None:
    assert buildctx.IgnoreRules(patterns).excluded(path) is excluded
