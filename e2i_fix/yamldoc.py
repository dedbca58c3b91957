"""Compose documents: libyaml's composer for positions, the text for edits.

The node tree comes from PyYAML's C composer (`CSafeLoader`): it is fast and its marks are
exact character offsets into the text we keep (BOM split off, CRLF kept). Nothing here ever
re-dumps a document; the tree only tells where things are.

An alias *is* its anchor's node: the composer hands back the same object, whose marks point
at the anchor. `span()` tells an alias use from the definition by position, because an
anchor always comes before its aliases.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from functools import cached_property
from typing import Any, Union

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from e2i_fix import lazyre
from e2i_fix.errors import InputError
from e2i_fix.records import NamedTuple
from e2i_fix.source import Source

__all__ = ["ComposeDoc", "MappingNode", "Node", "ScalarNode", "SequenceNode", "Style", "parse"]

MAX_EXPANDED = 1_000_000  # nodes after alias expansion: beyond this it is an alias bomb
MAX_DEPTH = 500

_MERGE = "<<"
_ALIAS_RE = lazyre.compile(r"\*([^\s,\[\]{}]+)")
_ANCHOR_RE = lazyre.compile(r"&([^\s,\[\]{}]+)")

Value = Union[None, bool, int, float, str, list["Value"], dict[str, "Value"]]


def parse(source: Source) -> MappingNode:
    """Compose `source.text` into a node tree and check what YAML alone does not."""
    text = source.text
    if not text.strip():
        raise InputError("empty file: a Compose file needs at least `services`")
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except (yaml.YAMLError, RecursionError) as e:
        raise _yaml_error(e, text) from None
    if root is None or _is_null(root):  # `---` alone, or `~`: a document with nothing in it
        raise InputError("empty file: a Compose file needs at least `services`")
    if not isinstance(root, MappingNode):
        raise _at(root, f"the top level is a {_kind(root)}, not a mapping")
    root.__dict__[_ANCHORS] = _check(root, text)
    _check_services(root)
    return root


def _yaml_error(e: Exception, text: str) -> InputError:
    if isinstance(e, RecursionError):
        return InputError("invalid YAML: nesting too deep")
    if not isinstance(e, yaml.MarkedYAMLError):
        return InputError(f"invalid YAML: {e}")
    mark = e.problem_mark or e.context_mark
    msg = " ".join(str(p) for p in (e.context, e.problem) if p)
    if e.problem and "another document" in e.problem and mark is not None:
        # Valid YAML that Compose merges; edits here would have to pick a document.
        return MultiDocument("a second YAML document (`---`): only single-document files are edited",
                             mark.line + 1, mark.column + 1)
    if mark is None:
        return InputError(f"invalid YAML: {msg}")
    if text[mark.index : mark.index + 1] == "\t":
        msg += " (a tab: YAML indents with spaces only)"
    return InputError(f"invalid YAML: {msg}", mark.line + 1, mark.column + 1)


class MultiDocument(InputError):
    """A file of several YAML documents: valid Compose (its documents merge in order), read by
    `parse_all` for what it means, never edited."""


def parse_all(source: Source) -> list[MappingNode]:
    """Every document of a multi-document file, each checked as `parse` checks one."""
    loader = _Loader(source.text)
    roots: list[MappingNode] = []
    try:
        while loader.check_node():
            root = loader.get_node()
            if root is None or _is_null(root):
                continue
            if not isinstance(root, MappingNode):
                raise _at(root, f"the top level is a {_kind(root)}, not a mapping")
            root.__dict__[_ANCHORS] = _check(root, source.text)
            _check_services(root)
            roots.append(root)
    except (yaml.YAMLError, RecursionError) as e:
        raise _yaml_error(e, source.text) from None
    finally:
        loader.dispose()
    if not roots:
        raise InputError("empty file: a Compose file needs at least `services`")
    return roots


_ANCHORS = "_e2i_anchors"
_PLAIN = "?"  # the tag of a plain scalar with no tag: resolved later, by `scalar_value`
_TAGS = {ScalarNode: _PLAIN, SequenceNode: "tag:yaml.org,2002:seq", MappingNode: "tag:yaml.org,2002:map"}


class _Loader(yaml.CSafeLoader):
    """libyaml's composer without PyYAML's YAML 1.1 resolver: Compose reads YAML 1.2, and the
    resolver's regexes were a third of the parse time. Quoted scalars get the tag `!`."""

    # The composer calls these around every node for path-based resolvers, which this loader
    # has none of: C builtins that take the same arguments and do nothing cost least.
    descend_resolver = staticmethod(slice)  # type: ignore[assignment]
    ascend_resolver = staticmethod(tuple)  # type: ignore[assignment]

    def resolve(self, kind: type, value: object, implicit: object) -> str:
        if kind is ScalarNode and implicit is not None and not implicit[0]:  # type: ignore[index]
            return "!"
        return _TAGS[kind]


