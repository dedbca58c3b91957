"""frontend-network: fixture stacks, the example, the corpus; who can reach whom judged on the
networks the real Compose CLI reports (`config --format json`, every profile)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from e2i_fix import project as proj
from e2i_fix._main import main
from e2i_fix.engine import Workspace
from e2i_fix.passes import frontend_network as fn

from conftest import ROOT, compose_config, corpus_run, outside_the_repository, snapshot

ID = "frontend-network"
FIXTURES = Path(__file__).parent / "fixtures" / ID
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


@pytest.fixture(autouse=True)
def every_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPOSE_PROFILES", "*")


def apply(*args: str | Path) -> int:
    return main(["--apply", "--unsafe-fixes", "--select", ID, *map(str, args)])


def index(folder: Path, files: list[str]) -> proj.Project:
    ws = Workspace(proj.Stack(folder, [folder / f for f in files]))
    ws.load()
    return ws.project([])


def config(folder: Path, files: list[str]) -> dict[str, Any]:
    proc = compose_config(folder, files, "--format", "json", "--no-interpolate")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def reachable(cfg: dict[str, Any], src: str, dst: str, host: str) -> bool:
    """Whether `src` can resolve `host` to `dst` on a network they share: by service or
    container name on any, by an alias only on the network that has it."""
    svcs = cfg["services"]
    a, b = svcs[src].get("networks") or {}, svcs[dst].get("networks") or {}
    for net in set(a) & set(b):
        spec = b[net] or {}
        if host in (dst, svcs[dst].get("container_name")) or host in (spec.get("aliases") or []):
            return True
    return False


def links_kept(before: Path, after: Path, files: list[str]) -> int:
    """Every link the pass can infer in the original stack still resolves after it; returns
    how many links were checked."""
    project = index(before, files)
    old, new = config(before, files), config(after, files)
    known = fn.hosts(project)
    checked = 0
    for name, svc in project.services.items():
        via: dict[str, set[str]] = {}
        fn.talks_to(project, svc, known, via)
        for dst, used in via.items():
            if name not in new["services"] or dst not in new["services"]:
                continue  # not in this variant
            for host in used:
                if reachable(old, name, dst, host):
                    assert reachable(new, name, dst, host), (files, name, dst, host)
                    checked += 1
    return checked


def variants(folder: Path) -> list[list[str]]:
    stacks = [s for s in proj.discover([folder]) if isinstance(s, proj.Stack)]
    out = []
    for s in stacks:
        names = [p.name for p in s.compose]
        out += [[names[0]]] + [[names[0], n] for n in names[1:]]
    return out


def networks(cfg: dict[str, Any], service: str) -> set[str]:
    return set(cfg["services"][service].get("networks") or {})


def members(cfg: dict[str, Any], net: str) -> set[str]:
    return {s for s in cfg["services"] if net in networks(cfg, s)}


# --- fixture stacks -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_fixture(tmp_path: Path, case: str) -> None:
    work = tmp_path / case
    shutil.copytree(FIXTURES / case / "input", work)
    before = snapshot(work)
    expected = snapshot(FIXTURES / case / "expected")
    assert apply(work) == (0 if expected == before else 1)
    assert snapshot(work) == expected
    assert apply(work) == 0, "not idempotent"
    assert snapshot(work) == expected


@pytest.mark.parametrize("case", CASES)
def test_no_link_is_lost(case: str) -> None:
    for files in variants(FIXTURES / case / "input"):
        links_kept(FIXTURES / case / "input", FIXTURES / case / "expected", files)


@pytest.mark.parametrize(
    ("case", "frontend", "net", "together"),
    [
        pytest.param("two-backends", "web", "frontend", {"web", "api", "auth"}, id="two backends"),
        pytest.param("proxy-config", "web", "shop_frontend", {"web", "api"}, id="nginx upstream by alias"),
        pytest.param("dockerfile-config", "frontend", "frontend_network", {"frontend", "backend"},
                     id="nginx.conf the Dockerfile copies"),
        pytest.param("shared-caller", "ui", "frontend", {"ui", "api"}, id="the API calls the frontend"),
    ],
)
def test_the_frontend_is_alone_with_what_it_talks_to(case: str, frontend: str, net: str, together: set[str]) -> None:
    cfg = config(FIXTURES / case / "expected", ["compose.yaml"])
    declared = {k: (v or {}).get("name", k) for k, v in cfg["networks"].items()}
    key = next(k for k, name in declared.items() if name.endswith(net))
    assert networks(cfg, frontend) == {key}
    assert members(cfg, key) == together
    before = config(FIXTURES / case / "input", ["compose.yaml"])
    for svc in together - {frontend}:  # the backends keep every network they had
        assert networks(before, svc) <= networks(cfg, svc)


def test_aliases_and_addresses_are_kept() -> None:
    cfg = config(FIXTURES / "proxy-config" / "expected", ["compose.yaml"])
    api = cfg["services"]["api"]["networks"]
    assert api["data"]["ipv4_address"] == "172.28.0.10"
    assert api["backend"]["aliases"] == ["shop-api"] and api["frontend"]["aliases"] == ["shop-api"]
    assert cfg["services"]["web"]["networks"]["frontend"]["aliases"] == ["www"]


@pytest.mark.parametrize("case", ["no-frontend", "gateway", "discovered-by-proxy", "gateway-network", "own-networks",
                                  "one-shot-jobs"])
def test_nothing_changes(case: str) -> None:
    assert snapshot(FIXTURES / case / "input") == snapshot(FIXTURES / case / "expected")


def check(folder: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What `--check` reports on `folder` as a production stack (a copy outside the repository),
    the copy named as `folder`."""
    capsys.readouterr()
    with outside_the_repository(folder) as work:
        main(["--check", "--unsafe-fixes", "--select", ID, str(work)])
        return capsys.readouterr().out.replace(str(work), str(folder)).splitlines()


