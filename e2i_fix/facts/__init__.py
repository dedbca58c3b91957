"""One reading of each service, per variant: what runs, as far as the stack tells.

Passes decide; they do not each work out again what a service is. For a service in one variant
of its stack (the files Compose runs together, `Project.variants()`), `of(project, name, files)`
answers once:

- `image`: the image reference (`facts.image.ImageRef`), variables read through `.env` and their
  defaults; `base`: the image the built stage chain starts from (for a service that builds), else
  the image; `knowledge`: what the image table (`data/images.toml`) and a user's
  `docker image inspect` file say of the image that runs;
- `build`, `stage`, `context`: the Dockerfile stage it builds; `user` and `workdir` resolved
  through ARG and ENV defaults, build args and the compose `user:`;
- `entrypoint`, `command`, `argv`: what runs, as Compose runs it (the compose keys over the
  image's ENTRYPOINT and CMD, exec and shell forms), and `scripts`: the shell it runs (`sh -c`
  strings, shell-form instructions, the entrypoint scripts found in the build context);
  `step_down` (gosu, su-exec, setpriv, `su ... -c`) and `starts_as_root`: why the entrypoint must
  start as root;
- `mounts`: binds, volumes and tmpfs, with host paths and read-only flags;
- `writes`: the paths it writes (`facts.runs`), `configs`: the configuration files it mounts or
  copies and reads (`facts.configs`: nginx, caddy and haproxy upstreams, postgresql.conf,
  redis.conf), `sizes`: what it sizes itself to (`facts.sizes`), `ports`: the ports it serves.

`every(project, svc)` gives the service in each variant it runs in; `reached(project, svc)` in
each variant an edit of its home reaches. Facts are computed on first use, and kept for the
engine's run by what they read (`run_cache`): the service's merged config, its variant's
top-level volumes, the Dockerfiles. The service in two variants that merge it alike is read
once; the engine builds a new index after each round of fixes, and a service the round left as
it was is not read again, while a decision a pass applied (a new USER) is a fact the next round
reads. Decisions that passes of
one round must share (the user a service will run as once `non-root-user` is applied) are in
`facts.decisions`.
"""

from __future__ import annotations

import functools
import marshal
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from e2i_fix import lazyre, shellwords
from e2i_fix.facts import image as images
from e2i_fix.facts.image import ImageRef, Knowledge
from e2i_fix.records import NamedTuple

if TYPE_CHECKING:
    from e2i_fix.dockerfile import DockerfileDoc, Instruction, Stage
    from e2i_fix.facts.configs import ConfigFile
    from e2i_fix.facts.runs import Write
    from e2i_fix.facts.sizes import Sizes
    from e2i_fix.project import Build, Project, Service

__all__ = ["Facts", "Mount", "Script", "User", "every", "of"]

ROOT_USERS = frozenset({"root", "0"})


class User(NamedTuple):
    """Who the first process runs as. `name` None: not known (a variable, or an image the tool has
    no facts for)."""

    name: str | None
    source: str  # "compose user:", "USER in Dockerfile:12", "the image's default (table)"...

    @property
    def root(self) -> bool:
        """Root, or not known not to be."""
        if self.name is None:
            return True
        return self.name.split(":", 1)[0].strip() in ROOT_USERS


class Script(NamedTuple):
    """Shell the service runs: an `sh -c` string, a shell-form instruction, or a file."""

    text: str
    origin: str  # "compose command", "Dockerfile:12 ENTRYPOINT", "docker/entrypoint.sh"
    path: Path | None = None  # the file in the build context, for a script file


class Mount(NamedTuple):
    """One entry of `volumes:` or `tmpfs:`."""

    kind: str  # "bind", "volume", "tmpfs", "npipe", "cluster", "image"
    source: str | None  # a host path (bind), a volume name, None (anonymous, tmpfs)
    target: str  # the container path
    read_only: bool
    host: Path | None = None  # a bind's host path, resolved against the stack's folder
    size: str | None = None  # a tmpfs size bound
    external: bool = False  # a named volume the stack does not create