def _check_services(root: MappingNode) -> None:
    """`services` must be a mapping of mappings, as Compose demands; a null service is left
    to Compose (an override file may name a service without changing it)."""
    for k, v in root.value:
        if type(k) is not ScalarNode or k.value != "services":
            continue
        if not isinstance(v, MappingNode) and v.tag != RESET:
            # A null `services:` has its empty scalar marked at the next token: point at the key.
            where = k if _is_null(v) else v
            raise _at(where, f"`services` is {_a(v)}, not a mapping")
        if v.tag in _MERGE_TAGS:
            continue
        for sk, sv in v.value:
            if sv.tag in _MERGE_TAGS:
                continue  # `backup: !reset null` drops a service; `!override` replaces it
            if not isinstance(sv, MappingNode) and not _is_null(sv) and not is_merge_key(sk):
                name = sk.value if isinstance(sk, ScalarNode) else "?"
                raise _at(sv, f"service {name!r} is {_a(sv)}, not a mapping")


# Compose's merge tags: `!reset` drops what the files before set (and the tagged node itself),
# `!override` replaces it instead of merging into it.
RESET = "!reset"
OVERRIDE = "!override"
_MERGE_TAGS = (RESET, OVERRIDE)

TagPath = tuple[Union[str, int], ...]


def merge_tags(root: Node, text: str) -> tuple[tuple[TagPath, str], ...]:
    """Where `!reset` and `!override` are written: (path, tag) pairs in document order, the path
    by mapping keys and sequence indexes from the top. Only a file whose text names a tag is
    walked, so the common case costs one substring search."""
    if RESET not in text and OVERRIDE not in text:
        return ()
    out: list[tuple[TagPath, str]] = []
    stack: list[tuple[Node, TagPath]] = [(root, ())]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node.tag in _MERGE_TAGS:
            out.append((path, node.tag))
            if node.tag == RESET:
                continue
        if type(node) is ScalarNode or id(node) in seen:
            continue
        seen.add(id(node))  # an alias is walked once, where it is first met
        if type(node) is MappingNode:
            for k, v in reversed(node.value):
                if type(k) is ScalarNode and not is_merge_key(k):
                    stack.append((v, (*path, k.value)))
        else:
            for i in reversed(range(len(node.value))):
                stack.append((node.value[i], (*path, i)))
    return tuple(out)


def without_tagged(value: Value, tags: tuple[tuple[TagPath, str], ...]) -> Value:
    """`value` as Compose reads the file: `!reset` nodes left out (a plain `!override` scalar
    already resolves as an untagged one). Copies only the containers on the way to a tagged node (the parse's values
    are shared)."""
    for path, tag in sorted(tags, key=lambda t: tuple(str(p) if isinstance(p, str) else f"{p:012d}" for p in t[0]),
                            reverse=True):  # later list items first: dropping one shifts the rest
        if not path:
            continue
        value = _cut_path(value, path, tag)
    return value


def _cut_path(value: Value, path: TagPath, tag: str) -> Value:
    head, rest = path[0], path[1:]
    found = (isinstance(value, dict) and isinstance(head, str) and head in value
             or isinstance(value, list) and isinstance(head, int) and head < len(value))
    if not found:
        return value
    out: Any = dict(value) if isinstance(value, dict) else list(value)  # type: ignore[arg-type]
    if rest:
        out[head] = _cut_path(out[head], rest, tag)
    elif tag == RESET:
        del out[head]
    return out  # type: ignore[no-any-return]


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and scalar_value(node) is None


