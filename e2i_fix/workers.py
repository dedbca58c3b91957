"""Many stacks at once: the stacks of a run shared out among forked worker processes.

In dry-run and check modes nothing is written, so no stack's outcome depends on another's:
each worker computes the whole outcome of its stacks (exit status, the text it would print,
its JSON records) and the parent prints them all in discovery order, exactly what one process
would print. `--apply` stays in one process: its writes happen in order, one file at a time.

A fork costs about a millisecond; a stack costs a few. Runs over a handful of stacks (the
pre-commit case) stay in one process. Where `fork` does not exist, everything runs in one.
"""

from __future__ import annotations

import marshal
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

MIN_STACKS = 8  # fewer than this per worker and the fork is not worth it


def count(requested: int | None, mode: str, stacks: int) -> int:
    """How many processes to use: `requested` (from --jobs), else one per usable CPU."""
    if mode == "apply" or not hasattr(os, "fork"):
        return 1
    if requested is not None:
        return max(1, min(requested, stacks))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, stacks // MIN_STACKS))


def share(costs: Sequence[int], n: int) -> list[list[int]]:
    """Indexes of the items for each of `n` workers, the costliest first to the least loaded."""
    loads = [0] * n
    shares: list[list[int]] = [[] for _ in range(n)]
    for i in sorted(range(len(costs)), key=lambda i: -costs[i]):
        w = loads.index(min(loads))
        shares[w].append(i)
        loads[w] += costs[i]
    return [sorted(s) for s in shares]


def run(work: Callable[[int], Any], shares: list[list[int]]) -> dict[int, Any]:
    """`work(i)` for every index of every share: the first share here, the others in forked
    children. Results must be plain data (`marshal` carries them back). A child that dies or
    sends something unreadable has its share done here instead."""
    children: list[tuple[int, int, list[int]]] = []
    here = list(shares[0]) if shares else []
    if "dockerfile" in sys.modules:
        # BuildKit's parser is Go code with threads of its own: a child forked after it was
        # loaded has lost them and would hang on its first Dockerfile. (The command line forks
        # before reading any file, so this is a caller that ran the tool in-process before.)
        here = [i for s in shares for i in s]
        shares = []
    for mine in shares[1:]:
        try:
            r, w = os.pipe()
        except OSError:  # out of descriptors: do it here
            here += mine
            continue
        try:
            pid = os.fork()
        except OSError:  # a sandbox that forbids it, or out of processes: do it here
            os.close(r)
            os.close(w)
            here += mine
            continue
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            code = 1
            try:
                os.close(r)
                data = marshal.dumps([(i, work(i)) for i in mine])
                with os.fdopen(w, "wb") as f:
                    f.write(data)
                code = 0
            finally:
                os._exit(code)  # never the parent's cleanup, nor its unflushed output
        os.close(w)
        children.append((pid, r, mine))
    out = {i: work(i) for i in here}
    for pid, r, mine in children:
        with os.fdopen(r, "rb") as f:
            data = f.read()
        _, status = os.waitpid(pid, 0)
        got: dict[int, Any] = {}
        if status == 0:
            try:
                got = dict(marshal.loads(data))
            except (EOFError, ValueError, TypeError):
                got = {}
        if set(got) != set(mine):
            got = {i: work(i) for i in mine}
        out.update(got)
    return out
