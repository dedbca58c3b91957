"""non-root-user: the stage a service runs gets a non-root USER.

## What it does
For each service built from a Dockerfile, the stage it runs (its `build.target`, else the last
stage) with no `USER`, or a root one, in effect at the end gets, before its first `CMD`,
`ENTRYPOINT` or `HEALTHCHECK` after the last `USER` (at the end of the stage without one):

- a system user and group made with the base image's own tools: `groupadd --system` /
  `useradd --system` on Debian and Ubuntu based images, `addgroup -S` / `adduser -S` on Alpine;
  a user the stage already creates with `useradd`/`adduser` is reused;
- ownership of the paths the service writes: the stage's `WORKDIR` and the container paths
  of the named volumes compose mounts for it (a fresh named volume takes the image folder's
  owner); a Dockerfile `VOLUME` is left out, since a build step's change to it after the
  `VOLUME` line is discarded;
- `USER <name>`.

Distroless images get `USER nonroot` (the user they ship, uid 65532). A `scratch` stage, an
image the pass cannot tell the tools of, an nginx or httpd image (their master process
expects root) and a service with a compose `user:` are reported only.

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
    COPY . .
    RUN groupadd --system app && useradd --system --gid app --create-home --shell /usr/sbin/nologin app \\
     && mkdir -p /app && chown -R app:app /app
    USER app
    CMD ["python", "-m", "app"]

## Fix safety
Unsafe: a program that writes outside the paths above, binds a privileged port on an old
Docker engine, or reads root-owned secrets fails at run time.

## Options
- `user`: the name of the user to create (default `app`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from e2i_fix import buildctx, fileroles
from e2i_fix.dockerfile import Stage
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, image_family, targets

ID = "non-root-user"
SUMMARY = "a non-root USER (created with the base image's tools) for the stage a service runs"
SAFETY = Safety.UNSAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
DEFAULTS: dict[str, Any] = {"user": "app"}

_ROOT = ("root", "0", "root:root", "0:0")
_DEBIAN = {"python", "node", "debian", "ubuntu", "golang", "ruby", "php", "openjdk", "eclipse-temurin", "rust",
           "buildpack-deps", "perl", "elixir", "erlang", "gcc", "maven", "gradle", "pypy"}
_DEBIAN_TAGS = re.compile(r"bookworm|bullseye|buster|trixie|slim|jammy|noble|focal")
_ROOT_SERVERS = {"nginx", "httpd", "openresty", "caddy", "traefik", "haproxy"}
_CREATES = re.compile(r"\b(?:useradd|adduser)\b[^;&|]*?\s([a-z_][a-z0-9_-]*)\s*(?:$|[;&|])", re.MULTILINE)


def kind(image: str) -> str | None:
    """How the image makes users: "debian", "alpine", "distroless", "scratch"; None: unknown."""
    name = image.lower()
    if name == "scratch":
        return "scratch"
    if "distroless" in name:
        return "distroless"
    family = image_family(name) or ""
    tag = name.split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    if family in _ROOT_SERVERS:
        return None
    if "alpine" in tag or family == "alpine":
        return "alpine"
    if family in _DEBIAN or _DEBIAN_TAGS.search(tag):
        return "debian"
    return None


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    name = str(options["user"])
    seen: set[tuple[object, int]] = set()
    for b in buildctx.builds(project, targets(project, ID, options)):
        stage = b.doc.stage(b.build.target)
        if stage is None or (stage.user or "root").strip() not in _ROOT:
            continue
        svc = b.service
        key = (b.doc.source.path, stage.index)
        if key in seen:
            continue
        seen.add(key)
        path = b.doc.source.path
        where = f"service {svc.name!r} runs stage {stage.name or stage.index} (from {stage.root_image})"
        if svc.config.get("user") is not None:
            continue  # compose sets the user; no-force-root judges it
        k = kind(stage.root_image)
        if k in (None, "scratch"):
            yield Fix(ID, f"{where} as root; the pass cannot tell how to add a user to {stage.root_image}",
                      path, stage.from_instruction.line, 1, safety=Safety.DISPLAY_ONLY)
            continue
        text = b.doc.text
        at = _insertion(stage, text)
        indent = ""
        if k == "distroless":
            lines = ["USER nonroot:nonroot"]
            user = "nonroot"
        else:
            existing = _created(stage)
            user = existing or name
            paths = _paths(stage, svc.config)
            lines = []
            if existing is None:
                lines.append(
                    f"RUN groupadd --system {user} && useradd --system --gid {user} --create-home --shell /usr/sbin/nologin {user}"
                    if k == "debian" else
                    f"RUN addgroup -S {user} && adduser -S -G {user} -s /sbin/nologin {user}")
            if paths:
                joined = " ".join(paths)
                chown = f"mkdir -p {joined} && chown -R {user}:{user} {joined}"
                if lines:
                    lines[-1] += f" \\\n && {chown}"
                else:
                    lines.append(f"RUN {chown}")
            lines.append(f"USER {user}")
        insert = "".join(indent + line + "\n" for line in lines)
        if at == len(text) and text and not text.endswith("\n"):
            insert = "\n" + insert.removesuffix("\n")
        yield Fix(ID, f"{where} as root: add user {user!r} and `USER {user}`",
                  path, stage.from_instruction.line, 1, edits=(Edit(path, at, at, insert),), safety=SAFETY)


def _insertion(stage: Stage, text: str) -> int:
    """Before the first CMD/ENTRYPOINT/HEALTHCHECK after the last USER; else after the stage."""
    after_user = 0
    for i, ins in enumerate(stage.instructions):
        if ins.name == "USER":
            after_user = i + 1
    for ins in stage.instructions[after_user:]:
        if ins.name in ("CMD", "ENTRYPOINT", "HEALTHCHECK"):
            at = text.rfind("\n", 0, ins.start) + 1
            # Above the comment lines that introduce the instruction, not between them.
            while at > 0:
                prev = text.rfind("\n", 0, at - 1) + 1
                if not text[prev:at].lstrip().startswith("#"):
                    break
                at = prev
            return at
    last = stage.instructions[-1] if stage.instructions else stage.from_instruction
    nl = text.find("\n", last.end)
    return len(text) if nl < 0 else nl + 1


def _created(stage: Stage) -> str | None:
    st: Stage | None = stage
    while st is not None:
        for ins in st.instructions:
            if ins.name == "RUN":
                m = _CREATES.search(ins.command)
                if m:
                    return m.group(1)
        st = st.parent
    return None


def _paths(stage: Stage, config: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if stage.workdir and stage.workdir != "/":
        out.append(stage.workdir)
    # A Dockerfile VOLUME is left out: what a build step changes in it after the VOLUME line
    # is discarded, so its owner is set where it is declared or not at all.
    for v in config.get("volumes") or []:
        if isinstance(v, dict):
            target = v.get("target") if v.get("type") in ("volume", None) else None
        else:
            parts = str(v).split(":")
            named = len(parts) >= 2 and not parts[0].startswith((".", "/", "~", "$"))
            target = parts[1] if named else None
        if isinstance(target, str) and target.startswith("/"):
            out.append(target)
    return [p for p in dict.fromkeys(out) if "$" not in p]