def _a(node: Node) -> str:
    return "empty" if _is_null(node) else f"a {_kind(node)}"


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "mapping"
    if isinstance(node, SequenceNode):
        return "sequence"
    return "scalar"


def _at(node: Node, message: str) -> InputError:
    return InputError(message, node.start_mark.line + 1, node.start_mark.column + 1)


def _check(root: Node, text: str) -> list[tuple[int, Node]]:
    """One walk for what YAML alone does not check: duplicate keys, runaway depth, recursive
    aliases and alias bombs (each node's expanded size is counted once, never expanded).
    The same walk leaves each collection's plain value on it (see `to_value`) and returns the
    anchored nodes with their offsets.

    Recursion is bounded: libyaml refuses nesting past 1,000 levels and this walk stops at
    MAX_DEPTH, counting depth through aliases too. It runs on every node of every file, twice
    for a changed one: scalars are handled in the loops, not by a call each."""
    memo: dict[int, tuple[int, int]] = {}  # id -> (expanded size, height)
    active: set[int] = set()
    anchors: list[tuple[int, Node]] = []
    amps: set[int] = set()  # where an anchor may start: the composer does not say which nodes have one
    i = text.find("&")
    while i >= 0:
        amps.add(i)
        i = text.find("&", i + 1)
    plain = _PLAIN
    values = _SCALARS
    quotes: dict[str, int] = {}  # quoted scalars by quote character, for `measure_style`

    def scalar(n: ScalarNode) -> Value:
        v: str = n.value
        if n.style:
            quotes[n.style] = quotes.get(n.style, 0) + 1
            return v
        if n.tag != plain and n.tag != OVERRIDE:
            return v
        got = values.get(v, values)  # `_cached_plain` with its hit inlined: this runs per scalar
        return _cached_plain(v) if got is values else got

    def walk(n: Node, depth: int) -> tuple[int, int]:
        """A mapping or a sequence: (expanded size, height)."""
        if amps and n.start_mark.index in amps:
            anchors.append((n.start_mark.index, n))
        nid = id(n)
        got = memo.get(nid)
        if got is not None:
            if depth + got[1] > MAX_DEPTH:
                raise _at(n, f"nesting deeper than {MAX_DEPTH} levels")
            return got
        if depth >= MAX_DEPTH:
            raise _at(n, f"nesting deeper than {MAX_DEPTH} levels")
        if nid in active:
            raise _at(n, "recursive alias: an anchor refers to itself")
        active.add(nid)
        total, height = 1, 0
        value: Value
        # The plain value is built on the way back up; `to_value` reads it (one walk, not two).
        if type(n) is MappingNode:
            keys: dict[str, ScalarNode] = {}
            out: dict[str, Value] = {}
            merged: dict[str, Value] | None = None
            for k, v in n.value:
                if type(k) is ScalarNode:
                    key = k.value
                    if key in keys and key != _MERGE:
                        first = keys[key].start_mark.line + 1
                        raise _at(k, f"duplicate key {key!r} (first defined on line {first})")
                    keys[key] = k
                    if k.style:
                        quotes[k.style] = quotes.get(k.style, 0) + 1
                    if amps and k.start_mark.index in amps:
                        anchors.append((k.start_mark.index, k))
                    total += 1
                    if key == _MERGE and not k.style:
                        if type(v) is not ScalarNode:
                            size, h = walk(v, depth + 1)
                            total += size
                            if h > height:
                                height = h
                        merged = {} if merged is None else merged
                        for src in v.value if type(v) is SequenceNode else [v]:
                            sv = src.__dict__.get(_VALUE)
                            if isinstance(sv, dict):
                                for mk, mv in sv.items():
                                    merged.setdefault(mk, mv)
                        continue
                else:
                    size, h = walk(k, depth + 1)
                    total += size
                    if h > height:
                        height = h
                    key = repr(k.__dict__[_VALUE])  # complex keys are legal YAML; Compose never uses them
                if type(v) is ScalarNode:
                    if amps and v.start_mark.index in amps:
                        anchors.append((v.start_mark.index, v))
                    total += 1
                    out[key] = scalar(v)
                else:
                    size, h = walk(v, depth + 1)
                    total += size
                    if h > height:
                        height = h
                    out[key] = v.__dict__[_VALUE]
            if merged:
                for mk, mv in merged.items():
                    out.setdefault(mk, mv)
            value = out
        else:
            items: list[Value] = []
            for c in n.value:
                if type(c) is ScalarNode:
                    if amps and c.start_mark.index in amps:
                        anchors.append((c.start_mark.index, c))
                    total += 1
                    items.append(scalar(c))
                else:
                    size, h = walk(c, depth + 1)
                    total += size
                    if h > height:
                        height = h
                    items.append(c.__dict__[_VALUE])
            value = items
        n.__dict__[_VALUE] = value
        active.discard(nid)
        if total > MAX_EXPANDED:
            raise _at(n, f"aliases expand to more than {MAX_EXPANDED:,} nodes (alias bomb)")
        memo[nid] = got = (total, height + 1)
        return got

    try:
        if type(root) is ScalarNode:
            if amps and root.start_mark.index in amps:
                anchors.append((root.start_mark.index, root))
        else:
            walk(root, 0)
    except RecursionError:  # only under a caller already deep in its own stack
        raise _at(root, f"nesting deeper than {MAX_DEPTH} levels") from None
    finally:
        # A recursive closure refers to itself: a reference cycle that would keep the whole
        # tree alive until the cyclic GC, which the command line pauses. Break it.
        del walk, scalar
    root.__dict__[_QUOTES] = quotes
    return anchors


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


