"""env-anchors: environment entries several services share move into one anchored block.

## What it does
Where services of a compose file write the same environment entries (the same key with the
same value), the entries move into one top-level extension field with an anchor, and each
service merges it, keeping its own keys:

    x-common-env: &common-env
      REDIS_URL: redis://redis:6379/0
      LOG_LEVEL: info
      FEATURE_SEARCH: "true"

    services:
      api:
        environment:
          <<: *common-env
          WORKERS: "4"

It acts where at least `min-services` services share at least `min-entries` entries. Of the
ways to group them it picks, one anchor at a time, the one that removes the most duplicated
lines, so groups of services that share different entries get an anchor each (a service in
two groups merges both: `<<: [*common-env, *common-env-2]`). Only entries written in a
service's own `environment` count: what it already gets through a merge key or `extends` is
shared already.

List-form environments become mappings (merge keys only work in mappings), with the values
kept as the same strings: a value that a plain scalar would read as something else (`true`,
`no`, `null`, `~`, numbers, leading zeros, `.5`, `: `, ` #`, a leading indicator) is quoted,
`${VAR}` is kept verbatim, and `- KEY` with no `=` becomes `KEY:` with no value (both mean
"take it from the shell"). Comments stay with their entry: an entry's comment lines and
trailing comment go into the anchor with it. A mapping that already merges an anchor keeps it,
after the new one (`<<: [*common-env, *base]`): the moved entries were the service's own keys,
which win over anything merged. Anchor and key names never collide with the file's own.

Only the base compose file is rewritten; override files keep their own environment blocks. A
service whose environment an override replaces (`environment: !override`) is left as it is, as
is one whose environment is a flow collection, an alias, anchored itself, or has duplicate keys.

## Why
A dozen lines repeated in two services drift apart: one gets the new Redis URL, the other does
not. One anchored block is one place to change.

## Example
Before:

    services:
      api:
        environment:
          - REDIS_URL=redis://redis:6379/0
          - LOG_LEVEL=info
          - DEBUG=false
          - WORKERS=4
      worker:
        environment:
          - REDIS_URL=redis://redis:6379/0
          - LOG_LEVEL=info
          - DEBUG=false

After:

    x-common-env: &common-env
      REDIS_URL: redis://redis:6379/0
      LOG_LEVEL: info
      DEBUG: "false"

    services:
      api:
        environment:
          <<: *common-env
          WORKERS: "4"
      worker:
        environment:
          <<: *common-env

## Fix safety
Safe: every service's environment means exactly what it meant (`docker compose config` shows
the same values); the only addition is the top-level `x-` block, which Compose ignores.

## Options
- `min-services`: how many services must share the entries (default 2).
- `min-entries`: how many entries they must share (default 3).
"""

from __future__ import annotations

import heapq
import marshal
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from e2i_fix import fileroles, render, yamledit
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, targets
from e2i_fix.yamldoc import ComposeDoc, MappingNode, ScalarNode, SequenceNode, is_merge_key, position, scalar_value

ID = "env-anchors"
SUMMARY = "environment entries several services share move into one anchored x- block"
SAFETY = Safety.SAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
READS = frozenset({"environment", "extends"})
DEFAULTS: dict[str, Any] = {"min-services": 2, "min-entries": 3}

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = ("?", "!")  # plain and quoted scalars with no explicit tag
_ALIAS = re.compile(r"\*([^\s,\[\]{}]+)")
# Pairwise intersections of sharing patterns are tried as groups while there are at most this
# many patterns: beyond it only the patterns themselves are (the work would grow as its cube).
_INTERSECT_MAX = 64


class _Entry(NamedTuple):
    """One entry of a service's own environment, located in the text."""

    key: str
    value: Any  # str, or a map entry's typed value; None for `KEY` / `KEY:`
    ident: bytes | None  # what makes two entries the same; None: never moved
    lead: int  # start of the blank and comment lines above it
    start: int  # start of its own first line
    stop: int  # end of its last line, newline included (len(text) at an unterminated end)
    key_text: str  # as it goes into a mapping
    value_text: str  # as it goes into a mapping ("" for no value)
    trail: str  # what follows the value on its line (spaces, a comment), no newline


