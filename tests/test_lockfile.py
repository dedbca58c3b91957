"""lockfile: COPY/ADD sources missing from the build context, as Docker would miss them."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix._main import main

ID = "lockfile"


def findings(tmp_path: Path, dockerfile: str, files: dict[str, str], capsys: pytest.CaptureFixture[str],
             compose: str = "services:\n  app:\n    build: .\n") -> list[str]:
    (tmp_path / "compose.yaml").write_text(compose)
    (tmp_path / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    capsys.readouterr()
    main(["--check", "--select", ID, str(tmp_path)])
    cap = capsys.readouterr()
    return [line.split(": ", 1)[1] if ": " in line else line for line in (cap.out + cap.err).splitlines() if "[lockfile]" in line]


def test_missing_lock_file_names_its_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = findings(tmp_path, "FROM python:3.12\nCOPY pyproject.toml uv.lock ./\n", {"pyproject.toml": ""}, capsys)
    assert len(out) == 1 and "`uv.lock` is not in the build context" in out[0] and "`uv lock`" in out[0]


@pytest.mark.parametrize(
    ("name", "command"),
    [("poetry.lock", "poetry lock"), ("Pipfile.lock", "pipenv lock"), ("package-lock.json", "npm install --package-lock-only"),
     ("yarn.lock", "yarn install"), ("pnpm-lock.yaml", "pnpm install --lockfile-only")],
)
def test_lock_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, command: str) -> None:
    out = findings(tmp_path, f"FROM node:20\nCOPY {name} ./\n", {}, capsys)
    assert len(out) == 1 and f"`{command}`" in out[0]


def test_line_of_the_instruction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n")
    (tmp_path / "Dockerfile").write_text("FROM alpine\nRUN echo \\\n  hi\nCOPY \\\n  missing.txt /x\n")
    capsys.readouterr()
    main(["--check", "--select", ID, str(tmp_path)])
    cap = capsys.readouterr()
    assert f"{tmp_path / 'Dockerfile'}:4:1: [lockfile] COPY source `missing.txt`" in cap.out + cap.err


def test_dockerignore_applies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {"uv.lock": "", ".dockerignore": "*.lock\n", "src/a.py": "", "keep.lock": ""}
    out = findings(tmp_path, "FROM python:3.12\nCOPY uv.lock src/ ./\n", files, capsys)
    assert len(out) == 1 and "left out of the build context" in out[0] and ".dockerignore" in out[0]
    (tmp_path / ".dockerignore").write_text("*.lock\n!uv.lock\n")
    assert findings(tmp_path, "FROM python:3.12\nCOPY uv.lock src/ ./\n", {}, capsys) == []


def test_dockerfile_own_ignore_file_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {"a.txt": "", ".dockerignore": "", "Dockerfile.dockerignore": "a.txt\n"}
    assert len(findings(tmp_path, "FROM alpine\nCOPY a.txt /\n", files, capsys)) == 1


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM alpine\nCOPY *.whl /w/\n",  # BuildKit: a wildcard matching nothing copies nothing
        "FROM alpine\nARG F=x\nCOPY $F /x\n",  # a variable: not judged
        "FROM alpine\nCOPY --from=busybox /bin/sh /sh\n",
        "FROM alpine\nADD https://example.com/a.tgz /a\n",
        "FROM alpine\nCOPY <<EOF /a\nx\nEOF\n",
        "FROM alpine AS unused\nCOPY nothere /x\nFROM alpine\nRUN true\n",  # a stage the build never reaches
        "FROM alpine\nCOPY . /src\n",
    ],
)
def test_not_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str], dockerfile: str) -> None:
    assert findings(tmp_path, dockerfile, {}, capsys) == []


def test_target_stage_and_what_it_copies_from(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dockerfile = ("FROM node:20-alpine AS build\nCOPY package-lock.json ./\n"
                  "FROM debian:bookworm-slim AS api\nCOPY api.txt /\n"
                  "FROM nginx:1.27-alpine AS web\nCOPY --from=build /dist /usr/share/nginx/html\n")
    compose = "services:\n  web:\n    build:\n      context: .\n      target: web\n"
    out = findings(tmp_path, dockerfile, {}, capsys, compose)
    assert len(out) == 1 and "package-lock.json" in out[0]
