"""dockerignore: a `.dockerignore` for each build context that has none.

## What it does
Writes `<context>/.dockerignore` for every local build context of the stack that has neither
one nor a `<Dockerfile>.dockerignore` beside each Dockerfile built from it. The patterns are
chosen by what the context holds (`pyproject.toml`: Python caches and virtualenvs;
`package.json`: `node_modules`; `go.mod`, `Cargo.toml`, `pom.xml`...), plus version control,
editor and OS files, compose files and local `.env` files, and tests and docs where no COPY or
ADD takes them. The table is `e2i_fix/data/dockerignore.json`.

A pattern never excludes what a build needs: every COPY/ADD source of every Dockerfile built
from the context is matched as Docker matches `.dockerignore` patterns (`*`, `?`, `**`, a
folder's pattern covering what is inside it), and a pattern that would take a named source
away is left out; a broad copy (`COPY . .`, or a source set through a variable) keeps every
test, doc and build output in. A `pyproject.toml` the build copies keeps the README and licence
files it names; a version computed from git (setuptools-scm, hatch-vcs...) keeps `.git` for a
broad copy; a broad copy with no `npm ci`/`yarn`/`pnpm install` keeps `node_modules`.

A context gets one only where the file leaves out something the context holds that is worth
it: a version control folder, a virtualenv, `node_modules`, caches and build output, local
`.env` files, tests and docs no COPY reads (the `weighs` entries of the table). A context whose
files the build uses anyway (a Dockerfile and the config files it copies) gets none: a file
that lists only what is not there is one more file to review for nothing.

A context that is missing, remote, built from a Dockerfile that cannot be read
(`dockerfile_inline` included: its copies are not checked), or outside the project, gets none.

## Why
Without it, `docker build` sends the whole folder to the builder: `.git`, virtualenvs and
`node_modules` make every build slower, bust the layer cache on every commit, and a `COPY . .`
bakes local secrets (`.env`) and a host virtualenv into the image.

## Example
Before: a context with `pyproject.toml`, `src/` and `tests/`, built by
`COPY pyproject.toml ./` and `COPY src/ ./src/`. After, a new `.dockerignore` holds `.git`,
`**/__pycache__`, `.venv`, ..., `.env`, `tests`: nothing the two COPYs take.

## Fix safety
Safe: nothing a COPY or ADD names is left out, and only files no build reads are. Unsafe when a
broad copy would have put an existing local `.env` file into the image: the application may
read it there. A copy is broad when it takes the whole context (`COPY . .`), or a source set
through a variable that the Dockerfile's ARG and ENV values (and the service's build args) do
not resolve, or when the Dockerfile is not known; the message says which. An ADD of a URL or
a git repository (`https://`, `git://`, `git@`), written or through a variable, takes nothing
from the context.

## Options
None.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from e2i_fix import buildctx, facts, lazyre
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, Service
from e2i_fix.records import NamedTuple
from e2i_fix.yamldoc import position

ID = "dockerignore"
SUMMARY = "a .dockerignore for each build context, never excluding what a COPY/ADD needs"
SAFETY = Safety.SAFE
NEEDS = "build"  # reads only what services build: nothing to do on a stack that builds nothing
READS = frozenset({"build"})
DEFAULTS: dict[str, Any] = {}

_MAX_FILES = 20_000  # a context listing beyond this is not walked further


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    with open(Path(__file__).resolve().parent.parent / "data" / "dockerignore.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


# --- Docker's pattern matching --------------------------------------------------------------


@lru_cache(maxsize=1024)
def pattern(text: str) -> re.Pattern[str]:
    """A `.dockerignore` pattern (or a COPY source glob) as a regex over context-relative posix
    paths, as Docker matches them (`buildctx.glob_regex`)."""
    p = posixpath.normpath(text.strip().lstrip("/")) if text.strip("/ ") else "."
    return re.compile(buildctx.glob_regex(p))


def _ancestors(path: str) -> Iterator[str]:
    """`a/b/c` -> `a/b/c`, `a/b`, `a`: a pattern that matches a folder excludes what is in it."""
    while path and path != ".":
        yield path
        path = posixpath.dirname(path)


def excluded(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `path` out of the context under `patterns` (later ones win; `!`
    brings a path back)."""
    return buildctx.IgnoreRules(patterns).excluded(path)


# --- what the builds need -------------------------------------------------------------------


class _Needs(NamedTuple):
    literal: list[str]  # every COPY/ADD source as written, normalised
    files: set[str]  # the existing files the sources take
    broad: bool  # a source takes the whole context, or cannot be known
    installs: bool  # a RUN installs Node packages
    why: tuple[str, ...] = ()  # what makes it broad, as the message says it: "`COPY . .` takes the whole context"


