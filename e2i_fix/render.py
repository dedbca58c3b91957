"""Render small YAML fragments in a file's own style.

Passes describe new YAML as plain Python values; `Alias`, `Anchored` and `Merge` stand for
`*name`, `&name value` and `<<: *name`, `Raw` for a scalar written as the file writes it and
`Flow` for a one-line `[a, b]` list. The output is a block with the measured mapping indent,
sequence dash offset and quote character, ending in a newline (the engine turns newlines
into the file's own style when it splices).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from e2i_fix import lazyre
from e2i_fix.yamldoc import Style


class Alias:
    """`*name` where a value goes."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return type(other) is Alias and other.name == self.name

    def __hash__(self) -> int:
        return hash(("*", self.name))

    def __repr__(self) -> str:
        return f"Alias({self.name!r})"


class Anchored:
    """`&name value`: a value that defines an anchor."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: object) -> None:
        self.name = name
        self.value = value

    def __eq__(self, other: object) -> bool:
        return type(other) is Anchored and (other.name, other.value) == (self.name, self.value)

    def __hash__(self) -> int:
        return hash(("&", self.name, repr(self.value)))

    def __repr__(self) -> str:
        return f"Anchored({self.name!r}, {self.value!r})"


class Raw:
    """A scalar written as the file already writes it (`"5"`, `10m`, `'json-file'`): the text
    goes out as it is. Made by `conventions` from scalars the stack wrote, so it reads back
    as what they read."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return type(other) is Raw and other.text == self.text

    def __hash__(self) -> int:
        return hash(("raw", self.text))

    def __repr__(self) -> str:
        return f"Raw({self.text!r})"


class Flow:
    """A sequence written on one line, `[a, b]`, where the file writes its lists so."""

    __slots__ = ("items",)

    def __init__(self, items: Sequence[object]) -> None:
        self.items = tuple(items)

    def __eq__(self, other: object) -> bool:
        return type(other) is Flow and other.items == self.items

    def __hash__(self) -> int:
        return hash(("flow", self.items))

    def __repr__(self) -> str:
        return f"Flow({list(self.items)!r})"


MERGE = "<<"

# Plain scalars that YAML 1.1 (PyYAML and older tools) and 1.2 (Compose) both read as the same
# string: no indicator at the start, no `: ` or ` #`, nothing that resolves to another type.
_PLAIN_OK = lazyre.compile(r"[A-Za-z_./$][A-Za-z0-9_./:@${}=+-]*")
# `.5` and `.5e3` are floats in both (a leading dot and a digit), `.` alone is one in YAML 1.1's
# spec regex: none of them may go out plain.
_OTHER_TYPE = lazyre.compile(
    r"(?i:y|n|yes|no|on|off|true|false|null|~)|[-+]?[0-9][0-9_:.eE+-]*|[-+]?\.(?i:inf|nan)|0[box].*"
    r"|\.|\.[0-9].*"
)


_PLAIN_CACHE: dict[str, bool] = {}


def _plain_ok(s: str) -> bool:
    ok = _PLAIN_CACHE.get(s)
    if ok is None:
        ok = _PLAIN_CACHE[s] = bool(_PLAIN_OK.fullmatch(s)) and not _OTHER_TYPE.fullmatch(s) and not s.endswith(":")
    return ok


def scalar(value: object, style: Style) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Alias):
        return f"*{value.name}"
    if isinstance(value, Raw):
        return value.text
    s = str(value)
    if _plain_ok(s):
        return s
    return quote(s, style.quote)


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"}


def quote(s: str, q: str = '"') -> str:
    """`s` as a quoted scalar that reads back as exactly `s`: single quotes where the file
    prefers them and `s` is printable, else double quotes with every character that is not
    printable escaped (a raw CR, NEL or U+2028 would be read as a line break and folded)."""
    if q == "'" and s.isprintable():
        return "'" + s.replace("'", "''") + "'"
    out = "".join(c if c.isprintable() and c not in '\\"' else _escape(c) for c in s)
    return f'"{out}"'


def _escape(c: str) -> str:
    got = _ESCAPES.get(c)
    if got is not None:
        return got
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


_BLOCKS: dict[str, str] = {}


def block(value: Mapping[str, object], column: int, style: Style) -> str:
    """A block mapping whose keys start at `column`, one entry per line, ending in a newline."""
    # Passes render the same small blocks for service after service: render each once.
    key = f"{column}|{style.indent}|{style.seq_offset}|{style.quote}|{value!r}"
    got = _BLOCKS.get(key)
    if got is None:
        lines: list[str] = []
        _mapping(value, column, style, lines)
        got = _BLOCKS[key] = "".join(line + "\n" for line in lines)
    return got


def entry(key: str, value: object, column: int, style: Style) -> str:
    return block({key: value}, column, style)


def _mapping(value: Mapping[str, object], column: int, style: Style, lines: list[str]) -> None:
    pad = " " * column
    for k, v in value.items():
        head = f"{pad}{scalar(k, style) if k != MERGE else MERGE}:"
        _value(head, v, column, style, lines)


def _value(head: str, v: object, column: int, style: Style, lines: list[str]) -> None:
    if isinstance(v, Anchored):
        head = f"{head} &{v.name}"
        v = v.value
    if isinstance(v, Flow):
        lines.append(f"{head} [{', '.join(scalar(i, style) for i in v.items)}]")
        return
    if isinstance(v, Mapping):
        if not v:
            lines.append(f"{head} {{}}")
            return
        lines.append(head)
        _mapping(v, column + style.indent, style, lines)
    elif isinstance(v, Sequence) and not isinstance(v, str):
        if not v:
            lines.append(f"{head} []")
            return
        lines.append(head)
        dash = " " * (column + style.seq_offset)
        for item in v:
            if isinstance(item, Mapping) and item:
                sub: list[str] = []
                _mapping(item, column + style.seq_offset + 2, style, sub)
                sub[0] = f"{dash}- {sub[0].lstrip()}"
                lines.extend(sub)
            else:
                lines.append(f"{dash}- {scalar(item, style)}")
    else:
        lines.append(f"{head} {scalar(v, style)}")
