"""The benchmark's inputs are what it claims: the synthetic stacks are valid Compose with the
services asked for, and its one e2i-fix process over the corpus covers every compose file once.
Nothing here is timed: a benchmark is not a test."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from e2i_fix._main import main
from e2i_fix.engine import Workspace
from e2i_fix.project import discover

from conftest import ROOT, compose_config, corpus_files, layout


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


bench = _bench()


@pytest.mark.parametrize("n", [1, 14, 100])
def test_synthetic_stack_is_valid_compose(tmp_path: Path, n: int) -> None:
    text = bench.synthetic_stack(n)
    services = yaml.safe_load(text)["services"]
    assert len(services) == n
    for name, svc in services.items():
        deps = svc.get("depends_on", [])
        assert set(deps) <= set(services), name  # only services that exist
    (tmp_path / "compose.yaml").write_text(text, encoding="utf-8")
    r = compose_config(tmp_path, ["compose.yaml"], "-q")
    assert r.returncode == 0, r.stderr


def test_synthetic_stack_is_work_for_the_tool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text(bench.synthetic_stack(10), encoding="utf-8")
    code = main(["--dry-run", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1 and out.startswith("---"), err  # fixes pending, shown as a diff
    assert "Traceback" not in err


def test_one_process_covers_every_corpus_compose_file(tmp_path: Path) -> None:
    root = layout(tmp_path)
    files = [f"{c.repo.replace('/', '__')}/{c.path}" for c in corpus_files("compose")]
    walked = []
    for s in discover([root]):
        if not isinstance(s, tuple):
            ws = Workspace(s)
            ws.load()
            # The files each stack reads: its own, and those they include or extend from.
            walked += [str(d.path.relative_to(root)) for d in ws.project([]).docs]
    assert len(walked) == len(set(walked)), "a file read by two stacks"
    named = [f for f in files if not bench.discovered(f)]
    assert set(walked) | set(named) == set(files)
