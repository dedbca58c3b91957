"""Validate a Compose document against the official compose-spec JSON Schema.

The schema is the one check-jsonschema vendors (`data/compose-spec.json`, Apache-2.0, see
`data/LICENSE.compose-spec`). Importing `jsonschema` costs tens of milliseconds, too much for a
pre-commit hook, so this module carries a small validator for exactly the JSON Schema (2020-12)
keywords that file uses. The schema is compiled into nested closures, one per subschema, with
regexes compiled and `$ref`s resolved ahead of time; the subschema of a property is compiled
the first time a document uses that property (most of the schema never is), and what a
mapping schema does with a given key is worked out once and remembered.

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
from functools import cache
from pathlib import Path
from typing import Any

from e2i_fix import lazyre
from e2i_fix.records import NamedTuple

__all__ = ["SCHEMA_FILE", "SchemaError", "format_path", "keys_judged_alone", "load_schema", "validate"]

SCHEMA_FILE = Path(__file__).parent / "data" / "compose-spec.json"


class SchemaError(NamedTuple):
    """One schema violation: where (`services`, `api`, `ports`, 0) and what."""

    path: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        return f"{format_path(self.path)}: {self.message}"


_SIMPLE_KEY = lazyre.compile(r"[A-Za-z0-9_-]+")


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
    if not errs:
        return []
    found: dict[SchemaError, tuple[str | int, ...]] = {}  # error -> where it sorts
    for lazy_path, message in errs:
        key = None
        if lazy_path is not None and type(lazy_path[1]) is _Key:
            lazy_path, key = lazy_path[0], lazy_path[1].key
        err = SchemaError(_flatten(lazy_path), message)
        if err not in found:
            found[err] = err.path if key is None else (*err.path, key)
    out = list(found)
    if len(out) > 1:
        out.sort(key=lambda err: _document_order(instance, found[err]))
    return out


def _document_order(instance: object, path: tuple[Any, ...]) -> list[int]:
    """Where `path` leads in `instance`, as positions: sorts errors the way the file reads."""
    order: list[int] = []
    node = instance
    for part in path:
        if isinstance(node, dict):
            for i, (key, value) in enumerate(node.items()):
                if key == part or (type(key) is not str and str(key) == part):
                    order.append(i)
                    node = value
                    break
            else:
                break
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            order.append(part)
            node = node[part]
        else:
            break
    return order


@cache
def load_schema() -> dict[str, Any]:
    """The compose-spec schema as parsed JSON (read once; shared, so do not modify it)."""
    from e2i_fix import datafiles

    return datafiles.load(SCHEMA_FILE.name)


@cache
def _root() -> _Check | None:
    return _Compiler(load_schema()).root()


@cache
def keys_judged_alone() -> bool:
    """Whether the document, its `services` and each service are judged key by key: their
    schemas say only which keys may appear and what each key's value must be (no `required`,
    no `oneOf` over several keys). Then a key's verdict depends on that key and its value
    alone, and a document with a few changed keys needs only those checked again."""
    root = load_schema()
    services = root.get("properties", {}).get("services")
    return (_one_key_at_a_time(root, root) and isinstance(services, dict) and _one_key_at_a_time(services, root)
            and all(_one_key_at_a_time(sub, root) for sub in services.get("patternProperties", {}).values()))


def _one_key_at_a_time(schema: object, root: dict[str, Any]) -> bool:
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or set(schema) - _IGNORED - _ONE_KEY:
        return False
    if schema.get("type", "object") != "object":
        return False
    if "$ref" in schema and not _one_key_at_a_time(_resolve(root, schema["$ref"], "#")[0], root):
        return False
    return all(_one_key_at_a_time(sub, root) for sub in schema.get("allOf", []))


def _resolve(root: dict[str, Any], ref: object, where: str) -> tuple[object, str]:
    """The subschema a local `$ref` points at."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise NotImplementedError(f"{where}: only local $refs are supported, not {ref!r}")
    target: object = root
    for raw in ref[1:].split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            raise NotImplementedError(f"{where}: $ref {ref!r} does not resolve")
    return target, ref


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


class _Key:
    """Last element of an error's lazy path that names an offending key: sorts, not shown."""

    __slots__ = ("key",)

    def __init__(self, key: object) -> None:
        self.key = key


def _extra_key(path: _Path, key: object) -> _Err:
    return ((path, _Key(key)), f"additional property {_short(key)} is not allowed")


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