# --- plain values ---------------------------------------------------------------------------

_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INT = lazyre.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = lazyre.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
_STD = "tag:yaml.org,2002:"


def scalar_value(node: ScalarNode) -> Value:
    """Resolve a scalar the way Compose (YAML 1.2 core schema) does, not PyYAML's YAML 1.1."""
    v: str = node.value
    if node.tag != _PLAIN and node.tag != OVERRIDE or node.style:
        return v  # quoted, or an explicit tag such as `!!str` or Compose's `!reset`
    return _cached_plain(v)


# Plain scalar text -> value. Compose files say `unless-stopped`, `true` and `json-file` over and
# over; resolving each text once saves the regexes. Values are immutable, so sharing is safe.
_SCALARS: dict[str, Value] = {}
_SCALARS_MAX = 100_000


def _cached_plain(v: str) -> Value:
    got = _SCALARS.get(v, _SCALARS)
    if got is _SCALARS:
        got = _plain_value(v)
        if len(_SCALARS) < _SCALARS_MAX:
            _SCALARS[v] = got
    return got


def _plain_value(v: str) -> Value:
    if v in _NULL:
        return None
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    if _INT.fullmatch(v):
        if v.startswith("0o"):
            return int(v[2:], 8)
        return int(v, 0) if v.startswith("0x") else int(v)
    if _FLOAT.fullmatch(v):
        return float(v.replace("inf", "Inf").replace("INF", "Inf").lower())
    return v


# Node trees never change after parsing (edits make new text and a new tree), so what is derived
# from a node is kept on it: every pass asking for a value pays for it once.
_VALUE = "_e2i_value"
_QUOTES = "_e2i_quotes"
_MERGES = "_e2i_merges"


def to_value(node: Node) -> Value:
    """The plain value of a node, merge keys resolved. Shared nodes stay shared (no blow-up).

    The result is shared and cached: callers must not mutate it."""
    if type(node) is ScalarNode:
        return scalar_value(node)
    cached = node.__dict__.get(_VALUE, _VALUE)
    if cached is not _VALUE:
        return cached  # type: ignore[no-any-return]

    # Parsing leaves a value on every collection; a tree built some other way gets the same walk.
    _check(node, "")
    return node.__dict__[_VALUE]  # type: ignore[no-any-return]


def is_merge_key(k: Node) -> bool:
    return type(k) is ScalarNode and k.value == _MERGE and not k.style


def merge_sources(node: Node) -> tuple[Node, ...]:
    """The mappings `node` pulls in through `<<` merge keys, transitively, in precedence order."""
    if type(node) is not MappingNode:
        return ()
    d = node.__dict__
    cached = d.get(_MERGES)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    out: list[Node] = []
    for k, v in node.value:
        if is_merge_key(k):
            for src in v.value if type(v) is SequenceNode else [v]:
                out.append(src)
                out.extend(merge_sources(src))
    d[_MERGES] = result = tuple(out)
    return result