def test_findings_name_the_links_and_their_sources(capsys: pytest.CaptureFixture[str]) -> None:
    f = FIXTURES / "two-backends" / "input" / "compose.yaml"
    assert check(f.parent, capsys) == [
        f"{f}:2:3: [{ID}] frontend 'web' (its environment has VITE_API_URL) moves to network `frontend`, shared only "
        "with api (environment VITE_API_URL), auth (environment VITE_AUTH_URL)"]
    g = FIXTURES / "gateway" / "input" / "compose.yaml"
    assert check(g.parent, capsys) == [
        f"{g}:2:3: [{ID}] service 'traefik' runs traefik: a reverse proxy in front of the stack, left on its networks (no fix applied)",
        f"{g}:9:3: [{ID}] service 'web' talks to a, b, c: three services or more, a network of its own would cut it off "
        "from little, left on its networks (no fix applied)"]


def test_a_quoted_upstream_is_read() -> None:
    """`server "api:8000";` names the API: the proxy keeps a network with it."""
    cfg = config(FIXTURES / "quoted-upstream" / "expected", ["compose.yaml"])
    assert networks(cfg, "proxy") == {"frontend"}
    assert reachable(cfg, "proxy", "api", "api") and reachable(cfg, "proxy", "web", "web")
    assert not reachable(cfg, "proxy", "db", "db")


def test_a_backend_is_no_frontend(capsys: pytest.CaptureFixture[str]) -> None:
    """A gunicorn API that hands the browser a NEXT_PUBLIC_ variable, built from a root whose
    package.json depends on react, and its RQ workers: none is a frontend, and the workers are
    called nothing they are not (no "reverse proxy")."""
    assert check(FIXTURES / "backend-browser-vars" / "input", capsys) == []


