"""Symlinked compose files are written *through*: the link stays a link, pointing where it
pointed, and the file it points to gets the new content (atomically, with its own mode, the
temporary file made next to the target). This is what an editor does when you save through a
link, and what keeps a stack that shares its compose file by link sharing the fixed one.
A link that leads out of the project (the path given on the command line, or the git work
tree holding it) is read, and its fixes reported, never written: compose files are untrusted
input. Broken links and loops are refused in tests/test_bad_input.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from e2i_fix._main import main

PLAIN = "services:\n  web:\n    image: nginx:1.27\n"
FIXED_LINE = "    logging: *default-logging\n"


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_link_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    project = tmp_path
    real = project / "shared"
    real.mkdir()
    target = real / "base.yaml"
    target.write_text(PLAIN)
    target.chmod(0o600)
    stack = project / "app"
    stack.mkdir()
    link = stack / "compose.yaml"
    link.symlink_to(Path("..") / "shared" / "base.yaml")

    assert main(["--apply", "--select", "logging", str(project)]) == 1
    assert link.is_symlink()
    assert os.readlink(link) == str(Path("..") / "shared" / "base.yaml")
    assert FIXED_LINE in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert entries(stack) == ["compose.yaml"] and entries(real) == ["base.yaml"]  # no temp file anywhere
    assert main(["--apply", "--select", "logging", str(project)]) == 0  # idempotent through the link


def test_a_link_out_of_the_project_is_reported_not_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "base.yaml").write_text(PLAIN)
    project = tmp_path / "app"
    project.mkdir()
    (project / "compose.yaml").symlink_to(outside / "base.yaml")
    assert main(["--apply", "--select", "logging", str(project)]) == 0
    assert (outside / "base.yaml").read_text() == PLAIN
    err = capsys.readouterr().err
    assert f"not applied: {project / 'compose.yaml'} is outside the project" in err
    assert main(["--check", "--select", "logging", str(project)]) == 1  # still a finding


def test_a_chain_of_links_is_followed_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "real.yaml").write_text(PLAIN)
    (tmp_path / "middle.yaml").symlink_to("real.yaml")
    (tmp_path / "compose.yaml").symlink_to("middle.yaml")
    assert main(["--apply", "--select", "logging", str(tmp_path / "compose.yaml")]) == 1
    assert os.readlink(tmp_path / "compose.yaml") == "middle.yaml"
    assert os.readlink(tmp_path / "middle.yaml") == "real.yaml"
    assert FIXED_LINE in (tmp_path / "real.yaml").read_text()


def test_two_names_for_one_file_are_fixed_once(tmp_path: Path) -> None:
    """`compose.yaml` and `docker-compose.yml` linking to one file are two stacks; the second
    reads what the first wrote and finds nothing left to do."""
    (tmp_path / "real.yaml").write_text(PLAIN)
    (tmp_path / "compose.yaml").symlink_to("real.yaml")
    (tmp_path / "docker-compose.yml").symlink_to("real.yaml")
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 1
    assert (tmp_path / "real.yaml").read_text().count(FIXED_LINE) == 1
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 0


def test_dry_run_through_a_link_names_the_file_it_points_to(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`patch` refuses to patch a symlink ("not a regular file"): the diff names its target."""
    (tmp_path / "real.yaml").write_text(PLAIN)
    (tmp_path / "compose.yaml").symlink_to("real.yaml")
    assert main(["--select", "logging", str(tmp_path / "compose.yaml")]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"--- {(tmp_path / 'real.yaml').as_posix()}\n")
    assert (tmp_path / "real.yaml").read_text() == PLAIN
    patched = subprocess.run(["patch", "-p0"], input=out, text=True, capture_output=True, cwd="/")
    assert patched.returncode == 0, patched.stdout + patched.stderr
    assert (tmp_path / "compose.yaml").is_symlink() and "logging" in (tmp_path / "real.yaml").read_text()
