"""An all-repos autofixer: e2i-fix over every repository of a fleet that has a Compose file.

    pip install 'e2i-fix[all-repos]'
    all-repos-clone -C all-repos.json
    python -m e2i_fix.all_repos -C all-repos.json --dry-run   # commit locally, push nothing
    python -m e2i_fix.all_repos -C all-repos.json             # push through the configured push

all-repos (https://github.com/asottile/all-repos) clones the repositories its `source` lists;
this module follows its autofixer API (`find_repos`, `apply_fix`, `main`): it finds the clones
with a compose file, runs `e2i-fix --apply` in a fresh clone of each, stages every file e2i-fix
wrote (the files it creates, such as a `.dockerignore`, too), checks that a second run has
nothing left to do, and commits; all-repos' own `push` then opens the pull requests
(`github_pull_request`, `gitlab_pull_request`...) or merges (`merge_to_master`). A repository
where e2i-fix meets an error (exit 2: a file it cannot read, a stack it cannot verify) gets no
commit; at the end the run names every repository that failed (e2i-fix's error, fixes that do
not settle, a clone or push that failed) and exits 2. A repository's own `.e2i-fix.toml`
applies, as everywhere.
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from all_repos.autofix_lib import AutofixSettings, Commit
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


class Outcome:
    """What became of one repository: how far it got, and why it failed (if it did). all-repos
    reports an exception in a repository and goes on; this keeps the reason for the run's end."""

    def __init__(self) -> None:
        self.applied = False
        self.settled = False
        self.pushed = False
        self.why: str | None = None

    def fail(self, why: str) -> FixFailed:
        self.why = self.why or why
        return FixFailed(why)


def find_repos(config: Config) -> set[str]:
    """The cloned repositories with a compose file anywhere in them."""
    from all_repos.grep import repos_matching

    found: set[str] = repos_matching(config, ("", "--", *PATHSPECS))
    return found


def _e2i_fix(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    from all_repos import autofix_lib

    # -P: the clone's own files are not importable (a `yaml.py` at its root must not shadow PyYAML).
    proc: subprocess.CompletedProcess[str] = autofix_lib.run(
        sys.executable, "-P", "-m", "e2i_fix", *args, check=False, text=True, **kwargs)
    return proc


def apply_fix(*, fix_args: Sequence[str] = (), outcome: Outcome | None = None) -> None:
    """In the repository's fresh clone (the current folder): rewrite what e2i-fix fixes, and
    stage every file it wrote (all-repos commits with `git commit -a`, which leaves new files
    out)."""
    import json

    from all_repos import autofix_lib

    from e2i_fix.errors import Problem

    outcome = outcome or Outcome()
    proc = _e2i_fix("--apply", *fix_args, "--format", "json", ".", stdout=subprocess.PIPE)
    try:
        records: list[dict[str, Any]] = json.loads(proc.stdout)["records"]
    except (ValueError, KeyError, TypeError):
        raise outcome.fail(f"e2i-fix --apply exited with {proc.returncode} without its report: nothing is committed")
    for r in records:
        if r["type"] == "error":
            print(Problem(r["path"], r["message"], r["line"], r["col"]), flush=True)
    if proc.returncode not in (0, 1):  # 1: files were rewritten
        raise outcome.fail(f"e2i-fix --apply exited with {proc.returncode}: nothing is committed")
    written = sorted({os.path.relpath(os.path.realpath(r["path"])) for r in records if r["type"] == "fixed"})
    for path in written:
        print(f"fixed {path}", flush=True)
    if written:
        autofix_lib.run("git", "add", "--", *written)
    outcome.applied = True


def check_fix(*, fix_args: Sequence[str] = (), outcome: Outcome | None = None) -> None:
    """The fixes settled: a second run would change nothing."""
    outcome = outcome or Outcome()
    proc = _e2i_fix("--dry-run", *fix_args, ".")
    if proc.returncode != 0:
        raise outcome.fail(f"a second e2i-fix run still changes files (exit {proc.returncode}): nothing is committed")
    outcome.settled = True


def _push(push: Callable[[Any, str], None], outcome: Outcome, settings: Any, branch: str) -> None:
    try:
        push(settings, branch)
    except Exception as e:  # all-repos prints the traceback; the reason is kept for the end
        if isinstance(e, subprocess.CalledProcessError):
            import shlex

            why = f"`{shlex.join(map(str, e.cmd))}` exited with {e.returncode}"
        else:
            why = f"{type(e).__name__}: {e}"
        raise outcome.fail(f"the push failed: {why}") from e
    outcome.pushed = True


def fix_repo(repo: str, *, fix_args: Sequence[str], config: Config, commit: Commit,
             settings: AutofixSettings) -> str | None:
    """all-repos' autofix of one repository (clone, apply, check, commit, push); why it failed,
    or None."""
    from all_repos import autofix_lib

    outcome = Outcome()
    autofix_lib.fix(
        [repo],
        apply_fix=functools.partial(apply_fix, fix_args=fix_args, outcome=outcome),
        check_fix=functools.partial(check_fix, fix_args=fix_args, outcome=outcome),
        config=config._replace(push=functools.partial(_push, config.push, outcome)),
        commit=commit, autofix_settings=settings._replace(jobs=1, limit=None),
    )
    if outcome.why is None and not outcome.applied:
        outcome.why = "all-repos could not prepare its clone (see above)"
    elif (outcome.why is None and outcome.settled and not outcome.pushed and not settings.dry_run
          and not settings.interactive):
        outcome.why = "the commit failed (see above)"
    return outcome.why


def main(argv: Sequence[str] | None = None) -> int:
    from all_repos import autofix_lib, mapper

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
    chosen = sorted(repos)[:settings.limit]
    work = functools.partial(fix_repo, fix_args=fix_args, config=config, commit=commit, settings=settings)
    # Each repository in one worker of all-repos' own pool (interactive runs take one job).
    with mapper.process_mapper(settings.jobs) as do_map:
        failed = [(repo, why) for repo, why in zip(chosen, do_map(work, chosen)) if why is not None]
    if failed:
        print(f"e2i-fix: {len(failed)} of {len(chosen)} repositories failed:", file=sys.stderr)
        for repo, why in failed:
            print(f"  {repo}: {why}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
