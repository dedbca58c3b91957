"""Every real-world file of ../shared/corpus: no crash, dry-run writes nothing, a run with no
pass is byte-identical, apply is idempotent, and the result still loads in Docker Compose."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix._main import main

from conftest import SUMMARY, compose_config, corpus_files, laid_out, layout, need_corpus, snapshot

COMPOSE = corpus_files("compose")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_corpus()
    return layout(tmp_path_factory.mktemp("corpus"))


def test_the_corpus_is_here() -> None:
    need_corpus()
    assert len(COMPOSE) >= 50


def test_no_pass_leaves_every_file_byte_identical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = layout(tmp_path)
    before = snapshot(root)
    assert main(["--apply", "--ignore", "all", str(root)]) == 0
    assert snapshot(root) == before
    assert capsys.readouterr().err == ""


def test_dry_run_with_every_pass_writes_nothing_and_never_crashes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = layout(tmp_path)
    before = snapshot(root)
    code = main(["--dry-run", "--unsafe-fixes", str(root)])
    out, err = capsys.readouterr()
    assert snapshot(root) == before
    assert "Traceback" not in err and "internal error" not in err, err
    # Every corpus file is valid: no errors, only findings a pass leaves to the user; some fixes.
    errors = [line for line in err.splitlines() if not line.endswith("(no fix applied)") and not SUMMARY.match(line)]
    assert errors == [] and code == 1, err


@pytest.mark.parametrize("c", COMPOSE, ids=[c.id for c in COMPOSE])
def test_each_file_alone(tmp_path: Path, c: object, capsys: pytest.CaptureFixture[str]) -> None:
    """Apply every pass to one file named alone; it is fixed once, then nothing is left to do."""
    root = layout(tmp_path, c.repo)  # type: ignore[attr-defined]
    f = laid_out(root, c)  # type: ignore[arg-type]
    code = main(["--apply", "--unsafe-fixes", str(f)])
    err = capsys.readouterr().err
    assert code in (0, 1) and "Traceback" not in err, err
    fixed = f.read_bytes()
    assert main(["--apply", "--unsafe-fixes", str(f)]) == 0, "not idempotent"
    assert f.read_bytes() == fixed
