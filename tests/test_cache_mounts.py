"""cache-mounts: fixture stacks (pip with defeating flags and env, CRLF, heredocs, a non-root
user, apt with and without the docker-clean hook, a multi-stage alpine build, uv)."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix import dockerfile, source
from e2i_fix.passes import cache_mounts

from conftest import fixture_case

ID = "cache-mounts"
FIXTURES = Path(__file__).parent / "fixtures" / ID
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_fixture(tmp_path: Path, case: str) -> None:
    fixture_case(FIXTURES, case, ID, tmp_path)


def dockerfile_of(case: str) -> str:
    return (FIXTURES / case / "expected" / "Dockerfile").read_bytes().decode()


def test_defeating_flag_and_env_go() -> None:
    text = dockerfile_of("pip-debian")
    assert "--no-cache-dir" not in text and "PIP_NO_CACHE_DIR" not in text
    assert "    # comment inside the continuation\n" in text  # the comment line is kept


def test_crlf_kept() -> None:
    raw = (FIXTURES / "crlf" / "expected" / "Dockerfile").read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") and b"RUN --mount=type=cache,target=/root/.npm npm ci \\\r\n" in raw


def test_heredoc_body_never_edited() -> None:
    text = dockerfile_of("heredoc")
    assert "RUN --mount=type=cache,target=/root/.cache/pip <<EOF\nset -e\npip install flask\nEOF\n" in text
    # The defeating flag is inside a heredoc body: that RUN is left as it was.
    assert "RUN <<EOF\npip install --no-cache-dir gunicorn\nEOF\n" in text


def test_non_root_user_gets_its_cache() -> None:
    text = dockerfile_of("non-root")
    assert "--mount=type=cache,target=/home/app/.cache/pip,uid=1001 pip install --user flask" in text
    assert "--mount=type=cache,target=/root/.cache/pip pip install gunicorn" in text  # after USER root


def test_apt_only_where_the_hook_is_gone() -> None:
    assert "sharing=locked" in dockerfile_of("apt-clean")
    assert (FIXTURES / "apt-hook-kept" / "input" / "Dockerfile").read_bytes() == \
        (FIXTURES / "apt-hook-kept" / "expected" / "Dockerfile").read_bytes()


def test_uv_link_mode_once_per_stage() -> None:
    text = dockerfile_of("uv-link-mode")
    assert text.count("ENV UV_LINK_MODE=copy") == 1 and "--no-cache" not in text
    assert "target=/root/.cache/pip" not in text  # `uv pip install` is uv's


@pytest.mark.parametrize(
    ("text", "mounted"),
    [
        ("FROM python:3\nRUN --mount=type=cache,target=/root/.cache/pip pip install x\n", False),
        ("FROM python:3\nRUN echo pip install is documented\n", False),
        ("FROM python:3\nRUN python -m pip install x\n", True),
        ("FROM node:20\nRUN pnpm install --frozen-lockfile\n", True),
        ("FROM python:3\nRUN poetry install --no-root\n", True),
        ("FROM python:3\nUSER 1000\nRUN pip install x\n", False),  # whose home? left alone
        ("FROM python:3\nENV A=1 PIP_NO_CACHE_DIR=1\nRUN pip install x\n", False),  # cannot unset
    ],
)
def test_inline(text: str, mounted: bool) -> None:
    from e2i_fix.project import Build, Project, Service, Stack

    doc = dockerfile.parse(source.decode(Path("/p/Dockerfile"), text.encode()))
    svc = Service("app", [], {})
    svc.build = Build(Path("/p"), Path("/p/Dockerfile"), None)
    svc.build.doc = doc
    project = Project(Stack(Path("/p"), []), [], {}, {})
    project.__dict__["services"] = {"app": svc}
    fixes = list(cache_mounts.run(project, {}))
    assert bool(fixes) == mounted
