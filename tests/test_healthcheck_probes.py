"""healthcheck-probes: fixture stacks, inline cases and the example stack, judged by bytes and by
the real Compose CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e2i_fix._main import main

from startup_helpers import FIXTURES, cases, config, findings, run_fixture

ID = "healthcheck-probes"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "e2i"


@pytest.mark.parametrize("case", cases(ID))
def test_fixture(tmp_path: Path, case: str) -> None:
    run_fixture(tmp_path, ID, case)


@pytest.mark.parametrize(
    ("case", "service", "test"),
    [
        pytest.param("vite-dev", "frontend", ["CMD", "wget", "-q", "--spider", "http://localhost:5173/"],
                     id="vite by command"),
        pytest.param("vite-dev", "dashboard", ["CMD", "curl", "-f", "http://localhost:5173/"],
                     id="vite by port and VITE_ variables, Dockerfile missing"),
        pytest.param("curl-missing", "api", ["CMD", "python3", "-c", "import urllib.request; "
                     "urllib.request.urlopen('http://localhost:8000/health', timeout=5)"], id="slim: python"),
        pytest.param("curl-missing", "web", ["CMD", "wget", "-q", "--spider", "http://localhost:3000/"],
                     id="alpine: busybox wget"),
        pytest.param("curl-missing", "tools", ["CMD", "curl", "-f", "http://localhost:9000/"],
                     id="curl installed by apt-get"),
        pytest.param("port", "api", ["CMD", "python", "-c", "import urllib.request; "
                     "urllib.request.urlopen('http://localhost:8001/health')"], id="port from the command"),
        pytest.param("port", "opik", ["CMD", "curl", "-f", "http://localhost:8080/health-check"],
                     id="the image's well-known port"),
        pytest.param("port", "jaeger", ["CMD", "wget", "--spider", "http://localhost:14269/"],
                     id="published ports prove nothing"),
        pytest.param("worker-inherits", "worker",
                     ["CMD-SHELL", "celery -A app.celery_app inspect ping -d celery@$$HOSTNAME"],
                     id="celery worker inheriting the API's HEALTHCHECK"),
        pytest.param("worker-inherits", "api", None, id="the API keeps its image's check"),
    ],
)
def test_compose_reads_the_probe(case: str, service: str, test: list[str] | None) -> None:
    svc = config(FIXTURES / ID / case / "expected", ["compose.yaml"])["services"][service]
    assert (svc.get("healthcheck") or {}).get("test") == test


def test_disabled_where_no_probe_is_known() -> None:
    svcs = config(FIXTURES / ID / "worker-inherits" / "expected", ["compose.yaml"])["services"]
    assert svcs["beat"]["healthcheck"] == {"disable": True}
    assert svcs["scheduler-worker"]["healthcheck"] == {"disable": True}


def test_nginx_location_is_reported() -> None:
    assert findings(FIXTURES / ID / "nginx-location" / "input", ID) == [
        "<dir>/compose.yaml:7:7: [healthcheck-probes] service 'proxy': the health check probes /health, which "
        "the nginx config the service mounts or copies has no `location` for; add `location = /health "
        "{ return 200; }` or probe / (no fix applied)",
        "<dir>/compose.yaml:11:7: [healthcheck-probes] service 'static': the health check probes /healthz, which "
        "the nginx image's default config has no `location` for; add `location = /healthz { return 200; }` or "
        "probe / (no fix applied)",
    ]


def test_fixes_are_unsafe(tmp_path: Path) -> None:
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / ID / "port" / "input", work)
    assert main(["--apply", "--select", ID, str(work)]) == 0
    assert findings(work, ID) == [
        "<dir>/compose.yaml:6:7: [healthcheck-probes] service 'api': the health check probes port 8000, but the "
        "service listens on 8001 (its command `gunicorn app:app --bind 0.0.0.0:8001`); probe 8001 (no fix applied)",
        "<dir>/compose.yaml:12:7: [healthcheck-probes] service 'opik': the health check probes port 5173, but the "
        "service listens on 8080 (the image's port (Opik docker-compose README: backend on 8080 (HTTP) and 3003 "
        "(OpenAPI); frontend on 5173 (https://github.com/comet-ml/opik/blob/main/deployment/docker-compose/README.md))); "
        "probe 8080 "
        "(no fix applied)",
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("services:\n  a:\n    image: python:3.12\n    healthcheck:\n      test: [CMD, curl, -f, "
                     "'http://localhost:8000/']\n", id="full python image has curl"),
        pytest.param("services:\n  a:\n    image: example/x:1\n    healthcheck:\n      test: [CMD, curl, -f, "
                     "'http://localhost:8000/health']\n", id="unknown image"),
        pytest.param("services:\n  a:\n    image: node:20-alpine\n    command: npx vite --port 4000\n    healthcheck:\n"
                     "      test: [CMD, wget, -q, --spider, 'http://localhost:4000/']\n", id="vite on /"),
        pytest.param("services:\n  a:\n    image: node:20\n    healthcheck:\n      disable: true\n", id="disabled"),
        pytest.param("services:\n  a:\n    image: example/x:1\n    command: serve --port $PORT\n    healthcheck:\n"
                     "      test: [CMD, curl, 'http://localhost:8000/']\n", id="port from a variable"),
        pytest.param("services:\n  a:\n    image: node:20\n    command: npm run dev\n    ports: ['3000:3000']\n"
                     "    healthcheck:\n      test: [CMD, curl, -f, 'http://localhost:3000/api/health']\n",
                     id="npm run dev off Vite's port: another dev server may have the route"),
        pytest.param("services:\n  a:\n    image: nginx:1.27\n    volumes: ['./n.conf:/etc/nginx/conf.d/default.conf']\n"
                     "    healthcheck:\n      test: [CMD, curl, -f, 'http://localhost:8080/']\n",
                     id="nginx's port is its config's"),
        pytest.param("services:\n  a:\n    image: ghcr.io/comet-ml/opik/opik-backend:1.0\n    environment:\n"
                     "      SERVER_PORT: '9000'\n    healthcheck:\n      test: [CMD, curl, -f, 'http://localhost:9000/']\n",
                     id="a port moved by a variable"),
        pytest.param("services:\n  a:\n    image: ghcr.io/comet-ml/opik/opik-frontend:1.0\n    healthcheck:\n"
                     "      test: [CMD, curl, -f, 'http://localhost:${NGINX_PORT:-5173}/health']\n",
                     id="a port from a variable in the probe"),
    ],
)
def test_noop(tmp_path: Path, text: str) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 0
    assert f.read_text() == text


def test_example(tmp_path: Path) -> None:
    """The frontend's dev health check on Vite's /health is reported; the worker, built from the
    API's image with a Celery command, is reported for the HEALTHCHECK it inherits."""
    work = tmp_path / "e2i"
    shutil.copytree(EXAMPLE, work)
    lines = findings(work, ID)
    assert "<dir>/docker-compose.yml:122:7: [healthcheck-probes] service 'frontend': the health check probes " \
           "/health, which the vite dev server does not have (it serves 5173, vite's port, with VITE_* variables); " \
           "probe / instead (no fix applied)" in lines
    assert any(line.startswith("<dir>/docker-compose.yml:70:3: [healthcheck-probes] service 'worker' inherits its "
                               "image's HEALTHCHECK (Dockerfile line 93), which probes port 8000") for line in lines)
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(work)]) == 1
    svcs = config(work, ["docker-compose.yml"])["services"]
    assert svcs["frontend"]["healthcheck"]["test"] == ["CMD", "curl", "-f", "http://localhost:5173/"]
    assert svcs["worker"]["healthcheck"]["test"][1].startswith("celery -A e2i.worker.celery_app inspect ping")