def _listing(context: Path) -> list[str]:
    """The context's files, relative, without descending into folders no build reads (those
    are listed themselves, as one entry: `.git`, `web/node_modules`)."""
    skip = {".git", "node_modules", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".tox"}
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(context):
        rel = os.path.relpath(dirpath, context)
        base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        out += (base + d for d in sorted(dirnames) if d in skip)
        dirnames[:] = sorted(d for d in dirnames if d not in skip)
        out += (base + f for f in sorted(filenames))
        if len(out) > _MAX_FILES:
            break
    return out


# A source Docker fetches rather than takes from the context: an ADD of a URL or a git repository.
_REMOTE = lazyre.compile(r"(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git@)\S*")


def _needs(context: Path, docs: list[Any], files: list[str],
           expanders: dict[int, Callable[[str, Any, Any], str]] | None = None) -> _Needs:
    """What the builds of `docs` take from the context. `expanders`: per Dockerfile, how its
    ARG and ENV values (and the service's build args) read a source set through a variable."""
    literal: list[str] = []
    taken: set[str] = set()
    broad = installs = False
    why: dict[str, None] = {}
    install_words = table()["installs"]
    for doc in docs:
        expand = (expanders or {}).get(id(doc))
        for stage in doc.stages:
            for ins in stage.instructions:
                if ins.name == "RUN" and any(w in ins.args for w in install_words):
                    installs = True
            for ins, sources in stage.copies():
                for written in sources:
                    src = expand(written, stage, ins) if expand is not None and "$" in written else written
                    if _REMOTE.fullmatch(src):
                        continue  # ADD of a URL or a git repository: not from the context
                    norm = posixpath.normpath(src.lstrip("/")) if src.strip("/") else "."
                    if norm == "." or "$" in norm or norm.startswith(".."):
                        broad = True
                        shown = f"`{ins.name} {' '.join(ins.operands)}`"
                        why[f"{shown} takes the whole context" if norm == "." else
                            f"{shown} takes a source set through a variable ({written}), which may be anything "
                            "in the context" if "$" in norm else f"{shown} names a source outside the context"] = None
                        continue
                    literal.append(norm)
                    rx = pattern(norm)
                    taken.update(f for f in files if any(rx.fullmatch(a) for a in _ancestors(f)))
    pyproject = context / "pyproject.toml"
    if "pyproject.toml" in taken or broad:
        literal += _pyproject_files(pyproject)
    return _Needs(literal, taken, broad, installs, tuple(why))


def _pyproject_files(path: Path) -> list[str]:
    """The README and licence files a pyproject build reads."""
    try:
        import tomllib

        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    got = data.get("project")
    project: dict[str, Any] = got if isinstance(got, dict) else {}
    out = []
    readme = project.get("readme")
    if isinstance(readme, dict):
        readme = readme.get("file")
    if isinstance(readme, str):
        out.append(posixpath.normpath(readme))
    lic = project.get("license")
    if isinstance(lic, dict) and isinstance(lic.get("file"), str):
        out.append(posixpath.normpath(lic["file"]))
    files = project.get("license-files")
    if isinstance(files, list):
        out += [posixpath.normpath(f) for f in files if isinstance(f, str)]
    return out


