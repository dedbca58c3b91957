"""env-anchors: environment entries services share as a group move into one named anchor.

## What it does
Where services of a compose file write the same environment entries (the same key with the
same value), and the entries are a group a reader can name, they move into one top-level
extension field with an anchor, and each service merges it, keeping its own keys:

    x-celery-env: &celery-env
      CELERY_BROKER_URL: redis://cache:6379/1
      CELERY_RESULT_BACKEND: redis://cache:6379/2
      ...

    services:
      celery-worker:
        environment:
          <<: [*backend-env, *celery-env]
          CONCURRENCY: "4"

A group is one a reader can name, and its anchor is named so:

- by what it holds, where all its keys share a stem that few of the file's keys have
  (`x-db-env` for `DB_HOST`, `DB_PORT`, `DB_NAME`; `x-app-storage-env` for `_APP_STORAGE_*`);
- else by who shares it: services with a common stem in their names (`x-celery-env` for
  `celery-worker` and `celery-beat`), or that run one application (one image: its repository's
  name; one build context: its folder's name, or the project's `name:` for the project's own
  folder) — at least half of the services that name covers; or every service that has an
  environment (`x-common-env`).

Services that are none of these share only entries whose keys have a stem in common
(`POSTGRES_*`, `*_ADDR`): two unrelated services that happen to hold the same API key and JWT
secret keep them. A name is never numbered: a group whose names are all taken is left as it is.

It acts where at least `min-services` services share at least `min-entries` entries and the
anchor removes at least `min-lines` lines (the shared entries of every service but one, less
the block's first line and one `<<` line per service) — and at least as many as it rewrites
without removing: merge keys only work in mappings, so a list-form environment is rewritten
entry by entry, and three lists of 150 entries are not rewritten to share six. Of the ways to
group them it picks, one anchor at a time, the one that removes the most lines (the sharing
patterns tried before their intersections, and the other way round; the plan that removes
more wins), so groups of services that share different entries get an anchor each (a service
in two groups merges both). Only entries written in a service's own `environment` count: what
it already gets through a merge key or `extends` is shared already.

A list-form environment becomes a mapping with the values kept as the same strings: a value
that a plain scalar would read as something else (`true`, `no`, `null`, `~`, numbers, leading
zeros, `.5`, `: `, ` #`, a leading indicator) is quoted, `${VAR}` is kept verbatim, and `- KEY`
with no `=` becomes `KEY:` with no value (both mean "take it from the shell").

Comments stay with what they say. A comment directly above an entry is that entry's and goes
where it goes. A comment that heads a section (set apart by a blank line, or a heading such as
`# App` or `# --- Redis ---`, above several entries) stays with its entries: it goes into the
anchor with the first of them the anchor takes, and stays in the service above those the
service keeps (both, where the section is split), so no header is left above nothing. A
trailing comment goes with its entry. A mapping that already merges an anchor keeps it, after
the new one (`<<: [*celery-env, *base]`): the moved entries were the service's own keys,
which win over anything merged.

Only the base compose file is rewritten; override files keep their own environment blocks. A
service whose environment an override replaces (`environment: !override`) is left as it is, as
is one whose environment is a flow collection, an alias, anchored itself, or has duplicate keys.

## Why
A dozen lines repeated in three services drift apart: one gets the new Redis URL, the others
do not. One anchored block is one place to change.

## Example
Before:

    services:
      api:
        build: ./backend
        environment:
          - DATABASE_URL=postgresql://shop@db/shop
          - REDIS_URL=redis://cache:6379/0
          - SECRET_KEY=${SECRET_KEY}
          - LOG_LEVEL=info
          - WORKERS=4
      worker:
        build: ./backend
        environment:
          - DATABASE_URL=postgresql://shop@db/shop
          - REDIS_URL=redis://cache:6379/0
          - SECRET_KEY=${SECRET_KEY}
          - LOG_LEVEL=info
      beat:
        build: ./backend
        environment:
          - DATABASE_URL=postgresql://shop@db/shop
          - REDIS_URL=redis://cache:6379/0
          - SECRET_KEY=${SECRET_KEY}
          - LOG_LEVEL=info

After:

    x-backend-env: &backend-env
      DATABASE_URL: postgresql://shop@db/shop
      REDIS_URL: redis://cache:6379/0
      SECRET_KEY: ${SECRET_KEY}
      LOG_LEVEL: info

    services:
      api:
        build: ./backend
        environment:
          <<: *backend-env
          WORKERS: "4"
      worker:
        build: ./backend
        environment:
          <<: *backend-env
      beat:
        build: ./backend
        environment:
          <<: *backend-env

## Fix safety
Unsafe. Every service's environment still means exactly what it meant (`docker compose config`
shows the same values, and the run checks it), but the fix says more than the file did: that
entries equal today are one setting. An entry two services share by coincidence (a `DEBUG`
flag, a region) is tied to the others by the anchor, and the next edit of the block reaches
every service that merges it. Whether the group is one the project means is the authors' call,
not something the file shows; and the refactor is a change of form, with nothing broken
without it. It is proposed with `--unsafe-fixes`, for a reviewer to accept or not.

## Options
- `min-services`: how many services must share the entries (default 2).
- `min-entries`: how many entries they must share (default 3).
- `min-lines`: how many lines an anchor must remove to be worth a diff (default 8).
"""

