"""The all-repos autofixer, for real: local git repositories listed by all-repos' `json_file`
source, cloned by `all-repos-clone`, fixed, and merged back by its `merge_to_master` push."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLAIN = "services:\n  web:\n    image: nginx:1.27\n"


def git(*args: str, cwd: Path, env: dict[str, str]) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def test_the_autofixer_commits_and_merges_the_fixes(tmp_path: Path) -> None:
    pytest.importorskip("all_repos")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_GLOBAL=str(tmp_path / "gitconfig"),
               GIT_CONFIG_NOSYSTEM="1")
    (tmp_path / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    remotes: dict[str, str] = {}
    files = {
        "app": {"deploy/compose.yaml": PLAIN, "README.md": "app\n"},
        "docs": {"README.md": "no compose file here\n", "notes/compose.txt": PLAIN},
        "broken": {"compose.yaml": "services: [\n"},
        "prod": {"docker-compose.prod.yml": PLAIN},
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
                           "--e2i-fix-args", "--select logging"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out

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
    assert "e2i-fix --apply exited with 2: nothing is committed here" in out
    assert "invalid YAML" in out
