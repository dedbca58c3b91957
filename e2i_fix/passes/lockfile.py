"""lockfile: a COPY or ADD source that is not in the build context.

## What it does
Reports, at its Dockerfile line, every `COPY`/`ADD` source (and `RUN --mount=type=bind`
source) that the build context does not hold, in the stages the service's build reaches (its
`build.target`, else the last stage, and the stages that one starts from or copies from). A
source the context's `.dockerignore` (or `<Dockerfile>.dockerignore`) leaves out is missing too.
A wildcard is matched as BuildKit matches it: a pattern that matches nothing copies nothing and
is not an error, so only literal paths are reported; a source with a `$VARIABLE` is not judged.
For a lock file (`uv.lock`, `poetry.lock`, `Pipfile.lock`, `package-lock.json`, `yarn.lock`,
`pnpm-lock.yaml`...) the message gives the command that creates it.

## Why
`docker compose build` fails at that line (`"/uv.lock": not found`), usually in CI, after the
layers before it have been built. A missing lock file also means the build is not reproducible.

## Example
Before (`uv.lock` was never committed):

    COPY pyproject.toml uv.lock ./

Reported:

    docker/Dockerfile:3:1: [lockfile] COPY source `uv.lock` is not in the build context `.`:
    create it with `uv lock` and commit it

## Fix safety
Display only: the file has to be made by the project's own tools, and committed.

## Options
None.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from e2i_fix import buildctx
from e2i_fix.fix import Fix, Safety
from e2i_fix.project import Project, targets

ID = "lockfile"
SUMMARY = "a COPY/ADD source missing from the build context (with the command that makes a lock file)"
SAFETY = Safety.DISPLAY_ONLY
NEEDS = "build"  # reads only what services build: nothing to do on a stack that builds nothing
DEFAULTS: dict[str, Any] = {}


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    commands: dict[str, str] = buildctx.table("lockfiles.toml")["commands"]
    sources: dict[str, str] = buildctx.table("lockfiles.toml")["sources"]
    seen: set[tuple[object, int, str]] = set()
    for b in buildctx.builds(project, targets(project, ID, options)):
        context = b.build.context
        assert context is not None
        rules = buildctx.ignore_rules(context, b.build.dockerfile)
        shown = os.path.relpath(context, project.folder) if context.is_absolute() == project.folder.is_absolute() else str(context)
        for ins, src in buildctx.copy_sources(b.doc, buildctx.needed_stages(b.doc, b.build.target)):
            if "$" in src or buildctx.GLOB_CHARS.search(src):
                continue
            rel = buildctx.clean(src)
            if not rel:
                continue
            key = (b.doc.source.path, ins.line, rel)
            if key in seen:
                continue
            ignored = rules.excluded(rel)
            if not ignored and buildctx.exists(project, context / rel):
                continue
            seen.add(key)
            name = rel.rsplit("/", 1)[-1]
            why = (f"is left out of the build context `{shown}` by {rules.path.name if rules.path else '.dockerignore'}"
                   if ignored else f"is not in the build context `{shown}`")
            command = commands.get(name)
            hint = f": create it with `{command}` and commit it" if command else ""
            provenance = ((name, sources[name]),) if name in sources else ()
            yield Fix(ID, f"{ins.name} source `{src}` {why}{hint} (service {b.service.name!r})",
                      b.doc.source.path, ins.line, 1, safety=Safety.DISPLAY_ONLY, severe=True, provenance=provenance)
