"""The engine: build the Project, ask every pass for fixes, keep the allowed and compatible
ones, splice them into the text, re-parse, and loop to a fixed point.

Passes propose; only this module changes text, and only in memory. A pass whose fixes break
parsing is named and its fixes are dropped; a chain that never settles is reported.
"""

from __future__ import annotations

import bisect
import os

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix import project as proj, source as src, suppress
from e2i_fix.config import Settings
from e2i_fix.errors import InputError, Problem
from e2i_fix.fix import Edit, Fix, Safety, as_path
from e2i_fix.passes import Pass
from e2i_fix.yamldoc import ComposeDoc

if TYPE_CHECKING:
    from e2i_fix import dockerfile
    from e2i_fix.verify import Failure

MAX_ROUNDS = 10


class Result:
    """What one stack came to. Nothing here has been written."""

    def __init__(self, stack: proj.Stack) -> None:
        self.stack = stack
        self.originals: dict[Path, src.Source] = {}
        self.texts: dict[Path, str] = {}
        self.applied: list[Fix] = []
        self.findings: list[Fix] = []  # reported, not applied
        self.problems: list[Problem] = []
        self.before: proj.Project | None = None
        self.after: proj.Project | None = None
        # The text of each file at the start of every round, and the spans each round replaced:
        # a fix's line and column are in the text of the round that proposed it.
        self.snapshots: list[dict[Path, str]] = []
        self.spans: list[dict[Path, list[tuple[int, int, int]]]] = []
        self.round_of: dict[int, int] = {}

    def changed(self) -> list[Path]:
        return [p for p, t in self.texts.items() if t != self.originals[p].text]

    def original_location(self, fix: Fix) -> tuple[int, int]:
        """`fix`'s line and column in the file as it was read (a later round proposed it in
        text that earlier fixes had already changed)."""
        r = self.round_of.get(id(fix), 0)
        path = as_path(fix.path)
        if not fix.line or r == 0 or path not in self.snapshots[r] or path not in self.snapshots[0]:
            return fix.line, fix.col  # (a file a fix created has no text as read: its own lines)
        text = self.snapshots[r][path]
        # One table of line starts per round and file: a run with many findings from later
        # rounds would otherwise walk the text from its start once per finding.
        starts = self.__dict__.setdefault("_starts", {}).get((r, path))
        if starts is None:
            starts = self.__dict__["_starts"][(r, path)] = _line_starts(text)
        offset = _offset(starts, len(text), fix.line, fix.col)
        indexes = self.__dict__.setdefault("_back", {})
        for k in reversed(range(r)):
            spans = self.spans[k].get(path, [])
            index = indexes.get((k, path))
            if index is None:
                index = indexes[(k, path)] = _back_index(spans)
            offset = _back(offset, spans, index)
        first = self.__dict__["_starts"].get((0, path))
        if first is None:
            first = self.__dict__["_starts"][(0, path)] = _line_starts(self.snapshots[0][path])
        line = bisect.bisect_right(first, offset)  # the lines that start at or before it
        return line, offset - first[line - 1] + 1

    def original_edits(self, fix: Fix) -> tuple[Edit, ...] | None:
        """`fix`'s edits with offsets in the files as they were read, or None when they cannot
        stand alone there: a later round proposed them inside (or across) what an earlier
        round's fixes wrote, so they only make sense after those."""
        r = self.round_of.get(id(fix), 0)
        if r == 0:
            return fix.edits
        out = []
        for e in fix.edits:
            start, end = e.start, e.end
            for k in reversed(range(min(r, len(self.spans)))):
                got = _back_exact(start, end, self.spans[k].get(e.path, []))
                if got is None:
                    return None
                start, end = got
            out.append(e._replace(start=start, end=end))
        return tuple(out)

    def regions(self, path: Path) -> list[tuple[int, int, int, int]]:
        """Where the file as read and its result may differ: (start, end) in the original and
        (start, end) in the result, ascending. Outside them the two are equal piece for piece."""
        regions: list[tuple[int, int, int, int]] = []
        for spans in self.spans:
            regions = _compose(regions, spans.get(path, []))
        return regions


