"""How the stack already writes what the passes add: log rotation, security options, lists.

A pass that adds a key which other services of the stack already have asks here first, and
writes the new one the same way: the same figures (`max-size: "512m"`, not the tool's 10m),
the same form (a block under each service, or an alias of the file's own anchor), the same
quoting, spelling and key order. Configuration still overrides a figure; the form and the
quoting stay the stack's.

What a file writes comes first: a file's services are read as its authors wrote them (an
override file that spells out its logging inline gets inline blocks, even where the base file
aliases an anchor it cannot reach). A file that writes none of it follows the rest of the
stack, and a stack that writes none follows the pass's own defaults.

The reading is made once per index, when a pass first asks; every decision is a majority
over the services (ties: the first written), so a second run, which reads what the first one
wrote, decides the same.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from e2i_fix import lazyre, render
from e2i_fix.project import Project
from e2i_fix.records import NamedTuple
from e2i_fix.render import Flow, Raw
from e2i_fix.yamldoc import (
    ComposeDoc, MappingNode, Node, ScalarNode, SequenceNode, _cached_plain, effective_entry, to_value,
)

__all__ = ["Conventions", "ListStyle", "Rotation", "read", "styled"]

_KEY = "_e2i_conventions"


class Rotation(NamedTuple):
    """A json-file log rotation as services of the stack write it."""

    value: dict[str, Any]  # the block, key order and scalars as written (`Raw` leaves)
    figures: dict[str, str]  # its options as strings: {"max-size": "512m", "max-file": "4"}
    anchor: str | None  # the anchor those services alias (`logging: *name`), if they do
    node: Node | None  # the anchored node, for where an alias may go (after it)
    services: int  # how many services write it so


class ListStyle(NamedTuple):
    """How the stack writes the short string lists of a service (`security_opt`, `cap_add`,
    `cap_drop`, `tmpfs`)."""

    flow: bool  # `[ALL]` rather than one `- ALL` per line
    quote: str  # the quote its items take where any would do: '"', "'" or "" (plain)


class Limits(NamedTuple):
    """How the stack's services write their resource limits."""

    legacy: bool  # `mem_limit` / `cpus` / `mem_reservation` rather than `deploy.resources`
    cpus: bool  # some service limits CPUs (else the stack limits memory only)
    reserves_memory: bool  # some service reserves memory
    reserves_cpus: bool  # some service reserves CPUs
    anchored: bool  # its `resources` blocks are shared through anchors or merged blocks
    memory: Raw | None  # a memory figure as written (`300M`, `"1G"`, `512mb`), for the style
    cpu: Raw | None  # a CPU figure as written (`0.5`, `"1"`)


class _Seen(NamedTuple):
    doc: ComposeDoc
    key: Any  # what is compared: equal keys are one way of writing it
    order: int  # where it was written (document order over the stack)


