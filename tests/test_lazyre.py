"""Patterns compiled on first use behave as compiled ones."""

from __future__ import annotations

import re

from e2i_fix import lazyre


def test_compiled_on_first_use_and_then_the_pattern_itself() -> None:
    rx = lazyre.compile(r"(?P<word>\w+)=(\d+)", re.IGNORECASE)
    assert "search" not in vars(rx)
    m = rx.search("a b=12")
    assert m is not None and m.group("word") == "b" and m.group(2) == "12"
    assert "search" in vars(rx)  # bound: later calls go straight to the compiled pattern
    assert rx.sub("-", "x=1 y=2") == "- -"
    assert [m.group(0) for m in rx.finditer("x=1 y=2")] == ["x=1", "y=2"]
    assert rx.findall("x=1") == [("x", "1")]
    assert rx.fullmatch("X=3") is not None and rx.match("  x=3") is None
    assert rx.split("a x=1 b") == ["a ", "x", "1", " b"]
    assert (rx.pattern, rx.flags & re.IGNORECASE, rx.groups, rx.groupindex["word"]) == (
        r"(?P<word>\w+)=(\d+)", re.IGNORECASE, 2, 1)


def test_a_bad_pattern_fails_where_it_is_used() -> None:
    rx = lazyre.compile(r"(unclosed")
    try:
        rx.search("x")
    except re.error:
        pass
    else:  # pragma: no cover
        raise AssertionError("compiled a bad pattern")
