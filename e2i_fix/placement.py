"""Where a key that several services need goes: once into the service template they share.

A pass that adds a service key (`logging`, `deploy.resources`, `security_opt`...) says what each
service should get and calls `add_key`; it gets back one `Fix` per service. Where services
merge one *service template* and would all get the same value, the key is written once, in the
template, as the stack's authors would write it:

- a service template is an anchored block mapping that defines what a service runs (it has
  `image` or `build`, its own or merged) and that service definitions merge at their top level
  (`<<: *x`, `<<: [*x, *y]`), or the definition of a service that other services `extend`. It
  is the value of a top-level key (`x-app: &app`) or one level inside an `x-` block
  (`x-shared: {app: &app ...}`).
  Single-purpose fragments (`x-restart-policy: &restart_policy` with only `restart:`) are not;
- the template gets the key only when neither it nor anything it merges sets it, with the value
  most of the services it reaches need; a service needing another value gets its own key, which
  overrides the merged one;
- the template is used only when the merged meaning of every service it reaches, through merge
  keys, aliases, `extends` and override files, is the meaning the per-service edits would have
  given (a template shared with a service the pass leaves alone, an override that changes the
  key, a use of the anchor the index cannot follow: per service).

Every fix of services served by one template carries the same edits (the template's and the
overrides' of the services it reaches): the engine applies a shared edit once, so the diff shows
one edit while each service still has its finding. `changes` names every service the edits reach.
`placement = "per-service"` in the configuration turns templates off.

A pass uses it like this (its `options` carry the configuration's choice)::

    needs = {svc.name: Need(["ALL"], f"service {svc.name!r} keeps every capability: drop them")
             for svc in targets(project, ID, options) if "cap_drop" not in svc.config}
    yield from placement.add_key(project, ID, "cap_drop", needs, options, SAFETY)

and for a nested key, `add_key(project, ID, ("deploy", "resources"), needs, options)` with each
need's value the mapping that goes under `resources`. A pass whose values name a new anchor
(`Alias("default-logging")`) passes `support`, which returns the anchor block for each file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from e2i_fix import yamledit
from e2i_fix.fix import Edit, Fix, ModelPath, Safety
from e2i_fix.project import Project, Service, ServiceDef
from e2i_fix.records import NamedTuple
from e2i_fix.render import Alias, Anchored, Flow
from e2i_fix.yamldoc import (
    _ALIAS_RE, ComposeDoc, MappingNode, Node, ScalarNode, SequenceNode, is_merge_key, merge_sources, position,
)

__all__ = ["Need", "Support", "add_key", "top_paths"]

PER_SERVICE = "per-service"  # the configuration's `placement` values (config.PLACEMENTS)
TEMPLATE = "template"


class Need(NamedTuple):
    """What one service should get at the pass's path, and what its finding says."""

    value: Any  # rendered with `render`: plain values, `Alias`, `Anchored`
    message: str  # the finding when the key is added, e.g. "service 'web' has no log rotation: ..."
    blocked: str = ""  # the finding when its mapping cannot be edited (default: message + why)
    provenance: tuple[tuple[str, str], ...] = ()


# Given a file and where new values go in it ((offset, value) pairs), the edits every fix in that
# file needs besides its own (an anchor block its aliases name) and the model paths they change.
Support = Callable[[ComposeDoc, list[tuple[int, Any]]], tuple[tuple[Edit, ...], tuple[ModelPath, ...]]]

# What a definition's value at the key resolves to, symbolically: ("cur", id of the node that
# holds it now), ("new", rendered value), ("merge", a, b) for `extends` and override files, or
# None. Equal tokens mean equal values; unequal ones may still be equal, which only costs a
# template that could have been used.
Token = Any