@pytest.mark.parametrize(
    ("dockerfile", "command", "why"),
    [
        pytest.param("FROM node:20 AS ui\nRUN npm run build\nFROM python:3.12-slim\nCMD [\"gunicorn\", \"app:app\"]\n", None,
                     None, id="python final stage: the root package.json is the browser app's"),
        pytest.param("FROM node:20-alpine\nCMD [\"npm\", \"start\"]\n", None, "its package.json depends on react",
                     id="node serves the app"),
        pytest.param("FROM node:20-alpine\nCMD [\"npm\", \"start\"]\n", "python -m app.api", None,
                     id="a python command on a node image"),
    ],
)
def test_what_runs_decides(tmp_path: Path, dockerfile: str, command: str | None, why: str | None) -> None:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    (tmp_path / "package.json").write_text('{"dependencies": {"react": "^18.0.0"}}')
    cmd = f"    command: {command}\n" if command else ""
    (tmp_path / "compose.yaml").write_text(f"services:\n  app:\n    build: .\n{cmd}")
    project = index(tmp_path, ["compose.yaml"])
    assert fn.frontend_reason(project, project.services["app"]) == why


def test_a_named_network_is_never_left(capsys: pytest.CaptureFixture[str]) -> None:
    f = FIXTURES / "named-network" / "input" / "compose.yaml"
    assert check(f.parent, capsys) == [
        f"{f}:3:3: [{ID}] frontend 'web' is on network `edge`, which has an explicit name (`name: edge`: outside stacks "
        "and proxies attach to it): left on its networks (no fix applied)"]


