"""cache-mounts: BuildKit cache mounts for the package managers a RUN installs with.

## What it does
A `RUN` that installs with pip (or builds wheels: `pip wheel`, `pip download`), uv, poetry, npm,
yarn or pnpm gets `--mount=type=cache,target=<the cache that tool really uses>` (`e2i_fix/data/cache_mounts.toml`,
with its sources). Where that is comes from the Dockerfile as the facts layer reads it (ENV and
ARG values before the RUN, build args): a flag on the command (`--cache-dir`, `--store-dir`,
`--cache-folder`), a setting an earlier RUN wrote (`pnpm config set store-dir`), the tool's
variable (`PIP_CACHE_DIR`, `UV_CACHE_DIR`, `npm_config_cache`, `YARN_CACHE_FOLDER`), `PNPM_HOME`
(pnpm's store is `$PNPM_HOME/store`), the XDG folders, else the user's HOME (`ENV HOME` first):

- pip `~/.cache/pip`; a `--no-cache-dir` (or its prefix `--no-cache`) on that RUN defeats the
  mount and is removed;
- uv `~/.cache/uv`, and `ENV UV_LINK_MODE=copy` before the RUN where the stage does not set it
  (the cache and the virtualenv are on different file systems); `--no-cache` is removed;
- poetry `~/.cache/pypoetry`, npm `~/.npm`, pnpm `~/.local/share/pnpm/store`;
- Yarn 1 `/usr/local/share/.cache/yarn` as root; Yarn 2+ (a `.yarnrc.yml` in the build
  context or one a COPY brings from a subfolder, `.yarn/releases`, `packageManager: yarn@2+`,
  `yarn set version`, `--immutable`) keeps one global cache from Yarn 4 on (`~/.yarn/berry/cache`, `YARN_GLOBAL_FOLDER`); with the cache in the project
  (Yarn 2 and 3, or `enableGlobalCache: false`), often committed, nothing is mounted over it;
- apt `/var/cache/apt` and `/var/lib/apt` with `sharing=locked`, only where the Dockerfile has
  removed the image's `docker-clean` hook first (Debian and Ubuntu images delete every
  downloaded package after each install, so a cache would stay empty).

Left alone:
- a RUN that already mounts a cache for that tool (at its path, above or under it, or one
  whose id or target names the tool): never a second mount;
- a tool whose cache the Dockerfile turns off with `ENV` (`PIP_NO_CACHE_DIR`, `UV_NO_CACHE`):
  that is a decision about the image too, and a mount would stay empty;
- pnpm after a `pnpm fetch` that filled the store in the image (a mount would hide it), and an
  install from that store (`--offline`) where no earlier RUN mounted it;
- a RUN whose pip installs only upgrade pip, setuptools or wheel, or install wheels already on
  disk (`/wheels/*`, a `.whl` file, `--no-index`): nothing to download, not worth a cache;
- a path that cannot be told (a variable with no value, a non-root USER whose uid or home the
  stage does not say).

Where the Dockerfile's other RUNs mount that path under an `id`, the new mount uses it: one
cache, as the file already shares it. When the stage's `USER` before that RUN is not root, the
mount is that user's cache (`uid=`), from the `useradd`/`adduser` that created the user in the
stage. Nothing inside a heredoc body is edited: a RUN whose defeating flag is in one is left
alone. The `buildkit-syntax` pass adds the syntax directive.

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

import json
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from e2i_fix import buildctx, facts, lazyre
from e2i_fix.dockerfile import DockerfileDoc, Instruction, Stage
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, targets

ID = "cache-mounts"
SUMMARY = "RUN --mount=type=cache for pip, uv, poetry, npm, yarn, pnpm (and apt where docker-clean is removed)"
SAFETY = Safety.SAFE
NEEDS = "build"  # reads only what services build: nothing to do on a stack that builds nothing
DEFAULTS: dict[str, Any] = {}

_ROOT = ("root", "0", "root:root", "0:0")
_TRUE = ("1", "true", "yes", "on")


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    data = buildctx.table("cache_mounts.toml")
    classic = _classic_builder(project)
    if classic is not None:
        # `RUN --mount` is BuildKit's: the classic builder refuses the line.
        said: set[object] = set()
        for b in buildctx.builds(project, targets(project, ID, options)):
            if b.doc.path not in said and any(i.name == "RUN" for st in b.doc.stages for i in st.instructions):
                said.add(b.doc.path)
                yield Fix(ID, f"no cache mounts: {classic}, and the classic builder refuses `RUN --mount`",
                          Path(str(b.doc.path)), 1, 1, safety=Safety.DISPLAY_ONLY)
        return
    seen: set[object] = set()
    for b in buildctx.builds(project, targets(project, ID, options)):
        doc = b.doc
        if doc.path in seen:
            continue
        seen.add(doc.path)
        f = facts.of(project, b.service) if project.docs else None  # (an index built by hand has no files)
        for stage in doc.stages:
            env_added = False
            for ins in stage.instructions:
                if ins.name != "RUN":
                    continue
                fix = _fix(_Run(f, doc, stage, ins, b.build.context), data, env_added)
                if fix is not None:
                    env_added = env_added or any(e.text.lstrip().startswith("ENV UV_LINK_MODE") for e in fix.edits)
                    yield fix


_CLASSIC = lazyre.compile(r"\bDOCKER_BUILDKIT=0\b")


def _classic_builder(project: Project) -> str | None:
    """Where the repository builds its images with the classic builder (`DOCKER_BUILDKIT=0` in
    its README, Makefile or scripts, beside the stack or at the repository's top), if it does."""
    for p, _, text in facts.side_files_near(project):
        if (p.name.upper().startswith("README") or p.name in ("Makefile", "justfile") or p.suffix == ".sh") \
                and _CLASSIC.search(text):
            return f"{p.name} builds with DOCKER_BUILDKIT=0"
    return None


class _Run:
    """One RUN and what is in effect when it runs: ENV and ARG values (the facts layer's reading,
    build args included), the RUNs before it in its stage chain, its build context."""

    def __init__(self, f: facts.Facts | None, doc: DockerfileDoc, stage: Stage, ins: Instruction,
                 context: Path | None) -> None:
        self.f = f
        self.doc = doc
        self.stage = stage
        self.ins = ins
        self.context = context
        self.head = doc.text[ins.start : ins.head_end]
        self.text = " ".join([ins.command, *ins.heredoc_texts()])

    def value(self, var: str) -> str | None:
        """`var` as set before this RUN (ENV, ARG with its default or build arg), if it has a
        value that is known here."""
        if self.f is not None:
            got = self.f.expand("${" + var + "}", self.stage, self.ins)
            if got != "${" + var + "}":
                return got if got and "$" not in got else None
            return None
        env = _env_before(self.stage, self.ins)
        got_raw = env.get(var)
        return got_raw[1] if got_raw and "$" not in got_raw[1] else None

    def expand(self, text: str) -> str | None:
        if "$" not in text:
            return text
        if self.f is None:
            return None
        got = self.f.expand(text, self.stage, self.ins)
        return got if "$" not in got else None

    def earlier(self, names: tuple[str, ...] = ("RUN",)) -> list[Instruction]:
        """The instructions named `names` (RUNs) before this one in its stage chain, in order."""
        out: list[Instruction] = []
        for st in _chain(self.stage):
            for other in st.instructions:
                if other is self.ins:
                    return out
                if other.name in names:
                    out.append(other)
        return out

    def later(self) -> list[Instruction]:
        """The RUNs after this one in its stage."""
        found = False
        out: list[Instruction] = []
        for other in self.stage.instructions:
            if other is self.ins:
                found = True
            elif found and other.name == "RUN":
                out.append(other)
        return out


def _chain(stage: Stage) -> list[Stage]:
    out: list[Stage] = []
    st: Stage | None = stage
    while st is not None and st not in out:
        out.insert(0, st)
        st = st.parent
    return out


def _fix(r: _Run, data: dict[str, Any], env_added: bool) -> Fix | None:
    ins = r.ins
    managers = sorted(ins.installers() & data.keys())
    if not managers:
        return None
    doc = r.doc
    text = doc.text
    path = doc.source.path
    who = _cache_owner(r.stage, ins)
    if who is None:
        return None
    home, uid = who
    own_home = r.value("HOME")
    if own_home and own_home.startswith("/"):
        home = own_home
    mounts_here = [m for m in ins.mounts() if m.get("type") == "cache"]
    mounts: list[str] = []
    edits: list[Edit] = []
    used: list[str] = []
    for name in managers:
        spec = data[name]
        if "needs" in spec:  # apt: only once the docker-clean hook is gone
            if uid is not None or not _removed_before(r.stage, ins, spec["needs"]):
                continue
            targets_ = list(spec["paths"])
        else:
            got = _cache_path(name, spec, r, home, uid)
            if got is None:
                continue
            targets_ = [got]
        if any(_covers(m, t, name) for m in mounts_here for t in targets_):
            continue  # never a second mount for the tool
        if any(r.value(var) is not None for var in spec.get("off-env", ())):
            continue  # the Dockerfile turns the cache off, for the image too (pip: whatever the value)
        if spec.get("noise") and _only(r.text, name, spec["noise"]):
            continue
        if spec.get("offline") and not _offline_ok(r, spec["offline"], targets_[0], name):
            continue
        mine: list[Edit] = []
        blocked = False
        for flag in spec.get("defeat-flags", ()):
            for m in re.finditer(rf"[ \t]+{re.escape(flag)}(?=[\s;&|)]|$)", r.head):
                mine.append(Edit(path, ins.start + m.start(), ins.start + m.end(), ""))
            if any(re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", body) for body in ins.heredoc_texts()):
                blocked = True
        if blocked:
            continue
        env_before = _env_before(r.stage, ins)
        for var, value in spec.get("env", {}).items():
            if var not in env_before and not re.search(rf"(?<![\w-]){var}=", r.head) and not env_added:
                line_start = text.rfind("\n", 0, ins.start) + 1
                indent = text[line_start : ins.start]
                mine.append(Edit(path, line_start, line_start, f"{indent}ENV {var}={value}\n"))
        for t in targets_:
            opts = f"type=cache,target={t}"
            known = _id_for(doc, t)
            if known:
                opts = f"type=cache,id={known},target={t}"  # the cache the file's other RUNs share
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


# --- where each tool keeps its cache ---------------------------------------------------------


def _cache_path(name: str, spec: dict[str, Any], r: _Run, home: str, uid: int | None) -> str | None:
    """The cache `name` uses in this RUN, or None where it cannot be told (or must not be
    mounted: Yarn 2+ with the cache in the project)."""
    if name == "yarn" and _berry(r):
        return _berry_cache(spec["berry"], r, home)
    for flag in spec.get("dir-flags", ()):
        m = re.search(rf"(?<![\w-]){re.escape(flag)}[= ](\S+)", r.text)
        if m:
            return _absolute(r.expand(m.group(1).strip("'\"")))
    if spec.get("dir-config"):
        got = None
        for other in [*r.earlier(), r.ins]:
            for m in re.finditer(spec["dir-config"] + r"\s+(\S+)", " ".join([other.command, *other.heredoc_texts()])):
                got = m.group(1).strip("'\";&")
        if got is not None:
            return _absolute(r.expand(got))
    for var in spec.get("dir-env", ()):
        v = r.value(var)
        if v:
            return _absolute(v)
    if spec.get("base-env"):
        var, sub = spec["base-env"]
        v = r.value(var)
        if v:
            return _absolute(posixpath.join(v, sub))
    if spec.get("xdg"):
        var, sub = spec["xdg"]
        v = r.value(var)
        if v:
            return _absolute(posixpath.join(v, sub))
    if uid is None and "path-root" in spec:
        return str(spec["path-root"])
    return f"{home.rstrip('/')}/{spec['home']}"


def _id_for(doc: DockerfileDoc, target: str) -> str | None:
    """The id the Dockerfile's own cache mounts of `target` use, if they name one."""
    for ins in doc.instructions:
        for m in ins.mounts():
            at = (m.get("target") or m.get("dst") or m.get("destination") or "").rstrip("/")
            if m.get("type") == "cache" and at == target.rstrip("/") and m.get("id"):
                return m["id"]
    return None


def _absolute(p: str | None) -> str | None:
    return posixpath.normpath(p) if p and p.startswith("/") else None


def _covers(mount: dict[str, str], target: str, name: str) -> bool:
    """Whether a cache mount of the RUN already serves `name`: at its path, above or under it,
    or named for the tool (`id=pnpm-store`)."""
    at = (mount.get("target") or mount.get("dst") or mount.get("destination") or "").rstrip("/")
    if not at:
        return False
    t = target.rstrip("/")
    if at == t or t.startswith(at + "/") or at.startswith(t + "/"):
        return True
    words = re.split(r"[^a-z0-9]+", f"{mount.get('id', '')} {at}".lower())
    return name in words


def _only(text: str, name: str, noise: list[str]) -> bool:
    """Whether every `name install` of the RUN downloads nothing worth a cache: it installs
    only `noise` (pip upgrading itself) or wheels already on disk (`/wheels/*`, `x.whl`, or
    anything with `--no-index`)."""
    if re.search(r"\bpip[0-9.]*\s+(?:-\S+\s+)*(?:wheel|download)\b", text):
        return False  # `pip wheel -r requirements.txt -w /wheels` downloads
    found = False
    for m in re.finditer(r"(?:python[0-9.]*\s+-m\s+)?\bpip[0-9.]*\s+install\b([^;&|\n]*)", text):
        found = True
        args = m.group(1).split()
        if "--no-index" in args:
            continue
        words = [w.strip("\"'") for w in args if not w.startswith("-")]
        if not words or any(not _local_wheel(w) and re.split(r"[=<>~!\[]", w, maxsplit=1)[0].lower() not in noise
                            for w in words):
            return False
    return found


def _local_wheel(word: str) -> bool:
    """A wheel file, or every file of a folder of them (`/wheels/*`): nothing to download."""
    return word.endswith((".whl", "/*"))


def _offline_ok(r: _Run, rx: str, target: str, name: str) -> bool:
    """pnpm: no mount where it would hide a store an earlier RUN filled in the image (after an
    unmounted `pnpm fetch`), on an install from that store alone (`--offline`) unless an
    earlier RUN mounts it too, nor on a `pnpm fetch` whose store a later RUN installs from
    without that mount."""
    def mounted(other: Instruction) -> bool:
        return any(_covers(m, target, name) for m in other.mounts() if m.get("type") == "cache")

    def text(other: Instruction) -> str:
        return " ".join([other.command, *other.heredoc_texts()])

    for other in r.earlier():
        if re.search(r"\bpnpm\s+fetch\b", text(other)) and not mounted(other):
            return False
    if re.search(r"--offline\b", r.text) and not any(mounted(o) for o in r.earlier()):
        return False
    if re.search(r"\bpnpm\s+fetch\b", r.text):
        return not any(re.search(rx, text(o)) and not mounted(o) for o in r.later())
    return True


_YARNRC_LINE = lazyre.compile(r"^([A-Za-z]+):\s*(.*?)\s*$", re.MULTILINE)


def _copied_yarn(r: _Run) -> str | None:
    """The source of an earlier COPY or ADD that brings Yarn 2+'s files into the image (a
    `.yarnrc.yml` from a subfolder, `.yarn/releases`), if one does."""
    for other in r.earlier(("COPY", "ADD")):
        for src in other.operands[:-1]:
            if src.startswith("--"):
                continue
            clean = src.rstrip("/")
            if clean.endswith((".yarnrc.yml", ".yarn/releases", ".yarn")):
                return src
    return None


def _yarnrc(r: _Run) -> dict[str, str] | None:
    """The top-level settings of the `.yarnrc.yml` the RUN reads: the build context's, or one an
    earlier COPY brings from a subfolder (None: there is none the tool can read)."""
    if r.context is None:
        return None
    p = r.context / ".yarnrc.yml"
    copied = _copied_yarn(r)
    if not p.is_file() and copied is not None and copied.rstrip("/").endswith(".yarnrc.yml"):
        p = r.context / copied
    try:
        if not p.is_file() or p.stat().st_size > 65536:
            return None
        text = p.read_text("utf-8", "replace")
    except OSError:
        return None
    return {k: v.strip("'\"") for k, v in _YARNRC_LINE.findall(text)}


def _yarn_version(r: _Run) -> int | None:
    """Yarn's major version as the build context or the Dockerfile pins it."""
    for other in [*r.earlier(), r.ins]:
        m = re.search(r"\byarn\s+set\s+version\s+(\S+)|corepack\s+prepare\s+yarn@(\S+)", " ".join(
            [other.command, *other.heredoc_texts()]))
        if m:
            v = m.group(1) or m.group(2)
            return 4 if v in ("stable", "berry", "latest") else int(v.split(".")[0]) if v[:1].isdigit() else None
    rc = _yarnrc(r) or {}
    m = re.search(r"yarn-(\d+)\.", rc.get("yarnPath", ""))
    if m:
        return int(m.group(1))
    if r.context is not None:
        try:
            pkg = json.loads((r.context / "package.json").read_text("utf-8"))
        except (OSError, ValueError):
            pkg = None
        pm = pkg.get("packageManager") if isinstance(pkg, dict) else None
        m = re.match(r"yarn@(\d+)", pm) if isinstance(pm, str) else None
        if m:
            return int(m.group(1))
    return None


def _berry(r: _Run) -> bool:
    """Whether the RUN's yarn is Yarn 2 or later."""
    version = _yarn_version(r)
    if version is not None:
        return version >= 2
    return (_yarnrc(r) is not None or _copied_yarn(r) is not None
            or bool(re.search(r"\byarn\b[^;&|\n]*\s--immutable\b", r.text)))


def _berry_cache(spec: dict[str, Any], r: _Run, home: str) -> str | None:
    rc = _yarnrc(r) or {}
    version = _yarn_version(r)
    enabled = r.value("YARN_ENABLE_GLOBAL_CACHE") or rc.get("enableGlobalCache")
    if enabled is not None:
        global_cache = enabled.lower() in _TRUE
    elif version is None:
        return None  # Yarn 2 and 3 keep it in the project, 4 globally: which one is not known
    else:
        global_cache = version >= 4
    if not global_cache:
        folder = r.value("YARN_CACHE_FOLDER") or rc.get("cacheFolder")
        return _absolute(folder) if folder else None  # the project's own cache: never mounted over
    for var in spec["global-env"]:
        v = r.value(var)
        if v:
            return _absolute(posixpath.join(v, "cache"))
    if rc.get("globalFolder"):
        return _absolute(posixpath.join(rc["globalFolder"], "cache"))
    var, sub = spec["xdg"]
    v = r.value(var)
    if v:
        return _absolute(posixpath.join(v, sub))
    return f"{home.rstrip('/')}/{spec['home']}"


# --- the Dockerfile around the RUN -----------------------------------------------------------


def _env_before(stage: Stage, ins: Instruction) -> dict[str, tuple[Instruction, str]]:
    """The variables ENV sets before `ins` (the stage and the stages it starts from)."""
    out: dict[str, tuple[Instruction, str]] = {}
    for s in _chain(stage):
        for other in s.instructions:
            if other is ins:
                return out
            if other.name == "ENV":
                for k, v in buildctx.env_pairs(other):
                    out[k] = (other, v)
    return out


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


_ID_FLAG = lazyre.compile(r"(?:-u|--uid)[ =](\d+)")
_HOME_FLAG = lazyre.compile(r"(?:-d|--home-dir|--home|-h)[ =](\S+)")


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