def effective_entry(mapping: Node, key: str) -> tuple[MappingNode, ScalarNode, Node] | None:
    """Where a mapping gets `key` from, as a merge-resolving loader sees it: its own entry,
    else the first merge source that has one. Returns (the mapping that holds it, key, value)."""
    if not isinstance(mapping, MappingNode):
        return None
    for k, v in mapping.value:
        if isinstance(k, ScalarNode) and k.value == key and not is_merge_key(k):
            return mapping, k, v
    for k, v in mapping.value:
        if is_merge_key(k):
            for src in v.value if isinstance(v, SequenceNode) else [v]:
                got = effective_entry(src, key)
                if got is not None:
                    return got
    return None


# --- the document ---------------------------------------------------------------------------


class Style(NamedTuple):
    """How the file is written, measured so inserted YAML looks like the user wrote it."""

    indent: int = 2  # mapping indent
    seq_offset: int = 2  # dash column minus parent key column (0: `key:\n- a`)
    quote: str = '"'
    newline: str = "\n"


class ComposeDoc:
    def __init__(self, source: Source, root: MappingNode, readonly: bool = False) -> None:
        self.source = source
        self.root = root
        self.readonly = readonly
        # Why the file is read but never edited, where Compose reads more than the tool edits
        # (a second YAML document): (message, line, col), reported once as a finding.
        self.notice: tuple[str, int, int] | None = None
        self.roots: tuple[MappingNode, ...] = (root,)  # every document, where a file has several

    def __repr__(self) -> str:
        return f"ComposeDoc({self.source.path!r})"

    @property
    def path(self) -> Any:
        return self.source.path

    @property
    def text(self) -> str:
        return self.source.text

    @cached_property
    def value(self) -> dict[str, Value]:
        """The file's plain value as Compose reads it alone: merge keys resolved, `!reset`
        nodes left out. Shared: do not modify it."""
        v = to_value(self.root)
        if self.tags:
            v = without_tagged(v, self.tags)
        assert isinstance(v, dict)
        return v

    @cached_property
    def tags(self) -> tuple[tuple[TagPath, str], ...]:
        """Where the file writes `!reset` / `!override`: (path, tag), in document order."""
        return merge_tags(self.root, self.text)

    def get(self, mapping: Node | None, key: str) -> tuple[ScalarNode, Node] | None:
        """The own (not merged) entry `key` of a mapping node."""
        if not isinstance(mapping, MappingNode):
            return None
        for k, v in mapping.value:
            if isinstance(k, ScalarNode) and k.value == key:
                return k, v
        return None

    def node(self, *path: str) -> Node | None:
        n: Node | None = self.root
        for key in path:
            kv = self.get(n, key)
            if kv is None:
                return None
            n = kv[1]
        return n

    def is_alias(self, node: Node, after: int) -> bool:
        """Whether `node`, found in the tree at a place that starts at `after`, is an alias use."""
        return node.start_mark.index < after

    def alias_span(self, after: int) -> tuple[int, int, str]:
        """Span and name of the first `*alias` token at or after `after`."""
        m = _ALIAS_RE.search(self.text, after)
        if m is None:  # pragma: no cover - the tree said there is one
            raise ValueError("no alias token")
        return m.start(), m.end(), m.group(1)

    def anchor(self, node: Node) -> str | None:
        """The anchor name defined on `node`, if any (marks include `&name`)."""
        m = _ANCHOR_RE.match(self.text, node.start_mark.index)
        return m.group(1) if m else None

    def anchors(self) -> list[tuple[str, Node]]:
        """Every anchored node with its name, in document order (definitions only)."""
        return self._anchors

    @cached_property
    def _anchors(self) -> list[tuple[str, Node]]:
        found = self.root.__dict__.get(_ANCHORS, [])
        out = []
        seen: set[int] = set()
        for _, n in sorted(found, key=lambda t: t[0]):
            name = self.anchor(n)
            if name and id(n) not in seen:  # an aliased node is visited once per use
                seen.add(id(n))
                out.append((name, n))
        return out

    @cached_property
    def style(self) -> Style:
        return measure_style(self)

    # --- where things end -----------------------------------------------------------------

    def content_end(self, node: Node, after: int) -> int:
        """Offset just past the last character that belongs to `node` (no trailing comments).

        `after` is where the node's place in the tree starts (the end of its key, or of the
        previous item); it tells an alias use from its anchor.
        """
        text = self.text
        if self.is_alias(node, after):
            return self.alias_span(after)[1]
        if isinstance(node, ScalarNode):
            if node.style in ("|", ">"):
                header = text[node.start_mark.index : text.find("\n", node.start_mark.index)]
                if "+" in header:
                    return node.end_mark.index  # keep-chomping: trailing blank lines are content
                end = node.end_mark.index  # trailing blank lines are not content (no copy of the text)
                while end > 0 and text[end - 1].isspace():
                    end -= 1
                return end
            if node.value == "" and not node.style:
                return after  # `key:` with no value: the tree puts the empty scalar later
            return node.end_mark.index
        if isinstance(node, (MappingNode, SequenceNode)) and node.flow_style:
            return node.end_mark.index
        if isinstance(node, MappingNode):
            if not node.value:
                return node.start_mark.index
            k, v = node.value[-1]
            return self.content_end(v, self.key_end(k))
        assert isinstance(node, SequenceNode)
        if not node.value:
            return node.start_mark.index
        prev = node.value[-2].end_mark.index if len(node.value) > 1 else node.start_mark.index
        last = node.value[-1]
        return self.content_end(last, prev if last.start_mark.index >= prev else self.dash_after(prev))

    def dash_after(self, pos: int) -> int:
        return self.text.find("-", pos)

    def key_end(self, key: Node) -> int:
        """Offset just past the `:` that follows a mapping key."""
        i = key.end_mark.index
        text = self.text
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == ":":
            return i + 1
        return key.end_mark.index

    def line_after(self, pos: int) -> int:
        """Start of the line after the one holding `pos - 1`; `len(text)` at the end."""
        if pos > 0 and self.text[pos - 1] == "\n":
            return pos
        nl = self.text.find("\n", pos)
        return len(self.text) if nl < 0 else nl + 1

    def line_start(self, pos: int) -> int:
        return self.text.rfind("\n", 0, pos) + 1