class _Target:
    __slots__ = ("svc", "need", "full", "token", "home", "edits", "bundle", "via", "through")

    def __init__(self, svc: Service, need: Need, full: Any) -> None:
        self.svc = svc
        self.need = need
        self.full = full  # the value at path[0]
        self.token: Token = ("new", repr(full), _idempotent(full))
        self.home: ServiceDef | None = None
        self.edits: tuple[Edit, ...] = ()  # its own edit, when it has one
        self.bundle: _Bundle | None = None
        self.via: tuple[str, int] | None = None  # the template that serves it, and how many
        self.through: str | None = None  # the service it extends, whose own edit serves it


class _Bundle:
    """Edits that are applied together, and what they reach."""

    __slots__ = ("edits", "uses", "nodes", "reached", "tops")

    def __init__(self) -> None:
        self.edits: list[Edit] = []
        self.nodes: list[int] = []  # the mappings that get a value
        self.uses: list[tuple[Any, int, Any]] = []  # (file, offset, value) of each new value
        self.reached: list[str] = []
        self.tops: list[ModelPath] = []

    def add(self, edits: Sequence[Edit], value: Any) -> None:
        self.edits.extend(edits)
        self.uses.extend((e.path, e.start, value) for e in edits)


def add_key(project: Project, pass_id: str, path: str | Sequence[str], needs: Mapping[str, Need],
            options: Mapping[str, Any], safety: Safety = Safety.SAFE, support: Support | None = None,
            indifferent: frozenset[str] = frozenset()) -> list[Fix]:
    """One `Fix` per service of `needs` (service name -> what it should get at `path`), in the
    order of `needs`, adding the key once to a service template where the services share one.

    `path` is a service key (`"logging"`) or a path into one (`("deploy", "resources")`); the
    value is added under what already exists (`yamledit.ensure`). A service whose mapping cannot
    take the key (a flow mapping, an alias, a nested path under a merged key) gets a
    display-only finding, unless an edit made for another service reaches it. `options` are
    the pass's: `_placement` (from the configuration) chooses templates or per-service edits.
    Values that name an anchor already in the file are placed only after it; new anchors are the
    `support` edits' to define, before the first place that uses them. `indifferent` services
    need nothing, and may take what a template they merge gets (a one-shot job's log rotation):
    they do not keep a template from being used.
    """
    keys = (path,) if isinstance(path, str) else tuple(path)
    k0 = keys[0]
    targets: dict[str, _Target] = {}
    for name, need in needs.items():
        svc = project.services.get(name)
        if svc is None:
            continue
        full: Any = need.value
        for k in reversed(keys[1:]):
            full = {k: full}
        t = targets[name] = _Target(svc, need, full)
        home = svc.home
        if home is None or not isinstance(home.node, MappingNode):
            continue
        own = home.doc.get(home.node, k0)
        if len(keys) > 1 and own is None and _holder(home.node, k0) is not None:
            continue  # an own `deploy:` would hide the merged one: not this module's to decide
        if own is not None:
            t.token = ("edit", id(own[1]), repr(need.value), t.token[2])
        if not _alias_ok(home.doc, need.value, home.node.end_mark.index):
            continue
        if own is None and (line := yamledit.commented_key(home.doc, home.node, k0)) is not None:
            t.need = need._replace(blocked=f"{need.message} (not added: the service holds `{k0}:` commented out at "
                                           f"line {line}, and uncommenting it would define the key twice; add it "
                                           "there)")
            continue
        made = yamledit.ensure(home.doc, home.node, keys, need.value, home.key.end_mark.index)
        if made:
            t.home = home
            t.edits = tuple(made)
    _inherit(project, k0, targets)
    per_service = {id(t.home.node): t.token for t in targets.values() if t.edits and t.home}
    added = dict(per_service)
    bundles: list[_Bundle] = []
    if options.get("_placement", TEMPLATE) != PER_SERVICE:
        _templates(project, k0, keys, targets, per_service, added, bundles, indifferent)
    # A service with its own edit and no template: a bundle of its own.
    for t in targets.values():
        if t.bundle is None and t.edits and t.home is not None:
            b = t.bundle = _Bundle()
            b.add(t.edits, t.need.value)
            b.nodes.append(id(t.home.node))
            b.reached = project.with_extenders(project.sharers(t.home.node))
            b.tops = top_paths(t.home.doc, t.home.node)
            bundles.append(b)
    # A service with no edit of its own may be reached by one made for another service.
    by_node = {nid: b for b in bundles for nid in b.nodes}
    for t in targets.values():
        if t.bundle is None and t.through is not None:
            t.bundle = targets[t.through].bundle
        if t.bundle is None:
            for d in t.svc.defs:
                for n in (d.node, *merge_sources(d.node)):
                    if id(n) in by_node:
                        t.bundle = by_node[id(n)]
                        break
                    if _own(n, k0) is not None:
                        break
                if t.bundle is not None:
                    break
    extra = _support(project, bundles, support)
    # Shared by every fix of a bundle: worked out once, not once per service.
    declared = {id(b): tuple(dict.fromkeys((*(("services", s, k0) for s in b.reached), *b.tops, *extra[id(b)][1])))
                for b in bundles}
    carried = {id(b): (*b.edits, *extra[id(b)][0]) for b in bundles}
    out: list[Fix] = []
    for t in targets.values():
        got = t.bundle
        where = t.home or next((d for d in t.svc.defs if not d.doc.readonly), None)
        if where is None:
            continue  # only in a file read for context: not this run's to fix
        line, col = position(where.key)
        if got is None:
            msg = t.need.blocked or f"{t.need.message} (its mapping cannot be edited here)"
            out.append(Fix(pass_id, msg, where.doc.path, line, col, safety=Safety.DISPLAY_ONLY,
                           provenance=t.need.provenance))
            continue
        changes = declared[id(got)]
        msg = t.need.message
        if t.via and not t.edits:
            msg += f" (once, in `{t.via[0]}`, for {t.via[1]} services)"
        elif t.through is not None:
            msg += f" (through `{t.through}`, which it extends)"
        out.append(Fix(pass_id, msg, where.doc.path, line, col, carried[id(got)], safety, changes,
                       provenance=t.need.provenance))
    return out