from __future__ import annotations

import functools
import heapq
import marshal
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from e2i_fix import fileroles, lazyre, render, yamledit
from e2i_fix.facts import image as imagedata
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, targets
from e2i_fix.records import NamedTuple
from e2i_fix.yamldoc import ComposeDoc, MappingNode, ScalarNode, SequenceNode, is_merge_key, position, scalar_value

ID = "env-anchors"
SUMMARY = "environment entries services share as a nameable group move into one named anchor (x-celery-env)"
SAFETY = Safety.UNSAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
READS = frozenset({"environment", "extends"})
DEFAULTS: dict[str, Any] = {"min-services": 2, "min-entries": 3, "min-lines": 8}

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_SCALAR_TAGS = ("?", "!")  # plain and quoted scalars with no explicit tag
_ALIAS = lazyre.compile(r"\*([^\s,\[\]{}]+)")
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
    min_lines = max(0, int(options["min-lines"]))
    who = [_who(project, env.name) for env in envs]
    taken = {a.removesuffix("-env") for a, _ in doc.anchors()}
    taken |= {k.removeprefix("x-").removesuffix("-env") for k in doc.value if k.startswith("x-")}
    groups = _group(envs, min_services, min_entries, min_lines, who, taken)
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


# --- sections -------------------------------------------------------------------------------


def _runs(env: _Env) -> tuple[list[int], dict[int, str]]:
    """The run each entry is in, and the section headers: entry index -> the lead (blank and
    comment lines) above the first entry of a section.

    A comment heads a section when it is set apart (a blank line above it, or the top of the
    environment) or reads as a heading (`# App`, `# Common`, `# --- Redis ---`) and more than
    one entry follows it before the next blank line or heading; any other comment is the own
    comment of the entry under it (`# set to nginx`)."""
    text = env.doc.text
    runs: list[int] = []
    starts: list[bool] = []
    run = -1
    for i, e in enumerate(env.entries):
        lead = text[e.lead : e.start]
        comments = [ln.strip() for ln in lead.splitlines() if ln.strip()]
        apart = i == 0 or any(not ln.strip() for ln in lead.splitlines())
        section = bool(comments) and (apart or _heading(comments))
        if i == 0 or apart or section or e.key == "<<" or env.entries[i - 1].key == "<<":
            run += 1
        runs.append(run)
        starts.append(section)
    sizes = Counter(runs)
    heads = {i: text[e.lead : e.start] for i, e in enumerate(env.entries) if starts[i] and sizes[runs[i]] > 1}
    return runs, heads


def _heading(comments: list[str]) -> bool:
    """`# App`, `# Database settings`, `# --- Redis ---`: one line, decorated or of one or two
    capitalised words."""
    if len(comments) != 1:
        return False
    body = comments[0].lstrip("#").strip()
    bare = body.strip("-=*#_~ ").strip()
    if bare != body and bare:
        return True
    words = bare.split()
    return 0 < len(words) <= 2 and bare[:1].isupper()


