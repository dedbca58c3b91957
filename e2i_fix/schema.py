"""Validate a Compose document against the official compose-spec JSON Schema.

The schema is the one check-jsonschema vendors (`data/compose-spec.json`, Apache-2.0, see
`data/LICENSE.compose-spec`). Importing `jsonschema` costs tens of milliseconds, too much for a
pre-commit hook, so this module carries a small validator for exactly the JSON Schema (2020-12)
keywords that file uses. The schema is compiled once, lazily, into nested closures: one per
subschema, with regexes compiled and `$ref`s resolved ahead of time.

Any keyword the compiler does not know raises `NotImplementedError` when the schema is loaded,
so a schema update cannot silently drop a rule. `format` and the pure annotations
(`description`, `title`, `deprecated`, `default`, ...) are ignored, as `jsonschema` does.

Verdicts match `jsonschema.Draft202012Validator`. Messages are shorter, and two choices make
them more useful than a literal reading of the spec would:

- `oneOf` / `anyOf`: when no branch accepts the value's type, one "is not of type" error at
  the value; otherwise the errors of the closest branch (the one that accepts the type and
  has the fewest errors), which may sit deeper than the `oneOf` itself.
- `unevaluatedProperties`: properties matched inside an `allOf` branch count as evaluated even
  when that branch fails. Such a document is invalid anyway (the branch's own error says why);
  this only keeps every valid key of a service from also being reported as unexpected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_FILE", "SchemaError", "format_path", "load_schema", "validate"]

SCHEMA_FILE = Path(__file__).parent / "data" / "compose-spec.json"


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One schema violation: where (`services`, `api`, `ports`, 0) and what."""

    path: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        return f"{format_path(self.path)}: {self.message}"