def _line_starts(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


def _offset(starts: list[int], size: int, line: int, col: int) -> int:
    if line > len(starts):
        return size
    return min(starts[line - 1] + col - 1, size)


def _compose(regions: list[tuple[int, int, int, int]], spans: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int]]:
    """The regions after one more round of splices. `spans` are (start, end, new length) in the
    text the round started from, which is the `after` side of `regions`; where the two touch or
    overlap they become one region."""
    events = sorted([(b0, b1, a1 - a0) for a0, a1, b0, b1 in regions] + [(s, e, -1 - n) for s, e, n in spans])
    out: list[tuple[int, int, int, int]] = []
    grown = shift = 0  # what earlier regions added to the text, and what earlier splices added
    i = 0
    while i < len(events):
        c0, c1 = events[i][0], events[i][1]
        d_grown = d_shift = 0
        while i < len(events) and events[i][0] <= c1:
            start, end, k = events[i]
            c1 = max(c1, end)
            if k >= 0:  # a region: its old length is k
                d_grown += (end - start) - k
            else:  # a splice: its new length is -1 - k
                d_shift += (-1 - k) - (end - start)
            i += 1
        out.append((c0 - grown, c1 - grown - d_grown, c0 + shift, c1 + shift + d_shift))
        grown += d_grown
        shift += d_shift
    return out


def _back(offset: int, spans: list[tuple[int, int, int]], index: tuple[list[int], list[int]] | None = None) -> int:
    """Map an offset in spliced text back to the text before the splice. `index` is
    `_back_index(spans)`, for many look-ups in the same spans."""
    new_starts, shifts = index if index is not None else _back_index(spans)
    i = bisect.bisect_right(new_starts, offset) - 1  # the last splice starting at or before it
    if i < 0:
        return offset
    start, _, new_len = spans[i]
    if offset < new_starts[i] + new_len:
        return start  # inside inserted text: the place it was inserted at
    return offset - shifts[i + 1]


def _back_index(spans: list[tuple[int, int, int]]) -> tuple[list[int], list[int]]:
    """Each splice's start in the spliced text, and the shift before each splice (and after the
    last)."""
    new_starts: list[int] = []
    shifts = [0]
    for start, end, new_len in spans:  # ascending, in the old text's coordinates
        new_starts.append(start + shifts[-1])
        shifts.append(shifts[-1] + new_len - (end - start))
    return new_starts, shifts


def _back_exact(start: int, end: int, spans: list[tuple[int, int, int]]) -> tuple[int, int] | None:
    """The span (start, end) of spliced text in the text before the splice; None when it
    reaches into a splice's new text, or strictly encloses a splice (it would also replace what
    that splice removed)."""
    shift = 0
    old_start, old_end = start, end
    start_done = end_done = False
    for s, e, n in spans:  # ascending, in the old text's coordinates
        ns = s + shift
        ne = ns + n
        if start < end and ((n and start < ne and ns < end) or (not n and start < ns < end)):
            return None
        if start == end and ns < start < ne:
            return None
        # An end on a splice's start stays before it; a start on a splice's end goes after it.
        if not start_done and (start < ns or (start == ns and n)):
            old_start, start_done = start - shift, True
        if not end_done and end <= ns:
            old_end, end_done = end - shift, True
        if start_done and end_done:
            break
        shift += n - (e - s)
    if not start_done:
        old_start = start - shift
    if not end_done:
        old_end = end - shift
    return old_start, old_start if start == end else old_end