# --- grouping -------------------------------------------------------------------------------


class _Group(NamedTuple):
    members: tuple[int, ...]  # indexes into the environments, ascending
    idents: tuple[bytes, ...]  # in the first member's order
    name: str  # `celery` for `x-celery-env: &celery-env`


class _Candidate(NamedTuple):
    members: tuple[int, ...]
    rule: tuple[str, ...]  # ("who",) every entry they share; ("prefix"|"suffix", token): those keys
    names: tuple[str, ...]  # what the anchor may be called, best first


def _group(envs: list[_Env], min_services: int, min_entries: int, min_lines: int,
           who: list[tuple[str, ...]], taken: set[str]) -> list[_Group]:
    """Greedy: the nameable group that removes the most lines first, again and again on what is
    left.

    Candidate member sets are the sharing patterns (the exact set of services that write one
    entry) and their pairwise intersections. Services that are one application (one image or
    build, or names with a common stem: `celery-worker`, `celery-beat`) or every service with
    an environment share all they write alike; other sets only the entries whose keys have a
    common stem (`POSTGRES_*`, `*_ADDR`), one group per stem. A group is worth it when it
    removes at least `min_lines` lines and at least as many as it rewrites without removing (a
    list-form environment becomes a mapping: every entry it keeps is a changed line), and when
    one of its names is free.

    Two plans are made, the patterns tried before their intersections or with them, and the
    one that removes more lines is taken: an intersection (two celery services sharing their
    database settings with the API and their broker settings with Flower) would otherwise
    swallow the two groups a reader sees. Each plan ends only when no candidate of what is left
    qualifies, which is exactly what a second run would look at: the result is stable.
    """
    users: dict[bytes, set[int]] = {}
    own: list[list[bytes]] = []
    keys: dict[bytes, str] = {}
    for i, env in enumerate(envs):
        ids = [e.ident for e in env.entries if e.ident is not None]
        own.append(ids)
        for e in env.entries:
            if e.ident is not None:
                users.setdefault(e.ident, set()).add(i)
                keys[e.ident] = e.key
    # List-form environments still to be rewritten, with how many entries each has.
    kept = {i: len(env.entries) for i, env in enumerate(envs) if env.is_list}
    fixed = (own, keys, who, tuple(range(len(envs))), min_services, min_entries, min_lines, _rare_stems(keys))
    plans = []
    for first in (True, False):
        plan = _Plan({k: set(v) for k, v in users.items()}, dict(kept), set(taken))
        if first:
            plan.run(fixed, intersections=False)
        plan.run(fixed, intersections=True)
        plans.append(plan)
    best = max(plans, key=lambda pl: pl.saved)  # the first on a tie: the patterns first
    taken |= best.taken
    return sorted(best.groups)


class _Plan:
    """One greedy plan: what is left of the sharing, and the groups made so far."""

    def __init__(self, users: dict[bytes, set[int]], kept: dict[int, int], taken: set[str]) -> None:
        self.users = users
        self.kept = kept
        self.taken = taken
        self.groups: list[_Group] = []
        self.saved = 0

    def worth(self, cand: _Candidate, fixed: tuple[Any, ...]) -> tuple[int, list[bytes]] | None:
        own, keys, _, _, _, min_entries, min_lines, _ = fixed
        got = _score(cand, own, self.users, keys, min_entries)
        if got is None or got[0] < min_lines:
            return None
        cost = sum(self.kept[m] - len(got[1]) for m in cand.members if m in self.kept)
        return got if got[0] >= cost else None

    def run(self, fixed: tuple[Any, ...], intersections: bool) -> None:
        own, keys, who, everyone, min_services, min_entries, _, rare = fixed
        while True:
            heap: list[tuple[int, int, int, _Candidate]] = []
            for n, cand in enumerate(_candidates(self.users, own, keys, who, everyone, min_services, min_entries,
                                                 intersections, rare)):
                if all(nm in self.taken for nm in cand.names):
                    continue
                got = self.worth(cand, fixed)
                if got is not None:
                    heap.append((-got[0], -len(got[1]) * len(cand.members), n, cand))
            before = len(self.groups)
            heapq.heapify(heap)
            while heap:
                neg, cover, n, cand = heapq.heappop(heap)
                got = self.worth(cand, fixed)
                if got is None:
                    continue
                if -got[0] != neg and heap:  # it got worse since: back in line
                    heapq.heappush(heap, (-got[0], -len(got[1]) * len(cand.members), n, cand))
                    continue
                name = next((nm for nm in cand.names if nm not in self.taken), None)
                if name is None:
                    continue  # every name it could have says something another anchor says
                self.taken.add(name)
                self.groups.append(_Group(cand.members, tuple(got[1]), name))
                self.saved += got[0]
                for ident in got[1]:
                    self.users[ident].difference_update(cand.members)
                for m in cand.members:
                    self.kept.pop(m, None)  # a mapping now: what it keeps costs nothing more
            if len(self.groups) == before:  # nothing left that qualifies
                return


