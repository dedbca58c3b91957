"""What each file of a stack is for: production, development, test (and CI), maintenance, or
example.

A file's role decides which passes may edit it. Servers run production files: they get every
fix. Developers' machines and CI jobs run development and test files, and people start the
one-shot jobs of maintenance files by hand (`docker compose -f ... run backup`): they get the
fixes that make the stack start and build (health-aware start-up, health probes, build caches,
lock files, missing build files, `.dockerignore`, the syntax line), not resource limits, log
rotation or hardening, which reviewers reject as churn there. Example files are what users
copy to run the stack: they get what production gets.

The role comes from, in order:

1. the configuration: `[roles]`, a table of role = [globs] (globs as in `exclude`);
2. the file's name: a word of it (split at `.`, `-`, `_`): `devcontainer` first (development:
   a `devcontainer-example/` is a dev container's, whatever else it says); then `example`,
   `sample`, `template`, `dist` (example); `test`, `tests`, `testing`, `ci`, `e2e`,
   `integration`, `benchmark`, `benchmarks`, `cypress`, `playwright`, `selenium` (test; not
   `bench`: Frappe's `bench` runs its production sites); `dev`, `develop`, `developer`, `development`, `devenv`, `local`, `debug`
   (development); `maintenance`, `tools`, `tool`, `tooling`, `migrate`, `migration`,
   `migrations` (maintenance); `prod`, `production`, `staging` (production);
3. the compose project name (`name: documenso-development`): a word of it, as in 2;
4. the folders it is in, the nearest first, up to the top of the project (the git work tree,
   or the folder given on the command line, whose own name does not count): a word of a
   folder's name, as in 2 (`docker/development/`, `packages/e2e_tests/`, `tools/seed/`), and
   `.github/`, `.ci/`, `.devcontainer/`;
5. the comment that opens the file, in its authors' words: "made for development purposes",
   "for local development", "not for production", "do not use in production" (development),
   "for testing" (test);
6. what it holds: a service that bind-mounts a source folder and runs a reloading dev server
   (`--reload`, `nodemon`, `runserver`, `npm run dev`, `fastapi dev`...), or that
   `develop.watch`es its sources (development); every service it sets runs once (`restart:
   "no"`; services of the base it disables with an entrypoint that exits, `echo disabled`, or
   `scale: 0`, aside): one-shot jobs, a backup or an upgrade, that people `docker compose run`
   (maintenance). `restart: never` is no such file: Compose passes it on, and the engine
   refuses it (its policies are `no`, `always`, `on-failure[:n]`, `unless-stopped`);
7. production.

A Dockerfile takes the roles of the compose files whose services build it: production where a
production (or example) file builds it, else the role of the files that do. A development
file that adds `build:` to a service a production file runs from a published image of its own
(`ghcr.io/acme/shop`, not an official image such as `postgres`) builds that image: the
Dockerfile is production's.

Each pass says which roles it serves (`ROLES`, every role when it says nothing); the engine
keeps a pass's fixes out of the files of the other roles.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from e2i_fix import lazyre
from e2i_fix.records import NamedTuple

PRODUCTION = "production"
DEVELOPMENT = "development"
TEST = "test"
MAINTENANCE = "maintenance"
EXAMPLE = "example"
ROLES = (PRODUCTION, DEVELOPMENT, TEST, MAINTENANCE, EXAMPLE)
EVERY_ROLE: frozenset[str] = frozenset(ROLES)
# What passes of limits, log rotation and hardening serve: where the stack runs for real, and
# the examples users copy to run it.
SERVING: frozenset[str] = frozenset({PRODUCTION, EXAMPLE})

# The most demanding first: a file (a Dockerfile) that several roles use takes the first.
_RANK = {PRODUCTION: 0, EXAMPLE: 1, MAINTENANCE: 2, TEST: 3, DEVELOPMENT: 4}

_WORDS = (
    (DEVELOPMENT, frozenset({"devcontainer"})),  # before the example words: `devcontainer-example/`
    (EXAMPLE, frozenset({"example", "examples", "sample", "samples", "template", "dist"})),
    (TEST, frozenset({"test", "tests", "testing", "ci", "e2e", "integration", "benchmark", "benchmarks", "cypress",
                      "playwright", "selenium"})),
    (DEVELOPMENT, frozenset({"dev", "develop", "developer", "development", "devenv", "local", "debug"})),
    (MAINTENANCE, frozenset({"maintenance", "tools", "tool", "tooling", "migrate", "migration", "migrations", "upgrade",
                             "init", "backup", "restore"})),
    (PRODUCTION, frozenset({"prod", "production", "staging"})),
)
# Folders whose names say a role without a word of the list (hidden tool folders).
_FOLDERS = {".ci": TEST, ".github": TEST, ".devcontainer": DEVELOPMENT}
_SPLIT = lazyre.compile(r"[-_.]+")
_NAME_SPLIT = lazyre.compile(r"[^A-Za-z0-9]+")
_RELOAD = lazyre.compile(
    r"--reload\b|--py-autoreload\b|\bnodemon\b|manage\.py\s+runserver\b|\b(?:npm|yarn|pnpm|bun)\s+(?:run\s+)?dev\b"
    r"|\b(?:fastapi|next|nuxt|astro|vite|remix)\s+dev\b|\bflask\b.*--debug\b|--watch\b|\bwatchfiles\b"
    r"|\bvite\b(?!\s+(?:build|preview))")
# An entrypoint or command that exits at once: a service switched off in a maintenance file.
_DISABLED = lazyre.compile(r"\s*(?:/bin/|/usr/bin/)?(?:echo|true|:|exit)(?:\s.*)?", re.DOTALL)


class Role(NamedTuple):
    """A file's role, and why it has it (for `--show-config`)."""

    name: str
    why: str


