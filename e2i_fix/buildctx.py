"""Build contexts as Docker sends them: which Dockerfiles build from each, what `.dockerignore`
keeps out, whether a COPY source is there, and the data tables the Dockerfile passes read.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix import lazyre
from e2i_fix.records import NamedTuple

if TYPE_CHECKING:
    from e2i_fix.dockerfile import DockerfileDoc, Instruction, Stage
    from e2i_fix.project import Build, Project, Service

GLOB_CHARS = lazyre.compile(r"[*?\[]")


@lru_cache(maxsize=None)
def table(name: str) -> dict[str, Any]:
    """A TOML table of `e2i_fix/data/`, read once."""
    from e2i_fix import datafiles

    return datafiles.load(name)


class Built(NamedTuple):
    service: Service
    build: Build
    doc: DockerfileDoc


def builds(project: Project, services: list[Service] | None = None) -> list[Built]:
    """The services that build from a Dockerfile on disk, with its parse."""
    out = []
    for svc in project.services.values() if services is None else services:
        b = svc.build
        if b is not None and b.context is not None and b.doc is not None:
            out.append(Built(svc, b, b.doc))
    return out


def needed_stages(doc: DockerfileDoc, target: str | None) -> list[Stage]:
    """The stages BuildKit builds for `target` (the last stage without one): the target and the
    stages it starts FROM, COPYs --from or mounts from, transitively, in file order."""
    end = doc.stage(target)
    if end is None:
        return []
    by_name = {s.name.lower(): s for s in doc.stages if s.name}
    seen: dict[int, Stage] = {}
    todo = [end]
    while todo:
        st = todo.pop()
        if st.index in seen:
            continue
        seen[st.index] = st
        refs = [st.base]
        for ins in st.instructions:
            if "from" in ins.flags:
                refs.append(ins.flags["from"])
            refs += [m["from"] for m in ins.mounts() if "from" in m]
        for ref in refs:
            other = by_name.get(ref.lower()) or (doc.stages[int(ref)] if ref.isdigit() and int(ref) < len(doc.stages) else None)
            if other is not None and other.index < st.index:
                todo.append(other)
    return [seen[i] for i in sorted(seen)]


class IgnoreRules:
    """A `.dockerignore` as Docker's pattern matcher reads it: paths cleaned, a leading `/`
    dropped, `**` any number of folders, the last matching line wins, `!` re-includes; a
    folder left out leaves out everything under it."""

    def __init__(self, patterns: list[str], path: Path | None = None) -> None:
        self.path = path
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in patterns:
            p = raw.strip()
            if not p or p.startswith("#"):
                continue
            negate = p.startswith("!")
            p = p[1:].strip() if negate else p
            p = os.path.normpath(p).replace(os.sep, "/").lstrip("/")
            if p == ".":
                continue
            self.rules.append((negate, re.compile(glob_regex(p))))

    def excluded(self, rel: str) -> bool:
        rel = rel.strip("/")
        parts = rel.split("/")
        out = False
        for negate, rx in self.rules:
            # A pattern matching the path or any folder above it.
            if any(rx.fullmatch("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
                out = not negate
        return out


def glob_regex(p: str) -> str:
    """A `.dockerignore` pattern or COPY source glob (normalised, relative) as a regex over
    context-relative posix paths: `**` any number of folders, `*` and `?` within one name,
    `[...]` a class (`[^...]` negated), `\\` escaping."""
    out = []
    i = 0
    while i < len(p):
        c = p[i]
        if p.startswith("**", i):
            i += 2
            if p.startswith("/", i):
                i += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = p.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = p[i + 1 : j]
                out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
                i = j
        elif c == "\\" and i + 1 < len(p):
            i += 1
            out.append(re.escape(p[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def ignore_file(context: Path, dockerfile: Path | None) -> Path | None:
    """The ignore file Docker uses: `<Dockerfile>.dockerignore` beside the Dockerfile first,
    then the context's `.dockerignore`."""
    if dockerfile is not None:
        own = dockerfile.parent / (dockerfile.name + ".dockerignore")
        if own.is_file():
            return own
    p = context / ".dockerignore"
    return p if p.is_file() else None


def ignore_rules(context: Path, dockerfile: Path | None) -> IgnoreRules:
    path = ignore_file(context, dockerfile)
    if path is None:
        return IgnoreRules([])
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return IgnoreRules([])
    return IgnoreRules(text.splitlines(), path)


def copy_sources(doc: DockerfileDoc, stages: list[Stage]) -> list[tuple[Instruction, str]]:
    """The context paths the COPY/ADD instructions of `stages` read (URLs and `--from` left out)."""
    out = []
    for st in stages:
        for ins, sources in st.copies():
            for s in sources:
                if ins.name == "ADD" and ("://" in s or s.startswith("git@")):
                    continue
                out.append((ins, s))
        for ins in st.instructions:
            for m in ins.mounts():
                if m.get("type") == "bind" and "from" not in m and m.get("source"):
                    out.append((ins, m["source"]))
    return out


def clean(rel: str) -> str:
    """A COPY source as a path inside the context (`./a/../b/` -> `b`, `/x` -> `x`)."""
    p = os.path.normpath("/" + rel).lstrip("/")
    return "" if p in (".", "") else p


def exists(project: Project, path: Path) -> bool:
    """Whether `path` is there, on disk or created by a fix earlier in this run."""
    return path in project.created or os.path.lexists(path)


def env_pairs(ins: Instruction) -> list[tuple[str, str]]:
    """The variables an ENV (or ARG with defaults) sets: `ENV A=1 B=2` or the legacy `ENV A 1`."""
    ops = ins.operands
    if not ops:
        return []
    if "=" not in ops[0]:
        return [(ops[0], " ".join(ops[1:]))] if ins.name == "ENV" else [(ops[0], "")]
    return [(k, v) for k, _, v in (o.partition("=") for o in ops)]