def _inherit(project: Project, k0: str, targets: dict[str, _Target]) -> None:
    """A sequence Compose appends when it follows `extends` (`security_opt`...): a service that
    extends one that gets the same value has it through that service, and its own copy would
    list each item twice, which Compose refuses (`security_opt items at 0 and 1 are equal`).
    Such a service keeps no edit of its own; the fix of the service it extends serves it."""
    parents = project.extends_parents
    for name, t in targets.items():
        if not t.edits or _idempotent(t.full):
            continue
        seen = {name}
        up = parents.get(name)
        while up is not None and up not in seen:
            seen.add(up)
            got = targets.get(up)
            if got is not None and got.edits:
                if got.need.value == t.need.value:
                    t.edits, t.through = (), up
                break
            svc = project.services.get(up)
            if svc is None or any(d.get(k0) is not None for d in svc.defs):
                break  # it sets the key itself: what lies above it does not reach through
            up = parents.get(up)


# --- templates ------------------------------------------------------------------------------


class _Candidate(NamedTuple):
    doc: ComposeDoc
    node: MappingNode
    label: str


def _templates(project: Project, k0: str, keys: tuple[str, ...], targets: dict[str, _Target],
               per_service: dict[int, Token], added: dict[int, Token], bundles: list[_Bundle],
               indifferent: frozenset[str] = frozenset()) -> None:
    """Choose templates, most services served first, and bundle each with the overrides of
    the services it reaches; templates that reach one service share a bundle."""
    scored = []
    for i, cand in enumerate(_candidates(project)):
        reach = project.with_extenders(project.sharers(cand.node))
        served = sum(1 for s in reach if s in targets and targets[s].edits)
        if served >= 2:
            scored.append((-served, i, cand))
    scored.sort(key=lambda t: t[:2])
    chosen: list[_Chosen] = []
    for _, _, cand in scored:
        got = _try(project, cand, k0, keys, targets, per_service, added, indifferent)
        if got is not None:
            chosen.append(got)
    if not chosen:
        return
    # Union-find over the chosen templates, joined by the services they reach.
    root = list(range(len(chosen)))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    group_of: dict[str, int] = {}
    for i, c in enumerate(chosen):
        for name in c.reached:
            j = group_of.setdefault(name, i)
            if find(j) != find(i):
                root[find(j)] = find(i)
    made: dict[int, _Bundle] = {}
    for i, c in enumerate(chosen):
        b = made.get(find(i))
        if b is None:
            b = made[find(i)] = _Bundle()
            bundles.append(b)
        b.add(c.edits, c.value)
        b.nodes.append(id(c.node))
        b.tops.extend(top_paths(c.doc, c.node))
        b.reached.extend(c.reached)
    for name, i in group_of.items():
        w = targets.get(name)
        if w is None:
            continue
        b = made[_root(root, i)]
        if w.via:
            w.bundle = b
        elif w.edits and w.home is not None:
            # Its own key overrides the template's: it goes with the template, never alone.
            w.bundle = b
            b.add(w.edits, w.need.value)
            b.nodes.append(id(w.home.node))
            b.tops.extend(top_paths(w.home.doc, w.home.node))
            b.reached.extend(project.with_extenders(project.sharers(w.home.node)))


