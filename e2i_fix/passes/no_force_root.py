"""no-force-root: Celery's `C_FORCE_ROOT` goes, and the service runs as the image's own user.

## What it does
Where a service sets `C_FORCE_ROOT` (any value, list or map `environment`, in any compose file
of the stack), the entry is removed, with the comment lines directly above it when they speak of
it (they mention root, Celery or `C_FORCE_ROOT`); other entries and their comments stay. An
environment left empty goes with it. The service then gets `user:` set to the `USER` of the
Dockerfile stage it builds, with the group its `useradd`/`adduser` gives it (`e2i:e2i`). A stage
with no USER yet, to which `non-root-user` gives one in this same run (the one decision both
passes read: `facts.decisions.stage_user`), counts with that user: the fix is then unsafe, as
the USER it rests on is.

An environment block several services merge (`<<: *celery-env`) loses the entry once, in one fix
that gives each of them its user; if one of them has no known user or opts out, the block is
reported instead, so no service loses `C_FORCE_ROOT` without a user to run as.

Where no non-root user is known (an image the stack does not build, a stage that runs as root),
`C_FORCE_ROOT` stays and a finding points at the Dockerfile `non-root-user` pass: dropping it
alone would leave the worker root, or stop a pickle-configured Celery from starting. One set in
an `env_file` is reported at its line in that file: env files are not edited.

## Why
`C_FORCE_ROOT` lets a Celery worker run as root; a task that deserialises a hostile message then
owns the container. The image usually has a user for exactly this, and the worker should use it.

## Example
Before (the Dockerfile's last stage has `useradd --gid app app` and `USER app`):

    services:
      worker:
        build: .
        environment:
          - BROKER_URL=redis://redis:6379/0
          # Left over from when the image ran as root.
          - C_FORCE_ROOT=1

After:

    services:
      worker:
        build: .
        environment:
          - BROKER_URL=redis://redis:6379/0
        user: app:app

An override that builds another stage, one without that user (a development stage), keeps the
service as it ran there: that file gets `user: root` and `C_FORCE_ROOT` back, and the finding
says to give that stage the user too.

## Fix safety
Safe where the user is the one the image already runs as in every variant of the stack. Unsafe
where the compose file said `user: root` (or `0`), where the user is the one `non-root-user`
adds in the same run, or where an override builds a stage that does not create that user (the
fix names it: give that stage the user too). `cap-drop` reads the user this pass sets, so the
service does not keep root's capabilities.

## Options
None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from e2i_fix import fileroles, images, lazyre, render, yamledit
from e2i_fix.facts import decisions, runs
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, Service, opted_out, resolve_build, targets
from e2i_fix.records import NamedTuple
from e2i_fix.yamldoc import ComposeDoc, MappingNode, Node, ScalarNode, SequenceNode, effective_entry, position

if TYPE_CHECKING:
    from e2i_fix.dockerfile import Stage

ID = "no-force-root"
SUMMARY = "drop C_FORCE_ROOT; run as the image's non-root user"
SAFETY = Safety.SAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
READS = frozenset({"environment", "env_file", "user", "build", "image", "extends"})
DEFAULTS: dict[str, Any] = {}

VAR = "C_FORCE_ROOT"
_ABOUT = lazyre.compile(r"root|celery|c_force_root", re.IGNORECASE)


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    allowed = targets(project, ID, options)
    names = {s.name for s in allowed}
    done: set[int] = set()  # shared environment blocks already fixed, for all their users
    for svc in allowed:
        yield from _service(project, svc, names, done)


def _service(project: Project, svc: Service, names: set[str], done: set[int]) -> Iterator[Fix]:
    for path, entries in project.service_env_files(svc):
        for e in entries:
            if e.key == VAR:
                yield Fix(ID, f"service {svc.name!r}: {VAR} in this env file lets Celery run as root; remove it "
                          "and run the service as a non-root user", path, e.line, e.col,
                          safety=Safety.DISPLAY_ONLY)
    # An override that runs the service as root on purpose, with C_FORCE_ROOT beside it, is
    # what this pass leaves where a stage has no other user: it is not a fix to make again.
    places = [p for d in svc.defs if not _root_on_purpose(project, d) for p in _places(d.doc, d.node)]
    if not places:
        return
    doc0, key0, _, _ = places[0]
    line, col = position(key0)
    shared = next((p[3] for p in places if p[3] is not None), None)
    if shared is not None:
        yield from _shared(project, svc, shared, names, done)
        return
    user, why = _user(project, svc)
    if user is not None and user[3]:
        # Set only in override files whose stage has no such user: those are kept as they ran,
        # so there is nothing to drop.
        owner = images.owners(project)
        index = {id(d): owner[i] for i, d in enumerate(project.docs)}
        kept = {e.path for e in user[3][1:]}
        if all(index[id(doc)] != 0 and doc.path in kept for doc, _, _, _ in places):
            user, why = None, "the stage its override builds runs as root"
    if user is None:
        yield Fix(ID, f"service {svc.name!r} runs Celery as root through {VAR}, and no non-root user is known "
                  f"({why}); give its image one (the Dockerfile pass non-root-user) and {VAR} can go",
                  doc0.path, line, col, safety=Safety.DISPLAY_ONLY)
        return
    name, safety, notes, user_edits = user
    edits: list[Edit] = []
    for doc, _, remove, _ in places:
        if remove is None:
            yield Fix(ID, f"service {svc.name!r}: {VAR} is set where it cannot be edited here (a flow "
                      "mapping, an alias or a shared block)", doc.path, line, col, safety=Safety.DISPLAY_ONLY)
            return
        edits.extend(remove)
    edits.extend(user_edits)
    users = project.with_extenders([svc.name])
    changes = tuple(("services", u, k) for u in users for k in ("environment", "user"))
    what = f"drop {VAR} and run as {name}" if user_edits else f"drop {VAR} (it runs as {name})"
    message = f"service {svc.name!r} runs Celery as root through {VAR}; {what}" + "".join(f"; {n}" for n in notes)
    yield Fix(ID, message, doc0.path, line, col, tuple(edits), safety, changes)


def _root_on_purpose(project: Project, d: Any) -> bool:
    if d.doc is project.docs[0]:
        return False
    got = d.get("user")
    return got is not None and isinstance(got[1], ScalarNode) and str(got[1].value) in images.ROOT_USERS


_Place = tuple[ComposeDoc, ScalarNode, "list[Edit] | None", "Node | None"]


def _shared(project: Project, svc: Service, env: Node, names: set[str], done: set[int]) -> Iterator[Fix]:
    """C_FORCE_ROOT in an environment block several services merge (`<<: *celery-env`): one fix
    for all of them, or none, so no service loses it without its user."""
    if id(env) in done:
        return
    done.add(id(env))
    group = [s for s in project.services.values()
             if any(p[3] is env for d in s.defs for p in _places(d.doc, d.node))]
    where = next(p for d in svc.defs for p in _places(d.doc, d.node) if p[3] is env)
    line, col = position(where[1])
    held = [s.name for s in group if s.name not in names]
    if held or where[2] is None:
        why = f"shared with {', '.join(map(repr, held))}, which opts out of {ID}" if held else "it cannot be edited here"
        yield Fix(ID, f"services {', '.join(repr(s.name) for s in group)} run Celery as root through {VAR} in a "
                  f"shared environment block ({why})", where[0].path, line, col, safety=Safety.DISPLAY_ONLY)
        return
    edits: dict[Edit, None] = dict.fromkeys(where[2])
    safety = SAFETY
    said: list[str] = []
    for member in group:
        user, why = _user(project, member)
        if user is None:
            yield Fix(ID, f"services {', '.join(repr(s.name) for s in group)} run Celery as root through {VAR} in a "
                      f"shared environment block, and {member.name!r} has no known non-root user ({why}); give its "
                      f"image one (the Dockerfile pass non-root-user) and {VAR} can go",
                      where[0].path, line, col, safety=Safety.DISPLAY_ONLY)
            return
        name, member_safety, notes, user_edits = user
        safety = min(safety, member_safety)
        edits.update(dict.fromkeys(user_edits))
        said.append(f"{member.name} as {name}" + "".join(f" ({n})" for n in notes))
    users = project.with_extenders([s.name for s in group])
    changes = tuple(("services", u, k) for u in users for k in ("environment", "user")) + yamledit.holding_block(where[0], env)
    yield Fix(ID, f"services {', '.join(repr(s.name) for s in group)} run Celery as root through {VAR} in a shared "
              f"environment block; drop it and run {', '.join(said)}", where[0].path, line, col, tuple(edits), safety,
              changes)


def _places(doc: ComposeDoc, node: Node) -> list[_Place]:
    """Each `C_FORCE_ROOT` entry of one definition, with the edits that remove it (None: it
    cannot be removed here) and, for an environment merged from another mapping, its node."""
    got = effective_entry(node, "environment")
    if got is None:
        return []
    holder, key, env = got
    merged = holder is not node and not doc.is_alias(env, doc.key_end(key)) and not doc.readonly
    shared = holder is not node and not merged or doc.is_alias(env, doc.key_end(key)) or doc.readonly
    out: list[_Place] = []
    if isinstance(env, SequenceNode):
        items = [i for i in env.value if isinstance(i, ScalarNode) and str(i.value).split("=", 1)[0].strip() == VAR]
        if not items:
            return []
        edits = None if shared or env.flow_style else _remove(doc, key, env, items, env.value)
        out.append((doc, items[0] if isinstance(items[0], ScalarNode) else key, edits, env if merged else None))
    elif isinstance(env, MappingNode):
        pairs = [(k, v) for k, v in env.value if isinstance(k, ScalarNode) and k.value == VAR]
        if not pairs:
            return []
        edits = None if shared or env.flow_style else _remove(doc, key, env, [k for k, _ in pairs], [k for k, _ in env.value])
        out.append((doc, pairs[0][0], edits, env if merged else None))
    return out


def _remove(doc: ComposeDoc, key: ScalarNode, env: Node, gone: Sequence[Node], every: Sequence[Node]) -> list[Edit] | None:
    """Lines to delete: each entry's own lines, the comments above it that speak of it; the
    whole `environment:` when nothing else is left."""
    text = doc.text
    if len(gone) == len(every):
        start = _comments_above(doc, doc.line_start(key.start_mark.index))
        end = doc.line_after(doc.content_end(env, doc.key_end(key)))
        return [Edit(doc.path, start, end, "")]
    edits = []
    for item in gone:
        first = doc.line_start(item.start_mark.index)
        if text[first : item.start_mark.index].strip() not in ("", "-"):
            return None
        # The entry ends at its value: a map entry's value node follows the key.
        end_node: Node = item
        if isinstance(env, MappingNode):
            end_node = next(v for k, v in env.value if k is item)
            end = doc.line_after(doc.content_end(end_node, doc.key_end(item)))
        else:
            end = doc.line_after(item.end_mark.index)
        edits.append(Edit(doc.path, _comments_above(doc, first), end, ""))
    return edits


def _comments_above(doc: ComposeDoc, line_start: int) -> int:
    """Where the comment lines directly above a line, that speak of C_FORCE_ROOT, begin."""
    text = doc.text
    col = len(text[line_start:]) - len(text[line_start:].lstrip(" "))
    pos = line_start
    while pos > 0:
        prev = doc.line_start(pos - 1)
        line = text[prev:pos]
        stripped = line.lstrip(" ")
        if not stripped.startswith("#") or len(line) - len(stripped) != col or not _ABOUT.search(stripped):
            break
        pos = prev
    return pos


# --- the user ---------------------------------------------------------------------------------

def accounts(stage: Stage) -> tuple[dict[str, str | None], dict[str, str]]:
    """Users the stage chain creates (with their primary group where said), and groups by gid."""
    chain: list[Stage] = []
    s: Stage | None = stage
    while s is not None:
        chain.insert(0, s)
        s = s.parent
    got = runs.accounts([ins.args for st in chain for ins in st.instructions if ins.name == "RUN"])
    return got.users, got.gids


def _stage_user(project: Project, config: dict[str, Any], stage: Stage) -> tuple[str, bool] | None:
    """The non-root user a stage runs as once this run's fixes are in, with its group where the
    Dockerfile says (`e2i:e2i`), and whether it is `non-root-user`'s in this run (the shared
    decision: `facts.decisions.stage_user`)."""
    user = stage.user
    if user is None or user in images.ROOT_USERS:
        planned = _planned(project, config, stage)
        if planned is None:
            return None
        return planned, True
    if "$" in user:
        return None
    if ":" in user:
        return user, False
    group = accounts(stage)[0].get(user)
    return (f"{user}:{group}" if group else user), False


def _planned(project: Project, config: dict[str, Any], stage: Stage) -> str | None:
    build = resolve_build(config.get("build"), project.folder, project.env)
    if build is None or build.dockerfile is None:
        return None
    plan = decisions.stage_user(project, build.dockerfile, stage.index)
    if plan.user is None or not decisions.applies(project, decisions.NON_ROOT_USER, Safety.UNSAFE):
        return None
    return f"{plan.user}:{plan.group}" if plan.group else plan.user


def _has_user(project: Project, config: dict[str, Any], stage: Stage | None, user: str) -> bool:
    """Whether `stage` runs as `user` once this run's fixes are in."""
    if stage is None:
        return False
    got = _stage_user(project, config, stage)
    return got is not None and got[0].split(":", 1)[0] == user.split(":", 1)[0]


