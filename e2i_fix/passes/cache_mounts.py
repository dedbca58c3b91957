"""cache-mounts: BuildKit cache mounts for the package managers a RUN installs with.

## What it does
A `RUN` that installs with pip, uv, poetry, npm, yarn or pnpm gets
`--mount=type=cache,target=<the manager's cache>` (from `e2i_fix/data/cache_mounts.toml`,
with its sources), unless a mount already targets it:

- pip `/root/.cache/pip`; `--no-cache-dir` on that RUN and a `PIP_NO_CACHE_DIR` set by an
  `ENV` of the stage defeat the mount and are removed (an `ENV` that sets other variables on
  the same line is left alone, and then so is pip);
- uv `/root/.cache/uv`, and `ENV UV_LINK_MODE=copy` before the RUN where the stage does not
  set it (the cache and the virtualenv are on different file systems); `--no-cache` is removed;
- poetry `/root/.cache/pypoetry`, npm `/root/.npm`, yarn `/usr/local/share/.cache/yarn`,
  pnpm `/root/.local/share/pnpm/store`;
- apt `/var/cache/apt` and `/var/lib/apt` with `sharing=locked`, only where the Dockerfile has
  removed the image's `docker-clean` hook first (Debian and Ubuntu images delete every
  downloaded package after each install, so a cache would stay empty).

When the stage's `USER` before that RUN is not root, the mount is that user's cache (`<home>/…`,
`uid=`), from the `useradd`/`adduser` that created the user in the stage; a user whose uid or
home cannot be told is left alone. Nothing inside a heredoc body is edited: a RUN whose
defeating flag is in one is left alone. The `buildkit-syntax` pass adds the syntax directive.

## Why
Every change to a dependency list otherwise downloads every package again. A cache mount keeps
the downloads between builds, outside the image: the layer is as small as with
`--no-cache-dir`, and rebuilds are fast.

## Example
Before:

    RUN pip install --no-cache-dir -r requirements.txt

After:

    RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt

## Fix safety
Safe: the image's content is the same; only where downloads are kept between builds changes.
It needs BuildKit, Docker's builder since Engine 23 and the one Compose v2 always uses.

## Options
None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from e2i_fix import buildctx
from e2i_fix.dockerfile import DockerfileDoc, Instruction, Stage
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, targets

ID = "cache-mounts"
SUMMARY = "RUN --mount=type=cache for pip, uv, poetry, npm, yarn, pnpm (and apt where docker-clean is removed)"
SAFETY = Safety.SAFE
DEFAULTS: dict[str, Any] = {}

_ROOT = ("root", "0", "root:root", "0:0")
_TRUE = ("1", "true", "yes", "on")


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    data = buildctx.table("cache_mounts.toml")
    seen: set[object] = set()
    for b in buildctx.builds(project, targets(project, ID, options)):
        doc = b.doc
        if doc.path in seen:
            continue
        seen.add(doc.path)
        for stage in doc.stages:
            env_added = False
            for ins in stage.instructions:
                if ins.name != "RUN":
                    continue
                fix = _fix(doc, stage, ins, data, env_added)
                if fix is not None:
                    env_added = env_added or any(e.text.lstrip().startswith("ENV UV_LINK_MODE") for e in fix.edits)
                    yield fix


def _fix(doc: DockerfileDoc, stage: Stage, ins: Instruction, data: dict[str, Any], env_added: bool) -> Fix | None:
    managers = sorted(ins.installers() & data.keys())
    if not managers:
        return None
    text = doc.text
    path = doc.source.path
    have = {m.get("target") or m.get("dst") or m.get("destination") for m in ins.mounts()}
    who = _cache_owner(stage, ins)
    if who is None:
        return None
    home, uid = who
    head = text[ins.start : ins.head_end]
    env = _env_before(stage, ins)
    mounts: list[str] = []
    edits: list[Edit] = []
    used: list[str] = []
    for name in managers:
        spec = data[name]
        if "needs" in spec:  # apt: only once the docker-clean hook is gone
            if uid is not None or not _removed_before(stage, ins, spec["needs"]):
                continue
            targets_ = list(spec["paths"])
        elif uid is None and "path-root" in spec:
            targets_ = [spec["path-root"]]
        else:
            targets_ = [f"{home.rstrip('/')}/{spec['home']}"]
        if all(t in have for t in targets_):
            continue
        mine: list[Edit] = []
        blocked = False
        for flag in spec["defeat-flags"]:
            for m in re.finditer(rf"[ \t]+{re.escape(flag)}(?=[\s;&|)]|$)", head):
                mine.append(Edit(path, ins.start + m.start(), ins.start + m.end(), ""))
            if any(re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", body) for body in ins.heredoc_texts()):
                blocked = True
        for var in spec["defeat-env"]:
            where = env.get(var)
            if where is None or where[1].strip().lower() not in _TRUE:
                continue
            cut = _unset(doc, where[0], var)
            if cut is None:
                blocked = True
            else:
                mine.append(cut)
        if blocked:
            continue
        for var, value in spec.get("env", {}).items():
            if var not in env and not re.search(rf"(?<![\w-]){var}=", head) and not env_added:
                line_start = text.rfind("\n", 0, ins.start) + 1
                indent = text[line_start : ins.start]
                mine.append(Edit(path, line_start, line_start, f"{indent}ENV {var}={value}\n"))
        for t in targets_:
            if t not in have:
                opts = f"type=cache,target={t}"
                if "sharing" in spec:
                    opts += f",sharing={spec['sharing']}"
                if uid is not None:
                    opts += f",uid={uid}"
                mounts.append(f"--mount={opts}")
        edits += mine
        used.append(name)
    if not mounts:
        return None
    at = ins.start + len(ins.name)
    edits.insert(0, Edit(path, at, at, " " + " ".join(mounts)))
    return Fix(ID, f"RUN installs with {', '.join(used)} without a cache mount: add {' '.join(mounts)}",
               path, ins.line, 1, edits=tuple(edits), safety=SAFETY)


def _env_before(stage: Stage, ins: Instruction) -> dict[str, tuple[Instruction, str]]:
    """The variables ENV sets before `ins` (the stage and the stages it starts from)."""
    chain: list[Stage] = []
    st: Stage | None = stage
    while st is not None:
        chain.insert(0, st)
        st = st.parent
    out: dict[str, tuple[Instruction, str]] = {}
    for s in chain:
        for other in s.instructions:
            if other is ins:
                return out
            if other.name == "ENV":
                for k, v in buildctx.env_pairs(other):
                    out[k] = (other, v)
    return out


def _unset(doc: DockerfileDoc, env: Instruction, var: str) -> Edit | None:
    """The edit that removes `var` from an ENV: the whole instruction when it sets nothing else,
    else the continuation line that holds only it; None when neither is possible."""
    text = doc.text
    path = doc.source.path
    line_start = text.rfind("\n", 0, env.start) + 1
    after = text.find("\n", env.end)
    line_end = len(text) if after < 0 else after + 1
    if len(buildctx.env_pairs(env)) == 1:
        return Edit(path, line_start, line_end, "")
    body = text[env.start : env.end]
    m = re.search(rf"\n([ \t]*){re.escape(var)}=\S*[ \t]*\\\r?\n", body)
    if m:
        return Edit(path, env.start + m.start() + 1, env.start + m.end(), "")
    return None


def _removed_before(stage: Stage, ins: Instruction, hook: str) -> bool:
    st: Stage | None = stage
    while st is not None:
        for other in st.instructions:
            if other.name == "RUN" and hook in " ".join([other.command, *other.heredoc_texts()]) and "rm " in other.command + " ".join(other.heredoc_texts()):
                return True
            if other is ins:
                break
        st = st.parent
    return False


_ID_FLAG = re.compile(r"(?:-u|--uid)[ =](\d+)")
_HOME_FLAG = re.compile(r"(?:-d|--home-dir|--home|-h)[ =](\S+)")


def _cache_owner(stage: Stage, ins: Instruction) -> tuple[str, int | None] | None:
    """The home folder and uid whose cache a RUN uses: ("/root", None) as root; None when the
    USER is not root and its uid or home cannot be told from the stage."""
    user = stage.user_at(ins)
    if user is None or user.strip() in _ROOT:
        return "/root", None
    name = user.split(":", 1)[0].strip()
    st: Stage | None = stage
    while st is not None:
        for other in st.instructions:
            cmd = other.command
            for m in re.finditer(r"(?:useradd|adduser)\b([^;&|]*)", cmd):
                args = m.group(1)
                words = args.split()
                if not words or words[-1] != name and not (name.isdigit() and f"{name}" in args):
                    continue
                uid = _ID_FLAG.search(args)
                if uid is None:
                    continue
                home = _HOME_FLAG.search(args)
                return (home.group(1) if home else f"/home/{words[-1]}"), int(uid.group(1))
        st = st.parent
    return None
