"""What each file of a stack is for: production, development, test (and CI), or example.

A file's role decides which passes may edit it. Servers run production files: they get every
fix. Developers' machines and CI jobs run development and test files: they get the fixes that
make the stack start and build (health-aware start-up, health probes, build caches, lock files,
missing build files, `.dockerignore`, the syntax line), not resource limits, log rotation or
hardening, which reviewers reject as churn there. Example files are what users copy to run the
stack: they get what production gets.

The role comes from, in order:

1. the configuration: `[roles]`, a table of role = [globs] (globs as in `exclude`);
2. the file's name: a word of it (split at `.`, `-`, `_`) or the folder it is in: `example`,
   `sample`, `template`, `dist` (example); `test`, `tests`, `testing`, `ci`, `e2e`,
   `integration` (test); `dev`, `develop`, `development`, `local`, `debug`, `devcontainer`
   (development); `prod`, `production`, `staging` (production);
3. what it holds: a service that bind-mounts a source folder and runs a reloading dev server
   (`--reload`, `nodemon`, `runserver`, `npm run dev`, `fastapi dev`...), or that
   `develop.watch`es its sources (development);
4. production.

A Dockerfile takes the roles of the compose files whose services build it: production where a
production (or example) file builds it, else the role of the files that do.

Each pass says which roles it serves (`ROLES`, every role when it says nothing); the engine
keeps a pass's fixes out of the files of the other roles.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from e2i_fix import lazyre
from e2i_fix.records import NamedTuple

PRODUCTION = "production"
DEVELOPMENT = "development"
TEST = "test"
EXAMPLE = "example"
ROLES = (PRODUCTION, DEVELOPMENT, TEST, EXAMPLE)
EVERY_ROLE: frozenset[str] = frozenset(ROLES)
# What passes of limits, log rotation and hardening serve: where the stack runs for real, and
# the examples users copy to run it.
SERVING: frozenset[str] = frozenset({PRODUCTION, EXAMPLE})

# The most demanding first: a file (a Dockerfile) that several roles use takes the first.
_RANK = {PRODUCTION: 0, EXAMPLE: 1, TEST: 2, DEVELOPMENT: 3}

_WORDS = (
    (EXAMPLE, frozenset({"example", "examples", "sample", "samples", "template", "dist"})),
    (TEST, frozenset({"test", "tests", "testing", "ci", "e2e", "integration"})),
    (DEVELOPMENT, frozenset({"dev", "develop", "development", "local", "debug", "devcontainer"})),
    (PRODUCTION, frozenset({"prod", "production", "staging"})),
)
_FOLDERS = {
    "examples": EXAMPLE, "example": EXAMPLE, "samples": EXAMPLE, "sample": EXAMPLE,
    "test": TEST, "tests": TEST, "e2e": TEST, "ci": TEST, ".ci": TEST, ".github": TEST,
    "dev": DEVELOPMENT, ".devcontainer": DEVELOPMENT,
}
_SPLIT = lazyre.compile(r"[-_.]+")
_RELOAD = lazyre.compile(
    r"--reload\b|\bnodemon\b|manage\.py\s+runserver\b|\b(?:npm|yarn|pnpm|bun)\s+(?:run\s+)?dev\b"
    r"|\b(?:fastapi|next|nuxt|astro|vite|remix)\s+dev\b|\bflask\b.*--debug\b|--watch\b|\bwatchfiles\b"
    r"|\bvite\b(?!\s+(?:build|preview))")


class Role(NamedTuple):
    """A file's role, and why it has it (for `--show-config`)."""

    name: str
    why: str


def by_name(path: Path) -> Role | None:
    """The role the file's name or its folder says, if it says one."""
    stem = path.name
    for suffix in (".yaml", ".yml"):
        stem = stem.removesuffix(suffix)
    words = {w.lower() for w in _SPLIT.split(stem) if w}
    for role, names in _WORDS:
        hit = sorted(words & names)
        if hit:
            return Role(role, f"its name says {hit[0]!r}")
    folder = path.parent.name
    if folder in _FOLDERS:
        return Role(_FOLDERS[folder], f"it is in {folder}/")
    return None


def by_content(value: dict[str, Any]) -> Role | None:
    """Development when a service runs a reloading dev server on sources it bind-mounts, or
    watches its sources (`develop.watch`)."""
    svcs = value.get("services")
    for name, svc in (svcs.items() if isinstance(svcs, dict) else ()):
        if not isinstance(svc, dict):
            continue
        develop = svc.get("develop")
        if isinstance(develop, dict) and develop.get("watch"):
            return Role(DEVELOPMENT, f"service {name!r} watches its sources (develop.watch)")
        if _reloads(svc) and _mounts_sources(svc):
            return Role(DEVELOPMENT, f"service {name!r} runs a reloading server on its bind-mounted sources")
    return None


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


def of_file(path: Path, value: dict[str, Any] | None, globs: Sequence[tuple[Path, str, str]]) -> Role:
    """A compose file's role: configuration, then name, then content, then production.
    `globs` are the configuration's (folder the glob is relative to, glob, role)."""
    from e2i_fix.config import matches

    for base, pattern, role in globs:
        if matches(path, base, pattern):
            return Role(role, f"the configuration's [roles] {role} = {pattern!r}")
    named = by_name(path)
    if named is not None:
        return named
    held = by_content(value) if value is not None else None
    if held is not None:
        return held
    return Role(PRODUCTION, "the default")


def first(roles: Iterable[str]) -> str | None:
    """The most demanding of `roles` (production first), None if there is none."""
    return min(roles, key=lambda r: _RANK.get(r, len(_RANK)), default=None)


def rel(path: Path, folder: Path) -> str:
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive
        return str(path)
