"""Every real-world file of ../shared/corpus: no crash, dry-run writes nothing, a run with no
pass is byte-identical, apply is idempotent, and the result still loads in Docker Compose."""

from __future__ import annotations

import shutil
import subprocess
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


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("patch") is None, reason="git or patch(1) is not installed")
def test_the_dry_run_diff_applies_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The preview is a patch: the dry run's diff of every corpus stack, applied to a pristine
    copy with `git apply -p0` and with `patch -p0` in the folder the command ran in, gives what
    `--apply` writes, new files included."""
    preview = layout(tmp_path / "preview")
    monkeypatch.chdir(preview)
    assert main(["--dry-run", "--unsafe-fixes", "."]) == 1
    diff = capsys.readouterr().out
    assert "/../" not in "".join(line for line in diff.splitlines(keepends=True) if line.startswith(("--- ", "+++ ")))
    applied = layout(tmp_path / "applied")
    monkeypatch.chdir(applied)
    assert main(["--apply", "--unsafe-fixes", "."]) == 1
    want = snapshot(applied)
    assert want != snapshot(preview)
    for tool, args in (("git", ["git", "apply", "-p0"]), ("patch", ["patch", "-p0", "-s", "-f", "--no-backup-if-mismatch"])):
        by_hand = layout(tmp_path / tool)
        proc = subprocess.run(args, cwd=by_hand, input=diff.encode(), capture_output=True, timeout=120)
        assert proc.returncode == 0, (tool, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
        got = snapshot(by_hand)
        assert sorted(got) == sorted(want), tool
        assert [k for k in want if got[k] != want[k]] == [], tool