class Workspace:
    """The files of one stack: their original sources and current texts, parsed on demand."""

    def __init__(self, stack: proj.Stack) -> None:
        self.stack = stack
        self.originals: dict[Path, src.Source] = {}
        self.texts: dict[Path, str] = {}
        self._compose_cache: dict[tuple[Path, str], ComposeDoc] = {}
        self._docker_cache: dict[tuple[Path, str], dockerfile.DockerfileDoc] = {}
        self.env: dict[str, str] = {}
        self.last_spans: dict[Path, list[tuple[int, int, int]]] = {}
        self.compose_paths: set[Path] = set(stack.compose)  # with the files they include
        self.dockerfile_paths: set[Path] = set()
        self._unwritable: dict[Path, str | None] = {}
        self.settings: Settings | None = None  # given to each index: the decisions passes share read it
        self.role_globs: list[tuple[Path, str, str]] = []  # the configuration's [roles]
        self.plan: list[tuple[tuple[int, ...], str, bool]] | None = None  # the variants, from the files as read
        # What the facts layer worked out in this run (`facts.run_cache`): a service that a
        # round left as it was is not read again in the next, nor a file of the repository.
        self.run_cache: dict[str, Any] = {}

    def docker_doc(self, path: Path) -> dockerfile.DockerfileDoc | None:
        """The parsed Dockerfile at `path` in its current text, if it has been parsed."""
        return self._docker_cache.get((path, self.texts.get(path, "")))

    def load(self) -> None:
        """Read the compose files (any failure stops the stack), `.env` and the Dockerfiles."""
        for path in self.stack.compose:
            try:
                s = src.read(path)
            except InputError as e:
                raise _Failed(e.problem(str(path))) from None
            self.originals[path] = s
            self.texts[path] = s.text
        env_path = self.stack.folder / ".env"
        if env_path.is_file():
            from e2i_fix.facts.image import Values  # which values are one install's (untracked)

            try:
                self.env = Values(proj.parse_env(src.read(env_path).text), env_path)
            except InputError:
                pass  # interpolation values are a nicety; a broken .env is Compose's to report

    def unwritable(self, path: Path) -> str | None:
        """Why an edit of `path` cannot be written, or None. Asked once per path."""
        if path not in self._unwritable:
            why = None
            nested = self.stack.nested_repository(path) if self.stack.writable(path) else None
            if not self.stack.writable(path):
                why = f"{path} is outside the project"
            elif nested is not None:
                why = f"{path} belongs to another git repository ({nested.name}/, a submodule or a clone of its own)"
            elif path not in self.originals and os.path.lexists(path):
                why = f"{path} already exists"  # a new file is never written over one
            self._unwritable[path] = why
        return self._unwritable[path]

    def source(self, path: Path) -> src.Source:
        if path not in self.originals:
            self.originals[path] = src.new_file(path)
            self.texts[path] = ""
        return self.originals[path]

    def current(self, path: Path) -> src.Source:
        s = self.source(path)
        text = self.texts[path]
        return s if text == s.text else src.Source(s.path, s.raw, text, s.bom, s.newline, s.mode)

    def compose_doc(self, path: Path) -> ComposeDoc:
        key = (path, self.texts[path])
        doc = self._compose_cache.get(key)
        if doc is None:
            doc = proj.parse_compose(self.current(path), readonly=path in self.stack.context)
            if doc.readonly:
                self.stack.context.add(path)  # a file the parse will not edit: nobody's edits land there
            self._compose_cache[key] = doc
        return doc

    def project(self, problems: list[Problem]) -> proj.Project:
        docs = []
        for p in self.stack.compose:
            try:
                docs.append(self.compose_doc(p))
            except InputError as e:
                raise _Failed(e.problem(str(p))) from None
        roles = ["base", *["override"] * (len(docs) - 1)]
        folders = [self.stack.folder] * len(docs)
        refs: dict[int, list[tuple[proj.Ref, tuple[int, ...]]]] = {}
        where: dict[Path, int] = {p: i for i, p in enumerate(self.stack.compose)}
        i = 0
        while i < len(docs):  # the list grows as included and extended files are found
            for ref in proj.references(docs[i].value, folders[i]):
                idx = []
                for path in ref.paths:
                    if path not in where:
                        doc = self._referenced(path, ref.kind == "extends", problems)
                        if doc is None:
                            continue
                        where[path] = len(docs)
                        docs.append(doc)
                        roles.append(ref.kind)
                        folders.append(ref.project_dir)
                    elif roles[where[path]] == "extends" and ref.kind == "include":
                        roles[where[path]] = "include"  # included somewhere: its services are the stack's
                    idx.append(where[path])
                refs.setdefault(i, []).append((ref, tuple(idx)))
            i += 1
        self.compose_paths = set(where)
        dfs: dict[Path, dockerfile.DockerfileDoc | None] = {}
        for path in sorted(proj.dockerfile_paths(docs, folders, self.env)):
            dfs[path] = self._dockerfile(path, problems)
        project = proj.Project(self.stack, docs, dfs, self.env, roles, refs, self.plan, self.role_globs)
        project.settings = self.settings
        project.__dict__["run_cache"] = self.run_cache
        if self.plan is None:
            self.plan = project.plan = proj.plan_variants(project)
        project.created = frozenset(p for p, s in self.originals.items() if not s.exists and self.texts[p])
        return project

    def _referenced(self, path: Path, context: bool, problems: list[Problem]) -> ComposeDoc | None:
        """A file an `include:` or `extends: file:` names, read and parsed once per text. One
        that only `extends` reaches is read for context: its services are templates."""
        if path not in self.originals:
            if not self._read(path, problems):
                return None
            if context:
                self.stack.context.add(path)
        try:
            return self.compose_doc(path)
        except InputError as e:
            problems.append(e.problem(str(path)))
            return None

    def _read(self, path: Path, problems: list[Problem]) -> bool:
        """Read a file the stack reaches into the workspace; a problem if it cannot be."""
        try:
            s = src.read(path)
        except InputError as e:
            problems.append(e.problem(str(path)))
            return False
        self.originals[path] = s
        self.texts[path] = s.text
        return True

    def _dockerfile(self, path: Path, problems: list[Problem]) -> dockerfile.DockerfileDoc | None:
        self.dockerfile_paths.add(path)
        if path not in self.originals:
            if not path.is_file() or not self._read(path, problems):
                return None
        key = (path, self.texts[path])
        doc = self._docker_cache.get(key)
        if doc is None:
            try:
                from e2i_fix import dockerfile  # a stack without Dockerfiles never loads it

                doc = dockerfile.parse(self.current(path))
            except InputError as e:
                problems.append(e.problem(str(path)))
                return None
            self._docker_cache[key] = doc
        return doc


