"""Decisions that passes of one run share, so two passes never disagree about one service.

A pass that changes what a service is (`non-root-user` gives a stage a new USER) takes its
decision here; another pass that depends on it (`cap-drop` keeps root's capabilities only for a
process that stays root) reads the same decision, in the same round, whether or not the first
pass's fix has been spliced in yet. A decision counts only where its fix will be applied in this
run: the pass is selected and its safety is allowed (`applies`).

The user a service runs as is decided here, once: `stage_user` is `non-root-user`'s decision
for a stage (which user, or why none), `user_after` who a service runs as once the run's fixes
are in (`no-force-root`'s `user:`, `non-root-user`'s USER, or what the files say today).
`no-force-root` reads the first for the stage's user, `cap-drop` and `read-only-root` the
second.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from e2i_fix.records import NamedTuple

if TYPE_CHECKING:
    from e2i_fix.dockerfile import Stage
    from e2i_fix.facts import Facts, User
    from e2i_fix.fix import Safety
    from e2i_fix.project import Project

T = TypeVar("T")


def applies(project: Project, pass_id: str, safety: Safety, service: str | None = None) -> bool:
    """Whether a fix of `pass_id` with `safety` (for `service`) is applied in this run. An index
    built outside the engine (no settings) assumes it is not: a pass that relies on another
    pass's decision then keeps to what the files say today."""
    settings = getattr(project, "settings", None)
    if settings is None or not settings.selected(pass_id):
        return False
    if service is not None and service in settings.options(pass_id).get("_ignored_services", ()):
        return False
    from e2i_fix.fix import Fix

    return bool(settings.allows(Fix(pass_id, "", project.folder, safety=safety)))


