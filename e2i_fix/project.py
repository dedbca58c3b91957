"""Stacks on disk, and the read-only Project index the passes query.

A *stack* is the files Compose would read together: a base file, its override files, the files
they `include:` or `extends:` from, the Dockerfiles their `build:` sections name, and `.env`.
The *Project* is built from the current text of each file, so the engine rebuilds it after every
round of fixes. It reads the Compose language as compose-go does, and a differential test
(`tests/test_differential.py`) holds it to `docker compose config` on every variant of the
corpus and of the fixtures.

For pass authors
----------------
- `Project.services`: name -> `Service`, in the order the files define them: the services of the
  base, its overrides and every included file (the templates a file reaches only through
  `extends: file:` are not services). Every service a file defines is there, a `!reset` one too.
- `Service.config`: the service as the base with every override merged (`Project.widest`):
  mappings merge, sequences append, `ports`/`volumes`/`secrets`/`configs`/`env_file` merge by
  what they bind, `command`/`entrypoint`/`healthcheck.test` are replaced, `!reset` and
  `!override` applied, `extends` followed (across files too), merge keys resolved, and the
  relative paths of an included or extended service made relative to the stack's folder.
  Environments and labels are mappings, `depends_on` long form (`model.normalise_service`).
- `Service.defs`: each file's definition (`ServiceDef`: `doc`, `key`, `node`, `editable`,
  `tags`), in the order Compose reads them (an included file's where its includer is), base
  first. `Service.home`: where new keys go (the first editable definition; the
  one that `!override`s the whole service; None for a `!reset` service). A service an included
  file defines has its home there: it is fixed in the file that defines it.
- `Service.reset`: the definition that drops the service (`backup: !reset null`) in every
  variant that defines it. `targets()` leaves such a service out: it gets nothing.
- `Service.shadows(d, *path)`: a later definition that `!reset`s or `!override`s `path` (or what
  holds it) in every variant that reads `d`. A pass about to add `path` in `d` asks it first:
  the edit would be lost everywhere, so it edits the overriding file, or reports. Where some
  variant reads `d` without that file (the base run alone), it is None and the edit counts.
- `Service.build`: the context, Dockerfile and target it builds (`Build.stage`: the Dockerfile
  stage it ends at); `Service.has_healthcheck`: a health check in the merged config or in that
  stage.
- `Service.profiles`, `Service.runs_with(profiles)`, `Project.profiles()`,
  `Project.default_profiles` (`COMPOSE_PROFILES` in `.env`), `Project.running(profiles)`,
  `Project.always_with(svc, other)`: which services run where. A
  pass must not make a service that always runs wait for one that only a profile starts.
- `Project.environment(svc)`: what the container really gets: its `env_file` entries, then
  `environment` over them. `Project.env_file(path)` and `Project.service_env_files(svc)` give
  the entries with their line numbers.
- `Project.variants()`: the ways the stack is run (`Variant`: a tuple of indexes into
  `Project.docs`, with `kind`, `role` and `likely`): the base alone, the base with each override
  file, each override file that runs alone (`runs_alone`), the chain `.env`'s `COMPOSE_FILE`
  names; included files belong to each variant of their includer. `Project.reaching(doc)`: the
  variants an edit of `doc` changes (decide on these, not on a file run alone without it).
  `Project.model(files)`: one variant's normalised model, computed once (verification compares
  these before and after a run). `Project.roles[i]` says what `docs[i]` is to the stack: `base`,
  `override`, `include` or `extends` (read only for the services extending from it);
  `Project.file_role(i)` / `Project.role_of(path)` what a file is for (`fileroles`: production,
  development, test, example).
- `Project.sharers(node)`, `Project.with_extenders(names)`, `Project.extends_parents`: who else
  an edit of a shared node or of an `extends` base reaches.

Costs: a file is parsed once per text; `!reset`/`!override` cost a substring search in a file
that has none; includes and `extends: file:` are followed only where a file names them;
profile and env-file questions read nothing until asked.
"""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix import fileroles, lazyre, model, yamldoc
from e2i_fix.errors import InputError
from e2i_fix.records import NamedTuple
from e2i_fix.source import Source
from e2i_fix.yamldoc import ComposeDoc, MappingNode, Node, ScalarNode

if TYPE_CHECKING:
    from e2i_fix import dockerfile
    from e2i_fix.dockerfile import DockerfileDoc, Stage

__all__ = ["Build", "ComposeDoc", "Project", "Ref", "Service", "ServiceDef", "Stack", "discover", "references"]

BASE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_OVERRIDE = lazyre.compile(r"(?:docker-)?compose\.[^/]+\.ya?ml")
# Compose-like names with other separators (`docker-compose-local.yml`, `compose-dev.yaml`,
# `fleet-compose.yml`): what they are is read from what they hold.
_LIKE = lazyre.compile(r"(?:[^/]*[-_.])?(?:docker-)?compose(?:[-_.][^/]*)?\.ya?ml")
_DOCKERFILE_NAME = lazyre.compile(r"(?i)(?:[\w.-]+\.)?dockerfile(?:\.[\w.-]+)?|containerfile")
# Folders a search never enters: tools' own trees, and vendored code (Go's `vendor/`, `third_party/`),
# which belongs to the projects it was copied from (a check such as `go mod vendor` undoes edits there).
_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache", "vendor", "third_party"}


class Stack:
    """The files of one stack. `context` files are read for decisions, never edited.

    `boundary` is the folder outside which nothing is written (see `boundary_of`); None: the
    boundary of the stack's own folder. `chain` is the `COMPOSE_FILE` list of the folder's
    `.env` (every file of it is in `compose`), [] when there is none. `only`: the compose files
    named on the command line; the others are read and decided on as a run on the folder
    would, and never written (None: every file of the stack may be written)."""

    def __init__(self, folder: Path, compose: list[Path], context: set[Path] | None = None,
                 boundary: Path | None = None, chain: list[Path] | None = None) -> None:
        self.folder = folder
        self.compose = compose
        self.context: set[Path] = set() if context is None else context
        self.boundary = boundary
        self.chain: list[Path] = [] if chain is None else chain
        self.only: set[Path] | None = None

    def writable(self, path: Path) -> bool:
        """Whether `path` (followed through symlinks, as writes are) lies inside the boundary."""
        root = self.boundary if self.boundary is not None else boundary_of(self.folder)
        real = os.path.realpath(path)
        return real == str(root) or real.startswith(str(root).rstrip(os.sep) + os.sep)

    def nested_repository(self, path: Path) -> Path | None:
        """The folder of another git repository than the stack's own that holds `path` (a git
        submodule, a nested clone: a `.git` file or folder between the file and the boundary),
        if one does: its files belong to that repository, whose history a fix here cannot go
        into."""
        root = self.boundary if self.boundary is not None else boundary_of(self.folder)
        top = Path(os.path.realpath(root))

        def repository(p: Path) -> Path | None:
            here = p
            while here != top and top in here.parents:
                if os.path.lexists(here / ".git"):
                    return here
                here = here.parent
            return None

        theirs = repository(Path(os.path.realpath(path)).parent)
        if theirs is None or theirs == repository(Path(os.path.realpath(self.folder))):
            return None
        return theirs

    def __repr__(self) -> str:
        return f"Stack({self.folder!r}, {self.compose!r}, {self.context!r})"

    def __str__(self) -> str:
        return str(self.compose[0]) if len(self.compose) == 1 else str(self.folder)


class Skipped(NamedTuple):
    """A file with a compose-like name that is neither a stack nor an override: left alone, and
    said so (information, never an error)."""

    path: Path
    message: str
    refused: bool = False  # Compose refuses what it holds: naming it does not make it a compose file


def is_compose_name(name: str) -> bool:
    return name in BASE_NAMES or bool(_OVERRIDE.fullmatch(name))


def is_compose_like(name: str) -> bool:
    """A name Compose does not look for but people give compose files (`compose-dev.yaml`)."""
    return not is_compose_name(name) and bool(_LIKE.fullmatch(name))


_BOUNDARIES: dict[str, Path] = {}


def boundary_of(path: Path) -> Path:
    """Where a run given `path` may write: the git work tree that holds it, or outside git the
    folder itself (a file's folder). Compose files are untrusted input in CI: a `build.context`
    of `../../elsewhere`, an include from outside or a symlink out is read, never written."""
    start = os.path.realpath(path)
    if not os.path.isdir(start):
        start = os.path.dirname(start)
    got = _BOUNDARIES.get(start)
    if got is None:
        here = start
        while True:
            if os.path.lexists(os.path.join(here, ".git")):  # a folder, or a worktree's file
                got = Path(here)
                break
            parent = os.path.dirname(here)
            if parent == here:
                got = Path(start)
                break
            here = parent
        _BOUNDARIES[start] = got
    return got


Discovered = Stack | Skipped | tuple[Path, InputError]


