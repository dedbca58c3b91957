"""missing-build-files: a missing context or Dockerfile is reported at the compose line, with
an official image or a frontend scaffold where the right fix is known."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from e2i_fix import dockerfile, source
from e2i_fix._main import main

from conftest import ROOT, compose_config, snapshot

ID = "missing-build-files"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_the_example_feast_gets_its_official_image_and_the_frontend_is_reported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "e2i"
    shutil.copytree(ROOT / "examples" / "e2i", root)
    assert main(["--check", "--select", ID, str(root)]) == 1
    out = capsys.readouterr().out
    assert "service 'feast' cannot be built: its Dockerfile 'docker/Dockerfile.feast' does not exist" in out
    assert "service 'frontend' cannot be built: its Dockerfile 'docker/frontend/Dockerfile' does not exist" in out
    before = snapshot(root)
    assert main(["--apply", "--select", ID, str(root)]) == 0  # unsafe: the default run writes nothing
    assert snapshot(root) == before
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(root)]) == 1
    text = (root / "docker-compose.yml").read_text()
    assert "  feast:\n    image: feastdev/feature-server:0.40.1\n    command: feast serve" in text
    assert "docker/Dockerfile.feast" not in text
    proc = compose_config(root, ["docker-compose.yml"], "--no-interpolate", "-q")
    assert proc.returncode == 0, proc.stderr
    capsys.readouterr()
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(root)]) == 0  # nothing left to write
    err = capsys.readouterr().err
    assert "'frontend' cannot be built" in err and "'feast'" not in err  # the frontend stays a finding


def test_a_missing_build_file_is_an_error_in_sarif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  app:\n    build: ./nowhere\n"})
    assert main(["--check", "--format", "sarif", "--select", ID, str(tmp_path)]) == 1  # a finding, not a failure
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [(ID, "error")]
    assert "its build context 'nowhere' does not exist" in results[0]["message"]["text"]
    assert results[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 3


FRONTEND = {
    "compose.yaml": (
        "services:\n"
        "  api:\n"
        "    build: ./api\n"
        "    command: uvicorn app:app --host 0.0.0.0 --port 8080\n"
        "  web:\n"
        "    build:\n"
        "      context: ./web\n"
        "      dockerfile: docker/Dockerfile\n"
        "    depends_on:\n"
        "      - api\n"
        "    ports:\n"
        "      - \"8081:80\"\n"
    ),
    "api/Dockerfile": "FROM python:3.12-slim\nCOPY app.py .\n",
    "api/app.py": "",
    "web/package.json": '{"scripts": {"dev": "vite", "build": "vite build"}, "devDependencies": {"vite": "^5"}}\n',
    "web/package-lock.json": "{}\n",
}


def test_a_frontend_with_a_package_json_gets_a_dockerfile_and_its_nginx_conf(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, FRONTEND)
    assert main(["--dry-run", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"--- /dev/null\n+++ {(tmp_path / 'web' / 'docker' / 'Dockerfile').as_posix()}\n" in out
    assert not (tmp_path / "web" / "docker").exists()
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    df = (tmp_path / "web" / "docker" / "Dockerfile").read_text()
    conf = (tmp_path / "web" / "docker" / "nginx.conf").read_text()
    assert "COPY package.json package-lock.json ./\nRUN npm ci\n" in df
    assert "COPY docker/nginx.conf /etc/nginx/conf.d/default.conf" in df  # relative to the context
    assert "COPY --from=build /app/dist /usr/share/nginx/html" in df
    stages = [s.name for s in dockerfile.parse(source.decode(Path("Dockerfile"), df.encode())).stages]
    assert stages == ["deps", "dev", "build", "production"]
    assert "proxy_pass http://api:8080;" in conf
    assert "location = /health" in conf and "try_files $uri $uri/ /index.html;" in conf and "gzip on;" in conf
    assert conf.count("{") == conf.count("}")
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 0  # nothing missing now
    proc = compose_config(tmp_path, ["compose.yaml"], "--no-interpolate", "-q")
    assert proc.returncode == 0, proc.stderr


def test_an_existing_nginx_conf_is_kept(tmp_path: Path) -> None:
    write(tmp_path, {**FRONTEND, "web/docker/nginx.conf": "mine\n"})
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    assert (tmp_path / "web" / "docker" / "nginx.conf").read_text() == "mine\n"
    assert (tmp_path / "web" / "docker" / "Dockerfile").is_file()


@pytest.mark.parametrize(("compose", "message"), [
    ("services:\n  app:\n    build: ./gone\n", "its build context 'gone' does not exist"),
    ("services:\n  app:\n    build:\n      context: .\n      dockerfile: Dockerfile.prod\n",
     "its Dockerfile 'Dockerfile.prod' does not exist"),
    # `image:` with `build:` names what the build makes: pulling it instead would be wrong.
    ("services:\n  feast:\n    image: my/feast:dev\n    build: ./feast\n", "its build context 'feast' does not exist"),
])
def test_reported_only_where_no_fix_is_known(tmp_path: Path, compose: str, message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"compose.yaml": compose})
    before = snapshot(tmp_path)
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 0
    assert snapshot(tmp_path) == before
    err = capsys.readouterr().err
    assert message in err and "(no fix applied)" in err


def test_a_present_build_is_not_reported(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  app:\n    build: .\n", "Dockerfile": "FROM alpine\n"})
    assert main(["--check", "--select", ID, str(tmp_path)]) == 0