def _candidates(users: dict[bytes, set[int]], own: list[list[bytes]], keys: dict[bytes, str],
                who: list[tuple[str, ...]], everyone: tuple[int, ...], min_services: int,
                min_entries: int, intersections: bool = True, rare: set[str] | None = None) -> list[_Candidate]:
    patterns = sorted({tuple(sorted(u)) for u in users.values() if len(u) >= min_services})
    sets = set(patterns)
    if intersections and len(patterns) <= _INTERSECT_MAX:
        as_sets = [set(p) for p in patterns]
        for i, a in enumerate(as_sets):
            for b in as_sets[i + 1 :]:
                both = a & b
                if len(both) >= min_services:
                    sets.add(tuple(sorted(both)))
    out: list[_Candidate] = []
    named: dict[str, int] = {}
    if rare is None:
        rare = _rare_stems(keys)
    for members in sorted(sets):
        need = set(members)
        shared = [keys[i] for i in own[members[0]] if need <= users[i]]
        if len(shared) < min_entries:
            continue
        names = tuple(nm for nm in _common(who[m] for m in members) if _most(members, nm, who, named))
        if members == everyone and len(members) > 1:
            names = (*names, "common")
        if names:
            # What they all hold, where one stem says it (`x-db-env`), else who they are.
            whole = sorted((_RULES.index(rule) if rule != "prefix2" else -1, st)
                           for rule, st in _stems(shared, len(shared)) if st in rare)
            out.append(_Candidate(members, ("who",), (*(st for _, st in whole), *names)))
            continue
        for rule, stem in _stems(shared, min_entries):
            if stem in rare:
                out.append(_Candidate(members, (rule, stem), (stem,)))
    return out


def _most(members: tuple[int, ...], name: str, who: list[tuple[str, ...]], named: dict[str, int]) -> bool:
    """Whether `members` are at least half the services that `name` names (by the stem of
    their names or the application they run): `x-worker-env` for three of fourteen workers
    would say something the file does not. (`named`: those counts, by name, as worked out.)"""
    if name not in named:
        named[name] = sum(1 for w in who if w[1] == name or w[0] == name or w[0].startswith(name + "-")
                          or w[0].endswith("-" + name))
    return 2 * len(members) >= named[name]


def _score(cand: _Candidate, own: list[list[bytes]], users: dict[bytes, set[int]], keys: dict[bytes, str],
           min_entries: int) -> tuple[int, list[bytes]] | None:
    """Lines a group saves and the entries it takes, or None if it is too small."""
    need = set(cand.members)
    shared = [i for i in own[cand.members[0]] if need <= users[i]]
    if cand.rule[0] != "who":
        shared = [i for i in shared if _stem_of(keys[i], cand.rule[0]) == cand.rule[1]]
    if len(shared) < min_entries:
        return None
    n, k = len(shared), len(cand.members)
    return k * n - n - 1 - k, shared  # the entries' lines, less the block and the merge lines


# --- names ----------------------------------------------------------------------------------


_NOT_WORD = lazyre.compile(r"[^A-Za-z0-9]+")


def _tokens(text: str) -> list[str]:
    return [t for t in _NOT_WORD.split(text.lower()) if t]


