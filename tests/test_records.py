"""The value type: the class `typing.NamedTuple` builds, without its annotation checks."""

from __future__ import annotations

import typing

import pytest

from e2i_fix.records import NamedTuple


class Ours(NamedTuple):
    """A value."""

    x: int
    y: str | None = None

    def both(self) -> str:
        return f"{self.x}{self.y}"

    @property
    def double(self) -> int:
        return self.x * 2


class Theirs(typing.NamedTuple):
    """A value."""

    x: int
    y: str | None = None

    def both(self) -> str:
        return f"{self.x}{self.y}"

    @property
    def double(self) -> int:
        return self.x * 2


def test_the_same_class_as_typing_builds() -> None:
    for cls in (Ours, Theirs):
        v = cls(1)
        assert (v, v.both(), v.double, v._replace(y="z"), v._asdict()) == ((1, None), "1None", 2, (1, "z"), {"x": 1, "y": None})
        assert (cls.__bases__, cls.__doc__, cls._fields, cls._field_defaults) == ((tuple,), "A value.", ("x", "y"), {"y": None})
        assert cls.__module__ == __name__ and repr(v) == f"{cls.__name__}(x=1, y=None)"
    assert set(Ours.__annotations__) == set(Theirs.__annotations__) == {"x", "y"}


def test_what_typing_refuses_it_refuses() -> None:
    with pytest.raises(TypeError, match="Non-default namedtuple field y cannot follow default field x"):
        class Bad(NamedTuple):
            x: int = 0
            y: int
    with pytest.raises(AttributeError, match="Cannot overwrite NamedTuple attribute _replace"):
        class Worse(NamedTuple):
            x: int

            def _replace(self) -> None: ...