def _candidates(project: Project) -> list[_Candidate]:
    """Anchored mappings that service definitions merge and that say what a service runs
    (`image` or `build`), and the services that other services extend."""
    out: list[_Candidate] = []
    seen: set[int] = set()
    for doc, role in zip(project.docs, project.roles):
        if doc.readonly or role == "extends":
            continue  # an `extends: file:` source holds templates the index does not follow
        blocks = {id(v): k for k, v in _blocks(doc)}
        blocks.update((id(v), f"{k}.{k2}") for k, k2, v in _nested(doc))
        merged = _merged_at_top(doc)
        services = _service_nodes(doc)
        for _, node in doc.anchors():
            if id(node) in seen or not isinstance(node, MappingNode) or node.flow_style or merged.get(id(node), 0) < 2:
                continue  # not merged (its definition is one of the counted places)
            if _holder(node, "image") is None and _holder(node, "build") is None:
                continue  # a fragment (`restart:` alone) is not what services run
            label = blocks.get(id(node)) or (f"services.{services[id(node)]}" if id(node) in services else None)
            if label is None:
                continue  # nested in another value: its other uses are not followed here
            seen.add(id(node))
            out.append(_Candidate(doc, node, label))
    for name in sorted(set(project.extends_parents.values())):
        svc = project.services.get(name)
        home = svc.home if svc else None
        if home is None or id(home.node) in seen or not isinstance(home.node, MappingNode):
            continue
        seen.add(id(home.node))
        out.append(_Candidate(home.doc, home.node, f"services.{name}"))
    return out


def _root(root: list[int], i: int) -> int:
    while root[i] != i:
        i = root[i]
    return i


class _Chosen(NamedTuple):
    doc: ComposeDoc
    node: MappingNode
    value: Any
    edits: tuple[Edit, ...]
    reached: list[str]