class _Env:
    """A service's own environment block in the base file."""

    def __init__(self, name: str, doc: ComposeDoc, key: ScalarNode, column: int, is_list: bool,
                 start: int, stop: int, entries: list[_Entry], merges: list[str], merge_at: int | None) -> None:
        self.name = name
        self.doc = doc
        self.key = key
        self.column = column
        self.is_list = is_list
        self.start = start
        self.stop = stop
        self.entries = entries
        self.merges = merges  # anchors it merges already, in order
        self.merge_at = merge_at  # index of the entry the `<<` line came before (None: none)


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    if not project.docs or project.docs[0].readonly:
        return
    doc = project.docs[0]
    min_services = max(2, int(options["min-services"]))
    min_entries = max(1, int(options["min-entries"]))
    replaced = _overridden(project)
    envs: list[_Env] = []
    for svc in targets(project, ID, options):
        if svc.name in replaced:
            continue
        for d in svc.defs:
            if d.doc is doc and d.editable and isinstance(d.node, MappingNode) and svc.shadows(d, "environment") is None:
                env = _read_env(doc, svc.name, d.node)
                if env is not None:
                    envs.append(env)
    groups = _group(envs, min_services, min_entries)
    if not groups:
        return
    yield _fix(doc, envs, groups)


def _overridden(project: Project) -> set[str]:
    """Services whose environment an override file replaces with `!override`."""
    out: set[str] = set()
    for doc in project.docs[1:]:
        svcs = doc.node("services")
        if not isinstance(svcs, MappingNode):
            continue
        for k, v in svcs.value:
            kv = doc.get(v, "environment") if isinstance(v, MappingNode) else None
            if kv is not None and kv[1].tag == "!override":
                out.add(k.value)
    return out


def _read_env(doc: ComposeDoc, name: str, service: MappingNode) -> _Env | None:
    kv = doc.get(service, "environment")
    if kv is None:
        return None
    k, v = kv
    key_end = doc.key_end(k)
    if not isinstance(v, (MappingNode, SequenceNode)) or not v.value or v.flow_style:
        return None
    if doc.is_alias(v, key_end) or v.tag not in (_MAP_TAG, _SEQ_TAG) or doc.anchor(v):
        return None
    text = doc.text
    style = doc.style
    start = doc.line_after(key_end)
    entries: list[_Entry] = []
    merges: list[str] = []
    merge_at: int | None = None
    seen: set[str] = set()
    lead = start
    if isinstance(v, SequenceNode):
        column = k.start_mark.column + style.indent
        for item in v.value:
            if type(item) is not ScalarNode or item.tag not in _SCALAR_TAGS or item.style in ("|", ">"):
                return None
            s = scalar_value(item)
            if not isinstance(s, str):
                return None
            line = doc.line_start(item.start_mark.index)
            if text[line : item.start_mark.index].strip() != "-" or line < lead:
                return None
            key, eq, val = s.partition("=")
            if not key or key in seen:
                return None
            seen.add(key)
            value = val if eq else None
            end = item.end_mark.index
            stop = doc.line_after(end)
            trail = text[end:stop].rstrip("\r\n")
            value_text = "" if value is None else render.scalar(value, style)
            ident = marshal.dumps((key, value))
            entries.append(_Entry(key, value, ident, lead, line, stop, render.scalar(key, style), value_text, trail))
            lead = stop
    else:
        column = v.value[0][0].start_mark.column
        for ek, ev in v.value:
            if type(ek) is not ScalarNode or ek.tag not in _SCALAR_TAGS:
                return None
            line = doc.line_start(ek.start_mark.index)
            if text[line : ek.start_mark.index].strip() or line < lead:
                return None
            ek_end = doc.key_end(ek)
            if is_merge_key(ek):
                if merge_at is not None:
                    return None
                names = _merge_names(doc, ek_end, ev)
                stop = doc.line_after(doc.content_end(ev, ek_end))
                if names is None or text[ek_end:stop].count("\n") > 1:
                    return None
                merges = names
                merge_at = len(entries)
                # The `<<` line is written again with the new anchors in front: its comment
                # lines above stay where they are, on an entry of their own.
                entries.append(_Entry("<<", None, None, lead, line, stop, "", "", _after_merge(text, doc, ek_end, ev, stop)))
                lead = stop
                continue
            if type(ev) is not ScalarNode or ev.tag not in _SCALAR_TAGS:
                return None
            key = ek.value
            if not isinstance(scalar_value(ek), str) or key in seen:
                return None
            seen.add(key)
            typed = scalar_value(ev)
            end = doc.content_end(ev, ek_end)
            stop = doc.line_after(end)
            if doc.is_alias(ev, ek_end):
                return None
            raw = text[ev.start_mark.index : end] if end > ek_end else ""
            single = "\n" not in text[ek.start_mark.index : end] and "\n" not in ek.value
            same = marshal.dumps((key, typed)) if single else None
            trail = text[end:stop].rstrip("\r\n")
            entries.append(_Entry(key, typed, same, lead, line, stop, text[ek.start_mark.index : ek.end_mark.index],
                                  raw, trail))
            lead = stop
    return _Env(name, doc, k, column, isinstance(v, SequenceNode), start, lead, entries, merges, merge_at)