_MAPPING_KEYWORDS = frozenset({"properties", "patternProperties", "additionalProperties"})
_ONE_KEY = _MAPPING_KEYWORDS | {"type", "unevaluatedProperties", "allOf", "$ref"}  # see keys_judged_alone
_OBJECT = frozenset({"object"})
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
    if isinstance(value, str):
        return ("string", str(value))
    if isinstance(value, bool):
        return ("bool", bool(value))
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
    """A compiled subschema.

    `check` is None if nothing can fail; `types` the JSON types it can accept (None: any);
    `leaf` means the type is all there is to check, so callers may test it inline.
    """

    __slots__ = ("check", "done", "leaf", "sources", "type_message", "type_names", "types")

    def __init__(self) -> None:
        self.check: _Check | None = None
        self.types: frozenset[str] | None = None
        self.type_names: tuple[str, ...] = ()
        self.type_message = ""
        self.leaf = False
        # set if the schema is nothing but `type: object` + properties/patternProperties/
        # additionalProperties: an allOf can then fold it into its own pass over the keys
        self.sources: tuple[tuple[dict[str, Any], str], ...] = ()
        self.done = False


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        _scan(root, "#")  # subschemas compile lazily, but unknown keywords must fail now
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


    def _sub(self, schema: object, where: str) -> _Node:
        """A subschema's node, usable even if it is still being compiled (a cycle)."""
        node = self.node(schema, where)
        if node.done:
            return node

        def late(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
            if node.check is not None:
                node.check(inst, path, errs, ev)

        proxy = _Node()
        proxy.check, proxy.done = late, True
        return proxy

    # -- keywords -----------------------------------------------------------------------------

    def _compile(self, node: _Node, schema: dict[str, Any], where: str) -> None:
        unknown = sorted(set(schema) - _SUPPORTED - _IGNORED)
        if unknown:
            raise NotImplementedError(f"{where}: unsupported JSON Schema keyword(s) {unknown}")
        checks: list[_Check] = []
        types: frozenset[str] | None = None
        ref_node = _Node()
        names: list[str] = []  # as the schema lists them, for messages

        if "type" in schema:
            declared = schema["type"]
            names = [declared] if isinstance(declared, str) else list(declared)
            if not names or not set(names) <= _TYPES:
                raise NotImplementedError(f"{where}/type: unsupported {schema['type']!r}")
            accepted = set(names)
            if "number" in accepted:
                accepted.add("integer")
            types = frozenset(accepted)
        if "$ref" in schema:
            target, ref = _resolve(self._root, schema["$ref"], where)
            ref_node = self._sub(target, ref)
            if types is None:
                types, names = ref_node.types, list(ref_node.type_names)
            if ref_node.check is not None and not (ref_node.leaf and types == ref_node.types):
                checks.append(ref_node.check)
        if "enum" in schema:
            checks.append(_enum(schema["enum"], where))
        if "pattern" in schema:
            checks.append(_pattern(schema["pattern"], where))
        for key in ("minimum", "maximum"):
            if key in schema:
                checks.append(_bound(schema[key], key == "minimum", where))
        if "required" in schema:
            checks.append(_required(schema["required"], where))
        # mapping keywords of this schema, and of pure-mapping allOf branches merged into it
        sources = [(schema, where)] if schema.keys() & _MAPPING_KEYWORDS else []
        if "allOf" in schema:
            branches = self._branches(schema, "allOf", where)
            if types is None:
                for b in branches:
                    if b.types is not None:
                        types = b.types if types is None else types & b.types
                names = [t for b in branches for t in b.type_names if types and t in types]
            for b in branches:
                if b.sources and types == _OBJECT:
                    sources.extend(b.sources)  # its own type check is implied by ours
                elif b.check is not None:
                    checks.append(b.check)
        if sources:
            checks.append(self._object(sources))
        if "items" in schema:
            item = self._sub(schema["items"], f"{where}/items")
            if item.check is not None:
                checks.append(_items(item))
        if schema.get("uniqueItems") is True:
            checks.append(_unique)
        elif schema.get("uniqueItems", False) is not False:
            raise NotImplementedError(f"{where}/uniqueItems: must be a boolean")
        for key in ("anyOf", "oneOf"):
            if key in schema:
                checks.append(_choice(self._branches(schema, key, where), key == "oneOf"))
        if "unevaluatedProperties" in schema:
            checks = [self._unevaluated(schema["unevaluatedProperties"], checks, where)]

        node.types = types
        node.type_names = tuple(dict.fromkeys(names))
        node.type_message = _type_message(node.type_names)
        node.leaf = types is not None and not checks
        node.check = _combine(types, node.type_message, checks)
        rest = schema.keys() - _IGNORED
        if types == _OBJECT and rest <= _MAPPING_KEYWORDS | {"type"}:
            node.sources = ((schema, where),)
        elif rest == {"$ref"} and ref_node.sources:
            node.sources = ref_node.sources

    def _branches(self, schema: dict[str, Any], key: str, where: str) -> list[_Node]:
        subs = schema[key]
        if not isinstance(subs, list) or not subs:
            raise NotImplementedError(f"{where}/{key}: must be a non-empty array")
        out = [self._sub(sub, f"{where}/{key}/{i}") for i, sub in enumerate(subs)]
        return out

    def _object(self, sources: list[tuple[dict[str, Any], str]]) -> _Check:
        """properties + patternProperties + additionalProperties, in one pass over the keys.

        `sources` are the schemas whose mapping keywords apply to the same instance: one
        schema and the pure-mapping branches of its allOf.
        """
        compiled = []
        for schema, where in sources:
            # compiled when a document first uses the property: most of the schema never is
            props: dict[str, object] = schema.get("properties", {})
            patterns: list[tuple[Callable[[str], object], _Node]] = [
                (_matcher(pat, where), self._sub(sub, f"{where}/patternProperties/{pat}"))
                for pat, sub in schema.get("patternProperties", {}).items()
            ]
            extra = schema.get("additionalProperties")  # None: absent, which evaluates nothing
            extra_node = None
            if extra is not None and not isinstance(extra, bool):
                extra_node = self._sub(extra, f"{where}/additionalProperties")
            compiled.append((props, patterns, extra, extra_node, where))

        # What to do with a key depends only on the key: work it out once per distinct key.
        # A plan: (forbidden, evaluated, types to test inline or None, their message, checks).
        _Plan = tuple[bool, bool, frozenset[str] | None, str, tuple[_Check, ...]]
        plans: dict[object, _Plan] = {}

        def plan(key: object) -> _Plan:
            nodes: list[_Node | None] = []
            forbidden = evaluated = False
            for props, patterns, extra, extra_node, where in compiled:
                seen = key in props
                if seen:
                    sub_schema = props[key]  # type: ignore[index]
                    nodes.append(self._sub(sub_schema, f"{where}/properties/{key}"))
                if isinstance(key, str):
                    for matches, sub in patterns:
                        if matches(key):
                            seen = True
                            nodes.append(sub)
                if seen:
                    evaluated = True
                elif extra is False:
                    forbidden = True
                elif extra is not None:
                    evaluated = True
                    nodes.append(extra_node)
            live = [n for n in nodes if n is not None and n.check is not None]
            found: _Plan
            if len(live) == 1 and live[0].leaf:
                found = (forbidden, evaluated, live[0].types, live[0].type_message, ())
            else:
                subs = tuple(n.check for n in live if n.check is not None)
                found = (forbidden, evaluated, None, "", subs)
            if len(plans) < _PLAN_CACHE_SIZE:
                plans[key] = found
            return found

        def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
            if not isinstance(inst, dict):
                return
            lookup, exact = plans.get, _EXACT_TYPE.get
            for key, value in inst.items():
                forbidden, evaluated, types, message, subs = lookup(key) or plan(key)
                if forbidden:
                    errs.append(_extra_key(path, key))
                if evaluated and ev is not None:
                    ev.add(key)
                if types is not None:
                    if exact(type(value)) not in types and _type_of(value) not in types:
                        at = (path, key if type(key) is str else str(key))
                        errs.append((at, _short(value) + message))
                elif subs:
                    at = (path, key if type(key) is str else str(key))
                    for sub in subs:
                        sub(value, at, errs, None)

        return check

    def _unevaluated(self, spec: object, checks: list[_Check], where: str) -> _Check:
        rest = None if isinstance(spec, bool) else self._sub(spec, f"{where}/unevaluated").check
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
                    errs.append(_extra_key(path, key))
                elif rest is not None:
                    rest(value, (path, key if type(key) is str else str(key)), errs, None)
            if ev is not None:
                ev.update(local if forbid else inst.keys())

        return check


def _scan(schema: object, where: str) -> None:
    """Raise NotImplementedError for a keyword anywhere in `schema` that is not supported."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise NotImplementedError(f"{where}: a schema must be an object or a boolean")
    unknown = sorted(set(schema) - _SUPPORTED - _IGNORED)
    if unknown:
        raise NotImplementedError(f"{where}: unsupported JSON Schema keyword(s) {unknown}")
    for key in ("properties", "patternProperties", "$defs", "definitions"):
        for name, sub in schema.get(key, {}).items():
            _scan(sub, f"{where}/{key}/{name}")
    for key in ("items", "additionalProperties", "unevaluatedProperties"):
        if key in schema:
            _scan(schema[key], f"{where}/{key}")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(key, ())):
            _scan(sub, f"{where}/{key}/{i}")


# --- keyword checks --------------------------------------------------------------------------


def _never(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
    errs.append((path, f"{_short(inst)} is not allowed here"))


def _type_message(names: tuple[str, ...]) -> str:
    if not names:
        return " is not allowed here"  # a schema that accepts no type at all
    shown = [t for t in names if not (t == "integer" and "number" in names)]
    return " is not of type " + ", ".join(repr(t) for t in shown)


def _combine(types: frozenset[str] | None, message: str, checks: list[_Check]) -> _Check | None:
    if types is None:
        if not checks:
            return None
        if len(checks) == 1:
            return checks[0]

        def all_of(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
            for c in checks:
                c(inst, path, errs, ev)

        return all_of

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


def _bound(limit: Any, lower: bool, where: str) -> _Check:
    if not _is_number(limit):
        raise NotImplementedError(f"{where}: minimum/maximum must be a number")
    message = f" is {'less than the minimum' if lower else 'more than the maximum'} of {limit!r}"

    def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
        if _is_number(inst) and (inst < limit if lower else inst > limit):
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


def _items(item: _Node) -> _Check:
    sub = item.check
    assert sub is not None
    types, message = item.types, item.type_message
    if item.leaf and types is not None:

        def typed_items(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
            if isinstance(inst, list):
                for i, value in enumerate(inst):
                    if _EXACT_TYPE.get(type(value)) not in types and _type_of(value) not in types:
                        errs.append(((path, i), _short(value) + message))

        return typed_items

    def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
        if isinstance(inst, list):
            for i, value in enumerate(inst):
                sub(value, (path, i), errs, None)

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
    """anyOf (one=False) / oneOf (one=True).

    A branch whose `type` rejects the value fails without being run, and without a report.
    """
    indexed = list(enumerate(branches))
    untyped = [(i, b) for i, b in indexed if b.types is None]
    by_type = {t: [(i, b) for i, b in indexed if b.types is None or t in b.types] for t in _TYPES}
    # reported when every branch rejects the value's type, so every branch has a type
    type_message = _type_message(tuple(dict.fromkeys(t for b in branches for t in b.type_names)))

    def check(inst: Any, path: _Path, errs: list[_Err], ev: set[Any] | None) -> None:
        name = _EXACT_TYPE.get(type(inst))
        if name is None:
            name = _type_of(inst)
        candidates = by_type.get(name, untyped)
        if len(candidates) == 1:  # the usual case: the type picks the branch
            b = candidates[0][1]
            if b.check is None or b.leaf:
                return
            if ev is None:
                b.check(inst, path, errs, None)
            else:
                before, local = len(errs), set[Any]()
                b.check(inst, path, errs, local)
                if len(errs) == before:
                    ev.update(local)
            return
        if not candidates:
            errs.append((path, _short(inst) + type_message))
            return
        passed: list[int] = []
        failed: list[list[_Err]] = []
        for i, b in candidates:
            if b.check is None or b.leaf:
                passed.append(i)  # the type was all there was to it: no annotation either
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
            if one and len(passed) > 1:
                which = ", ".join(str(i) for i in passed)
                errs.append((path, f"{_short(inst)} is valid under oneOf branches {which}"))
                return
            if passed and ev is None and not one:
                return  # anyOf: one success is enough when nobody needs the annotations
        if passed:
            return
        fewest = min(len(e) for e in failed)
        best = [e for e in failed if len(e) == fewest]
        if len(best) > 1 and all(p is path for e in best for p, _ in e):
            # several branches fail right here (e.g. a different `required` each): one line
            errs.append((path, " or ".join("; ".join(m for _, m in e) for e in best)))
        else:
            errs.extend(best[0])

    return check
