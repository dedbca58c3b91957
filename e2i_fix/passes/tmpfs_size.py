"""tmpfs-size: a size bound on tmpfs mounts whose contents the bound is known to hold.

## What it does
Adds a `size` to a tmpfs mount that has none, where the bound is known to hold what the service
keeps there:

- the bound the configuration sets: `sizes` for the mount path, else `size` for every mount (a
  safe fix: the user's figure);
- the scratch bound (64m) where the image table (`e2i_fix/data/images.toml`, each fact with its
  source) says the image keeps only small files in that folder, its `bounded` folders: the
  database socket folders (`/var/run/postgresql`, `/run/mysqld`), nginx's pid folder and the log
  folder it can do without (an unsafe fix: the table describes the image, not every feature a
  configuration turns on).

Everything else is reported with what the service keeps there, and no bound is guessed:

- a folder the table says holds data as large as what the service serves, its `unbounded`
  folders: MariaDB's and MySQL's tmpdir is /tmp, where filesort merge files, on-disk temporary
  tables and an index build's sort files go, as large as the table they sort; a bound aborts the
  query or the migration: mount a volume there instead;
- nginx's temp and cache folders: what it keeps there is read from the nginx configuration the
  service mounts or copies (`facts.configs`; the image's own where it has none): request bodies
  up to `client_max_body_size` (default 1m) in `client_body_temp_path`, responses of each
  `proxy_pass` (`fastcgi_pass`, `uwsgi_pass`, `scgi_pass`) with buffering on up to
  `proxy_max_temp_file_size` (default 1024m) in `proxy_temp_path`, each `proxy_cache_path` up
  to its `max_size` (none: no bound); settings inherited from the enclosing blocks. The finding
  gives the figure for one request of each kind; several at once add up, so no figure is safe
  and the user chooses one (or a volume);
- a folder the tool knows nothing of (an application's /tmp: Mattermost unpacks its plugin
  bundles there, hundreds of MB): the finding suggests the scratch figure for the user to weigh.

Where the service has a memory limit (`mem_limit`, `deploy.resources.limits.memory`) the fix
says that the tmpfs counts against it.

The edit, where there is one:

- `tmpfs:` entries, a single string or a list: `/run/mysqld` becomes `/run/mysqld:size=64m`,
  `/run:rw,noexec` becomes `/run:rw,noexec,size=64m`;
- long-syntax `volumes` entries of `type: tmpfs` get `tmpfs: {size: 64m}` (or a `size` in their
  existing `tmpfs:` mapping).

Each string keeps its quotes; a plain entry inside a flow list (`tmpfs: [/a, /b]`) is quoted,
because the `,` of its options would split the item in two. An entry shared through an anchor,
a merge key or `extends` is edited once, where it is written, for every service that uses it,
and only where every one of them keeps what the bound holds. Entries that already have a
`size=`, that come from a variable (`${TMP_DIR}`), or that a service opted out of are left
alone. A Docker-in-Docker image store (`/var/lib/docker`) is reported, not bounded, unless
`sizes` names it; so is a mount path that another file of the same service keeps unbounded
(Compose refuses two different mounts of one path).

## Why
A tmpfs lives in memory, and without `size` it may grow to half of the host's RAM: a runaway
scratch directory takes the host down instead of failing with "No space left on device". But a
bound below what the service keeps there fails the service instead: for an application, ENOSPC
in its temporary folder is an outage, not containment.

## Example
Before:

    services:
      db:
        image: mariadb:11.4
        read_only: true
        tmpfs:
          - /run/mysqld
          - /tmp

After (`--unsafe-fixes`):

    services:
      db:
        image: mariadb:11.4
        read_only: true
        tmpfs:
          - /run/mysqld:size=64m
          - /tmp

and the finding "tmpfs /tmp has no size bound (not edited: /tmp is its tmpdir: filesort merge
files, on-disk temporary tables and the sort files of an index build, as large as the table they
sort: a bound there fails it with ENOSPC, mount a volume there instead)".

## Fix safety
Safe where the configuration sets the bound. Unsafe where the image table says the folder holds
only small files: a feature the table does not know may keep more there; the service then gets
ENOSPC in that folder rather than starving the host. Raise the bound per path with `sizes`.

## Options
- `size`: the bound for every tmpfs mount, like `64m`, `1g` or a number of bytes (default: none;
  mounts whose contents the tool cannot tell are reported).
- `sizes`: per mount path, e.g. `sizes = {"/var/lib/docker" = "1g", "/tmp" = "512m"}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from e2i_fix import facts, fileroles, lazyre, render, yamledit
from e2i_fix.facts import runs
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, targets
from e2i_fix.records import NamedTuple
from e2i_fix.yamldoc import (
    RESET, ComposeDoc, MappingNode, Node, ScalarNode, SequenceNode, effective_entry, is_merge_key, position,
    scalar_value, to_value,
)

ID = "tmpfs-size"
SUMMARY = "a size bound on tmpfs mounts whose contents it is known to hold"
SAFETY = Safety.UNSAFE  # safe where the configuration sets the bound
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
# The service keys its decisions depend on: another pass changing one of them runs it again.
READS = frozenset({"tmpfs", "volumes", "extends"})
DEFAULTS: dict[str, Any] = {
    "size": None,
    "sizes": {},
}
# The bound of a folder the image table says holds only small files (sockets, pid files).
SCRATCH = "64m"

# What both readers of a size accept: the kernel's tmpfs `size=` (short syntax) and Compose's
# byte-size parser (long syntax, which rejects the kernel's `%`).
_SIZE = lazyre.compile(r"[0-9]+[kKmMgGtT]?")
_PROPERTY = lazyre.compile(r"[&!]\S*\s+")  # an anchor or a tag before a scalar
# Mounts that hold more than scratch files (a Docker-in-Docker image store): a scratch-sized
# bound would break them, and only the user knows the right one.
_BULKY = ("/var/lib/docker", "/var/lib/containerd")


class _Entry:
    """One tmpfs mount as written: a `tmpfs:` string or a `type: tmpfs` volume mapping."""

    def __init__(self, doc: ComposeDoc, node: Node, flow: bool, long: bool) -> None:
        self.doc = doc
        self.node = node
        self.flow = flow  # inside a flow collection: a plain scalar there cannot hold `,`
        self.long = long  # a `volumes` mapping, not a `tmpfs:` string
        self.users: list[str] = []  # services whose mounts include it


class Bound(NamedTuple):
    """The bound a tmpfs gets, how safe it is and why; `size` None: no bound is proposed, `why`
    says what the service keeps there instead."""

    size: str | int | None
    safety: Safety
    why: str


class _Plan:
    """A short-syntax entry to bound: its edit, or why it is left as it is."""

    def __init__(self, entry: _Entry, old: str, new: str, edit: Edit | None, why: str | None,
                 bulky: bool = False, bound: Bound | None = None) -> None:
        self.entry = entry
        self.old = old
        self.new = new
        self.edit = edit
        self.why = why
        self.bulky = bulky  # no bound is proposed: the message says none
        self.bound = bound


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    bad = _bad_options(options)
    if bad:
        yield Fix(ID, bad, project.docs[0].path, safety=Safety.DISPLAY_ONLY, error=True)
        return
    allowed = {s.name for s in targets(project, ID, options)}
    entries = _entries(project)
    plans: dict[int, _Plan] = {}
    # Entries only opted-out services mount, and those of read-only files, are not ours.
    ours = {k: e for k, e in entries.items() if not e.doc.readonly and set(e.users) & allowed}
    for key, e in ours.items():
        if e.long:
            continue
        old = scalar_value(e.node)  # type: ignore[arg-type]
        if isinstance(old, str) and not _sized(old):
            bound = bound_for(project, e.users, _mount_path(old), options)
            plans[key] = _plan(e, old, _bounded(old, bound.size or SCRATCH), allowed, options, bound)
    _drop_clashes(entries, plans)
    for key, e in ours.items():
        if e.long:
            yield from _long(project, e, sorted(set(e.users) - allowed), options)
        elif key in plans:
            yield _short(plans[key])


def _bad_options(options: dict[str, Any]) -> str | None:
    sizes = options.get("sizes") or {}
    if not isinstance(sizes, dict):
        return "option sizes must be a table of mount path = size"
    given = [("size", options.get("size"))] if options.get("size") is not None else []
    for where, v in [*given, *((f"sizes.{k}", v) for k, v in sizes.items())]:
        if isinstance(v, bool) or not (isinstance(v, int) and v > 0 or isinstance(v, str) and _SIZE.fullmatch(v)):
            return f"option {where} = {v!r} is not a size (like 64m, 1g or a number of bytes)"
    return None


def _size_for(path: str, options: dict[str, Any]) -> str | int:
    """The bound the configuration gives `path`, else the scratch bound."""
    got = configured(path, options)
    return got if got is not None else SCRATCH


def configured(path: str, options: dict[str, Any]) -> str | int | None:
    """The bound the configuration sets for `path` (`sizes`, else `size`), if it sets one."""
    sizes = options.get("sizes") or {}
    got: str | int | None = sizes.get(path, sizes.get(path.rstrip("/") or "/", options.get("size")))
    return got


def bound_for(project: Project, users: list[str], path: str, options: dict[str, Any]) -> Bound:
    """The bound of a tmpfs at `path` that services `users` mount: the configuration's (safe);
    the scratch bound where every service keeps only small files there (the image table's
    `bounded`: unsafe, the table may not know a feature that keeps more); else none, with what
    the service keeps there: data as large as what it serves (a database's temporary folder),
    what nginx's configuration lets it spool (request bodies, proxied responses, a cache), or
    what is not known here."""
    got = configured(path, options)
    if got is not None:
        return Bound(got, Safety.SAFE, "the bound the configuration sets")
    target = path.rstrip("/") or "/"
    judged: list[runs.Keeps] = []
    limits: set[int] = set()
    for name in sorted(set(users)):
        for f in facts.every(project, name):
            if any(m.kind == "tmpfs" and (m.target.rstrip("/") or "/") == target for m in f.mounts):
                judged.append(runs.keeps(f, target))
                limit = runs.memory_limit(f)
                if limit:
                    limits.add(limit)
    if not judged:
        judged.append(runs.Keeps("unknown", None, "what it keeps there is not known here"))
    for kind in ("large", "sized", "unread", "unknown"):
        k = next((k for k in judged if k.kind == kind), None)
        if k is None:
            continue
        if kind == "large":
            return Bound(None, Safety.DISPLAY_ONLY, f"{k.why}: a bound there fails it with ENOSPC, mount a volume "
                                                    "there instead")
        if kind == "sized" and k.size is None:
            return Bound(None, Safety.DISPLAY_ONLY, f"nginx keeps there what nothing bounds ({k.why}): mount a volume "
                                                    "there instead")
        if kind == "sized":
            return Bound(None, Safety.DISPLAY_ONLY, f"nginx keeps up to {_human(k.size or 0)} there for one request of "
                         f"each kind ({k.why}), more for several at once: a bound below what it keeps fails requests "
                         "with ENOSPC; choose one with the `sizes` option (a tmpfs counts against the container's "
                         "memory), or mount a volume there")
        return Bound(None, Safety.DISPLAY_ONLY, f"{k.why}: a bound it outgrows fails it with ENOSPC; choose one with "
                                                f"the `sizes` option ({SCRATCH} fits scratch files)")
    why = "; ".join(dict.fromkeys(k.why for k in judged))
    if limits:
        why += f" (a tmpfs counts against its memory limit of {_human(min(limits))})"
    return Bound(SCRATCH, Safety.UNSAFE, why)


def _human(b: int) -> str:
    return runs.shown_size(b)


def _sized(entry: str) -> bool:
    options = entry[len(_mount_path(entry)) + 1 :]
    return any(o.strip().startswith("size=") for o in options.split(","))


def _mount_path(entry: str) -> str:
    """`/run:rw,size=1m` -> `/run`; a `:` inside `${VAR:-default}` is not the separator."""
    depth = 0
    for i, ch in enumerate(entry):
        if entry.startswith("${", i):
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        elif ch == ":" and not depth:
            return entry[:i]
    return entry


def _bulky(path: str, options: dict[str, Any]) -> str | None:
    sizes = options.get("sizes") or {}
    path = path.rstrip("/") or "/"
    if path in _BULKY and path not in sizes:
        return "it holds more than scratch files: choose its bound with the `sizes` option"
    return None


def _bounded(old: str, size: str | int) -> str:
    _, sep, opts = old.partition(":")
    if not sep:
        return f"{old}:size={size}"
    if not opts or opts.endswith(","):
        return f"{old}size={size}"
    return f"{old},size={size}"


# --- where the mounts are written -----------------------------------------------------------


def _pair(got: tuple[MappingNode, ScalarNode, Node] | None) -> tuple[MappingNode, Node] | None:
    """The mapping that gives a key its value, and that value."""
    return None if got is None else (got[0], got[2])


def _entries(project: Project) -> dict[int, _Entry]:
    """Every tmpfs mount of the stack by node identity, with the services it reaches: a node
    shared through an anchor or a merge key is one entry with several users."""
    entries: dict[int, _Entry] = {}
    own: dict[str, list[int]] = {}
    for doc in project.docs:
        svcs = doc.node("services")
        if not isinstance(svcs, MappingNode):
            continue
        in_flow: set[int] | None = None  # walked only for a file that has tmpfs entries
        for k, node in svcs.value:
            if not isinstance(k, ScalarNode) or is_merge_key(k) or not isinstance(node, MappingNode):
                continue
            found = own.setdefault(k.value, [])
            svc = project.services.get(k.value)
            d = next((d for d in svc.defs if d.node is node), None) if svc else None
            # What a later file `!reset`s or `!override`s is not what the service mounts: the
            # override's own entries are the ones to bound.
            shadowed = {key for key in ("tmpfs", "volumes") if svc and d and svc.shadows(d, key)}
            got = None if "tmpfs" in shadowed else _pair(effective_entry(node, "tmpfs"))
            if got is not None and got[1].tag != RESET:  # `tmpfs: !reset ...` mounts nothing
                value = got[1]
                for item in value.value if isinstance(value, SequenceNode) else [value]:
                    if isinstance(item, ScalarNode) and item.value:
                        if in_flow is None:
                            in_flow = _in_flow(doc)
                        found.append(_add(entries, doc, item, id(item) in in_flow, long=False))
            got = None if "volumes" in shadowed else _pair(effective_entry(node, "volumes"))
            if got is not None and isinstance(got[1], SequenceNode) and got[1].tag != RESET:
                for item in got[1].value:
                    v = to_value(item) if isinstance(item, MappingNode) else None
                    if isinstance(v, dict) and v.get("type") == "tmpfs":
                        found.append(_add(entries, doc, item, bool(item.flow_style), long=True))
    # A service that `extends` another mounts the other's entries too.
    for name, keys in _with_extends(project, own).items():
        for key in keys:
            if name not in entries[key].users:
                entries[key].users.append(name)
    return entries


def _in_flow(doc: ComposeDoc) -> set[int]:
    """The scalars reached through a flow collection. An anchored scalar aliased from one counts
    too, though it is written elsewhere: quoting it is harmless, `,` in a flow plain is not."""
    out: set[int] = set()
    seen: set[tuple[int, bool]] = set()
    stack: list[tuple[Node, bool]] = [(doc.root, False)]
    while stack:
        node, flow = stack.pop()
        if (id(node), flow) in seen:
            continue
        seen.add((id(node), flow))
        if isinstance(node, ScalarNode):
            if flow:
                out.add(id(node))
            continue
        assert isinstance(node, (MappingNode, SequenceNode))
        flow = flow or bool(node.flow_style)
        items = [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else node.value
        stack.extend((n, flow) for n in items)
    return out


def _add(entries: dict[int, _Entry], doc: ComposeDoc, item: Node, flow: bool, long: bool) -> int:
    entries.setdefault(id(item), _Entry(doc, item, flow, long))
    return id(item)


def _with_extends(project: Project, own: dict[str, list[int]]) -> dict[str, list[int]]:
    parents = project.extends_parents
    out: dict[str, list[int]] = {}
    for name in own.keys() | parents.keys():
        keys: list[int] = []
        seen: set[str] = set()
        cur: str | None = name
        while cur is not None and cur not in seen:  # an `extends` loop is Compose's to report
            seen.add(cur)
            keys += own.get(cur, [])
            cur = parents.get(cur)
        out[name] = keys
    return out


def _drop_clashes(entries: dict[int, _Entry], plans: dict[int, _Plan]) -> None:
    """Compose merges a service's `tmpfs` lists from every file as strings and refuses two
    different strings for one mount path: bounding one `/tmp` while another `/tmp` of the same
    service stays as written would break the stack. Such plans become findings."""
    by_service: dict[str, list[int]] = {}
    for key, e in entries.items():
        if not e.long:
            for u in e.users:
                by_service.setdefault(u, []).append(key)
    changed = True
    while changed:  # a dropped plan may clash elsewhere: until nothing changes
        changed = False
        for name, keys in by_service.items():
            paths: dict[str, tuple[set[str], set[str], list[int]]] = {}
            for key in keys:
                old = scalar_value(entries[key].node)  # type: ignore[arg-type]
                if not isinstance(old, str):
                    continue
                plan = plans.get(key)
                new = plan.new if plan and plan.edit else old
                before, after, members = paths.setdefault(_mount_path(old), (set(), set(), []))
                before.add(old)
                after.add(new)
                members.append(key)
            for path, (before, after, members) in paths.items():
                if len(after) <= len(before):
                    continue
                for key in members:
                    plan = plans.get(key)
                    if plan and plan.edit:
                        plan.edit = None
                        plan.why = f"service {name!r} mounts {path} in another place that stays as it is"
                        changed = True


# --- the fixes ------------------------------------------------------------------------------


def _who(e: _Entry) -> str:
    names = ", ".join(repr(u) for u in sorted(e.users))
    return f"service {names}" if len(e.users) == 1 else f"services {names} (shared)"


def _changes(e: _Entry, key: str) -> tuple[tuple[str, ...], ...]:
    out: list[tuple[str, ...]] = [("services", u, key) for u in sorted(e.users)]
    # An anchor kept under a top-level `x-` key changes there too.
    start = e.node.start_mark.index
    for k, v in e.doc.root.value:
        if isinstance(k, ScalarNode) and k.value != "services" and v.start_mark.index <= start < v.end_mark.index:
            out.append((k.value,))
    return tuple(out)


def _plan(e: _Entry, old: str, new: str, allowed: set[str], options: dict[str, Any], bound: Bound) -> _Plan:
    held = sorted(set(e.users) - allowed)
    bulky = _bulky(_mount_path(old), options)
    if bulky:
        return _Plan(e, old, new, None, bulky, bulky=True, bound=bound)
    if held:
        return _Plan(e, old, new, None, f"shared with {', '.join(map(repr, held))}, which opts out of {ID}", bound=bound)
    if "$" in old:
        return _Plan(e, old, new, None, "it comes from a variable", bound=bound)
    if bound.size is None:
        return _Plan(e, old, new, None, bound.why, bulky=True, bound=bound)
    edit = _append(e.doc, e.node, old, new, e.flow)  # type: ignore[arg-type]
    return _Plan(e, old, new, edit, None if edit else "this scalar cannot be edited in place", bound=bound)


def _short(plan: _Plan) -> Fix:
    e = plan.entry
    line, col = position(e.node)
    path = _mount_path(plan.old)
    msg = f"{_who(e)}: tmpfs {path} has no size bound"
    if not plan.bulky:
        msg += f": add {plan.new[len(plan.old):].lstrip(':,')}"
    if plan.edit is None:
        return Fix(ID, f"{msg} (not edited: {plan.why})", e.doc.path, line, col, safety=Safety.DISPLAY_ONLY)
    bound = plan.bound or Bound(SCRATCH, SAFETY, "")
    if bound.safety is not Safety.SAFE:
        msg += f" ({bound.why})"
    return Fix(ID, msg, e.doc.path, line, col, (plan.edit,), bound.safety, _changes(e, "tmpfs"),
               provenance=((f"size={bound.size}", bound.why),))


def _append(doc: ComposeDoc, node: ScalarNode, old: str, new: str, flow: bool) -> Edit | None:
    text = doc.text
    end = node.end_mark.index
    suffix = new[len(old):]
    if node.style in ("'", '"'):
        # Insert before the closing quote: escapes and line folds inside stay as written.
        return Edit(doc.path, end - 1, end - 1, suffix) if text[end - 1] == node.style else None
    if node.style:
        return None  # a block scalar
    if not flow:
        return Edit(doc.path, end, end, suffix)  # `:` and `,` are plain-safe in block context
    # In a flow collection `,` ends the item: quote it. Skip an anchor or tag written before it.
    start = node.start_mark.index
    while text[start] in "&!":
        m = _PROPERTY.match(text, start)
        if m is None:
            return None
        start = m.end()
    if text[start:end] != old:
        return None  # folded over several lines
    return Edit(doc.path, start, end, render.quote(new, doc.style.quote))


def _long(project: Project, e: _Entry, held: list[str], options: dict[str, Any]) -> Iterator[Fix]:
    node = e.node
    assert isinstance(node, MappingNode)
    v = to_value(node)
    assert isinstance(v, dict)
    tmpfs = v.get("tmpfs")
    if isinstance(tmpfs, dict) and tmpfs.get("size") is not None:
        return
    target = v.get("target")
    bound = bound_for(project, e.users, str(target), options)
    size = bound.size or SCRATCH
    doc = e.doc
    line, col = position(node)
    msg = f"{_who(e)}: tmpfs volume {target} has no size bound"
    edits: list[Edit] | None = None
    why = _bulky(str(target), options) or (bound.why if bound.size is None else None)
    if why is None:
        msg += f": add tmpfs.size: {size}"
        if held:
            why = f"shared with {', '.join(map(repr, held))}, which opts out of {ID}"
        elif "tmpfs" in v and doc.get(node, "tmpfs") is None:
            why = "its tmpfs options come from a merge key"
        else:
            # The entry's own mapping is edited even when it is an anchor: every user is declared.
            edits = _size_edits(doc, node, size)
            why = None if edits else "this mapping cannot be edited in place"
    if not edits:
        yield Fix(ID, f"{msg} (not edited: {why})", doc.path, line, col, safety=Safety.DISPLAY_ONLY)
        return
    if bound.safety is not Safety.SAFE:
        msg += f" ({bound.why})"
    yield Fix(ID, msg, doc.path, line, col, tuple(edits), bound.safety, _changes(e, "volumes"),
              provenance=((f"tmpfs.size {size}", bound.why),))


def _size_edits(doc: ComposeDoc, node: MappingNode, size: str | int) -> list[Edit] | None:
    """`tmpfs.size` added to a volume mapping, block or flow."""
    kv = doc.get(node, "tmpfs")
    flow_opts = kv is not None and isinstance(kv[1], MappingNode) and kv[1].flow_style
    if kv is not None and doc.is_alias(kv[1], doc.key_end(kv[0])):
        return None  # options shared through an alias: not this entry's to change
    if not node.flow_style and not flow_opts:
        return yamledit.ensure(doc, node, ("tmpfs", "size"), size, node.start_mark.index)
    value = render.scalar(size, doc.style)
    if kv is None:
        edit = _flow_insert(doc, node, f"tmpfs: {{size: {value}}}")
    elif flow_opts:
        edit = _flow_insert(doc, kv[1], f"size: {value}")  # type: ignore[arg-type]
    else:
        edit = None
    return None if edit is None else [edit]


def _flow_insert(doc: ComposeDoc, mapping: MappingNode, entry: str) -> Edit | None:
    """`entry` added as the last item of a flow mapping, after its last value, if nothing but
    blanks (and a trailing comma) sits between that value and the closing brace."""
    text = doc.text
    close = mapping.end_mark.index - 1
    if text[close] != "}":
        return None
    if not mapping.value:
        opened = text.find("{", mapping.start_mark.index)
        return Edit(doc.path, close, close, entry) if not text[opened + 1 : close].strip() else None
    k, v = mapping.value[-1]
    end = doc.content_end(v, doc.key_end(k))
    gap = text[end:close]
    if not gap.strip():
        return Edit(doc.path, end, end, f", {entry}")
    if gap.strip() == ",":
        at = end + gap.index(",") + 1
        return Edit(doc.path, at, at, f" {entry}")
    return None  # a comment inside the braces
