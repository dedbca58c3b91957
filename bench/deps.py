#!/usr/bin/env python3
"""The dependency review's figures: a hand-written part against the library that could replace it.

    pip install -e '.[test]' jsonschema-rs && python bench/deps.py [--reps 15]

- JSON Schema: `e2i_fix.schema` against `jsonschema_rs` on the compose-spec schema: the cost of
  importing each and readying the validator (a fresh process each time, `python -c pass`
  subtracted), and the time to validate every compose document of the shared corpus once loaded
  (whole documents, and the pruned documents verification really checks).
- Worker pool: `e2i_fix.workers` (fork + pipes + marshal) against `concurrent.futures`'
  ProcessPoolExecutor (fork context): the import cost, and a dry-run over the corpus with
  `--jobs 2` through each.

Each figure is the median of `--reps` runs (min-max beside it); processes are measured in CPU
time (user + system), in-process validation in wall-clock time. Markdown on stdout.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
PY = sys.executable


def timed(fn: Callable[[], object], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_timed(cmd: list[str], reps: int, **kw: object) -> list[float]:
    """The CPU time (user + system) of a fresh process, `reps` times: the machine is shared, and
    CPU time moves far less than wall-clock time when others use it."""
    out = []
    for _ in range(reps):
        t = _children_cpu()
        subprocess.run(cmd, **kw)  # type: ignore[call-overload]
        out.append(_children_cpu() - t)
    return out


def process(code: str, reps: int) -> list[float]:
    return cpu_timed([PY, "-c", code], reps)


def fmt(ts: list[float], minus: float = 0.0) -> str:
    return f"{(statistics.median(ts) - minus) * 1000:.1f} ms ({(min(ts) - minus) * 1000:.1f}-{(max(ts) - minus) * 1000:.1f})"


def corpus_docs() -> list[object]:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import CORPUS as C, corpus_files  # noqa: PLC0415

    from e2i_fix import project, source

    docs = []
    for c in corpus_files("compose"):
        path = C / c.file
        try:
            docs.append(project.parse_compose(source.read(path)).value)
        except Exception:  # noqa: BLE001 - a file the tool refuses is not in the figures
            continue
    return docs


def verified_docs() -> list[object]:
    """What verification validates in a dry-run over the corpus: the pruned documents (only the
    keys a run changed), captured from the real run."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import layout

    from e2i_fix import _main, schema

    seen: list[object] = []
    real = schema.validate

    def capture(instance: object) -> list[schema.SchemaError]:
        seen.append(instance)
        return real(instance)

    schema.validate = capture  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = layout(Path(tmp))
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                _main.main(["--dry-run", "--jobs", "1", "--unsafe-fixes", str(root)])
    finally:
        schema.validate = real  # type: ignore[assignment]
    return seen


def schema_rows(reps: int) -> list[str]:
    import jsonschema_rs

    from e2i_fix import schema

    base = statistics.median(process("pass", reps))
    own_import = process("from e2i_fix import schema; schema.validate({'services': {}})", reps)
    rs_import = process(
        "import json, jsonschema_rs; from e2i_fix.schema import load_schema; "
        "jsonschema_rs.validator_for(load_schema()).is_valid({'services': {}})", reps)
    rs_bare = process("import jsonschema_rs", reps)
    docs = corpus_docs()
    validator = jsonschema_rs.validator_for(schema.load_schema())
    for d in docs:  # warm both: schema.py compiles subschemas on first use
        schema.validate(d)
        validator.is_valid(d)
    own = timed(lambda: [schema.validate(d) for d in docs], reps)
    rs = timed(lambda: [list(validator.iter_errors(d)) for d in docs], reps)
    agree = sum(1 for d in docs if (not schema.validate(d)) == validator.is_valid(d))
    checked = verified_docs()
    for d in checked:
        schema.validate(d)
    own_v = timed(lambda: [schema.validate(d) for d in checked], reps)
    rs_v = timed(lambda: [list(validator.iter_errors(d)) for d in checked], reps)
    return [
        f"JSON Schema, {len(docs)} corpus documents, {reps} runs each:",
        "",
        "| what | e2i_fix.schema | jsonschema-rs |",
        "| --- | --- | --- |",
        f"| import and ready the validator (CPU time of a process, minus `python -c pass`) | {fmt(own_import, base)} | {fmt(rs_import, base)} (the import alone: {fmt(rs_bare, base)}) |",
        f"| validate every document, loaded and warm | {fmt(own)} | {fmt(rs)} |",
        f"| validate what verification checks in a corpus dry-run ({len(checked)} pruned documents) | {fmt(own_v)} | {fmt(rs_v)} |",
        f"| verdicts that agree | {agree}/{len(docs)} | |",
        "",
    ]


POOL = r'''
import sys
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from e2i_fix import workers, _main

WORK = None

def run(work, shares):
    # The work (settings, pass modules) cannot be pickled: forked workers inherit it instead,
    # and only indexes and plain results cross the pipes.
    global WORK
    WORK = work
    out = {}
    here = shares[0] if shares else []
    with ProcessPoolExecutor(max_workers=max(1, len(shares) - 1), mp_context=multiprocessing.get_context("fork")) as ex:
        futs = [ex.submit(_share, s) for s in shares[1:]]
        out.update((i, work(i)) for i in here)
        for f in futs:
            out.update(f.result())
    return out

def _share(idx):
    return [(i, WORK(i)) for i in idx]

workers.run = run
sys.argv = ["e2i-fix", "--dry-run", "--jobs", "2", sys.argv[1]]
sys.exit(_main.main(sys.argv[1:]))
'''

OWN = r'''
import sys
from e2i_fix import _main
sys.exit(_main.main(["--dry-run", "--jobs", "2", sys.argv[1]]))
'''


def pool_rows(reps: int) -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import layout

    base = statistics.median(process("pass", reps))
    own_import = process("import os, marshal", reps)
    fut_import = process("from concurrent.futures import ProcessPoolExecutor; import concurrent.futures.process", reps)
    with tempfile.TemporaryDirectory() as tmp:
        root = layout(Path(tmp))

        def run(code: str) -> list[float]:
            return cpu_timed([PY, "-c", code, str(root)], 1, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        # Interleaved, so both see the same load on the machine. CPU time of the parent and its
        # workers together (children's usage counts once they are waited for).
        own: list[float] = []
        fut: list[float] = []
        for _ in range(reps):
            own += run(OWN)
            fut += run(POOL)
        same = (subprocess.run([PY, "-c", OWN, str(root)], capture_output=True).stdout
                == subprocess.run([PY, "-c", POOL, str(root)], capture_output=True).stdout)
    return [
        f"Worker pool, {reps} runs each:",
        "",
        "| what | e2i_fix.workers | concurrent.futures |",
        "| --- | --- | --- |",
        f"| import (CPU time of a process, minus `python -c pass`) | {fmt(own_import, base)} | {fmt(fut_import, base)} |",
        f"| corpus dry-run, `--jobs 2` (CPU time, all processes) | {fmt(own)} | {fmt(fut)} |",
        f"| same output | {same} | |",
        "",
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--only", choices=["schema", "pool"])
    args = ap.parse_args()
    rows = []
    if args.only in (None, "schema"):
        rows += schema_rows(args.reps)
    if args.only in (None, "pool"):
        rows += pool_rows(args.reps)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
