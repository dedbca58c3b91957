"""buildkit-syntax: the `# syntax=docker/dockerfile:1` directive where BuildKit features are used.

## What it does
A Dockerfile that uses a BuildKit feature (`RUN --mount`, `RUN --network`/`--security`,
`COPY --link`/`--chmod`/`--parents`/`--exclude`, `ADD --checksum`, heredocs) and has no `syntax`
directive gets

    # syntax=docker/dockerfile:1

as its very first line: after a byte order mark (kept), before an `# escape=` directive. A
Dockerfile that already names a syntax is left alone: there is never a second directive. It
runs again after other passes, so a cache mount that `cache-mounts` adds gets its directive in
the same run.

## Why
The directive makes the build use the current stable Dockerfile frontend, whatever the
BuildKit version of the machine: the features work on an older Docker engine too, and the
build fails with a clear message instead of a parse error where BuildKit is not used.

## Example
Before:

    FROM python:3.12-slim
    RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt

After:

    # syntax=docker/dockerfile:1
    FROM python:3.12-slim
    RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt

## Fix safety
Safe: a comment line the legacy builder ignores; BuildKit fetches the stable frontend
(`docker/dockerfile:1`), which accepts every Dockerfile the built-in one does.

## Options
- `syntax`: the frontend image (default `docker/dockerfile:1`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from e2i_fix import buildctx
from e2i_fix.dockerfile import DockerfileDoc
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, targets

ID = "buildkit-syntax"
SUMMARY = "`# syntax=docker/dockerfile:1` where a Dockerfile uses BuildKit features"
SAFETY = Safety.SAFE
NEEDS = "build"  # reads only what services build: nothing to do on a stack that builds nothing
DEFAULTS: dict[str, Any] = {"syntax": "docker/dockerfile:1"}

_FLAGS = {"RUN": ("mount", "network", "security"), "COPY": ("link", "chmod", "parents", "exclude"),
          "ADD": ("link", "chmod", "checksum", "keep-git-dir", "exclude")}


def feature(doc: DockerfileDoc) -> tuple[int, str] | None:
    """The first BuildKit-only feature the Dockerfile uses: (line, what)."""
    for ins in doc.instructions:
        for flag in _FLAGS.get(ins.name, ()):
            if flag in ins.flags:
                return ins.line, f"{ins.name} --{flag}"
        if ins.heredocs:
            return ins.line, f"a heredoc ({ins.name} <<{ins.heredocs[0]})"
    return None


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    seen: set[object] = set()
    for b in buildctx.builds(project, targets(project, ID, options)):
        doc = b.doc
        if doc.path in seen:
            continue
        seen.add(doc.path)
        if "syntax" in doc.directives:
            continue
        used = feature(doc)
        if used is None:
            continue
        line = f"# syntax={options['syntax']}\n"
        yield Fix(ID, f"uses {used[1]} (line {used[0]}) without a syntax directive: add `{line.strip()}`",
                  b.build.dockerfile or doc.source.path, 1, 1, edits=(Edit(doc.source.path, 0, 0, line),))
