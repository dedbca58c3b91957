"""What the user sees: unified diffs, findings and problems, as text or JSON."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

from e2i_fix.errors import Problem
from e2i_fix.fix import Fix
from e2i_fix.source import Source


def unified_diff(path: Path, before: Source, after: str) -> str:
    """A unified diff (`patch -p0` applies it); lines keep their own endings, and a missing
    final newline is marked as git and diff(1) do."""
    a = before.text.splitlines(keepends=True) if before.exists else []
    b = after.splitlines(keepends=True)
    name = path.as_posix()
    lines = []
    for line in difflib.unified_diff(a, b, name if before.exists else "/dev/null", name, lineterm="\n"):
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        lines.append(line)
    return "".join(lines)


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
            self._emit(json.dumps(self.records, indent=2) + "\n")
