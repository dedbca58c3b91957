"""What the user sees: unified diffs, findings and problems, as text or JSON."""

from __future__ import annotations

import bisect
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from e2i_fix.errors import Problem
from e2i_fix.fix import Fix
from e2i_fix.source import Source


def unified_diff(path: Path, before: Source, after: str) -> str:
    """A unified diff (`patch -p0` applies it); lines keep their own endings, and a missing
    final newline is marked as git and diff(1) do."""
    import difflib

    a = before.text.splitlines(keepends=True) if before.exists else []
    b = after.splitlines(keepends=True)
    name = path.as_posix()
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    sm.matching_blocks = _matching_blocks(a, b)  # type: ignore[attr-defined]  # patience anchoring
    out = [f"--- {name if before.exists else '/dev/null'}\n", f"+++ {name}\n"]
    for group in sm.get_grouped_opcodes(3):
        (_, i1, _, j1, _), (_, _, i2, _, j2) = group[0], group[-1]
        out.append(f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@\n")
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out.extend(" " + line for line in a[a1:a2])
                continue
            out.extend("-" + line for line in a[a1:a2])
            out.extend("+" + line for line in b[b1:b2])
    if len(out) == 2:
        return ""
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in out)


def _range(start: int, stop: int) -> str:
    length = stop - start
    first = start + 1 if length else start
    return f"{first}" if length == 1 else f"{first},{length}"


def _matching_blocks(a: list[str], b: list[str]) -> list[tuple[int, int, int]]:
    """SequenceMatcher's matching blocks, found the patience way: common ends first, then
    lines that occur once on each side as anchors, and difflib only for what lies between.
    A fix inserts a few lines into a long file of repeated lines (`restart: always`...), where
    difflib alone is quadratic."""
    import difflib

    pairs: list[tuple[int, int]] = []

    def walk(alo: int, ahi: int, blo: int, bhi: int) -> None:
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            pairs.append((alo, blo))
            alo, blo = alo + 1, blo + 1
        tail = []
        while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
            tail.append((ahi, bhi))
        if alo < ahi and blo < bhi:
            anchors = _unique_anchors(a, b, alo, ahi, blo, bhi)
            if anchors:
                pa, pb = alo, blo
                for i, j in anchors:
                    walk(pa, i, pb, j)
                    pairs.append((i, j))
                    pa, pb = i + 1, j + 1
                walk(pa, ahi, pb, bhi)
            else:
                sm = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
                for i, j, n in sm.get_matching_blocks():
                    pairs.extend((alo + i + k, blo + j + k) for k in range(n))
        pairs.extend(reversed(tail))

    walk(0, len(a), 0, len(b))
    del walk  # break the closure's cycle (see yamldoc._check)
    blocks: list[tuple[int, int, int]] = []
    for i, j in pairs:
        if blocks and blocks[-1][0] + blocks[-1][2] == i and blocks[-1][1] + blocks[-1][2] == j:
            blocks[-1] = (blocks[-1][0], blocks[-1][1], blocks[-1][2] + 1)
        else:
            blocks.append((i, j, 1))
    blocks.append((len(a), len(b), 0))
    return blocks


def _unique_anchors(a: list[str], b: list[str], alo: int, ahi: int, blo: int, bhi: int) -> list[tuple[int, int]]:
    """Lines once in a[alo:ahi] and once in b[blo:bhi], in the longest order both agree on."""
    ca = Counter(a[alo:ahi])
    cb = Counter(b[blo:bhi])
    where = {line: j for j, line in enumerate(b[blo:bhi], blo) if cb[line] == 1}
    cand = [(i, where[line]) for i, line in enumerate(a[alo:ahi], alo) if ca[line] == 1 and line in where]
    # Longest increasing subsequence on the b side (patience sorting).
    tops: list[int] = []
    top_idx: list[int] = []
    back: list[int] = []
    for k, (_, j) in enumerate(cand):
        pos = bisect.bisect_left(tops, j)
        back.append(top_idx[pos - 1] if pos else -1)
        if pos == len(tops):
            tops.append(j)
            top_idx.append(k)
        else:
            tops[pos] = j
            top_idx[pos] = k
    out = []
    k = top_idx[-1] if top_idx else -1
    while k >= 0:
        out.append(cand[k])
        k = back[k]
    return out[::-1]


class Reporter:
    def __init__(self, fmt: str, mode: str) -> None:
        self.fmt = fmt
        self.mode = mode
        self.records: list[dict[str, Any]] = []

    def _emit(self, text: str, err: bool = False) -> None:
        stream = sys.stderr if err else sys.stdout
        stream.write(text)

    def problem(self, p: Problem) -> None:
        if self.fmt == "json":
            self.records.append({"type": "error", "path": p.path, "line": p.line, "col": p.col, "message": p.message})
        else:
            self._emit(f"{p}\n", err=True)

    def finding(self, fix: Fix, fixable: bool, quiet: bool = False) -> None:
        if self.fmt == "json":
            self.records.append({
                "type": "finding", "pass": fix.pass_id, "path": str(fix.path), "line": fix.line or None,
                "col": fix.col or None, "message": fix.message, "fixable": fixable, "safety": fix.safety.name.lower(),
            })
            return
        mark = "" if fixable else " (no fix applied)"
        self._emit(f"{fix.location()}: [{fix.pass_id}] {fix.message}{mark}\n", err=quiet)

    def diff(self, path: Path, before: Source, after: str) -> None:
        text = unified_diff(path, before, after)
        if self.fmt == "json":
            self.records.append({"type": "diff", "path": str(path), "diff": text})
        else:
            self._emit(text)

    def wrote(self, path: Path) -> None:
        if self.fmt == "json":
            self.records.append({"type": "fixed", "path": str(path)})
        else:
            self._emit(f"fixed {path}\n", err=True)

    def close(self) -> None:
        if self.fmt == "json":
            import json

            self._emit(json.dumps(self.records, indent=2) + "\n")
