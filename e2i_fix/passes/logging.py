"""logging: log rotation for every service.

## What it does
Where the stack already rotates logs, every service without `logging` gets the rotation the
other services of its file have, written their way (`e2i_fix/conventions.py`): the same
figures, the same form, the same quoting and key order. Services that alias an anchor
(`logging: *logging`) get the alias, where the anchor comes before them; services that spell
the block out get the same block, inline. A file that writes no logging of its own follows
the rest of the stack, inline (an alias cannot reach another file's anchor).

A stack that rotates nowhere gets one shared block in each compose file that needs it,

    x-logging: &default-logging
      driver: json-file
      options:
        max-size: "10m"
        max-file: "3"

and `logging: *default-logging` on every service without `logging`. High-volume services (the
`api` role by default: gunicorn, uvicorn, node servers, or a name like `api`/`backend`) get a
second block, `&high-volume-logging`, with 50m x 5; in a stack with figures of its own, only
where the configuration asks for them. A file that already anchors a json-file logging block
with `max-size` before `services:` has it reused instead of a second one.

A one-shot job that is never restarted (`restart` absent or `"no"`, named or commanded like a
migration, a seed or a setup job, or a bare busybox, alpine, debian or ubuntu image run with no
command nor terminal, a data-only container whose shell exits at once: `project.runs_once`)
gets no new `logging`: it writes a few lines and exits. It inherits what the service it extends or merges gets.

A json-file logging without `max-size` gets the missing options added, in place (in its
anchor, if it is one), with the stack's figures. Services with another driver (`local`
rotates by itself; `syslog`, `gelf`, `none`...) are left alone. A service written as a flow
mapping (`web: {image: x}`) is reported, not rewritten. A block that several services share
(an anchor, a merged service, an `extends` base) is edited once, for all of them.

Where services merge one service template (`<<: *airflow-common`, an anchored block with
`image` or `build`) or extend one service, `logging:` goes once into the template, and a
service that needs the other size gets its own line; each service still has its finding. The
template is used only when every service it reaches then means what it would with a line of its
own (`placement = "per-service"` in the configuration turns this off).

## Why
Docker's default json-file driver never rotates: a chatty service fills the disk.

## Example
Before:

    x-app-common: &app-common
      image: example/app:1.4
    services:
      scheduler:
        <<: *app-common
      triggerer:
        <<: *app-common
      api:
        <<: *app-common
        command: gunicorn app:app

After:

    x-logging: &default-logging
      driver: json-file
      options:
        max-size: "10m"
        max-file: "3"

    x-logging-high-volume: &high-volume-logging
      ...

    x-app-common: &app-common
      image: example/app:1.4
      logging: *default-logging
    services:
      scheduler:
        <<: *app-common
      triggerer:
        <<: *app-common
      api:
        <<: *app-common
        command: gunicorn app:app
        logging: *high-volume-logging

## Fix safety
Safe: rotation only drops old log lines; the defaults keep 30 MB per container.

## Options
- `max-size`, `max-file`: the rotation; not set: the stack's own figures, else 10m and 3. A
  figure set here is written as the stack writes the one it replaces.
- `high-volume-max-size`, `high-volume-max-file`: for high-volume services (not set: 50m, 5).
- `high-volume-services`: service names; default: every service of the `api` role (in a stack
  that has figures of its own, none unless one of these three options is set).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from e2i_fix import conventions, fileroles, placement, yamledit
from e2i_fix.fix import Edit, Fix, ModelPath, Safety
from e2i_fix.project import Project, Service, role, runs_once, targets
from e2i_fix.render import Alias, Anchored
from e2i_fix.yamldoc import (
    ComposeDoc, MappingNode, Node, ScalarNode, effective_entry, is_merge_key,
    position, to_value,
)

ID = "logging"
SUMMARY = "log rotation (json-file max-size/max-file) as the stack writes it, else through one shared anchor"
SAFETY = Safety.SAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
# The service keys its decisions depend on: another pass changing one of them runs it again.
READS = frozenset({"logging", "command", "entrypoint", "extends"})
# Not set: the stack's own figures, else these.
DEFAULTS: dict[str, Any] = {
    "max-size": None,
    "max-file": None,
    "high-volume-max-size": None,
    "high-volume-max-file": None,
    "high-volume-services": None,
}
BUILT_IN = {"max-size": "10m", "max-file": "3", "high-volume-max-size": "50m", "high-volume-max-file": "5"}
_HIGH = ("high-volume-max-size", "high-volume-max-file", "high-volume-services")

_ROTATING = ("json-file",)


def _config(size: str, files: str) -> dict[str, Any]:
    return {"driver": "json-file", "options": {"max-size": str(size), "max-file": str(files)}}


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    high = options["high-volume-services"]
    plans: dict[int, _DocPlan] = {}
    needs: dict[str, placement.Need] = {}
    allowed = targets(project, ID, options)
    names = {s.name for s in allowed}
    written = _written(project)
    ways = conventions.read(project)
    once = frozenset(s.name for s in allowed if "logging" not in s.config and runs_once(s))
    for svc in allowed:
        logging = svc.config.get("logging")
        if svc.name in once:
            continue  # a migration or seed job writes a few lines and exits
        if logging is None:
            where = svc.home or next((d for d in svc.defs if not d.doc.readonly), None)
            if where is None:
                continue  # only in a file read for context: not this run's to fix
            later = svc.shadows(svc.home, "logging") if svc.home else None
            if later is not None:  # an override resets it: logging added here would be dropped
                line, col = position(later.key)
                yield Fix(ID, f"service {svc.name!r} has no log rotation (an override resets its logging: "
                          "set it there)", later.doc.path, line, col, safety=Safety.DISPLAY_ONLY)
                continue
            plan = plans.get(id(where.doc))
            if plan is None:
                plan = plans[id(where.doc)] = _DocPlan(where.doc, options, ways.rotation(where.doc))
            volume = plan.high_volume and (svc.name in high if high is not None else role(svc) == "api")
            value, said = plan.value("high" if volume else "default", where.node)
            needs[svc.name] = placement.Need(
                value, f"service {svc.name!r} has no log rotation: add {said}",
                f"service {svc.name!r} has no log rotation (its mapping cannot be edited here)")
        elif isinstance(logging, dict):
            yield from _complete(svc, logging, options, written, names, ways)

    def support(doc: ComposeDoc, uses: list[tuple[int, Any]]) -> tuple[tuple[Edit, ...], tuple[ModelPath, ...]]:
        plan = plans.get(id(doc))
        return plan.blocks(uses) if plan else ((), ())

    yield from placement.add_key(project, ID, "logging", needs, options, SAFETY, support, indifferent=once)


class _DocPlan:
    """How one file gets its log rotation. Where the stack already rotates logs, the way it
    does (`conventions`): an alias of the file's own anchor, or the same block inline, with its
    figures unless the configuration sets others. Otherwise the shared anchor blocks: their
    names are known before any edit is made, the blocks go in front of the first place that
    uses them."""

    def __init__(self, doc: ComposeDoc, options: dict[str, Any], rotation: conventions.Rotation | None) -> None:
        self.doc = doc
        self.options = options
        self.rotation = rotation
        # The stack's figures stand for every service, unless the configuration asks for more.
        self.high_volume = rotation is None or any(options[k] is not None for k in _HIGH)
        self.existing = _existing_anchor(doc) if rotation is None else None
        self.names: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        if rotation is not None:
            return
        taken = {name for name, _ in doc.anchors()}
        keys = set(doc.value)
        for kind, name, key in (("default", "default-logging", "x-logging"),
                                ("high", "high-volume-logging", "x-logging-high-volume")):
            if kind == "default" and self.existing:
                self.names[kind] = self.existing
                continue
            self.names[kind] = yamledit.unique_name(name, taken)
            self.keys[kind] = yamledit.unique_name(key, keys)
            taken.add(self.names[kind])
            keys.add(self.keys[kind])

    def figures(self, kind: str) -> dict[str, str | None]:
        return _figures(self.options, self.rotation, kind)

    def value(self, kind: str, service: Node) -> tuple[Any, str]:
        """What a service defined at `service` gets for `kind`, and how its finding says it."""
        rot = self.rotation
        if rot is None:
            name = self.names[kind]
            return Alias(name), f"`logging: *{name}`"
        figures = self.figures(kind)
        if (kind == "default" and rot.anchor and rot.node is not None
                and rot.node.start_mark.index < service.start_mark.index
                and all(figures[k] == rot.figures.get(k) for k in figures)):
            return Alias(rot.anchor), f"`logging: *{rot.anchor}`, as the file's other services"
        said = ", ".join(f"{k} {v}" for k, v in figures.items() if v is not None)
        return (conventions.with_figures(rot, figures, self.doc),
                f"`logging` (json-file, {said}) as the stack's other services write it")

    def blocks(self, uses: list[tuple[int, Any]]) -> tuple[tuple[Edit, ...], tuple[ModelPath, ...]]:
        """The anchor blocks the new aliases name, before the top-level key of the first one.
        Every fix of the file carries all of them (shared edits apply once), so they land in
        a fixed order whichever fixes are taken."""
        used = {v.name for _, v in uses if isinstance(v, Alias)}
        first = min((pos for pos, _ in uses), default=len(self.doc.text))
        before = "services"
        for k, _ in self.doc.root.value:
            if isinstance(k, ScalarNode) and k.start_mark.index < first:
                before = k.value
        edits: list[Edit] = []
        changes: list[ModelPath] = []
        for kind in ("default", "high"):
            if kind not in self.keys or self.names[kind] not in used:
                continue
            fig = self.figures(kind)
            key = self.keys[kind]
            edit = yamledit.top_level_block(self.doc, key, Anchored(self.names[kind], _config(
                str(fig["max-size"]), str(fig["max-file"]))), before)
            if edits:  # both at one place: one insertion, the second after the first's blank line
                first_edit = edits.pop()
                edit = first_edit._replace(text=first_edit.text + edit.text.lstrip("\n"))
            edits.append(edit)
            changes.append((key,))
        return tuple(edits), tuple(changes)


def _figures(options: dict[str, Any], rot: conventions.Rotation | None, kind: str) -> dict[str, str | None]:
    """max-size and max-file for `kind` ("default" or "high"): the configuration's, else the
    stack's (a figure its blocks leave out stays out), else the built-in ones."""
    pre = "" if kind == "default" else "high-volume-"
    out: dict[str, str | None] = {}
    for k in ("max-size", "max-file"):
        given = options[pre + k]
        if given is not None:
            out[k] = str(given)
        elif rot is not None and kind == "default":
            out[k] = rot.figures.get(k)
        else:
            out[k] = BUILT_IN[pre + k]
    return out