def test_a_gateway_keeps_its_networks(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """nginx-proxy finds `web` by its VIRTUAL_HOST through the Docker socket and reaches it only
    on proxy-tier; Traefik with a file provider reaches `web` on `default`: neither is taken off
    the network its proxy uses."""
    f = FIXTURES / "discovered-by-proxy" / "input" / "compose.yaml"
    assert check(f.parent, capsys) == [
        f"{f}:16:3: [{ID}] frontend 'web' carries VIRTUAL_HOST, by which nginx-proxy finds it through the Docker socket "
        "and reaches it only on a network they share: left on its networks (no fix applied)",
        f"{f}:29:3: [{ID}] service 'proxy' runs nginx-proxy: a reverse proxy in front of the stack, left on its networks "
        "(no fix applied)"]
    g = FIXTURES / "gateway-network" / "input" / "compose.yaml"
    assert check(g.parent, capsys)[1] == (
        f"{g}:12:3: [{ID}] frontend 'web' shares network `default` with 'traefik', which runs traefik: a reverse proxy "
        "in front of the stack reaches it there, left on its networks (no fix applied)")
    # Without the variables, the network it shares with the proxy still holds it.
    work = tmp_path / "w"
    shutil.copytree(f.parent, work)
    text = (work / "compose.yaml").read_text()
    (work / "compose.yaml").write_text(text.replace("      - VIRTUAL_HOST=app.example.org\n", "")
                                       .replace("      - LETSENCRYPT_HOST=app.example.org\n", ""))
    assert check(work, capsys)[0].endswith(
        "frontend 'web' shares network `proxy-tier` with 'proxy', which runs nginx-proxy: a reverse proxy in front of the "
        "stack reaches it there, left on its networks (no fix applied)")


@pytest.mark.parametrize(
    ("service", "why"),
    [
        pytest.param("  web:\n    image: nginx:1.27\n    environment:\n      VIRTUAL_HOST: a.example.org\n",
                     "carries VIRTUAL_HOST, by which nginx-proxy finds it through the Docker socket", id="VIRTUAL_HOST"),
        pytest.param("  web:\n    image: nginx:1.27\n    labels:\n      - traefik.http.routers.web.rule=Host(`a`)\n",
                     "carries the label traefik.http.routers.web.rule, by which Traefik finds it through the Docker "
                     "socket", id="traefik labels"),
        pytest.param("  web:\n    image: nginx:1.27\n    labels:\n      traefik.enable: 'false'\n"
                     "      traefik.http.routers.web.rule: Host(`a`)\n", None, id="traefik.enable=false"),
        pytest.param("  web:\n    image: nginx:1.27\n    labels:\n      caddy: a.example.org\n"
                     "      caddy.reverse_proxy: '{{upstreams 80}}'\n",
                     "carries the label caddy, by which caddy-docker-proxy finds it through the Docker socket",
                     id="caddy-docker-proxy labels"),
        pytest.param("  web:\n    image: nginx:1.27\n    labels:\n      caddyfile.owner: me\n", None,
                     id="a label that only starts like caddy"),
    ],
)
def test_what_a_discovering_gateway_finds(tmp_path: Path, service: str, why: str | None) -> None:
    (tmp_path / "compose.yaml").write_text(f"services:\n{service}")
    project = index(tmp_path, ["compose.yaml"])
    assert fn.discovered(project, project.services["web"]) == why


@pytest.mark.parametrize(
    ("service", "why"),
    [
        pytest.param("    image: traefik:v3.1\n", "runs traefik", id="a reverse proxy image"),
        pytest.param("    image: nginx:1.27\n    volumes:\n      - /var/run/docker.sock:/tmp/docker.sock:ro\n",
                     "passes requests on and mounts the Docker socket (/var/run/docker.sock), where it finds its "
                     "backends", id="a web server with the Docker socket"),
        pytest.param("    image: nginx:1.27\n", None, id="a web server alone"),
        pytest.param("    image: ghcr.io/example/agent:1\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n",
                     None, id="the socket without a proxy"),
    ],
)
def test_what_is_a_gateway(tmp_path: Path, service: str, why: str | None) -> None:
    (tmp_path / "compose.yaml").write_text(f"services:\n  edge:\n{service}")
    project = index(tmp_path, ["compose.yaml"])
    assert fn.gateway(project, project.services["edge"], {}, fn.hosts(project)) == why


def test_a_stack_that_draws_its_own_networks(capsys: pytest.CaptureFixture[str]) -> None:
    """nginx alone on webnet beside the app's network, the stores on internal ones: the pass
    stands down rather than leave webnet unused to cut nginx off a side service."""
    f = FIXTURES / "own-networks" / "input" / "compose.yaml"
    assert check(f.parent, capsys) == [
        f"{f}:4:3: [{ID}] frontend 'nginx' is on `webnet`, a network of the stack's own that it has to itself: the "
        "stack draws its networks itself, left on them (no fix applied)"]


def test_an_all_in_one_server_is_no_frontend(tmp_path: Path) -> None:
    """A node image under the name `web` whose ENTRYPOINT is s6's `/init` (the app server and
    its workers in one container) is a backend."""
    (tmp_path / "Dockerfile").write_text('FROM node:22-slim\nCOPY . /app\nENTRYPOINT ["/init"]\n')
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    build: .\n")
    project = index(tmp_path, ["compose.yaml"])
    web = project.services["web"]
    assert fn.frontend_reason(project, web) is None
    assert fn.backend(project, web) == ("it runs /init (the ENTRYPOINT at Dockerfile:3), a process supervisor: an "
                                        "all-in-one container of several servers")
    (tmp_path / "Dockerfile").write_text('FROM node:22-slim\nCOPY . /app\nCMD ["node", "server.js"]\n')
    project = index(tmp_path, ["compose.yaml"])
    assert fn.frontend_reason(project, project.services["web"]) == "it runs node under the name 'web'"


@pytest.mark.parametrize(
    ("value", "links"),
    [
        pytest.param("redis", {"redis"}, id="a bare host name"),
        pytest.param("nginx, redis", {"nginx", "redis"}, id="a list of host names"),
        pytest.param("http://api:8000/v1", {"api"}, id="a URL"),
        pytest.param("the redis cache", set(), id="words in a sentence"),
        pytest.param("production", set(), id="a word that names no service"),
    ],
)
def test_host_names_in_the_environment(tmp_path: Path, value: str, links: set[str]) -> None:
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  app:\n    image: x\n    environment:\n      HOSTS: {value}\n"
        "  redis:\n    image: redis:7\n  nginx:\n    image: nginx\n  api:\n    image: y\n")
    project = index(tmp_path, ["compose.yaml"])
    assert set(fn.talks_to(project, project.services["app"], fn.hosts(project))) == links


def test_unsafe_only(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "two-backends" / "input", tmp_path / "w")
    assert main(["--apply", "--select", ID, str(tmp_path / "w")]) == 0
    assert snapshot(tmp_path / "w") == snapshot(FIXTURES / "two-backends" / "input")