class Decision(NamedTuple):
    """The user this pass gives a service (with the safety of that fix), and the override files
    (indexes into `project.docs`) that keep the service as it ran there."""

    user: str
    safety: Safety
    kept: frozenset[int]


def decision(project: Project, name: str) -> Decision | None:
    """The user this pass gives service `name` in this index where it drops C_FORCE_ROOT; None
    where it leaves the service's user as it is. `facts.decisions.user_after` reads it, so
    `cap-drop` knows who the service will run as."""
    return decisions.decide(project, (ID, name), lambda: _decision(project, name))


def _decision(project: Project, name: str) -> Decision | None:
    svc = project.services.get(name)
    if svc is None or svc.reset is not None or opted_out(svc, ID):
        return None
    ignored = project.settings.options(ID).get("_ignored_services", ()) if project.settings else ()
    if name in ignored:
        return None
    places = [p for d in svc.defs if not _root_on_purpose(project, d) for p in _places(d.doc, d.node)]
    if not places:
        return None
    shared = next((p[3] for p in places if p[3] is not None), None)
    if shared is not None:
        group = [s for s in project.services.values()
                 if any(p[3] is shared for d in s.defs for p in _places(d.doc, d.node))]
        where = next(p for p in places if p[3] is shared)
        if where[2] is None or any(s.name in ignored or opted_out(s, ID) for s in group):
            return None
        safety = SAFETY
        mine = None
        for member in group:
            user, _ = _user(project, member)
            if user is None:
                return None
            safety = min(safety, user[1])
            if member is svc:
                mine = user
        return None if mine is None else Decision(mine[0], safety, _kept(project, mine[3]))
    user, _ = _user(project, svc)
    if user is None or any(p[2] is None for p in places):
        return None
    kept = _kept(project, user[3])
    owner = images.owners(project)
    index = {id(d): owner[i] for i, d in enumerate(project.docs)}
    if user[3] and all(index[id(doc)] != 0 and index[id(doc)] in kept for doc, _, _, _ in places):
        return None
    return Decision(user[0], user[1], kept)