_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def format_path(path: tuple[str | int, ...]) -> str:
    """`services.api.ports[0]`; keys that are not plain words are quoted; `<root>` if empty."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _SIMPLE_KEY.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{_quote(part)}]")
    return "".join(out) or "<root>"


def _quote(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def validate(instance: object) -> list[SchemaError]:
    """Check `instance` (what a YAML loader makes of a Compose file); `[]` when it is valid."""
    check = _root()
    errs: list[_Err] = []
    if check is not None:
        check(instance, None, errs, None)
    out: list[SchemaError] = []
    seen: set[SchemaError] = set()
    for lazy_path, message in errs:
        err = SchemaError(_flatten(lazy_path), message)
        if err not in seen:
            seen.add(err)
            out.append(err)
    return out


@cache
def load_schema() -> dict[str, Any]:
    """The compose-spec schema as parsed JSON (read once)."""
    import json  # only needed here: keeps `import e2i_fix.schema` cheap

    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_bytes())
    return schema


@cache
def _root() -> _Check | None:
    return _Compiler(load_schema()).root()


# --- compiled form ---------------------------------------------------------------------------
#
# A check is called as check(instance, path, errs, evaluated):
# - path is a lazy, linked path: None at the root, else (parent_path, key); flattened only
#   for errors that are reported;
# - errs collects (path, message) pairs;
# - evaluated is None, or the set that collects which properties of *this* instance are
#   evaluated (only while an enclosing `unevaluatedProperties` needs to know).
# A subschema that can never fail compiles to None.

_Path = tuple[Any, Any] | None
_Err = tuple[_Path, str]
_Check = Callable[[Any, _Path, list[_Err], set[Any] | None], None]


def _flatten(path: _Path) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    while path is not None:
        path, key = path
        parts.append(key)
    parts.reverse()
    return tuple(parts)


_IGNORED = frozenset(
    {
        "$schema", "$id", "$comment", "$defs", "definitions", "title", "description",
        "deprecated", "default", "examples", "format", "readOnly", "writeOnly",
    }
)  # fmt: skip
_SUPPORTED = frozenset(
    {
        "type", "enum", "pattern", "minimum", "maximum", "required", "properties",
        "patternProperties", "additionalProperties", "unevaluatedProperties", "items",
        "uniqueItems", "$ref", "allOf", "anyOf", "oneOf",
    }
)  # fmt: skip
_PLAN_CACHE_SIZE = 4096  # distinct keys remembered per mapping schema

_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})

_EXACT_TYPE = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    type(None): "null",
}


def _type_of(value: object) -> str:
    """JSON type name; floats with an integral value are "integer" (JSON Schema)."""
    name = _EXACT_TYPE.get(type(value))
    if name is not None:
        return name
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__  # date, bytes, set...: no JSON Schema type accepts it


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _canon(value: object) -> object:
    """A hashable key under which two values are equal iff JSON Schema says they are."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, dict):
        return ("object", frozenset((k, _canon(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", tuple(_canon(v) for v in value))
    if isinstance(value, int | float):
        return ("number", value)  # 1 == 1.0
    try:
        hash(value)
    except TypeError:
        return ("unhashable", id(value))
    return (type(value).__name__, value)


class _Node:
    """A compiled subschema: its check, and the JSON types it can accept (None: any)."""

    __slots__ = ("check", "types", "done")

    def __init__(self) -> None:
        self.check: _Check | None = None
        self.types: frozenset[str] | None = None
        self.done = False


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self._root = root
        self._nodes: dict[int, _Node] = {}
        self._keep: list[object] = []  # schemas whose id() keys _nodes stay alive

    def root(self) -> _Check | None:
        return self.node(self._root, "#").check

    # -- structure ----------------------------------------------------------------------------

    def node(self, schema: object, where: str) -> _Node:
        known = self._nodes.get(id(schema))
        if known is not None:
            return known
        node = _Node()
        self._nodes[id(schema)] = node
        self._keep.append(schema)
        if schema is True:
            pass
        elif schema is False:
            node.types = frozenset()
            node.check = _never
        elif isinstance(schema, dict):
            self._compile(node, schema, where)
        else:
            raise NotImplementedError(f"{where}: a schema must be an object or a boolean")
        node.done = True
        return node

    def _resolve(self, ref: object, where: str) -> tuple[object, str]:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise NotImplementedError(f"{where}: only local $refs are supported, not {ref!r}")
        target: object = self._root
        for raw in ref[1:].split("/")[1:]:
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and token in target:
                target = target[token]
            elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
                target = target[int(token)]
            else:
                raise NotImplementedError(f"{where}: $ref {ref!r} does not resolve")
        return target, ref

    def _sub(self, schema: object, where: str) -> _Check | None:
        """The check of a subschema, callable even if it is still being compiled (a cycle)."""
        node = self.node(schema, where)
        if node.done:
            return node.check

        def late(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
            if node.check is not None:
                node.check(inst, path, errs, ev)

        return late

    # -- keywords -----------------------------------------------------------------------------

    def _compile(self, node: _Node, schema: dict[str, Any], where: str) -> None:
        unknown = sorted(set(schema) - _SUPPORTED - _IGNORED)
        if unknown:
            raise NotImplementedError(f"{where}: unsupported JSON Schema keyword(s) {unknown}")
        checks: list[_Check] = []
        types: frozenset[str] | None = None

        if "type" in schema:
            names = schema["type"]
            names = [names] if isinstance(names, str) else list(names)
            if not names or not set(names) <= _TYPES:
                raise NotImplementedError(f"{where}/type: unsupported {schema['type']!r}")
            accepted = set(names)
            if "number" in accepted:
                accepted.add("integer")
            types = frozenset(accepted)
        if "$ref" in schema:
            target, ref = self._resolve(schema["$ref"], where)
            ref_node = self.node(target, ref)
            if types is None and ref_node.done:
                types = ref_node.types
            check = self._sub(target, ref)
            if check is not None:
                checks.append(check)
        if "enum" in schema:
            checks.append(_enum(schema["enum"], where))
        if "pattern" in schema:
            checks.append(_pattern(schema["pattern"], where))
        for key, fail in (("minimum", "less than the minimum"), ("maximum", "more than the maximum")):
            if key in schema:
                checks.append(_bound(schema[key], key == "minimum", fail, where))
        if "required" in schema:
            checks.append(_required(schema["required"], where))
        if schema.keys() & {"properties", "patternProperties", "additionalProperties"}:
            checks.append(self._object(schema, where))
        if "items" in schema:
            item = self._sub(schema["items"], f"{where}/items")
            if item is not None:
                checks.append(_items(item))
        if schema.get("uniqueItems") is True:
            checks.append(_unique)
        elif schema.get("uniqueItems", False) is not False:
            raise NotImplementedError(f"{where}/uniqueItems: must be a boolean")
        if "allOf" in schema:
            branches = self._branches(schema, "allOf", where)
            checks.extend(b.check for b in branches if b.check is not None)
            if types is None:
                for b in branches:
                    if b.types is not None:
                        types = b.types if types is None else types & b.types
        for key in ("anyOf", "oneOf"):
            if key in schema:
                checks.append(_choice(self._branches(schema, key, where), key == "oneOf"))
        if "unevaluatedProperties" in schema:
            checks = [self._unevaluated(schema["unevaluatedProperties"], checks, where)]

        node.types = types
        node.check = _combine(types, checks)

    def _branches(self, schema: dict[str, Any], key: str, where: str) -> list[_Node]:
        subs = schema[key]
        if not isinstance(subs, list) or not subs:
            raise NotImplementedError(f"{where}/{key}: must be a non-empty array")
        out = []
        for i, sub in enumerate(subs):
            node = self.node(sub, f"{where}/{key}/{i}")
            if not node.done:  # a cycle through a combinator: call it late
                late = _Node()
                late.check, late.done = self._sub(sub, f"{where}/{key}/{i}"), True
                node = late
            out.append(node)
        return out

    def _object(self, schema: dict[str, Any], where: str) -> _Check:
        """properties + patternProperties + additionalProperties, in one pass over the keys."""
        props: dict[str, _Check | None] = {
            name: self._sub(sub, f"{where}/properties/{name}")
            for name, sub in schema.get("properties", {}).items()
        }
        patterns: list[tuple[Callable[[str], object], _Check | None]] = []
        for pat, sub in schema.get("patternProperties", {}).items():
            patterns.append((_matcher(pat, where), self._sub(sub, f"{where}/patternProperties")))
        extra = schema.get("additionalProperties", True)
        extra_check = None if isinstance(extra, bool) else self._sub(extra, f"{where}/additional")
        forbid = extra is False

        # What to do with a key depends only on the key: work it out once per distinct key.
        plans: dict[object, tuple[bool, tuple[_Check, ...]]] = {}

        def plan(key: object) -> tuple[bool, tuple[_Check, ...]]:
            subs: list[_Check | None] = []
            seen = key in props
            if seen:
                subs.append(props[key])  # type: ignore[index]
            if isinstance(key, str):
                for matches, sub in patterns:
                    if matches(key):
                        seen = True
                        subs.append(sub)
            if not seen and not forbid:
                seen = True
                subs.append(extra_check)
            found = (seen, tuple(s for s in subs if s is not None))
            if len(plans) < _PLAN_CACHE_SIZE:
                plans[key] = found
            return found

        def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
            if not isinstance(inst, dict):
                return
            for key, value in inst.items():
                allowed, subs = plans.get(key) or plan(key)
                if not allowed:
                    errs.append((path, f"additional property {_short(key)} is not allowed"))
                    continue
                if ev is not None:
                    ev.add(key)
                if subs:
                    at = (path, key if type(key) is str else str(key))
                    for sub in subs:
                        sub(value, at, errs, None)

        return check

    def _unevaluated(self, spec: object, checks: list[_Check], where: str) -> _Check:
        rest = None if isinstance(spec, bool) else self._sub(spec, f"{where}/unevaluatedProperties")
        forbid = spec is False

        def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
            if not isinstance(inst, dict):
                for c in checks:
                    c(inst, path, errs, ev)
                return
            local: set[Any] = set()
            for c in checks:
                c(inst, path, errs, local)
            for key, value in inst.items():
                if key in local:
                    continue
                if forbid:
                    errs.append((path, f"additional property {_short(key)} is not allowed"))
                elif rest is not None:
                    rest(value, (path, key if type(key) is str else str(key)), errs, None)
            if ev is not None:
                ev.update(local if forbid else inst.keys())

        return check


# --- keyword checks --------------------------------------------------------------------------


def _never(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
    errs.append((path, f"{_short(inst)} is not allowed here"))


def _combine(types: frozenset[str] | None, checks: list[_Check]) -> _Check | None:
    if types is None:
        if not checks:
            return None
        if len(checks) == 1:
            return checks[0]

        def all_of(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
            for c in checks:
                c(inst, path, errs, ev)

        return all_of

    order = ["object", "array", "string", "integer", "number", "boolean", "null"]
    shown = [t for t in order if t in types and not (t == "integer" and "number" in types)]
    message = " is not of type " + ", ".join(repr(t) for t in shown)

    def typed(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
        name = _EXACT_TYPE.get(type(inst))
        if name is None:
            name = _type_of(inst)
        if name not in types:
            # the other keywords all assume the type: their errors would only repeat this one
            errs.append((path, _short(inst) + message))
            return
        for c in checks:
            c(inst, path, errs, ev)

    return typed


def _enum(values: object, where: str) -> _Check:
    if not isinstance(values, list) or not values:
        raise NotImplementedError(f"{where}/enum: must be a non-empty array")
    allowed = frozenset(_canon(v) for v in values)
    strings = frozenset(v for v in values if isinstance(v, str))
    message = f" is not one of {_short(values, 200)}"

    def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
        if type(inst) is str:
            if inst in strings:
                return
        elif _canon(inst) in allowed:
            return
        errs.append((path, _short(inst) + message))

    return check


def _pattern(pattern: object, where: str) -> _Check:
    if not isinstance(pattern, str):
        raise NotImplementedError(f"{where}/pattern: must be a string")
    search = re.compile(pattern).search
    message = f" does not match {pattern!r}"

    def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
        if isinstance(inst, str) and search(inst) is None:
            errs.append((path, _short(inst) + message))

    return check


def _matcher(pattern: str, where: str) -> Callable[[str], object]:
    """`re.search` for a patternProperties key; a plain `^prefix` becomes `startswith`."""
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise NotImplementedError(f"{where}/patternProperties: bad regex {pattern!r}: {e}") from e
    literal = pattern[1:]
    if pattern.startswith("^") and literal and re.escape(literal) == literal:
        return lambda key: key.startswith(literal)
    return compiled.search


def _bound(limit: object, lower: bool, fail: str, where: str) -> _Check:
    if not _is_number(limit):
        raise NotImplementedError(f"{where}: minimum/maximum must be a number")
    message = f" is {fail} of {limit!r}"

    def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
        if _is_number(inst) and (inst < limit if lower else inst > limit):  # type: ignore[operator]
            errs.append((path, _short(inst) + message))

    return check


def _required(names: object, where: str) -> _Check:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise NotImplementedError(f"{where}/required: must be an array of strings")
    required = tuple(names)

    def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
        if isinstance(inst, dict):
            for name in required:
                if name not in inst:
                    errs.append((path, f"{name!r} is a required property"))

    return check


def _items(item: _Check) -> _Check:
    def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
        if isinstance(inst, list):
            for i, value in enumerate(inst):
                item(value, (path, i), errs, None)

    return check


def _unique(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
    if not isinstance(inst, list) or len(inst) < 2:
        return
    if all(type(v) is str for v in inst):
        if len(set(inst)) == len(inst):
            return
    else:
        seen: set[object] = set()
        for v in inst:
            key = _canon(v)
            if key in seen:
                break
            seen.add(key)
        else:
            return
    dups: list[object] = []
    keys: set[object] = set()
    for v in inst:
        key = _canon(v)
        if key in keys and v not in dups:
            dups.append(v)
        keys.add(key)
    errs.append((path, "has non-unique elements: " + ", ".join(_short(d) for d in dups)))


def _choice(branches: list[_Node], one: bool) -> _Check:
    """anyOf (one=False) / oneOf (one=True)."""
    order = ["object", "array", "string", "integer", "number", "boolean", "null"]
    union: set[str] = set()
    for b in branches:
        union |= b.types if b.types is not None else set(order)
    shown = [t for t in order if t in union and not (t == "integer" and "number" in union)]
    type_message = " is not of type " + ", ".join(repr(t) for t in shown)

    def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
        name = _EXACT_TYPE.get(type(inst))
        if name is None:
            name = _type_of(inst)
        passed: list[int] = []
        failed: list[list[_Err]] = []
        for i, b in enumerate(branches):
            if b.types is not None and name not in b.types:
                continue  # fails on its type: nothing worth reporting
            if b.check is None:
                passed.append(i)  # no keyword there, so no annotation either
            else:
                sub_errs: list[_Err] = []
                sub_ev: set[Any] | None = set() if ev is not None else None
                b.check(inst, path, sub_errs, sub_ev)
                if sub_errs:
                    failed.append(sub_errs)
                    continue
                passed.append(i)
                if ev is not None and sub_ev:
                    ev.update(sub_ev)
            if passed and ev is None and not one:
                return  # anyOf: one success is enough when nobody needs the annotations
            if one and len(passed) > 1:
                break
        if one and len(passed) > 1:
            shown = ", ".join(str(i) for i in passed)
            errs.append((path, f"{_short(inst)} is valid under more than one of the oneOf branches ({shown})"))
            return
        if passed:
            return
        if not failed:
            errs.append((path, _short(inst) + type_message))
            return
        fewest = min(len(e) for e in failed)
        best = [e for e in failed if len(e) == fewest]
        if len(best) > 1 and all(p is path for e in best for p, _ in e):
            # several branches fail right here (e.g. a different `required` each): one line
            errs.append((path, " or ".join("; ".join(m for _, m in e) for e in best)))
        else:
            errs.extend(best[0])

    return check