_SAMPLES = 64  # enough to out-vote a few odd places, few enough to be quick on big files


def measure_style(doc: ComposeDoc) -> Style:
    """The most common mapping indent and sequence dash offset, sampled breadth-first from the
    top (the services' own nesting first), and the most common quote character (the parse
    counted them)."""
    indents: Counter[int] = Counter()
    offsets: Counter[int] = Counter()
    seen: set[int] = set()
    queue: list[Node] = [doc.root]
    text = doc.text
    shapes = 0
    for n in queue:  # breadth-first over the collections: the list grows as it is read
        if shapes >= _SAMPLES:
            break
        if id(n) in seen:
            continue
        seen.add(id(n))
        if not isinstance(n, MappingNode):
            queue.extend(c for c in n.value if type(c) is not ScalarNode)
            continue
        for k, v in n.value:
            if type(v) is ScalarNode:
                continue
            queue.append(v)
            if n.flow_style or v.flow_style or not v.value or v.start_mark.index < k.end_mark.index:
                continue  # flow style, empty, or an alias
            if type(v) is MappingNode:
                ck = v.value[0][0]
                if ck.start_mark.line > k.start_mark.line:
                    indents[ck.start_mark.column - k.start_mark.column] += 1
                    shapes += 1
            else:
                first = v.value[0]
                if first.start_mark.line > k.start_mark.line:
                    dash = text.rfind("-", 0, first.start_mark.index)
                    offsets[dash - doc.line_start(dash) - k.start_mark.column] += 1
                    shapes += 1
    indent = next((i for i, _ in indents.most_common() if i > 0), 2)
    offset = next((o for o, _ in offsets.most_common() if o >= 0), indent)
    quotes: dict[str, int] = doc.root.__dict__.get(_QUOTES) or {}
    single, double = quotes.get("'", 0), quotes.get('"', 0)
    quote = "'" if single > double else '"'
    return Style(indent, offset, quote, doc.source.newline)


def position(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1