def _said(words: set[str]) -> tuple[str, str] | None:
    """The role a set of words says, and the word that says it."""
    for role, names in _WORDS:
        hit = sorted(words & names)
        if hit:
            return role, hit[0]
    return None


def by_name(path: Path, root: Path | None = None) -> Role | None:
    """The role the file's name says, else the folders it is in (the nearest first, up to
    `root`, not counting `root` itself; without `root`, the folder it is in)."""
    return _by_file_name(path) or by_folders(path, root)


def _by_file_name(path: Path) -> Role | None:
    stem = path.name
    for suffix in (".yaml", ".yml"):
        stem = stem.removesuffix(suffix)
    said = _said(_words(_SPLIT.split(stem)))
    return Role(said[0], f"its name says {said[1]!r}") if said else None


def _words(parts: Iterable[str]) -> set[str]:
    """The words of a name, less those a `non` negates (`docker-compose-non-dev.yml` is no
    development file)."""
    out: set[str] = set()
    negated = False
    for w in (p.lower() for p in parts if p):
        if w == "non":
            negated = True
            continue
        if not negated:
            out.add(w)
        negated = False
    return out


def by_folders(path: Path, root: Path | None = None) -> Role | None:
    """The role the folders `path` is in say, the nearest first: a word of a folder's name, or
    a hidden tool folder (`.github`). The walk stops below `root` (the project's top, whose own
    name says nothing of its files); without `root`, only the folder the file is in counts."""
    folder = path.parent
    top = os.path.normpath(os.path.abspath(root)) if root is not None else None
    shown: list[str] = []
    while True:
        here = os.path.normpath(os.path.abspath(folder))
        if top is not None and (here == top or not here.startswith(top.rstrip(os.sep) + os.sep)):
            return None
        name = folder.name
        if not name:
            return None
        shown.insert(0, name)
        said = (_FOLDERS[name], name) if name in _FOLDERS else _said({w.lower() for w in _SPLIT.split(name) if w})
        if said:
            return Role(said[0], f"it is in {'/'.join(shown)}/")
        if top is None:
            return None
        folder = folder.parent


