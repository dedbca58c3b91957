"""Dockerfiles as BuildKit reads them: instructions with exact positions, grouped into stages.

Where an instruction starts and ends is BuildKit's own answer: the `dockerfile` package wraps
BuildKit's parser (continuations, the `escape` directive, comments and blank lines inside
continuations, heredocs, CRLF) and gives each instruction's first and last line. This module
turns those lines into offsets in the text as read, so a fix can edit one instruction and leave
every other byte alone, and marks where an instruction's heredoc bodies begin: nothing is ever
edited inside one. The parser is imported when the first Dockerfile is read, never at start-up.
"""

from __future__ import annotations

import re
from functools import cached_property

from e2i_fix import lazyre, shellwords
from e2i_fix.errors import InputError
from e2i_fix.records import NamedTuple
from e2i_fix.source import Source

_DIRECTIVE = lazyre.compile(r"#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$")
_ERROR_LINE = lazyre.compile(r"line (\d+)")
# The package managers a RUN may call, where a shell command starts (not `echo pip install`).
_CMD = r"(?:^|[;&|(`]|\b(?:then|do|else|exec)\b)\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*(?:sudo\s+(?:-\S+\s+)*)?"
_INSTALLERS = {name: lazyre.compile(_CMD + rx, re.MULTILINE) for name, rx in {
    "pip": r"(?:python[0-9.]*\s+-m\s+)?pip[0-9.]*\s+(?:install|wheel|download)\b",
    "uv": r"uv\s+(?:pip\s+install|sync|add|tool\s+install)\b",
    "poetry": r"poetry\s+(?:install|add|sync)\b",
    "npm": r"npm\s+(?:ci|install|i)\b",
    "yarn": r"yarn(?:\s+install)?(?:\s+--[\w-]+)*\s*(?:$|[;&|)])",
    "pnpm": r"pnpm\s+(?:install|i|add)\b",
    "apt": r"apt(?:-get)?\s+(?:-\S+\s+)*install\b",
    "apk": r"apk\s+(?:-\S+\s+)*add\b",
}.items()}


class Heredoc(NamedTuple):
    name: str
    start: int  # offset of the body's first character
    end: int  # offset just past the terminator line's text
    content: str  # the body as BuildKit reads it (tabs stripped for `<<-`)


class Instruction:
    def __init__(self, name: str, args: str, start: int, end: int, line: int, heredocs: tuple[str, ...] = (),
                 end_line: int | None = None, head_end: int | None = None,
                 flag_list: tuple[str, ...] = (), bodies: tuple[Heredoc, ...] = (), json: bool = False,
                 sub: str | None = None) -> None:
        self.name = name  # upper case: RUN, COPY, ...
        self.args = args  # continuations joined, flags included, heredoc bodies left out
        self.start = start  # offset of the first character of the instruction
        self.end = end  # offset just past its last character (before the newline)
        self.line = line  # 1-based line of `start`
        self.end_line = line if end_line is None else end_line
        self.heredocs = heredocs  # their names
        self.head_end = end if head_end is None else head_end  # where the heredoc bodies begin
        self.flag_list = flag_list  # `--mount=...` and the like, in order, repeats kept
        self.bodies = bodies
        self.json = json  # exec form: `RUN ["a", "b"]`
        self.sub = sub  # ONBUILD's instruction

    def __repr__(self) -> str:
        return f"Instruction({self.name} {self.args!r} at line {self.line})"

    @cached_property
    def flags(self) -> dict[str, str]:
        return dict(_split_flags(self.args)[0])

    @cached_property
    def command(self) -> str:
        """The arguments after the flags, as written (continuations joined)."""
        return _split_flags(self.args)[1].strip()

    @cached_property
    def operands(self) -> list[str]:
        """Arguments after the flags, JSON form or shell words."""
        rest = self.command
        if rest.startswith("["):
            import json  # exec form only

            try:
                parsed = json.loads(rest)
                if isinstance(parsed, list):
                    return [str(p) for p in parsed]
            except ValueError:
                pass
        try:
            return shellwords.split(rest)
        except ValueError:
            return rest.split()

    def installers(self) -> set[str]:
        """The package managers a RUN installs with (pip, uv, poetry, npm, yarn, pnpm, apt, apk)."""
        if self.name != "RUN":
            return set()
        text = " ".join([self.command, *self.heredoc_texts()])
        found = {name for name, rx in _INSTALLERS.items() if rx.search(text)}
        return found

    def heredoc_texts(self) -> list[str]:
        return [b.content for b in self.bodies]

    def mounts(self) -> list[dict[str, str]]:
        """The `--mount` flags, each as its key=value pairs (`type` defaults to bind)."""
        out = []
        for flag in self.flag_list:
            if flag.startswith("--mount="):
                d = {"type": "bind"}
                for part in flag[len("--mount="):].split(","):
                    k, _, v = part.partition("=")
                    d[k.strip().lower()] = v.strip()
                out.append(d)
        return out


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

    def user_at(self, ins: Instruction) -> str | None:
        """The USER in effect when `ins` runs (None: the base image's default)."""
        user = self.parent.user if self.parent else None
        for other in self.instructions:
            if other is ins:
                break
            if other.name == "USER":
                user = other.args.strip() or None
        return user

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

    @property
    def workdir(self) -> str | None:
        """The effective WORKDIR (relative ones joined as Docker joins them); None: unset."""
        path = self.parent.workdir if self.parent else None
        for ins in self.instructions:
            if ins.name == "WORKDIR" and ins.operands:
                new = ins.operands[0]
                path = new if new.startswith("/") or not path else path.rstrip("/") + "/" + new
        return path

    def volumes(self) -> list[str]:
        out = list(self.parent.volumes()) if self.parent else []
        for ins in self.instructions:
            if ins.name == "VOLUME":
                out += ins.operands
        return out

    def exposed(self) -> list[str]:
        out = list(self.parent.exposed()) if self.parent else []
        for ins in self.instructions:
            if ins.name == "EXPOSE":
                out += ins.operands
        return out

    def installers(self) -> set[str]:
        out: set[str] = set()
        for ins in self.instructions:
            out |= ins.installers()
        return out

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
                 stages: list[Stage], directive_lines: int = 0) -> None:
        self.source = source
        self.directives = directives
        self.instructions = instructions
        self.stages = stages
        self.directive_lines = directive_lines  # how many lines at the top are parser directives

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

    def stage_of(self, ins: Instruction) -> Stage | None:
        for s in self.stages:
            if ins is s.from_instruction or any(i is ins for i in s.instructions):
                return s
        return None

    def in_heredoc(self, offset: int) -> bool:
        """Whether `offset` falls inside a heredoc body, where no edit may go."""
        return any(h.start <= offset < h.end for ins in self.instructions for h in ins.bodies)