def _merge_names(doc: ComposeDoc, key_end: int, node: Any) -> list[str] | None:
    """The anchors a `<<` entry merges: one alias, or a flow list of aliases."""
    if isinstance(node, MappingNode) and doc.is_alias(node, key_end):
        return [doc.alias_span(key_end)[2]]
    if isinstance(node, SequenceNode) and node.flow_style and not doc.is_alias(node, key_end):
        body = doc.text[node.start_mark.index : node.end_mark.index]
        names = _ALIAS.findall(body)
        if len(names) == len(node.value) and all(i.start_mark.index < node.start_mark.index for i in node.value):
            return names
    return None


def _after_merge(text: str, doc: ComposeDoc, key_end: int, node: Any, stop: int) -> str:
    end = doc.alias_span(key_end)[1] if isinstance(node, MappingNode) else node.end_mark.index
    return text[end:stop].rstrip("\r\n")


# --- grouping -------------------------------------------------------------------------------


class _Group(NamedTuple):
    members: tuple[int, ...]  # indexes into the environments, ascending
    idents: tuple[bytes, ...]  # in the first member's order


def _group(envs: list[_Env], min_services: int, min_entries: int) -> list[_Group]:
    """Greedy: the group that saves the most lines first, again and again on what is left.

    Candidate member sets are the sharing patterns (the exact set of services that write one
    entry) and their pairwise intersections; an entry goes into a group whose members all write
    it. The search ends only when no candidate of what is left qualifies, which is exactly what
    a second run would look at: the result is stable.
    """
    users: dict[bytes, set[int]] = {}
    own: list[list[bytes]] = []
    for i, env in enumerate(envs):
        ids = [e.ident for e in env.entries if e.ident is not None]
        own.append(ids)
        for ident in ids:
            users.setdefault(ident, set()).add(i)
    groups: list[_Group] = []
    while True:
        heap: list[tuple[int, int, tuple[int, ...]]] = []
        for cand in _candidates(users, min_services):
            got = _score(cand, own, users, min_entries)
            if got is not None:
                heap.append((-got[0], -len(got[1]) * len(cand), cand))
        if not heap:
            return sorted(groups)
        heapq.heapify(heap)
        while heap:
            neg, cover, cand = heapq.heappop(heap)
            got = _score(cand, own, users, min_entries)
            if got is None:
                continue
            if -got[0] != neg and heap:  # it got worse since: back in line
                heapq.heappush(heap, (-got[0], -len(got[1]) * len(cand), cand))
                continue
            groups.append(_Group(cand, tuple(got[1])))
            for ident in got[1]:
                users[ident].difference_update(cand)


def _candidates(users: dict[bytes, set[int]], min_services: int) -> list[tuple[int, ...]]:
    patterns = sorted({tuple(sorted(u)) for u in users.values() if len(u) >= min_services})
    out = set(patterns)
    if len(patterns) <= _INTERSECT_MAX:
        sets = [set(p) for p in patterns]
        for i, a in enumerate(sets):
            for b in sets[i + 1 :]:
                both = a & b
                if len(both) >= min_services:
                    out.add(tuple(sorted(both)))
    return sorted(out)


def _score(members: tuple[int, ...], own: list[list[bytes]], users: dict[bytes, set[int]],
           min_entries: int) -> tuple[int, list[bytes]] | None:
    """Lines a group of `members` saves and the entries it takes, or None if it is too small."""
    need = set(members)
    shared = [ident for ident in own[members[0]] if need <= users[ident]]
    if len(shared) < min_entries:
        return None
    n, k = len(shared), len(members)
    return k * n - n - 1 - k, shared  # the entries' lines, less the block and the merge lines


# --- the edits ------------------------------------------------------------------------------