@functools.lru_cache(maxsize=1 << 16)  # every candidate set asks again of the same keys
def _stem_of(key: str, rule: str) -> str | None:
    """`POSTGRES_USER` -> `postgres` (prefix), `_APP_STORAGE_S3_KEY` -> `app-storage` (prefix2),
    `CART_ADDR` -> `addr` (suffix): a key's first word(s) or its last, where more words follow
    or precede them and the word is one a reader names (not `x`, not `2`)."""
    words = _tokens(key)
    n = 2 if rule == "prefix2" else 1
    if len(words) <= n:
        return None
    got = words[:n] if rule != "suffix" else words[-1:]
    if any(len(w) < 2 or w.isdigit() for w in got):
        return None
    return "-".join(got)


_RULES = ("prefix", "prefix2", "suffix")


def _stems(keys: list[str], min_entries: int) -> list[tuple[str, str]]:
    """The stems at least `min_entries` of the keys share: the keys a group of services that
    are not one application can still share as something a reader names."""
    out: list[tuple[str, str]] = []
    for rule in _RULES:
        counts = Counter(st for st in (_stem_of(k, rule) for k in keys) if st is not None)
        out += [(rule, st) for st, n in sorted(counts.items()) if n >= min_entries]
    return out


def _rare_stems(keys: dict[bytes, str]) -> set[str]:
    """Stems that tell entries apart: carried by fewer than half the file's keys (`APP` on
    every `_APP_*` key of a stack says nothing about what one anchor holds)."""
    names = set(keys.values())
    out: set[str] = set()
    for rule in _RULES:
        counts = Counter(st for st in (_stem_of(k, rule) for k in names) if st is not None)
        out |= {st for st, n in counts.items() if 2 * n < len(names)}
    return out