def _vcs_versioned(context: Path) -> bool:
    try:
        text = (context / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return any(w in text for w in table()["vcs_versioning"])


# --- choosing the patterns ------------------------------------------------------------------


def choose(context: Path, needs: _Needs, files: list[str]) -> tuple[list[tuple[str, str, list[str]]], bool]:
    """The groups of patterns to write (label, comment, patterns), and whether a local env file a
    broad copy took is now left out (the unsafe case)."""
    data = table()
    top = {f.split("/", 1)[0] for f in files} | {d for d in os.listdir(context) if (context / d).is_dir()}
    kinds = {k for k, markers in data["markers"].items() if any(m in top for m in markers)}
    groups: list[tuple[str, str, list[str]]] = []
    secret_hit = False
    seen: set[str] = set()
    for group in data["groups"]:
        name = group["name"]
        if name in data["markers"] and name not in kinds:
            continue
        kept: list[str] = []
        for entry in group["patterns"]:
            pat, kind = entry["pattern"], entry["kind"]
            if pat in seen:
                continue
            neg = pat.startswith("!")
            if neg:
                if kept:
                    kept.append(pat)
                continue
            if _takes_needed(pat, kind, needs):
                continue
            if entry.get("unless") == "no-install" and needs.broad and not needs.installs:
                continue  # the image runs on the host's node_modules
            if pat == ".git" and needs.broad and _vcs_versioned(context):
                continue
            if name == "docs" and not any(pattern(pat).fullmatch(t) for t in top):
                continue  # only tests and docs that are there
            kept.append(pat)
            seen.add(pat)
        if any(not p.startswith("!") for p in kept):
            # An exception is written only for a file that is there.
            kept = [p for p in kept if not p.startswith("!") or any(pattern(p[1:]).fullmatch(f) for f in files)]
            if name == "secrets" and needs.broad and any(excluded(f, kept) for f in files):
                secret_hit = True
            groups.append((group["label"], group["comment"], kept))
    return groups, secret_hit


def worth(groups: list[tuple[str, str, list[str]]], files: list[str]) -> list[str]:
    """What the context holds that the new file would leave out and that makes the file worth
    writing (a pattern the table says `weighs`: version control, virtualenvs, node_modules,
    caches, env files, tests and docs no COPY reads), each named by its outermost folder or
    file that such a pattern matches. Empty: the file would only list what is not there, or
    editor and compose files."""
    kept = [p for _, _, pats in groups for p in pats]
    heavy = _weighing()
    found = [pattern(p) for p in kept if p in heavy]
    if not found:
        return []
    rules = buildctx.IgnoreRules(kept)
    out: dict[str, None] = {}
    for f in files:
        hit = next((a for a in reversed(list(_ancestors(f))) if any(rx.fullmatch(a) for rx in found)), None)
        if hit is not None and hit not in out and rules.excluded(f):
            out[hit] = None
    return list(out)


@lru_cache(maxsize=1)
def _weighing() -> frozenset[str]:
    return frozenset(e["pattern"] for g in table()["groups"] for e in g["patterns"] if e.get("weighs"))


def _takes_needed(pat: str, kind: str, needs: _Needs) -> bool:
    """Whether `pat` would take away a source a COPY/ADD names, or (content) a file one takes."""
    rx = pattern(pat)
    for lit in needs.literal:
        if any(rx.fullmatch(a) for a in _ancestors(lit)):
            return True
        # A source folder or glob: the pattern may match something inside what it takes.
        if kind == "content" and rx.fullmatch(lit.rstrip("/")):
            return True
    if kind == "content":
        if needs.broad:
            return True
        return any(any(rx.fullmatch(a) for a in _ancestors(f)) for f in needs.files)
    return False


def render(groups: list[tuple[str, str, list[str]]]) -> str:
    lines = ["# Kept out of the build context: nothing a COPY or ADD of this build needs."]
    for _, comment, patterns in groups:
        lines += ["", f"# {comment}", *patterns]
    return "\n".join(lines) + "\n"


# --- the pass -------------------------------------------------------------------------------


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    contexts: dict[Path, list[Service]] = {}
    for svc in project.services.values():
        if svc.reset is not None:
            continue
        b = svc.build
        if b is not None and b.context is not None:
            contexts.setdefault(Path(os.path.normpath(b.context)), []).append(svc)
    for context, services in contexts.items():
        fix = _context_fix(project, context, services)
        if fix is not None:
            yield fix


def _context_fix(project: Project, context: Path, services: list[Service]) -> Fix | None:
    target = context / ".dockerignore"
    if not context.is_dir() or project.exists(target):
        return None
    docs = []
    expanders: dict[int, Callable[[str, Any, Any], str]] = {}
    unknown = False  # a Dockerfile inline or still missing: what it will copy is not known
    for svc in services:
        b = svc.build
        assert b is not None
        if b.dockerfile is not None and project.exists(Path(str(b.dockerfile) + ".dockerignore")):
            continue  # Docker reads that one instead, for this Dockerfile
        if b.doc is None:
            unknown = True
        else:
            docs.append(b.doc)
            got = facts.of(project, svc)
            if got is not None and got.dockerfile is b.doc:
                expanders.setdefault(id(b.doc), got.expand)
    if not docs and not unknown:
        return None
    files = _listing(context)
    needs = _needs(context, list({id(d): d for d in docs}.values()), files, expanders)
    if unknown:
        needs = needs._replace(broad=True, why=(*needs.why, "what its Dockerfile copies is not known "
                                                           "(inline, or not there yet)"))
    groups, secret_hit = choose(context, needs, files)
    held = worth(groups, files)
    if not held:
        return None  # nothing there that the file would keep out: the build uses what it holds
    svc = services[0]
    where = next((d for d in svc.defs if d.get("build") is not None), svc.defs[0])
    key = where.get("build")
    line, col = position(key[0] if key else where.key)
    rel = os.path.relpath(context, project.folder)
    names = ", ".join(sorted({s.name for s in services}))
    # Only what is true of the Dockerfile: a COPY of the whole context, or a source that may be anything.
    note = (f"; unsafe: {'; '.join(needs.why[:2])}, a local .env file included, which the new file leaves out"
            if secret_hit else "")
    shown = ", ".join(held[:6]) + (f" and {len(held) - 6} more" if len(held) > 6 else "")
    return Fix(ID, f"build context {rel!r} ({names}) has no .dockerignore: add one that leaves out {shown} "
               f"({', '.join(label for label, _, _ in groups)}){note}", where.doc.path, line, col,
               (Edit(target, 0, 0, render(groups)),), Safety.UNSAFE if secret_hit else SAFETY)
