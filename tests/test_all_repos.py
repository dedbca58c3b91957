"""The all-repos autofixer, for real: local git repositories listed by all-repos' `json_file`
source, cloned by `all-repos-clone`, fixed, and merged back by its `merge_to_master` push; the
files e2i-fix creates are in the commit, and the repositories that failed are named at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLAIN = "services:\n  web:\n    image: nginx:1.27\n"
BUILT = ("x-logging: &default-logging\n  driver: json-file\n  options:\n    max-size: 10m\n    max-file: \"3\"\n"
         "services:\n  api:\n    build: ./api\n    logging: *default-logging\n")


def git(*args: str, cwd: Path, env: dict[str, str]) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_the_autofixer_commits_and_merges_the_fixes(tmp_path: Path, jobs: str) -> None:
    pytest.importorskip("all_repos")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_GLOBAL=str(tmp_path / "gitconfig"),
               GIT_CONFIG_NOSYSTEM="1")
    (tmp_path / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    remotes: dict[str, str] = {}
    # Tests the image does not copy: a .dockerignore worth writing (dockerignore writes none
    # for a context whose files the build uses anyway).
    api = {"Dockerfile": "FROM python:3.12-slim\nCOPY app.py /app/\n", "app.py": "print()\n", "tests/test_app.py": ""}
    files = {
        "app": {"deploy/compose.yaml": PLAIN, "README.md": "app\n"},
        "docs": {"README.md": "no compose file here\n", "notes/compose.txt": PLAIN},
        "broken": {"compose.yaml": "services: [\n"},
        "prod": {"docker-compose.prod.yml": PLAIN},
        # Nothing to edit, one file to create: the commit must hold it.
        "built": {"compose.yaml": BUILT, **{f"api/{k}": v for k, v in api.items()}},
        # Its remote refuses every push.
        "locked": {"compose.yaml": PLAIN},
    }
    for name, content in files.items():
        seed = tmp_path / "seed" / name
        for rel, text in content.items():
            (seed / rel).parent.mkdir(parents=True, exist_ok=True)
            (seed / rel).write_text(text)
        git("init", "-q", ".", cwd=seed, env=env)
        git("add", ".", cwd=seed, env=env)
        git("commit", "-qm", "init", cwd=seed, env=env)
        remote = tmp_path / "remotes" / f"{name}.git"
        remote.parent.mkdir(exist_ok=True)
        git("clone", "-q", "--bare", str(seed), str(remote), cwd=tmp_path, env=env)
        remotes[name] = str(remote)
    hook = Path(remotes["locked"]) / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are closed'\nexit 1\n")
    hook.chmod(0o755)
    (tmp_path / "repos.json").write_text(json.dumps(remotes))
    config = tmp_path / "all-repos.json"
    config.write_text(json.dumps({
        "output_dir": "output",
        "source": "all_repos.source.json_file", "source_settings": {"filename": str(tmp_path / "repos.json")},
        "push": "all_repos.push.merge_to_master", "push_settings": {},
    }))
    config.chmod(0o600)  # all-repos refuses a config others can read
    bindir = Path(sys.executable).parent
    subprocess.run([str(bindir / "all-repos-clone"), "-C", str(config)], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=120)

    proc = subprocess.run([sys.executable, "-m", "e2i_fix.all_repos", "-C", str(config),
                           "--e2i-fix-args", "--select logging,dockerignore", "--jobs", jobs],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    # The run fails, and says which repositories failed and why.
    assert proc.returncode == 2, out
    output = tmp_path / "output"
    assert proc.stderr.endswith(
        "e2i-fix: 2 of 5 repositories failed:\n"
        f"  {output / 'broken'}: e2i-fix --apply exited with 2: nothing is committed\n"
        f"  {output / 'locked'}: the push failed: `git push origin HEAD --quiet` exited with 1\n"), proc.stderr

    def remote_file(name: str, rel: str) -> str:
        return git("show", f"main:{rel}", cwd=Path(remotes[name]), env=env)

    # Fixed, committed and merged into the remote's main branch.
    assert "    logging: *default-logging\n" in remote_file("app", "deploy/compose.yaml")
    log = git("log", "--format=%s", "main", cwd=Path(remotes["app"]), env=env).splitlines()
    assert log[0].startswith("Merge branch 'all-repos_autofix_e2i-fix'")
    assert "Harden the Docker Compose stacks with e2i-fix" in log
    assert "    logging: *default-logging\n" in remote_file("prod", "docker-compose.prod.yml")
    # No compose file: not touched. An error: reported, nothing committed.
    assert git("log", "--format=%s", "main", cwd=Path(remotes["docs"]), env=env).splitlines() == ["init"]
    assert git("log", "--format=%s", "main", cwd=Path(remotes["broken"]), env=env).splitlines() == ["init"]
    assert "compose.yaml:2:1: invalid YAML" in out
    # A created file is committed with the fixes; here it is the only change.
    assert remote_file("built", "api/.dockerignore").startswith("# ")
    # (In topological order: the run, merge included, often takes less than the second git
    # dates commits in, and by date alone the merge's first parent may come before the fix.)
    built_log = git("log", "--topo-order", "--format=%s", "main", cwd=Path(remotes["built"]), env=env)
    assert built_log.splitlines()[1] == "Harden the Docker Compose stacks with e2i-fix"
    assert remote_file("built", "compose.yaml") == BUILT
    assert git("log", "--format=%s", "main", cwd=Path(remotes["locked"]), env=env).splitlines() == ["init"]