def _common(names: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """What a set of services is called, best first: the stem of their names (`celery` for
    `celery-worker` and `celery-beat`), the application they all run (one image or build)."""
    rows = list(names)
    out: list[str] = []
    words = [r[0] for r in rows]  # the service names, as words
    first = words[0].split("-")
    n = 0
    while n < len(first) and all(len(w.split("-")) > n + 1 and w.split("-")[n] == first[n] for w in words):
        n += 1  # a common leading word, and every name has more after it
    if n:
        out.append("-".join(first[:n]))
    last = first[-1]
    if len(first) > 1 and all(len(w.split("-")) > 1 and w.split("-")[-1] == last for w in words) and len(last) >= 3:
        out.append(last)
    apps = {r[1] for r in rows}
    if len(apps) == 1 and "" not in apps:
        out.append(apps.pop())
    return tuple(dict.fromkeys(out))


def _who(project: Project, name: str) -> tuple[str, ...]:
    """A service as `_common` reads it: its name as words, and the application it runs (the
    repository of its image, the folder it builds, the project's name for the project's own
    folder), "" where that is not known."""
    svc = project.services.get(name)
    app = ""
    if svc is not None:
        b = svc.build
        if b is not None and b.context is not None:
            ctx = os.path.normpath(os.path.abspath(b.context))
            if ctx == os.path.normpath(os.path.abspath(project.folder)):
                named = project.docs[0].value.get("name") if project.docs else None
                app = named if isinstance(named, str) and "$" not in named else ""
            else:
                app = os.path.basename(ctx)
        elif svc.build is None and svc.image:
            ref = imagedata.parse(svc.image)
            if ref is not None and "$" not in ref.path:
                app = ref.path.rsplit("/", 1)[-1]
    return ("-".join(_tokens(name)) or name, "-".join(_tokens(app)))


# --- the edits ------------------------------------------------------------------------------


def _fix(doc: ComposeDoc, envs: list[_Env], groups: list[_Group]) -> Fix:
    style = doc.style
    names = [g.name for g in groups]
    root_col = doc.root.value[0][0].start_mark.column
    gap = "\n" if yamledit.top_level_gap(doc) else ""
    blocks = []
    for g in groups:
        blocks.append(_anchor_block(g, envs, root_col, style.indent))
    block_edit = yamledit.top_level_text(doc, gap.join(blocks))
    in_groups: dict[int, list[int]] = {}
    for gi, g in enumerate(groups):
        for m in g.members:
            in_groups.setdefault(m, []).append(gi)
    edits: list[Edit] = [block_edit]
    for m, gis in sorted(in_groups.items()):
        edits.append(_service_edit(envs[m], [groups[gi] for gi in gis]))
    parts = []
    for g in groups:
        who = ", ".join(envs[m].name for m in g.members)
        parts.append(f"{who} share {len(g.idents)} environment entries: move them to `x-{g.name}-env: &{g.name}-env`")
    first = envs[groups[0].members[0]]
    line, col = position(first.key)
    return Fix(ID, "; ".join(parts), doc.path, line, col, tuple(edits), SAFETY,
               tuple((f"x-{n}-env",) for n in names))


def _anchor_block(g: _Group, envs: list[_Env], column: int, indent: int) -> str:
    """`x-<name>-env: &<name>-env` with the entries in the first member's order, each with the
    comments every member has above it: its own, and the header of its section where it is the
    first of the section's entries this anchor takes."""
    pad = " " * (column + indent)
    lines = [f"{' ' * column}x-{g.name}-env: &{g.name}-env\n"]
    first = envs[g.members[0]]
    by_ident = {e.ident: e for e in first.entries if e.ident is not None}
    taken = set(g.idents)
    above: dict[bytes, list[str]] = {}
    trails: dict[bytes, list[str]] = {}
    for m in g.members:
        env = envs[m]
        runs, heads = _runs(env)
        started: set[int] = set()
        for i, e in enumerate(env.entries):
            if e.ident not in taken:
                continue
            said = above.setdefault(e.ident, [])
            if runs[i] not in started:
                started.add(runs[i])
                # The first of its section here: the header comes along (a copy, where the
                # section keeps entries of its own in the service).
                first_of_run = next(j for j in range(len(runs)) if runs[j] == runs[i])
                if first_of_run in heads:
                    said += [c for c in _comment_lines(heads[first_of_run]) if c not in said]
            if i not in heads:  # its own comment
                said += [c for c in _comment_lines(env.doc.text[e.lead : e.start]) if c not in said]
            t = e.trail.strip()
            got = trails.setdefault(e.ident, [])
            if t and t not in got:
                got.append(t)
    for ident in g.idents:
        e = by_ident[ident]
        comments = above.get(ident, [])
        extra = trails.get(ident, [])
        # The first trailing comment stays on the line; any other one goes above it.
        comments = comments + [t for t in extra[1:] if t not in comments]
        lines += [f"{pad}{c}\n" for c in comments]
        value = f" {e.value_text}" if e.value_text else ""
        trail = f"  {extra[0]}" if extra else ""
        lines.append(f"{pad}{e.key_text}:{value}{trail}\n")
    return "".join(lines)


def _comment_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _service_edit(env: _Env, groups: list[_Group]) -> Edit:
    """The service's environment with the moved entries gone and the anchors merged. A section
    header stays above the entries of its section the service keeps; it goes (with the anchor)
    only when none are left."""
    text = env.doc.text
    pad = " " * env.column
    refs = [*(f"{g.name}-env" for g in groups), *env.merges]
    moved = {ident for g in groups for ident in g.idents}
    merge = f"*{refs[0]}" if len(refs) == 1 else "[" + ", ".join(f"*{r}" for r in refs) + "]"
    runs, heads = _runs(env)
    out: list[str] = []
    if env.merge_at is None:
        out.append(f"{pad}<<: {merge}\n")
    pending: str | None = None  # the header of a section whose first entries moved
    for i, e in enumerate(env.entries):
        lead = text[e.lead : e.start]
        if i == 0 or runs[i - 1] != runs[i]:
            pending = None
            if e.ident is not None and e.ident in moved and (i in heads or not lead.strip()):
                pending = lead  # the section's header (or its blank line) waits for what it keeps
        if e.ident is not None and e.ident in moved:
            continue
        if pending is not None:
            lead, pending = pending + lead, None
        if e.key == "<<" and e.ident is None and not e.key_text:
            out.append(_reindent(lead, pad))
            out.append(f"{pad}<<: {merge}{e.trail}\n")
            continue
        if not env.is_list:
            out.append(lead + text[e.start : e.stop])
            continue
        out.append(_reindent(lead, pad))
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
