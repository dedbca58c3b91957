"""dockerignore: a `.dockerignore` for each build context that has none.

## What it does
A local build context with neither a `.dockerignore` nor a `<Dockerfile>.dockerignore` for any
Dockerfile built from it gets a `.dockerignore` (a new file; the diff shows it created from
`/dev/null`). What goes in is chosen by what the context holds (`e2i_fix/data/dockerignore.toml`,
with its sources): for every context VCS data, editor files and local `.env` files
(`.env.example` kept); for Python (a `pyproject.toml`, `setup.py`, `requirements.txt`...) caches,
virtualenvs and `*.egg-info`; for Node (`package.json`) `node_modules` and caches; compose files,
CI folders, `tests`, `docs`, `build`, `dist` only where no `COPY`/`ADD` (or bind mount) of any
Dockerfile built from the context needs them (`COPY . .` needs everything). A pattern that
would leave out a path a Dockerfile copies by name is dropped, `README*` is never left out (a
`pyproject.toml` build reads it), and `.git` stays where the version comes from it
(setuptools-scm, hatch-vcs, versioningit, dunamai, poetry-dynamic-versioning). A context
outside the project is reported, not written.

## Why
Without it `docker build` sends the whole folder to the builder: `.git`, virtualenvs and
`node_modules` make every build slow, bust the cache of `COPY . .` on every commit, and can
put local secrets (`.env`) into an image layer.

## Example
A Python context whose Dockerfile copies `pyproject.toml uv.lock` and `src/` gets

    # Kept out of the build context (docker build never needs these)
    .git
    ...
    **/__pycache__
    .venv
    tests
    docs

## Fix safety
Safe: nothing a Dockerfile of the context copies or mounts by name, or could copy through
`COPY . .`, is left out, except VCS data, caches and local environment files a build must not
depend on.

## Options
None.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from e2i_fix import buildctx
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, targets

ID = "dockerignore"
SUMMARY = "a .dockerignore for each build context without one, chosen by what the context holds"
SAFETY = Safety.SAFE
DEFAULTS: dict[str, Any] = {}

_VCS_VERSION = ("setuptools_scm", "setuptools-scm", "hatch-vcs", "hatch_vcs", "versioningit", "dunamai",
                "poetry-dynamic-versioning", "setuptools-git-versioning")
HEADER = "# Kept out of the build context: docker build does not need these\n"


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    data = buildctx.table("dockerignore.toml")
    by_context: dict[Path, list[buildctx.Built]] = {}
    for b in buildctx.builds(project, targets(project, ID, options)):
        assert b.build.context is not None
        by_context.setdefault(b.build.context, []).append(b)
    for context, built in by_context.items():
        if not context.is_dir():
            continue
        target = context / ".dockerignore"
        if buildctx.exists(project, target) or any(
                b.build.dockerfile is not None and buildctx.exists(project, b.build.dockerfile.parent / (b.build.dockerfile.name + ".dockerignore"))
                for b in built):
            continue
        patterns = choose(context, built, data)
        if not patterns:
            continue
        text = HEADER + "".join(p + "\n" for p in patterns)
        kinds = [k for k in data if k != "common" and _holds(context, data[k]["markers"])]
        yield Fix(ID, f"build context `{os.path.relpath(context, project.folder)}` has no .dockerignore: "
                      f"create one ({', '.join(kinds) or 'generic'}: {len(patterns)} patterns)",
                  target, 0, 0, edits=(Edit(target, 0, 0, text),), safety=SAFETY,
                  provenance=(("patterns", "e2i_fix/data/dockerignore.toml"),))


def _holds(context: Path, markers: list[str]) -> bool:
    return any((context / m).exists() for m in markers)


def choose(context: Path, built: list[buildctx.Built], data: dict[str, Any]) -> list[str]:
    """The patterns for `context`: what it holds decides the lists; what its Dockerfiles copy
    decides which of the optional ones stay."""
    always: list[str] = list(data["common"]["always"])
    optional: list[str] = list(data["common"]["unless-copied"])
    for kind, spec in data.items():
        if kind != "common" and _holds(context, spec["markers"]):
            always += spec["always"]
            optional += spec["unless-copied"]
    sources: list[str] = []
    for b in built:
        for _, src in buildctx.copy_sources(b.doc, b.doc.stages):  # every stage: any may be built
            sources.append(src)
    if any("$" in s for s in sources):
        optional = []  # a source named by a variable could be anything
    everything = any(buildctx.clean(s) == "" for s in sources)
    named = _expand(context, [s for s in sources if buildctx.clean(s)])
    out: list[str] = []
    for p in dict.fromkeys(always + ([] if everything else optional)):
        if p.startswith("!"):
            out.append(p)
            continue
        if p == ".git" and _versioned_by_vcs(context):
            continue
        if p.upper().startswith("README"):
            continue
        rules = buildctx.IgnoreRules([p])
        if any(rules.excluded(n) or _under(p, n) for n in named):
            continue  # a Dockerfile copies it, or something inside it, by name
        out.append(p)
    # A lone exception with nothing before it to except from means nothing.
    return [p for i, p in enumerate(out) if not p.startswith("!") or any(not q.startswith("!") for q in out[:i])]


def _expand(context: Path, sources: list[str]) -> list[str]:
    """Sources as context paths; a wildcard as the paths it matches now."""
    out: list[str] = []
    for s in sources:
        rel = buildctx.clean(s)
        if buildctx.GLOB_CHARS.search(rel):
            hits = [os.path.relpath(h, context).replace(os.sep, "/") for h in glob.glob(str(context / rel))]
            out += hits or [rel.split("*", 1)[0].rstrip("/") or rel]
        else:
            out.append(rel)
    return out


def _under(pattern: str, source: str) -> bool:
    """Whether a literal pattern names something inside a copied folder (`src/tests` under `src`)."""
    return not buildctx.GLOB_CHARS.search(pattern) and pattern.startswith(source.rstrip("/") + "/")


def _versioned_by_vcs(context: Path) -> bool:
    for name in ("pyproject.toml", "setup.cfg", "setup.py"):
        try:
            text = (context / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if any(v in text for v in _VCS_VERSION):
            return True
    return False
