"""The Project index: stacks found on disk, services merged across files, builds followed into
Dockerfile stages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2i_fix import dockerfile, project, source
from e2i_fix.engine import Workspace

from conftest import compose_config


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def index(root: Path, *names: str) -> project.Project:
    stack = project.Stack(root, [root / n for n in names])
    ws = Workspace(stack)
    ws.load()
    return ws.project([])


def test_discover_groups_by_folder(tmp_path: Path) -> None:
    write(tmp_path, {
        "compose.yaml": "services: {}\n",
        "compose.override.yaml": "services: {}\n",
        "docker-compose.prod.yml": "services: {}\n",
        "notes.yml": "a: 1\n",
        "sub/docker-compose.yml": "services: {}\n",
        "node_modules/x/compose.yaml": "services: {}\n",
        ".hidden/compose.yaml": "services: {}\n",
    })
    stacks = [s for s in project.discover([tmp_path]) if isinstance(s, project.Stack)]
    assert [[p.name for p in s.compose] for s in stacks] == [
        ["compose.yaml", "compose.override.yaml", "docker-compose.prod.yml"],
        ["docker-compose.yml"],
    ]


def test_services_merge_across_files_and_extends(tmp_path: Path) -> None:
    write(tmp_path, {
        "compose.yaml": (
            "x-common: &common\n  restart: always\n  environment: [A=1]\n"
            "services:\n"
            "  base:\n    <<: *common\n    image: python:3.12\n"
            "  child:\n    extends: base\n    environment:\n      B: '2'\n"
        ),
        "compose.override.yaml": "services:\n  base:\n    environment:\n      - C=3\n    depends_on: [child]\n",
    })
    p = index(tmp_path, "compose.yaml", "compose.override.yaml")
    base = p.services["base"]
    assert [d.doc.path.name for d in base.defs] == ["compose.yaml", "compose.override.yaml"]
    assert base.config["restart"] == "always"
    assert base.config["environment"] == {"A": "1", "C": "3"}
    assert base.config["depends_on"] == {"child": {"condition": "service_started", "required": True}}
    child = p.services["child"]
    assert child.config["image"] == "python:3.12"
    assert child.config["environment"] == {"A": "1", "B": "2"}
    assert base.home is not None and base.home.doc.path.name == "compose.yaml"
    assert p.sharers(base.home.node) == ["base"]


def test_anchored_service_is_shared(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  a: &a\n    image: x\n  b:\n    <<: *a\n  c: *a\n"})
    p = index(tmp_path, "compose.yaml")
    a = p.services["a"]
    assert a.home is not None
    assert sorted(p.sharers(a.home.node)) == ["a", "b", "c"]
    assert p.services["c"].home is None  # an alias is not a place to add keys


DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG PY=3.12
FROM python:${PY}-slim AS base
RUN useradd -m app
USER app
HEALTHCHECK CMD curl -f http://localhost/ || exit 1

FROM base AS dev
RUN pip install \\
    # a comment inside a continuation
    debugpy
COPY --chown=app requirements.txt pyproject.toml ./

FROM base AS prod
USER root
HEALTHCHECK NONE
COPY ["uv.lock", "/app/"]
COPY --from=dev /x /y
RUN <<EOF
echo hi
EOF
CMD ["gunicorn"]
"""


def test_build_follows_into_the_target_stage(tmp_path: Path) -> None:
    write(tmp_path, {
        "compose.yaml": (
            "services:\n"
            "  dev:\n    build: {context: ., dockerfile: docker/Dockerfile, target: dev}\n"
            "  prod:\n    build:\n      context: .\n      dockerfile: docker/Dockerfile\n"
            "  missing:\n    build: ./nowhere\n"
            "  remote:\n    build: https://github.com/x/y.git\n"
        ),
        "docker/Dockerfile": DOCKERFILE,
    })
    p = index(tmp_path, "compose.yaml")
    dev = p.services["dev"].build
    assert dev is not None and dev.stage is not None
    assert dev.stage.name == "dev" and dev.stage.parent is not None and dev.stage.parent.name == "base"
    assert dev.stage.user == "app"  # inherited from base
    assert dev.stage.healthcheck is not None
    assert dev.stage.root_image == "python:${PY}-slim"
    assert [srcs for _, srcs in dev.stage.copies()] == [["requirements.txt", "pyproject.toml"]]
    assert p.services["dev"].has_healthcheck
    prod = p.services["prod"]
    assert prod.build is not None and prod.build.stage is not None and prod.build.stage.name == "prod"
    assert prod.build.stage.user == "root"
    assert prod.build.stage.healthcheck is None and not prod.has_healthcheck  # HEALTHCHECK NONE
    assert [srcs for _, srcs in prod.build.stage.copies()] == [["uv.lock"]]  # --from and heredocs skipped
    missing = p.services["missing"].build
    assert missing is not None and missing.dockerfile == tmp_path / "nowhere" / "Dockerfile" and missing.doc is None
    remote = p.services["remote"].build
    assert remote is not None and remote.context is None


