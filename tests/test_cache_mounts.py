"""cache-mounts: fixture stacks (pip with a defeating flag, CRLF, heredocs, a non-root user, apt
with and without the docker-clean hook, a multi-stage alpine build, uv; the cache each tool
really uses: PNPM_HOME, --store-dir and `pnpm config set store-dir`, Yarn 4's global cache,
PIP_CACHE_DIR and HOME; and where no mount goes: a cache the Dockerfile turns off, a store
`pnpm fetch` filled, Yarn 3's project cache, pip upgrading itself, a RUN that has one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix import dockerfile, source
from e2i_fix._main import main
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


def test_defeating_flag_goes() -> None:
    text = dockerfile_of("pip-debian")
    assert "--no-cache-dir" not in text
    assert "    # comment inside the continuation\n" in text  # the comment line is kept


def unchanged(case: str) -> bool:
    return (FIXTURES / case / "input" / "Dockerfile").read_bytes() == (FIXTURES / case / "expected" / "Dockerfile").read_bytes()


def test_a_cache_the_dockerfile_turns_off_stays_off() -> None:
    """`ENV PIP_NO_CACHE_DIR=1` is a decision about the image too (pip run in the container
    reads it): no mount, and the ENV and the flags stay."""
    assert unchanged("pip-no-cache-env")


def test_pnpm_store_where_pnpm_keeps_it() -> None:
    text = dockerfile_of("pnpm-home")
    # $PNPM_HOME/store, under the id the file's own mounts of it use
    assert "RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store pnpm add -g turbo@2\n" in text
    # A RUN that mounts the store already gets no second mount.
    assert text.count("--mount=") == 2
    text = dockerfile_of("pnpm-store-dir")
    assert "RUN --mount=type=cache,target=/var/cache/pnpm-store pnpm install --frozen-lockfile\n" in text
    assert "RUN --mount=type=cache,target=/opt/store pnpm install --store-dir /opt/store --filter web\n" in text


def test_no_mount_over_a_store_pnpm_fetch_filled() -> None:
    assert unchanged("pnpm-fetch")


def test_yarn_berry_cache() -> None:
    """Yarn 4 keeps one global cache, ~/.yarn/berry/cache; Yarn 3 keeps it in the project, where
    a mount would hide what is there."""
    assert "RUN --mount=type=cache,target=/root/.yarn/berry/cache yarn install --immutable\n" in dockerfile_of("yarn-berry")
    assert unchanged("yarn-berry-project-cache")


def test_pip_cache_where_pip_keeps_it() -> None:
    text = dockerfile_of("pip-cache-dir")
    assert "RUN --mount=type=cache,target=/var/cache/pip pip wheel" in text  # PIP_CACHE_DIR
    assert "RUN --mount=type=cache,target=/home/builder/.cache/pip pip install" in text  # ENV HOME


def test_pips_short_no_cache_is_replaced_by_the_mount(tmp_path: Path) -> None:
    """`--no-cache` is pip's (optparse) prefix of `--no-cache-dir`: the mount replaces it too."""
    from e2i_fix._main import main

    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\nCOPY requirements.txt .\n"
                                          "RUN pip install --no-cache -r requirements.txt\n")
    (tmp_path / "requirements.txt").write_text("flask==3.0.3\n")
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n")
    assert main(["--apply", "--select", "cache-mounts", str(tmp_path)]) == 1
    assert (tmp_path / "Dockerfile").read_text().endswith(
        "RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\n")


def test_pip_upgrading_itself_is_not_worth_a_cache() -> None:
    text = dockerfile_of("pip-upgrade-only")
    assert " && pip install --no-cache-dir -U pip setuptools wheel \\\n" in text
    assert "RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\n" in text


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
        ("FROM python:3\nENV A=1 PIP_NO_CACHE_DIR=1\nRUN pip install x\n", False),  # the cache is off
        ("FROM python:3\nENV PIP_NO_CACHE_DIR=off\nRUN pip install x\n", False),  # pip: whatever the value
        ("FROM python:3\nRUN python -m pip install --upgrade pip\n", False),
        # Wheels already on disk: nothing to download (pip's own upgrade aside).
        ("FROM python:3\nRUN pip install --upgrade pip && pip install --no-cache /wheels/*\n", False),
        ("FROM python:3\nRUN pip install /tmp/dist/app-1.0-py3-none-any.whl\n", False),
        ("FROM python:3\nRUN pip install --no-index --find-links /wheels -r requirements.txt\n", False),
        ("FROM python:3\nRUN pip install /wheels/* && pip install -r requirements.txt\n", True),
        ("FROM python:3\nRUN pip install .\n", True),  # the project's dependencies are downloaded
        ("FROM python:3\nRUN pip wheel --wheel-dir /wheels -r requirements.txt\n", True),  # builds from downloads
        ("FROM python:3\nRUN --mount=type=cache,target=/root/.cache pip install x\n", False),  # above it
        ("FROM node:20\nRUN --mount=type=cache,id=npm,target=/npm-cache npm ci --cache /npm-cache\n", False),
        ("FROM node:20\nRUN --mount=type=cache,target=/root/.npm npm ci && pnpm install\n", True),  # npm's only
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


def _stack(tmp: Path, dockerfile: str, files: dict[str, str]) -> None:
    (tmp / "compose.yaml").write_text("services:\n  web:\n    build: .\n")
    (tmp / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text)


def test_a_yarnrc_copied_from_a_subfolder_is_yarn_berry(tmp_path: Path) -> None:
    """`COPY app/.yarnrc.yml ./` brings Yarn 3, which caches in the project's `.yarn/cache`:
    no Yarn 1 cache mount (it would only hide nothing, or break a build that has no BuildKit)."""
    _stack(tmp_path, "FROM node:20\nWORKDIR /app\nCOPY app/package.json app/yarn.lock app/.yarnrc.yml ./\n"
                     "RUN yarn install\n",
           {"app/package.json": "{}\n", "app/yarn.lock": "", "app/.yarnrc.yml": "nodeLinker: node-modules\n"})
    main(["--apply", "--select", "cache-mounts", str(tmp_path)])
    assert "/usr/local/share/.cache/yarn" not in (tmp_path / "Dockerfile").read_text()


def test_no_cache_mount_where_the_repository_builds_without_buildkit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A README that builds with `DOCKER_BUILDKIT=0`: the classic builder refuses `RUN --mount`."""
    dockerfile = "FROM python:3.12-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n"
    _stack(tmp_path, dockerfile, {"requirements.txt": "flask\n"})
    (tmp_path / "README.md").write_text("Build it:\n\n    DOCKER_BUILDKIT=0 docker compose build web\n")
    capsys.readouterr()
    assert main(["--check", "--select", "cache-mounts", str(tmp_path)]) == 1
    assert (tmp_path / "Dockerfile").read_text() == dockerfile
    assert "README.md builds with DOCKER_BUILDKIT=0, and the classic builder refuses `RUN --mount`" in capsys.readouterr().out
    (tmp_path / "README.md").write_text("Build it with docker compose build.\n")
    main(["--apply", "--select", "cache-mounts", str(tmp_path)])
    assert "--mount=type=cache" in (tmp_path / "Dockerfile").read_text()