def decide(project: Project, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """`compute()` once per index and key: every pass that asks gets the same answer."""
    cache: dict[tuple[Any, ...], Any] = project.__dict__.setdefault("_decisions", {})
    if key not in cache:
        cache[key] = compute()
    got: T = cache[key]
    return got


# --- who a service runs as ------------------------------------------------------------------

NON_ROOT_USER = "non-root-user"
NO_FORCE_ROOT = "no-force-root"


class UserPlan(NamedTuple):
    """What `non-root-user` does to one stage of one Dockerfile: the user it gives the stage
    (`user`, None: no USER goes in), whether it makes that user (`tools`: "debian" or "alpine";
    None: the image or a stage has it already), and why. `said` False: nothing to report (the
    stage runs as a non-root user already, or every service that runs it names its user).
    `root`: the stage is known to run as root today (False: who it runs as is not known)."""

    user: str | None
    group: str | None
    tools: str | None
    why: str
    said: bool
    services: tuple[str, ...]
    root: bool = True


def stage_user(project: Project, path: Path, index: int) -> UserPlan:
    """`non-root-user`'s decision for stage `index` of the Dockerfile at `path`, once per index.

    No USER goes in where a service that runs the stage (in any variant of the stack) is built
    to start as root (a step-down, a PUID/PGID remap, supervisord, writes under /etc, chown or
    usermod in its command or entrypoint, the table's `root_entrypoint`), bind-mounts a host
    path it may write, keeps data in a volume (what the root process wrote there stays root's),
    or where the image is published (its installs keep such volumes). The user is the image's
    own where it has one: one a stage makes or renames, or the one the base image ships (node,
    postgres, nginx...); a new system user (the pass's `user` option) only where there is none
    and the base image's tools are known."""
    return decide(project, (NON_ROOT_USER, path, index), lambda: _stage_user(project, path, index))


def _stage_user(project: Project, path: Path, index: int) -> UserPlan:
    from e2i_fix import facts
    from e2i_fix.facts import runs
    from e2i_fix.project import opted_out

    doc = project.dockerfiles.get(path)
    stage = doc.stages[index] if doc is not None and 0 <= index < len(doc.stages) else None
    if stage is None:
        return UserPlan(None, None, None, "its Dockerfile cannot be read", False, ())
    runs_it: list[facts.Facts] = []
    for name in project.services:
        for f in facts.every(project, name):
            if f.dockerfile is doc and f.stage is stage:
                runs_it.append(f)
    names = tuple(dict.fromkeys(f.name for f in runs_it))
    own = [f for f in runs_it if f.config.get("user") is None]
    if not own:
        why = "no service runs it" if not runs_it else "compose names the user of every service that runs it"
        return UserPlan(None, None, None, why, False, names)
    f0 = own[0]
    where = f"stage {stage.name or stage.index} (from {stage.root_image})"
    known_root = False
    for st in reversed(f0.chain):
        ins = st.last("USER")
        if ins is not None:
            user = f0.expand(ins.args.strip(), st, None)
            if "$" in user or not user:
                return UserPlan(None, None, None, f"{where} sets its USER through a variable", False, names)
            if user.split(":", 1)[0] not in facts.ROOT_USERS:
                return UserPlan(None, None, None, f"{where} runs as {user}", False, names)
            known_root = True
            break
    else:
        if f0.user.name is not None:
            if not f0.user.root:
                return UserPlan(None, None, None, f"{where} runs as {f0.user.name}", False, names)
            known_root = True

    def no(why: str) -> UserPlan:
        return UserPlan(None, None, None, why, True, names, known_root)

    services = project.services
    for n in names:
        svc = services.get(n)
        ignored = project.settings.options(NON_ROOT_USER).get("_ignored_services", ()) if project.settings else ()
        if svc is None or n in ignored or opted_out(svc, NON_ROOT_USER):
            return no(f"service {n!r}, which runs the same stage, opts out of {NON_ROOT_USER}")
    if not project.stack.writable(path):
        return no(f"{path} is outside the project")
    for child in doc.stages if doc is not None else ():
        if child.parent is stage and _runs_before_user(child):
            return no(f"stage {child.name or child.index} builds on it, and its RUN lines would run as the new user")
    for f in own:
        root = f.starts_as_root
        if root:
            return no(f"service {f.name!r} is built to start as root: {root}")
        unread = _unread_script(f)
        if unread:
            return no(f"service {f.name!r} runs {unread}, which is not in its build context: what it needs is "
                      "not known here")
    for f in own:
        for m in f.mounts:
            if m.read_only or m.kind in ("tmpfs", "image", "npipe"):
                continue
            if m.kind == "bind":
                return no(f"service {f.name!r} bind-mounts {m.source} at {m.target}: files there keep their host "
                          "owner, which a new user may not be able to write")
            name = f"volume {m.source!r}" if m.source else "an anonymous volume"
            return no(f"service {f.name!r} keeps data in {name} at {m.target}: what its root process wrote there "
                      "stays root's, and a new user cannot write it (give its entrypoint an ownership migration "
                      "first)")
    for f in own:
        pub = runs.published(f)
        if pub:
            return no(f"its image is published ({pub}): installs that run it keep what its root process wrote in "
                      "their volumes, which a new user cannot write (give its entrypoint an ownership migration first)")
    has = runs.own_user(f0)
    if has is not None:
        return UserPlan(has.name, has.group, None, has.source, True, names, known_root)
    base = f0.base.name if f0.base is not None else stage.root_image
    tools = runs.user_tools(base)
    if tools == "distroless":
        return UserPlan("nonroot", "nonroot", None, "distroless images ship the user nonroot (uid 65532)", True, names,
                        known_root)
    if not known_root:
        return no(f"who {base} runs as is not known here (the image table does not know it)")
    if tools in ("debian", "alpine"):
        name = str(project.settings.options(NON_ROOT_USER).get("user", "app")) if project.settings else "app"
        return UserPlan(name, name, tools, f"a system user made with the {tools} tools of {base}", True, names)
    return no(f"the pass cannot tell how to add a user to {base}")


def _runs_before_user(stage: Stage) -> bool:
    """Whether a stage runs a RUN line before a USER of its own (with the USER it inherits)."""
    for ins in stage.instructions:
        if ins.name == "USER":
            return False
        if ins.name == "RUN":
            return True
    return False


def _unread_script(f: Facts) -> str | None:
    """A script the service's entrypoint or command names by its path that neither the build
    context nor a bind mount holds: what it does is not known."""
    from e2i_fix.facts import runs

    for word in f.argv:
        if "/" in word and runs._looks_like_script(word) and runs.host_file(f, word) is None:
            return word
    return None


def user_after(project: Project, f: Facts) -> User:
    """Who the service's first process runs as in `f`'s variant once this run's fixes are
    applied: the user `no-force-root` sets, or the USER `non-root-user` gives its stage, where
    those passes' fixes are applied in this run; else who it runs as today. `cap-drop` and
    `read-only-root` read this, so a run never both adds a USER and keeps root's capabilities,
    nor drops them for a process that stays root."""
    from e2i_fix.facts import User as FactsUser

    forced = _force_root_user(project, f)
    if forced is not None:
        return forced
    if f.config.get("user") is not None or not f.built or f.stage is None or f.dockerfile is None:
        return f.user
    if not f.user.root:
        return f.user
    plan = stage_user(project, Path(str(f.dockerfile.path)), f.stage.index)
    if plan.user is not None and applies(project, NON_ROOT_USER, _unsafe()):
        return FactsUser(plan.user, f"USER {plan.user}, which {NON_ROOT_USER} gives its stage in this run")
    return f.user


def _force_root_user(project: Project, f: Facts) -> User | None:
    from e2i_fix.facts import User as FactsUser
    from e2i_fix.passes import no_force_root

    got = no_force_root.decision(project, f.name)
    if got is None or not applies(project, NO_FORCE_ROOT, got.safety, f.name):
        return None
    if len(f.files) > 1 and f.files[-1] in got.kept:
        return None  # that override keeps the service as it ran there
    return FactsUser(got.user, f"`user: {got.user}`, which {NO_FORCE_ROOT} sets in this run")


def _unsafe() -> Safety:
    from e2i_fix.fix import Safety

    return Safety.UNSAFE