def test_dockerfile_positions_are_exact(tmp_path: Path) -> None:
    doc = dockerfile.parse(source.decode(tmp_path / "Dockerfile", DOCKERFILE.replace("\n", "\r\n").encode()))
    assert doc.directives == {"syntax": "docker/dockerfile:1"}
    for ins in doc.instructions:
        assert doc.text[ins.start :].upper().startswith(ins.name)
        assert doc.text[ins.end : ins.end + 2] in ("\r\n", "")
    run = [i for i in doc.instructions if i.name == "RUN"]
    assert run[1].args.split() == ["pip", "install", "debugpy"]  # joined as BuildKit joins lines
    assert run[2].heredocs == ("EOF",)
    assert doc.text[run[2].start : run[2].end].endswith("EOF")


@pytest.mark.parametrize(
    ("config", "name", "expected"),
    [
        ({"command": "celery -A app worker -l info"}, "tasks", "worker"),
        ({"command": ["rq", "worker"]}, "q", "worker"),
        ({"command": "celery -A app flower"}, "flower", None),
        ({"command": "gunicorn app:app -k uvicorn.workers.UvicornWorker"}, "x", "api"),
        ({"entrypoint": ["uvicorn"], "command": ["main:app"]}, "x", "api"),
        ({"image": "nginx"}, "backend", "api"),
        ({"image": "nginx"}, "web", None),
        ({"image": "busybox"}, "email-worker", "worker"),
    ],
)
def test_role(config: dict[str, object], name: str, expected: str | None) -> None:
    assert project.role(project.Service(name, [], config)) == expected


@pytest.mark.parametrize(
    ("image", "family"),
    [
        ("redis:7-alpine", "redis"),
        ("docker.io/library/postgres:16@sha256:abc", "postgres"),
        ("ghcr.io/mlflow/mlflow:v2.16.2", "mlflow"),
        ("localhost:5000/team/api", "api"),
        (None, None),
    ],
)
def test_image_family(image: str | None, family: str | None) -> None:
    assert project.image_family(image) == family


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"s": {"a": {"x": 1}}}, {"s": {"a": {"x": 1}}}, []),
        ({"s": {"a": {"x": 1}}}, {"s": {"a": {"x": True}}}, [("s", "a", "x")]),  # equal under ==
        ({"s": {"a": {"x": 1}}}, {"s": {"a": {"x": 1.0}}}, [("s", "a", "x")]),
        ({"s": {"a": {"x": 1, "y": 2}}}, {"s": {"a": {"y": 2, "x": 1}}}, []),  # key order is no change
        ({"s": {"a": {"x": [1]}}}, {"s": {"a": {"x": [1, 2]}}}, [("s", "a", "x")]),
        ({"s": {"a": {}}}, {"s": {"a": {}, "b": {}}}, [("s", "b")]),
    ],
)
def test_model_differences_are_strict_about_types(old: dict[str, object], new: dict[str, object],
                                                  expected: list[tuple[str, ...]]) -> None:
    from e2i_fix import model

    assert sorted(model.differences(old, new)) == expected


# --- !reset and !override -------------------------------------------------------------------

TAGGED_BASE = """\
services:
  web:
    image: nginx
    ports: ["8080:80", "9000:9000"]
    command: [serve, --port, "80"]
    environment: {A: "1", B: "2"}
    volumes: [./site:/usr/share/nginx/html, cache:/cache]
    tmpfs: [/run]
    healthcheck: {test: [CMD, curl, -f, localhost], interval: 5s}
  backup:
    image: alpine
"""


