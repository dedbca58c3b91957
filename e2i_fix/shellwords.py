"""Shell words, as `shlex.split` splits them (POSIX rules, no comments).

`shlex` reads one character at a time in Python, and the facts layer splits every command,
ARG and ENV line of a stack. Most hold no quote and no backslash: there the words are the runs
of characters between shlex's whitespace (space, tab, CR, LF), found in C. The rest go to shlex.
"""

from __future__ import annotations

import re
from functools import lru_cache

from e2i_fix import lazyre

_SPECIAL = lazyre.compile(r"['\"\\]")
_SPACE = lazyre.compile(r"[ \t\r\n]+")


def split(text: str) -> list[str]:
    """`shlex.split(text)` (it raises ValueError where shlex does: an unclosed quote)."""
    if _SPECIAL.search(text) is None:
        return [w for w in _SPACE.split(text) if w]
    return list(_quoted(text))


@lru_cache(maxsize=1024)
def _quoted(text: str) -> tuple[str, ...]:
    import shlex  # only for text with quotes or backslashes

    return tuple(shlex.split(text))
