"""logging: log rotation for every service.

## What it does
Adds one shared block to each compose file that needs it,

    x-logging: &default-logging
      driver: json-file
      options:
        max-size: "10m"
        max-file: "3"

and `logging: *default-logging` to every service without `logging`. High-volume services (the
`api` role by default: gunicorn, uvicorn, node servers, or a name like `api`/`backend`) get a
second block, `&high-volume-logging`, with 50m x 5. A `json-file` logging without `max-size`
gets the missing options added, in place (in its anchor, if it is one). A file that already
anchors a json-file logging block with `max-size` before `services:` has it reused instead of a
second one. Services with another driver (`local` rotates by itself; `syslog`, `gelf`, `none`...)
are left alone. A service written as a flow mapping (`web: {image: x}`) is reported, not
rewritten. A block that several services share (an anchor, a merged service, an `extends` base)
is edited once, for all of them.

## Why
Docker's default json-file driver never rotates: a chatty service fills the disk.

## Fix safety
Safe: rotation only drops old log lines; the defaults keep 30 MB per container.

## Options
- `max-size`, `max-file`: the default rotation.
- `high-volume-max-size`, `high-volume-max-file`: for high-volume services.
- `high-volume-services`: service names; default: every service of the `api` role.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from e2i_fix import yamledit
from e2i_fix.fix import Fix, Safety
from e2i_fix.project import Project, Service, role, targets
from e2i_fix.render import Alias, Anchored
from e2i_fix.yamldoc import (
    ComposeDoc, MappingNode, Node, ScalarNode, SequenceNode, effective_entry, is_merge_key, merge_sources,
    position, to_value,
)

ID = "logging"
SUMMARY = "log rotation (json-file max-size/max-file) through one shared anchor"
SAFETY = Safety.SAFE
# The service keys its decisions depend on: another pass changing one of them runs it again.
READS = frozenset({"logging", "command", "entrypoint", "extends"})
DEFAULTS: dict[str, Any] = {
    "max-size": "10m",
    "max-file": "3",
    "high-volume-max-size": "50m",
    "high-volume-max-file": "5",
    "high-volume-services": None,
}

_ROTATING = ("json-file",)


def _config(size: str, files: str) -> dict[str, Any]:
    return {"driver": "json-file", "options": {"max-size": str(size), "max-file": str(files)}}


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    high = options["high-volume-services"]
    plans: dict[int, _DocPlan] = {}
    wanted: list[tuple[_DocPlan, Service, str]] = []
    unreachable: list[Service] = []
    allowed = targets(project, ID, options)
    names = {s.name for s in allowed}
    written = _written(project)
    for svc in allowed:
        logging = svc.config.get("logging")
        if logging is None:
            home = svc.home
            if home is None:
                unreachable.append(svc)
                continue
            later = svc.shadows(home, "logging")
            if later is not None:  # an override resets it: logging added here would be dropped
                line, col = position(later.key)
                yield Fix(ID, f"service {svc.name!r} has no log rotation (an override resets its logging: "
                          "set it there)", later.doc.path, line, col, safety=Safety.DISPLAY_ONLY)
                continue
            volume = svc.name in high if high is not None else role(svc) == "api"
            plan = plans.get(id(home.doc))
            if plan is None:
                plan = plans[id(home.doc)] = _DocPlan(home.doc, options)
            wanted.append((plan, svc, "high" if volume else "default"))
        elif isinstance(logging, dict):
            yield from _complete(svc, logging, options, written, names)
    # A service that merges (`<<: *x`) a mapping that gets logging here inherits it, and so does
    # one that is an alias of it (`web2: *web`).
    receiving = {id(svc.home.node) for _, svc, _ in wanted if svc.home}

    def inherits(svc: Service) -> bool:
        own = svc.home.node if svc.home else None
        return any(d.node is not own and id(d.node) in receiving
                   or any(id(src) in receiving for src in merge_sources(d.node)) for d in svc.defs)

    wanted = [w for w in wanted if not inherits(w[1])]
    for svc in unreachable:
        # A flow mapping (`web: {image: x}`) or an alias cannot take a new key without being
        # rewritten: say so. A service only in a file read for context is not this run's to fix.
        where = next((d for d in svc.defs if not d.doc.readonly), None)
        if where is not None and not inherits(svc):
            line, col = position(where.key)
            yield Fix(ID, f"service {svc.name!r} has no log rotation (its mapping cannot be edited here)",
                      where.doc.path, line, col, safety=Safety.DISPLAY_ONLY)
    # Anchors first, in a fixed order, so the blocks read the same whichever service needs them.
    for kind in ("default", "high"):
        for plan, _, k in wanted:
            if k == kind:
                plan.anchor(kind)
    for plan, svc, kind in wanted:
        yield plan.reference(svc, kind, project)


class _DocPlan:
    """The shared anchor blocks one file needs, found or added once and shared by its fixes."""

    def __init__(self, doc: ComposeDoc, options: dict[str, Any]) -> None:
        self.doc = doc
        self.options = options
        self.anchors: dict[str, tuple[str, tuple[Any, ...]]] = {}
        self.existing = _existing_anchor(doc)
        self.taken = {name for name, _ in doc.anchors()}
        self.keys = {k for k in doc.value}

    def anchor(self, kind: str) -> tuple[str, tuple[Any, ...]]:
        if kind not in self.anchors:
            if kind == "default" and self.existing:
                self.anchors[kind] = (self.existing, ())
            else:
                size, files = (
                    (self.options["max-size"], self.options["max-file"]) if kind == "default"
                    else (self.options["high-volume-max-size"], self.options["high-volume-max-file"])
                )
                name = _unique(f"{kind}-logging" if kind == "default" else "high-volume-logging", self.taken)
                key = _unique("x-logging" if kind == "default" else "x-logging-high-volume", self.keys)
                self.taken.add(name)
                self.keys.add(key)
                edit = yamledit.top_level_block(self.doc, key, Anchored(name, _config(size, files)))
                self.anchors[kind] = (name, (edit, (key,)))
        return self.anchors[kind]

    def reference(self, svc: Service, kind: str, project: Project) -> Fix:
        home = svc.home
        assert home is not None and isinstance(home.node, MappingNode)  # editable: a block mapping
        name, extra = self.anchor(kind)
        edit = yamledit.append_entry(self.doc, home.node, "logging", Alias(name), home.key.end_mark.index)
        line, col = position(home.key)
        if edit is None:
            return Fix(ID, f"service {svc.name!r} has no log rotation (its mapping cannot be edited here)",
                       self.doc.path, line, col, safety=Safety.DISPLAY_ONLY)
        # Every new anchor block of the file rides along (shared edits apply once), so the
        # blocks land in a fixed order whichever fixes are taken first.
        blocks = [a[1] for a in self.anchors.values() if a[1]]
        edits = (edit, *(b[0] for b in blocks))
        users = project.with_extenders(project.sharers(home.node))
        changes = (*(("services", s, "logging") for s in users), *(b[1] for b in blocks))
        return Fix(ID, f"service {svc.name!r} has no log rotation: add `logging: *{name}`",
                   self.doc.path, line, col, edits, SAFETY, changes)


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}-{i}" in taken:
        i += 1
    return f"{name}-{i}"


def _existing_anchor(doc: ComposeDoc) -> str | None:
    """An anchored json-file logging block with max-size, already in the file, to reuse.

    Only one written before `services:`: an alias must come after its anchor, and the new
    `logging: *name` lines may land in any service."""
    services = doc.get(doc.root, "services")
    for name, node in doc.anchors():
        if not isinstance(node, MappingNode):
            continue
        if services is None or node.start_mark.index > services[0].start_mark.index:
            continue
        used_as_logging = any(k.value == "logging" for k, v in _pairs(doc) if v is node)
        keys = {k.value for k, _ in node.value}
        if not (used_as_logging or "log" in name.lower()) or "driver" not in keys and "options" not in keys:
            continue
        cfg = to_value(node)
        if isinstance(cfg, dict) and cfg.get("driver", "json-file") in _ROTATING:
            opts = cfg.get("options")
            if isinstance(opts, dict) and "max-size" in opts:
                return name
    return None


def _pairs(doc: ComposeDoc) -> Iterator[tuple[Any, Node]]:
    svcs = doc.node("services")
    if isinstance(svcs, MappingNode):
        for _, svc in svcs.value:
            if isinstance(svc, MappingNode):
                yield from svc.value


def _complete(svc: Service, logging: dict[str, Any], options: dict[str, Any],
              written: dict[int, list[str]], names: set[str]) -> Iterator[Fix]:
    """A json-file logging without max-size: add the missing options where it is written."""
    if logging.get("driver", "json-file") not in _ROTATING:
        return
    opts = logging.get("options")
    opts = opts if isinstance(opts, dict) else {}
    if "max-size" in opts:
        return
    # The last file that sets it wins; in that file, the service's own key or a merged one.
    for d in reversed(svc.defs):
        got = effective_entry(d.node, "logging")
        if got is None:
            continue
        holder, key, node = got
        doc = d.doc
        users = written[id(node)]
        line, col = position(key if holder is d.node else d.key)
        anchored = holder is not d.node or doc.is_alias(node, doc.key_end(key))
        where = "its anchor" if anchored else "it"
        missing: dict[str, Any] = {"max-size": str(options["max-size"])}
        if "max-file" not in opts:
            missing["max-file"] = str(options["max-file"])
        held = sorted(set(users) - names)
        edits: list[Any] | None = None
        why = f"cannot edit {where} here"
        if held:
            why = f"shared with {', '.join(map(repr, held))}, which opts out of {ID}"
        elif isinstance(node, MappingNode) and not doc.readonly:
            # `after` is the node's own start: an anchor is edited deliberately, for every user.
            after = node.start_mark.index
            opts_kv = doc.get(node, "options")
            if opts_kv is None or not isinstance(opts_kv[1], MappingNode):
                edits = yamledit.ensure(doc, node, ("options",), missing, after)
            else:
                edits = []
                for k, v in missing.items():
                    got_edits = yamledit.ensure(doc, node, ("options", k), v, after)
                    if got_edits is None:
                        edits = None
                        break
                    edits.extend(got_edits)
        if not edits:
            yield Fix(ID, f"service {svc.name!r}: json-file logging without max-size ({why})",
                      doc.path, line, col, safety=Safety.DISPLAY_ONLY)
            return
        changes = tuple(("services", s, "logging") for s in users) + _top_path(doc, node)
        yield Fix(ID, f"service {svc.name!r}: json-file logging never rotates; add {', '.join(missing)}"
                  + (" to its anchor" if anchored else ""), doc.path, line, col, tuple(edits), SAFETY, changes)
        return


def _written(project: Project) -> dict[int, list[str]]:
    """Each logging value of the stack by node identity, with the services it applies to:
    through an alias, a merge key (of an `x-` block or of another service) or `extends`."""
    out: dict[int, list[str]] = {}
    for doc in project.docs:
        svcs = doc.node("services")
        if not isinstance(svcs, MappingNode):
            continue
        for k, node in svcs.value:
            got = effective_entry(node, "logging") if isinstance(k, ScalarNode) and not is_merge_key(k) else None
            if got is not None:
                users = out.setdefault(id(got[2]), [])
                if k.value not in users:
                    users.append(k.value)
    return {nid: project.with_extenders(users) for nid, users in out.items()}


def _top_path(doc: ComposeDoc, node: Node) -> tuple[tuple[str, ...], ...]:
    """The top-level key (other than `services`) that holds `node`, if any: an `x-` block."""
    start = node.start_mark.index
    for k, v in doc.root.value:
        if isinstance(k, ScalarNode) and k.value != "services" and v.start_mark.index <= start < v.end_mark.index:
            return ((k.value,),)
    return ()