def _try(project: Project, cand: _Candidate, k0: str, keys: tuple[str, ...], targets: dict[str, _Target],
         per_service: dict[int, Token], added: dict[int, Token],
         indifferent: frozenset[str] = frozenset()) -> _Chosen | None:
    """The template `cand` with the value most of the services it reaches need, if every
    service it reaches (but the `indifferent`) then means what the per-service edits would make
    it mean."""
    doc, node = cand.doc, cand.node
    if _holder(node, k0) is not None or not _uses_known(doc, node):
        return None
    reached = project.with_extenders(project.sharers(node))
    # The services whose own edit it could replace: not one that edits a key it holds, and
    # only one defined (where its edit goes) in the template's file; a service defined in two
    # files keeps its key where the base alone still needs it.
    free = [t for t in (targets.get(s) for s in reached)
            if t is not None and t.edits and t.token[0] == "new" and t.home is not None and t.home.doc is doc]
    own = next((t for t in free if t.home is not None and t.home.node is node), None)
    if own is not None:
        value, token = own.need.value, own.token  # the template is that service's own mapping
    elif id(node) in per_service:
        return None  # its own service's edit is of another kind (it holds part of the path)
    else:
        counts = Counter(t.token for t in free)
        if not counts:
            return None
        order = {tok: i for i, tok in reversed(list(enumerate(t.token for t in free)))}
        token = max(counts, key=lambda tok: (counts[tok], -order[tok]))
        value = next(t.need.value for t in free if t.token == token)
    served = [t for t in free if t.token == token]
    if len(served) < 2 or not _alias_ok(doc, value, node.start_mark.index):
        return None
    trial = dict(added)
    for t in served:
        assert t.home is not None
        trial.pop(id(t.home.node), None)
    trial[id(node)] = token
    for name in reached:
        svc = project.services.get(name) if name not in indifferent else None
        if svc is not None and _service_token(project, svc, trial, k0) != _service_token(project, svc, per_service, k0):
            return None
    edits = yamledit.ensure(doc, node, keys, value, node.start_mark.index)
    if not edits:
        return None
    added.clear()
    added.update(trial)
    for t in served:
        t.via = (cand.label, len(served))
        if t.home is not None and t.home.node is not node:
            t.edits = ()
    return _Chosen(doc, node, value, tuple(edits), reached)


def _service_token(project: Project, svc: Service, added: dict[int, Token], k0: str) -> Token:
    """What `svc`'s model holds at `k0` in each variant of the stack (`Project.variants`: the
    base alone, the base with each override file, included files with their includer), given
    the values `added` to mappings (by node id): each file's definition, `extends` followed
    within the file, the files merged in order."""
    members = _variant_members(project)
    own = {id(d.doc): _def_token(project, d, svc.name, added, k0, ()) for d in svc.defs}
    out = []
    for docs in members:
        tok: Token = None
        for d in svc.defs:
            if id(d.doc) in docs:
                tok = _merge(tok, own[id(d.doc)])
        out.append(tok)
    return tuple(out)


def _variant_members(project: Project) -> list[set[int]]:
    """For each variant, the ids of the documents whose services it loads: its files and
    what they include, transitively."""
    got: list[set[int]] | None = project.__dict__.get(_VARIANTS)
    if got is None:
        got = []
        for files in project.variants():
            seen = set(files)
            todo = list(files)
            while todo:
                i = todo.pop()
                for ref, idx in project.refs.get(i, ()):
                    if ref.kind == "include":
                        for j in idx:
                            if j not in seen:
                                seen.add(j)
                                todo.append(j)
            got.append({id(project.docs[i]) for i in seen})
        project.__dict__[_VARIANTS] = got
    return got


def _def_token(project: Project, d: ServiceDef, name: str, added: dict[int, Token], k0: str,
               trail: tuple[str, ...]) -> Token:
    tok: Token = None
    for n in (d.node, *merge_sources(d.node)):
        got = added.get(id(n))
        if got is not None:
            tok = got
            break
        own = _own(n, k0)
        if own is not None:
            tok = ("cur", id(own))
            break
    svcs = d.doc.value.get("services")
    raw = svcs.get(name) if isinstance(svcs, dict) else None
    ext = raw.get("extends") if isinstance(raw, dict) else None
    if isinstance(ext, dict):
        ext = None if ext.get("file") else ext.get("service")
    if not isinstance(ext, str) or ext in trail or name in trail:
        return tok
    parent = project.services.get(ext)
    pd = next((x for x in parent.defs if x.doc is d.doc), None) if parent else None
    if pd is None:
        return tok
    return _merge(_def_token(project, pd, ext, added, k0, (*trail, name)), tok)


