"""The command line's grammar (argparse), imported only when a command line needs it: the
usual ones (`--apply FILE...`, `--check`, `--version`) are read by `_main` without it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from e2i_fix import __version__


class _Ids(argparse.Action):
    """`--select a,b --select c`: one set of ids."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        got = getattr(namespace, self.dest) or set()
        got.update(i.strip() for i in str(values).split(",") if i.strip())
        setattr(namespace, self.dest, got)


class _Help(argparse.HelpFormatter):
    """argparse's help, without its `shutil` import on every start (2 ms): the width comes
    from `COLUMNS` or the terminal, as shutil would find it."""

    def __init__(self, prog: str) -> None:
        cols = os.environ.get("COLUMNS", "")
        try:
            width = int(cols) if cols.isdigit() else os.get_terminal_size(1).columns
        except OSError:  # not a terminal
            width = 80
        super().__init__(prog, width=max(width, 40) - 2)


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"not a positive number: {value!r}")
    return int(value)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="e2i-fix", allow_abbrev=False, formatter_class=_Help,
        description="Harden Docker Compose stacks: find the stacks under PATH (default: .) and fix them.")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="a folder to search for stacks, or a compose file (default: .)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", dest="mode", action="store_const", const="dry-run",
                      help="Print a unified diff of the fixes; write nothing (default).")
    mode.add_argument("--apply", dest="mode", action="store_const", const="apply", help="Rewrite the files in place.")
    mode.add_argument("--check", dest="mode", action="store_const", const="check",
                      help="Print findings; write nothing; exit 1 if any.")
    p.add_argument("--select", action=_Ids, metavar="ID[,ID...]", help="Run only these passes.")
    p.add_argument("--ignore", action=_Ids, metavar="ID[,ID...]", help="Skip these passes.")
    p.add_argument("--unsafe-fixes", action="store_true", help="Also apply fixes marked unsafe.")
    p.add_argument("--format", dest="fmt", choices=["text", "json", "sarif", "github"], default="text",
                   help="Output format: text, json, sarif (GitHub code scanning) or github (workflow annotations).")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                   help="Colour diffs: auto (on a terminal, unless NO_COLOR; always with FORCE_COLOR).")
    p.add_argument("--show-fixes", action="store_true", help="List the fixes by file and pass (dry-run, apply).")
    p.add_argument("--statistics", action="store_true", help="Count the findings by pass instead of listing them.")
    p.add_argument("--list-passes", action="store_true", help="List the passes and exit.")
    p.add_argument("--explain", metavar="ID", help="Print a pass's documentation and exit.")
    p.add_argument("--config", type=Path, metavar="PATH",
                   help="Read this configuration file (a .e2i-fix.toml, or a pyproject.toml's [tool.e2i-fix]) "
                        "for every stack instead of looking for one.")
    p.add_argument("--no-config", action="store_true", help="Ignore .e2i-fix.toml and [tool.e2i-fix].")
    p.add_argument("--usage", type=Path, metavar="FILE",
                   help="deploy-limits: size services from `docker stats --no-stream --format json` output.")
    p.add_argument("--host-memory", metavar="SIZE", help="deploy-limits: the host's memory, e.g. 16G.")
    p.add_argument("--host-cpus", metavar="N", help="deploy-limits: the host's CPUs.")
    p.add_argument("--inspect", type=Path, metavar="FILE", action="append",
                   help="`docker image inspect` output for images the stacks use: what it says (user, entrypoint, "
                        "command, environment, ports, health check, volumes) outranks the built-in image table.")
    p.add_argument("--show-config", action="store_true",
                   help="Print the configuration that applies to PATH (default: .), and where each value came from.")
    p.add_argument("--jobs", "-j", type=_positive, metavar="N",
                   help="Processes for a run over many stacks (default: one per CPU; --apply always uses one).")
    p.add_argument("--version", action="version", version=f"e2i-fix {__version__}")
    return p
