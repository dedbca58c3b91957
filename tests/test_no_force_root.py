"""no-force-root: fixture stacks, inline cases and the example stack, judged by bytes and by the
real Compose CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e2i_fix._main import main

from startup_helpers import FIXTURES, cases, config, findings, run_fixture

ID = "no-force-root"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "e2i"


@pytest.mark.parametrize("case", cases(ID))
def test_fixture(tmp_path: Path, case: str) -> None:
    run_fixture(tmp_path, ID, case)


@pytest.mark.parametrize(
    ("case", "files", "service", "user", "force_root"),
    [
        pytest.param("list-env", ["compose.yaml"], "worker", "app:app", False, id="list environment, group by gid"),
        pytest.param("map-env-user-root", ["compose.yaml"], "worker", "celery:celery", False,
                     id="map environment, user root"),
        pytest.param("only-entry", ["compose.yaml"], "worker", "1000:1000", False, id="numeric USER"),
        pytest.param("override-stage", ["compose.yaml"], "worker", "app:users", False, id="production stage"),
        pytest.param("override-stage", ["compose.yaml", "compose.dev.yaml"], "worker", "root", True,
                     id="the override's stage has no such user: kept as it was"),
        pytest.param("no-user-known", ["compose.yaml"], "worker", None, True, id="no non-root user known"),
        pytest.param("shared-anchor", ["compose.yaml"], "worker", "celery", False, id="a shared environment block"),
        pytest.param("shared-anchor", ["compose.yaml"], "beat", "celery", False, id="its other user"),
    ],
)
def test_compose_reads_the_user(case: str, files: list[str], service: str, user: str | None, force_root: bool) -> None:
    svc = config(FIXTURES / ID / case / "expected", files)["services"][service]
    assert svc.get("user") == user
    assert ("C_FORCE_ROOT" in (svc.get("environment") or {})) is force_root


def test_other_entries_and_their_comments_stay() -> None:
    text = (FIXTURES / ID / "list-env" / "expected" / "compose.yaml").read_text()
    assert "Celery refuses" not in text and "C_FORCE_ROOT" not in text
    assert "      - BROKER_URL=redis://redis:6379/0\n      # Kept: the result backend.\n      - RESULT_BACKEND" in text
    only = (FIXTURES / ID / "only-entry" / "expected" / "compose.yaml").read_text()
    assert "environment" not in only


def test_user_root_is_unsafe(tmp_path: Path) -> None:
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / ID / "map-env-user-root" / "input", work)
    assert main(["--apply", "--select", ID, str(work)]) == 0
    assert findings(work, ID) == [
        "<dir>/compose.yaml:6:7: [no-force-root] service 'worker' runs Celery as root through C_FORCE_ROOT; "
        "drop C_FORCE_ROOT and run as celery:celery; the compose file said user root (no fix applied)",
    ]


def test_env_file_is_reported_at_its_line() -> None:
    assert findings(FIXTURES / ID / "env-file" / "input", ID) == [
        "<dir>/worker.env:3:1: [no-force-root] service 'worker': C_FORCE_ROOT in this env file lets Celery run "
        "as root; remove it and run the service as a non-root user (no fix applied)",
    ]


def test_no_user_points_at_the_dockerfile_pass() -> None:
    lines = findings(FIXTURES / ID / "no-user-known" / "input", ID)
    assert len(lines) == 2
    assert all("non-root-user" in line and "(no fix applied)" in line for line in lines)
    assert "(the stack does not build its image)" in lines[0]
    assert "runs as root" in lines[1]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("services:\n  w:\n    image: x\n    environment:\n      - C_FORCE_ROOTS=1\n", id="another name"),
        pytest.param("services:\n  w:\n    image: x\n    environment: [C_FORCE_ROOT=1]\n", id="an image the stack does not build"),
        pytest.param("services:\n  w:  # e2i-fix: ignore[no-force-root]\n    build: .\n    environment:\n"
                     "      - C_FORCE_ROOT=1\n", id="opted out"),
    ],
)
def test_noop(tmp_path: Path, text: str) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\nUSER app\n")
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 0
    assert f.read_text() == text


def test_a_non_root_user_already_set_only_drops_it(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  w:\n    image: x\n    user: '1000'\n    environment:\n      C_FORCE_ROOT: 'yes'\n"
                 "      A: b\n")
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 1
    assert f.read_text() == "services:\n  w:\n    image: x\n    user: '1000'\n    environment:\n      A: b\n"


def test_example_worker_runs_as_e2i(tmp_path: Path) -> None:
    work = tmp_path / "e2i"
    shutil.copytree(EXAMPLE, work)
    assert main(["--apply", "--select", ID, str(work)]) == 1
    prod = config(work, ["docker-compose.yml"])["services"]["worker"]
    assert prod["user"] == "e2i:e2i" and "C_FORCE_ROOT" not in prod["environment"]
    assert "C_FORCE_ROOT" not in (work / "docker-compose.yml").read_text()
    # The dev override builds the development stage, which has no e2i user: it stays as it ran.
    dev = config(work, ["docker-compose.yml", "docker-compose.dev.yml"])["services"]["worker"]
    assert dev["user"] == "root" and dev["environment"]["C_FORCE_ROOT"] == "1"


def test_only_in_an_override_whose_stage_runs_as_root(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / ID / "override-stage" / "input", tmp_path / "w")
    work = tmp_path / "w"
    base = "services:\n  worker:\n    build:\n      context: .\n      target: production\n    command: celery -A app worker\n"
    (work / "compose.yaml").write_text(base)
    dev = (work / "compose.dev.yaml").read_text().replace("      - DEBUG=1\n", "      - DEBUG=1\n      - C_FORCE_ROOT=1\n")
    (work / "compose.dev.yaml").write_text(dev)
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(work)]) == 0
    assert (work / "compose.yaml").read_text() == base and (work / "compose.dev.yaml").read_text() == dev
    assert findings(work, ID) == []  # a development file: no hardening, no finding
    (work / ".e2i-fix.toml").write_text('[roles]\nproduction = ["compose.dev.yaml"]\n')
    assert findings(work, ID) == [
        "<dir>/compose.dev.yaml:7:9: [no-force-root] service 'worker' runs Celery as root through C_FORCE_ROOT, and "
        "no non-root user is known (the stage its override builds runs as root); give its image one (the "
        "Dockerfile pass non-root-user) and C_FORCE_ROOT can go (no fix applied)",
    ]


def test_a_shared_block_is_fixed_for_all_or_none(tmp_path: Path) -> None:
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / ID / "shared-anchor" / "input", work)
    text = (work / "compose.yaml").read_text().replace("  beat:\n", "  beat:  # e2i-fix: ignore[no-force-root]\n")
    (work / "compose.yaml").write_text(text)
    assert main(["--apply", "--select", ID, str(work)]) == 0
    assert (work / "compose.yaml").read_text() == text
    assert findings(work, ID) == [
        "<dir>/compose.yaml:5:7: [no-force-root] services 'worker', 'beat' run Celery as root through C_FORCE_ROOT "
        "in a shared environment block (shared with 'beat', which opts out of no-force-root) (no fix applied)",
    ]
    flower = config(FIXTURES / ID / "shared-anchor" / "expected", ["compose.yaml"])["services"]["flower"]
    assert "user" not in flower and "C_FORCE_ROOT" not in flower["environment"]


def test_the_user_non_root_user_gives_the_stage_in_the_same_run(tmp_path: Path) -> None:
    """The stage has no user yet: with non-root-user in the run (an unsafe fix), the worker
    drops C_FORCE_ROOT for the user that pass gives the stage, in one run and as unsafe; without
    it, C_FORCE_ROOT stays and the finding points at non-root-user."""
    compose = ("services:\n  worker:\n    build: .\n    command: celery -A app worker\n    environment:\n"
               "      - BROKER_URL=redis://redis:6379/0\n      - C_FORCE_ROOT=1\n")
    dockerfile = "FROM python:3.12-slim\nWORKDIR /app\nCOPY . .\n"
    for name, select, unsafe in [("both", f"{ID},non-root-user", True), ("safe", f"{ID},non-root-user", False),
                                 ("alone", ID, True)]:
        work = tmp_path / name
        work.mkdir()
        (work / "compose.yaml").write_text(compose)
        (work / "Dockerfile").write_text(dockerfile)
        extra = ["--unsafe-fixes"] if unsafe else []
        said = findings(work, select, *extra)
        main(["--apply", "--select", select, *extra, str(work)])
        svc = config(work, ["compose.yaml"])["services"]["worker"]
        if name == "both":
            assert any("drop C_FORCE_ROOT and run as app:app; non-root-user gives stage 0 `USER app` in this run" in line
                       for line in said)
            assert svc.get("user") == "app:app" and "C_FORCE_ROOT" not in str(svc["environment"])
            assert "USER app" in (work / "Dockerfile").read_text()
        else:
            assert "user" not in svc and "C_FORCE_ROOT" in svc["environment"]
            assert any("no non-root user is known" in line and "non-root-user" in line for line in said)