def _merge(a: Token, b: Token) -> Token:
    if a is None:
        return b
    if b is None:
        return a
    if a == b and isinstance(a, tuple) and a[-1] is True:
        return a  # merging a value with itself changes nothing, unless it holds a sequence
    return ("merge", a, b)


def _idempotent(value: Any) -> bool:
    """Whether Compose merging the value with itself gives it back: scalars and mappings of
    them do (an `Alias` stands for a mapping or a scalar); sequences are appended."""
    if isinstance(value, Mapping):
        return all(_idempotent(v) for v in value.values())
    return not (isinstance(value, (list, tuple, Flow)))


# --- the stack's text -----------------------------------------------------------------------


def _own(node: Node, key: str) -> Node | None:
    if type(node) is MappingNode:
        for k, v in node.value:
            if type(k) is ScalarNode and k.value == key and not is_merge_key(k):
                got: Node = v
                return got
    return None


def _holder(node: Node, key: str) -> Node | None:
    """The value `node` gets at `key`, its own or merged."""
    for n in (node, *merge_sources(node)):
        got = _own(n, key)
        if got is not None:
            return got
    return None


_CACHE = "_e2i_placement"  # what is worked out once per document, kept on it
_VARIANTS = "_e2i_placement_variants"  # and once per index


def _doc_cache(doc: ComposeDoc) -> dict[str, Any]:
    got: dict[str, Any] = doc.__dict__.setdefault(_CACHE, {})
    return got


def _blocks(doc: ComposeDoc) -> list[tuple[str, Node]]:
    """The top-level keys other than `services`, with their values."""
    cache = _doc_cache(doc)
    if "blocks" not in cache:
        cache["blocks"] = [(k.value, v) for k, v in doc.root.value
                           if isinstance(k, ScalarNode) and k.value != "services"]
    got: list[tuple[str, Node]] = cache["blocks"]
    return got


def _nested(doc: ComposeDoc) -> list[tuple[str, str, Node]]:
    """The block mappings one level inside a top-level `x-` block (`x-shared: {app: &app
    {...}}`), with their keys: a template may sit there as well as at the top level."""
    cache = _doc_cache(doc)
    if "nested" not in cache:
        cache["nested"] = [(k, k2.value, v2) for k, v in _blocks(doc) if k.startswith("x-") and isinstance(v, MappingNode)
                           for k2, v2 in v.value if isinstance(k2, ScalarNode) and not is_merge_key(k2)
                           and isinstance(v2, MappingNode) and v2.start_mark.index > k2.start_mark.index]
    got: list[tuple[str, str, Node]] = cache["nested"]
    return got


def _service_nodes(doc: ComposeDoc) -> dict[int, str]:
    """Service definition node id -> the first service defined by it (its own, not an alias)."""
    cache = _doc_cache(doc)
    if "services" not in cache:
        out: dict[int, str] = {}
        svcs = doc.node("services")
        if isinstance(svcs, MappingNode):
            for k, v in svcs.value:
                if isinstance(k, ScalarNode) and not is_merge_key(k) and v.start_mark.index > k.start_mark.index:
                    out.setdefault(id(v), k.value)
        cache["services"] = out
    got: dict[int, str] = cache["services"]
    return got