def discover(paths: list[Path]) -> Iterator[Discovered]:
    """Stacks under the given paths. Folders are searched; a file named on the command line
    brings its folder's stack with it (the overrides, the files that run alone, the `.env`
    chain), of which only the named compose files are written: it gets exactly the fixes a run
    on the folder gives it. A file that a stack's files include or extend from belongs to that
    stack: it is neither an override of its folder's base nor a stack of its own (the first
    stack that names it owns it; any other reads it for context)."""
    found: list[Discovered] = []
    explicit: dict[Path, list[Path]] = {}
    fragments: list[_Fragment] = []
    for p in paths:
        if p.is_dir():
            root = boundary_of(p)
            for s in _walk(p):
                if isinstance(s, _Fragment):
                    fragments.append(s._replace(root=root))
                    continue
                if isinstance(s, Stack):
                    s.boundary = root
                found.append(s)
        elif _DOCKERFILE_NAME.fullmatch(p.name) and p.is_file():
            # A Dockerfile is fixed through the compose files that build it: name those, or
            # the folder (a lint-staged or pre-commit hook may pass it along).
            found.append(Skipped(p, "left alone: a Dockerfile is fixed with the stack whose compose files build it: "
                                    "name the compose file or its folder"))
        elif p.exists() or p.is_symlink():
            explicit.setdefault(p.parent, []).append(p)
        else:
            found.append((p, InputError("no such file or folder")))
    # A folder given twice, or inside another given folder, and a file inside a given folder,
    # are read once: the first path that reaches a stack runs it.
    seen: set[tuple[str, ...]] = set()
    unique: list[Discovered] = []
    for item in found:
        if isinstance(item, Stack):
            key = tuple(os.path.realpath(f) for f in item.compose)
            if key in seen:
                continue
            seen.add(key)
        unique.append(item)
    found = unique
    walked = {f for key in seen for f in key} | {os.path.realpath(f) for g in fragments for f in g.files}
    for folder, files in explicit.items():
        files = [f for f in files if os.path.realpath(f) not in walked]
        if not files:
            continue
        root = boundary_of(folder)
        for s in _named(folder, sorted(set(files), key=_order)):
            if isinstance(s, _Fragment):
                fragments.append(s._replace(root=root))
                continue
            if isinstance(s, Stack):
                s.boundary = root
            found.append(s)
    yield from _claim(_settle(found, fragments))


def _named(folder: Path, files: list[Path]) -> list[Stack | Skipped | _Fragment]:
    """The stacks of `folder` that hold a named file, each writing only the named files; a
    named file no stack of the folder holds is a stack of its own, as named, unless its
    services cannot run alone (`_settle` decides what it is then) or Compose refuses what it
    holds (it is left alone, as in a run on the folder)."""
    grouped = list(_group(folder, _listing(folder)))
    stacks = [s for s in grouped if isinstance(s, Stack)]
    named = set(files)
    out: list[Stack | Skipped | _Fragment] = []
    for g in grouped:
        if isinstance(g, Skipped) and g.refused and g.path in named:
            out.append(g)
            named.discard(g.path)
    for s in _claim(list(stacks)):
        if not isinstance(s, Stack):
            continue
        reach = set(s.compose) | _reached(s)
        mine = named & reach
        if mine:
            s.only = mine
            out.append(s)
            named -= mine
    for g in grouped:
        if isinstance(g, _Fragment) and named & set(g.files):
            out.append(g._replace(named=frozenset(named & set(g.files))))
            named -= set(g.files)
    for f in files:
        if f in named:
            partial = _partial(f)
            out.append(_Fragment((f,), partial, frozenset({f})) if partial else Stack(folder, [f]))
    return out


class _Fragment(NamedTuple):
    """Compose files whose services cannot run alone: the first re-declares services (`partial`)
    without an image, build or extends, which no other of them gives. Never a stack of their
    own: `_settle` reads them as overrides of the base file that defines those services, or
    leaves them alone."""

    files: tuple[Path, ...]  # one file, or a folder's base with its overrides
    partial: tuple[str, ...]
    named: frozenset[Path] | None = None  # named on the command line: only these are written
    root: Path | None = None  # how far up a base may be (the run's boundary)


def _settle(found: list[Discovered], fragments: list[_Fragment]) -> list[Discovered]:
    """Each fragment read as an override of its base: the nearest folder up (the fragment's
    own first, up to the top of the project) whose base file defines, with an image, build or
    extends, every service the fragment re-declares without one. Its files join that base's
    stack (the base's own stack when the run has it; else one that only reads the base), so
    the variant base + fragment is what passes decide on and verification checks: a list key
    is not added to both. A fragment no base explains is left alone, with a note that says how
    it is run. Files a stack already reads (a `COMPOSE_FILE` chain) are not read twice."""
    if not fragments:
        return found
    held = {os.path.realpath(f) for s in found if isinstance(s, Stack) for f in s.compose}
    by_base = {os.path.realpath(s.compose[0]): s for s in found if isinstance(s, Stack)}
    out = list(found)
    for g in fragments:
        files = [f for f in g.files if os.path.realpath(f) not in held]
        if not files:
            continue
        base = _base_up(g)
        if base is None:
            out += [Skipped(f, _fragment_note(g, f)) for f in files]
            continue
        stack = by_base.get(os.path.realpath(base))
        if stack is None:
            stack = next(s for s in _group(base.parent, _listing(base.parent))
                         if isinstance(s, Stack) and s.compose[0] == base)
            stack.boundary = g.root
            stack.only = set()  # outside what the run was given: read, not written
            by_base[os.path.realpath(base)] = stack
            out.append(stack)
        for f in files:
            if os.path.realpath(f) not in {os.path.realpath(c) for c in stack.compose}:
                stack.compose.append(f)
        if stack.only is not None:
            stack.only |= set(files) if g.named is None else set(g.named)
        held.update(os.path.realpath(f) for f in files)
    return out


def partial_services(value: dict[str, Any]) -> tuple[str, ...]:
    """The services a compose file's plain value re-declares without an image, build or
    extends (or drops, `web: !reset null`): what only an override has."""
    svcs = value.get("services")
    return tuple(str(n) for n, svc in svcs.items() if not _runnable(svc)) if isinstance(svcs, dict) else ()


_TOP_SERVICES = lazyre.compile(r"^services[ \t]*:[ \t]*(?:#.*)?\r?$", re.MULTILINE)
_KEY = lazyre.compile(r"([A-Za-z0-9_.<-][^:#]*?)[ \t]*:(?:[ \t]+(.*))?")
_RUNS = frozenset({"image", "build", "extends", "<<"})
_ANCHOR = lazyre.compile(r"&\S+")


def _surely_runnable(text: str) -> bool:
    """Whether every service of a block `services:` writes an image, build, extends or merge
    key at its own level, read from the lines without parsing; False when unsure (a flow
    mapping, an alias, a tag): then the file is parsed."""
    m = _TOP_SERVICES.search(text)
    if m is None:
        return False
    indent = child = None
    current = found = False
    for line in text[m.end():].split("\n")[1:]:
        line = line.rstrip("\r")
        body = line.lstrip(" ")
        if not body or body.startswith("#"):
            continue
        depth = len(line) - len(body)
        if depth == 0:
            break  # the next top-level key
        if indent is None:
            indent = depth
        if depth == indent:
            if current and not found:
                return False
            k = _KEY.fullmatch(body)
            rest = (k.group(2) or "").split("#", 1)[0].strip() if k else None
            if rest is None or rest and not _ANCHOR.fullmatch(rest):
                return False  # a value on the key's line: parse it
            current, found, child = True, False, None
        elif depth > indent:
            if child is None:
                child = depth
            if depth == child and not found:
                k = _KEY.fullmatch(body)
                found = k is not None and k.group(1) in _RUNS
        else:
            return False
    return current and found


def _partial(path: Path, others: Sequence[Path] = ()) -> tuple[str, ...]:
    """The services `path` re-declares without an image, build or extends that none of
    `others` (the files read with it) gives one; () for a file that cannot be read (the run
    reports it)."""
    from e2i_fix import source

    try:
        if _surely_runnable(source.read(path).text):
            return ()
    except InputError:
        return ()
    value, _ = _peek(path, services=False)
    partial = partial_services(value) if value is not None else ()
    if partial and others:
        given: set[str] = set()
        for o in others:
            v, _ = _peek(o, services=False)
            svcs = v.get("services") if v is not None else None
            given.update(str(n) for n, svc in (svcs.items() if isinstance(svcs, dict) else ()) if _runnable(svc))
        partial = tuple(n for n in partial if n not in given)
    return partial


def _defined(path: Path) -> dict[str, Any]:
    """The services a compose file defines, with those of the files it includes."""
    value, _ = _peek(path, services=False)
    out: dict[str, Any] = {}
    for part in (value, *_included(value, path.parent)) if value is not None else ():
        svcs = part.get("services")
        for n, svc in svcs.items() if isinstance(svcs, dict) else ():
            out.setdefault(str(n), svc)
    return out


def _top(g: _Fragment) -> str:
    """How far up a fragment's base may be: the top of its git work tree; outside git, any
    folder up (what a base must define keeps a stranger's compose file out)."""
    root = os.path.realpath(g.root if g.root is not None else g.files[0].parent)
    return root if os.path.lexists(os.path.join(root, ".git")) else os.sep


def _bases_up(g: _Fragment, folder: Path) -> Iterator[Path]:
    """The base files (the one Compose reads in each folder) from `folder` up to the fragment's
    root, its own files left out, nearest first."""
    top = _top(g)
    while True:
        base = next((folder / n for n in BASE_NAMES if (folder / n).is_file()), None)
        if base is not None and base not in g.files:
            yield base
        here = os.path.realpath(folder)
        if here == top or not here.startswith(top.rstrip(os.sep) + os.sep) or os.path.dirname(here) == here:
            return
        folder = Path(os.path.normpath(folder / os.pardir))


def _base_up(g: _Fragment) -> Path | None:
    """The base file a fragment overrides: in the nearest folder, from the fragment's own up to
    its root, whose base file defines every service the fragment re-declares, with an image,
    build or extends."""
    for base in _bases_up(g, g.files[0].parent):
        defined = _defined(base)
        if all(_runnable(defined.get(n)) for n in g.partial):
            return base
    return None


