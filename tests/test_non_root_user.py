"""non-root-user: Debian and Alpine tools, distroless `nonroot`, scratch reported, the target
stage, an existing user reused, ownership of WORKDIR and named volumes, USER before CMD."""

from __future__ import annotations

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


def lines(case: str) -> list[str]:
    return (FIXTURES / case / "expected" / "Dockerfile").read_text().splitlines()


def test_user_before_cmd_with_ownership() -> None:
    got = lines("debian")
    assert got[-2:] == ["USER app", 'CMD ["python", "-m", "app"]']
    assert " && mkdir -p /app /var/lib/app && chown -R app:app /app /var/lib/app" in got


def test_only_the_target_stage() -> None:
    got = lines("alpine-target")
    assert got.index("USER app") < got.index('ENTRYPOINT ["app"]') < got.index("FROM alpine:3.20 AS debug")
    assert "RUN addgroup -S app && adduser -S -G app -s /sbin/nologin app" in got
    assert got[-1] == "RUN apk add --no-cache strace"  # the stage compose does not build is left alone


def test_existing_user_reused_after_user_root() -> None:
    got = lines("existing-user")
    assert "useradd" not in " ".join(got[3:]) and got[-2:] == ["USER web", 'CMD ["node", "server.js"]']


def test_scratch_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--check", "--unsafe-fixes", "--select", ID, str(FIXTURES / "scratch" / "input")]) == 1
    cap = capsys.readouterr()
    assert "as root; the pass cannot tell how to add a user to scratch" in cap.out + cap.err


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
