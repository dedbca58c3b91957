"""non-root-user: the one decision for a stage (facts.decisions.stage_user) and the reason it
gives: the image's own user (shipped, made or renamed), a new one made with the base image's
tools, COPY --chown for the working folder; no USER where the entrypoint is built to start as
root, a host folder or a volume holds data, or the image is published."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e2i_fix._main import main
from e2i_fix.passes import non_root_user

from conftest import fixture_case

ID = "non-root-user"
FIXTURES = Path(__file__).parent / "fixtures" / ID
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_fixture(tmp_path: Path, case: str) -> None:
    fixture_case(FIXTURES, case, ID, tmp_path, "--unsafe-fixes")


def dockerfile(case: str, side: str = "expected") -> Path:
    return next(p for p in sorted((FIXTURES / case / side).rglob("Dockerfile")))


def lines(case: str, side: str = "expected") -> list[str]:
    return dockerfile(case, side).read_text().splitlines()


def said(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> str:
    """What a run over a copy of the case's input reports for this pass."""
    work = tmp_path / case
    shutil.copytree(FIXTURES / case / "input", work)
    capsys.readouterr()
    main(["--check", "--unsafe-fixes", "--select", ID, str(work)])
    return capsys.readouterr().out


@pytest.mark.parametrize(("case", "user", "reason"), [
    pytest.param("debian", "app", "a system user made with the debian tools", id="a new user, Debian tools"),
    pytest.param("alpine-target", "app", "a system user made with the alpine tools", id="a new user, Alpine tools"),
    pytest.param("node-own-user", "node", "the image ships it (node", id="the base image's own user"),
    pytest.param("renamed-user", "dev", "its Dockerfile makes it", id="a user a stage renames"),
    pytest.param("existing-user", "web", "its Dockerfile makes it", id="a user a stage makes"),
    pytest.param("distroless", "nonroot", "the image ships it", id="distroless nonroot"),
    pytest.param("after-last-run", "app", "a system user", id="after the last RUN"),
    pytest.param("step-down", None, "built to start as root: its entrypoint starts as root and steps down with gosu",
                 id="a gosu step-down"),
    pytest.param("puid-remap", None, "remaps its user to the PUID/PGID it is given, then steps down with gosu",
                 id="a PUID/PGID remap"),
    pytest.param("supervisord", None, "starts supervisord, which runs as root", id="supervisord"),
    pytest.param("etc-writes", None, "entrypoint.sh writes /etc/app/app.conf", id="writes under /etc"),
    pytest.param("chown-command", None, "compose command runs chown, which needs root", id="chown in the command"),
    pytest.param("root-entrypoint", None, "the master process binds port 80", id="the table's root_entrypoint"),
    pytest.param("bind-mount", None, "bind-mounts ./src at /app/src: files there keep their host owner",
                 id="a bind mount"),
    pytest.param("named-volume", None, "keeps data in volume 'data' at /var/lib/app: what its root process wrote "
                 "there stays root's", id="a named volume"),
    pytest.param("published", None, "its image is published (.github/workflows/release.yml builds docker/Dockerfile "
                 "and pushes the image)", id="published by a workflow"),
    pytest.param("registry-tag", None, "its image is published (the stack tags what it builds as "
                 "ghcr.io/example/app:2.1", id="tagged for a registry"),
    pytest.param("scratch", None, "the pass cannot tell how to add a user to scratch", id="scratch"),
    pytest.param("unread-entrypoint", None, "runs /opt/server/docker/start.sh, which is not in its build context: what "
                 "it needs is not known here", id="an entrypoint script not in the context"),
    pytest.param("unknown-base", None, "who registry.example.com/platform/base:7 runs as is not known here",
                 id="a base image the table does not know"),
])
def test_the_decision_and_its_reason(tmp_path: Path, case: str, user: str | None, reason: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = said(tmp_path, case, capsys)
    got = [line for line in lines(case) if line.startswith("USER ")]
    added = [line for line in got if line not in lines(case, "input")]
    if user is None:
        assert added == [] and "no USER added: " in out
        assert reason in out
    else:
        assert added == [f"USER {user}"]
        assert f"`USER {user}`" in out and reason in out


@pytest.mark.parametrize("case", ["already", "user-from-arg"])
def test_a_stage_that_runs_as_a_user_is_left_alone(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert said(tmp_path, case, capsys) == ""
    assert lines(case) == lines(case, "input")


def test_copy_chown_and_no_recursive_chown() -> None:
    """The files a stage copies into its working folder go to the user with COPY --chown: no
    `chown -R` layer stores the tree a second time."""
    got = lines("debian")
    assert got == [
        "FROM python:3.12-slim",
        "WORKDIR /app",
        "RUN groupadd --system app && useradd --system --gid app --create-home --shell /usr/sbin/nologin app",
        "COPY --chown=app:app requirements.txt .",
        "RUN pip install -r requirements.txt",
        "COPY --chown=app:app . .",
        "VOLUME /cache",
        "RUN chown app:app /app",
        "USER app",
        'CMD ["python", "-m", "app"]',
    ]
    node = lines("node-own-user")
    assert "COPY --chown=node:node . ." in node and not any("useradd" in x or "adduser" in x for x in node)
    assert not any("chown -R" in x for case in ("debian", "node-own-user", "renamed-user") for x in lines(case))


def test_only_the_target_stage() -> None:
    got = lines("alpine-target")
    assert got.index("USER app") < got.index('ENTRYPOINT ["app"]') < got.index("FROM alpine:3.20 AS debug")
    assert "RUN addgroup -S app && adduser -S -G app -s /sbin/nologin app" in got
    assert got[-1] == "RUN apk add --no-cache strace"  # the stage compose does not build is left alone


def test_user_after_the_last_instruction_that_needs_root() -> None:
    got = lines("after-last-run")
    assert got[-4:] == ["# Kept after the command by the authors: it still needs root.", "RUN chmod -R a+rX /app",
                        "RUN chown app:app /app", "USER app"]


def test_existing_user_reused_after_user_root() -> None:
    got = lines("existing-user")
    assert "useradd" not in " ".join(got[2:])
    assert got[-4:] == ["USER root", "RUN chown web /srv", "USER web", 'CMD ["node", "server.js"]']


@pytest.mark.parametrize(
    ("image", "kind"),
    [("python:3.12-slim", "debian"), ("node:20-alpine", "alpine"), ("alpine", "alpine"),
     ("gcr.io/distroless/python3-debian12:nonroot", "distroless"), ("scratch", "scratch"),
     ("nginx:1.27-alpine", None), ("ghcr.io/astral-sh/uv:python3.12-bookworm-slim", "debian"),
     ("mycorp/base:7", None)],
)
def test_kind(image: str, kind: str | None) -> None:
    assert non_root_user.kind(image) == kind


def test_compose_user_left_to_compose(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n    user: '1000'\n")
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\nCMD [\"python\"]\n")
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 0


def test_above_the_comment_of_the_command(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n")
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\n\n# the server\n# (port 8000)\nCMD [\"python\"]\n")
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    got = (tmp_path / "Dockerfile").read_text().splitlines()
    assert got[2].startswith("RUN groupadd") and got[3:] == ["USER app", "# the server", "# (port 8000)", 'CMD ["python"]']


def test_a_stage_another_builds_on_keeps_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A USER in a stage that another stage builds FROM would run that stage's RUN lines as the
    new user: the base stage is reported, the stage on top gets the USER."""
    got = lines("child-stage")
    assert got.index("FROM base AS prod") < got.index("USER app")
    assert got[: got.index("FROM base AS prod")] == lines("child-stage", "input")[:4]
    assert "stage prod builds on it, and its RUN lines would run as the new user" in said(tmp_path, "child-stage", capsys)
