"""The command line: find stacks, run the engine on each, show or write the result.

Exit codes: 0 nothing to fix, 1 fixes pending (dry-run, check) or files rewritten (apply),
2 an error (after every other stack was still processed).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix import __version__
from e2i_fix.records import NamedTuple

if TYPE_CHECKING:
    import argparse

    from e2i_fix.config import Found, Settings
    from e2i_fix.engine import Result
    from e2i_fix.errors import InputError, Problem
    from e2i_fix.fix import Fix
    from e2i_fix.output import Captured, Reporter
    from e2i_fix.project import Discovered


def _parser() -> argparse.ArgumentParser:
    from e2i_fix._args import parser

    return parser()


# The command lines read without argparse (its import, and building the parser, are a tenth of
# a pre-commit run): flags that take no value, and paths. Anything else goes to argparse.
_FLAGS = {"--dry-run": ("mode", "dry-run"), "--apply": ("mode", "apply"), "--check": ("mode", "check"),
          "--unsafe-fixes": ("unsafe_fixes", True), "--show-fixes": ("show_fixes", True),
          "--statistics": ("statistics", True), "--no-config": ("no_config", True)}
# What argparse gives an option that is not given (a test holds this to the parser's own).
DEFAULTS: dict[str, Any] = {
    "paths": [], "mode": None, "select": None, "ignore": None, "unsafe_fixes": False, "fmt": "text", "color": "auto",
    "show_fixes": False, "statistics": False, "list_passes": False, "explain": None, "config": None,
    "no_config": False, "usage": None, "host_memory": None, "host_cpus": None, "inspect": None,
    "show_config": False, "jobs": None}


def _plain(argv: list[str]) -> Any:
    """`argv` read as argparse would, where it holds only flags without a value (at most one
    mode) and paths; else None."""
    got = dict(DEFAULTS, paths=[])
    modes = 0
    for a in argv:
        if a.startswith("-"):
            flag = _FLAGS.get(a)
            if flag is None:
                return None
            modes += flag[0] == "mode"
            got[flag[0]] = flag[1]
        else:
            got["paths"].append(Path(a))
    if modes > 1:
        return None  # argparse says which modes exclude one another
    from types import SimpleNamespace

    return SimpleNamespace(**got)


def _cli(args: Any) -> int:  # argparse.Namespace, or `_plain`'s
    from e2i_fix.passes import registry

    passes = registry()
    if args.list_passes:
        for pid, p in passes.items():
            print(f"{pid:<22} {p.SAFETY.name.lower().replace('_', '-'):<12} {p.SUMMARY}")
        return 0
    explain: str | None = args.explain
    if explain is not None:
        if explain not in passes:
            print(f"e2i-fix: unknown pass {explain!r} (see --list-passes)", file=sys.stderr)
            return 2
        print(f"# {explain}\n\n{(passes[explain].__doc__ or '').split(chr(10), 1)[-1].strip()}")
        return 0
    from e2i_fix.config import Settings
    from e2i_fix.errors import InputError

    select: set[str] | None = args.select
    ignore: set[str] | None = args.ignore
    try:
        checker = Settings(passes)
        checker.check_ids(select or set(), "--select")
        checker.check_ids(ignore or set(), "--ignore")
    except InputError as e:
        print(f"e2i-fix: {e.message}", file=sys.stderr)
        return 2
    # `all` names every pass: `--ignore all` runs the pipeline with no pass at all.
    if select and "all" in select:
        select = set(passes)
    if ignore and "all" in ignore:
        ignore = set(passes)
    settings = Settings(passes, select, ignore or set(), args.unsafe_fixes)
    flags = {k: v for k, v in (("usage", args.usage and str(args.usage.resolve())), ("host-memory", args.host_memory),
                               ("host-cpus", args.host_cpus)) if v}
    if flags:
        settings.flag_options["deploy-limits"] = flags
        if args.usage:  # read once, before any stack: a bad file is the run's error
            try:
                passes["deploy-limits"].read_usage(str(args.usage))  # type: ignore[attr-defined]
            except InputError as e:
                print(e.problem(str(args.usage)), file=sys.stderr)
                return 2
    if args.inspect:  # read before any stack: a bad file is the run's error
        from e2i_fix.facts import image as imagedata

        inspected: dict[str, Any] = {}
        for path in args.inspect:
            try:
                inspected.update(imagedata.read_inspect(str(path)))
            except InputError as e:
                print(e.problem(str(path)), file=sys.stderr)
                return 2
        imagedata.use_inspect(inspected)
    for key, flag in (("select", args.select), ("ignore", args.ignore), ("unsafe-fixes", args.unsafe_fixes)):
        if flag:
            settings.origin[key] = f"--{key}"
    paths = list(args.paths) or [Path(".")]
    fixed: tuple[Path, dict[str, Any]] | None = None
    if args.config is not None and args.no_config:
        print("e2i-fix: --config and --no-config exclude one another", file=sys.stderr)
        return 2
    try:
        if args.config is not None:
            from e2i_fix import config

            fixed = config.load(args.config)
        if args.show_config:
            return _show_config(paths[0], settings, fixed, not args.no_config)
    except InputError as e:
        print(f"e2i-fix: {e.message}", file=sys.stderr)
        return 2
    return _run(paths, args.mode or "dry-run", settings, args.fmt,
                use_config=not args.no_config, jobs=args.jobs, view=_View.from_args(args), fixed=fixed)


def _show_config(path: Path, settings: Settings, fixed: tuple[Path, dict[str, Any]] | None, use_config: bool) -> int:
    from e2i_fix import config

    folder = (path if path.is_dir() else path.parent).resolve()
    found = fixed or (config.find_config(folder) if use_config else None)
    resolved = config.apply_file(settings, *found) if found else settings
    sys.stdout.write(config.show(resolved, folder, _roles_shown(path, resolved)))
    return 0


def _roles_shown(path: Path, settings: Settings) -> list[str]:
    """Comment lines for `--show-config`: each file of the stacks under `path` with its role
    and why, and the variants each stack is run as."""
    from e2i_fix import engine, project
    from e2i_fix.errors import Problem

    root = path if path.is_dir() else path.parent
    out = ["# files: role (why); roles come from [roles], then names, project names and folders, then contents; "
           "production by default"]
    for item in project.discover([path]):
        if isinstance(item, project.Skipped):
            out.append(f"#   {os.path.relpath(item.path, root)}: {item.message}")
            continue
        if not isinstance(item, project.Stack):
            continue
        ws = engine.Workspace(item)
        ws.role_globs = settings.roles
        problems: list[Problem] = []
        try:
            ws.load()
            p = ws.project(problems)
        except engine._Failed:
            continue  # a stack that does not read: the run says why
        for i, doc in enumerate(p.docs):
            role = p.file_role(i)
            out.append(f"#   {os.path.relpath(doc.path, root)}: {role.name} ({role.why})")
        for df in sorted(p.dockerfiles):
            out.append(f"#   {os.path.relpath(df, root)}: {p.role_of(df)} (the variants whose services build it)")
        for v in p.variants():
            out.append(f"#   variant {v.kind}: {p.variant_name(v)} ({v.role})")
    return out


class _View(NamedTuple):
    """How the text output looks."""

    color: bool = False
    statistics: bool = False
    show_fixes: bool = False
    progress: bool = False

    @classmethod
    def from_args(cls, args: Any) -> _View:
        from e2i_fix.output import use_color

        return cls(use_color(args.color, os.environ, _isatty(sys.stdout)), args.statistics, args.show_fixes,
                   args.fmt == "text" and _isatty(sys.stderr))


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


PROGRESS_MIN = 20  # stacks: fewer finish before a bar would be worth drawing


def _run(paths: list[Path], mode: str, settings: Settings, fmt: str, use_config: bool,
         jobs: int | None = None, view: _View = _View(), fixed: tuple[Path, dict[str, Any]] | None = None) -> int:
    from e2i_fix import output, project, workers

    out = output.Reporter(fmt, mode, color=view.color, statistics=view.statistics, show_fixes=view.show_fixes)
    # Node trees are many small acyclic objects: the cyclic collector would rescan them over and
    # over while they are built (a third of the run time). Collect now and then between stacks.
    gc.disable()
    items = list(project.discover(paths))
    one = _Stacks(items, mode, settings, fmt, use_config, view, fixed)
    n = workers.count(jobs, mode, len(items))
    bar = view.progress and len(items) >= PROGRESS_MIN
    outcomes: Iterator[tuple[int, Captured]]
    if n == 1:
        outcomes = (one(i) for i in range(len(items)))  # each printed as soon as it is done
    else:
        costs = [sum(_size(p) for p in item.compose) if isinstance(item, project.Stack) else 0 for item in items]
        shares = workers.share(costs, n)
        # What every stack needs, imported once here rather than once in each worker.
        from e2i_fix import config, engine, verify  # noqa: F401
        for p in settings.passes.values():
            getattr(p, "run")
        work: Any = one
        if bar:  # the parent's own share, scaled: the shares are balanced by cost
            work = _Paced(one, out, len(shares[0]), len(items))
        done = workers.run(work, shares)
        outcomes = (done[i] for i in range(len(items)))
        bar = False
    status = 0
    for k, (got, captured) in enumerate(outcomes, 1):
        out.replay(captured)
        status = max(status, got)
        if bar:
            out.progress(k, len(items))
    if view.progress:
        out.progress(len(items), len(items))  # gone before the summary, whatever drew it
    out.close(settings.passes)
    gc.enable()
    return status


class _Paced:
    """The work of a run shared among workers, drawing the progress bar from the parent's own
    share (the children's progress is not seen until they are done)."""

    def __init__(self, work: Any, out: Reporter, mine: int, total: int) -> None:
        self.work = work
        self.out = out
        self.mine = max(mine, 1)
        self.total = total
        self.done = 0
        self.pid = os.getpid()

    def __call__(self, i: int) -> Any:
        got = self.work(i)
        if os.getpid() == self.pid:
            self.done += 1
            self.out.progress(min(self.done * self.total // self.mine, self.total - 1), self.total)
        return got


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class _Stacks:
    """Fix the i-th item of a run: its exit status and what it printed (captured)."""

    def __init__(self, items: list[Discovered], mode: str, settings: Settings, fmt: str,
                 use_config: bool, view: _View, fixed: tuple[Path, dict[str, Any]] | None = None) -> None:
        self.items = items
        self.fixed = fixed  # --config: one file for every stack
        self.view = view
        self.mode = mode
        self.settings = settings
        self.fmt = fmt
        self.use_config = use_config
        self.cached: dict[Path, Settings | Problem] = {}  # config by folder
        self.looked: Found = {}
        self.done = 0

    def __call__(self, i: int) -> tuple[int, Captured]:
        from e2i_fix import config, engine, output, verify
        from e2i_fix.errors import InputError, Problem
        from e2i_fix.fix import Fix, Safety
        from e2i_fix.project import Skipped

        view = self.view
        out = output.Reporter(self.fmt, self.mode, capture=True, color=view.color, statistics=view.statistics)
        item = self.items[i]
        if isinstance(item, tuple) and not isinstance(item, Skipped):
            out.problem(item[1].problem(str(item[0])))
            return 2, out.captured()
        folder = item.path.parent if isinstance(item, Skipped) else item.folder
        stack_settings: Settings | Problem = self.settings
        if self.use_config:
            if folder not in self.cached:
                try:
                    found = self.fixed or config.find_config(folder, self.looked)
                    self.cached[folder] = config.apply_file(self.settings, *found) if found else self.settings
                except InputError as e:
                    self.cached[folder] = e.problem(str(folder))
            stack_settings = self.cached[folder]
        if isinstance(stack_settings, Problem):
            out.problem(stack_settings)
            return 2, out.captured()
        if isinstance(item, Skipped):  # information, never counted: a note in --check and in the other formats
            if (self.mode == "check" or self.fmt != "text") and not stack_settings.excluded(item.path):
                out.fix(Fix("input", item.message, item.path, safety=Safety.DISPLAY_ONLY, info=True), fixable=False)
            return 0, out.captured()
        stack = item
        if stack_settings.exclude and all(stack_settings.excluded(p) for p in stack.compose):
            return 0, out.captured()
        result = engine.run(stack, list(self.settings.passes.values()), stack_settings, verify.verify)
        status = _finish(result, self.mode, out, stack_settings)
        self.done += 1
        if self.done % 200 == 0:
            gc.collect()
        return status, out.captured()


def _finish(result: Result, mode: str, out: Reporter, settings: Settings | None = None) -> int:
    from e2i_fix import source
    from e2i_fix.errors import InputError

    status = 2 if result.problems else 0
    for p in result.problems:
        out.problem(p)

    def where(fix: Fix, left: bool = False) -> Fix:
        # Locations name the file as it is on disk when the run ends: the original, except for
        # what is left to do after --apply, which is found in the rewritten text.
        if left and mode == "apply":
            return fix
        line, col = result.original_location(fix)
        return fix._replace(line=line, col=col)

    # Edits and end positions are given in the files as read; after --apply they are gone. Text
    # output shows neither: no need to work them out.
    located = out.fmt != "text"
    sources = None if mode == "apply" or not located else result.originals
    for fix in result.findings:
        if fix.error:  # a finding that means the run itself is wrong (a bad option value)
            out.fix(where(fix, left=True), fixable=False, quiet=True)
            status = 2
    findings = [f for f in result.findings if not f.error]
    changed = result.changed()
    for fix in result.applied:
        out.fix(where(fix), fixable=True, edits=result.original_edits(fix), sources=result.originals if located else None)
    for fix in findings:
        if fix.info and mode != "check":
            continue  # information (the resource totals...) is part of what --check reports
        hidden = fix.applicable and settings is not None and not settings.allows(fix)
        out.fix(where(fix, left=True), fixable=False, edits=result.original_edits(fix) if sources else None,
                sources=sources, quiet=mode != "check", hidden=hidden)
    if mode == "check":
        for path in changed:
            out.changed(path)
        if result.applied or any(not f.info for f in findings):  # information is nothing to fix
            status = max(status, 1)
        return status
    for path in changed:
        orig = result.originals[path]
        new = result.texts[path]
        if mode == "dry-run":
            out.diff(path, orig, new, result.regions(path))
            out.changed(path)
        else:
            try:
                source.write(orig, orig.encode(new))
                out.wrote(path)
                out.changed(path)
            except InputError as e:
                out.problem(e.problem(str(path)))
                status = 2
    if changed:
        status = max(status, 1)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given == ["--version"]:
        print(f"e2i-fix {__version__}")
        return 0
    args = _plain(given)
    if args is None:
        try:
            args = _parser().parse_intermixed_args(given)
        except SystemExit as e:  # --help, --version, or a usage error (already printed)
            return e.code if isinstance(e.code, int) else 2
    try:
        return _cli(args)
    except KeyboardInterrupt:  # nothing is half-written: every write is one atomic rename
        print("e2i-fix: interrupted", file=sys.stderr)
        return 2


def entry() -> None:
    # The console script: nothing of the run is garbage until it ends (`_run` collects between
    # stacks of a long run), and the process ends without a teardown.
    gc.disable()
    try:
        code = main()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `e2i-fix | head`: the reader left; that is no error of ours
        code = 1
    # Everything is written: skip the interpreter's teardown, which would free every object
    # one by one only for the process to end (a measurable share of a pre-commit run).
    os._exit(code)
