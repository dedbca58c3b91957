"""What the user sees: unified diffs, findings and problems, as text (coloured on a terminal),
JSON, SARIF 2.1.0 (GitHub code scanning) or GitHub workflow annotations; a summary line and a
progress bar on stderr."""

from __future__ import annotations

import bisect
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix.errors import Problem
from e2i_fix.fix import Fix, Safety, as_path
from e2i_fix.source import Source

if TYPE_CHECKING:
    from e2i_fix.fix import Edit
    from e2i_fix.passes import Pass

FORMATS = ("text", "json", "sarif", "github")
INPUT = "input"  # the "pass" of what the run says of the files it read (left alone, not edited)


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
    name = header_path(path)
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


def header_path(path: Path, cwd: str | None = None) -> str:
    """How a diff header names `path`: relative to the folder the command ran in and without
    `a/../b` detours, so that `git apply -p0` and `patch -p0` run there find it. A file outside
    that folder is named as the command line named its stack: by `../` (neither tool writes
    there, but the header still says where) or, given as an absolute path, absolutely.

    `..` is taken away by name only where that names the same file: after a symlinked folder,
    `link/..` is not the folder `link` is in."""
    here = cwd if cwd is not None else os.getcwd()
    full = os.path.join(here, os.fspath(path))
    if os.path.islink(full):
        # `patch` refuses to patch a symlink: the diff names the file it points to.
        full = os.path.realpath(full)
    folder = os.path.dirname(full)
    short = os.path.normpath(full)
    if os.path.realpath(os.path.dirname(short)) != os.path.realpath(folder):
        short = os.path.join(os.path.realpath(folder), os.path.basename(full))
        here = os.path.realpath(here)
    rel = os.path.relpath(short, here)
    outside = rel == os.pardir or rel.startswith(os.pardir + os.sep)
    return Path(short if outside and os.path.isabs(path) else rel).as_posix()


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


# ANSI colours of a unified diff, as git shows one.
_BOLD, _CYAN, _RED, _GREEN, _RESET = "\x1b[1m", "\x1b[36m", "\x1b[31m", "\x1b[32m", "\x1b[0m"


def use_color(choice: str, env: Mapping[str, str], tty: bool) -> bool:
    """Colour or not: `--color always|never` decides; with `auto`, `NO_COLOR` (any value but
    empty) turns it off, `FORCE_COLOR` on, and otherwise only a terminal that is not dumb gets it."""
    if choice != "auto":
        return choice == "always"
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    return tty and env.get("TERM") != "dumb"


def colored(diff: str) -> str:
    out = []
    for line in diff.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        end = line[len(body):]
        if line.startswith(("--- ", "+++ ")):
            out.append(f"{_BOLD}{body}{_RESET}{end}")
        elif line.startswith("@@"):
            out.append(f"{_CYAN}{body}{_RESET}{end}")
        elif line.startswith("-"):
            out.append(f"{_RED}{body}{_RESET}{end}")
        elif line.startswith("+"):
            out.append(f"{_GREEN}{body}{_RESET}{end}")
        else:
            out.append(line)
    return "".join(out)


class Stats:
    """What a run came to, added up over its stacks."""

    __slots__ = ("fixes", "files", "hidden", "findings", "errors", "by_pass", "by_file")

    def __init__(self) -> None:
        self.fixes = 0  # applied (or, in dry-run and check, that would be)
        self.files = 0  # files changed
        self.hidden = 0  # unsafe fixes left out without --unsafe-fixes
        self.findings = 0  # reported with no fix applied
        self.errors = 0
        self.by_pass: dict[str, list[int]] = {}  # id: [fixed by safe fixes, fixed by unsafe ones, not fixed]
        self.by_file: dict[str, dict[str, int]] = {}  # path: {id: fixes}

    def count(self, event: Event) -> None:
        """Add one thing the run did or found (`Event`)."""
        kind, pass_id, path, safety = event
        if kind == "file":
            self.files += 1
        elif kind == "error":
            self.errors += 1
        elif kind == "fixed":
            self.fixes += 1
            self.by_pass.setdefault(pass_id, [0, 0, 0])[0 if safety == "safe" else 1] += 1
            per_file = self.by_file.setdefault(path, {})
            per_file[pass_id] = per_file.get(pass_id, 0) + 1
        elif kind in ("hidden", "finding"):
            if kind == "hidden":
                self.hidden += 1
            else:
                self.findings += 1
            self.by_pass.setdefault(pass_id, [0, 0, 0])[2] += 1
        # "info": information, no finding to count


