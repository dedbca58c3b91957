"""non-root-user: the stage a service runs gets a non-root USER, where nothing it runs needs root.

## What it does
For each Dockerfile stage a service runs (its `build.target`, else the last stage) that runs as
root (no `USER`, or a root one, in effect at its end), the pass decides, once for every service
and every variant of the stack that runs the stage (`facts.decisions.stage_user`), whether a
USER can go in, and which:

- **the image's own user** where it has one: a user a stage already makes (`useradd`,
  `adduser`) or renames (`usermod --login`), else the one its base image ships (`node`,
  `postgres`, `nginx`, `www-data`, distroless `nonroot`: `own_user` in `data/images.toml`),
  never a second one;
- else a system user made with the base image's own tools: `groupadd --system` / `useradd
  --system` on Debian and Ubuntu based images, `addgroup -S` / `adduser -S` on Alpine (the
  `user` option names it);
- the files the stage copies into its working folder are given to the user with `COPY
  --chown` (a `chown -R` layer over the tree would store all of it twice, node_modules and
  all), and the working folder itself with a `chown` that does not recurse;
- `USER <name>` goes after the last instruction of the stage that needs root (its last RUN),
  above the `CMD`, `ENTRYPOINT` or `HEALTHCHECK` that follows.

No USER goes in, and the stage is reported with the reason, where:

- a service that runs it is built to start as root: its entrypoint steps down itself (gosu,
  su-exec, setpriv, `su ... -c`), remaps its user to a PUID/PGID it is given, starts
  supervisord, writes under /etc, or runs chown, usermod or a package manager in its command or
  entrypoint; or the image table says its entrypoint must start as root (`root_entrypoint`);
- a service that runs it bind-mounts a host path it may write (files there keep their host
  owner), or keeps data in a named or anonymous volume (what its root process wrote there stays
  root's: existing installs would break without an ownership migration);
- the image is published (a CI workflow of the repository builds the Dockerfile and pushes the
  image, or the stack tags it for a registry): its installs keep such volumes;
- a service that runs the same stage opts out, the Dockerfile lies outside the project, or the
  pass cannot tell how to add a user to the base image (`scratch`, a server image such as nginx
  or caddy built to start as root, an image it does not know).

A stage whose USER is a variable, or that every service running it overrides with a compose
`user:`, is left alone.

## Why
A process running as root in a container is root on the host's kernel: a breakout or a
writable host mount is then a root compromise.

## Example
Before:

    FROM python:3.12-slim
    WORKDIR /app
    COPY . .
    CMD ["python", "-m", "app"]

After (`--unsafe-fixes`):

    FROM python:3.12-slim
    WORKDIR /app
    RUN groupadd --system app && useradd --system --gid app --create-home --shell /usr/sbin/nologin app
    COPY --chown=app:app . .
    RUN chown app:app /app
    USER app
    CMD ["python", "-m", "app"]

From `node:22-alpine` the same stage gets `COPY --chown=node:node . .` and `USER node`.

## Fix safety
Unsafe: a program that writes outside its working folder, binds a privileged port on an old
Docker engine, or reads root-owned secrets fails at run time. `cap-drop` and `read-only-root`
read the same decision in the same run: the service's capabilities are those of the user it
will run as.

## Options
- `user`: the name of the user to create where the image has none (default `app`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from e2i_fix import buildctx, facts, fileroles
from e2i_fix.dockerfile import DockerfileDoc, Instruction, Stage
from e2i_fix.facts import decisions, runs
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, targets

ID = "non-root-user"
SUMMARY = "the image's own non-root USER (or one made with the base image's tools) where nothing it runs needs root"
SAFETY = Safety.UNSAFE
NEEDS = "build"  # reads only what services build: nothing to do on a stack that builds nothing
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
DEFAULTS: dict[str, Any] = {"user": "app"}

# Folders no user of an image should own.
_SYSTEM = {"/", "/usr", "/usr/local", "/usr/src", "/etc", "/bin", "/sbin", "/lib", "/opt", "/var", "/home",
           "/root", "/tmp", "/run", "/var/run", "/var/lib", "/var/log"}


def kind(image: str) -> str | None:
    """How the image makes users: "debian", "alpine", "distroless", "scratch"; None: unknown."""
    return runs.user_tools(image)


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    seen: set[tuple[Path, int]] = set()
    for b in buildctx.builds(project, targets(project, ID, options)):
        stage = b.doc.stage(b.build.target)
        if stage is None or b.build.dockerfile is None:
            continue
        key = (b.build.dockerfile, stage.index)
        if key in seen:
            continue
        seen.add(key)
        plan = decisions.stage_user(project, b.build.dockerfile, stage.index)
        names = ", ".join(repr(n) for n in plan.services) or repr(b.service.name)
        who = f"service{'s' if len(plan.services) > 1 else ''} {names}"
        where = f"{who} run{'' if len(plan.services) > 1 else 's'} stage {stage.name or stage.index} (from {stage.root_image})"
        where += " as root" if plan.root else ""
        path = b.doc.source.path
        line = stage.from_instruction.line
        if plan.user is None:
            if plan.said:
                yield Fix(ID, f"{where}; no USER added: {plan.why}", path, line, 1, safety=Safety.DISPLAY_ONLY)
            continue
        edits = _edits(project, b.doc, stage, plan)
        made = (f"add user {plan.user!r} ({plan.why}) and `USER {plan.user}`" if plan.tools
                else f"`USER {plan.user}` ({plan.why})")
        yield Fix(ID, f"{where}: {made}", path, line, 1, edits=tuple(edits), safety=SAFETY,
                  provenance=((f"USER {plan.user}", plan.why),))


def _edits(project: Project, doc: DockerfileDoc, stage: Stage, plan: decisions.UserPlan) -> list[Edit]:
    text = doc.text
    path = doc.source.path
    user = str(plan.user)
    owner = f"{user}:{plan.group}" if plan.group else user
    f = _facts(project, plan, stage, doc)
    workdir = _workdir(f) if f is not None else stage.workdir
    volumes = [v for st in (f.chain if f is not None else [stage]) for v in st.volumes()]
    held = _owned_folder(workdir, volumes)
    copies = _copies_into(f, stage, held) if held else []
    edits: list[Edit] = []
    create = _create(plan.tools, user)
    at_user = _user_position(stage, text)
    if create and copies and copies[0].start < at_user:
        # The user must exist before the first COPY that hands files to it.
        at = _above_comments(text, text.rfind("\n", 0, copies[0].start) + 1)
        edits.append(Edit(path, at, at, create + "\n"))
        create = None
    for ins in copies:
        at = ins.start + len(ins.name)
        edits.append(Edit(path, at, at, f" --chown={owner}"))
    lines: list[str] = []
    if held:
        chown = f"chown {owner} {held}"
        if create:
            lines.append(f"{create} \\\n && {chown}")
        else:
            lines.append(f"RUN {chown}")
    elif create:
        lines.append(create)
    lines.append(f"USER {user}")
    insert = "".join(x + "\n" for x in lines)
    if at_user == len(text) and text and not text.endswith("\n"):
        insert = "\n" + insert.removesuffix("\n")
    edits.append(Edit(path, at_user, at_user, insert))
    return sorted(edits, key=lambda e: e.start)


def _facts(project: Project, plan: decisions.UserPlan, stage: Stage, doc: DockerfileDoc) -> facts.Facts | None:
    for name in plan.services:
        for f in facts.every(project, name):
            if f.stage is stage and f.dockerfile is doc:
                return f
    return None


def _workdir(f: facts.Facts) -> str | None:
    """The stage's own WORKDIR (ARG and ENV resolved), whatever compose's `working_dir` says."""
    path: str | None = None
    for st in f.chain:
        for ins in st.instructions:
            if ins.name == "WORKDIR" and ins.operands:
                new = f.expand(ins.operands[0], st, ins)
                path = new if new.startswith("/") or not path else posixpath.join(path, new)
    return path


def _create(tools: str | None, user: str) -> str | None:
    if tools == "debian":
        return (f"RUN groupadd --system {user} && useradd --system --gid {user} --create-home "
                f"--shell /usr/sbin/nologin {user}")
    if tools == "alpine":
        return f"RUN addgroup -S {user} && adduser -S -G {user} -s /sbin/nologin {user}"
    return None


def _owned_folder(workdir: str | None, volumes: list[str]) -> str | None:
    """The working folder the user is given, unless it is a system folder, holds a variable or
    lies in a Dockerfile VOLUME (a build step's change there after the VOLUME line is lost)."""
    if not workdir or "$" in workdir:
        return None
    folder = posixpath.normpath(workdir)
    if folder in _SYSTEM:
        return None
    if any(folder == v.rstrip("/") or folder.startswith(v.rstrip("/") + "/") for v in volumes):
        return None
    return folder


def _copies_into(f: facts.Facts | None, stage: Stage, folder: str) -> list[Instruction]:
    """COPY and ADD instructions of the stage itself whose destination lies in `folder` and that
    give their files no owner yet. (A parent stage's are left: other targets build it too, and
    the user may not exist there.)"""
    out: list[Instruction] = []
    workdir: str | None = stage.parent.workdir if stage.parent is not None else None
    for ins in stage.instructions:
        if ins.name == "WORKDIR" and ins.operands:
            new = f.expand(ins.operands[0], stage, ins) if f is not None else ins.operands[0]
            workdir = new if new.startswith("/") or not workdir else posixpath.join(workdir, new)
        if ins.name not in ("COPY", "ADD") or "chown" in ins.flags or ins.heredocs or len(ins.operands) < 2:
            continue
        dest = f.expand(ins.operands[-1], stage, ins) if f is not None else ins.operands[-1]
        if "$" in dest:
            continue
        if not dest.startswith("/"):
            dest = posixpath.join(workdir or "/", dest)
        dest = posixpath.normpath(dest)
        if dest == folder or dest.startswith(folder.rstrip("/") + "/"):
            out.append(ins)
    return out


def _user_position(stage: Stage, text: str) -> int:
    """After the last instruction that needs root (the last RUN, or a USER), above the CMD,
    ENTRYPOINT or HEALTHCHECK that follows it; else after the stage."""
    after = 0
    for i, ins in enumerate(stage.instructions):
        if ins.name in ("RUN", "USER"):
            after = i + 1
    for ins in stage.instructions[after:]:
        if ins.name in ("CMD", "ENTRYPOINT", "HEALTHCHECK"):
            return _above_comments(text, text.rfind("\n", 0, ins.start) + 1)
    last = stage.instructions[-1] if stage.instructions else stage.from_instruction
    nl = text.find("\n", last.end)
    return len(text) if nl < 0 else nl + 1


def _above_comments(text: str, at: int) -> int:
    """`at` (a line start) moved above the comment lines that introduce the line there."""
    while at > 0:
        prev = text.rfind("\n", 0, at - 1) + 1
        if not text[prev:at].lstrip().startswith("#") or re.match(r"#\s*(?:syntax|escape|check)\s*=", text[prev:at].lstrip()):
            break
        at = prev
    return at
