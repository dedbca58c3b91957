"""Shell words split as shlex splits them, quotes or not."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e2i_fix import shellwords


@pytest.mark.parametrize("text", [
    "", "   ", "gunicorn app:app --bind 0.0.0.0:8000", " a\tb\r\nc ", "a\x0bb\x0cc", "a\u00a0b",
    "echo 'two words' \"and more\"", "a\\ b", "a#b # c", "x=1 y=\"2 3\"",
])
def test_as_shlex(text: str) -> None:
    assert shellwords.split(text) == shlex.split(text)


@settings(max_examples=300, database=None, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab =#$;|\t\r\n\x0b\x0c\u00a0'\"\\")), max_size=30))
def test_as_shlex_on_any_text(text: str) -> None:
    try:
        expected = shlex.split(text)
    except ValueError:
        with pytest.raises(ValueError):
            shellwords.split(text)
        return
    assert shellwords.split(text) == expected