def _fragment_note(g: _Fragment, path: Path) -> str:
    """Why a fragment is left alone, and a chain that runs it: the nearest base file up that
    defines some of its services, then files beside it that define the others (each after its
    own base, where it is a fragment too)."""
    names = ", ".join(repr(n) for n in g.partial[:3]) + (", ..." if len(g.partial) > 3 else "")
    them = "it" if len(g.partial) == 1 else "them"
    said = f"service {names} has" if len(g.partial) == 1 else f"services {names} have"
    left = set(g.partial)
    chain: list[Path] = []
    for base in _bases_up(g, path.parent):  # the nearest base that defines some of them
        got = {n for n, svc in _defined(base).items() if n in left and _runnable(svc)}
        if got:
            chain, left = [base], left - got
            break
    for other in _listing(path.parent):
        if not left:
            break
        if other in g.files or other in chain:
            continue
        got = {n for n, svc in _defined(other).items() if n in left and _runnable(svc)}
        if not got:
            continue
        partial = _partial(other)
        up = _base_up(_Fragment((other,), partial, None, g.root)) if partial else None
        if partial and up is None:
            continue
        if up is not None and up not in chain:
            chain.insert(0, up)
        chain.append(other)
        left -= got
    if left or not chain:
        args = f"-f <the files that define {them}> -f {path.name}"
    else:
        run = chain[0].parent
        args = " ".join(f"-f {os.path.relpath(f, run)}" for f in (*chain, path))
    all_ = "it" if len(g.partial) == 1 else "them all"
    return (f"left alone: {said} no image, build or extends, and no base file from its folder up defines {all_}: "
            f"it runs only after the files that do (`docker compose {args}`); name such a chain in COMPOSE_FILE "
            "to have it read so")


def _reached(stack: Stack, cache: dict[Path, list[Ref]] | None = None) -> set[Path]:
    """The files a stack's compose files include or extend from, transitively (`cache`: what
    each file names, shared by the callers that walk several stacks)."""
    cache = {} if cache is None else cache
    mine: set[Path] = set()
    todo = [(p, stack.folder) for p in stack.compose]
    while todo:
        path, folder = todo.pop()
        for ref in _named_by(path, folder, cache):
            for f in ref.paths:
                if f not in mine:
                    mine.add(f)
                    todo.append((f, ref.project_dir))
    return mine


