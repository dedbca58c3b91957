"""Suppressions: fixes the user said no to, by the file and line a fix reports or edits.

- `# e2i-fix: ignore[ID, ...]` (or bare `# e2i-fix: ignore`) on a line of its own covers the
  next line that is not blank or a comment, and what belongs to it: the lines continuing it (a
  Dockerfile instruction's `\\` continuations) and the lines indented under it (a YAML block).
- `# e2i-fix: skip-file` on a line of its own, anywhere in a file: no fix touches that file.
- `exclude` and `per-file-ignores` in the configuration do the same by file name.

A fix is suppressed when its reported location, or the start of any of its edits, is covered.
A suppression comment that suppresses nothing during a run is reported (`unused-suppression`),
as ruff reports an unused `noqa`. Trailing `# e2i-fix: ignore[...]` on a compose service's key
line is the per-service opt-out the passes read themselves (`project.targets`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from e2i_fix.fix import Fix, Safety, as_path
from e2i_fix.records import NamedTuple

if TYPE_CHECKING:
    from e2i_fix.config import Settings

UNUSED = "unused-suppression"
_COMMENT = r"^[ \t]*#[ \t]*e2i-fix:[ \t]*(?:(skip-file)|ignore(?:\[([^\]\n]*)\])?)[ \t]*\r?$"


class Comment(NamedTuple):
    ordinal: int  # the how-manieth suppression comment of its file (stable across rounds)
    line: int  # 1-based
    col: int
    ids: frozenset[str] | None  # None: every pass (bare ignore); empty: skip-file
    first: int  # the lines it covers (first..last); 0 for skip-file
    last: int
    text: str


def comments(text: str) -> list[Comment]:
    if "e2i-fix:" not in text:
        return []
    lines = text.split("\n")
    out = []
    # Compiled only for a file that names the tool (re caches it): most runs never do.
    for k, m in enumerate(re.finditer(_COMMENT, text, re.M)):
        line = text.count("\n", 0, m.start()) + 1
        col = m.group(0).index("#") + 1
        raw = m.group(0).strip()
        if m.group(1):
            out.append(Comment(k, line, col, frozenset(), 0, 0, raw))
            continue
        listed = frozenset(i.strip() for i in (m.group(2) or "").split(",") if i.strip())
        ids = listed or None  # `ignore` and `ignore[]`: every pass
        first, last = _scope(lines, line)
        out.append(Comment(k, line, col, ids, first, last, raw))
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _blank_or_comment(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("#")


def _scope(lines: list[str], comment_line: int) -> tuple[int, int]:
    """The lines the comment at `comment_line` (1-based) covers."""
    i = comment_line  # 0-based index of the line after the comment
    while i < len(lines) and _blank_or_comment(lines[i]):
        i += 1
    if i >= len(lines):
        return 0, 0
    first = last = i
    base = _indent(lines[i])
    j = i + 1
    while j < len(lines):
        prev = lines[j - 1].rstrip("\r")
        cur = lines[j]
        if prev.endswith(("\\", "`")) or (cur.strip() and _indent(cur) > base):
            last = j
        elif cur.strip():
            break
        j += 1
    return first + 1, last + 1


class Suppressions:
    """The suppressions of one stack, as fixes are proposed round after round."""

    def __init__(self, settings: Settings, editable: Iterable[Path] = ()) -> None:
        self.settings = settings
        self.editable = set(editable)
        self.used: set[tuple[Path, int, str]] = set()  # (file, comment index, pass id)
        self._cache: dict[tuple[Path, str], list[Comment]] = {}

    def _comments(self, path: Path, texts: Mapping[Path, str]) -> list[Comment]:
        text = texts.get(path)
        if text is None:
            return []
        key = (path, text)
        got = self._cache.get(key)
        if got is None:
            got = self._cache[key] = comments(text)
        return got

    def keep(self, fixes: list[Fix], texts: Mapping[Path, str]) -> list[Fix]:
        """The fixes no suppression covers; the ones that do count as used. An error finding
        (a bad option value) is never kept out: it says the run itself is wrong."""
        return [f for f in fixes if f.error or not self._suppressed(f, texts)]

    def _suppressed(self, fix: Fix, texts: Mapping[Path, str]) -> bool:
        hit = False
        rules = bool(self.settings.exclude or self.settings.per_file_ignores)
        for path in {as_path(fix.path), *(e.path for e in fix.edits)}:
            if rules and self.settings.file_ignored(path, fix.pass_id):
                hit = True
            found = self._comments(path, texts)
            if not found:  # the common case: no line numbers to work out
                continue
            lines = []
            if fix.line and as_path(fix.path) == path:
                lines.append(fix.line)
            text = texts[path]
            lines += [text.count("\n", 0, e.start) + 1 for e in fix.edits if e.path == path]
            for c in found:
                if c.ids == frozenset():  # skip-file
                    self.used.add((path, c.ordinal, fix.pass_id))
                    hit = True
                elif c.first and (c.ids is None or fix.pass_id in c.ids) and any(c.first <= n <= c.last for n in lines):
                    self.used.add((path, c.ordinal, fix.pass_id))
                    hit = True
        return hit

    def unused(self, texts: Mapping[Path, str]) -> list[Fix]:
        """A finding for each suppression (or pass id in one) that suppressed nothing, in the
        editable files; ids of passes that did not run are not judged."""
        if not self.settings.selected(UNUSED) or UNUSED not in self.settings.passes:
            return []
        out = []
        known = set(self.settings.passes)
        for path in sorted(self.editable):
            for c in self._comments(path, texts):
                used = {pid for p, k, pid in self.used if p == path and k == c.ordinal}
                if c.ids is None or c.ids == frozenset():
                    if not used:
                        out.append(self._finding(path, c, f"`{c.text}` suppresses nothing"))
                    continue
                unknown = sorted(c.ids - known)
                if unknown:
                    out.append(self._finding(path, c, f"`{c.text}`: unknown pass id {', '.join(unknown)}"))
                idle = sorted(i for i in c.ids & known if i not in used and self.settings.selected(i))
                if idle:
                    out.append(self._finding(path, c, f"`{c.text}`: nothing to suppress for {', '.join(idle)}"))
        return out

    @staticmethod
    def _finding(path: Path, c: Comment, message: str) -> Fix:
        return Fix(UNUSED, message, path, c.line, c.col, safety=Safety.DISPLAY_ONLY)