class Conventions:
    """One reading of the stack's ways; passes ask it per file."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._rotations: list[tuple[_Seen, Rotation]] = []
        self._lists: list[_Seen] = []
        self._nnp: list[_Seen] = []
        self._orders: dict[tuple[str, str], list[_Seen]] = {}
        self._limits: list[tuple[_Seen, dict[str, Any]]] = []
        # What passes asked, by question and file: every service of a file asks the same. (The
        # file is kept with its answer: an id is the file's only while the file lives.)
        self._asked: dict[tuple[str, int], tuple[ComposeDoc, Any]] = {}
        self._read()

    # --- what the passes ask ----------------------------------------------------------------

    def _answer(self, question: str, doc: ComposeDoc, work: Callable[[ComposeDoc], Any]) -> Any:
        got = self._asked.get((question, id(doc)))
        if got is None or got[0] is not doc:
            got = self._asked[(question, id(doc))] = (doc, work(doc))
        return got[1]

    def rotation(self, doc: ComposeDoc) -> Rotation | None:
        """The log rotation most services of `doc` have (an alias only if they alias it); else
        the stack's, as an inline block (an alias cannot reach another file's anchor)."""
        got: Rotation | None = self._answer("rotation", doc, self._rotation)
        return got

    def _rotation(self, doc: ComposeDoc) -> Rotation | None:
        got = _winner([(s, r) for s, r in self._rotations if s.doc is doc])
        if got is not None:
            return got
        got = _winner(self._rotations)
        return got._replace(anchor=None, node=None) if got is not None else None

    def list_style(self, doc: ComposeDoc) -> ListStyle | None:
        """How `doc` (else the stack) writes short string lists; None: it writes none."""
        got: ListStyle | None = self._answer("list_style", doc, self._list_style)
        return got

    def _list_style(self, doc: ComposeDoc) -> ListStyle | None:
        seen = [s for s in self._lists if s.doc is doc] or self._lists
        if not seen:
            return None
        flow = _majority(s.key[0] for s in seen)
        quotes = [s.key[1] for s in seen if s.key[1] is not None]
        return ListStyle(bool(flow), _majority(quotes) if quotes else "")

    def no_new_privileges(self, doc: ComposeDoc) -> str | None:
        """How `doc` (else the stack) spells the no-new-privileges option: `no-new-privileges:true`,
        `no-new-privileges=true` or `no-new-privileges`; None: nowhere yet."""
        got: str | None = self._answer("no_new_privileges", doc, self._no_new_privileges)
        return got

    def _no_new_privileges(self, doc: ComposeDoc) -> str | None:
        seen = [s for s in self._nnp if s.doc is doc] or self._nnp
        return str(_majority(s.key for s in seen)) if seen else None

    def first(self, doc: ComposeDoc, a: str, b: str) -> bool | None:
        """Whether services that write both `a` and `b` write `a` first (in `doc`, else in the
        stack); None: no service writes both."""
        seen = self._orders.get((a, b), [])
        seen = [s for s in seen if s.doc is doc] or seen
        return bool(_majority(s.key for s in seen)) if seen else None

    def limits(self, doc: ComposeDoc) -> Limits | None:
        """How `doc` (else the stack) writes resource limits; None: fewer than two services
        write limits or reservations."""
        got: Limits | None = self._answer("limits", doc, self._limits_of)
        return got

    def _limits_of(self, doc: ComposeDoc) -> Limits | None:
        seen = [r for s, r in self._limits if s.doc is doc]
        if len(seen) < 2:
            seen = [r for _, r in self._limits]
        if len(seen) < 2:
            return None  # one service is a choice for that service, not yet the stack's way
        mem = [r["memory"] for r in seen if r["memory"] is not None]
        cpu = [r["cpu"] for r in seen if r["cpu"] is not None]
        # Only services with limits say how limits are written, and whether CPUs are limited.
        limited = [r for r in seen if r["limited"]]
        return Limits(bool(_majority(r["legacy"] for r in limited)) if limited else False,
                      any(r["has_cpus"] for r in limited) if limited else True,
                      any(r["reserves_memory"] for r in seen), any(r["reserves_cpus"] for r in seen),
                      any(r["anchored"] for r in seen), _by_style(mem), _by_style(cpu))

    def reserves(self, doc: ComposeDoc) -> tuple[bool, bool]:
        """Whether `doc`'s services (else, where none of them writes limits or reservations,
        the stack's) reserve memory, and CPUs: `deploy.resources.reservations`, or
        `mem_reservation`. One service that does is enough: reservations are then the stack's
        way, and its other services get them too."""
        seen = [r for s, r in self._limits if s.doc is doc] or [r for _, r in self._limits]
        return any(r["reserves_memory"] for r in seen), any(r["reserves_cpus"] for r in seen)

    def size(self, doc: ComposeDoc, value: str) -> Any:
        """A memory figure (`512M`) written as the stack writes its own (`512m`, `"512M"`,
        `512mb`); the figure itself where the stack writes none."""
        lim = self.limits(doc)
        like = lim.memory if lim is not None else None
        if like is None:
            return value
        written = like.text.strip("'\"")
        unit = written.lstrip("0123456789.")
        if unit[:1].islower():
            value = value.lower()
        if unit[1:2].lower() == "b" and value[-1:].isalpha():
            value += "b" if unit[1:2] == "b" else "B"
        return styled(value, _quote_of(like), doc, like)

    def cpus(self, doc: ComposeDoc, value: str) -> Any:
        """A CPU figure (`0.5`) written as the stack writes its own (`0.5`, `"0.5"`, `'0.5'`)."""
        lim = self.limits(doc)
        like = lim.cpu if lim is not None else None
        return value if like is None else styled(value, _quote_of(like), doc, like)

    def items(self, doc: ComposeDoc, values: Iterable[str]) -> list[Any] | Flow:
        """`values` as a new list of the file's: each item quoted as its lists' items are, on
        one line if they are written so."""
        style = self.list_style(doc)
        out: list[Any] = list(values)
        if style is None:
            return out
        out = [styled(v, style.quote, doc) for v in out]
        return Flow(out) if style.flow else out

    # --- the reading ------------------------------------------------------------------------

    def _read(self) -> None:
        order = 0
        for doc in self.project.docs:
            svcs = doc.node("services")
            if not isinstance(svcs, MappingNode):
                continue
            for k, node in svcs.value:
                if not isinstance(k, ScalarNode) or k.value == "<<" or not isinstance(node, MappingNode):
                    continue
                if node.start_mark.index < k.end_mark.index:
                    continue  # `web: *other`: read where it is written
                order += 1
                self._read_service(doc, node, order)

    def _read_service(self, doc: ComposeDoc, node: MappingNode, order: int) -> None:
        got = _limits(doc, node)
        if got is not None:
            self._limits.append((_Seen(doc, None, order), got))
        rot = _rotation(doc, node)
        if rot is not None:
            self._rotations.append((_Seen(doc, (rot.anchor, repr(rot.value)), order), rot))
        keys: list[str] = []
        for k, v in node.value:
            if not isinstance(k, ScalarNode):
                continue
            keys.append(k.value)
            if k.value not in _LISTS or not isinstance(v, SequenceNode) or not v.value:
                continue
            if doc.is_alias(v, doc.key_end(k)):
                continue
            quotes = [i.style or "" for i in v.value
                      if isinstance(i, ScalarNode) and isinstance(i.value, str) and _free(i.value)]
            self._lists.append(_Seen(doc, (bool(v.flow_style), _majority(quotes) if quotes else None), order))
            if k.value == "security_opt":
                for i in v.value:
                    if isinstance(i, ScalarNode) and i.value.strip().lower().startswith("no-new-privileges"):
                        self._nnp.append(_Seen(doc, i.value.strip(), order))
        for a, b in _PAIRS:
            if a in keys and b in keys:
                self._orders.setdefault((a, b), []).append(_Seen(doc, keys.index(a) < keys.index(b), order))


# The service keys whose lists tell how the stack writes a new one, and the pairs of keys the
# passes add together, whose order the stack may have a habit of.
_LISTS = frozenset({"security_opt", "cap_add", "cap_drop", "tmpfs"})
_PAIRS = (("cap_drop", "cap_add"), ("read_only", "tmpfs"))


def read(project: Project) -> Conventions:
    """The stack's conventions, read on first use and kept with the index."""
    got: Conventions | None = project.__dict__.get(_KEY)
    if got is None:
        got = project.__dict__[_KEY] = Conventions(project)
    return got


