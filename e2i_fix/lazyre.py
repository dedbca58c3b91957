"""Regular expressions compiled the first time they are used.

The modules hold a hundred patterns; a run uses a third of them (a stack without Dockerfiles
never matches a RUN line), and compiling the rest cost a tenth of a small run's start-up.
`compile` returns a stand-in for `re.compile(pattern, flags)`: the first attribute asked of it
compiles the pattern and puts the compiled pattern's methods in the stand-in's own namespace,
so later calls go straight to them. (Give the stand-in to `re.sub` and its kin and they refuse
it: call its own methods.)
"""

from __future__ import annotations

import re
from typing import Any, cast

_BOUND = ("match", "fullmatch", "search", "sub", "subn", "split", "findall", "finditer", "pattern", "flags",
          "groups", "groupindex")


class _Pattern:
    def __init__(self, pattern: str, flags: int) -> None:
        self._args = (pattern, flags)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        rx = re.compile(*self._args)
        for attr in _BOUND:
            self.__dict__[attr] = getattr(rx, attr)
        return getattr(rx, name)

    def __repr__(self) -> str:
        return f"lazyre.compile({self._args[0]!r}, {self._args[1]!r})"


def compile(pattern: str, flags: int = 0) -> re.Pattern[str]:  # noqa: A001 - re.compile's name, on purpose
    """`re.compile(pattern, flags)`, compiled on first use."""
    return cast("re.Pattern[str]", _Pattern(pattern, flags))
