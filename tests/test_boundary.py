"""Writes stay inside the project: the git work tree of the command-line path, or that path."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix import boundary, project, source
from e2i_fix._main import main
from e2i_fix.errors import InputError

PLAIN = "services:\n  web:\n    image: nginx:1.27\n"


def test_root_is_the_git_work_tree(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "compose.yaml").write_text(PLAIN)
    assert boundary.root_of(deep) == tmp_path.resolve()
    assert boundary.root_of(deep / "compose.yaml") == tmp_path.resolve()


def test_a_linked_work_tree_has_a_git_file(tmp_path: Path) -> None:
    (tmp_path / ".git").write_text("gitdir: /somewhere/else\n")
    (tmp_path / "sub").mkdir()
    assert boundary.root_of(tmp_path / "sub") == tmp_path.resolve()


def test_outside_git_the_path_itself(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "compose.yaml").write_text(PLAIN)
    assert boundary.root_of(tmp_path / "app") == (tmp_path / "app").resolve()
    assert boundary.root_of(tmp_path / "app" / "compose.yaml") == (tmp_path / "app").resolve()
    assert boundary.inside(boundary.root_of(tmp_path / "app"), tmp_path / "app" / "x" / "new")
    assert not boundary.inside(boundary.root_of(tmp_path / "app"), tmp_path / "appendix")
    assert not boundary.inside(boundary.root_of(tmp_path / "app"), Path("/etc/passwd"))


def test_discovered_stacks_carry_their_root(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "compose.yaml").write_text(PLAIN)
    stacks = [s for s in project.discover([tmp_path / "svc"]) if isinstance(s, project.Stack)]
    assert [s.write_root for s in stacks] == [tmp_path.resolve()]


def test_a_compose_file_linked_from_outside_is_reported_not_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "base.yaml").write_text(PLAIN)
    app = tmp_path / "app"
    app.mkdir()
    (app / "compose.yaml").symlink_to(outside / "base.yaml")
    assert main(["--apply", "--select", "logging", str(app)]) == 0
    assert (outside / "base.yaml").read_text() == PLAIN
    cap = capsys.readouterr()
    assert "is outside the project" in cap.out + cap.err and "not written" in cap.out + cap.err
    assert main(["--check", "--select", "logging", str(app)]) == 1  # still a finding


def test_a_new_file_never_replaces_one(tmp_path: Path) -> None:
    path = tmp_path / ".dockerignore"
    new = source.new_file(path)
    path.write_text("mine\n")
    with pytest.raises(InputError, match="created by someone else"):
        source.write(new, b".git\n")
    assert path.read_text() == "mine\n"


def test_a_new_file_gets_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "docker" / "frontend" / "nginx.conf"
    source.write(source.new_file(path), b"events {}\n")
    assert path.read_bytes() == b"events {}\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["nginx.conf"]  # no temporary file left


def test_a_relative_path_follows_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        assert boundary.root_of(Path(".")) == (tmp_path / name).resolve()
