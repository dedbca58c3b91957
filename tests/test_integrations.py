"""Where the users are: the GitHub Action and the pre-commit hooks, each checked for real."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from e2i_fix._main import _parser

from conftest import ROOT

PLAIN = "services:\n  web:\n    image: nginx:1.27\n"


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess[str]:
    # The builtin schemas ship inside check-jsonschema: no network.
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
                          capture_output=True, text=True, timeout=120)


def test_action_yml_is_a_valid_github_action() -> None:
    proc = check_jsonschema("vendor.github-actions", ROOT / "action.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_action_runs_check_with_sarif_and_uploads_it() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    (check,) = [s for s in steps if s.get("id") == "check"]
    (line,) = [ln.strip() for ln in check["run"].splitlines() if ln.strip().startswith("e2i-fix ")]
    words = shlex.split(line.split(">")[0])
    assert words[1:4] == ["--check", "--format", "sarif"]
    # The options it passes are ones the command line takes.
    args = _parser().parse_intermixed_args(words[1:4] + ["."])
    assert (args.mode, args.fmt) == ("check", "sarif")
    (upload,) = [s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@")]
    assert upload["with"]["sarif_file"] == "${{ steps.check.outputs.sarif-file }}"
    # Inputs reach the scripts through the environment, never pasted into the script text.
    for step in steps:
        assert "${{ inputs." not in step.get("run", "")


def test_pre_commit_try_repo(tmp_path: Path) -> None:
    """The hooks of .pre-commit-hooks.yaml, installed by pre-commit itself from this checkout
    (its uncommitted changes included) into a virtualenv, run on a repository of ours: the
    apply hook fixes the file and fails the commit, the check hook then passes."""
    pytest.importorskip("pre_commit")
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "PRE_COMMIT"))}
    env.update(PRE_COMMIT_HOME=str(tmp_path / "home"), GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com", PIP_DISABLE_PIP_VERSION_CHECK="1")
    if sys.version_info < (3, 12):
        # The hook's virtualenv has setuptools on these versions: building the package needs no
        # second, isolated environment (a third of the run).
        env["PIP_NO_BUILD_ISOLATION"] = "false"
    (repo / "compose.yaml").write_text(PLAIN)
    (repo / "notes.yaml").write_text("services: not compose, not named like it\n")
    # An unsafe fix not taken is still a finding for the check hook: this repository takes them.
    (repo / ".e2i-fix.toml").write_text("unsafe-fixes = true\n")
    for cmd in (["git", "init", "-q", "."], ["git", "add", "."], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "--all-files"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "e2i-fix (apply Compose hardening)" in out and "files were modified by this hook" in out
    assert [ln.rsplit(".", 1)[-1] for ln in out.splitlines() if ln.startswith("e2i-fix (")] == ["Failed", "Passed"]
    assert "    logging: *default-logging\n" in (repo / "compose.yaml").read_text()
    assert (repo / "notes.yaml").read_text() == "services: not compose, not named like it\n"

    # Twelve stacks build one Dockerfile. pre-commit would share them out among parallel
    # batches (one per CPU), each fixing the Dockerfile and creating its .dockerignore, and all
    # but the first would find them changed or created under them: the hooks run serially.
    shared = repo / "shared"
    shared.mkdir()
    (shared / "Dockerfile").write_text(
        "FROM python:3.12-slim\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\n")
    (shared / "requirements.txt").write_text("")
    for k in range(12):
        (repo / f"s{k}").mkdir()
        (repo / f"s{k}" / "compose.yaml").write_text(f"services:\n  s{k}:\n    build: ../shared\n")
    for cmd in (["git", "add", "."], ["git", "commit", "-qm", "stacks"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "e2i-fix", "--all-files"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "exit code: 1" in out, out
    assert "since it was read" not in out and "created by someone else" not in out
    # One process: one summary line.
    assert len(re.findall(r"^\d+ fix(?:es)? applied in \d+ files?", out, re.M)) == 1, out
    assert "RUN --mount=type=cache," in (shared / "Dockerfile").read_text()
    assert (shared / ".dockerignore").is_file()


def test_both_hooks_run_serially() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"]: h.get("require_serial") for h in hooks} == {"e2i-fix": True, "e2i-fix-check": True}