def _merged_at_top(doc: ComposeDoc) -> dict[int, int]:
    """Node id -> how often a top-level value or a service definition merges it or is it."""
    cache = _doc_cache(doc)
    if "merged" not in cache:
        counts: dict[int, int] = {}
        values = [v for _, v in _blocks(doc)] + [v for _, _, v in _nested(doc)]
        svcs = doc.node("services")
        if isinstance(svcs, MappingNode):
            values += [v for k, v in svcs.value if not is_merge_key(k)]
        for v in values:
            if not isinstance(v, MappingNode):
                continue
            counts[id(v)] = counts.get(id(v), 0) + 1
            for k, src in v.value:
                if is_merge_key(k):
                    for s in src.value if isinstance(src, SequenceNode) else [src]:
                        counts[id(s)] = counts.get(id(s), 0) + 1
        cache["merged"] = counts
    got: dict[int, int] = cache["merged"]
    return got


def _uses_known(doc: ComposeDoc, node: Node) -> bool:
    """Whether every alias of `node`'s anchor is one the index follows: a merge at the top
    level of a service or an `x-` block, or a whole service. Any other (inside a value, in a
    nested mapping) would change with the template without being declared: no template."""
    name = doc.anchor(node)
    if name is None:
        return True
    cache = _doc_cache(doc)
    if "aliases" not in cache:
        cache["aliases"] = Counter(m.group(1) for m in _ALIAS_RE.finditer(doc.text))
    # `node` is a top-level value or a service: its definition is one of the counted places.
    return int(cache["aliases"][name]) <= _merged_at_top(doc).get(id(node), 0) - 1


def top_paths(doc: ComposeDoc, node: Node) -> list[ModelPath]:
    """The top-level keys other than `services` (`x-` blocks) whose value is `node` or merges
    it, or holds such a mapping one level down (`x-shared.app`): an edit of `node` changes
    them in the model too."""
    out: list[ModelPath] = [(key,) for key, v in _blocks(doc) if v is node or node in merge_sources(v)]
    out += [(key, k2) for key, k2, v in _nested(doc) if (v is node or node in merge_sources(v)) and (key,) not in out]
    return out


def _alias_ok(doc: ComposeDoc, value: Any, pos: int) -> bool:
    """Whether every alias in `value` names an anchor that is defined before `pos` or not at
    all (a new anchor, which the pass defines before its first use)."""
    names = _aliases(value)
    if not names:
        return True
    cache = _doc_cache(doc)
    if "anchors" not in cache:
        cache["anchors"] = {name: node.start_mark.index for name, node in reversed(doc.anchors())}
    first: dict[str, int] = cache["anchors"]
    return all(first.get(name, -1) < pos for name in names)


def _aliases(value: Any) -> set[str]:
    if isinstance(value, Alias):
        return {value.name}
    if isinstance(value, Mapping):
        return set().union(*(_aliases(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(_aliases(v) for v in value)) if value else set()
    if isinstance(value, Anchored):
        return _aliases(value.value)
    return set()


def _support(project: Project, bundles: list[_Bundle], support: Support | None
             ) -> dict[int, tuple[tuple[Edit, ...], tuple[ModelPath, ...]]]:
    """The supporting edits of each bundle: those of every file its edits are in."""
    per_doc: dict[Any, tuple[tuple[Edit, ...], tuple[ModelPath, ...]]] = {}
    if support is not None:
        uses: dict[Any, list[tuple[int, Any]]] = {}
        for b in bundles:
            for path, start, value in b.uses:
                uses.setdefault(path, []).append((start, value))
        for doc in project.docs:
            if doc.path in uses and doc.path not in per_doc:
                per_doc[doc.path] = support(doc, sorted(uses[doc.path], key=lambda u: u[0]))
    out: dict[int, tuple[tuple[Edit, ...], tuple[ModelPath, ...]]] = {}
    for b in bundles:
        edits: list[Edit] = []
        changes: list[ModelPath] = []
        for p in dict.fromkeys(e.path for e in b.edits):
            got = per_doc.get(p)
            if got:
                edits.extend(got[0])
                changes.extend(got[1])
        out[id(b)] = (tuple(edits), tuple(changes))
    return out