def _kept(project: Project, edits: list[Edit]) -> frozenset[int]:
    """The files where the edits after the first (which sets the user) keep the service's root."""
    paths = {e.path for e in edits[1:]}
    return frozenset(i for i, d in enumerate(project.docs) if d.path in paths)


def _user(project: Project, svc: Service) -> tuple[tuple[str, Safety, list[str], list[Edit]] | None, str]:
    """The user the service should run as, how safe setting it is, what to say, and the edit."""
    base = (project.model((0,)).get("services") or {}).get(svc.name)
    configured = (base if isinstance(base, dict) else svc.config).get("user")
    if configured is not None and str(configured) not in images.ROOT_USERS:
        return (str(configured), Safety.SAFE, [], []), ""
    # The variants the edit reaches: a file that runs alone without the home is not changed.
    pool = project.reaching(svc.home.doc) if svc.home is not None else images.variants(project)
    vs = [v for v in pool if svc.name in (project.model(v).get("services") or {})]
    stages = {v: images.built_stage(project, (project.model(v).get("services") or {})[svc.name]) for v in vs}
    first = stages[vs[0]] if vs else None
    if first is None:
        return None, "the stack does not build its image" if svc.build is None else "its Dockerfile is not readable"
    first_config = (project.model(vs[0]).get("services") or {})[svc.name]
    got = _stage_user(project, first_config, first)
    if got is None:
        return None, f"stage {first.name or first.index} of its Dockerfile runs as root"
    user, planned = got
    safety = Safety.SAFE
    notes: list[str] = []
    if planned:
        # The stage gets its USER from non-root-user, an unsafe fix, in this same run.
        safety = Safety.UNSAFE
        notes.append(f"{decisions.NON_ROOT_USER} gives stage {first.name or first.index} `USER "
                     f"{user.split(':', 1)[0]}` in this run")
    kept: list[Edit] = []
    for v, st in stages.items():
        if _has_user(project, (project.model(v).get("services") or {})[svc.name], st, user):
            continue
        stage_name = (st.name or str(st.index)) if st else "an image it does not build"
        # The file that builds another stage keeps the service as it was there: its own user,
        # and C_FORCE_ROOT with it. Setting a user that stage does not have would stop it.
        keep = _keep_in(project, svc, v, st) if len(v) > 1 else None
        if keep is not None:
            kept.extend(keep)
            notes.append(f"{images.variant_names(project, v[-1:])} builds {stage_name}, which has no user "
                         f"{user.split(':', 1)[0]}: there it keeps running as {(st.user if st else None) or 'root'} "
                         f"with {VAR} (give that stage the user too)")
            continue
        safety = Safety.UNSAFE
        notes.append(f"with {images.variant_names(project, v)} it builds {stage_name}, which does not run as "
                     f"{user.split(':', 1)[0]}: give that stage the user too")
    home = svc.home
    if home is None or not isinstance(home.node, MappingNode):
        return None, "its definition cannot be edited here"
    if svc.shadows(home, "user") is not None:
        return None, "a later file resets or overrides its `user:`"
    if configured is not None:
        safety = Safety.UNSAFE
        notes.insert(0, f"the compose file said user {configured}")
        edit = _replace_user(svc, user)
        if edit is None:
            return None, "its `user:` cannot be edited here"
        return (user, safety, notes, [edit, *kept]), ""
    edit = yamledit.append_entry(home.doc, home.node, "user", user, home.key.end_mark.index)
    if edit is None:
        return None, "its definition cannot be edited here"
    return (user, safety, notes, [edit, *kept]), ""


