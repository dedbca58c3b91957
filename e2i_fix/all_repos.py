"""An all-repos autofixer: e2i-fix over every repository of a fleet that has a Compose file.

    pip install 'e2i-fix[all-repos]'
    all-repos-clone -C all-repos.json
    python -m e2i_fix.all_repos -C all-repos.json --dry-run   # commit locally, push nothing
    python -m e2i_fix.all_repos -C all-repos.json             # push through the configured push

all-repos (https://github.com/asottile/all-repos) clones the repositories its `source` lists;
this module follows its autofixer API (`find_repos`, `apply_fix`, `main`): it finds the clones
with a compose file, runs `e2i-fix --apply` in a fresh clone of each, checks that a second run
has nothing left to do, and commits; all-repos' own `push` then opens the pull requests
(`github_pull_request`, `gitlab_pull_request`...) or merges (`merge_to_master`). A repository
where e2i-fix meets an error (exit 2: a file it cannot read, a stack it cannot verify) is
reported and left without a commit. A repository's own `.e2i-fix.toml` applies, as everywhere.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from all_repos.config import Config

BRANCH = "e2i-fix"
MESSAGE = (
    "Harden the Docker Compose stacks with e2i-fix\n\n"
    "Applied by `e2i-fix --apply`: each fix is a minimal edit, checked before it was written\n"
    "(the result parses, is valid Compose and changes only what the fix declares)."
)
# Compose file names, base and override (`compose.prod.yaml`); e2i-fix itself decides the rest.
PATHSPECS = tuple(f":(glob)**/{name}" for name in
                  ("compose.y*ml", "compose.*.y*ml", "docker-compose.y*ml", "docker-compose.*.y*ml"))


class FixFailed(Exception):
    """This repository is left alone (all-repos reports it and goes on with the next)."""


def find_repos(config: Config) -> set[str]:
    """The cloned repositories with a compose file anywhere in them."""
    from all_repos.grep import repos_matching

    found: set[str] = repos_matching(config, ("", "--", *PATHSPECS))
    return found


def _e2i_fix(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    from all_repos import autofix_lib

    proc: subprocess.CompletedProcess[str] = autofix_lib.run(sys.executable, "-m", "e2i_fix", *args, check=check)
    return proc


def apply_fix(*, fix_args: Sequence[str] = ()) -> None:
    """In the repository's fresh clone (the current folder): rewrite what e2i-fix fixes."""
    proc = _e2i_fix("--apply", *fix_args, ".")
    if proc.returncode not in (0, 1):  # 1: files were rewritten
        raise FixFailed(f"e2i-fix --apply exited with {proc.returncode}: nothing is committed here")


def check_fix(*, fix_args: Sequence[str] = ()) -> None:
    """The fixes settled: a second run would change nothing."""
    proc = _e2i_fix("--dry-run", *fix_args, ".")
    if proc.returncode != 0:
        raise FixFailed("a second e2i-fix run still changes files: nothing is committed here")


def main(argv: Sequence[str] | None = None) -> int:
    from all_repos import autofix_lib

    parser = argparse.ArgumentParser(
        prog="python -m e2i_fix.all_repos",
        description="Run e2i-fix --apply over every repository of an all-repos fleet that has a compose file.")
    autofix_lib.add_fixer_args(parser)
    parser.add_argument("--e2i-fix-args", default="", metavar="ARGS",
                        help="Options for e2i-fix, as one string: `--select logging --unsafe-fixes`.")
    parser.add_argument("--branch", default=BRANCH, help="The branch name (default %(default)s).")
    parser.add_argument("--message", default=MESSAGE, help="The commit message.")
    args = parser.parse_args(argv)
    import shlex

    fix_args = tuple(shlex.split(args.e2i_fix_args))
    repos, config, commit, settings = autofix_lib.from_cli(
        args, find_repos=find_repos, msg=args.message, branch_name=args.branch)
    autofix_lib.fix(
        repos,
        apply_fix=functools.partial(apply_fix, fix_args=fix_args),
        check_fix=functools.partial(check_fix, fix_args=fix_args),
        config=config, commit=commit, autofix_settings=settings,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