def _fix(doc: ComposeDoc, envs: list[_Env], groups: list[_Group]) -> Fix:
    style = doc.style
    taken = {name for name, _ in doc.anchors()}
    keys = set(doc.value)
    names: list[str] = []
    for _ in groups:
        base = "common-env" if not names else f"common-env-{len(names) + 1}"
        name = base
        i = 2
        while name in taken or f"x-{name}" in keys:
            name = f"{base}-{i}"
            i += 1
        taken.add(name)
        keys.add(f"x-{name}")
        names.append(name)
    root_col = doc.root.value[0][0].start_mark.column
    gap = "\n" if yamledit.top_level_gap(doc) else ""
    blocks = []
    for name, g in zip(names, groups):
        blocks.append(_anchor_block(name, g, envs, root_col, style.indent))
    block_edit = yamledit.top_level_text(doc, gap.join(blocks))
    in_groups: dict[int, list[int]] = {}
    for gi, g in enumerate(groups):
        for m in g.members:
            in_groups.setdefault(m, []).append(gi)
    edits: list[Edit] = [block_edit]
    for m, gis in sorted(in_groups.items()):
        moved = {ident for gi in gis for ident in groups[gi].idents}
        edits.append(_service_edit(envs[m], [names[gi] for gi in gis], moved))
    parts = []
    for name, g in zip(names, groups):
        who = ", ".join(envs[m].name for m in g.members)
        parts.append(f"{who} share {len(g.idents)} environment entries: move them to `x-{name}: &{name}`")
    first = envs[groups[0].members[0]]
    line, col = position(first.key)
    return Fix(ID, "; ".join(parts), doc.path, line, col, tuple(edits), SAFETY,
               tuple((f"x-{n}",) for n in names))


def _anchor_block(name: str, g: _Group, envs: list[_Env], column: int, indent: int) -> str:
    pad = " " * (column + indent)
    lines = [f"{' ' * column}x-{name}: &{name}\n"]
    first = envs[g.members[0]]
    by_ident = {e.ident: e for e in first.entries if e.ident is not None}
    for ident in g.idents:
        e = by_ident[ident]
        comments: list[str] = []
        trails: list[str] = []
        for m in g.members:
            other = next(x for x in envs[m].entries if x.ident == ident)
            for c in _comments(envs[m].doc.text, other):
                if c not in comments:
                    comments.append(c)
            t = other.trail.strip()
            if t and t not in trails:
                trails.append(t)
        # The first trailing comment stays on the line; any other one goes above it.
        comments += [t for t in trails[1:] if t not in comments]
        lines += [f"{pad}{c}\n" for c in comments]
        value = f" {e.value_text}" if e.value_text else ""
        trail = f"  {trails[0]}" if trails else ""
        lines.append(f"{pad}{e.key_text}:{value}{trail}\n")
    return "".join(lines)


def _comments(text: str, e: _Entry) -> list[str]:
    return [line.strip() for line in text[e.lead : e.start].splitlines() if line.strip()]


def _service_edit(env: _Env, anchors: list[str], moved: set[bytes]) -> Edit:
    text = env.doc.text
    pad = " " * env.column
    refs = [*anchors, *env.merges]
    merge = f"*{refs[0]}" if len(refs) == 1 else "[" + ", ".join(f"*{r}" for r in refs) + "]"
    out: list[str] = []
    if env.merge_at is None:
        out.append(f"{pad}<<: {merge}\n")
    for e in env.entries:
        if e.ident is not None and e.ident in moved:
            continue
        if e.key == "<<" and e.ident is None and not e.key_text:
            out.append(_reindent(text[e.lead : e.start], pad))
            out.append(f"{pad}<<: {merge}{e.trail}\n")
            continue
        if not env.is_list:
            out.append(text[e.lead : e.stop])
            continue
        out.append(_reindent(text[e.lead : e.start], pad))
        value = f" {e.value_text}" if e.value_text else ""
        out.append(f"{pad}{e.key_text}:{value}{e.trail}\n")
    new = "".join(out)
    if env.stop == len(text) and not text.endswith("\n"):
        new = new.removesuffix("\n")
    return Edit(env.doc.path, env.start, env.stop, new)


def _reindent(lines: str, pad: str) -> str:
    """Blank and comment lines, the comments moved to the entries' new column."""
    out = []
    for line in lines.splitlines(keepends=True):
        body = line.strip()
        out.append(f"{pad}{body}\n" if body else "\n")
    return "".join(out)