def _listing(folder: Path) -> list[Path]:
    """The files of `folder` a search would find there."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return sorted((folder / n for n in names if is_compose_name(n) or is_compose_like(n) and (folder / n).is_file()),
                  key=_order)


_MAY_REFER = lazyre.compile(r"^include\s*:|[\s{,]file\s*:", re.MULTILINE)


def _named_by(path: Path, folder: Path, cache: dict[Path, list[Ref]]) -> list[Ref]:
    """The references a compose file makes. Only a file whose text may hold one is parsed."""
    if path not in cache:
        cache[path] = []
        from e2i_fix import source

        try:
            s = source.read(path)
            if _MAY_REFER.search(s.text) and ("include" in s.text or "extends" in s.text):
                cache[path] = references(yamldoc.to_value(yamldoc.parse(s)), folder)
        except InputError:
            pass  # the engine reports it when it reads the stack
    return cache[path]


def _claim(found: list[Discovered]) -> list[Discovered]:
    cache: dict[Path, list[Ref]] = {}
    owner: dict[Path, int] = {}
    claims: list[set[Path]] = []
    for n, item in enumerate(found):
        mine = _reached(item, cache) if isinstance(item, Stack) else set()
        for f in sorted(mine):
            owner.setdefault(f, n)
        claims.append(mine)
    if not owner:
        return found
    out: list[Discovered] = []
    for n, item in enumerate(found):
        if isinstance(item, Skipped):
            if item.path not in owner:
                out.append(item)  # a file another includes is no file left alone
            continue
        if not isinstance(item, Stack):
            out.append(item)
            continue
        for f in claims[n]:
            if owner[f] != n:
                item.context.add(f)  # another stack edits it; this one only reads it
        base, rest = item.compose[0], item.compose[1:]
        kept = [f for f in rest if f not in claims[n] and owner.get(f, n) == n]
        if owner.get(base, n) != n:
            # claimed by a stack that includes it
            out += [Stack(item.folder, [f], item.context, item.boundary) for f in kept if f not in item.chain]
        else:
            item.compose = [base, *kept]
            item.chain = [f for f in item.chain if f in item.compose]
            out.append(item)
    return out


def _order(p: Path) -> tuple[int, str]:
    name = p.name
    if name in BASE_NAMES:
        return (BASE_NAMES.index(name), name)
    if ".override." in name:
        return (10, name)
    return (20, name)


def _walk(root: Path) -> Iterator[Stack | Skipped | _Fragment]:
    folders: list[tuple[str, list[Path]]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        # A folder named like a compose file is what Compose would try to read there: report it
        # (reading it says "is a folder") and still search it.
        found = sorted((Path(dirpath) / f for f in (*filenames, *dirnames) if is_compose_name(f)), key=_order)
        found += [Path(dirpath) / f for f in sorted(filenames) if is_compose_like(f)]
        if found:
            folders.append((dirpath, found))
    folders = _one_name_each(folders)
    ignored = git_ignored(root, [f for _, found in folders for f in found])
    for dirpath, found in folders:
        # A file git ignores is no file of the repository: a local override, or one a setup
        # script writes (and would write again). Named on the command line, it is read.
        found = [f for f in found if f not in ignored]
        made = [(f, why) for f in found if (why := generated(f)) is not None]
        for f, why in made:
            yield Skipped(f, f"left alone: {why}: fix what it is made from (name it on the command line to fix it "
                             "anyway)")
        found = [f for f in found if all(f != g for g, _ in made)]
        if found:
            yield from _group(Path(dirpath), found)


def _one_name_each(folders: list[tuple[str, list[Path]]]) -> list[tuple[str, list[Path]]]:
    """The files found, without the symlinks to another of them (`compose.yaml ->
    docker-compose_mysql.yaml`, `compose.yml -> tools/compose/simple.yml`): one file read and
    fixed once, under the name a diff can patch. A folder with override files keeps its base
    link, which they override."""
    links = [f for _, found in folders for f in found if os.path.islink(f)]
    if not links:
        return folders
    real = {os.path.realpath(f) for _, found in folders for f in found if not os.path.islink(f)}
    out = []
    for dirpath, found in folders:
        if not any(_OVERRIDE.fullmatch(f.name) for f in found):
            found = [f for f in found if not (os.path.islink(f) and os.path.realpath(f) in real)]
        if found:
            out.append((dirpath, found))
    return out


def git_ignored(root: Path, paths: list[Path]) -> set[Path]:
    """The files of `paths` that the git work tree holding `root` ignores and does not track
    (`git check-ignore`); none outside git, where git cannot say, or where `root` itself is
    ignored (a folder named on the command line is searched whatever git says of it)."""
    top = boundary_of(root)
    if not paths or not os.path.lexists(top / ".git"):
        return set()
    by_abs = {os.path.abspath(p): p for p in paths}
    asked = [os.path.abspath(root), *by_abs]
    try:
        proc = subprocess.run(["git", "-C", str(top), "check-ignore", "-z", "--stdin"],
                              input=b"\0".join(os.fsencode(p) for p in asked) + b"\0",
                              capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return set()
    if proc.returncode not in (0, 1):
        return set()
    said = {os.fsdecode(p) for p in proc.stdout.split(b"\0") if p}
    if asked[0] in said:
        return set()
    return {by_abs[p] for p in said if p in by_abs}


# A header comment that says a tool writes the file: `# Code generated ... DO NOT EDIT.`,
# `# This file is generated by ...`, `# Auto-generated`. ("Do not edit this file" alone is no
# such word: projects say it of the main file they want changed through an override.)
_GENERATED = lazyre.compile(r"(?im)^[ \t]*#.*\b(auto-?generated|(?:is |was |been |code )?generated (?:by|from|with|automatically))\b")


def generated(path: Path) -> str | None:
    """Why a compose file is one a tool or workflow writes, if it is: it is in a folder named
    `generated`, or a comment in its first lines says so. A fix there would be undone by the
    next generation."""
    parts = [p.lower() for p in path.parent.parts[-3:]]
    if any(p in ("generated", "autogenerated", "auto-generated") for p in parts):
        return f"it is in a folder of generated files ({path.parent.name}/)"
    head = fileroles.read_head(path)
    if head is None:
        return None
    m = _GENERATED.search("\n".join(head.splitlines()[:10]))
    return f"its header says it is generated (`{m.group(0).strip()[:60]}`)" if m else None


def _group(folder: Path, files: list[Path]) -> Iterator[Stack | Skipped | _Fragment]:
    """The stacks of one folder: its base with the override files beside it (and the files the
    `.env` chain names), the compose-like files by what they hold, the other base files. Files
    whose services cannot run alone are `_Fragment`s, which `_settle` places."""
    bases = [f for f in files if f.name in BASE_NAMES]
    overrides = [f for f in files if _OVERRIDE.fullmatch(f.name)]
    like = [f for f in files if is_compose_like(f.name)]
    others = [f for f in files if f not in bases and f not in overrides and f not in like]
    chain = compose_file_chain(folder)
    alone: list[Path] = []
    for f in like:
        if f in chain:
            continue  # the chain says what it is
        value, why = _peek(f)
        refused = refused_keys(value) if value is not None and why is None else None
        if refused is not None:
            yield Skipped(f, f"left alone: Compose refuses it ({refused}): it is no Compose file", refused=True)
            continue
        if value is not None and why is None:
            why = runs_alone(value, folder)
            if why is None:
                alone.append(f)  # a stack of its own
                continue
            base_value = _peek(bases[0])[0] if bases else None
            if base_value is not None and _overrides(value, base_value):
                overrides.append(f)
                continue
            partial = partial_services(value)
            if partial:
                yield _Fragment((f,), partial)
                continue
            why = f"{why}, and it overrides no service of {bases[0].name}" if bases else f"{why}, and no base file is beside it"
        yield Skipped(f, f"left alone: {why} (name it on the command line, or in COMPOSE_FILE, to fix it)")
    if not bases and chain:
        bases = [chain[0]]
    if bases:
        extra = [f for f in chain if f not in bases[:1] and f not in overrides]
        group = [bases[0], *overrides, *extra]
        # A base whose services the files beside it do not make runnable is itself a fragment
        # (zulip's `ci/<x>/compose.yaml`, chained after the top-level one). A chain says how
        # the folder runs: it is taken as it is.
        partial = () if chain else _partial(bases[0], group[1:])
        if partial:
            yield _Fragment(tuple(group), partial)
        else:
            yield Stack(folder, group, chain=chain)
        # Compose reads only one base file; any other is a stack of its own.
        for other in bases[1:]:
            if other not in chain:
                partial = _partial(other)
                yield _Fragment((other,), partial) if partial else Stack(folder, [other])
    else:
        for f in overrides:
            partial = _partial(f)
            yield _Fragment((f,), partial) if partial else Stack(folder, [f])
    for f in [*alone, *others]:
        yield Stack(folder, [f])


def _peek(path: Path, services: bool = True) -> tuple[dict[str, Any] | None, str | None]:
    """A compose-like file's plain value, or why it is none (with `services`: one that defines
    none is none)."""
    from e2i_fix import source

    try:
        value = yamldoc.to_value(yamldoc.parse(source.read(path)))
    except (InputError, yamldoc.MultiDocument):
        return None, "it cannot be read as one YAML document"
    if not isinstance(value, dict):
        return None, "it is no Compose file"
    if services and (not isinstance(value.get("services"), dict) or not value["services"]):
        return None, "it defines no services"
    return value, None


def _overrides(value: dict[str, Any], base: dict[str, Any]) -> bool:
    """Whether `value` reads as an override of `base`: it names some of the base's services,
    and any other service it defines can run."""
    svcs, known = value.get("services"), base.get("services")
    if not isinstance(svcs, dict) or not isinstance(known, dict):
        return False
    if not any(name in known for name in svcs):
        return False
    return all(name in known or _runnable(svc) for name, svc in svcs.items())


def refused_keys(value: dict[str, Any]) -> str | None:
    """What Compose refuses in the structure of a file it is given (`-f FILE`: compose-go checks
    each file against the compose-spec schema before merging it): a top-level key or a key of a
    service the schema does not allow (Rancher 1.x's `rancher-compose.yml` gives services
    `start_on_create`, `health_check`, `upgrade_strategy`). Only keys count: a value's type may
    hold a variable that interpolation resolves. None when every key is one Compose knows."""
    from e2i_fix import schema

    svcs = value.get("services")
    judged: dict[str, Any] = {k: v for k, v in value.items() if k != "services"}
    if isinstance(svcs, dict):
        # Each service alone, and only its keys: a value is judged by a later check.
        judged["services"] = {n: dict.fromkeys(svc, None) for n, svc in svcs.items() if isinstance(svc, dict)}
    for err in schema.validate(judged):
        if err.message.startswith("additional property ") and (
                err.path == () or len(err.path) == 2 and err.path[0] == "services"):
            return str(err)
    return None


def _runnable(svc: Any) -> bool:
    return isinstance(svc, dict) and any(svc.get(k) is not None for k in ("image", "build", "extends"))


def runs_alone(value: dict[str, Any], folder: Path) -> str | None:
    """None when Compose can run the file on its own (`docker compose -f FILE up`), else why
    not: a service with no image, build or extends, or a network, volume, secret, config or
    service it names that the file does not define."""
    svcs = value.get("services")
    if not isinstance(svcs, dict) or not svcs:
        return "it defines no services"
    tops: dict[str, set[str]] = {k: set() for k in ("services", "networks", "volumes", "secrets", "configs")}
    for part in (value, *_included(value, folder)):
        for k, names in tops.items():
            got = part.get(k)
            names.update(got if isinstance(got, dict) else ())
    for name, svc in svcs.items():
        if not isinstance(svc, dict):
            continue  # `web: !reset null`, or an empty entry: only an override has those
        if not _runnable(svc):
            return f"service {name!r} has no image, build or extends"
        ext = svc.get("extends")
        if isinstance(ext, dict) and isinstance(ext.get("file"), str):
            if "$" not in ext["file"] and not (folder / ext["file"]).is_file():
                return f"service {name!r} extends from {ext['file']}, which does not exist"
        elif isinstance(ext, (dict, str)):
            parent = ext.get("service") if isinstance(ext, dict) else ext
            if parent not in tops["services"]:
                return f"service {name!r} extends {parent!r}, which the file does not define"
        nets = svc.get("networks")
        for net in (nets if isinstance(nets, (list, dict)) else ()):
            if net != "default" and net not in tops.get("networks", ()) and "$" not in str(net):
                return f"service {name!r} uses network {net!r}, which the file does not define"
        deps = svc.get("depends_on")
        for dep in (deps if isinstance(deps, (list, dict)) else ()):
            if dep not in tops["services"] and "$" not in str(dep):  # `required: false` too: Compose refuses it
                return f"service {name!r} depends on {dep!r}, which the file does not define"
        for key in ("secrets", "configs"):
            items = svc.get(key)
            for item in (items if isinstance(items, list) else ()):
                ref = item.get("source") if isinstance(item, dict) else item
                if isinstance(ref, str) and ref not in tops.get(key, ()) and "$" not in ref:
                    return f"service {name!r} uses {key[:-1]} {ref!r}, which the file does not define"
        vols = svc.get("volumes")
        for v in (vols if isinstance(vols, list) else ()):
            src = v.get("source") if isinstance(v, dict) and v.get("type", "volume") == "volume" else (
                model.split_outside_vars(v)[0] if isinstance(v, str) and ":" in v else None)
            if (isinstance(src, str) and src and not src.startswith((".", "/", "~", "$"))
                    and src not in tops.get("volumes", ()) and not (len(src) > 1 and src[1] == ":")):
                return f"service {name!r} mounts volume {src!r}, which the file does not define"
    return None


def _included(value: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """The plain values of the files `value` includes, transitively (unreadable ones left
    out): what they define, the including file may use."""
    out: list[dict[str, Any]] = []
    todo, seen = [(value, folder)], set()
    while todo:
        v, where = todo.pop()
        for ref in references(v, where):
            for path in ref.paths if ref.kind == "include" else ():
                if path in seen:
                    continue
                seen.add(path)
                got, _ = _peek(path, services=False)
                if got is not None:
                    out.append(got)
                    todo.append((got, ref.project_dir))
    return out


def compose_file_chain(folder: Path) -> list[Path]:
    """The files `.env`'s `COMPOSE_FILE` names (split at `COMPOSE_PATH_SEPARATOR`, `:` by
    default), relative to `folder`; [] when there is none, or it names a file that is missing
    or comes from a variable."""
    env = folder / ".env"
    if not env.is_file():
        return []
    from e2i_fix import source

    try:
        values = parse_env(source.read(env).text)
    except InputError:
        return []
    spec = values.get("COMPOSE_FILE")
    if not spec or "$" in spec:
        return []
    sep = values.get("COMPOSE_PATH_SEPARATOR") or ":"
    files = [Path(os.path.normpath(folder / f.strip())) for f in spec.split(sep) if f.strip()]
    if not files or not all(f.is_file() for f in files):
        return []
    return list(dict.fromkeys(files))


# --- the index ------------------------------------------------------------------------------


class ServiceDef:
    """One definition of a service in one compose file."""

    __slots__ = ("doc", "key", "node", "_tags")

    def __init__(self, doc: ComposeDoc, key: ScalarNode, node: Node) -> None:
        self.doc = doc
        self.key = key
        self.node = node
        self._tags: dict[tuple[str | int, ...], str] | None = None

    @property
    def editable(self) -> bool:
        return (
            not self.doc.readonly
            and isinstance(self.node, MappingNode)
            and not self.node.flow_style
            and self.node.start_mark.index > self.key.start_mark.index  # not an alias
        )

    def get(self, key: str) -> tuple[ScalarNode, Node] | None:
        return self.doc.get(self.node, key)

    @property
    def tags(self) -> dict[tuple[str | int, ...], str]:
        """The `!reset` / `!override` tags written in this definition, by path inside the
        service (`()` is the service itself: `backup: !reset null`)."""
        if not self.doc.tags:
            return {}
        if self._tags is None:
            name = self.key.value
            self._tags = {p[2:]: t for p, t in self.doc.tags if len(p) >= 2 and p[0] == "services" and p[1] == name}
        return self._tags


class Build:
    def __init__(self, context: Path | None, dockerfile: Path | None, target: str | None) -> None:
        self.context = context  # None: a remote (git, URL) context
        self.dockerfile = dockerfile  # None: dockerfile_inline or remote
        self.target = target
        self.doc: DockerfileDoc | None = None  # None when missing or unreadable

    @property
    def stage(self) -> Stage | None:
        return self.doc.stage(self.target) if self.doc else None


class Service:
    def __init__(self, name: str, defs: list[ServiceDef], config: dict[str, Any]) -> None:
        self.name = name
        self.defs = defs
        self.config = config  # merged across files, extends followed, normalised
        self.build: Build | None = None
        self.project: Project | None = None  # the index that holds it: what its variants are

    def __repr__(self) -> str:
        return f"Service({self.name!r})"

    # `home` and `reset` are worked out once: an index's services do not change once built.
    @cached_property
    def home(self) -> ServiceDef | None:
        """Where new keys go: the first editable definition (the base file's), or the one that
        replaces the service as a whole (`web: !override {...}`). None for a `!reset` service."""
        if self.reset is not None:
            return None
        start = 0
        for i, d in enumerate(self.defs):
            if d.tags.get(()) == yamldoc.OVERRIDE:
                start = i
        return next((d for d in self.defs[start:] if d.editable), None)

    @cached_property
    def reset(self) -> ServiceDef | None:
        """The definition that drops the service (`backup: !reset null`), where every variant
        that defines the service drops it: such a service is nobody's to fix (`targets` leaves it
        out). One that the base alone still runs is fixed there."""
        resets = [d for d in self.defs if d.tags.get(()) == yamldoc.RESET]
        if not resets:
            return None
        first = next((d for d in self.defs if d not in resets), None)
        return resets[-1] if first is None or self._lost(first, resets) else None

    def shadows(self, d: ServiceDef, *path: str) -> ServiceDef | None:
        """A later definition that `!reset`s or `!override`s `path` (or what holds it) in every
        variant that reads `d`: an edit of `path` in `d` would be lost wherever it applies. Where
        some variant reads `d` without it (the base run alone, with an override that
        `!override`s the key), the edit still counts there, and this is None."""
        others = [o for o in self.defs if o is not d and o.tags
                  and any(o.tags.get(tuple(path[:i])) for i in range(len(path) + 1))]
        if not others:
            return None
        return others[-1] if self._lost(d, others) else None

    def _lost(self, d: ServiceDef, later: list[ServiceDef]) -> bool:
        """Whether one of `later` comes after `d` in every variant that reads `d`."""
        p = self.project
        if p is None:  # an index without variants: files in order
            return any(self.defs.index(o) > self.defs.index(d) for o in later if o in self.defs and d in self.defs)
        return all(any(p.after(o.doc, d.doc, v) for o in later) for v in p.reaching(d.doc))

    @property
    def image(self) -> str | None:
        img = self.config.get("image")
        return img if isinstance(img, str) else None

    @property
    def profiles(self) -> tuple[str, ...]:
        """The profiles that enable the service; () when it always runs."""
        p = self.config.get("profiles")
        return tuple(str(x) for x in p) if isinstance(p, list) else ()

    def runs_with(self, profiles: Iterable[str]) -> bool:
        """Whether the service runs when `profiles` are enabled (`*` enables every one)."""
        mine = self.profiles
        if not mine:
            return True
        wanted = set(profiles)
        return "*" in wanted or not wanted.isdisjoint(mine)

    @property
    def has_healthcheck(self) -> bool:
        hc = self.config.get("healthcheck")
        if isinstance(hc, dict):
            if hc.get("disable") is True:
                return False
            test = hc.get("test")
            if test is not None:
                return not (test == ["NONE"] or test == "NONE")
        return bool(self.build and self.build.stage and self.build.stage.healthcheck)


class Ref(NamedTuple):
    """Files one compose file makes Compose read: an `include:` entry (its files merged as one
    project, relative paths resolved against `project_dir`) or the file an `extends` names."""

    kind: str  # "include" or "extends"
    paths: tuple[Path, ...]
    project_dir: Path


def references(value: Any, folder: Path) -> list[Ref]:
    """The `include:` entries and `extends.file`s of a compose file's plain value, resolved
    against `folder` (the directory its relative paths are relative to). Paths that come from
    a variable are left out: only Compose knows them."""
    out: list[Ref] = []
    inc = value.get("include") if isinstance(value, dict) else None
    for item in inc if isinstance(inc, list) else []:
        paths = item.get("path") if isinstance(item, dict) else item
        names = [paths] if isinstance(paths, str) else paths if isinstance(paths, list) else []
        if not names or not all(isinstance(n, str) and n and "$" not in n for n in names):
            continue
        files = tuple(Path(os.path.normpath(folder / n)) for n in names)
        pdir = item.get("project_directory") if isinstance(item, dict) else None
        where = Path(os.path.normpath(folder / pdir)) if isinstance(pdir, str) and "$" not in pdir else files[0].parent
        out.append(Ref("include", files, where))
    svcs = value.get("services") if isinstance(value, dict) else None
    for svc in svcs.values() if isinstance(svcs, dict) else ():
        ext = svc.get("extends") if isinstance(svc, dict) else None
        f = ext.get("file") if isinstance(ext, dict) else None
        if isinstance(f, str) and f and "$" not in f:
            path = Path(os.path.normpath(folder / f))
            if all(r.paths != (path,) or r.kind != "extends" for r in out):
                out.append(Ref("extends", (path,), path.parent))
    return out


def _rebase(cfg: dict[str, Any], rel: str) -> dict[str, Any]:
    """A service's relative paths (build context, env files, bind mounts) moved from the
    directory its file is relative to onto the stack's, as Compose sees an included or extended
    service from the including project (`config --no-path-resolution` prints them so)."""
    out = dict(cfg)

    def move(p: Any) -> Any:
        if not isinstance(p, str) or not p or "$" in p or "://" in p or p.startswith(("/", "~", "git@", "github.com/")):
            return p
        return posixpath.normpath(posixpath.join(rel, p))  # cleaned, as Compose prints it

    b = out.get("build")
    if isinstance(b, str):
        out["build"] = move(b)
    elif isinstance(b, dict):
        out["build"] = {**b, "context": move(b.get("context") or ".")}
    ef = out.get("env_file")
    if isinstance(ef, (str, list)):
        out["env_file"] = [{**e, "path": move(e.get("path"))} if isinstance(e, dict) else move(e)
                           for e in (ef if isinstance(ef, list) else [ef])]
    vols = out.get("volumes")
    if isinstance(vols, list):
        moved: list[Any] = []
        for v in vols:
            if isinstance(v, str) and v.startswith(".") and ":" in v:
                # Compose reads it as a long-form bind, then moves its source: so does the index
                # (the short form would lose the `./` that makes it a bind).
                long = model.long_volume(v)
                moved.append({**long, "source": move(long.get("source"))} if isinstance(long, dict) else v)
            elif isinstance(v, dict) and v.get("type") == "bind":
                moved.append({**v, "source": move(v.get("source"))})
            else:
                moved.append(v)
        out["volumes"] = moved
    return out


class Variant(tuple[int, ...]):
    """One way the stack is run: the compose files Compose is given, in order (indexes into
    `Project.docs`; the files they include come with them). It is the tuple of those indexes,
    so `Project.model(v)` and everything that only wants the files take it as it is.

    `kind`: "base" (the base alone), "override" (the base with one override file), "alone" (a
    file that runs on its own, `docker compose -f docker-compose.dev.yml up`) or "chain" (the
    files `.env`'s `COMPOSE_FILE` names). `role`: the role of its last file (`fileroles`).
    `likely`: whether the files say users run it so; False for the base with an override file
    that also runs alone (a `docker-compose.dev.yml` may be either). A fix must hold in every
    variant; a report that something is broken needs a likely one."""

    kind: str
    role: str
    likely: bool

    def __new__(cls, files: Iterable[int], kind: str = "base", role: str = "production", likely: bool = True) -> Variant:
        self = super().__new__(cls, files)
        self.kind = kind
        self.role = role
        self.likely = likely
        return self

    @property
    def files(self) -> tuple[int, ...]:
        return tuple(self)


class Project:
    """Read-only index of one stack at one moment. Passes query it; nothing mutates it."""

    def __init__(self, stack: Stack, docs: list[ComposeDoc], dockerfiles: dict[Path, dockerfile.DockerfileDoc | None],
                 env: dict[str, str], roles: list[str] | None = None,
                 refs: dict[int, list[tuple[Ref, tuple[int, ...]]]] | None = None,
                 plan: list[tuple[tuple[int, ...], str, bool]] | None = None,
                 role_globs: Sequence[tuple[Path, str, str]] = ()) -> None:
        self.stack = stack
        self.docs = docs  # base first, then the override files, then the files they reference
        self.dockerfiles = dockerfiles
        self.env = env
        # What each file is to the stack: "base", "override", "include" (its services are the
        # stack's) or "extends" (read only for the services that extend from it).
        self.roles = roles if roles is not None else ["base", *["override"] * (len(docs) - 1)]
        # For each file, the references it makes, with the indexes of the files they load.
        self.refs = refs or {}
        # The variants as (files, kind, likely), worked out once per run from the files as read
        # (`plan_variants`): a fix must not change which variants there are.
        self.plan = plan
        self.role_globs = role_globs  # the configuration's [roles]: (folder, glob, role)
        self._models: dict[tuple[int, ...], dict[str, Any]] = {}
        # Files an earlier round of this run created (a `.dockerignore`...): they exist now.
        self.created: frozenset[Path] = frozenset()
        # What unsafe fixes of earlier rounds of this run changed (model paths): a fix that
        # builds on one (a wait for a health check an unsafe fix added) is unsafe too.
        self.unsafe_changes: frozenset[tuple[str, ...]] = frozenset()
        self._expanded: dict[tuple[int, Path], dict[str, Any]] = {}
        # The run's settings (set by the engine): which passes' fixes this run applies, for the
        # decisions passes share (`facts.decisions`). None for an index built outside a run.
        self.settings: Any = None

    def variants(self) -> list[Variant]:
        """The ways the stack is run (`Variant`): the base alone; the base with each override
        file; each override file that runs alone, on its own; the `.env` chain. Included files
        belong to whichever file includes them. The one list of variants: verification, the
        passes and the facts read it."""
        got: list[Variant] | None = self.__dict__.get("_variants")
        if got is None:
            plan = self.plan if self.plan is not None else plan_variants(self)
            got = self.__dict__["_variants"] = [
                Variant(files, kind, self.file_role(files[-1]).name, likely) for files, kind, likely in plan]
        return got

    def reaching(self, doc: ComposeDoc) -> list[Variant]:
        """The variants that read `doc` (one of their files, or a file they include): those an
        edit of `doc` changes. A decision about such an edit asks these, not a variant that
        never loads the file."""
        i = next((k for k, d in enumerate(self.docs) if d is doc), None)
        if i is None:
            return []
        return [v for v in self.variants() if i in self.members(v)]

    def after(self, later: ComposeDoc, doc: ComposeDoc, files: tuple[int, ...]) -> bool:
        """Whether variant `files` reads `later` after `doc` (an included file is read where
        its includer is)."""
        where: dict[int, int] = {}
        for k, f in enumerate(files):
            for m in self.members((f,)):
                where.setdefault(m, k)
        pos = {id(self.docs[m]): k for m, k in where.items()}
        a, b = pos.get(id(later)), pos.get(id(doc))
        return a is not None and b is not None and a > b

    def members(self, files: tuple[int, ...]) -> frozenset[int]:
        """`files` and the files they include, transitively (not those read for `extends`,
        whose services are templates)."""
        cache: dict[tuple[int, ...], frozenset[int]] = self.__dict__.setdefault("_members", {})
        got = cache.get(tuple(files))
        if got is None:
            seen = set(files)
            todo = list(files)
            while todo:
                for ref, idx in self.refs.get(todo.pop(), ()):
                    for j in idx if ref.kind == "include" else ():
                        if j not in seen:
                            seen.add(j)
                            todo.append(j)
            got = cache[tuple(files)] = frozenset(seen)
        return got

    def variant_name(self, files: tuple[int, ...]) -> str:
        """`docker-compose.yml + docker-compose.dev.yml`: the files, as a user would name them."""
        return " + ".join(os.path.relpath(self.docs[i].path, self.folder) for i in files)

    @property
    def widest(self) -> tuple[int, ...]:
        """The base with every override file: what `Service.config` is merged from."""
        return (0, *(i for i, r in enumerate(self.roles) if r == "override"))

    def file_role(self, i: int) -> fileroles.Role:
        """What `docs[i]` is for (`fileroles`): production, development, test, maintenance or
        example. An included file, or one read for `extends`, has its includer's role unless the
        configuration, its own name or its folders say otherwise."""
        cache: dict[int, fileroles.Role] = self.__dict__.setdefault("_file_roles", {})
        got = cache.get(i)
        if got is None:
            doc = self.docs[i]
            root = self.stack.boundary if self.stack.boundary is not None else boundary_of(self.folder)
            said = fileroles.said_of(doc.path, doc.value, self.role_globs, root) or fileroles.header_role(doc.text)
            parent = self._referrer(i) if said is None else None
            if said is not None:
                got = said
            elif parent is not None:
                up = self.file_role(parent)
                got = up._replace(why=f"{os.path.relpath(self.docs[parent].path, self.folder)} reads it, and {up.why}")
            else:
                got = fileroles.by_content(doc.value) or self._readme_role(Path(str(doc.path)).parent) or \
                    fileroles.Role(fileroles.PRODUCTION, "the default")
            cache[i] = got
        return got

    def _readme_role(self, folder: Path) -> fileroles.Role | None:
        """The role the README of `folder` gives its compose files (`fileroles.readme_role`)."""
        from e2i_fix import facts

        for readme, _, text in facts.side_files(self, folder):
            if readme.name.upper().startswith("README"):
                got = fileroles.readme_role(readme.name, text)
                if got is not None:
                    return got
        return None

    def _reader(self, i: int) -> int:
        """The base or override file that makes Compose read `docs[i]`: itself, or the file
        that includes it (transitively)."""
        seen = {i}
        while self.roles[i] not in ("base", "override"):
            up = next((j for j, lst in self.refs.items() if any(r.kind == "include" and i in idx for r, idx in lst)), None)
            if up is None or up in seen:
                break
            seen.add(up)
            i = up
        return i

    def _referrer(self, i: int) -> int | None:
        for j, lst in self.refs.items():
            if j != i and any(i in idx for _, idx in lst):
                return j
        return None

    def role_of(self, path: Path) -> str | None:
        """The role of a compose file or Dockerfile of the stack (None for any other file). A
        Dockerfile has the most demanding role of the variants whose services build it."""
        cache: dict[Path, str | None] = self.__dict__.setdefault("_roles_by_path", {})
        if path in cache:
            return cache[path]
        got: str | None = None
        for i, doc in enumerate(self.docs):
            if doc.path == path:
                got = self.file_role(i).name
                break
        else:
            if path in self.dockerfiles:
                roles = set()
                for v in self.variants():
                    for name, cfg in (self.model(v).get("services") or {}).items():
                        b = resolve_build(cfg.get("build"), self.folder, self.env) if isinstance(cfg, dict) else None
                        if b is not None and b.dockerfile == path:
                            roles.add(v.role)
                            if v.role not in fileroles.SERVING:
                                roles.update(self._pulling(str(name), cfg.get("image")))
                for i, doc in enumerate(self.docs):  # a template only `extends` reaches
                    svcs = doc.value.get("services")
                    for cfg in svcs.values() if isinstance(svcs, dict) and not roles else ():
                        b = resolve_build(cfg.get("build"), self.folder, self.env) if isinstance(cfg, dict) else None
                        if b is not None and b.dockerfile == path:
                            roles.add(self.file_role(i).name)
                got = fileroles.first(roles)
        cache[path] = got
        return got

    def _pulling(self, name: str, image: Any) -> set[str]:
        """The roles of the variants that run service `name` from `image` without building it,
        where `image` is the project's own published one (not an official image, nor one the
        image table knows): a development file that adds `build:` to such a service builds
        the image production pulls, so its Dockerfile is production's too."""
        from e2i_fix.facts import image as imagedata

        ref = imagedata.parse(image, self.env)
        if ref is None or (ref.registry is None and "/" not in ref.path) or imagedata.knowledge(ref).image is not None:
            return set()
        out = set()
        for v in self.variants():
            cfg = (self.model(v).get("services") or {}).get(name)
            if isinstance(cfg, dict) and cfg.get("build") is None and cfg.get("image") == image:
                out.add(v.role)
        return out

    def model(self, files: tuple[int, ...]) -> dict[str, Any]:
        """The normalised model of some of the stack's files (indexes into `docs`, base first),
        includes and `extends: file:` followed, computed once: the index and verification both
        ask for it. Shared: do not modify it."""
        got = self._models.get(files)
        if got is None:
            docs = [self.docs[i] for i in files]
            values = [self._expand(i, self.folder) for i in files]
            got = self._models[files] = model.normalise_stack(values, [d.tags for d in docs])
        return got

    def _expand(self, i: int, base: Path) -> dict[str, Any]:
        """File `i`'s value with what it references brought in: services extended from another
        file merged under their own keys, included files' resources added. Relative paths are
        made relative to `base`, the directory of the project that reads the file."""
        value: dict[str, Any] = self.docs[i].value
        refs = self.refs.get(i)
        if not refs:
            return value
        key = (i, base)
        got = self._expanded.get(key)
        if got is not None:
            return got
        self._expanded[key] = value  # a reference cycle reads the file as it is (Compose refuses it)
        out = dict(value)
        svcs = value.get("services")
        if isinstance(svcs, dict):
            services = dict(svcs)
            for ref, idx in refs:
                if ref.kind != "extends" or not idx:
                    continue
                rel = os.path.relpath(ref.project_dir, base)
                other = model.normalise_stack([self._expand(idx[0], ref.project_dir)]).get("services") or {}
                for name, svc in svcs.items():
                    ext = svc.get("extends") if isinstance(svc, dict) else None
                    if not (isinstance(ext, dict) and isinstance(ext.get("file"), str)
                            and Path(os.path.normpath(base / ext["file"])) == ref.paths[0]):
                        continue
                    parent = other.get(ext.get("service"))
                    if isinstance(parent, dict):
                        own = {k: v for k, v in svc.items() if k != "extends"}
                        parent = _rebase({k: v for k, v in parent.items() if k != "extends"}, rel)
                        tagged = [p[2:] for p, _ in self.docs[i].tags if len(p) > 2 and p[:2] == ("services", name)]
                        services[name] = model.extend(parent, own, tagged)
            out["services"] = services
        for ref, idx in refs:
            if ref.kind != "include" or not idx:
                continue
            rel = os.path.relpath(ref.project_dir, base)
            imported = model.normalise_stack([self._expand(j, ref.project_dir) for j in idx],
                                             [self.docs[j].tags for j in idx])
            for section, items in imported.items():
                if not isinstance(items, dict) or section not in ("services", "networks", "volumes", "secrets", "configs"):
                    continue
                mine = out.get(section)
                merged = dict(mine) if isinstance(mine, dict) else {}
                for name, item in items.items():
                    # Compose refuses a name both files define differently: the importer's wins here.
                    merged.setdefault(name, _rebase(item, rel) if section == "services" and isinstance(item, dict) else item)
                out[section] = merged
        self._expanded[key] = out
        return out

    def profiles(self) -> list[str]:
        """Every profile some service of the stack names, sorted."""
        return sorted({p for svc in self.services.values() for p in svc.profiles})

    @property
    def default_profiles(self) -> tuple[str, ...]:
        """The profiles Compose enables when none is named: `COMPOSE_PROFILES` in `.env`, its
        `${VAR}`s resolved from the lines before it, as Compose reads `.env` (the shell's own
        variables are not known here)."""
        if "COMPOSE_PROFILES" not in self.env:
            return ()
        resolved: dict[str, str] = {}
        for k, v in self.env.items():
            resolved[k] = interpolate(v, resolved)
        return tuple(p.strip() for p in resolved["COMPOSE_PROFILES"].split(",") if p.strip())

    def running(self, profiles: Iterable[str] | None = None) -> list[Service]:
        """The services `docker compose up` starts with `profiles` enabled (None: the stack's
        default profiles)."""
        wanted = self.default_profiles if profiles is None else tuple(profiles)
        return [s for s in self.services.values() if s.reset is None and s.runs_with(wanted)]

    def always_with(self, svc: Service, other: Service) -> bool:
        """Whether `other` runs wherever `svc` runs, whatever profiles are enabled: the test a
        pass needs before it makes `svc` wait for `other` (a default service that depends on a
        profile-only one breaks `up` without that profile)."""
        return not other.profiles or bool(svc.profiles) and set(svc.profiles) <= set(other.profiles)

    def environment(self, svc: Service) -> dict[str, str | None]:
        """The environment the service's container really gets, before interpolation: its
        `env_file` entries in order, then `environment` over them (as `docker compose config`
        inlines them). A bare `KEY` maps to None: its value comes from the shell."""
        return self.environment_of(svc.config)

    def environment_of(self, config: dict[str, Any]) -> dict[str, str | None]:
        """`environment` for a service's config in one variant."""
        out: dict[str, str | None] = {}
        for path, _ in env_file_paths(config, self.folder):
            for e in self.env_file(path) or ():
                out[e.key] = e.value
        env = config.get("environment")
        if isinstance(env, dict):
            out.update((str(k), v if v is None or isinstance(v, str) else model.as_string(v)) for k, v in env.items())
        return out

    def exists(self, path: Path) -> bool:
        """Whether `path` exists, on disk or as a file an earlier round of this run created."""
        return path in self.created or os.path.lexists(path)

    def env_file(self, path: Path) -> list[EnvEntry] | None:
        """The entries of an env file a service names (read once per index; None when it is
        missing or unreadable). Env files are read for decisions, never edited."""
        cache: dict[Path, list[EnvEntry] | None] = self.__dict__.setdefault("_env_files", {})
        if path not in cache:
            from e2i_fix import source

            try:
                cache[path] = env_entries(source.read(path).text)
            except InputError:
                cache[path] = None
        return cache[path]

    def service_env_files(self, svc: Service) -> list[tuple[Path, list[EnvEntry]]]:
        """The env files `svc` reads, in order, with their entries (missing ones left out)."""
        out = []
        for path, _ in env_file_paths(svc.config, self.folder):
            entries = self.env_file(path)
            if entries is not None:
                out.append((path, entries))
        return out

    @cached_property
    def builds(self) -> bool:
        """Whether a service in any file of the stack has a `build:` (merge keys resolved): the
        passes that read only Dockerfiles and build contexts (`NEEDS = "build"`) run only then."""
        for doc in self.docs:
            svcs = doc.value.get("services") if isinstance(doc.value, dict) else None
            if isinstance(svcs, dict) and any(isinstance(svc, dict) and "build" in svc for svc in svcs.values()):
                return True
        return False

    @cached_property
    def services(self) -> dict[str, Service]:
        out: dict[str, Service] = {}
        for doc, role in zip(self.docs, self.roles):
            if role == "extends":
                continue  # its services are templates, not the stack's
            for root in doc.roots:  # one, but for a file of several YAML documents
                svcs = doc.get(root, "services")
                if svcs is None or not isinstance(svcs[1], MappingNode):
                    continue
                for k, v in svcs[1].value:
                    if isinstance(k, ScalarNode) and k.value != "<<":
                        out.setdefault(k.value, Service(k.value, [], {})).defs.append(ServiceDef(doc, k, v))
        # Definitions in the order Compose reads them: an included file's where its includer is
        # (before the override files), so a service an included file defines has its home there.
        where = {id(d): (self._reader(i), i) for i, d in enumerate(self.docs)}
        merged = self.model(self.widest).get("services") or {}
        for name, svc in out.items():
            svc.defs.sort(key=lambda d: where[id(d.doc)])
            svc.project = self
            cfg = merged.get(name)
            svc.config = cfg if isinstance(cfg, dict) else {}
            svc.build = self._build(svc.config.get("build"))
        return out

    @cached_property
    def extends_parents(self) -> dict[str, str]:
        """Service -> the service it `extends` within the stack (an `extends` with `file:`
        names a file outside the stack and is left out)."""
        parents: dict[str, str] = {}
        for svc in self.services.values():
            for d in svc.defs:
                svcs = d.doc.value.get("services")
                raw = svcs.get(svc.name) if isinstance(svcs, dict) else None
                ext = raw.get("extends") if isinstance(raw, dict) else None
                if isinstance(ext, dict) and not ext.get("file"):
                    ext = ext.get("service")
                if isinstance(ext, str):
                    parents[svc.name] = ext
        return parents

    def with_extenders(self, names: list[str]) -> list[str]:
        """`names` and the services that extend one of them, transitively: a change to a
        service's own keys reaches them too."""
        out = list(names)
        children = self._extenders
        if not children:
            return out
        seen = set(out)
        i = 0
        while i < len(out):  # breadth-first: each service's children once, not every round
            for child in children.get(out[i], ()):
                if child not in seen:
                    seen.add(child)
                    out.append(child)
            i += 1
        return out

    @cached_property
    def _extenders(self) -> dict[str, list[str]]:
        children: dict[str, list[str]] = {}
        for child, parent in self.extends_parents.items():
            children.setdefault(parent, []).append(child)
        return children

    def sharers(self, node: Node) -> list[str]:
        """Services whose definition is `node` or merges it (`<<: *anchor`): an edit inside
        `node` changes every one of them that does not set the key itself."""
        return self._sharers.get(id(node), [])

    @cached_property
    def _sharers(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for svc in self.services.values():
            nodes = {id(d.node) for d in svc.defs}
            for d in svc.defs:
                nodes.update(id(src) for src in yamldoc.merge_sources(d.node))
            for nid in nodes:
                out.setdefault(nid, []).append(svc.name)
        return out

    @property
    def folder(self) -> Path:
        return self.stack.folder

    def _build(self, spec: Any) -> Build | None:
        build = resolve_build(spec, self.folder, self.env)
        if build is not None and build.dockerfile is not None:
            build.doc = self.dockerfiles.get(build.dockerfile)
        return build


def plan_variants(project: Project) -> list[tuple[tuple[int, ...], str, bool]]:
    """The variants of `project` as (files, kind, likely): see `Variant`."""
    docs, stack = project.docs, project.stack
    overrides = [i for i, r in enumerate(project.roles) if r == "override"]
    out: list[tuple[tuple[int, ...], str, bool]] = [((0,), "base", True)]
    alone = [i for i in overrides if _OVERRIDE.fullmatch(docs[i].path.name) and ".override." not in docs[i].path.name
             and runs_alone(docs[i].value, project.folder) is None]
    for i in overrides:
        path = docs[i].path
        if path in stack.chain and not _OVERRIDE.fullmatch(path.name):
            continue  # named by the chain only
        out.append(((0, i), "override", i not in alone))
    out += [((i,), "alone", True) for i in alone]
    where = {d.path: i for i, d in enumerate(docs)}
    chain = tuple(where[p] for p in stack.chain if p in where)
    if chain and all(chain != files for files, _, _ in out):
        out.append((chain, "chain", True))
    return out


def resolve_build(spec: Any, folder: Path, env: Mapping[str, str] | None = None) -> Build | None:
    """Where a `build:` section points: its context and Dockerfile on disk, and the stage it
    targets, where they can be known (a remote context or `dockerfile_inline` leaves them None).
    `context`, `dockerfile` and `target` are read as Compose reads them, their variables from
    `env` (the stack's `.env`) or their defaults; one with a variable that has neither stays as
    written, which names no path or stage."""
    if isinstance(spec, str):
        spec = {"context": spec}
    if not isinstance(spec, dict):
        return None

    def field(key: str) -> str | None:
        value = spec.get(key)
        if not isinstance(value, str):
            return None
        return interpolate(value, dict(env)) if "$" in value and env is not None and _has_values(value, env) else value

    ctx = field("context") or "."
    target = field("target")
    if "://" in ctx or ctx.startswith(("git@", "github.com/")) or "$" in ctx:
        return Build(None, None, target)
    context = _cleaned(folder / ctx)
    name = field("dockerfile") or "Dockerfile"
    if spec.get("dockerfile_inline") is not None or "$" in name:
        return Build(context, None, target)
    return Build(context, _cleaned(context / name), target)


def _has_values(text: str, env: Mapping[str, str]) -> bool:
    """Whether every variable in `text` has a value in `env` or a default (`${A:-x}`, `${A-x}`)."""
    for m in _VAR.finditer(text.replace("$$", "")):
        name = m.group("name") or m.group("bare")
        if name not in env and not (m.group("op") or "").lstrip(":").startswith("-"):
            return False
    return True


def _cleaned(path: Path) -> Path:
    """`path` without `a/..` detours, cleaned by name as Compose joins paths, relative paths
    from the folder the tool runs in: one Dockerfile reached by `../..` from one service and by
    `..` from another is one file, edited once and shown once."""
    if path.is_absolute():
        return Path(os.path.normpath(path))
    key = (os.getcwd(), str(path))  # pure string work, asked again for every service and round
    got = _CLEANED.get(key)
    if got is None:
        got = _CLEANED[key] = Path(os.path.relpath(os.path.abspath(path)))
    return got


_CLEANED: dict[tuple[str, str], Path] = {}


def dockerfile_paths(docs: list[ComposeDoc], folders: list[Path], env: Mapping[str, str] | None = None) -> set[Path]:
    """The Dockerfiles the compose files build from (before services are merged), each file's
    `build:` relative to its own folder (an included file's project directory), its variables
    from `env`."""
    out: set[Path] = set()
    for doc, folder in zip(docs, folders):
        svcs = doc.value.get("services")
        for svc in svcs.values() if isinstance(svcs, dict) else ():
            build = resolve_build(svc.get("build") if isinstance(svc, dict) else None, folder, env)
            if build is not None and build.dockerfile is not None:
                out.add(build.dockerfile)
    return out


class EnvEntry(NamedTuple):
    """One `KEY=value` line of an env file; `value` None for a bare `KEY`."""

    key: str
    value: str | None
    line: int  # 1-based
    col: int  # 1-based, where the key starts


def env_entries(text: str) -> list[EnvEntry]:
    """The entries of an env file (`.env`, `env_file:`), in order, with their positions."""
    out: list[EnvEntry] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        body = line.removeprefix("export ").lstrip()
        k, eq, v = body.partition("=")
        k = k.strip()
        if not k:
            continue
        value: str | None = None
        if eq:
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            value = v
        out.append(EnvEntry(k, value, n, raw.find(k) + 1))
    return out


_VAR = lazyre.compile(r"\$(?:\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}$]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(text: str, env: dict[str, str]) -> str:
    """`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`, `$VAR` and `$$` as Compose
    resolves them (an unset variable is empty; `?` forms resolve to empty too). A default may
    hold a variable: the innermost are resolved first."""
    if "$" not in text:
        return text

    def sub(m: re.Match[str]) -> str:
        name = m.group("name") or m.group("bare")
        value = env.get(name)
        op, arg = m.group("op"), m.group("arg") or ""
        if op in (":-", "-"):
            return value if value is not None and (op == "-" or value) else arg
        if op in (":+", "+"):
            return arg if value is not None and (op == "+" or value) else ""
        return value or ""

    text = text.replace("$$", "\0")  # an escaped dollar is no variable
    for _ in range(10):  # nesting deeper than this is not a real .env
        new = _VAR.sub(lambda m: sub(m).replace("$", "\0"), text)
        if new == text:
            break
        text = new
    return text.replace("\0", "$")


def parse_env(text: str) -> dict[str, str]:
    return {e.key: e.value for e in env_entries(text) if e.value is not None}


def env_file_paths(config: dict[str, Any], folder: Path) -> list[tuple[Path, bool]]:
    """The files a service's `env_file:` names (string, list, or long form with `path` and
    `required`), resolved against `folder`, each with whether Compose requires it."""
    spec = config.get("env_file")
    items = spec if isinstance(spec, list) else [] if spec is None else [spec]
    out: list[tuple[Path, bool]] = []
    for item in items:
        if isinstance(item, dict):
            path, required = item.get("path"), item.get("required", True)
        else:
            path, required = item, True
        if isinstance(path, str) and path and "$" not in path:
            out.append((folder / path, required is not False))
    return out


def parse_compose(source: Source, readonly: bool = False) -> ComposeDoc:
    """A compose file's document. One of several YAML documents is valid Compose (they merge in
    order, as override files do): it is read for what it means, its first document indexed,
    and it is never edited."""
    try:
        return ComposeDoc(source, yamldoc.parse(source), readonly)
    except yamldoc.MultiDocument as e:
        roots = yamldoc.parse_all(source)
        doc = ComposeDoc(source, roots[0], readonly=True)
        doc.roots = tuple(roots)
        docs = [ComposeDoc(source, r) for r in roots]
        doc.__dict__["value"] = model.normalise_stack([d.value for d in docs], [d.tags for d in docs])
        doc.notice = ("several YAML documents (`---`): read as Compose merges them, not edited", e.line or 0, e.col or 0)
        return doc


# --- roles ----------------------------------------------------------------------------------

_WORKER_CMD = lazyre.compile(r"\b(?:celery\b.*\bworker|rq\s+worker|dramatiq|sidekiq|arq|huey_consumer|worker)\b")
_API_CMD = lazyre.compile(r"\b(?:gunicorn|uvicorn|hypercorn|daphne|waitress-serve|node\s+\S*server\S*|manage\.py\s+runserver|flask\s+run|rails\s+s(?:erver)?|puma|fastapi\s+run)\b")
_API_NAME = lazyre.compile(r"(?:^|[-_])(?:api|backend|server)(?:$|[-_])")


def command_text(config: dict[str, Any]) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        v = config.get(key)
        if isinstance(v, list):
            parts.append(" ".join(str(x) for x in v))
        elif isinstance(v, str):
            parts.append(v)
    return " ".join(parts)


def role(service: Service) -> str | None:
    """`worker`, `api` or None, from the command first and the service name second. Passes ask
    it of every service, some more than once: it is worked out once per service."""
    known = service.__dict__
    if "_role" not in known:
        known["_role"] = _role(service)
    got: str | None = known["_role"]
    return got


def _role(service: Service) -> str | None:
    cmd = command_text(service.config)
    if _WORKER_CMD.search(cmd):
        return "worker"
    if _API_CMD.search(cmd):
        return "api"
    if "worker" in service.name.lower():
        return "worker"
    if _API_NAME.search(service.name.lower()):
        return "api"
    return None


_ONE_SHOT_NAME = lazyre.compile(r"(?:^|[-_])(?:migrat\w*|init|setup|seed|bootstrap|create-?buckets|provision\w*)(?:$|[-_])")
_ONE_SHOT_CMD = lazyre.compile(r"\b(?:migrate|alembic\s+upgrade|db\s+upgrade|upgradedb|createbuckets|db-migrate|mc\s+mb"
                               r"|migrations\s+(?:bootstrap|up|finish|run|apply))\b")
_LONG_RUNNING = lazyre.compile(
    r"\b(?:gunicorn|uvicorn|hypercorn|daphne|runserver|celery|serve|server|start|sleep\s+infinity|tail\s+-f|exec\s+\S+)\b"
)


def one_shot(config: dict[str, Any], name: str) -> bool:
    """A job that runs to completion: named or commanded like one, and not restarted forever."""
    restart = config.get("restart")
    if restart is not None and not (str(restart) == "no" or str(restart).startswith("on-failure")):
        return False
    cmd = command_text(config)
    if _LONG_RUNNING.search(cmd):
        return False
    return bool(_ONE_SHOT_NAME.search(name.lower()) or _ONE_SHOT_CMD.search(cmd))


def runs_once(service: Service) -> bool:
    """A one-shot job that is never restarted (`restart` absent or `"no"`, Docker's default:
    a migration, a seed or setup job): it runs, writes a few lines and exits, so log rotation
    and resource limits are no part of it (a limit is only a way for it to fail)."""
    restart = service.config.get("restart")
    if not (restart is None or str(restart) == "no"):
        return False
    return one_shot(service.config, service.name) or _awaited_to_complete(service) or _exits_at_once(service)


def _exits_at_once(service: Service) -> bool:
    """A data-only container: a bare distribution image (busybox, alpine, debian, ubuntu: their
    CMD is a shell, which exits at once with no terminal) run with no command, entrypoint or
    terminal, to hold volumes other services take."""
    from e2i_fix.facts import image as imagedata

    c = service.config
    if service.build is not None or any(c.get(k) for k in ("command", "entrypoint", "tty", "stdin_open")):
        return False
    image = c.get("image")
    ref = imagedata.parse(image if isinstance(image, str) else None, service.project.env if service.project else {})
    if ref is None or not ref.resolved:
        return False
    flavour = imagedata.section("flavours").get(ref.family)
    return ref.path == ref.family and isinstance(flavour, dict) and flavour.get("runtime") == []


def _awaited_to_complete(service: Service) -> bool:
    """Whether another service waits for it to exit (`condition: service_completed_successfully`):
    its authors run it once, to completion, whatever its name says (`generate-secrets`, a login
    step), so long as its command is no server."""
    project = service.project
    if project is None:
        return False
    awaited: frozenset[str] | None = project.__dict__.get("_awaited_to_complete")
    if awaited is None:  # once per index: a pass asks of every service
        awaited = project.__dict__["_awaited_to_complete"] = frozenset(
            name for other in project.services.values()
            if isinstance(deps := other.config.get("depends_on"), dict)
            for name, spec in deps.items()
            if isinstance(spec, dict) and spec.get("condition") == "service_completed_successfully")
    return service.name in awaited and not _LONG_RUNNING.search(command_text(service.config))


_IGNORE_COMMENT = lazyre.compile(r"#\s*e2i-fix:\s*ignore(?:\[([^\]]*)\])?")


def opted_out(service: Service, pass_id: str) -> bool:
    """`# e2i-fix: ignore[pass-id, ...]` (or bare `ignore`) on the service's key line."""
    for d in service.defs:
        text = d.doc.text
        said = d.doc.__dict__.get("_names_tool")
        if said is None:  # most files never name the tool: asked once per file, not per service
            said = d.doc.__dict__["_names_tool"] = "e2i-fix" in text
        if not said:
            continue
        end = text.find("\n", d.key.start_mark.index)
        m = _IGNORE_COMMENT.search(text, d.key.start_mark.index, len(text) if end < 0 else end)
        if m and (m.group(1) is None or pass_id in {x.strip() for x in m.group(1).split(",")}):
            return True
    return False


def targets(project: Project, pass_id: str, options: dict[str, Any]) -> list[Service]:
    """The services a pass may touch: not opted out in config or inline."""
    ignored = options.get("_ignored_services", set())
    return [s for s in project.services.values()
            if s.name not in ignored and s.reset is None and not opted_out(s, pass_id)]


def image_family(image: str | None) -> str | None:
    """`docker.io/library/postgres:16-alpine@sha...` -> `postgres`; `bitnami/redis` -> `redis`.
    Read by the one image reference parser (`facts.image.parse`)."""
    from e2i_fix.facts import image as imagedata

    ref = imagedata.parse(image)
    return ref.family if ref is not None else None
