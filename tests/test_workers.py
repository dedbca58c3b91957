"""Many stacks in several processes: the same output, in the same order, as one process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from e2i_fix import workers
from e2i_fix._main import main

from conftest import layout, need_corpus

PLAIN = "services:\n  web:\n    image: nginx:1.27\n"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.parametrize("mode", [["--dry-run"], ["--check"], ["--format", "json"], ["--dry-run", "--unsafe-fixes"]])
def test_the_corpus_prints_the_same_in_one_process_or_three(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            mode: list[str]) -> None:
    need_corpus()
    root = layout(tmp_path)
    one = _run(capsys, *mode, "--jobs", "1", str(root))
    three = _run(capsys, *mode, "--jobs", "3", str(root))
    assert one == three
    assert one[0] in (1, 2) and one[1]  # there is something to show, so the comparison means something


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_errors_and_fixes_keep_their_order_across_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(30):
        d = tmp_path / f"s{i:02d}"
        d.mkdir()
        (d / "compose.yaml").write_text("services: [\n" if i % 7 == 3 else PLAIN.replace("web", f"web{i}"))
    missing = str(tmp_path / "missing")
    one = _run(capsys, "--jobs", "1", str(tmp_path), missing)
    four = _run(capsys, "--jobs", "4", str(tmp_path), missing)
    assert one == four
    assert one[0] == 2
    errors = [line for line in one[2].splitlines() if "invalid YAML" in line or "no such file" in line]
    assert [line.split("/")[-2] for line in errors[:-1]] == ["s03", "s10", "s17", "s24"]
    assert errors[-1].startswith(missing)
    assert one[1].count("+++ ") == 26


def test_apply_and_small_runs_stay_in_one_process() -> None:
    assert workers.count(None, "apply", 1000) == 1
    assert workers.count(8, "apply", 1000) == 1
    assert workers.count(None, "dry-run", workers.MIN_STACKS - 1) == 1
    assert workers.count(4, "check", 2) == 2  # never more workers than stacks
    assert workers.count(1, "dry-run", 1000) == 1


def test_shares_hold_every_item_once_and_balance_the_cost() -> None:
    costs = [50, 1, 1, 1, 30, 20, 5, 5, 40, 2]
    shares = workers.share(costs, 3)
    assert sorted(i for s in shares for i in s) == list(range(len(costs)))
    loads = [sum(costs[i] for i in s) for s in shares]
    assert max(loads) - min(loads) <= max(costs) // 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_worker_that_dies_has_its_share_done_by_the_parent() -> None:
    parent = os.getpid()

    def work(i: int) -> list[int]:
        if os.getpid() != parent and i == 5:
            os._exit(3)  # a worker killed half-way
        return [i, i * i]

    got = workers.run(work, [[0, 1, 2], [3, 4, 5], [6, 7]])
    assert got == {i: [i, i * i] for i in range(8)}


def test_a_platform_that_refuses_to_fork_gets_everything_done_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> int:
        raise OSError("fork: Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", refuse)
    assert workers.run(lambda i: i + 100, [[0, 2], [1], [3]]) == {0: 100, 1: 101, 2: 102, 3: 103}


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_jobs_must_be_a_positive_number(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--jobs", value, "."]) == 2
    assert "--jobs" in capsys.readouterr().err