@pytest.mark.parametrize(("override", "expected"), [
    pytest.param("services:\n  backup: !reset null\n", {"backup": None}, id="service reset"),
    pytest.param("services:\n  web:\n    ports: !override [\"8081:80\"]\n", {"web.ports": ["8081:80"]}, id="list override"),
    pytest.param("services:\n  web:\n    ports: !reset []\n", {"web.ports": None}, id="list reset"),
    pytest.param("services:\n  web:\n    environment: !override {C: '3'}\n", {"web.environment": {"C": "3"}},
                 id="mapping override"),
    pytest.param("services:\n  web:\n    environment: !reset {}\n", {"web.environment": None}, id="mapping reset"),
    pytest.param("services:\n  web:\n    image: !reset\n", {"web.image": None}, id="scalar reset"),
    pytest.param("services:\n  web:\n    image: !override caddy\n", {"web.image": "caddy"}, id="scalar override"),
    pytest.param("services:\n  web: !override\n    image: caddy\n", {"web": {"image": "caddy"}}, id="service override"),
    pytest.param("services:\n  web:\n    environment: [B=3, C=4]\n", {"web.environment": {"A": "1", "B": "3", "C": "4"}},
                 id="environment by key"),
    pytest.param("services:\n  web:\n    volumes: [./dev:/usr/share/nginx/html]\n",
                 {"web.volumes": ["./dev:/usr/share/nginx/html", "cache:/cache"]}, id="volumes by target"),
    pytest.param("services:\n  web:\n    command: [serve]\n    healthcheck: {test: [CMD, true]}\n",
                 {"web.command": ["serve"], "web.healthcheck": {"test": ["CMD", True], "interval": "5s"}},
                 id="command and test replace"),
    pytest.param("services:\n  web:\n    ports: [\"9000:9000\", \"9443:443\"]\n",
                 {"web.ports": ["8080:80", "9000:9000", "9443:443"]}, id="ports append without duplicates"),
])
def test_override_tags_merge_as_compose_does(tmp_path: Path, override: str, expected: dict[str, object]) -> None:
    write(tmp_path, {"compose.yaml": TAGGED_BASE, "compose.override.yaml": override})
    p = index(tmp_path, "compose.yaml", "compose.override.yaml")
    services = p.model((0, 1))["services"]
    for where, want in expected.items():
        got: object = services
        for k in where.split("."):
            got = got.get(k) if isinstance(got, dict) else None
        assert got == want, where
    assert p.model((0,))["services"]["backup"] == {"image": "alpine"}  # the base alone is as written


def test_reset_service_is_nobodys_to_fix(tmp_path: Path) -> None:
    """Where every variant that defines it drops it. A `!reset` in an override leaves the base
    run alone with the service, and an `!override` there leaves it its own key: an edit of the
    base counts in that variant."""
    over = "services:\n  backup: !reset null\n  web:\n    tmpfs: !override [/tmp]\n"
    write(tmp_path, {"compose.yaml": TAGGED_BASE, "compose.override.yaml": over})
    p = index(tmp_path, "compose.yaml", "compose.override.yaml")
    backup, web = p.services["backup"], p.services["web"]
    assert backup.reset is None and backup.home is backup.defs[0]
    assert [s.name for s in project.targets(p, "logging", {})] == ["web", "backup"]
    assert web.defs[1].tags == {("tmpfs",): "!override"}
    assert web.shadows(web.defs[0], "tmpfs") is None  # the base alone keeps it
    assert web.shadows(web.defs[1], "tmpfs") is None  # the override owns it
    assert web.config["tmpfs"] == ["/tmp"]
    # A stack whose only variant is the base with the override: the override wins everywhere.
    write(tmp_path / "one", {"compose.yaml": TAGGED_BASE, "compose.override.yaml": over})
    ws = Workspace(project.Stack(tmp_path / "one", [tmp_path / "one/compose.yaml", tmp_path / "one/compose.override.yaml"]))
    ws.load()
    q = ws.project([])
    q.plan = [((0, 1), "chain", True)]
    backup, web = q.services["backup"], q.services["web"]
    assert backup.reset is backup.defs[1] and backup.home is None
    assert web.shadows(web.defs[0], "tmpfs") is web.defs[1]
    assert web.shadows(web.defs[0], "logging") is None