def _existing_anchor(doc: ComposeDoc) -> str | None:
    """An anchored json-file logging block, already in the file, to reuse: one with max-size,
    else one a service uses as its logging (this pass adds its max-size in the same run, so a
    second anchor beside it would be churn, and two insertions at its end could interleave).

    Only one written before `services:`: an alias must come after its anchor, and the new
    `logging: *name` lines may land in any service."""
    services = doc.get(doc.root, "services")
    completed: str | None = None
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
            if used_as_logging and completed is None and not doc.readonly:
                completed = name
    return completed


def _pairs(doc: ComposeDoc) -> Iterator[tuple[Any, Node]]:
    svcs = doc.node("services")
    if isinstance(svcs, MappingNode):
        for _, svc in svcs.value:
            if isinstance(svc, MappingNode):
                yield from svc.value


def _complete(svc: Service, logging: dict[str, Any], options: dict[str, Any],
              written: dict[int, list[str]], names: set[str], ways: conventions.Conventions) -> Iterator[Fix]:
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
        rot = ways.rotation(doc)
        figures = _figures(options, rot, "default")
        wanted = {"max-size": figures["max-size"] or BUILT_IN["max-size"]}
        if "max-file" not in opts and figures["max-file"] is not None:
            wanted["max-file"] = figures["max-file"]
        missing: dict[str, Any] = dict(wanted)
        if rot is not None:  # quoted as the stack quotes its own figures
            written_so = conventions.with_figures(rot, wanted, doc)["options"]
            missing = {k: v for k, v in written_so.items() if k in wanted}  # in the stack's key order
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
        changes = tuple(("services", s, "logging") for s in users) + yamledit.holding_block(doc, node)
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