def test_timings_alone_keep_the_image_check_and_get_a_test(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\nHEALTHCHECK CMD python -c \"import urllib.request; "
                                         "urllib.request.urlopen('http://localhost:8000/')\"\n")
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  w:\n    build: .\n    command: celery -A proj worker\n    healthcheck:\n      interval: 1m\n")
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    assert f.read_text().endswith("    healthcheck:\n      interval: 1m\n"
                                  "      test: [\"CMD-SHELL\", \"celery -A proj inspect ping -d celery@$$HOSTNAME\"]\n")
    assert config(tmp_path, ["compose.yaml"])["services"]["w"]["healthcheck"]["interval"] == "1m0s"


# --- the port each variant serves -------------------------------------------------------------


def test_a_debugger_port_is_not_the_server() -> None:
    """debugpy's `--listen 5678` is the debugger's; uvicorn under it still serves 8000, the port
    the check probes: nothing to say in either variant."""
    assert findings(FIXTURES / ID / "debugger-listen" / "input", ID, "--unsafe-fixes") == []


def test_uvicorn_without_a_port_serves_8000() -> None:
    assert findings(FIXTURES / ID / "uvicorn-default" / "input", ID, "--unsafe-fixes") == [
        "<dir>/compose.yaml:7:7: [healthcheck-probes] service 'api': the health check probes port 8080, but the "
        "service listens on 8000 (uvicorn listens on 8000 by default); probe 8000",
    ]