class _Failed(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


# Verification (`verify.verify`): the variants the result breaks, and where.
Verify = Callable[["Result"], Sequence["Failure"]]


def run(stack: proj.Stack, passes: Sequence[Pass], settings: Settings, verify: Verify | None = None) -> Result:
    """Fix one stack in memory. Never raises for bad input: problems are in the result.

    With `verify`, the result is checked in every variant of the stack before it is returned.
    A fix that breaks one is dropped (it becomes a finding that says why) and the stack is fixed
    again without it: the rest of the stack is still fixed. Of the fixes that may have caused a
    failure (`_suspects`), the last applied is tried first, and a drop is kept only if the
    failure goes with it; when no single drop clears it, all of them go."""
    blocked: dict[tuple[object, ...], str] = {}
    result = _run(stack, passes, settings, blocked)
    if verify is None:
        return result
    try:
        failures = _check(result, verify)
        runs = 1
        while failures:
            target = failures[0]
            suspects = [f for f in _suspects(result, target) if _key(f) not in blocked]
            cleared = False
            for fix in suspects[:3]:  # the likeliest few, one at a time
                if runs >= MAX_RUNS:
                    break
                trial = {**blocked, _key(fix): target.reason()}
                got = _run(stack, passes, settings, trial)
                found = _check(got, verify)
                runs += 1
                if not any(f[:4] == target[:4] for f in found):
                    blocked, result, failures, cleared = trial, got, found, True
                    break
            if cleared:
                continue
            if not suspects or runs >= MAX_RUNS:
                result.findings.append(Fix("verify", f"verification failed: {target.reason()}; nothing written",
                                           Path(str(stack)), safety=Safety.DISPLAY_ONLY))
                return _unchanged(result)
            blocked.update((_key(f), target.reason()) for f in suspects)
            result = _run(stack, passes, settings, blocked)
            failures = _check(result, verify)
            runs += 1
    except _VerifyError as e:
        result.problems.append(Problem(str(stack), f"internal error in verification: {e}; nothing written"))
        return _unchanged(result)
    return result


class _VerifyError(Exception):
    """A bug in verification: the stack is left as it is, and the run says so."""


MAX_RUNS = 12  # runs of the engine on one stack, when verification drops fixes


def _check(result: Result, verify: Verify) -> list[Failure]:
    if not result.changed():
        return []
    try:
        return list(verify(result))
    except Exception as e:
        if os.environ.get("E2I_FIX_DEBUG"):
            raise
        raise _VerifyError(f"{type(e).__name__}: {e}") from None


def _unchanged(result: Result) -> Result:
    result.texts = {p: s.text for p, s in result.originals.items()}
    result.applied = []
    return result


def _key(fix: Fix) -> tuple[object, ...]:
    """What makes a fix the same fix when the engine runs again: its pass and message, the
    files it edits, what it writes there and the places it changes (not offsets: they move)."""
    return (fix.pass_id, fix.message, tuple(sorted({str(e.path) for e in fix.edits})),
            tuple(sorted(e.text for e in fix.edits)), tuple(sorted(fix.changes)))


def _suspects(result: Result, failure: Failure) -> list[Fix]:
    """The applied fixes that may have caused `failure`, the last applied first: those that
    declared a change at or around its place (for a change none declared, those that change
    the same key of any service), else those that changed that service, else those that
    edited the variant's files, else all."""
    place = tuple(str(p) for p in failure.path)

    def near(c: tuple[str, ...]) -> bool:
        n = min(len(c), len(place))
        return c[:n] == place[:n]

    applied = result.applied
    # A change no fix declared comes from an edit that reached further than its fix said (a
    # block that other services merge): first the fixes that change that key of any service.
    same_key = [f for f in applied if failure.undeclared and len(place) >= 3 and place[0] == "services"
                and any(len(c) >= 3 and c[0] == "services" and c[2] == place[2] for c in f.changes)]
    tiers = [
        [] if failure.undeclared else [f for f in applied if any(near(c) for c in f.changes)],
        same_key,
        [f for f in applied if len(place) >= 2 and any(c[:2] == place[:2] for c in f.changes)],
        [f for f in applied if any(e.path in failure.files for e in f.edits)],
        applied,
    ]
    found = next((t for t in tiers if t), [])
    return list({_key(f): f for f in reversed(found)}.values())


def _run(stack: proj.Stack, passes: Sequence[Pass], settings: Settings,
         blocked: dict[tuple[object, ...], str]) -> Result:
    result = Result(stack)
    ws = Workspace(stack)
    ws.settings = settings
    ws.role_globs = settings.roles
    try:
        ws.load()
        project = ws.project(result.problems)
    except _Failed as f:
        result.problems.append(f.problem)
        return result
    result.before = project
    notices = [Fix("input", d.notice[0], d.path, d.notice[1], d.notice[2], safety=Safety.DISPLAY_ONLY)
               for d in project.docs if d.notice]
    disabled: set[str] = set()
    # A stack that builds nothing gives the passes that read only what is built nothing to do:
    # they are not run (nor imported). No pass adds a `build:`, so this holds for every round.
    passes = [p for p in passes if settings.selected(p.ID)
              and (getattr(p, "NEEDS", None) != "build" or project.builds)]
    pending = passes
    last: dict[str, list[Fix]] = {}  # what each pass proposed when it last ran
    suppressions = suppress.Suppressions(settings)
    for round_no in range(MAX_ROUNDS):
        result.snapshots.append(dict(ws.texts))
        for p in pending:
            if p.ID not in disabled:
                proposed_now = suppressions.keep(_propose(p, project, settings, result, disabled), ws.texts)
                serves = getattr(p, "ROLES", None)
                kept = [f for f in proposed_now if serves is None or _serves(f, serves, project)]
                last[p.ID] = [_blocked(_bounded(g, ws), blocked) for g in (_scoped(f, ws) for f in kept) if g]
                result.round_of.update((id(f), round_no) for f in last[p.ID])
        ran = {p.ID for p in pending}
        proposed = [f for p in passes for f in last.get(p.ID, []) if p.ID in ran and p.ID not in disabled]
        wanted = [f for f in proposed if f.applicable and settings.allows(f)]
        accepted = _compatible(wanted, ws)
        if accepted:
            bad = _apply(ws, accepted)
            if bad:
                for pass_id, err in bad.items():
                    disabled.add(pass_id)
                    result.problems.append(err._replace(message=f"[{pass_id}] {err.message}"))
                accepted = [] if "engine" in bad else [f for f in accepted if f.pass_id not in bad]
                if accepted and _apply(ws, accepted):  # pragma: no cover - each pass alone parsed
                    accepted = []
        if accepted:
            result.applied.extend(accepted)
            result.spans.append(ws.last_spans)
            project = ws.project(result.problems)
            project.unsafe_changes = frozenset(c for f in result.applied if f.safety is Safety.UNSAFE for c in f.changes)
        pending = _next_round(passes, wanted, accepted, disabled)
        if not pending:
            result.findings = notices + [f for p in passes if p.ID not in disabled for f in last.get(p.ID, [])
                                         if not (f.applicable and settings.allows(f))]
            break
    else:
        ids = sorted({p.ID for p in pending})
        result.problems.append(Problem(str(stack), f"fixes did not settle after {MAX_ROUNDS} rounds: {', '.join(ids)}"))
        ws.texts = {p: s.text for p, s in ws.originals.items()}
        result.applied = []
    result.findings = grouped(result.findings, result.round_of)
    result.originals = ws.originals
    result.texts = ws.texts
    result.after = project
    suppressions.editable = {p for p in ws.originals if p not in stack.context
                             and (stack.only is None or p in stack.only or p not in ws.compose_paths)}
    result.findings.extend(suppressions.unused({p: s.text for p, s in ws.originals.items()}))
    return result


def _serves(fix: Fix, roles: frozenset[str], project: proj.Project) -> bool:
    """Whether the file `fix` is about (where it is reported: the service's home, the
    Dockerfile) has a role the pass serves (`fileroles`): a pass of limits or hardening leaves
    development files alone. Edits it makes elsewhere to keep another file's meaning (an
    override that keeps its own user) go with it."""
    role = project.role_of(as_path(fix.path))
    return role is None or role in roles


def _scoped(fix: Fix, ws: Workspace) -> Fix | None:
    """With compose files named on the command line (`Stack.only`), what a run on the folder
    would do to the named files: a fix about or in another compose file of the stack is left
    out; one that needs both is reported, not applied."""
    only = ws.stack.only
    if only is None:
        return fix
    places = {e.path for e in fix.edits} | {as_path(fix.path)}
    others = sorted(p for p in places if p in ws.compose_paths and p not in only)
    if not others:
        return fix
    if not any(p in only for p in places):
        return None
    names = ", ".join(p.name for p in others)
    return fix._replace(message=f"{fix.message} (not applied: it also edits {names}, which was not named)",
                        edits=(), safety=Safety.DISPLAY_ONLY, changes=())


def _blocked(fix: Fix, blocked: dict[tuple[object, ...], str]) -> Fix:
    """`fix`, or a finding in its place when verification dropped it on an earlier run."""
    why = blocked.get(_key(fix)) if blocked and fix.edits else None
    if why is None:
        return fix
    return fix._replace(message=f"{fix.message} (not applied: {why})", edits=(), safety=Safety.DISPLAY_ONLY,
                        changes=())


def grouped(findings: list[Fix], round_of: dict[int, int] | None = None) -> list[Fix]:
    """Findings that say the same of several services of one file as one finding, at the first
    one's place: a stack of thirty services the tool has no facts for gets one line that names
    them, not thirty that repeat it. `round_of` (the round that proposed each finding, by
    identity) learns the new finding's round, so its place is found in the file as read."""
    buckets: dict[tuple[str, Path, str], list[Fix]] = {}
    for f in findings:
        if f.group is not None and not f.edits:
            buckets.setdefault((f.pass_id, as_path(f.path), f.group[0]), []).append(f)
    if not any(len(b) > 1 for b in buckets.values()):
        return findings
    out: list[Fix] = []
    for f in findings:
        bucket = buckets.get((f.pass_id, as_path(f.path), f.group[0])) if f.group is not None and not f.edits else None
        if bucket is None or len(bucket) == 1:
            out.append(f)
        elif f is bucket[0]:
            first = min(bucket, key=lambda x: (x.line, x.col))
            names = ", ".join(repr(x.group[2]) for x in sorted(bucket, key=lambda x: (x.line, x.col)) if x.group)
            assert f.group is not None
            merged = first._replace(message=f.group[1].format(count=len(bucket), services=names), group=None)
            if round_of is not None and id(first) in round_of:
                round_of[id(merged)] = round_of[id(first)]
            out.append(merged)
    return out


def _next_round(passes: Sequence[Pass], wanted: list[Fix], accepted: list[Fix], disabled: set[str]) -> list[Pass]:
    """The passes whose answer may differ after this round's fixes.

    A pass runs again when some of its fixes waited (they overlapped another's), or when another
    pass changed a service key it reads. A pass that declares `READS` (the service keys its
    decisions depend on) promises that its own fixes settle what they touch, and its idempotence
    tests hold it to that; a pass without `READS` runs again after every round that changed
    anything, so a pass that never settles is caught.
    """
    if not accepted:
        return []
    taken = {id(f) for f in accepted}
    waiting = {f.pass_id for f in wanted if id(f) not in taken}
    touched: dict[str, set[str]] = {}
    for f in accepted:
        keys = touched.setdefault(f.pass_id, set())
        for path in f.changes:
            keys.add(path[2] if len(path) > 2 and path[0] == "services" else path[0] if path else "")
        if not f.changes:
            keys.add("*")
    out = []
    for p in passes:
        if p.ID in disabled:
            continue
        reads = getattr(p, "READS", None)
        others: set[str] = set().union(*(k for pid, k in touched.items() if pid != p.ID))
        if p.ID in waiting or reads is None or "*" in others or others & reads:
            out.append(p)
    return out


def _bounded(fix: Fix, ws: Workspace) -> Fix:
    """`fix`, or a finding in its place when it would write outside the project (the boundary
    of the path given on the command line) or create a file that already exists."""
    for e in fix.edits:
        why = ws.unwritable(e.path)
        if why:
            return fix._replace(message=f"{fix.message} (not applied: {why})", edits=(),
                                safety=Safety.DISPLAY_ONLY, changes=())
    return fix


def _propose(p: Pass, project: proj.Project, settings: Settings, result: Result, disabled: set[str]) -> list[Fix]:
    try:
        return list(p.run(project, settings.options(p.ID)))
    except Exception as e:  # a bug in one pass must not cost the user the other passes
        if os.environ.get("E2I_FIX_DEBUG"):
            raise
        disabled.add(p.ID)
        result.problems.append(Problem(str(result.stack), f"internal error in pass {p.ID}: {type(e).__name__}: {e} (set E2I_FIX_DEBUG=1 for a traceback)"))
        return []


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Two spans clash when they share a character, or one inserts strictly inside the other.
    Two insertions at one point do not: both go, in order."""
    (a0, a1), (b0, b1) = a, b
    if a0 == a1 and b0 == b1:
        return False
    if a0 == a1:
        return b0 < a0 < b1
    if b0 == b1:
        return a0 < b0 < a1
    return a0 < b1 and b0 < a1


def _compatible(fixes: list[Fix], ws: Workspace) -> list[Fix]:
    taken: dict[Edit, None] = {}
    spans: dict[Path, list[tuple[int, int]]] = {}  # sorted, per file
    longest: dict[Path, int] = {}
    out = []

    def clashes(e: Edit) -> bool:
        lst = spans.get(e.path)
        if not lst:
            return False
        # Only spans starting at or before e.end, and not ending before e.start, can clash.
        i = bisect.bisect_right(lst, (e.end, e.end + 1)) - 1
        floor = e.start - longest[e.path]
        while i >= 0 and lst[i][0] >= floor:
            if _overlaps((e.start, e.end), lst[i]):
                return True
            i -= 1
        return False

    for fix in fixes:
        if any(e.path in ws.stack.context for e in fix.edits):
            continue
        if any(_unsafe_place(e, ws) for e in fix.edits):
            continue
        # Fixes may share an edit (one anchor block for many services): it is applied once.
        if any(clashes(e) for e in fix.edits if e not in taken):
            continue  # the next round sees the result and may propose it again
        for e in fix.edits:
            if e not in taken:
                taken[e] = None
                bisect.insort(spans.setdefault(e.path, []), (e.start, e.end))
                longest[e.path] = max(longest.get(e.path, 0), e.end - e.start)
        out.append(fix)
    return out


def _unsafe_place(e: Edit, ws: Workspace) -> bool:
    """An edit no pass may make: inside a heredoc body (its bytes are a script or a file's
    content), or one that creates a file which exists (new files never overwrite)."""
    if e.path not in ws.originals:
        return os.path.lexists(e.path)
    doc = ws.docker_doc(e.path) if e.path in ws.dockerfile_paths else None
    if doc is None:
        return False
    return doc.in_heredoc(e.start) or (e.end > e.start and doc.in_heredoc(e.end - 1))


def splice(text: str, edits: list[tuple[int, Edit]], newline: str,
           spans: list[tuple[int, int, int]] | None = None) -> str:
    """Apply non-overlapping edits, in one pass over the text. Insertions at one point go
    deepest-indented first (that point ends every nested block, so a shallower entry placed
    first would capture the deeper one), then in the order they were accepted in. `spans`
    collects (start, end, new length), ascending."""
    pieces: list[str] = []
    pos = 0
    for _, e in sorted(edits, key=lambda t: (t[1].start, t[1].end, -_depth(t[1]), t[0])):
        new = e.text if newline == "\n" else e.text.replace("\r\n", "\n").replace("\n", newline)
        pieces += (text[pos : e.start], new)
        pos = e.end
        if spans is not None:
            spans.append((e.start, e.end, len(new)))
    pieces.append(text[pos:])
    return "".join(pieces)


def _depth(e: Edit) -> int:
    if e.start != e.end:
        return 0
    line = e.text.lstrip("\r\n")
    return len(line) - len(line.lstrip(" "))


def _compose_parser(path: Path) -> Callable[[str], object]:
    def reparse(text: str) -> object:
        return proj.parse_compose(src.Source(path, b"", text, False, "\n"))

    return reparse


def _apply(ws: Workspace, fixes: list[Fix]) -> dict[str, Problem]:
    """Splice `fixes` into the workspace; return the passes whose edits broke a compose file."""
    by_path: dict[Path, list[tuple[int, Edit]]] = {}
    for order, e in enumerate(dict.fromkeys(e for f in fixes for e in f.edits)):
        by_path.setdefault(e.path, []).append((order, e))
    before = dict(ws.texts)
    ws.last_spans = {}
    for path, edits in by_path.items():
        s = ws.source(path)
        spans = ws.last_spans.setdefault(path, [])
        ws.texts[path] = splice(before[path] if path in before else ws.texts[path], edits, s.newline, spans)
    bad: dict[str, Problem] = {}
    for path in by_path:
        if path in ws.compose_paths:
            reparse: Callable[[str], object] = _compose_parser(path)
            what = "invalid YAML"
        elif path in ws.dockerfile_paths:
            from e2i_fix import dockerfile

            reparse = dockerfile.check
            what = "a Dockerfile BuildKit rejects"
        else:
            continue
        try:
            if path in ws.compose_paths:
                ws.compose_doc(path)
            else:
                reparse(ws.texts[path])
        except InputError as err:
            # Find the pass to blame: apply each pass's edits alone.
            for pass_id in dict.fromkeys(f.pass_id for f in fixes):
                mine = list(enumerate(dict.fromkeys(
                    e for f in fixes if f.pass_id == pass_id for e in f.edits if e.path == path)))
                if not mine:
                    continue
                trial = splice(before[path], mine, ws.source(path).newline)
                try:
                    reparse(trial)
                except InputError as e2:
                    bad[pass_id] = e2.problem(str(path))._replace(message=f"produced {what}, its fixes were dropped: {e2.message}")
            if not bad:
                bad["engine"] = err.problem(str(path))._replace(message=f"produced {what}: {err.message}")
    if bad:
        ws.texts = before
    return bad