# One thing counted: (kind, pass id, path, safety). Kinds: "fixed", "hidden" (an unsafe fix left
# out), "finding", "error", "info", "file" (a file changed).
Event = tuple[str, str, str, str]


def _spliced(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """`text` with each (start, end, new text) span replaced; spans ascend and do not overlap."""
    out, pos = [], 0
    for start, end, new in spans:
        out += [text[pos:start], new]
        pos = end
    return "".join(out) + text[pos:]


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def summary(stats: Stats, mode: str) -> str:
    """One line, such as `12 fixes in 3 files (4 more with --unsafe-fixes)`; empty when there
    is nothing to say."""
    if not (stats.fixes or stats.findings or stats.hidden or stats.errors):
        return ""
    parts = []
    if stats.fixes:
        verb = " applied" if mode == "apply" else ""
        parts.append(f"{_plural(stats.fixes, 'fix', 'fixes')}{verb} in {_plural(stats.files, 'file')}")
    if stats.findings:
        parts.append(f"{_plural(stats.findings, 'finding')} without a fix")
    if stats.errors:
        parts.append(_plural(stats.errors, "error"))
    line = ", ".join(parts)
    if stats.hidden:
        more = " more" if stats.fixes else ""
        hidden = f"{_plural(stats.hidden, 'fix', 'fixes') if not stats.fixes else stats.hidden}{more} with --unsafe-fixes"
        line = f"{line} ({hidden})" if line else hidden
    if mode == "dry-run" and stats.fixes:
        line += "; --apply writes them"
    return line


# What one stack told its reporter, kept to be told again later (plain data: workers send it
# back): one entry per thing told, as (key, what it printed: (to stderr?, text) in order, its
# records (JSON, SARIF, annotations), what it counts, and for a diff, its file and the spans it
# replaces). The key names the thing (a finding at its place, a file's diff): a run tells each
# once, however many of its stacks read the file (a Dockerfile several stacks build).
Entry = tuple[str, list[tuple[bool, str]], list[dict[str, Any]], list[Event], "Spans | None"]
Captured = list[Entry]
# A diff's file and the spans of the file as read that it replaces: (start, end, new text).
Spans = tuple[str, list[tuple[int, int, str]]]


class Positions:
    """Line and column (1-based, in characters) of offsets into one text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        pos = text.find("\n")
        while pos >= 0:
            self.starts.append(pos + 1)
            pos = text.find("\n", pos + 1)

    def line_col(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1

    def offset(self, line: int, col: int) -> int:
        if line > len(self.starts):
            return len(self.text)
        return min(self.starts[line - 1] + max(col, 1) - 1, len(self.text))

    def line_end(self, line: int) -> int:
        """The offset of the end of `line`, before its line break."""
        if line >= len(self.starts):
            return len(self.text)
        end = self.starts[line] - 1
        return end - 1 if end > 0 and self.text[end - 1] == "\r" else end


class Reporter:
    """Told about one stack's (or a whole run's) problems, fixes, findings and diffs, it prints
    them in its format, at once or captured to be printed later in the run's order."""

    def __init__(self, fmt: str, mode: str, capture: bool = False, color: bool = False,
                 statistics: bool = False, show_fixes: bool = False) -> None:
        self.fmt = fmt
        self.mode = mode
        self.color = color
        self.statistics = statistics
        self.show_fixes = show_fixes
        self.records: list[dict[str, Any]] = []
        self.entries: Captured | None = [] if capture else None
        self.stats = Stats()
        self._positions: dict[Path, Positions] = {}
        self._bar = ""  # the progress bar on stderr, when one is drawn
        self._told: set[str] = set()  # the keys of what was told (`replay`)
        self._shown: dict[str, list[tuple[int, int, str]]] = {}  # a file's key: the spans its diffs replaced

    def _begin(self, key: str, spans: Spans | None = None) -> None:
        """Start what one call tells (captured as one entry)."""
        if self.entries is not None:
            self.entries.append((key, [], [], [], spans))

    def _emit(self, text: str, err: bool = False) -> None:
        if self.entries is not None:
            if not self.entries:
                self._begin("")
            self.entries[-1][1].append((err, text))
            return
        if self._bar:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._bar = ""
        if err:
            sys.stdout.flush()  # what came before stays before, on a terminal both go to
        stream = sys.stderr if err else sys.stdout
        stream.write(text)

    def _record(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.entries is not None:
            self.entries[-1][2].append(record)

    def _count(self, event: Event) -> None:
        self.stats.count(event)
        if self.entries is not None:
            self.entries[-1][3].append(event)

    def captured(self) -> Captured:
        return self.entries or []

    def replay(self, captured: Captured) -> None:
        """Print what another (capturing) reporter was told, as if told here; what an earlier
        stack of the run already told (a finding at the same place, a file already counted) is
        not told again. A diff of a file already shown shows only what it adds to it."""
        for key, printed, records, events, spans in captured:
            if key and key in self._told:
                if spans is not None:
                    self._more(key, spans)
                continue
            if key:
                self._told.add(key)
            if spans is not None:
                self._shown[key] = sorted(spans[1])
            for err, text in printed:
                self._emit(text, err)
            self.records.extend(records)
            for event in events:
                self.stats.count(event)

    def _more(self, key: str, spans: Spans) -> None:
        """A later stack's diff of a file an earlier one changed: its spans that the earlier
        diffs do not hold and do not overlap, as a diff from the text those leave (what
        `--apply` does, one stack after the other). An overlapping span is the earlier
        stack's to change."""
        from e2i_fix import source
        from e2i_fix.errors import InputError

        shown = self._shown[key]
        new = [sp for sp in spans[1] if sp not in shown and not any(sp[0] < b and a < sp[1] or sp[0] == sp[1] == a
                                                                   for a, b, _ in shown)]
        if not new:
            return
        path = Path(spans[0])
        try:
            before = source.read(path)
        except InputError:
            return  # a file the stacks create: the first stack's is shown
        now = sorted(shown + new)
        self._shown[key] = now
        text = unified_diff(path, before._replace(text=_spliced(before.text, shown)), _spliced(before.text, now))
        self._show_diff(path, text)

    def progress(self, done: int, total: int) -> None:
        """A bar on stderr (the caller knows it is a terminal); redrawn after other output."""
        width = 30
        filled = width * done // max(total, 1)
        bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} stacks"
        if done >= total:
            if self._bar:
                sys.stderr.write("\r\x1b[K")
                sys.stderr.flush()
            self._bar = ""
            return
        sys.stdout.flush()
        sys.stderr.write("\r" + bar)
        sys.stderr.flush()
        self._bar = bar

    def problem(self, p: Problem) -> None:
        self._begin(f"problem\0{p}")
        self._count(("error", "", p.path, ""))
        if self.fmt in ("json", "sarif"):
            self._record({"type": "error", "path": p.path, "line": p.line, "col": p.col, "message": p.message})
        elif self.fmt == "github":
            self._record(_annotation("error", _RANK_PROBLEM, None, p.path, p.line or 0, p.col or 0, None, p.message))
        else:
            self._emit(f"{p}\n", err=True)

    def _pos(self, path: Path, sources: Mapping[Path, Source]) -> Positions | None:
        got = self._positions.get(path)
        if got is None:
            src = sources.get(path)
            if src is None:
                return None
            got = self._positions[path] = Positions(src.text if src.exists else "")
        return got

    def _edits(self, edits: Sequence[Edit], sources: Mapping[Path, Source]) -> list[dict[str, Any]] | None:
        out = []
        for e in edits:
            pos = self._pos(e.path, sources)
            if pos is None:
                return None
            newline = sources[e.path].newline
            text = e.text if newline == "\n" else e.text.replace("\r\n", "\n").replace("\n", newline)
            (l0, c0), (l1, c1) = pos.line_col(e.start), pos.line_col(e.end)
            out.append({"path": str(e.path), "start": e.start, "end": e.end, "start_line": l0, "start_col": c0,
                        "end_line": l1, "end_col": c1, "text": text})
        return out

    def fix(self, fix: Fix, fixable: bool, edits: Sequence[Edit] | None = None,
            sources: Mapping[Path, Source] | None = None, quiet: bool = False, hidden: bool = False) -> None:
        """A fix that was applied (`fixable`), or a finding: one left out (an unsafe fix without
        --unsafe-fixes is `hidden`) or with nothing to apply. `edits` are its edits in the files as
        read (`sources`), None where they cannot be applied there alone. Findings only go to
        stderr in text (`quiet`) in modes that print diffs."""
        kind = "fixed" if fixable else "hidden" if hidden else "error" if fix.error else "info" if fix.info else "finding"
        # What names it in the run: its place, and for a fix its edits in the files as read
        # (another stack that reads the file proposes the same, though a later round of its own
        # may word it otherwise), for anything else its message.
        what = repr(sorted((str(e.path), e.start, e.end, e.text) for e in edits)) if edits and fix.edits else fix.message
        self._begin("\0".join(("fix", kind, fix.pass_id, str(fix.path), str(fix.line), str(fix.col), what)))
        self._count((kind, fix.pass_id, str(fix.path), fix.safety.label))
        if self.fmt == "text":
            if (fixable and self.mode != "check") or (self.statistics and not fix.error):
                return
            mark = "" if fixable or fix.info else " (no fix applied)"
            self._emit(f"{fix.location()}: [{fix.pass_id}] {fix.message}{mark}\n", err=quiet)
            return
        if fix.info and self.fmt != "json":
            # Information is no result or annotation, but what the run did not read (a file left
            # alone) is a note: code scanning and a workflow's page show it.
            if fix.pass_id != INPUT:
                return
            if self.fmt == "sarif":
                self._record({"type": "note", "path": str(fix.path), "line": fix.line, "col": fix.col,
                              "message": f"[{fix.pass_id}] {fix.message}"})
            else:
                self._record(_annotation("notice", _RANK_NO_FIX, fix.pass_id, str(fix.path), fix.line, fix.col, None,
                                         fix.message))
            return
        record: dict[str, Any] = {
            "type": "finding", "pass": fix.pass_id, "path": str(fix.path), "line": fix.line or None,
            "col": fix.col or None, "message": fix.message, "fixable": fixable, "safety": fix.safety.label,
        }
        end: tuple[int, int] | None = None
        mapped = self._edits(edits, sources) if edits is not None and sources is not None else None
        pos = self._pos(as_path(fix.path), sources) if sources is not None else None
        if pos is not None and fix.line:
            end = self._region_end(fix, pos, edits or ())
            record["end_line"], record["end_col"] = end
        if self.fmt == "json":
            record["edits"] = mapped if fix.edits else []
            record["provenance"] = [{"what": w, "source": s} for w, s in fix.provenance]
            record["error"] = fix.error
            record["severe"] = fix.severe
            record["info"] = fix.info
            self._record(record)
            return
        if self.fmt == "sarif":
            record["edits"] = mapped or []
            record["provenance"] = [list(p) for p in fix.provenance]
            record["error"] = fix.error or fix.severe
            record["line_text"] = pos.text[pos.offset(fix.line, 1):pos.line_end(fix.line)].strip() if pos and fix.line else ""
            self._record(record)
            return
        # github: one workflow annotation, printed by close() (a step shows only the first ten of
        # each level: the most severe go first)
        note = "" if fixable or not fix.edits else " (fix available with --unsafe-fixes)" if hidden else ""
        if fix.error:
            level, rank = "error", _RANK_PROBLEM
        elif fix.severe:
            level, rank = "error", _RANK_SEVERE
        else:
            # A fix first (safe, then unsafe), then what only reports.
            level = "warning"
            rank = (_RANK_NO_FIX if not fix.edits or fix.safety <= Safety.DISPLAY_ONLY
                    else _RANK_SAFE_FIX if fix.safety >= Safety.SAFE else _RANK_UNSAFE_FIX)
        self._record(_annotation(level, rank, fix.pass_id, str(fix.path), fix.line, fix.col, end, fix.message + note))

    @staticmethod
    def _region_end(fix: Fix, pos: Positions, edits: Sequence[Edit]) -> tuple[int, int]:
        """Where a finding's region ends: the furthest end of its edits in its own file from its
        location on, or else the end of its line. An end at the start of a line is pulled back
        to the end of the line before."""
        start = pos.offset(fix.line, fix.col)
        ends = [e.end for e in edits if as_path(e.path) == as_path(fix.path) and e.start >= start]
        end = max(ends) if ends else pos.line_end(fix.line)
        line, col = pos.line_col(end)
        if col == 1 and end > start:
            line -= 1
            col = pos.line_end(line) - pos.starts[line - 1] + 1
        if (line, col) < (fix.line, fix.col):
            line, col = fix.line, fix.col
        return line, col

    def diff(self, path: Path, before: Source, after: str,
             regions: Sequence[tuple[int, int, int, int]] | None = None) -> None:
        """A file's diff. With `regions` (as `unified_diff` takes them), the run knows the spans it
        replaces: another stack's diff of the same file shows only what it adds (`replay`)."""
        spans = (str(path), [(a0, a1, after[b0:b1]) for a0, a1, b0, b1 in regions]) if regions is not None else None
        self._begin(f"diff\0{os.path.normpath(path)}", spans)
        self._show_diff(path, unified_diff(path, before, after, regions))

    def _show_diff(self, path: Path, text: str) -> None:
        if self.fmt == "json":
            self._record({"type": "diff", "path": str(path), "diff": text})
        elif self.fmt == "text":
            self._emit(colored(text) if self.color else text)

    def changed(self, path: Path) -> None:
        """A file changed (or that would change): counted once in a run."""
        self._begin(f"file\0{os.path.normpath(path)}")
        self._count(("file", "", str(path), ""))

    def wrote(self, path: Path) -> None:
        self._begin(f"wrote\0{os.path.normpath(path)}")
        if self.fmt == "json":
            self._record({"type": "fixed", "path": str(path)})
        elif self.fmt == "text":
            self._emit(f"fixed {path}\n", err=True)

    def close(self, passes: Mapping[str, Pass] | None = None) -> None:
        if self.fmt == "json":
            import json

            self._emit(json.dumps(report(self.records, self.stats, self.mode), indent=2) + "\n")
        elif self.fmt == "sarif":
            import json

            self._emit(json.dumps(sarif(self.records, passes or {}), indent=2) + "\n")
        elif self.fmt == "github":
            root = source_root(r["path"] for r in self.records)
            self._emit(github_annotations(self.records, root))
            target = os.environ.get("GITHUB_STEP_SUMMARY")
            if target:
                try:
                    with open(target, "a", encoding="utf-8") as f:
                        f.write(step_summary(self.records, self.stats, self.mode, root))
                except OSError as e:
                    self._emit(f"{Problem(target, f'cannot append the step summary: {e.strerror or e}')}\n", err=True)
        elif self.fmt == "text":
            if self.statistics:
                self._emit(statistics(self.stats, passes or {}))
            if self.show_fixes and self.stats.by_file and self.mode != "check":
                self._emit(shown_fixes(self.stats, passes or {}, self.mode), err=True)
            line = summary(self.stats, self.mode)
            if line:
                self._emit(line + "\n", err=True)