def test_service_override_moves_home(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": TAGGED_BASE, "compose.override.yaml": "services:\n  web: !override\n    image: caddy\n"})
    web = index(tmp_path, "compose.yaml", "compose.override.yaml").services["web"]
    assert web.home is web.defs[1]
    assert web.shadows(web.defs[0], "logging") is None  # the base run alone keeps its own web


@pytest.mark.parametrize("text", [
    "services:\n  a: !reset null\n",
    "services:\n  a: !reset\n",
    "services:\n  a: !reset {}\n",
    "services:\n  a:\n    image: x\n    ports: !reset\n",
    "services:\n  a:\n    image: x\n    environment:\n      A: !reset\n",
    "services:\n  a:\n    image: x\n    command: !override [a, b]\n",
])
def test_tagged_nodes_parse_and_leave_the_value(text: str) -> None:
    doc = project.parse_compose(source.decode(Path("compose.override.yaml"), text.encode()))
    assert doc.tags
    assert "!reset" not in repr(doc.value) and "!override" not in repr(doc.value)


# --- include and extends: file: ---------------------------------------------------------------

INCLUDING = {
    "compose.yaml": (
        "include:\n  - sub/compose.yaml\n  - path: [tpl/a.yml, tpl/b.yml]\n    project_directory: tpl\n"
        "services:\n  web:\n    image: nginx\n    depends_on: [db]\n"
        "    extends: {file: tpl/base.yml, service: common}\n"
    ),
    "sub/compose.yaml": "services:\n  db:\n    image: postgres\n    build: ./ctx\n    env_file: db.env\n",
    "sub/ctx/Dockerfile": "FROM postgres:16\nHEALTHCHECK CMD pg_isready\n",
    "tpl/a.yml": "services:\n  a:\n    image: a\n",
    "tpl/b.yml": "services:\n  a:\n    environment: [X=1]\n  b:\n    image: b\n",
    "tpl/base.yml": "services:\n  common:\n    build: ./app\n    volumes: [./v:/v]\n",
}


def test_included_files_join_the_stack(tmp_path: Path) -> None:
    write(tmp_path, INCLUDING)
    p = index(tmp_path, "compose.yaml")
    assert p.roles == ["base", "include", "include", "include", "extends"]
    assert p.variants() == [(0,)]
    assert sorted(p.services) == ["a", "b", "db", "web"]  # `common` is a template, not a service
    db = p.services["db"]
    assert db.home is not None and db.home.doc.path == tmp_path / "sub/compose.yaml"
    assert db.config["build"] == "sub/ctx"  # relative to the stack, as `config --no-path-resolution` says
    assert db.has_healthcheck  # its Dockerfile, found from its own folder
    assert p.service_env_files(db) == [] and project.env_file_paths(db.config, p.folder)[0][0] == tmp_path / "sub/db.env"
    assert p.services["a"].config == {"image": "a", "environment": {"X": "1"}}  # one include, merged
    web = p.services["web"].config
    assert web["build"] == "tpl/app" and "extends" not in web
    # A bind mount moved onto the stack's folder is long form (`tpl/v:/v` would be a named volume).
    assert web["volumes"] == [{"source": "tpl/v", "target": "/v", "type": "bind", "bind": {"create_host_path": True}}]


def test_discovery_gives_an_included_file_to_its_includer(tmp_path: Path) -> None:
    write(tmp_path, {**INCLUDING,
                     "app/docker-compose.yml": "services:\n  x:\n    extends: {file: docker-compose.base.yml, service: b}\n",
                     "app/docker-compose.base.yml": "services:\n  b:\n    image: b\n",
                     "app/docker-compose.dev.yml": "services:\n  x:\n    environment: [DEBUG=1]\n",
                     "other/compose.yaml": "include: [../sub/compose.yaml]\nservices:\n  o:\n    image: o\n"})
    stacks = [s for s in project.discover([tmp_path]) if isinstance(s, project.Stack)]
    names = [[str(p.relative_to(tmp_path)) for p in s.compose] for s in stacks]
    # The base file that only `extends` reaches is not an override; sub/compose.yaml and tpl/ are
    # not stacks of their own.
    assert names == [["compose.yaml"], ["app/docker-compose.yml", "app/docker-compose.dev.yml"], ["other/compose.yaml"]]
    assert stacks[2].context == {tmp_path / "sub/compose.yaml"}  # the first includer edits it


def test_reset_in_an_included_project(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "include:\n  - path: [inc/compose.yaml, inc/compose.local.yaml]\n"
                                     "services:\n  web:\n    image: nginx\n",
                     "inc/compose.yaml": "services:\n  db:\n    image: postgres\n  cache:\n    image: redis\n",
                     "inc/compose.local.yaml": "services:\n  cache: !reset null\n"})
    p = index(tmp_path, "compose.yaml")
    assert sorted(p.model((0,))["services"]) == ["db", "web"]


def test_profiles_and_the_services_that_run(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": (
        "services:\n  web:\n    image: nginx\n  flower:\n    image: flower\n    profiles: [flower, debug]\n"
        "  debugger:\n    image: dbg\n    profiles: [debug]\n")})
    p = index(tmp_path, "compose.yaml")
    web, flower, dbg = (p.services[n] for n in ("web", "flower", "debugger"))
    assert p.profiles() == ["debug", "flower"]
    assert [s.name for s in p.running()] == ["web"]
    assert [s.name for s in p.running(["debug"])] == ["web", "flower", "debugger"]
    assert [s.name for s in p.running(["*"])] == ["web", "flower", "debugger"]
    assert p.always_with(flower, web) and p.always_with(dbg, flower)
    assert not p.always_with(web, flower) and not p.always_with(flower, dbg)