def _keep_in(project: Project, svc: Service, variant: tuple[int, ...], stage: Stage | None) -> list[Edit] | None:
    """Edits to the override of `variant` that keep the service's user and C_FORCE_ROOT there."""
    doc = project.docs[variant[-1]]
    d = next((d for d in svc.defs if d.doc is doc), None)
    if d is None or not d.editable or not isinstance(d.node, MappingNode) or stage is None:
        return None
    if d.get("user") is not None or effective_entry(d.node, "environment") not in (None,) and d.get("environment") is None:
        return None
    env = svc.config.get("environment")
    value = env.get(VAR) if isinstance(env, dict) else None
    item = VAR if value is None else f"{VAR}={value}"
    after = d.key.end_mark.index
    edits = []
    user = yamledit.append_entry(doc, d.node, "user", stage.user or "root", after)
    own = d.get("environment")
    if own is None:
        got = yamledit.append_entry(doc, d.node, "environment", [item], after)
    elif isinstance(own[1], SequenceNode) and not own[1].flow_style and own[1].value:
        got = _append_item(doc, own[1], item)
    elif isinstance(own[1], MappingNode) and not own[1].flow_style and own[1].value:
        got = yamledit.append_entry(doc, own[1], VAR, value, doc.key_end(own[0]))
    else:
        return None
    if user is None or got is None:
        return None
    edits = [user, got] if got.start <= user.start else [got, user]
    if user.start == got.start:
        # Both land after the last line of the service: one insertion, in a fixed order.
        edits = [Edit(doc.path, got.start, got.end, got.text + user.text)]
    return edits


def _append_item(doc: ComposeDoc, seq: SequenceNode, item: str) -> Edit | None:
    last = seq.value[-1]
    dash = doc.text.rfind("-", 0, last.start_mark.index)
    column = dash - doc.line_start(dash)
    pos = doc.line_after(doc.content_end(last, dash + 1))
    return Edit(doc.path, pos, pos, f"{' ' * column}- {render.scalar(item, doc.style)}\n")


def _replace_user(svc: Service, user: str) -> Edit | None:
    for d in reversed(svc.defs):
        got = effective_entry(d.node, "user")
        if got is None:
            continue
        holder, _, node = got
        if holder is not d.node or d.doc.readonly or not isinstance(node, ScalarNode):
            return None
        q = node.style if node.style in ("'", '"') else ""
        text = f"{q}{user}{q}" if q else render.scalar(user, d.doc.style)
        return Edit(d.doc.path, node.start_mark.index, node.end_mark.index, text)
    return None
