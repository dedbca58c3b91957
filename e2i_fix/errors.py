"""Failures are values: one line, `path[:line:col]: message`."""

from __future__ import annotations

from e2i_fix.records import NamedTuple



class Problem(NamedTuple):
    """Something that stops one file (or stack) from being processed."""

    path: str
    message: str
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.path}: {self.message}"
        return f"{self.path}:{self.line}:{self.col or 1}: {self.message}"


class InputError(Exception):
    """Raised inside the reader and parsers; caught at the file loop and turned into a Problem."""

    def __init__(self, message: str, line: int | None = None, col: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col

    def problem(self, path: str) -> Problem:
        return Problem(path, self.message, self.line, self.col)