def by_project_name(value: dict[str, Any] | None) -> Role | None:
    """The role the compose project name says (`name: documenso-test`)."""
    name = value.get("name") if isinstance(value, dict) else None
    if not isinstance(name, str):
        return None
    said = _said({w.lower() for w in _NAME_SPLIT.split(name) if w})
    return Role(said[0], f"its project name, {name}, says {said[1]!r}") if said else None


def by_content(value: dict[str, Any]) -> Role | None:
    """Development when a service runs a reloading dev server on sources it bind-mounts, or
    watches its sources (`develop.watch`); maintenance when every service the file sets runs
    once."""
    svcs = value.get("services")
    for name, svc in (svcs.items() if isinstance(svcs, dict) else ()):
        if not isinstance(svc, dict):
            continue
        develop = svc.get("develop")
        if isinstance(develop, dict) and develop.get("watch"):
            return Role(DEVELOPMENT, f"service {name!r} watches its sources (develop.watch)")
        if _reloads(svc) and _mounts_sources(svc):
            return Role(DEVELOPMENT, f"service {name!r} runs a reloading server on its bind-mounted sources")
    return _one_shot(svcs)


def _one_shot(svcs: Any) -> Role | None:
    """Maintenance: every service the file sets is a one-shot job (`restart: "no"`) or one it
    switches off (an entrypoint or command that exits at once, `scale: 0`), and some are jobs."""
    if not isinstance(svcs, dict) or not svcs:
        return None
    jobs = []
    for name, svc in svcs.items():
        if not isinstance(svc, dict) or svc.get("restart") not in ("no", False):
            return None
        if not _switched_off(svc):
            jobs.append(str(name))
    if not jobs:
        return None
    return Role(MAINTENANCE, f"every service it sets runs once (restart: \"no\"): one-shot jobs ({', '.join(jobs)}) "
                             "started with `docker compose run`")


def _switched_off(svc: dict[str, Any]) -> bool:
    if svc.get("scale") == 0 or (isinstance(svc.get("deploy"), dict) and svc["deploy"].get("replicas") == 0):
        return True
    v = svc.get("entrypoint")
    if v is None:
        v = svc.get("command")
    text = " ".join(str(x) for x in v) if isinstance(v, list) else v if isinstance(v, str) else None
    return text is not None and bool(_DISABLED.fullmatch(text))


def _reloads(svc: dict[str, Any]) -> bool:
    parts = []
    for key in ("entrypoint", "command"):
        v = svc.get(key)
        parts.append(" ".join(str(x) for x in v) if isinstance(v, list) else v if isinstance(v, str) else "")
    return bool(_RELOAD.search(" ".join(parts)))


def _mounts_sources(svc: dict[str, Any]) -> bool:
    """A bind mount of a folder of the project (`.:/app`, `./backend/app:/app/app`), not of one
    file (`./nginx.conf:/etc/nginx/nginx.conf`)."""
    vols = svc.get("volumes")
    for v in vols if isinstance(vols, list) else ():
        src = v.get("source") if isinstance(v, dict) and v.get("type") == "bind" else (
            v.split(":", 1)[0] if isinstance(v, str) and ":" in v else None)
        if isinstance(src, str) and src.startswith("."):
            last = src.rstrip("/").rsplit("/", 1)[-1]
            if last in (".", "..") or "." not in last:
                return True
    return False


def of_file(path: Path, value: dict[str, Any] | None, globs: Sequence[tuple[Path, str, str]],
            root: Path | None = None) -> Role:
    """A compose file's role: configuration, then its name, its project name, its folders (up
    to `root`), then what it holds, then production. `globs` are the configuration's (folder
    the glob is relative to, glob, role); `value` None: what it holds is not asked."""
    got = said_of(path, value, globs, root)
    if got is not None:
        return got
    header = by_header(path)
    if header is not None:
        return header
    held = by_content(value) if value is not None else None
    if held is not None:
        return held
    return Role(PRODUCTION, "the default")


