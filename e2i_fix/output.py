"""What the user sees: unified diffs, findings and problems, as text or JSON."""

from __future__ import annotations

import bisect
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from e2i_fix.errors import Problem
from e2i_fix.fix import Fix
from e2i_fix.source import Source


def unified_diff(path: Path, before: Source, after: str,
                 regions: Sequence[tuple[int, int, int, int]] | None = None) -> str:
    """A unified diff (`patch -p0` applies it); lines keep their own endings, and a missing
    final newline is marked as git and diff(1) do.

    `regions` are where the texts may differ, as (start, end) in `before` and (start, end) in
    `after`, ascending; outside them the texts are equal piece for piece (the engine knows them
    from its edits). Lines are compared only inside them; without them, everywhere."""
    old = before.text if before.exists else ""
    a = old.splitlines(keepends=True)
    b = after.splitlines(keepends=True)
    if regions is None:
        regions = [(0, len(old), 0, len(after))]
    name = path.as_posix()
    out = [f"--- {name if before.exists else '/dev/null'}\n", f"+++ {name}\n"]
    for group in _grouped(_opcodes(_matching_blocks(a, b, _line_ranges(old, after, a, b, regions)))):
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


def _line_ranges(old: str, new: str, a: list[str], b: list[str],
                 regions: Sequence[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """The lines that hold each region (its first line to its last), merged where they meet.
    Between two ranges the text is unchanged, so it holds as many lines on both sides."""
    out: list[tuple[int, int, int, int]] = []
    # Offsets into each text only grow (regions ascend and do not overlap): newlines are
    # counted once, from where the last count stopped.
    pos = {0: 0, 1: 0}
    lines = {0: 0, 1: 0}

    def line_of(side: int, offset: int) -> int:
        lines[side] += (old if side == 0 else new).count("\n", pos[side], offset)
        pos[side] = offset
        return lines[side]

    for a0, a1, b0, b1 in regions:
        la0, la1 = line_of(0, a0), min(line_of(0, a1) + 1, len(a))
        lb0, lb1 = line_of(1, b0), min(line_of(1, b1) + 1, len(b))
        if out and la0 <= out[-1][1]:
            p = out.pop()
            la0, lb0 = p[0], p[2]
        out.append((la0, max(la1, la0), lb0, max(lb1, lb0)))
    return out


def _matching_blocks(a: list[str], b: list[str], ranges: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int]]:
    """SequenceMatcher's matching blocks: equal lines between the ranges, and inside each
    range those found the patience way: common ends first, then lines that occur once on each
    side as anchors, and difflib only for what lies between. A fix inserts a few lines into a
    long file of repeated lines (`restart: always`...), where difflib alone is quadratic."""
    blocks: list[tuple[int, int, int]] = []

    def add(i: int, j: int, n: int) -> None:
        if n <= 0:
            return
        if blocks and blocks[-1][0] + blocks[-1][2] == i and blocks[-1][1] + blocks[-1][2] == j:
            blocks[-1] = (blocks[-1][0], blocks[-1][1], blocks[-1][2] + n)
        else:
            blocks.append((i, j, n))

    def walk(alo: int, ahi: int, blo: int, bhi: int) -> None:
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            add(alo, blo, 1)
            alo, blo = alo + 1, blo + 1
        tail = 0
        while alo < ahi - tail and blo < bhi - tail and a[ahi - tail - 1] == b[bhi - tail - 1]:
            tail += 1
        ahi, bhi = ahi - tail, bhi - tail
        if alo < ahi and blo < bhi:
            anchors = _unique_anchors(a, b, alo, ahi, blo, bhi)
            if anchors:
                pa, pb = alo, blo
                for i, j in anchors:
                    walk(pa, i, pb, j)
                    add(i, j, 1)
                    pa, pb = i + 1, j + 1
                walk(pa, ahi, pb, bhi)
            else:
                import difflib

                sm = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
                for i, j, n in sm.get_matching_blocks():
                    add(alo + i, blo + j, n)
        add(ahi, bhi, tail)

    i = j = 0
    for alo, ahi, blo, bhi in ranges:
        add(i, j, alo - i)
        walk(alo, ahi, blo, bhi)
        i, j = ahi, bhi
    add(i, j, len(a) - i)
    del walk, add  # break the closures' cycles (see yamldoc._check)
    blocks.append((len(a), len(b), 0))
    return blocks


def _opcodes(blocks: list[tuple[int, int, int]]) -> list[tuple[str, int, int, int, int]]:
    """SequenceMatcher.get_opcodes() for these matching blocks."""
    codes = []
    i = j = 0
    for ai, bj, n in blocks:
        if i < ai or j < bj:
            codes.append(("replace" if i < ai and j < bj else "delete" if i < ai else "insert", i, ai, j, bj))
        i, j = ai + n, bj + n
        if n:
            codes.append(("equal", ai, i, bj, j))
    return codes


def _grouped(codes: list[tuple[str, int, int, int, int]], n: int = 3) -> Iterator[list[tuple[str, int, int, int, int]]]:
    """SequenceMatcher.get_grouped_opcodes(n): the changes with `n` lines of context, as hunks."""
    if not codes:
        return
    if codes[0][0] == "equal":
        tag, i1, i2, j1, j2 = codes[0]
        codes[0] = tag, max(i1, i2 - n), i2, max(j1, j2 - n), j2
    if codes[-1][0] == "equal":
        tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)
    group: list[tuple[str, int, int, int, int]] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > 2 * n:
            group.append((tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)))
            yield group
            group = []
            i1, j1 = max(i1, i2 - n), max(j1, j2 - n)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


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


# What one stack printed, kept to be printed later: (to stderr?, text) in order, and its JSON records.
Captured = tuple[list[tuple[bool, str]], list[dict[str, Any]]]


class Reporter:
    def __init__(self, fmt: str, mode: str, capture: bool = False) -> None:
        self.fmt = fmt
        self.mode = mode
        self.records: list[dict[str, Any]] = []
        self.printed: list[tuple[bool, str]] | None = [] if capture else None

    def _emit(self, text: str, err: bool = False) -> None:
        if self.printed is not None:
            self.printed.append((err, text))
            return
        stream = sys.stderr if err else sys.stdout
        stream.write(text)

    def captured(self) -> Captured:
        return self.printed or [], self.records

    def replay(self, captured: Captured) -> None:
        """Print what another (capturing) reporter was told, as if told here."""
        printed, records = captured
        for err, text in printed:
            self._emit(text, err)
        self.records.extend(records)

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
                "provenance": [{"what": w, "source": src} for w, src in fix.provenance], "info": fix.info,
            })
            return
        mark = "" if fixable or fix.info else " (no fix applied)"
        self._emit(f"{fix.location()}: [{fix.pass_id}] {fix.message}{mark}\n", err=quiet)

    def diff(self, path: Path, before: Source, after: str,
             regions: Sequence[tuple[int, int, int, int]] | None = None) -> None:
        text = unified_diff(path, before, after, regions)
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
