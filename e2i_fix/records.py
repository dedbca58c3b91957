"""`NamedTuple`, the value type of this package, without `typing`'s check of each annotation.

`typing.NamedTuple` turns every field's annotation into a `ForwardRef`, and each of those
compiles its text (the annotations are strings here: `from __future__ import annotations`).
Nothing reads them at run time, and the sixty value types of a run cost 7 ms of every start-up
that way. This builds the same class — `collections.namedtuple` with the class body's defaults,
methods, docstring and annotations (left as written) — as `typing` does in Python 3.11. The type
checker sees `typing.NamedTuple` itself.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    # What the class body may not set, and what it sets that is not copied (as in `typing`).
    _PROHIBITED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
                             "_make", "_replace", "_asdict", "_source"})
    _SPECIAL = frozenset({"__module__", "__name__", "__annotations__"})

    class _Meta(type):
        def __new__(cls, typename: str, bases: tuple[type, ...], ns: dict[str, Any]) -> type:
            if ns.get("_root", False):
                return super().__new__(cls, typename, bases, ns)
            if bases != (NamedTuple,):
                raise TypeError("can only inherit from NamedTuple")
            types = ns.get("__annotations__", {})
            defaults: list[str] = []
            for field in types:
                if field in ns:
                    defaults.append(field)
                elif defaults:
                    raise TypeError(f"Non-default namedtuple field {field} cannot follow default field"
                                    f"{'s' if len(defaults) > 1 else ''} {', '.join(defaults)}")
            cls_ = collections.namedtuple(typename, list(types), defaults=[ns[n] for n in defaults],
                                          module=ns["__module__"])
            cls_.__annotations__ = cls_.__new__.__annotations__ = dict(types)
            for key in ns:
                if key in _PROHIBITED:
                    raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
                if key not in _SPECIAL and key not in cls_._fields:
                    setattr(cls_, key, ns[key])
            return cls_

    class NamedTuple(metaclass=_Meta):
        _root = True