def check(text: str) -> None:
    """Raise InputError where BuildKit's parser rejects `text`."""
    import dockerfile as buildkit  # the compiled BuildKit parser; imported on first use

    try:
        buildkit.parse_string(text)
    except buildkit.GoParseError as e:
        m = _ERROR_LINE.search(str(e))
        raise InputError(f"BuildKit cannot parse this Dockerfile: {e}", int(m.group(1)) if m else 0) from None


def _keyword(text: str, pos: int, escape: str) -> int:
    """Where an instruction's keyword begins: BuildKit's first line for it may hold only
    blanks, an escaped newline or comments before the keyword."""
    n = len(text)
    at_line_start = True
    while pos < n:
        ch = text[pos]
        if ch in " \t":
            pos += 1
        elif ch in "\r\n":
            pos += 1
            at_line_start = True
            continue
        elif ch == escape and text[pos + 1 : pos + 2] in ("\r", "\n", " ", "\t", ""):
            pos += 1
        elif ch == "#" and at_line_start:
            nl = text.find("\n", pos)
            pos = n if nl < 0 else nl
        else:
            return pos
        at_line_start = at_line_start and ch in " \t"
    return pos


def parse(source: Source) -> DockerfileDoc:
    """The instructions and stages of a Dockerfile; InputError where BuildKit rejects it."""
    import dockerfile as buildkit  # the compiled BuildKit parser; imported on first use

    text = source.text
    try:
        commands = buildkit.parse_string(text)
    except buildkit.GoParseError as e:
        m = _ERROR_LINE.search(str(e))
        raise InputError(f"BuildKit cannot parse this Dockerfile: {e}", int(m.group(1)) if m else 0) from None
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))

    def line_end(n: int) -> int:  # 1-based line: offset past its text, before the newline
        return offsets[n - 1] + len(lines[n - 1].rstrip("\r\n"))

    directives: dict[str, str] = {}
    count = 0
    # Parser directives: comment lines at the very top, each directive once, before anything else.
    while count < len(lines):
        m = _DIRECTIVE.match(lines[count].strip())
        if not m or m.group(1).lower() in directives:
            break
        directives[m.group(1).lower()] = m.group(2)
        count += 1

    escape = directives.get("escape", "\\")
    instructions: list[Instruction] = []
    for c in commands:
        if not c.cmd:
            continue  # a line of nothing but an escape: no instruction to read or edit
        first, last = c.start_line, min(c.end_line, len(lines))
        start = _keyword(text, offsets[first - 1], escape)
        bodies: list[Heredoc] = []
        head_last = last
        if c.heredocs:
            # The bodies come last, each followed by its terminator line: count back from the end.
            n = last
            for h in reversed(c.heredocs):
                body_lines = h.content.count("\n")
                bodies.insert(0, Heredoc(h.name, offsets[n - body_lines - 1], line_end(n), h.content))
                n -= body_lines + 1
            head_last = n
        head = c.original.partition("\n")[0] if c.heredocs else c.original
        name, _, args = head.partition(" ")
        ins = Instruction(c.cmd.upper(), args.strip(), start, line_end(last), first,
                          tuple(h.name for h in c.heredocs), last, line_end(head_last),
                          tuple(c.flags), tuple(bodies), bool(c.json), c.sub_cmd)
        instructions.append(ins)

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
    return DockerfileDoc(source, directives, instructions, stages, count)