def _winner(seen: list[tuple[_Seen, Rotation]]) -> Rotation | None:
    """The way most services write it; a tie goes to the one written first."""
    if not seen:
        return None
    counts = Counter(s.key for s, _ in seen)
    first: dict[Any, tuple[int, Rotation]] = {}
    for s, r in seen:
        first.setdefault(s.key, (s.order, r))
    key = max(counts, key=lambda k: (counts[k], -first[k][0]))
    return first[key][1]._replace(services=counts[key])


def _majority(values: Iterable[Any]) -> Any:
    """The most frequent value; a tie goes to the one seen first."""
    counts: dict[Any, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return max(counts, key=counts.__getitem__)  # max keeps the first of equal counts, in order seen


def _free(s: str) -> bool:
    """Whether the string could go out plain or quoted alike: the item's quotes are a choice."""
    return render._plain_ok(s)


def _by_style(raws: list[Raw]) -> Raw | None:
    """The figure written in the most common style (quotes; unit case and a `b`)."""
    if not raws:
        return None

    def style(r: Raw) -> tuple[str, str]:
        return _quote_of(r), r.text.strip("'\"").lstrip("0123456789.")[:2]

    counts = Counter(style(r) for r in raws)
    top = max(counts, key=lambda k: (counts[k], -[style(r) for r in raws].index(k)))
    return next(r for r in raws if style(r) == top)


# --- resource limits ------------------------------------------------------------------------


def _limits(doc: ComposeDoc, service: MappingNode) -> dict[str, Any] | None:
    """What a service definition writes about its limits and reservations (its own keys, or
    those of a block it merges), None where it writes none."""

    def entry(node: Node | None, key: str) -> tuple[Node, bool] | None:
        got = effective_entry(node, key) if node is not None else None
        if got is None:
            return None
        holder, k, v = got
        return v, holder is not node or doc.is_alias(v, doc.key_end(k))

    dep = entry(service, "deploy")
    res = entry(dep[0], "resources") if dep else None
    anchored = bool(dep and dep[1]) or bool(res and res[1])
    lim = entry(res[0], "limits") if res else None
    rsv = entry(res[0], "reservations") if res else None
    mem = entry(lim[0], "memory") if lim else None
    cpu = entry(lim[0], "cpus") if lim else None
    r_mem = entry(rsv[0], "memory") if rsv else None
    r_cpu = entry(rsv[0], "cpus") if rsv else None
    legacy_mem, legacy_cpu, legacy_rsv = (entry(service, k) for k in ("mem_limit", "cpus", "mem_reservation"))
    if not any((mem, cpu, r_mem, r_cpu, legacy_mem, legacy_cpu, legacy_rsv)):
        return None
    return {
        "limited": bool(mem or cpu or legacy_mem or legacy_cpu),
        "legacy": not any((mem, cpu, r_mem, r_cpu)),
        "has_cpus": bool(cpu or legacy_cpu),
        "reserves_memory": bool(r_mem or legacy_rsv),
        "reserves_cpus": bool(r_cpu),
        "anchored": anchored,
        "memory": _figure(doc, (mem or legacy_mem or r_mem or legacy_rsv or (None, False))[0]),
        "cpu": _figure(doc, (cpu or legacy_cpu or (None, False))[0]),
    }


def _figure(doc: ComposeDoc, node: Node | None) -> Raw | None:
    """A figure as written, where it is one (not `${MEM_LIMIT}`)."""
    if not isinstance(node, ScalarNode):
        return None
    got = _raw(doc, node)
    if not isinstance(got, Raw) or "$" in got.text or not got.text.strip("'\"")[:1].isdigit():
        return None
    return got


# --- log rotation ---------------------------------------------------------------------------


def _rotation(doc: ComposeDoc, service: MappingNode) -> Rotation | None:
    """The json-file rotation a service definition has (its own `logging`, or one it merges
    from a block of the same file), as written."""
    got = effective_entry(service, "logging")
    if got is None:
        return None
    holder, key, node = got
    after = doc.key_end(key)
    if doc.is_alias(node, after):
        anchor: str | None = doc.alias_span(after)[2]
    else:  # written here; anchored (`logging: &logging`), it is what the aliases share
        anchor = doc.anchor(node)
    if not isinstance(node, MappingNode) or node.flow_style:
        return None
    cfg = to_value(node)
    if not isinstance(cfg, dict) or cfg.get("driver", "json-file") != "json-file":
        return None
    opts = cfg.get("options")
    if not isinstance(opts, dict) or "max-size" not in opts:
        return None
    value = _raw(doc, node)
    if not isinstance(value, dict):
        return None
    figures = {str(k): str(v) for k, v in opts.items() if k in ("max-size", "max-file")}
    return Rotation(value, figures, anchor, node if anchor else None, 1)


def _raw(doc: ComposeDoc, node: Node) -> Any:
    """The value of `node` with every one-line scalar as written (`Raw`); None where it holds
    something that cannot be copied (an alias, a multi-line scalar, a tag)."""
    text = doc.text
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for k, v in node.value:
            if not isinstance(k, ScalarNode) or k.value == "<<" or doc.is_alias(v, doc.key_end(k)):
                return None
            got = _raw(doc, v)
            if got is None:
                return None
            out[k.value] = got
        return out
    if isinstance(node, ScalarNode):
        written = text[node.start_mark.index : node.end_mark.index]
        if "\n" in written or written.startswith(("&", "!", "|", ">")) or node.tag not in ("?", "!"):
            return None
        return Raw(written)
    return None


def with_figures(rotation: Rotation, figures: Mapping[str, str | None], doc: ComposeDoc) -> dict[str, Any]:
    """The stack's rotation block with other figures, each written as the figure it replaces
    (a figure it lacks goes last, in the file's quoting)."""
    value = dict(rotation.value)
    opts = dict(value.get("options") or {})
    for k, v in figures.items():
        if v is None or rotation.figures.get(k) == str(v):
            continue
        like = opts.get(k)
        opts[k] = styled(str(v), _quote_of(like) if isinstance(like, Raw) else doc.style.quote, doc, like)
    value["options"] = opts
    return value


def _quote_of(raw: Raw) -> str:
    return raw.text[0] if raw.text[:1] in ("'", '"') else ""


def styled(value: str, quote: str, doc: ComposeDoc, like: Raw | None = None) -> Raw:
    """`value` as a scalar quoted with `quote` ("" for plain). Plain only where it reads back
    as what the stack's own plain scalar did (`10m` a string, `4` a number like the `3` it
    replaces); otherwise quoted in the file's quote character."""
    if quote in ("'", '"'):
        return Raw(render.quote(value, quote))
    if render._plain_ok(value):
        return Raw(value)
    if like is not None and not like.text.startswith(("'", '"')) and _FIGURE.fullmatch(value):
        old, new = _cached_plain(like.text), _cached_plain(value)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new))
        if (type(old) is type(new) and isinstance(new, str)) or (numbers and _DECIMAL.fullmatch(value)):
            return Raw(value)  # `512m` for `10m`, `4` for `3`: a string for a string, a number for a number
    return Raw(render.scalar(value, doc.style))


_FIGURE = lazyre.compile(r"[0-9][0-9A-Za-z.]*")  # `10m`, `4`, `1.5g`: plain in every YAML
_DECIMAL = lazyre.compile(r"[0-9]+(?:\.[0-9]+)?")  # a number that reads back as itself