def test_a_fix_for_one_variant_goes_to_its_file() -> None:
    """The dev file runs Flask on 5000; the base runs gunicorn on 8000. The base's check stays
    as it is (it is right with the base alone); the dev file gets a test of its own."""
    assert findings(FIXTURES / ID / "variant-port" / "input", ID, "--unsafe-fixes") == [
        "<dir>/compose.dev.yaml:3:3: [healthcheck-probes] service 'api' with compose.yaml + compose.dev.yaml: the "
        "health check probes port 8000, but the service listens on 5000 (its command `flask --app app run --host "
        "0.0.0.0 --port 5000 --reload`); probe 5000",
    ]
    folder = FIXTURES / ID / "variant-port" / "expected"
    base = config(folder, ["compose.yaml"])["services"]["api"]["healthcheck"]
    dev = config(folder, ["compose.yaml", "compose.dev.yaml"])["services"]["api"]["healthcheck"]
    assert base["test"][-1] == "http://localhost:8000/health"
    assert dev["test"][-1] == "http://localhost:5000/health"
    assert dev["interval"] == base["interval"] == "30s" and dev["retries"] == 3  # the shared timings still hold


@pytest.mark.parametrize(("expose", "moved"), [
    pytest.param("EXPOSE 80\n", False, id="the image exposes the probed port"),
    pytest.param("", True, id="nothing says the probed port serves"),
])
def test_a_port_variable_does_not_outrank_the_port_the_image_exposes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], expose: str, moved: bool) -> None:
    """`node` with PORT=8080 says the app listens on 8080; where the image EXPOSEs the port the
    probe asks (a launcher that starts a proxy on 80 in front of the app), the probe stays and
    the finding says which to check."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(f"FROM node:20-alpine\nCOPY . /app\n{expose}CMD [\"node\", \"/app/run.mjs\"]\n")
    (tmp_path / "app" / "run.mjs").write_text("// starts the proxy and the app\n")
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    build: ./app\n    environment:\n      PORT: \"8080\"\n"
        "    healthcheck:\n      test: [\"CMD\", \"wget\", \"-q\", \"--spider\", \"http://localhost:80/\"]\n")
    main(["--apply", "--unsafe-fixes", "--select", "healthcheck-probes", str(tmp_path)])
    out = capsys.readouterr()
    text = (tmp_path / "compose.yaml").read_text()
    assert ("localhost:8080" in text) is moved, out
    if not moved:
        assert "the image EXPOSEs 80, which may be what answers" in out.out + out.err