def test_frontends_option(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "compose.yaml").write_text("services:\n  api:\n    image: x\n    depends_on: [db]\n"
                                                 "  db:\n    image: y\n  cache:\n    image: z\n")
    (tmp_path / "w" / ".e2i-fix.toml").write_text(f'[{ID}]\nfrontends = ["api"]\n')
    assert apply(tmp_path / "w") == 1
    cfg = config(tmp_path / "w", ["compose.yaml"])
    assert networks(cfg, "api") == {"frontend"} and networks(cfg, "db") == {"default", "frontend"}


# --- the example and the corpus -------------------------------------------------------------


def test_example_frontend_shares_a_network_with_the_api_only(tmp_path: Path) -> None:
    work = tmp_path / "e2i"
    shutil.copytree(ROOT / "examples" / "e2i", work)
    assert apply(work) == 1
    for files in variants(work):
        cfg = config(work, files)
        assert networks(cfg, "frontend") == {"frontend_network"}
        assert members(cfg, "frontend_network") == {"frontend", "api"}
        assert networks(cfg, "api") == {"e2i_network", "mlops_network", "frontend_network"}
        assert links_kept(ROOT / "examples" / "e2i", work, files) > 0
    assert apply(work) == 0


def test_corpus(tmp_path: Path) -> None:
    """No service loses a link, Compose judges every variant as before, a second run finds
    nothing. (The corpus holds compose files and Dockerfiles, not the proxy configs they
    mount: a proxy whose config is not there passes requests to what is not known, so the pass
    may leave every frontend of the corpus where it is; its moves are the fixtures'.)"""
    run, extra = corpus_run(tmp_path, apply, fixes=False)
    changed = set(run.changed)
    checked = 0
    for folder, files in run.variants:
        rel = folder.relative_to(run.root)
        if any(str(rel / f) in changed for f in files):
            checked += links_kept(run.before_root / rel, folder, files)
    assert checked >= len(changed)
    assert run.verdicts_kept() >= len(changed)
    assert apply(run.root, *extra) == 0
    assert snapshot(run.root) == run.after


def test_a_one_shot_job_of_a_gateway_image_is_no_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    """`kong migrations bootstrap` (named like a migration) and `kong migrations up && kong
    migrations finish` (commanded like one), restarted only on failure, run the gateway's image
    and exit: neither is a reverse proxy in front of the stack, nor a frontend."""
    f = FIXTURES / "one-shot-jobs" / "input" / "compose.yaml"
    assert check(f.parent, capsys) == [
        f"{f}:4:3: [{ID}] service 'gateway' runs kong: a reverse proxy in front of the stack, left on its networks "
        "(no fix applied)"]
    project = index(f.parent, ["compose.yaml"])
    for name in ("gateway-migrations", "schema"):
        svc = project.services[name]
        assert fn.gateway(project, svc, {}, fn.hosts(project)) is None
        assert fn.frontend_reason(project, svc) is None
    assert fn.gateway(project, project.services["gateway"], {}, fn.hosts(project)) == "runs kong"


def test_a_proxy_whose_config_folder_is_empty_in_the_repository_stays(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A setup script renders the proxy's conf.d before the first `up`: the folder the stack
    mounts holds no configuration in the repository, so where the proxy passes requests is
    not known, and it is not taken off the network its upstreams are on."""
    shutil.copytree(FIXTURES / "proxy-config" / "input", tmp_path / "w")
    work = tmp_path / "w"
    moved = check(work, capsys)
    assert any("moves to network" in line for line in moved), moved
    (work / "nginx" / "conf.d" / "default.conf").unlink()
    compose = work / "compose.yaml"  # a link the config no longer gives: the proxy waits for the api
    compose.write_text(compose.read_text().replace("      - \"80:80\"\n", "      - \"80:80\"\n    depends_on: [api]\n", 1))
    (work / "nginx" / "conf.d" / ".gitkeep").write_text("")
    held = check(work, capsys)
    assert [line for line in held if "frontend 'web'" in line] == [
        f"{work / 'compose.yaml'}:4:3: [{ID}] frontend 'web': its proxy configuration is mounted from nginx/conf.d/, "
        "which holds no configuration file in the repository (something writes it at setup): what it passes "
        "requests to is not known, left on its networks (no fix applied)"]