def statistics(stats: Stats, passes: Mapping[str, Pass]) -> str:
    """ruff's --statistics: a count per pass, most first, marked `[*]` where every finding was
    fixed by safe fixes, `[!]` where every one was fixed and some by unsafe fixes (taken with
    --unsafe-fixes), `[-]` where some were fixed, `[ ]` where none was."""
    rows = sorted(stats.by_pass.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    if not rows:
        return ""
    width = max(len(pid) for pid, _ in rows)
    out = []
    for pid, (safe, unsafe, other) in rows:
        fixed = safe + unsafe
        mark = "[ ]" if not fixed else "[-]" if other else "[!]" if unsafe else "[*]"
        summary_text = getattr(passes.get(pid), "SUMMARY", "")
        out.append(f"{fixed + other:>5}\t{pid:<{width}}\t{mark} {summary_text}".rstrip() + "\n")
    return "".join(out)


def shown_fixes(stats: Stats, passes: Mapping[str, Pass], mode: str) -> str:
    """ruff's --show-fixes: the fixes by file and pass."""
    head = "Fixed" if mode == "apply" else "Would fix"
    out = [f"{head} {_plural(stats.fixes, 'issue')}:\n"]
    for path in sorted(stats.by_file):
        out.append(f"- {path}:\n")
        for pid, n in sorted(stats.by_file[path].items()):
            summary_text = getattr(passes.get(pid), "SUMMARY", "")
            out.append(f"    {n} × {pid} ({summary_text})\n")
    return "".join(out)


def _gh_data(text: str) -> str:
    """A workflow command's message, escaped as the runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    """A workflow command's property value: `:` and `,` end it unless escaped."""
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


# GitHub shows ten error and ten warning annotations of a step and drops the rest without a word:
# the most severe of each level are printed, then one notice saying what was left out.
GITHUB_LIMIT = 10
# Within a level, lower ranks go first: a problem or a wrong option (exit 2), a finding about
# what breaks a build; then the findings that come with a fix (safe, then unsafe), which a
# reviewer can act on, ahead of those that only report (display-only): shown first, the many
# reports would push every proposed fix into the notice of what is not shown.
_RANK_PROBLEM, _RANK_SEVERE = 0, 1
_RANK_SAFE_FIX, _RANK_UNSAFE_FIX, _RANK_NO_FIX = 0, 1, 2


def _annotation(level: str, rank: int, pass_id: str | None, path: str, line: int, col: int,
                end: tuple[int, int] | None, message: str) -> dict[str, Any]:
    """One annotation, as a record (plain data: workers send it back); close() prints it."""
    return {"type": "annotation", "level": level, "rank": rank, "pass": pass_id, "path": path, "line": line,
            "col": col, "end": list(end) if end else None, "message": message}


def _annotation_text(r: dict[str, Any], root: Path) -> str:
    props = [f"file={_gh_property(_display_path(r['path'], root))}"]
    if r["line"]:
        props += [f"line={r['line']}", f"col={r['col'] or 1}"]
        if r["end"]:
            end_line, end_col = r["end"]
            # GitHub reads an end column only on a region of one line.
            props += [f"endLine={end_line}"] + ([f"endColumn={end_col}"] if end_line == r["line"] else [])
    title = f"e2i-fix [{r['pass']}]" if r["pass"] else "e2i-fix"
    props.append(f"title={_gh_property(title)}")
    return f"::{r['level']} {','.join(props)}::{_gh_data(r['message'])}\n"


def github_annotations(records: Sequence[dict[str, Any]], root: Path, limit: int = GITHUB_LIMIT) -> str:
    """The workflow commands of a run: the first `limit` errors, then warnings, by rank (fixes,
    safe then unsafe, before findings with no fix; the run's order within a rank), and a
    notice with how many more there are and where to see them."""
    out: list[str] = []
    left: dict[str, int] = {}
    for level in ("error", "warning", "notice"):
        mine = sorted((r for r in records if r["type"] == "annotation" and r["level"] == level),
                      key=lambda r: int(r["rank"]))
        # The notice of what is left out is a notice too: it takes a notice's place.
        room = limit - 1 if level == "notice" and (left or len(mine) > limit) else limit
        out += (_annotation_text(r, root) for r in mine[:room])
        if len(mine) > room:
            left[level] = len(mine) - room
    if left:
        n = sum(left.values())
        counts = " and ".join(_plural(k, level) for level, k in left.items())
        out.append("::notice title=e2i-fix::" + _gh_data(
            f"{n} more {'annotation is' if n == 1 else 'annotations are'} not shown ({counts}): a step shows"
            f" {limit} errors, {limit} warnings and {limit} notices, the most severe are above."
            " `e2i-fix --check --format text` lists every finding; the SARIF report (`--format sarif`, uploaded to code scanning by the"
            " e2i-fix Action) shows each with its fix.") + "\n")
    return "".join(out)


def _md(text: str) -> str:
    """Text in a markdown table cell, as code."""
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def step_summary(records: Sequence[dict[str, Any]], stats: Stats, mode: str, root: Path) -> str:
    """The markdown GitHub shows on a job's page (appended to `$GITHUB_STEP_SUMMARY`): the run's
    summary line, its counts per pass and per file."""
    out = ["## e2i-fix\n\n", (summary(stats, mode) or "Nothing to fix.") + "\n"]
    passes = sorted(stats.by_pass.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    if passes:
        out += ["\n| pass | fixes | findings without a fix applied |\n| --- | ---: | ---: |\n"]
        out += (f"| {_md(pid)} | {safe + unsafe} | {other} |\n" for pid, (safe, unsafe, other) in passes)
    files: dict[str, list[int]] = {}
    for r in records:
        if r["type"] == "annotation" and r["level"] != "notice":
            counts = files.setdefault(_display_path(r["path"], root), [0, 0])
            counts[r["level"] != "error"] += 1
    if files:
        out += ["\n| file | errors | warnings |\n| --- | ---: | ---: |\n"]
        out += (f"| {_md(path)} | {e} | {w} |\n" for path, (e, w) in sorted(files.items()))
    return "".join(out) + "\n"


# --- where paths are relative to -----------------------------------------------------------


def _git_tree(path: Path) -> Path | None:
    """The git work tree that holds `path` (a file's folder), if any."""
    here = os.path.realpath(path)
    if not os.path.isdir(here):
        here = os.path.dirname(here)
    while True:
        if os.path.lexists(os.path.join(here, ".git")):  # a folder, or a worktree's file
            return Path(here)
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def source_root(paths: Iterable[str]) -> Path:
    """The folder SARIF URIs and annotations are relative to: code scanning and the runner read
    paths from the repository root. The git work tree holding the current folder; outside one,
    the git work tree holding every path of the run; else the current folder."""
    cwd = Path.cwd()
    tree = _git_tree(cwd)
    if tree is not None:
        return tree
    trees = {_git_tree(Path(os.path.abspath(p))) for p in set(paths)}
    if len(trees) == 1:
        (only,) = trees
        if only is not None:
            return only
    return cwd


def _relative(path: str, root: Path) -> str | None:
    """`path` (as given, relative to the current folder or absolute) relative to `root`, or None
    outside it."""
    for p, r in ((os.path.abspath(path), str(root)), (os.path.realpath(path), os.path.realpath(root))):
        rel = os.path.relpath(p, r)
        if rel != ".." and not rel.startswith(".." + os.sep) and not os.path.isabs(rel):
            return Path(rel).as_posix()
    return None


def _display_path(path: str, root: Path) -> str:
    rel = _relative(path, root)
    return rel if rel is not None else Path(path).as_posix()


# --- JSON ----------------------------------------------------------------------------------

# The version of the JSON report's form (`e2i_fix/data/report.schema.json`): a new version
# only for a change a reader of the old one would misread; new optional fields keep it.
REPORT_VERSION = 1


def report(records: list[dict[str, Any]], stats: Stats, mode: str) -> dict[str, Any]:
    """The JSON report of a run: its form's version, the tool, the mode, counts and the records."""
    from e2i_fix import __version__

    return {
        "version": REPORT_VERSION,
        "tool": {"name": "e2i-fix", "version": __version__},
        "mode": mode,
        "summary": {"fixes": stats.fixes, "files": stats.files, "findings": stats.findings,
                    "unsafe_fixes": stats.hidden, "errors": stats.errors},
        "records": records,
    }


# SARIF 2.1.0: https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_FINGERPRINT = "e2iFix/v1"


def _uri(path: str, root: Path) -> dict[str, str]:
    """An artifactLocation: relative to `%SRCROOT%` (`root`, the repository root) when the path
    lies inside it, however it was given, else an absolute file URI."""
    from urllib.parse import quote

    rel = _relative(path, root)
    if rel is None:
        return {"uri": Path(os.path.abspath(path)).as_uri()}
    return {"uri": quote(rel), "uriBaseId": "%SRCROOT%"}


def _region(l0: int, c0: int, l1: int, c1: int) -> dict[str, int]:
    return {"startLine": l0, "startColumn": c0, "endLine": l1, "endColumn": c1}


def _help_uri(module: Pass) -> str | None:
    """A pass's `HELP_URI`, else the first link its documentation cites."""
    import re

    got: str | None = getattr(module, "HELP_URI", None)
    if got:
        return got
    m = re.search(r"https?://[^\s)>\]`'\"]+", module.__doc__ or "")
    return m.group(0).rstrip(".,;") if m else None


def sarif(records: list[dict[str, Any]], passes: Mapping[str, Pass]) -> dict[str, Any]:
    """The SARIF log of a run's records: one rule per pass, one result per finding (an applied
    fix is a finding too, with its `fixes`), problems as tool notifications."""
    import hashlib

    from e2i_fix import __version__

    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for pid, module in passes.items():
        doc = (module.__doc__ or "").strip()
        first, _, rest = doc.partition("\n")
        rule: dict[str, Any] = {
            "id": pid,
            "shortDescription": {"text": module.SUMMARY},
            "fullDescription": {"text": first.strip() or module.SUMMARY},
            "help": {"text": rest.strip() or module.SUMMARY, "markdown": rest.strip() or module.SUMMARY},
            "defaultConfiguration": {"level": "warning"},
            "properties": {"safety": module.SAFETY.label},
        }
        uri = _help_uri(module)
        if uri:
            rule["helpUri"] = uri
        index[pid] = len(rules)
        rules.append(rule)
    results = []
    notifications = []
    seen: Counter[str] = Counter()
    root = source_root(r["path"] for r in records)
    for r in records:
        if r["type"] in ("error", "note"):  # a problem of the run, or a note on what it read
            note: dict[str, Any] = {"level": r["type"], "message": {"text": r["message"]}}
            loc: dict[str, Any] = {"artifactLocation": _uri(r["path"], root)}
            if r["line"]:
                loc["region"] = {"startLine": r["line"], "startColumn": r["col"] or 1}
            note["locations"] = [{"physicalLocation": loc}]
            notifications.append(note)
            continue
        physical: dict[str, Any] = {"artifactLocation": _uri(r["path"], root)}
        if r["line"]:
            physical["region"] = _region(r["line"], r["col"] or 1, r.get("end_line") or r["line"],
                                         r.get("end_col") or r["col"] or 1)
        key = "\0".join([r["pass"], Path(r["path"]).as_posix(), r["message"], r["line_text"]])
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        seen[digest] += 1
        result: dict[str, Any] = {
            "ruleId": r["pass"],
            "level": "error" if r["error"] else "warning",
            "message": {"text": r["message"]},
            "locations": [{"physicalLocation": physical}],
            "partialFingerprints": {_FINGERPRINT: f"{digest}:{seen[digest]}"},
            "properties": {"fixable": r["fixable"], "safety": r["safety"]},
        }
        if r["pass"] in index:
            result["ruleIndex"] = index[r["pass"]]
        if r["provenance"]:
            result["properties"]["provenance"] = [{"what": w, "source": s} for w, s in r["provenance"]]
        if r["edits"]:
            changes: dict[str, list[dict[str, Any]]] = {}
            for e in r["edits"]:
                changes.setdefault(e["path"], []).append({
                    "deletedRegion": _region(e["start_line"], e["start_col"], e["end_line"], e["end_col"]),
                    "insertedContent": {"text": e["text"]},
                })
            result["fixes"] = [{
                "description": {"text": r["message"]},
                "artifactChanges": [{"artifactLocation": _uri(p, root), "replacements": reps}
                                    for p, reps in changes.items()],
            }]
        results.append(result)
    from urllib.parse import quote

    base = root.as_posix().rstrip("/") + "/"
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "e2i-fix", "version": __version__, "semanticVersion": __version__,
            "rules": rules,
        }},
        "originalUriBaseIds": {"%SRCROOT%": {"uri": "file://" + quote(base)}},
        "columnKind": "unicodeCodePoints",
        "invocations": [{"executionSuccessful": not any(n["level"] == "error" for n in notifications),
                         "toolExecutionNotifications": notifications}],
        "results": results,
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