_T = TypeVar("_T")


class _fact(Generic[_T]):  # noqa: N801 - used as a decorator, like cached_property
    """`cached_property`, with the value kept in the store the Facts shares with every Facts of
    the same reading (`of`): worked out once for them all."""

    def __init__(self, func: Callable[[Facts], _T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _fact[_T]: ...

    @overload
    def __get__(self, obj: Facts, owner: type | None = None) -> _T: ...

    def __get__(self, obj: Facts | None, owner: type | None = None) -> _fact[_T] | _T:
        if obj is None:
            return self
        shared = obj.shared
        if self.name in shared:
            value: _T = shared[self.name]
        else:
            value = shared[self.name] = self.func(obj)
        obj.__dict__[self.name] = value  # later reads: a plain attribute
        return value


class Facts:
    """One service in one variant. Attributes are worked out on first use, and shared with the
    other Facts of the run that read the same (`of`): `shared` holds them."""

    def __init__(self, project: Project, name: str, files: tuple[int, ...], config: dict[str, Any],
                 shared: dict[str, Any] | None = None) -> None:
        self.project = project
        self.name = name
        self.files = files
        self.config = config
        self.shared: dict[str, Any] = {} if shared is None else shared

    def __repr__(self) -> str:
        return f"Facts({self.name!r}, {self.files!r})"

    # --- the image --------------------------------------------------------------------------

    @_fact
    def image(self) -> ImageRef | None:
        img = self.config.get("image")
        return images.parse(img, self.project.env) if isinstance(img, str) else None

    @_fact
    def build(self) -> Build | None:
        from e2i_fix.project import resolve_build

        b = resolve_build(self.config.get("build"), self.project.folder, self.project.env)
        if b is not None and b.dockerfile is not None:
            b.doc = self.project.dockerfiles.get(b.dockerfile)
        return b

    @property
    def built(self) -> bool:
        return self.config.get("build") is not None

    @property
    def dockerfile(self) -> DockerfileDoc | None:
        return self.build.doc if self.build is not None else None

    @_fact
    def stage(self) -> Stage | None:
        doc = self.dockerfile
        return doc.stage(self.build.target) if doc is not None and self.build is not None else None

    @property
    def context(self) -> Path | None:
        return self.build.context if self.build is not None else None

    @property
    def unreadable(self) -> bool:
        """It builds, and the Dockerfile or stage it builds cannot be read."""
        return self.built and self.stage is None

    @_fact
    def chain(self) -> list[Stage]:
        """The stage it builds and the stages that one builds FROM, base first."""
        out: list[Stage] = []
        cur = self.stage
        while cur is not None and cur not in out:
            out.append(cur)
            cur = cur.parent
        return out[::-1]

    @_fact
    def base(self) -> ImageRef | None:
        """The image the built stage chain starts from (its ARGs resolved), else the image."""
        if not self.chain:
            return None if self.built else self.image
        first = self.chain[0]
        return images.parse(self.expand(first.base, None, None), self.project.env)

    @_fact
    def runs_image(self) -> ImageRef | None:
        """The image whose entrypoint runs: the image, or for a build the base image when the
        stages only add files to it (no ENTRYPOINT, CMD or USER of their own)."""
        if not self.built:
            return self.image
        if self.chain and all(s.last(n) is None for s in self.chain for n in ("ENTRYPOINT", "CMD", "USER")):
            return self.base
        return None

    @_fact
    def knowledge(self) -> Knowledge:
        """The table's facts about the image that runs (runtime facts) and the software."""
        k = images.knowledge(self.runs_image)
        if k.image is None and k.inspected is None:
            soft = images.knowledge(self.base if self.built else self.image)
            if soft.software or soft.inspected is not None:
                return Knowledge(None, soft.software, None)
        return k

    @_fact
    def base_knowledge(self) -> Knowledge:
        """What the table says of the base image the stages build on (its own user...)."""
        return images.knowledge(self.base)

    # --- Dockerfile values ------------------------------------------------------------------

    def expand(self, text: str, stage: Stage | None, upto: Instruction | None) -> str:
        """`text` with the ARG and ENV values in effect before `upto` in `stage` (None: at its
        end; `stage` None: the global ARGs before the first FROM) substituted; variables with
        no value are left as written."""
        values = self._values(stage, upto)
        if "$" not in text:
            return text
        return _substitute(text, values)

    def _values(self, stage: Stage | None, upto: Instruction | None) -> dict[str, str]:
        doc = self.dockerfile
        args = self.build_args
        out: dict[str, str] = {}
        glob: dict[str, str] = {}
        if doc is not None:
            first = doc.stages[0].from_instruction if doc.stages else None
            for ins in doc.instructions:
                if ins is first:
                    break
                if ins.name == "ARG":
                    for k, v in _assignments(ins.command):
                        glob[k] = args.get(k, v if v is not None else glob.get(k, ""))
        if stage is None:
            return glob
        for st in self._chain_to(stage):
            for ins in st.instructions:
                if ins is upto:
                    return out
                if ins.name == "ARG":
                    for k, v in _assignments(ins.command):
                        got = args.get(k, _substitute(v, out) if v is not None else glob.get(k))
                        if got is not None:
                            out[k] = got
                elif ins.name == "ENV":
                    for k, v in _assignments(ins.command, env=True):
                        if v is not None:
                            out[k] = _substitute(v, out)
        return out

    def _chain_to(self, stage: Stage) -> list[Stage]:
        out: list[Stage] = []
        cur: Stage | None = stage
        while cur is not None and cur not in out:
            out.append(cur)
            cur = cur.parent
        return out[::-1]

    @_fact
    def build_args(self) -> dict[str, str]:
        b = self.config.get("build")
        raw = b.get("args") if isinstance(b, dict) else None
        out: dict[str, str] = {}
        if isinstance(raw, dict):
            for k, v in raw.items():
                if v is not None:
                    out[str(k)] = _interpolate(str(v), self.project.env)
        elif isinstance(raw, list):
            for item in raw:
                k, eq, v = str(item).partition("=")
                if eq:
                    out[k] = _interpolate(v, self.project.env)
        return out

    @_fact
    def env(self) -> dict[str, str]:
        """The environment the process sees: the image's ENV (the stage chain's, or an inspected
        image's), then the service's env files and `environment`, variables resolved through
        `.env` where they can be."""
        out: dict[str, str] = {}
        if self.chain:
            out.update({k: v for k, v in self._values(self.stage, None).items() if k not in self._arg_names})
        elif self.knowledge.inspected is not None:
            out.update(self.knowledge.inspected.get("env") or {})
        for k, v in self.project.environment_of(self.config).items():
            if v is not None:
                out[k] = _interpolate(v, self.project.env)
        return out

    @_fact
    def _arg_names(self) -> set[str]:
        names: set[str] = set()
        for st in self.chain:
            for ins in st.instructions:
                if ins.name == "ARG":
                    names.update(k for k, _ in _assignments(ins.command))
                elif ins.name == "ENV":
                    names.difference_update(k for k, _ in _assignments(ins.command, env=True))
        return names

    # --- who it runs as ---------------------------------------------------------------------

    @_fact
    def user(self) -> User:
        """The compose `user:`, else the USER of the stage it builds (ARG and ENV resolved), else
        the image's default as the inspect file or the table tells."""
        own = self.config.get("user")
        if isinstance(own, (str, int)) and not isinstance(own, bool):
            text = _interpolate(str(own), self.project.env)
            return User(None if "$" in text or not text else text, "compose user:")
        for st in reversed(self.chain):
            ins = st.last("USER")
            if ins is not None:
                text = self.expand(ins.args.strip(), st, None)
                return User(None if "$" in text or not text else text, f"USER at {_line(self, ins)}")
        k = self.knowledge if not self.built else self.base_knowledge
        if self.built and self.unreadable:
            return User(None, "its Dockerfile cannot be read")
        u = k.runtime("user")
        if isinstance(u, str):
            return User(u, f"the image's default ({k.source('user')})")
        if self.built and self.base is not None and self.base.path == "scratch":
            return User("root", "FROM scratch")
        return User(None, "the image's default, not known here")

    @_fact
    def workdir(self) -> str | None:
        path: str | None = None
        for st in self.chain:
            for ins in st.instructions:
                if ins.name == "WORKDIR" and ins.operands:
                    new = self.expand(ins.operands[0], st, ins)
                    path = new if new.startswith("/") or not path else posixpath.join(path, new)
        own = self.config.get("working_dir")
        if isinstance(own, str) and own:
            path = own
        if path is None and self.knowledge.inspected is not None:
            path = self.knowledge.inspected.get("workdir")
        return path

    # --- what runs --------------------------------------------------------------------------

    def _image_default(self, name: str) -> tuple[list[str] | None, str | None, bool]:
        """The image's ENTRYPOINT or CMD: (words, origin, shell form), from the stage chain or
        an inspected image. A Dockerfile ENTRYPOINT resets the CMD inherited from earlier."""
        for st in reversed(self.chain):
            ins = st.last(name)
            if name == "CMD":
                ep = st.last("ENTRYPOINT")
                if ep is not None and (ins is None or ep.start > ins.start):
                    return None, None, False  # ENTRYPOINT after the last CMD: CMD is reset
            if ins is not None:
                words, shell = _instruction_words(ins)
                return words, f"{name} at {_line(self, ins)}", shell
        if not self.chain and self.knowledge.inspected is not None:
            v = self.knowledge.inspected.get("entrypoint" if name == "ENTRYPOINT" else "cmd")
            if isinstance(v, list):
                return [str(x) for x in v], "docker image inspect", False
        return None, None, False

    @_fact
    def entrypoint(self) -> tuple[list[str] | None, str | None]:
        """The entrypoint words and where they come from (None: not known, or none)."""
        v = self.config.get("entrypoint")
        if v is not None:
            return _compose_words(v), "compose entrypoint"
        words, origin, _ = self._image_default("ENTRYPOINT")
        return words, origin

    @_fact
    def command(self) -> tuple[list[str] | None, str | None]:
        v = self.config.get("command")
        if v is not None:
            return _compose_words(v), "compose command"
        if self.config.get("entrypoint") is not None:
            return None, None  # a compose entrypoint resets the image's CMD
        words, origin, _ = self._image_default("CMD")
        return words, origin

    @_fact
    def argv(self) -> list[str]:
        """The words of what runs: entrypoint then command (empty when neither is known)."""
        return [*(self.entrypoint[0] or []), *(self.command[0] or [])]

    @_fact
    def launch(self) -> list[tuple[str, str]]:
        """The entrypoint and the command apart, each as (where it is written, its words): `its
        entrypoint` and `its command` for the compose keys, `the ENTRYPOINT at Dockerfile:12` for
        the image's own; for a message that says where it found a program."""
        out = []
        for (words, origin), own in ((self.entrypoint, "its entrypoint"), (self.command, "its command")):
            if words:
                where = own if origin is None or origin.startswith("compose") else (
                    f"the image's {own.split()[-1]} (docker image inspect)" if origin == "docker image inspect"
                    else f"the {origin}")
                out.append((where, " ".join(words)))
        return out

    @_fact
    def scripts(self) -> tuple[Script, ...]:
        from e2i_fix.facts import runs

        return runs.scripts(self)

    @_fact
    def step_down(self) -> str | None:
        """The tool the entrypoint uses to leave root (gosu, su-exec, setpriv, su...), if any."""
        from e2i_fix.facts import runs

        return runs.step_down(self)

    @_fact
    def starts_as_root(self) -> str | None:
        """Why what runs must start as root, if the stack tells: a step-down, supervisord, an
        entrypoint that writes under /etc or chowns, or an image built to (the table)."""
        from e2i_fix.facts import runs

        return runs.starts_as_root(self)

    @_fact
    def writes(self) -> tuple[Write, ...]:
        from e2i_fix.facts import runs

        return runs.writes(self)

    # --- mounts and files --------------------------------------------------------------------

    @_fact
    def mounts(self) -> tuple[Mount, ...]:
        from e2i_fix.facts import runs

        return runs.mounts(self)

    @_fact
    def configs(self) -> tuple[ConfigFile, ...]:
        from e2i_fix.facts import configs

        return configs.files(self)

    @_fact
    def sizes(self) -> Sizes:
        from e2i_fix.facts import sizes

        return sizes.read(self)

    @_fact
    def ports(self) -> list[tuple[int, str]]:
        """The container ports it serves, most certain first, each with why."""
        from e2i_fix.facts import runs

        return runs.ports(self)

    @_fact
    def file_caps(self) -> dict[str, tuple[str, ...]]:
        """Binaries that carry file capabilities (the table's, and `setcap` in its RUN lines)."""
        from e2i_fix.facts import runs

        return runs.file_caps(self)


# --- access ---------------------------------------------------------------------------------


def of(project: Project, svc: Service | str, files: tuple[int, ...] | None = None) -> Facts | None:
    """`svc` in the variant of `files` (None: the base with every override, as `Service.config`
    is merged); None where the variant has no such service."""
    name = svc if isinstance(svc, str) else svc.name
    key = files if files is not None else project.widest
    cache: dict[tuple[str, tuple[int, ...]], Facts | None] = project.__dict__.setdefault("_facts", {})
    if (name, key) not in cache:
        model = project.model(key)
        cfg = (model.get("services") or {}).get(name)
        cache[(name, key)] = Facts(project, name, key, cfg, _shared(project, name, cfg, key)) if isinstance(cfg, dict) else None
    return cache[(name, key)]


def run_cache(project: Project) -> dict[str, Any]:
    """What the facts layer keeps for the whole run of the engine on one stack (every round's
    index, `Workspace.run_cache`); an index built on its own keeps its own."""
    got: dict[str, Any] | None = project.__dict__.get("run_cache")
    if got is None:
        got = project.__dict__["run_cache"] = {}
    return got


def _shared(project: Project, name: str, cfg: dict[str, Any], files: tuple[int, ...]) -> dict[str, Any]:
    """Where a Facts keeps what it works out: shared with every Facts of the run that reads the
    same. A Facts reads its service's merged config, the top-level volumes of its variant (a
    named volume is external or not), the Dockerfiles, and what does not change in a run (the
    stack's folder and `.env`, files on disk, the image table): the service in two variants
    that merge it alike is one reading, and so is a service that a round of fixes left as it
    was."""
    store: dict[Any, dict[str, Any]] = run_cache(project).setdefault("facts", {})
    around: dict[tuple[int, ...], Any] = project.__dict__.setdefault("_facts_around", {})
    try:
        if files not in around:  # what the variant's services share: its volumes, the Dockerfiles
            around[files] = (marshal.dumps(project.model(files).get("volumes")),
                             tuple(id(d) for d in project.dockerfiles.values()))
        key = (name, marshal.dumps(cfg), around[files])
    except ValueError:  # a value marshal cannot hold: this reading is its own
        return {}
    got = store.get(key)
    if got is None:
        got = store[key] = {}
    return got


def every(project: Project, svc: Service | str) -> list[Facts]:
    """`svc` in each variant of the stack that has it, in `Project.variants()` order."""
    out = []
    for files in project.variants():
        f = of(project, svc, files)
        if f is not None:
            out.append(f)
    return out


def reached(project: Project, svc: Service | str) -> list[Facts]:
    """`svc` in each variant that an edit of its home reaches (`Project.reaching`), in
    `Project.variants()` order: what a pass that adds a key to the service decides on. A file
    that runs alone without the home (a dev file, its own stack) is not changed by that edit,
    and says nothing about whether it is safe. (A Dockerfile edit reaches every variant that
    builds the stage: `every`.)"""
    s = project.services.get(svc) if isinstance(svc, str) else svc
    home = s.home if s is not None else None
    if home is None:
        return every(project, svc)
    out = []
    for files in project.reaching(home.doc):
        f = of(project, svc, files)
        if f is not None:
            out.append(f)
    return out


# --- helpers --------------------------------------------------------------------------------

_DVAR = lazyre.compile(r"\$(?:\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def _substitute(text: str, values: dict[str, str]) -> str:
    """Dockerfile variable substitution (`$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR:+word}`);
    a variable with no value stays as written."""

    def sub(m: re.Match[str]) -> str:
        name = m.group("name") or m.group("bare")
        value = values.get(name)
        op = m.group("op")
        if op == "-":
            return value if value else m.group("arg")
        if op == "+":
            return m.group("arg") if value else ""
        return value if value is not None else m.group(0)

    return _DVAR.sub(sub, text)


def _interpolate(text: str, env: dict[str, str]) -> str:
    if "$" not in text:
        return text
    from e2i_fix.project import interpolate

    return interpolate(text, env) if _has_value(text, env) else text


_EVAR = lazyre.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+][^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _has_value(text: str, env: dict[str, str]) -> bool:
    """Whether every variable in `text` has a value or a default here."""
    for m in _EVAR.finditer(text.replace("$$", "")):
        name = m.group(1) or m.group(3)
        if name not in env and not (m.group(2) or "").lstrip(":").startswith("-"):
            return False
    return True


@functools.lru_cache(maxsize=2048)  # each ARG and ENV line, asked again by every service that builds it
def _assignments(text: str, env: bool = False) -> tuple[tuple[str, str | None], ...]:
    """`ARG A=1 B` / `ENV A=1 B="two words"` / the legacy `ENV A 1`: (name, value or None)."""
    try:
        words = shellwords.split(text)
    except ValueError:
        words = text.split()
    if env and len(words) >= 2 and "=" not in words[0]:
        return ((words[0], " ".join(words[1:])),)
    out: list[tuple[str, str | None]] = []
    for w in words:
        k, eq, v = w.partition("=")
        out.append((k, v if eq else None))
    return tuple(out)


def _instruction_words(ins: Instruction) -> tuple[list[str], bool]:
    """An ENTRYPOINT/CMD's words: exec form as written; shell form as `/bin/sh -c "..."`."""
    if ins.json:
        return list(ins.operands), False
    return ["/bin/sh", "-c", ins.command], True


def _compose_words(v: Any) -> list[str]:
    """A compose `command:`/`entrypoint:`: a list as written, a string split as Compose splits
    it (shell words, no shell)."""
    if isinstance(v, list):
        return [str(x) for x in v]
    try:
        return shellwords.split(str(v))
    except ValueError:
        return str(v).split()


def _line(f: Facts, ins: Instruction) -> str:
    doc = f.dockerfile
    where = Path(str(doc.path)).name if doc is not None else "Dockerfile"
    return f"{where}:{ins.line}"


# --- how the stack is deployed --------------------------------------------------------------

_SWARM_KEYS = ("placement", "update_config", "rollback_config", "endpoint_mode")
_STACK_DEPLOY = "docker stack deploy"
_NOT_SCRIPTS = ("node_modules", "venv", "vendor", "__pycache__", "site-packages")


def swarm(project: Project) -> str | None:
    """Why the stack's files are also deployed with `docker stack deploy`, if they are: a
    deploy key only swarm reads (`placement`, `update_config`, `mode: global`...), an external
    secret, a script or
    Makefile beside the stack (or at the project's root) that deploys it as a stack, a comment
    of its files that speaks of swarm mode, or a README's Play with Docker link to a file. Swarm
    reads the same file differently: `tmpfs:`, `depends_on` and `security_opt` are ignored,
    `depends_on` conditions are refused by its schema, and reservations are scheduling
    constraints. Deploy keys say nothing in files that swarm would refuse (`_stack_refuses`)."""
    cache = project.__dict__
    if "_swarm" in cache:
        got: str | None = cache["_swarm"]
        return got
    why: str | None = None
    refused = _stack_refuses(project)
    for name, svc in (() if refused else (project.model(project.widest).get("services") or {}).items()):
        deploy = svc.get("deploy") if isinstance(svc, dict) else None
        if not isinstance(deploy, dict):
            continue
        key = next((k for k in _SWARM_KEYS if k in deploy), None)
        if key is None and deploy.get("mode") in ("global", "replicated-job", "global-job"):
            key = "mode"
        if key is not None:
            why = f"service {name!r} sets deploy.{key}, which only swarm reads"
            break
    if why is None:
        # `docker compose up` refuses an external secret ("unsupported external secret",
        # docker/compose pkg/compose/create.go; docker/docs#18982): a
        # stack with one runs on a swarm, where `docker secret create` made it.
        tops = project.model(project.widest).get("secrets")
        for name, spec in (tops.items() if isinstance(tops, dict) else ()):
            if isinstance(spec, dict) and spec.get("external") not in (None, False, "false"):
                why = f"secret {name!r} is external, which only a swarm gives (`docker compose up` refuses it)"
                break
    if why is None:
        # What scripts say is read once per run: every round's index asks again.
        names = frozenset(Path(str(d.path)).name for d in project.docs)
        scripts: dict[frozenset[str], str | None] = run_cache(project).setdefault("swarm scripts", {})
        if names not in scripts:
            scripts[names] = _deployed_by_script(project, names)
        why = scripts[names]
    if why is None:
        why = _swarm_said(project)
    cache["_swarm"] = why
    return why


# A comment of a compose file that speaks of swarm mode ("not supported in swarm mode", "for
# docker stack deploy"), and the Play with Docker link that deploys a file as a stack.
_SWARM_COMMENT = lazyre.compile(r"(?im)^[ \t]*#.*?\b(swarm|docker stack|stack deploy|docker secret|play-with-docker)\b.*$")
_PWD_STACK = lazyre.compile(r"play-with-docker\.com/\?stack=\S*?([\w.-]+\.ya?ml)")


def _stack_refuses(project: Project) -> str | None:
    """What in the stack's files `docker stack deploy` refuses (its compose schema has no
    `include`, `extends` nor `profiles`, and `depends_on` is a list there): files that use them
    are run with Compose, whatever deploy keys they also carry (`deploy.mode: global`)."""
    for d in project.docs:
        value = d.value
        if "include" in value:
            return f"{Path(str(d.path)).name} includes files"
        services = value.get("services")
        for name, svc in (services.items() if isinstance(services, dict) else ()):
            if not isinstance(svc, dict):
                continue
            key: str | None = next((k for k in ("extends", "profiles") if k in svc), None)
            if key is None and isinstance(svc.get("depends_on"), dict):
                key = "depends_on (its long form)"
            if key is not None:
                return f"service {name!r} uses {key}"
    return None


def _swarm_said(project: Project) -> str | None:
    """Why the authors run the files as a swarm stack too, by their own words: a comment of a
    compose file that speaks of swarm mode, or a README beside it whose Play with Docker link
    deploys the file as a stack."""
    for d in project.docs:
        m = _SWARM_COMMENT.search(d.text)
        if m is not None:
            line = d.text.count("\n", 0, m.start()) + 1
            return f"{Path(str(d.path)).name}:{line} speaks of {m.group(1).lower()} (`{m.group(0).strip()[:80]}`)"
    names = {Path(str(d.path)).name for d in project.docs}
    for readme, _, text in side_files_near(project):
        if not readme.name.startswith("README"):
            continue
        for m in _PWD_STACK.finditer(text):
            if m.group(1) in names:
                return f"{readme.name} deploys {m.group(1)} as a stack on Play with Docker"
    return None


_SIDE_NAMES = ("Makefile", "justfile", "Taskfile.yml")


def side_files_near(project: Project) -> Iterator[tuple[Path, int, str]]:
    """The side files (`side_files`) beside the stack, then those at the repository's top."""
    for folder in dict.fromkeys([project.folder, project.stack.boundary or project.folder]):
        yield from side_files(project, folder)


def side_files(project: Project, folder: Path) -> tuple[tuple[Path, int, str], ...]:
    """The READMEs, Makefiles, justfiles, Taskfiles and shell scripts of `folder` (up to 1 MiB
    each), in name order, with their sizes: what the passes read of how a project builds and
    deploys its stacks. Read once per run: every round's index, and each pass, asks again."""
    cache: dict[Path, tuple[tuple[Path, int, str], ...]] = run_cache(project).setdefault("side files", {})
    got = cache.get(folder)
    if got is None:
        out = []
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            entries = []
        for p in entries:
            if not (p.name.upper().startswith("README") or p.name in _SIDE_NAMES or p.suffix in (".sh", ".bash")):
                continue
            try:
                size = p.stat().st_size
                if not p.is_file() or size >= 1 << 20:
                    continue
                out.append((p, size, p.read_text("utf-8", "replace")))
            except OSError:
                continue
        got = cache[folder] = tuple(out)
    return got


def _deployed_by_script(project: Project, names: frozenset[str]) -> str | None:
    why = _stack_script(project, names)
    if why is None and project.stack.boundary is not None:
        # A deploy script elsewhere in the repository that names the stack's folder.
        try:
            rel = project.folder.resolve().relative_to(project.stack.boundary.resolve()).as_posix()
        except ValueError:
            rel = "."
        # Its last two folders, as scripts name it from wherever they run (a lone folder name
        # only as a path, not a word of the command).
        tail = "/".join(rel.split("/")[-2:])
        named = tail if "/" in tail else tail + "/"
        if rel != ".":
            why = next((f"{p.relative_to(project.stack.boundary).as_posix()} deploys {rel} with `{_STACK_DEPLOY}`"
                        for p, text in _deploy_scripts(project.stack.boundary) if _names_for_stack(text, named)), None)
    return why


def _names_for_stack(text: str, named: str) -> bool:
    """Whether a deploy script names the folder for `docker stack deploy`: as a whole path
    (`deploy/docker` is not `deploy/docker-swarm`), on the line that deploys or on one that
    runs no `docker compose` (an assignment, a `cd`)."""
    rx = re.compile(re.escape(named.rstrip("/")) + r"(?![\w.-])")
    for line in text.splitlines():
        if rx.search(line) and (_STACK_DEPLOY in line or "compose" not in line):
            return True
    return False


@functools.lru_cache(maxsize=8)
def _deploy_scripts(root: Path) -> tuple[tuple[Path, str], ...]:
    """The shell scripts of a repository (six folders deep) that run `docker stack deploy`."""
    out = []
    for dirpath, dirs, files in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirs[:] = [] if depth >= 6 else [d for d in dirs if not d.startswith(".") and d not in _NOT_SCRIPTS]
        for name in files:
            if name.endswith((".sh", ".bash")):
                text = _stack_script_text(Path(dirpath) / name)
                if text is not None and _STACK_DEPLOY in text:
                    out.append((Path(dirpath) / name, text))
    return tuple(out)


def _stack_script_text(p: Path) -> str | None:
    try:
        return p.read_text("utf-8", "replace") if p.is_file() and p.stat().st_size <= 262144 else None
    except OSError:
        return None


def _stack_script(project: Project, names: frozenset[str]) -> str | None:
    for p, size, text in side_files_near(project):
        if not (p.suffix in (".sh", ".bash") or p.name in _SIDE_NAMES) or size > 262144:
            continue
        for line in text.splitlines():
            if _STACK_DEPLOY in line and (any(n in line for n in names) or "-c" in line.split(_STACK_DEPLOY, 1)[1]):
                return f"{p.name} runs `{line.strip()[:80]}`"
    return None
