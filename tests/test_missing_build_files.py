"""missing-build-files: missing contexts and Dockerfiles reported at their compose line; the
official image for a well-known service; a frontend scaffold (Dockerfile + nginx.conf)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from e2i_fix._main import main

from conftest import compose_config, fixture_case

ID = "missing-build-files"
FIXTURES = Path(__file__).parent / "fixtures" / ID
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_fixture(tmp_path: Path, case: str) -> None:
    fixture_case(FIXTURES, case, ID, tmp_path, "--unsafe-fixes")


def test_compose_reads_the_image(tmp_path: Path) -> None:
    proc = compose_config(FIXTURES / "feast-and-frontend" / "expected", ["compose.yaml"], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    feast = json.loads(proc.stdout)["services"]["feast"]
    assert feast["image"] == "feastdev/feature-server:0.40.1" and "build" not in feast


def test_scaffold_serves_health_proxy_and_spa() -> None:
    expected = FIXTURES / "feast-and-frontend" / "expected" / "docker" / "frontend"
    conf = (expected / "nginx.conf").read_text()
    assert "listen 5173;" in conf  # the port compose publishes and its health check calls
    assert "location = /health" in conf and "proxy_pass http://api:8000;" in conf
    assert "try_files $uri $uri/ /index.html;" in conf and "gzip on;" in conf
    dockerfile = (expected / "Dockerfile").read_text()
    froms = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert froms[0].endswith(" AS dev") and froms[-1].startswith("FROM nginx:")  # nginx is what compose builds
    assert "RUN apk add --no-cache curl" in dockerfile  # the health check runs curl
    assert "COPY docker/frontend/nginx.conf /etc/nginx/conf.d/default.conf" in dockerfile


def test_reported_without_unsafe_fixes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "feast-and-frontend" / "input", work)
    capsys.readouterr()
    assert main(["--check", "--select", ID, str(work)]) == 1
    cap = capsys.readouterr()
    out = cap.out + cap.err
    assert f"{work / 'compose.yaml'}:13:19: [{ID}] service 'feast': Dockerfile `docker/Dockerfile.feast` does not exist" in out
    assert "service 'frontend': Dockerfile `docker/frontend/Dockerfile` does not exist" in out
    assert not (work / "docker" / "frontend").exists()


def test_missing_context_is_a_finding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  worker:\n    build: ./nowhere\n")
    capsys.readouterr()
    assert main(["--check", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    cap = capsys.readouterr()
    assert f"{tmp_path / 'compose.yaml'}:3:12: [{ID}] service 'worker': build context `nowhere` does not exist" in cap.out + cap.err


def test_never_over_an_existing_nginx_conf(tmp_path: Path) -> None:
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "package-json" / "input", work)
    (work / "web" / "nginx.conf").write_text("# mine\n")
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(work)]) == 1
    assert (work / "web" / "nginx.conf").read_text() == "# mine\n"
    assert (work / "web" / "Dockerfile").is_file()


def test_every_pass_over_the_scaffold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Later passes report inside a file an earlier round created: located in that file."""
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "feast-and-frontend" / "input", work)
    capsys.readouterr()
    assert main(["--dry-run", "--unsafe-fixes", str(work)]) == 1
    cap = capsys.readouterr()
    assert f"{work / 'docker' / 'frontend' / 'Dockerfile'}:7:1: [lockfile] COPY source `frontend/package.json`" in cap.out + cap.err
