"""The command line: find stacks, run the engine on each, show or write the result.

Exit codes: 0 nothing to fix, 1 fixes pending (dry-run, check) or files rewritten (apply),
2 an error (after every other stack was still processed).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from e2i_fix import __version__

if TYPE_CHECKING:
    from e2i_fix.config import Settings
    from e2i_fix.engine import Result
    from e2i_fix.fix import Fix
    from e2i_fix.output import Reporter


def _ids(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> set[str] | None:
    if not value:
        return None
    return {i.strip() for v in value for i in v.split(",") if i.strip()}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--dry-run", "mode", flag_value="dry-run", default=True, help="Print a unified diff of the fixes; write nothing (default).")
@click.option("--apply", "mode", flag_value="apply", help="Rewrite the files in place.")
@click.option("--check", "mode", flag_value="check", help="Print findings; write nothing; exit 1 if any.")
@click.option("--select", multiple=True, callback=_ids, metavar="ID[,ID...]", help="Run only these passes.")
@click.option("--ignore", multiple=True, callback=_ids, metavar="ID[,ID...]", help="Skip these passes.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply fixes marked unsafe.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Output format.")
@click.option("--list-passes", is_flag=True, help="List the passes and exit.")
@click.option("--explain", metavar="ID", help="Print a pass's documentation and exit.")
@click.option("--no-config", is_flag=True, help="Ignore .e2i-fix.toml and [tool.e2i-fix].")
@click.version_option(__version__, "--version", prog_name="e2i-fix", message="%(prog)s %(version)s")
def cli(paths: tuple[Path, ...], mode: str, select: set[str] | None, ignore: set[str] | None,
        unsafe_fixes: bool, fmt: str, list_passes: bool, explain: str | None, no_config: bool) -> int:
    """Harden Docker Compose stacks: find the stacks under PATH (default: .) and fix them."""
    from e2i_fix.passes import registry

    passes = registry()
    if list_passes:
        for pid, p in passes.items():
            click.echo(f"{pid:<22} {p.SAFETY.name.lower():<8} {p.SUMMARY}")
        return 0
    if explain is not None:
        if explain not in passes:
            click.echo(f"e2i-fix: unknown pass {explain!r} (see --list-passes)", err=True)
            return 2
        click.echo(f"# {explain}\n\n{(passes[explain].__doc__ or '').split(chr(10), 1)[-1].strip()}")
        return 0
    from e2i_fix.config import Settings
    from e2i_fix.errors import InputError

    try:
        checker = Settings(passes)
        checker.check_ids(select or set(), "--select")
        checker.check_ids(ignore or set(), "--ignore")
    except InputError as e:
        click.echo(f"e2i-fix: {e.message}", err=True)
        return 2
    # `all` names every pass: `--ignore all` runs the pipeline with no pass at all.
    if select and "all" in select:
        select = set(passes)
    if ignore and "all" in ignore:
        ignore = set(passes)
    settings = Settings(passes, select, ignore or set(), unsafe_fixes)
    return _run(list(paths) or [Path(".")], mode, settings, fmt, use_config=not no_config)


def _run(paths: list[Path], mode: str, settings: Settings, fmt: str, use_config: bool) -> int:
    from e2i_fix import config, engine, output, project, verify
    from e2i_fix.errors import InputError, Problem

    out = output.Reporter(fmt, mode)
    status = 0
    # Node trees are many small acyclic objects: the cyclic collector would rescan them over and
    # over while they are built (a third of the run time). Collect now and then between stacks.
    gc.disable()
    cached: dict[Path, Settings | Problem] = {}
    looked: config.Found = {}
    done = 0
    for item in project.discover(paths):
        if isinstance(item, tuple):
            out.problem(item[1].problem(str(item[0])))
            status = 2
            continue
        stack = item
        stack_settings: Settings | Problem = settings
        if use_config:
            if stack.folder not in cached:
                try:
                    found = config.find_config(stack.folder, looked)
                    cached[stack.folder] = config.apply_file(settings, *found) if found else settings
                except InputError as e:
                    cached[stack.folder] = e.problem(str(stack.folder))
            stack_settings = cached[stack.folder]
        if isinstance(stack_settings, Problem):
            out.problem(stack_settings)
            status = 2
            continue
        result = engine.run(stack, list(settings.passes.values()), stack_settings, verify.verify)
        status = max(status, _finish(result, mode, out))
        done += 1
        if done % 200 == 0:
            gc.collect()
    out.close()
    gc.enable()
    return status


def _finish(result: Result, mode: str, out: Reporter) -> int:
    import dataclasses

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
        return dataclasses.replace(fix, line=line, col=col)

    for fix in result.findings:
        if fix.error:  # a finding that means the run itself is wrong (a bad option value)
            out.finding(where(fix, left=True), fixable=False, quiet=True)
            status = 2
    findings = [f for f in result.findings if not f.error]
    changed = result.changed()
    if mode == "check":
        for fix in result.applied:
            out.finding(where(fix), fixable=True)
        for fix in findings:
            out.finding(where(fix, left=True), fixable=False)
        if result.applied or findings:
            status = max(status, 1)
        return status
    for fix in findings:
        out.finding(where(fix, left=True), fixable=False, quiet=True)
    for path in changed:
        orig = result.originals[path]
        new = result.texts[path]
        if mode == "dry-run":
            out.diff(path, orig, new, result.regions(path))
        else:
            try:
                source.write(orig, orig.encode(new))
                out.wrote(path)
            except InputError as e:
                out.problem(e.problem(str(path)))
                status = 2
    if changed:
        status = max(status, 1)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="e2i-fix", standalone_mode=False)
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.ClickException as e:
        e.show()
        return 2
    except click.Abort:
        return 2
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    try:
        code = main()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `e2i-fix | head`: the reader left; that is no error of ours
        code = 1
    # Everything is written: skip the interpreter's teardown, which would free every object
    # one by one only for the process to end (a measurable share of a pre-commit run).
    os._exit(code)
