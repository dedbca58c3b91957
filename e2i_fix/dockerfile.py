"""Dockerfiles as instructions with exact positions, grouped into stages.

A small line scanner (continuations, the `escape` directive, comments inside continuations,
heredocs) is all the passes need; it keeps offsets into the text so a fix can edit one
instruction and leave every other byte alone.
"""

from __future__ import annotations

import re
import shlex
from functools import cached_property

from e2i_fix.source import Source

_DIRECTIVE = re.compile(r"#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


class Instruction:
    def __init__(self, name: str, args: str, start: int, end: int, line: int, heredocs: tuple[str, ...] = ()) -> None:
        self.name = name  # upper case: RUN, COPY, ...
        self.args = args  # continuations joined, flags included
        self.start = start  # offset of the first character of the instruction
        self.end = end  # offset just past its last character (before the newline)
        self.line = line  # 1-based line of `start`
        self.heredocs = heredocs

    def __repr__(self) -> str:
        return f"Instruction({self.name} {self.args!r} at line {self.line})"

    @cached_property
    def flags(self) -> dict[str, str]:
        return dict(_split_flags(self.args)[0])

    @cached_property
    def operands(self) -> list[str]:
        """Arguments after the flags, JSON form or shell words."""
        rest = _split_flags(self.args)[1].strip()
        if rest.startswith("["):
            import json  # exec form only

            try:
                parsed = json.loads(rest)
                if isinstance(parsed, list):
                    return [str(p) for p in parsed]
            except ValueError:
                pass
        try:
            return shlex.split(rest, comments=False, posix=True)
        except ValueError:
            return rest.split()


def _split_flags(args: str) -> tuple[list[tuple[str, str]], str]:
    flags: list[tuple[str, str]] = []
    rest = args.lstrip()
    while rest.startswith("--"):
        word, _, tail = rest.partition(" ")
        name, _, value = word[2:].partition("=")
        flags.append((name, value))
        rest = tail.lstrip()
    return flags, rest


class Stage:
    def __init__(self, index: int, base: str, name: str | None, from_instruction: Instruction,
                 parent: Stage | None = None) -> None:
        self.index = index
        self.base = base  # the image (or stage name) after FROM
        self.name = name  # `AS name`
        self.from_instruction = from_instruction
        self.instructions: list[Instruction] = []
        self.parent = parent  # the earlier stage this one builds FROM

    def __repr__(self) -> str:
        return f"Stage({self.index}, {self.base!r}, {self.name!r})"

    def last(self, name: str) -> Instruction | None:
        for ins in reversed(self.instructions):
            if ins.name == name:
                return ins
        return None

    @property
    def user(self) -> str | None:
        """The effective USER (inherited through FROM <stage>); None: the base image's default."""
        ins = self.last("USER")
        if ins is not None:
            return ins.args.strip() or None
        return self.parent.user if self.parent else None

    @property
    def healthcheck(self) -> Instruction | None:
        """The effective HEALTHCHECK (inherited); None when absent or `HEALTHCHECK NONE`."""
        ins = self.last("HEALTHCHECK")
        if ins is None:
            return self.parent.healthcheck if self.parent else None
        return None if ins.args.strip().upper() == "NONE" else ins

    @property
    def root_image(self) -> str:
        """The external image the stage chain starts from."""
        return self.parent.root_image if self.parent else self.base

    def copies(self) -> list[tuple[Instruction, list[str]]]:
        """COPY/ADD instructions from the build context, with their source paths."""
        out = []
        for ins in self.instructions:
            if ins.name in ("COPY", "ADD") and "from" not in ins.flags and not ins.heredocs:
                ops = ins.operands
                if len(ops) >= 2:
                    out.append((ins, ops[:-1]))
        return out


class DockerfileDoc:
    def __init__(self, source: Source, directives: dict[str, str], instructions: list[Instruction],
                 stages: list[Stage]) -> None:
        self.source = source
        self.directives = directives
        self.instructions = instructions
        self.stages = stages

    @property
    def path(self) -> object:
        return self.source.path

    @property
    def text(self) -> str:
        return self.source.text

    def stage(self, target: str | None) -> Stage | None:
        """The stage a build ends at: `target` by name, or the last one."""
        if not self.stages:
            return None
        if target is None:
            return self.stages[-1]
        for s in self.stages:
            if s.name and s.name.lower() == target.lower():
                return s
        return None


def parse(source: Source) -> DockerfileDoc:
    text = source.text
    directives: dict[str, str] = {}
    lines = text.splitlines(keepends=True)
    offsets = []
    pos = 0
    for ln in lines:
        offsets.append(pos)
        pos += len(ln)

    i = 0
    # Parser directives: only comment lines at the very top, before anything else.
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i].strip())
        if not m or m.group(1).lower() in directives:
            break
        directives[m.group(1).lower()] = m.group(2)
        i += 1
    escape = directives.get("escape", "\\")

    instructions: list[Instruction] = []
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = offsets[i] + (len(raw) - len(raw.lstrip()))
        first_line = i + 1
        parts: list[str] = []
        while True:
            body = lines[i].rstrip("\r\n")
            cont = body.rstrip().endswith(escape)
            parts.append(body.rstrip()[: -len(escape)] if cont else body)
            end = offsets[i] + len(body)
            i += 1
            if not cont:
                break
            # Comment and empty lines inside a continuation are dropped by BuildKit.
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1
            if i >= len(lines):
                break
        joined = " ".join(p.strip() for p in parts).strip()
        name, _, args = joined.partition(" ")
        name = name.upper()
        docs: list[str] = []
        if name in ("RUN", "COPY", "ADD"):
            for m in _HEREDOC.finditer(args):
                docs.append(m.group(3))
                strip_tabs = bool(m.group(1))
                while i < len(lines):
                    body = lines[i].rstrip("\r\n")
                    end = offsets[i] + len(body)
                    i += 1
                    if (body.lstrip("\t") if strip_tabs else body) == m.group(3):
                        break
        instructions.append(Instruction(name, args.strip(), start, end, first_line, tuple(docs)))

    stages: list[Stage] = []
    by_name: dict[str, Stage] = {}
    for ins in instructions:
        if ins.name == "FROM":
            ops = ins.operands
            base = ops[0] if ops else ""
            alias = ops[2] if len(ops) >= 3 and ops[1].lower() == "as" else None
            st = Stage(len(stages), base, alias, ins, parent=by_name.get(base.lower()))
            stages.append(st)
            if alias:
                by_name[alias.lower()] = st
        elif stages:
            stages[-1].instructions.append(ins)
    return DockerfileDoc(source, directives, instructions, stages)