def test_environment_a_service_really_gets(tmp_path: Path) -> None:
    write(tmp_path, {
        "compose.yaml": ("services:\n  worker:\n    image: w\n    env_file: [common.env, {path: local.env, required: false}]\n"
                         "    environment: [DEBUG=0, PORT=8000]\n"),
        "common.env": "# shared\nC_FORCE_ROOT=true\nDEBUG=1\nexport TOKEN='x y'\nSHELL_ONLY\n",
    })
    p = index(tmp_path, "compose.yaml")
    env = p.environment(p.services["worker"])
    assert env == {"C_FORCE_ROOT": "true", "DEBUG": "0", "TOKEN": "x y", "SHELL_ONLY": None, "PORT": "8000"}


@pytest.mark.parametrize(("text", "expected"), [
    ("${A}", "1"), ("$A-x", "1-x"), ("${NONE}", ""), ("${NONE:-d}", "d"), ("${EMPTY:-d}", "d"), ("${EMPTY-d}", ""),
    ("${A:+alt}", "alt"), ("${NONE:+alt}", ""), ("$$A", "$A"), ("${NONE:-${A}}", "1"), ("plain", "plain"),
])
def test_interpolate(text: str, expected: str) -> None:
    assert project.interpolate(text, {"A": "1", "EMPTY": ""}) == expected


def test_default_profiles_come_from_dotenv(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  a:\n    image: a\n  b:\n    image: b\n    profiles: [gpu]\n",
                     ".env": "DEVICE=gpu\nCOMPOSE_PROFILES=${DEVICE},${ENGINE:-es}\n"})
    p = index(tmp_path, "compose.yaml")
    assert p.default_profiles == ("gpu", "es")
    assert [s.name for s in p.running()] == ["a", "b"] and [s.name for s in p.running([])] == ["a"]


@pytest.mark.parametrize(("spec", "context", "dockerfile", "target"), [
    pytest.param({"context": ".", "target": "${RUNTIME}-runtime"}, ".", "Dockerfile", "apache-runtime", id="target from .env"),
    pytest.param({"context": ".", "target": "${KIND:-fpm}-runtime"}, ".", "Dockerfile", "fpm-runtime", id="target default"),
    pytest.param({"context": ".", "target": "${NONE}-runtime"}, ".", "Dockerfile", "${NONE}-runtime", id="no value: as written"),
    pytest.param({"context": "${APP_DIR}", "dockerfile": "docker/${FLAVOUR:-prod}.Dockerfile"}, "app",
                 "app/docker/prod.Dockerfile", None, id="context and dockerfile"),
    pytest.param({"context": "${NONE}"}, None, None, None, id="a context with no value names no folder"),
])
def test_build_fields_are_read_as_compose_reads_them(tmp_path: Path, spec: dict[str, str], context: str | None,
                                                     dockerfile: str | None, target: str | None) -> None:
    env = {"RUNTIME": "apache", "APP_DIR": "app"}
    b = project.resolve_build(spec, tmp_path, env)
    assert b is not None
    assert b.context == (None if context is None else project.resolve_build({"context": context}, tmp_path).context)
    assert (b.dockerfile is None) == (dockerfile is None)
    if dockerfile is not None:
        assert b.dockerfile is not None and b.dockerfile.as_posix().endswith(dockerfile)
    assert b.target == target


@pytest.mark.parametrize("reset", ["!reset {}", "!reset null", "!reset []"])
def test_what_a_reset_carries_is_no_value(tmp_path: Path, reset: str) -> None:
    """`caddy: !reset {}` removes the service, as Compose does (its own value is dropped, not
    merged back as an empty service); a reset key of a service is gone likewise."""
    write(tmp_path, {"compose.yaml": "services:\n  web:\n    image: nginx\n    environment:\n      A: '1'\n"
                                     "  caddy:\n    image: caddy\n",
                     "compose.override.yaml": f"services:\n  caddy: {reset}\n  web:\n    environment: {reset}\n"})
    p = index(tmp_path, "compose.yaml", "compose.override.yaml")
    got = p.model((0, 1))["services"]
    assert "caddy" not in got and "environment" not in got["web"]
    proc = compose_config(tmp_path, ["compose.yaml", "compose.override.yaml"], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    real = json.loads(proc.stdout)["services"]
    assert "caddy" not in real and "environment" not in real["web"]