def said_of(path: Path, value: dict[str, Any] | None, globs: Sequence[tuple[Path, str, str]],
            root: Path | None = None) -> Role | None:
    """The role the configuration, the file's name, its project name or its folders give it."""
    from e2i_fix.config import matches

    for base, pattern, role in globs:
        if matches(path, base, pattern):
            return Role(role, f"the configuration's [roles] {role} = {pattern!r}")
    return _by_file_name(path) or by_project_name(value) or by_folders(path, root)


_HEADER_DEV = lazyre.compile(
    r"(?i)\b(?:made|meant|intended|designed|only)\s+for\s+(?:local\s+)?(?:development|dev)\b"
    r"|\bfor\s+(?:local\s+)?development\s+(?:only|purposes|use)\b|\bdevelopment\s+(?:only|purposes)\b"
    r"|\b(?:demo|demonstration|development|learning|testing)(?:,?\s+(?:and\s+)?(?:demo|demonstration|development|"
    r"learning|testing))*\s+purposes\b"
    r"|\bnot\s+(?:meant\s+|intended\s+|suitable\s+)?for\s+production\b"
    r"|\bdo\s+not\s+use\b[^.\n]{0,40}?\b(?:in|for)\s+production\b")
_HEADER_TEST = lazyre.compile(r"(?i)\b(?:made|meant|intended|designed|only)\s+for\s+(?:testing|tests|ci)\b"
                              r"|\bfor\s+testing\s+(?:only|purposes)\b")


def read_head(path: Path) -> str | None:
    """The first 2 KiB of a regular file, as text; None for anything else (a FIFO or a device
    would block or never end: reading it in full reports it) or a file that cannot be read."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as fh:
            return fh.read(2048).decode("utf-8", "replace")
    except OSError:
        return None


def by_header(path: Path) -> Role | None:
    """The role the comment that opens the file gives it, in its authors' words ("made for
    development purposes", "not for production", "for testing")."""
    head = read_head(path)
    return header_role(head) if head is not None else None


def header_role(text: str) -> Role | None:
    """The role the comment that opens `text` (a compose file's text) gives it."""
    lines = []
    for line in text[:2048].lstrip("\ufeff").splitlines():
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            break
        lines.append(line.lstrip()[1:].strip())
    text = " ".join(lines)
    for rx, role in ((_HEADER_TEST, TEST), (_HEADER_DEV, DEVELOPMENT)):
        m = rx.search(text)
        if m:
            return Role(role, f"its opening comment says so (`{m.group(0)}`)")
    return None


# A README that says the repository (its setup, its stack) is for development only: "this
# repository is for local development only and is not meant to be deployed in any production
# environment".
_README_DEV = lazyre.compile(
    r"(?i)\b(?:this|the)\s+(?:repository|repo|setup|stack|project|compose\s+(?:file|setup|stack)|"
    r"docker[- ]compose\s+(?:file|setup|stack)|configuration)\b[^.!\n]{0,60}?\b(?:is|are)\s+"
    r"(?:meant\s+|intended\s+|designed\s+)?(?:only\s+)?for\s+(?:local\s+)?development(?:\s+(?:only|purposes\s+only))?\b"
    r"[^.!\n]{0,80}?\bnot\b[^.!\n]{0,40}?\bproduction\b")


def readme_role(name: str, text: str) -> Role | None:
    """The role a README beside the compose files gives them: development, where it says the
    repository is for development and not for production."""
    m = _README_DEV.search(text)
    if m is None:
        return None
    line = text.count("\n", 0, m.start()) + 1
    said = " ".join(m.group(0).split())
    return Role(DEVELOPMENT, f"{name}:{line} says so (`{said[:90]}`)")


def first(roles: Iterable[str]) -> str | None:
    """The most demanding of `roles` (production first), None if there is none."""
    return min(roles, key=lambda r: _RANK.get(r, len(_RANK)), default=None)


def rel(path: Path, folder: Path) -> str:
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive
        return str(path)
