"""The one reading of each service (e2i_fix.facts): image references, the image table, the
stage and user, what runs, what it writes, its mounts, configs, sizes and ports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2i_fix import engine, facts, project
from e2i_fix.facts import image as images
from e2i_fix.facts import configs


def index(tmp_path: Path, files: dict[str, str]) -> project.Project:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    stack = next(s for s in project.discover([tmp_path]) if isinstance(s, project.Stack))
    ws = engine.Workspace(stack)
    ws.load()
    return ws.project([])


@pytest.mark.parametrize(("written", "env", "repository", "family", "tag", "resolved"), [
    ("postgres:16", {}, "postgres", "postgres", "16", True),
    ("${REGISTRY:-docker.io}/library/postgres:16", {}, "postgres", "postgres", "16", True),
    ("docker.io/library/postgres:16-alpine@sha256:abc", {}, "postgres", "postgres", "16-alpine", True),
    ("redis:${TAG}", {}, "redis", "redis", None, False),
    ("redis:${TAG}", {"TAG": "7.2"}, "redis", "redis", "7.2", True),
    ("redis:${TAG:-7}", {}, "redis", "redis", "7", True),
    ("${REG}/bitnami/redis:7", {}, "bitnami/redis", "redis", "7", False),
    ("ghcr.io/mlflow/mlflow:v2.16.2", {}, "ghcr.io/mlflow/mlflow", "mlflow", "v2.16.2", True),
    ("localhost:5000/team/app:1", {}, "localhost:5000/team/app", "app", "1", True),
    ("mirror.gcr.io/library/postgres", {}, "mirror.gcr.io/postgres", "postgres", None, True),
])
def test_image_reference(written: str, env: dict[str, str], repository: str, family: str, tag: str | None,
                         resolved: bool) -> None:
    ref = images.parse(written, env)
    assert ref is not None
    assert (ref.repository, ref.family, ref.tag, ref.resolved) == (repository, family, tag, resolved)


@pytest.mark.parametrize("written", ["${IMAGE}", "${IMAGE}:${TAG}", ""])
def test_image_unknown(written: str) -> None:
    assert images.parse(written, {}) is None


RUNTIME = {"user", "own_user", "step_down", "root_entrypoint", "cap_add", "file_caps", "volumes", "writes", "renders",
           "read_only", "internal", "internal_ports", "gains", "other_user_gains", "notes", "bounded", "unbounded", "spools"}


def test_every_fact_in_the_table_has_its_source() -> None:
    """One table, every fact with where it comes from: how an image runs (`sources`), its
    probe, its port and its limits (each their own source)."""
    import tomllib

    raw = tomllib.loads(images.DATA.read_text("utf-8"))
    default = set(raw["profiles"]["default"])
    assert raw["images"]
    for key, e in raw["images"].items():
        assert set(e) <= RUNTIME | {"images", "family", "sources", "probe", "probe_min_major", "probe_unless_password",
                                    "probe_source", "probe_start_period", "probe_start_source", "port", "port_source", "cpus", "memory", "documented",
                                    "heap_factor", "limits_source", "limits_images", "settings", "settings_source",
                                    "unsized", "watermark_factor", "watermark_source", "versions", "grows",
                                    "grows_flag", "limit_aware_from", "limit_aware_source"}, key
        assert ("limit_aware_from" in e) == ("limit_aware_source" in e), key
        assert ("grows" in e) == ("grows_flag" in e), key
        if RUNTIME & set(e):
            assert e.get("sources"), key
        # What holds only for some releases: bounded by a release, how the image runs, with its
        # own sources, and only facts the entry also has for its newest release.
        for rule in e.get("versions", ()):
            assert {"from", "upto"} & set(rule) and set(rule) - {"from", "upto"} <= RUNTIME | {"sources"}, key
            assert rule.get("sources") and set(rule) - {"from", "upto", "sources"} <= set(e), key
            assert all(str(rule[b]).replace(".", "").isdigit() for b in ("from", "upto") if b in rule), key
        for folder in (*(e.get("bounded") or {}), *(e.get("unbounded") or {})):
            assert folder.startswith("/"), key
        assert ("probe" in e) == ("probe_source" in e), key
        assert ("probe_start_period" in e) == ("probe_start_source" in e) and ("probe" in e or "probe_start_period" not in e), key
        assert ("port" in e) == ("port_source" in e), key
        assert ("settings" in e) == ("settings_source" in e), key
        assert ("watermark_factor" in e) == ("watermark_source" in e), key
        assert "unsized" not in e or "." in e["limits_source"], key
        if "memory" in e or "cpus" in e:
            assert float(e["cpus"]) > 0 and e["memory"][:-1].isdigit() and isinstance(e["documented"], bool), key
            # A documented figure names the page it rests on.
            assert not e["documented"] or "." in e["limits_source"].rsplit("(", 1)[-1], key
        assert set(e.get("cap_add") or ()) <= default | {"SYS_NICE"}, key
        for caps in (e.get("file_caps") or {}).values():
            assert set(caps) <= default, key
    # No name belongs to two entries.
    names = [n for key, e in raw["images"].items() for n in (key, *e.get("images", ()))]
    assert len(names) == len(set(names))


def test_knowledge_runtime_only_for_the_image_itself() -> None:
    official = images.knowledge(images.parse("postgres:16"))
    assert official.runtime("step_down") == "gosu" and official.soft("port") == 5432
    # bitnami's redis runs the same software, packaged otherwise: its probe and limits hold,
    # not how the official image starts.
    bitnami = images.knowledge(images.parse("bitnami/redis:7"))
    assert bitnami.image is None and bitnami.runtime("step_down") is None
    assert bitnami.soft("port") == 6379 and bitnami.soft("probe")
    # A mirror of an official image is that image.
    assert images.knowledge(images.parse("mirror.gcr.io/library/postgres")).runtime("own_user") == "postgres"


def test_one_family_through_variable_tags(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  a:\n    image: redis:${REDIS_TAG}\n"
                                         "  b:\n    image: ${REGISTRY:-docker.io}/library/redis:7\n",
                         ".env": "REGISTRY=\n"})
    a, b = facts.of(p, "a"), facts.of(p, "b")
    assert a is not None and b is not None
    assert a.knowledge.image is not None and b.knowledge.image is not None
    assert a.knowledge.image.key == b.knowledge.image.key == "redis"
    # Redis 7 steps down with gosu; which release a tag from a variable with no value names is
    # not known, and Redis 8 steps down with setpriv.
    assert b.step_down == "gosu"
    assert a.step_down == "setpriv or gosu"
    assert a.knowledge.runtime("cap_add") is None and a.knowledge.varies("cap_add")
    assert a.starts_as_root and "setpriv or gosu" in a.starts_as_root


@pytest.mark.parametrize(
    ("written", "release"),
    [
        pytest.param("redis:7.4.1-alpine", (7, 4, 1), id="numbers"),
        pytest.param("redis:8", (8,), id="a major"),
        pytest.param("traefik:v3.1", (3, 1), id="a v before the numbers"),
        pytest.param("redis", (), id="no tag: the newest"),
        pytest.param("redis:latest", (), id="latest: the newest"),
        pytest.param("redis:alpine", (), id="a tag without a number: the newest"),
        pytest.param("redis:${TAG}", None, id="a variable with no value"),
        pytest.param("redis@sha256:0123", None, id="a digest"),
    ],
)
def test_the_release_a_tag_names(written: str, release: tuple[int, ...] | None) -> None:
    ref = images.parse(written, {})
    assert ref is not None and ref.release() == release


@pytest.mark.parametrize(
    ("written", "step_down", "volumes", "setpcap"),
    [
        pytest.param("redis:6.2", "gosu", ["/data"], False, id="Redis 6"),
        pytest.param("redis:7-alpine", "gosu", ["/data"], False, id="Redis 7: gosu, VOLUME /data"),
        pytest.param("redis:7.4.2", "gosu", ["/data"], False, id="7.4 is up to 7"),
        pytest.param("redis:8-alpine", "setpriv", [], True, id="Redis 8: setpriv, no VOLUME"),
        pytest.param("redis:8.2", "setpriv", [], True, id="8.2"),
        pytest.param("redis", "setpriv", [], True, id="untagged is the newest"),
        pytest.param("redis:alpine", "setpriv", [], True, id="alpine is the newest"),
    ],
)
def test_redis_facts_by_release(written: str, step_down: str, volumes: list[str], setpcap: bool) -> None:
    """Redis 8's entrypoint steps down with `setpriv --bounding-set=-all`, which needs SETPCAP,
    and its Dockerfiles declare no VOLUME /data; Redis 7's steps down with gosu into VOLUME /data."""
    k = images.knowledge(images.parse(written, {}))
    assert k.runtime("step_down") == step_down and k.runtime("volumes") == volumes
    assert ("SETPCAP" in k.runtime("cap_add")) is setpcap
    assert "/data" in k.runtime("writes")
    assert any(("8" if setpcap else "7") in s for s in k.runtime("sources"))


@pytest.mark.parametrize(
    ("written", "step_down"),
    [
        pytest.param("valkey/valkey:7.2.5", "gosu", id="7.2.5 and before: gosu"),
        pytest.param("valkey/valkey:7.2", "setpriv", id="7.2 is the newest 7.2.x"),
        pytest.param("valkey/valkey:8.1-alpine", "setpriv", id="8.1"),
        pytest.param("valkey/valkey", "setpriv", id="untagged is the newest"),
    ],
)
def test_valkey_facts_by_release(written: str, step_down: str) -> None:
    """No valkey image built since valkey-container#84 declares VOLUME /data, whatever its line:
    it writes its snapshots to /data all the same, and no release keeps them in a volume of its
    own. Its step-down leaves the bounding set alone: no SETPCAP in any release."""
    k = images.knowledge(images.parse(written, {}))
    assert k.runtime("step_down") == step_down
    assert k.runtime("volumes") == [] and k.runtime("writes") == ["/data"]
    assert "SETPCAP" not in k.runtime("cap_add")


def test_a_family_match_reads_no_release() -> None:
    """`valkey:7` is matched through the redis family for its probe and limits: its 7 is not
    Redis 7, and how the redis image runs is not valkey's."""
    k = images.knowledge(images.parse("valkey:7"))
    assert k.image is None and k.runtime("step_down") is None and k.soft("port") == 6379


@pytest.mark.parametrize(
    ("written", "user"),
    [pytest.param("haproxy:2.2", "root", id="before 2.4"), pytest.param("haproxy:2", "haproxy", id="2 is the newest 2.x"),
     pytest.param("haproxy:2.4", "haproxy", id="2.4"), pytest.param("haproxy:lts", "haproxy", id="lts")],
)
def test_a_bound_below_a_major(written: str, user: str) -> None:
    assert images.knowledge(images.parse(written)).runtime("user") == user


DOCKERFILE = """\
ARG BASE=python:3.12-slim
FROM ${BASE} AS base
ARG APP_USER=app
ENV APP_HOME=/srv/app
WORKDIR ${APP_HOME}
COPY docker/entrypoint.sh /usr/local/bin/entrypoint.sh
RUN useradd --system ${APP_USER}
USER ${APP_USER}
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["gunicorn", "app:app"]
"""


def test_stage_user_and_workdir_through_arg_and_env(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  web:\n    build: .\n  other:\n    build:\n      context: .\n"
                                         "      args:\n        APP_USER: svc\n",
                         "Dockerfile": DOCKERFILE, "docker/entrypoint.sh": "#!/bin/sh\nexec \"$@\"\n"})
    web = facts.of(p, "web")
    assert web is not None
    assert web.user.name == "app" and "Dockerfile:8" in web.user.source and not web.user.root
    assert web.workdir == "/srv/app"
    assert web.base is not None and web.base.repository == "python"
    assert web.argv == ["/usr/local/bin/entrypoint.sh", "gunicorn", "app:app"]
    assert [s.origin for s in web.scripts] == [str(Path("docker/entrypoint.sh"))]
    assert web.step_down is None and web.starts_as_root is None
    assert (8000, "gunicorn listens on 8000 by default") in web.ports
    other = facts.of(p, "other")
    assert other is not None and other.user.name == "svc"


def test_step_down_in_an_entrypoint_script(tmp_path: Path) -> None:
    p = index(tmp_path, {
        "compose.yaml": "services:\n  app:\n    build: .\n",
        "Dockerfile": "FROM node:20\nCOPY entrypoint.sh /entrypoint.sh\nENTRYPOINT [\"/entrypoint.sh\"]\nCMD [\"node\", \"server.js\"]\n",
        "entrypoint.sh": "#!/bin/sh\nchown -R node /data\nexec su-exec node \"$@\"\n",
    })
    app = facts.of(p, "app")
    assert app is not None
    assert app.step_down == "su-exec"
    assert app.starts_as_root == "its entrypoint starts as root and steps down with su-exec"
    assert app.base_knowledge.runtime("own_user") == "node"


@pytest.mark.parametrize(("script", "why"), [
    ("#!/bin/sh\nenvsubst < /t.conf > /etc/nginx/conf.d/default.conf\nexec nginx\n", "writes /etc/nginx/conf.d/default.conf"),
    ("#!/bin/sh\nexec supervisord -c /etc/supervisor.conf\n", "starts supervisord"),
    ("#!/bin/sh\nusermod -u \"$PUID\" app\nexec \"$@\"\n", "remaps its user to the PUID/PGID"),
    ("#!/bin/sh\nchown -R app /data\nexec \"$@\"\n", "runs chown"),
    ("#!/bin/sh\ncrudini --set /etc/app/app.conf main debug 1\nexec \"$@\"\n", "writes /etc/app/app.conf"),
    ("#!/bin/sh\nexec su app -c \"$*\"\n", "steps down with su"),
])
def test_why_an_entrypoint_starts_as_root(tmp_path: Path, script: str, why: str) -> None:
    p = index(tmp_path, {
        "compose.yaml": "services:\n  app:\n    build: .\n",
        "Dockerfile": "FROM debian:12\nCOPY start.sh /start.sh\nCMD [\"/start.sh\"]\n",
        "start.sh": script,
    })
    app = facts.of(p, "app")
    assert app is not None and app.starts_as_root is not None and why in app.starts_as_root


def test_compose_entrypoint_resets_the_image_cmd(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  app:\n    build: .\n    entrypoint: [\"sh\", \"-c\", \"echo hi > /var/log/x.log\"]\n",
                         "Dockerfile": "FROM python:3.12\nCMD [\"python\", \"-m\", \"app\"]\n"})
    app = facts.of(p, "app")
    assert app is not None
    assert app.command == (None, None)
    assert app.argv == ["sh", "-c", "echo hi > /var/log/x.log"]
    assert [w.path for w in app.writes] == ["/var/log/x.log"]


def test_a_debugger_port_is_not_the_server(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  api:\n    image: python:3.12\n    command: python -m debugpy --listen 0.0.0.0:5678 -m uvicorn app:app --host 0.0.0.0\n"})
    api = facts.of(p, "api")
    assert api is not None
    assert [port for port, _ in api.ports] == [8000]


def test_writes_of_a_celery_beat_and_its_home(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  beat:\n    image: python:3.12\n    working_dir: /app\n"
                                         "    user: \"1000\"\n    command: celery -A proj beat\n"})
    beat = facts.of(p, "beat")
    assert beat is not None
    assert [w.path for w in beat.writes] == ["/app/celerybeat-schedule"]


def test_mounts(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  db:\n    image: postgres:16\n    volumes:\n"
                                         "      - data:/var/lib/postgresql/data\n      - ./init.sql:/docker-entrypoint-initdb.d/init.sql:ro\n"
                                         "      - type: tmpfs\n        target: /run\n        tmpfs:\n          size: 64m\n"
                                         "volumes:\n  data:\n    external: true\n"})
    db = facts.of(p, "db")
    assert db is not None
    kinds = [(m.kind, m.target, m.read_only, m.external, m.size) for m in db.mounts]
    assert kinds == [("volume", "/var/lib/postgresql/data", False, True, None),
                     ("bind", "/docker-entrypoint-initdb.d/init.sql", True, False, None),
                     ("tmpfs", "/run", False, False, "64m")]
    assert db.mounts[1].host == tmp_path / "init.sql"


NGINX = """\
upstream backend { server "api:8000"; }
server {
  set $front http://web:3000;
  location /api/ { proxy_pass "http://backend"; }
  location / { proxy_pass $front; }
  location /ws { proxy_pass http://${WS_HOST}:9000; }
}
"""


def test_proxy_upstreams_quoted_and_through_variables(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  proxy:\n    image: nginx:1.27\n    volumes:\n"
                                         "      - ./nginx/default.conf:/etc/nginx/conf.d/default.conf:ro\n",
                         "nginx/default.conf": NGINX})
    proxy = facts.of(p, "proxy")
    assert proxy is not None
    assert [c.kind for c in proxy.configs] == ["nginx"]
    got = {(u.host, u.port) for u in configs.upstreams(proxy)}
    assert got == {("api", 8000), ("web", 3000), ("", 9000)}


def test_a_mounted_folder_gives_its_first_config_files_in_path_order(tmp_path: Path) -> None:
    files = {"compose.yaml": "services:\n  proxy:\n    image: nginx:1.27\n    volumes:\n"
                             "      - ./nginx:/etc/nginx/conf.d:ro\n"}
    # Names whose order as paths differs from their order as strings (`a/z` before `a-b`),
    # a hidden file, a folder inside, and more files than are read.
    names = ["a/z.conf", "a-b.conf", "a.conf", ".conf", "b/c/d.cfg", "notes.txt", "x.template"]
    names += [f"many/{i:03}.conf" for i in range(60)]
    files.update({f"nginx/{n}": "server { location / { proxy_pass http://api:8000; } }\n" for n in names})
    proxy = facts.of(index(tmp_path, files), "proxy")
    assert proxy is not None
    got = [c.target for c in proxy.configs]
    assert got[:6] == ["/etc/nginx/conf.d/a/z.conf", "/etc/nginx/conf.d/a-b.conf", "/etc/nginx/conf.d/a.conf",
                       "/etc/nginx/conf.d/b/c/d.cfg", "/etc/nginx/conf.d/many/000.conf",
                       "/etc/nginx/conf.d/many/001.conf"]
    assert len(got) == 50  # the first 50 configuration files of the folder


def test_a_bind_outside_the_project_is_not_read(tmp_path: Path) -> None:
    """`/etc/nginx:/etc/nginx` names the host that runs the stack: what this machine holds there
    decides nothing."""
    outside = tmp_path / "host-etc"
    (outside / "nginx").mkdir(parents=True)
    (outside / "nginx" / "nginx.conf").write_text("server { location / { proxy_pass http://api:8000; } }\n")
    stack = tmp_path / "stack"
    p = index(stack, {"compose.yaml": "services:\n  proxy:\n    image: nginx:1.27\n    volumes:\n"
                                      f"      - {outside}/nginx:/etc/nginx:ro\n"
                                      f"      - {outside}/nginx/nginx.conf:/etc/nginx/nginx.conf:ro\n"
                                      "      - ./site.conf:/etc/nginx/conf.d/site.conf:ro\n",
                      "site.conf": "server { location / { proxy_pass http://web:3000; } }\n"})
    proxy = facts.of(p, "proxy")
    assert proxy is not None
    assert [c.target for c in proxy.configs] == ["/etc/nginx/conf.d/site.conf"]
    assert {(u.host, u.port) for u in configs.upstreams(proxy)} == {("web", 3000)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("upstream app { server api:8000; server api2:8000 backup; }\nserver { location / { proxy_pass http://app; } }",
                     ["api", "api2"], id="upstream"),
        pytest.param("upstream lemmy { server \"lemmy:8536\"; }\nserver { location /api { proxy_pass \"http://lemmy\"; }\n"
                     "location / { proxy_pass 'http://lemmy-ui:1234'; } }", ["lemmy", "lemmy-ui"], id="quoted"),
        pytest.param("location / { proxy_pass http://backend:3000/; }  # proxy_pass http://old;", ["backend"], id="comment"),
        pytest.param("location ~ \\.php$ { fastcgi_pass php:9000; }", ["php"], id="fastcgi"),
        pytest.param("set $u http://api.internal:80; proxy_pass $u;", ["api.internal"], id="variable"),
        pytest.param("location / { root /srv; }", [], id="static"),
    ],
)
def test_nginx_targets(text: str, expected: list[str]) -> None:
    assert list(dict.fromkeys(configs.split_target(t)[0] for t in configs.nginx_targets(text))) == expected


def test_sizes_a_service_asks_for(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  db:\n    image: postgres:16\n"
                                         "    command: postgres -c shared_buffers=2GB -c 'max_connections=300'\n"
                                         "  search:\n    image: opensearchproject/opensearch:2\n"
                                         "    environment:\n      OPENSEARCH_JAVA_OPTS: -Xms1g -Xmx1g\n"
                                         "  web:\n    image: python:3.12\n    command: gunicorn -w 9 app:app\n"})
    db, search, web = (facts.of(p, n) for n in ("db", "search", "web"))
    assert db is not None and db.sizes.shared_buffers == 2 * 1024**3 and db.sizes.max_connections == 300
    assert search is not None and [d.need for d in search.sizes.demands] == [2 * 1024**3]
    assert web is not None and web.sizes.workers is not None and web.sizes.workers[0] == 9


@pytest.mark.parametrize(
    ("files", "needs", "unread", "unsized"),
    [
        pytest.param({"compose.yaml": "services:\n  s:\n    image: postgres:16\n"}, [], [], None,
                     id="postgres with nothing of its own: no demand, the table's figure stands"),
        pytest.param({"compose.yaml": "services:\n  s:\n    image: postgres:16\n"
                                      "    command: postgres -c config_file=/etc/pg/main.conf\n"
                                      "    volumes:\n      - ./main.conf:/etc/pg/main.conf\n",
                      "main.conf": "shared_buffers = 1GB\nwork_mem = 8MB # per sort\n"},
                     [1024 + 100 * 8 + 64], [], None, id="the file config_file names, whatever its name"),
        pytest.param({"compose.yaml": "services:\n  s:\n    image: pgautoupgrade/pgautoupgrade:16-alpine\n"
                                      "    command: postgres -c config_file=/etc/postgresql.conf\n"},
                     [], ["config_file=/etc/postgresql.conf (not a file the stack holds)"], None,
                     id="a config_file the stack does not hold cannot be read"),
        pytest.param({"compose.yaml": "services:\n  s:\n    image: postgres:16\n"
                                      "    command: postgres -c shared_buffers=${PG_SB}\n"},
                     [], ["shared_buffers=${PG_SB}"], None, id="a setting through a variable"),
        pytest.param({"compose.yaml": "services:\n  s:\n    image: rabbitmq:3\n    environment:\n"
                                      "      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "
                                      "'-rabbit vm_memory_high_watermark {absolute,\"512MiB\"}'\n"},
                     [1024], [], None, id="rabbitmq's absolute watermark x 2"),
        pytest.param({"compose.yaml": "services:\n  s:\n    image: example/app:1\n"
                                      "    command: celery -A app worker -c 3 --max-memory-per-child=102400\n"},
                     [400], [], None, id="celery: the main process and 3 children of 100 MiB"),
        pytest.param({"compose.yaml": "services:\n  s:\n    image: example/app:1\n"
                                      "    command: celery -A app worker --max-memory-per-child=102400\n"},
                     [], ["--max-memory-per-child 102400 with no worker count (the default follows the host's CPUs)"],
                     None, id="celery without a worker count"),
        pytest.param({"compose.yaml": "services:\n  s:\n    image: example/app:1\n    environment:\n"
                                      "      APP_HEAP: 2g\n      BROKER_MEM: -Xmx1g -XX:MaxDirectMemorySize=1g\n"},
                     [3072, 2560], [], None, id="a bare *_HEAP size, *_MEM with direct memory"),
        pytest.param({"compose.yaml": "services:\n  s:\n    image: example/app:1\n"
                                      "    command: [\"/usr/bin/supervisord\", \"-n\"]\n"},
                     [], [], "an all-in-one container, whose memory is every server it supervises "
                             "(`supervisord` in its command)", id="supervisord"),
        pytest.param({"compose.yaml": "services:\n  s:\n    build: .\n",
                      "Dockerfile": "FROM node:22-slim\nCOPY root/ /\nENTRYPOINT [\"/init\"]\nCMD [\"node\", \"server.js\"]\n"},
                     [], [], "an all-in-one container, whose memory is every server it supervises "
                             "(`/init` in the ENTRYPOINT at Dockerfile:3)",
                     id="regression: s6's /init in the image's ENTRYPOINT, said so"),
        pytest.param({"compose.yaml": "services:\n  s:\n    image: vllm/vllm-openai:v0.6.3\n"
                                      "    command: --model org/model\n"},
                     [], [], "a model server (vLLM), whose memory is the model it serves", id="a model server image"),
    ],
)
def test_sizes_and_what_no_figure_covers(tmp_path: Path, files: dict[str, str], needs: list[int], unread: list[str],
                                         unsized: str | None) -> None:
    s = facts.of(index(tmp_path, files), "s")
    assert s is not None
    assert sorted(d.need // 1024**2 for d in s.sizes.demands) == sorted(needs)
    assert list(s.sizes.unread) == unread
    assert s.sizes.unsized == unsized


def test_file_capabilities(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  caddy:\n    image: caddy:2\n  own:\n    build: .\n",
                         "Dockerfile": "FROM debian:12\nRUN setcap 'cap_net_bind_service=+ep' /usr/local/bin/server\n"})
    caddy, own = facts.of(p, "caddy"), facts.of(p, "own")
    assert caddy is not None and caddy.file_caps == {"/usr/bin/caddy": ("NET_BIND_SERVICE",)}
    assert own is not None and own.file_caps == {"/usr/local/bin/server": ("NET_BIND_SERVICE",)}


def test_inspect_outranks_the_table(tmp_path: Path) -> None:
    out = tmp_path / "inspect.json"
    out.write_text(json.dumps([{"RepoTags": ["redis:7"], "Config": {"User": "999", "Entrypoint": ["redis-server"],
                                                                     "Cmd": None, "ExposedPorts": {"6380/tcp": {}}}}]))
    images.use_inspect(images.read_inspect(str(out)))
    try:
        p = index(tmp_path / "s", {"compose.yaml": "services:\n  cache:\n    image: redis:7\n"})
        cache = facts.of(p, "cache")
        assert cache is not None
        assert cache.user.name == "999" and "docker image inspect" in cache.user.source
        assert cache.argv == ["redis-server"]
    finally:
        images.use_inspect({})


def test_every_variant(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  api:\n    image: python:3.12\n    command: uvicorn app:app\n",
                         "compose.override.yaml": "services:\n  api:\n    command: uvicorn app:app --port 9000\n"})
    got = [(f.files, [port for port, _ in f.ports]) for f in facts.every(p, "api")]
    assert got == [((0,), [8000]), ((0, 1), [9000])]



def test_one_reading_for_a_service_two_variants_merge_alike(tmp_path: Path) -> None:
    # The override changes api only: db reads the same in both variants, and is worked out once.
    p = index(tmp_path, {"compose.yaml": "services:\n  api:\n    image: python:3.12\n    command: uvicorn app:app\n"
                                         "  db:\n    image: postgres:16\n",
                         "compose.override.yaml": "services:\n  api:\n    command: uvicorn app:app --port 9000\n"})
    (db0, db1), (api0, api1) = facts.every(p, "db"), facts.every(p, "api")
    assert (db0.files, db1.files) == ((0,), (0, 1))
    assert db0.shared is db1.shared and api0.shared is not api1.shared
    assert db0.user is db1.user and db0.user.name == "root"
    assert [port for port, _ in api0.ports] != [port for port, _ in api1.ports]


def test_a_round_reads_again_only_what_changed(tmp_path: Path) -> None:
    files = {"compose.yaml": "services:\n  api:\n    image: python:3.12\n  db:\n    image: postgres:16\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    stack = next(s for s in project.discover([tmp_path]) if isinstance(s, project.Stack))
    ws = engine.Workspace(stack)
    ws.load()
    before = ws.project([])
    old_db, old_api = facts.of(before, "db"), facts.of(before, "api")
    assert old_db is not None and old_api is not None and old_db.user.name == "root"
    path = tmp_path / "compose.yaml"
    ws.texts[path] = ws.texts[path].replace("image: python:3.12", "image: python:3.12\n    user: app")
    after = ws.project([])
    db, api = facts.of(after, "db"), facts.of(after, "api")
    assert db is not None and api is not None
    assert db.shared is old_db.shared and db.user is old_db.user  # db did not change: not read again
    assert api.shared is not old_api.shared and api.user.name == "app"

@pytest.mark.parametrize(("files", "why"), [
    ({"compose.yaml": "services:\n  a:\n    image: nginx\n    deploy:\n      placement:\n        constraints: [node.role == manager]\n"},
     "deploy.placement"),
    ({"compose.yaml": "services:\n  a:\n    image: nginx\n", "deploy.sh": "#!/bin/sh\ndocker stack deploy -c compose.yaml app\n"},
     "deploy.sh runs `docker stack deploy -c compose.yaml app`"),
    ({"compose.yaml": "services:\n  a:\n    image: nginx\n    deploy:\n      resources:\n        limits:\n          memory: 1G\n"}, None),
    # The authors' own words: a comment of the file, a README's Play with Docker stack link.
    ({"compose.yaml": "services:\n  a:\n    image: nginx\n    # not supported in swarm mode\n    tmpfs: [/tmp]\n"},
     "compose.yaml:4 speaks of swarm"),
    ({"compose.yaml": "services:\n  a:\n    image: nginx\n",
      "README.md": "[![Try in PWD](https://x/button.png)](https://labs.play-with-docker.com/?stack=https://raw.example.com/"
                   "main/compose.yaml)\n"}, "README.md deploys compose.yaml as a stack on Play with Docker"),
    ({"compose.yaml": "services:\n  a:\n    image: nginx\n", "README.md": "Run it with docker compose up.\n"}, None),
    ({"compose.yaml": "services:\n  a:\n    image: nginx\n    secrets: [key]\nsecrets:\n  key:\n    external: true\n"},
     "secret 'key' is external"),
    ({"compose.yaml": "services:\n  a:\n    image: nginx\n    secrets: [key]\nsecrets:\n  key:\n    file: ./key.txt\n"}, None),
    # `deploy.mode: global` in files `docker stack deploy` refuses (profiles, extends, long-form
    # depends_on): Compose runs them, whatever the deploy keys say.
    ({"compose.yaml": "services:\n  agent:\n    image: zabbix/zabbix-agent2\n    profiles: [full]\n"
                      "    deploy:\n      mode: global\n"}, None),
    ({"compose.yaml": "services:\n  agent:\n    image: zabbix/zabbix-agent2\n    deploy:\n      mode: global\n"
                      "    depends_on:\n      db:\n        condition: service_started\n  db:\n    image: postgres\n"}, None),
    ({"compose.yaml": "services:\n  agent:\n    image: zabbix/zabbix-agent2\n    deploy:\n      mode: global\n"},
     "deploy.mode"),
])
def test_swarm(tmp_path: Path, files: dict[str, str], why: str | None) -> None:
    got = facts.swarm(index(tmp_path, files))
    assert (got is None) if why is None else (got is not None and why in got)


def test_swarm_from_a_script_elsewhere_in_the_repository(tmp_path: Path) -> None:
    """A deploy script in another folder that names the stack's folder: plane's
    deployments/swarm/community/swarm.sh downloads deployments/cli/community's file and runs
    `docker stack deploy -c` on it."""
    files = {"deploy/cli/prod/compose.yaml": "services:\n  a:\n    image: nginx\n",
             "deploy/swarm/swarm.sh": "#!/bin/sh\nURL=https://example.com/raw/main/deploy/cli/prod\n"
                                      "docker stack deploy -c $FILE app\n"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    stack = project.Stack(tmp_path / "deploy/cli/prod", [tmp_path / "deploy/cli/prod/compose.yaml"], boundary=tmp_path)
    ws = engine.Workspace(stack)
    ws.load()
    assert facts.swarm(ws.project([])) == "deploy/swarm/swarm.sh deploys deploy/cli/prod with `docker stack deploy`"
    # A script that runs the folder with `docker compose` and stack-deploys another whose name
    # starts the same (`deploy/cli/prod-swarm`) does not deploy this one as a stack.
    for script in ("#!/bin/sh\ndocker stack deploy -c other/compose.yaml app\n",
                   "#!/bin/sh\ndocker compose -f deploy/cli/prod/compose.yaml up -d\n"
                   "docker stack deploy -c deploy/cli/prod-swarm/compose.yaml app\n"):
        (tmp_path / "deploy/swarm/swarm.sh").write_text(script)
        facts._deploy_scripts.cache_clear()
        ws = engine.Workspace(stack)
        ws.load()
        assert facts.swarm(ws.project([])) is None


@pytest.mark.parametrize(("compose", "extra", "ports", "why"), [
    pytest.param("    command: python -m debugpy --listen 0.0.0.0:5678 --wait-for-client -m uvicorn app:app --port 9000\n",
                 {}, {9000}, "its command", id="a debugger's port is not the server's"),
    pytest.param("    command: gunicorn app:app\n", {}, {8000}, "gunicorn listens on 8000 by default", id="server default"),
    pytest.param("    volumes: ['./site.conf:/etc/nginx/conf.d/default.conf:ro']\n",
                 {"site.conf": "server {\n  listen 8080;\n  listen [::]:8080;\n  root /srv;\n}\n"}, {8080},
                 "its config site.conf listens on 8080", id="nginx listen"),
    pytest.param("    volumes: ['./site.conf:/etc/nginx/templates/default.conf.template:ro']\n",
                 {"site.conf": "server { listen ${PORT}; }\n"}, set(), "", id="a listen from a variable tells nothing"),
    pytest.param("    command: serve --port $PORT\n", {}, set(), "", id="a port from a variable"),
])
def test_listening(tmp_path: Path, compose: str, extra: dict[str, str], ports: set[int], why: str) -> None:
    from e2i_fix.facts import runs

    image = "nginx:1.27" if "nginx" in compose else "python:3.12"
    p = index(tmp_path, {"compose.yaml": f"services:\n  s:\n    image: {image}\n" + compose, **extra})
    s = facts.of(p, "s")
    assert s is not None
    got, because = runs.listening(s)
    assert got == ports and because.startswith(why)


def test_upstreams_of_a_template_are_filled_from_the_environment(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  proxy:\n    image: nginx:1.27\n    environment:\n"
                                         "      API_HOST: api\n    volumes:\n"
                                         "      - ./default.conf.template:/etc/nginx/templates/default.conf.template\n",
                         "default.conf.template": "server {\n  location /api/ { proxy_pass http://${API_HOST}:8000; }\n"
                                                  "  location / { proxy_pass http://${WEB_HOST}:3000; }\n}\n"})
    proxy = facts.of(p, "proxy")
    assert proxy is not None
    assert {(u.host, u.port) for u in configs.upstreams(proxy)} == {("api", 8000), ("", 3000)}


@pytest.mark.parametrize(("text", "where"), [
    ("not json", ":1:1: not JSON"),
    ('[{"RepoTags": ["x:1"]}]', ":1:1: entry 1 has no Config"),
])
def test_a_bad_inspect_file_is_the_runs_error(tmp_path: Path, text: str, where: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from e2i_fix._main import main

    bad = tmp_path / "inspect.json"
    bad.write_text(text)
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: redis:7\n")
    assert main(["--check", "--inspect", str(bad), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(str(bad) + where)


def test_writes_through_variables_of_a_compose_command(tmp_path: Path) -> None:
    """`$$VAR` in a compose command is the shell's variable: its value comes from the service's
    environment; a target nothing names is an unknown write."""
    p = index(tmp_path, {"compose.yaml": (
        "services:\n  cache:\n    image: memcached:alpine\n    command:\n      - sh\n      - -euc\n      - |\n"
        "        echo 'mech_list: plain' > \"$$SASL_CONF_PATH\"\n"
        "        echo \"u:$$(cat $$PASSWORD_FILE)\" >> \"$${DB_DIR}/sasl-db\"\n"
        "        exec memcached -S\n"
        "    environment:\n      SASL_CONF_PATH: /home/memcache/memcached.conf\n      DB_DIR: /home/memcache\n"
        "  other:\n    image: alpine\n    command: sh -c 'echo x > \"$$OUT\"; exec sleep 1'\n")})
    cache, other = facts.of(p, "cache"), facts.of(p, "other")
    assert cache is not None and other is not None
    got = {(w.path, w.known) for w in cache.writes}
    assert got == {("/home/memcache/memcached.conf", True), ("/home/memcache/sasl-db", True)}
    assert "redirects into it through $SASL_CONF_PATH" in next(w.why for w in cache.writes if w.path.endswith(".conf"))
    assert [(w.path, w.known) for w in other.writes] == [("$OUT", False)]


def test_an_entrypoint_d_folder_copied_whole_is_read(tmp_path: Path) -> None:
    """`COPY docker/entrypoint.d/ /etc/entrypoint.d/`: the image's entrypoint runs each script of
    the folder at start, and what they write is the service's."""
    p = index(tmp_path, {
        "compose.yaml": "services:\n  web:\n    build: .\n",
        "Dockerfile": "FROM debian:12\nCOPY docker/entrypoint.d/ /etc/entrypoint.d/\nCOPY . /var/www/html\n"
                      "USER www-data\nCMD [\"/start.sh\"]\n",
        "docker/entrypoint.d/00-setup.sh": "#!/bin/sh\nset -e\ncp /var/www/html/.env.example /var/www/html/.env\n"
                                           "chmod +x /var/www/html/artisan\n",
    })
    f = facts.of(p, "web")
    assert f is not None
    assert any(s.origin.endswith("00-setup.sh") for s in f.scripts)
    assert "/var/www/html/artisan" in {w.path for w in f.writes}


def test_writes_through_brace_expansion(tmp_path: Path) -> None:
    """`mkdir -p /custom/{files,img}` writes each folder the shell makes of it."""
    p = index(tmp_path, {"compose.yaml": (
        "services:\n  modules:\n    image: alpine\n"
        "    command: sh -c 'mkdir -p /custom/{action,expansion} && exec run'\n")})
    f = facts.of(p, "modules")
    assert f is not None
    assert {w.path for w in f.writes} == {"/custom/action", "/custom/expansion"}


def test_writes_of_config_tools_and_template_folders(tmp_path: Path) -> None:
    p = index(tmp_path, {
        "compose.yaml": "services:\n  app:\n    build: .\n  web:\n    image: nginx:1.27\n    volumes:\n"
                        "      - ./templates:/etc/nginx/templates:ro\n  plain:\n    image: nginx:1.27\n",
        "Dockerfile": "FROM debian:12\nRUN useradd app && mkdir -p /srv/logs && chmod 0777 /srv/logs\n"
                      "COPY start.sh /start.sh\nUSER app\nCMD [\"/start.sh\"]\n",
        "start.sh": "#!/bin/sh\nCONF=/srv/conf/app.ini\ncrudini --set \"$CONF\" main debug 1\nexec app\n",
    })
    app, web, plain = (facts.of(p, n) for n in ("app", "web", "plain"))
    assert app is not None and web is not None and plain is not None
    paths = {w.path: w.why for w in app.writes}
    assert "/srv/conf/app.ini" in paths and "config tool" in paths["/srv/conf/app.ini"]
    assert paths["/srv/logs"].endswith("at line 2")
    assert "/etc/nginx/conf.d" in {w.path for w in web.writes}
    assert "/etc/nginx/conf.d" not in {w.path for w in plain.writes}


def test_a_script_a_build_step_runs_is_not_what_runs(tmp_path: Path) -> None:
    p = index(tmp_path, {
        "compose.yaml": "services:\n  app:\n    build: .\n",
        "Dockerfile": "FROM debian:12\nCOPY install.sh /usr/local/bin/install.sh\nRUN /usr/local/bin/install.sh\n"
                      "CMD [\"sleep\", \"infinity\"]\n",
        "install.sh": "#!/bin/sh\napt-get update && apt-get install -y curl\n",
    })
    app = facts.of(p, "app")
    assert app is not None and app.scripts == () and app.starts_as_root is None


@pytest.mark.parametrize(("dockerfile", "user"), [
    ("FROM node:22-alpine\nWORKDIR /app\n", ("node", "node")),
    ("FROM node:22\nRUN groupmod --new-name dev node \\\n && usermod --login dev --home /home/dev --move-home node\n", ("dev", "dev")),
    ("FROM python:3.12\nARG NAME=svc\nRUN groupadd -g 1001 grp && useradd -u 1001 -g 1001 ${NAME}\n", ("svc", "grp")),
    ("FROM alpine:3.20\nRUN addgroup -S web && adduser -S -G web web\n", ("web", "web")),
    ("FROM python:3.12\n", None),
])
def test_the_image_own_user(tmp_path: Path, dockerfile: str, user: tuple[str, str] | None) -> None:
    from e2i_fix.facts import runs

    p = index(tmp_path, {"compose.yaml": "services:\n  app:\n    build: .\n", "Dockerfile": dockerfile})
    app = facts.of(p, "app")
    assert app is not None
    got = runs.own_user(app)
    assert (got.name, got.group) == user if user is not None else got is None


@pytest.mark.parametrize(("files", "why"), [
    ({".github/workflows/release.yml": "jobs:\n  b:\n    steps:\n      - uses: docker/build-push-action@v6\n"
      "        with:\n          file: ./docker/Dockerfile\n          push: true\n"}, ".github/workflows/release.yml builds docker/Dockerfile"),
    ({".github/workflows/test.yml": "jobs:\n  b:\n    steps:\n      - run: docker build -f docker/Dockerfile .\n"}, None),
    ({".github/workflows/release.yml": "jobs:\n  b:\n    steps:\n      - uses: docker/build-push-action@v6\n"
      "        with:\n          file: ./other/Dockerfile\n          push: true\n"}, None),
])
def test_published(tmp_path: Path, files: dict[str, str], why: str | None) -> None:
    from e2i_fix.facts import runs

    (tmp_path / ".git").mkdir()
    p = index(tmp_path, {"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      dockerfile: docker/Dockerfile\n",
                         "docker/Dockerfile": "FROM python:3.12\n", **files})
    app = facts.of(p, "app")
    assert app is not None
    got = runs.published(app)
    assert (got is None) if why is None else (got is not None and why in got)


def test_published_through_a_registry_tag(tmp_path: Path) -> None:
    from e2i_fix.facts import runs

    p = index(tmp_path, {"compose.yaml": "services:\n  app:\n    image: ghcr.io/acme/app:1.0\n    build: .\n"
                                         "  local:\n    image: localhost:5000/app\n    build: .\n",
                         "Dockerfile": "FROM python:3.12\n"})
    app, local = facts.of(p, "app"), facts.of(p, "local")
    assert app is not None and local is not None
    assert "ghcr.io" in (runs.published(app) or "") and runs.published(local) is None


@pytest.mark.parametrize(("dockerfile", "script", "installed", "granted", "called"), [
    ('FROM debian:12\nARG PACKAGES="curl \\\n  sudo"\nRUN apt-get install -y ${PACKAGES}\n'
     'RUN echo "dev ALL=(ALL) NOPASSWD:ALL" >> /etc/sudoers\n', None, True, True, False),
    ("FROM debian:12\nRUN apt-get install -y sudo curl\n", None, True, False, False),
    ("FROM debian:12\nRUN apt-get install -y sudo && usermod -aG sudo dev\n", None, True, True, False),
    ("FROM debian:12\nCOPY start.sh /start.sh\nCMD [\"/start.sh\"]\n", "#!/bin/sh\nsudo cron\n", False, False, True),
])
def test_sudo(tmp_path: Path, dockerfile: str, script: str | None, installed: bool, granted: bool, called: bool) -> None:
    from e2i_fix.facts import runs

    files = {"compose.yaml": "services:\n  app:\n    build: .\n", "Dockerfile": dockerfile}
    if script is not None:
        files["start.sh"] = script
    p = index(tmp_path, files)
    app = facts.of(p, "app")
    assert app is not None
    got = runs.sudo(app)
    assert (got.installed is not None, got.granted is not None, got.called is not None) == (installed, granted, called)


def test_a_script_a_build_step_only_prepares_is_still_read(tmp_path: Path) -> None:
    p = index(tmp_path, {
        "compose.yaml": "services:\n  app:\n    build: .\n",
        "Dockerfile": "FROM debian:12\nCOPY start.sh /usr/local/bin/start.sh\nRUN chmod +x /usr/local/bin/start.sh\n"
                      "CMD [\"supervisord\"]\n",
        "start.sh": "#!/bin/sh\nchown -R app /data\n",
    })
    app = facts.of(p, "app")
    assert app is not None and [s.origin for s in app.scripts] == ["start.sh"]


def test_the_figures_deploy_limits_lists_are_the_tables() -> None:
    """`--explain deploy-limits` names each image family with its figures: the table gives
    those figures to that family, documented where the explanation says so and generic where
    it says so (caddy and traefik under the reverse-proxy profile; grafana's page gives minimums,
    which are no ceiling)."""
    import re

    from e2i_fix.passes import deploy_limits

    doc = " ".join((deploy_limits.__doc__ or "").split())
    documented, generic = doc.split("### The image table", 1)[1].split("Generic profiles", 1)
    generic = generic.split("###", 1)[0]
    checked: set[str] = set()
    for text, kind in ((documented, True), (generic, False)):
        groups = re.findall(r"((?:[\w-]+(?: [\w-]+)?(?: \([^)]*\))?, )*[\w-]+(?: [\w-]+)?(?: \([^)]*\))?) "
                            r"(\d+(?:\.\d+)?) / (\d+[MG])", text)
        assert groups
        for names, cpus, memory in groups:
            # Each name, or the image names its parentheses give (`kafka connect (cp-kafka-connect)`).
            items = re.findall(r"([^,(]+?)(?: \(([^)]*)\))?(?:, |$)", names)
            words = [w.strip().removeprefix("and ") for item, inside in items for w in (inside.split(", ") if inside else [item])]
            known = [w for w in words if images.knowledge(images.parse(w)).soft("cpus") is not None]
            assert known, names
            checked.update(known)
            for name in known:
                k = images.knowledge(images.parse(name))
                assert (k.soft("cpus"), k.soft("memory"), k.soft("documented")) == (cpus, memory, kind), name
    assert {"mysql", "postgis/postgis", "grafana", "caddy", "traefik", "nginx", "cp-kafka-connect", "gitlab-ce"} <= checked


NGINX_MAIN = """\
user nginx;
events { worker_connections 1024; }
http {
    include /etc/nginx/conf.d/*.conf;
    proxy_max_temp_file_size 0;
    client_max_body_size 20m;
}
"""


@pytest.mark.parametrize(
    ("site", "kept", "whys"),
    [
        pytest.param("server { listen 80; location / { proxy_pass http://app:8000; } }", 20 * 2**20,
                     ["client_max_body_size 20m in nginx/nginx.conf"], id="http-level settings of nginx.conf"),
        pytest.param("server { client_max_body_size 0; location / { root /srv; } }", None,
                     ["client_max_body_size 0 in nginx/conf.d/site.conf"], id="0: no bound on bodies"),
        pytest.param("server { location /dl { proxy_max_temp_file_size 2g; proxy_pass http://files; } }",
                     20 * 2**20 + 2 * 2**30, None, id="a location's own setting wins"),
        pytest.param("server { location / { proxy_buffering off; proxy_max_temp_file_size 2g; proxy_pass http://x; } }",
                     20 * 2**20, None, id="buffering off: nothing spooled"),
        pytest.param("server { location ~ \\.php$ { fastcgi_pass app:9000; } }", 20 * 2**20 + 2**30,
                     ["fastcgi_max_temp_file_size 1024m, nginx's default"], id="fastcgi's own settings"),
        pytest.param("proxy_cache_path /var/cache/nginx/c keys_zone=c:10m;\nserver { location / { proxy_pass http://x; } }",
                     None, ["proxy_cache_path /var/cache/nginx/c in nginx/conf.d/site.conf has no max_size"],
                     id="a cache without max_size"),
        pytest.param("proxy_cache_path /srv/cache keys_zone=c:10m max_size=1g;\nserver { location / { root /srv; } }",
                     20 * 2**20, None, id="a cache elsewhere"),
    ],
)
def test_what_nginx_spools(tmp_path: Path, site: str, kept: int | None, whys: list[str] | None) -> None:
    """What nginx keeps under /var/cache/nginx for one request of each kind, read from the
    configuration the service mounts: nginx.conf's http block holds for every conf.d file."""
    from e2i_fix.facts import configs

    p = index(tmp_path, {"compose.yaml": "services:\n  web:\n    image: nginx:1.27\n    volumes:\n"
                                         "      - ./nginx/nginx.conf:/etc/nginx/nginx.conf:ro\n"
                                         "      - ./nginx/conf.d:/etc/nginx/conf.d:ro\n",
                         "nginx/nginx.conf": NGINX_MAIN, "nginx/conf.d/site.conf": site + "\n"})
    f = facts.of(p, "web")
    assert f is not None
    spools = configs.nginx_spools(f, f.knowledge.runtime("spools"))
    assert not isinstance(spools, str)
    size, said = configs.kept_under(spools, "/var/cache/nginx")
    assert size == kept
    if whys is not None:
        assert set(whys) <= set(said), said


def test_a_size_through_a_variable_is_not_read(tmp_path: Path) -> None:
    from e2i_fix.facts import configs, runs

    p = index(tmp_path, {"compose.yaml": "services:\n  web:\n    image: nginx:1.27\n    volumes:\n"
                                         "      - ./site.conf.template:/etc/nginx/templates/default.conf.template:ro\n",
                         "site.conf.template": "server { client_max_body_size ${MAX_BODY}; }\n"})
    f = facts.of(p, "web")
    assert f is not None
    assert configs.nginx_spools(f, f.knowledge.runtime("spools")) == (
        "client_max_body_size is set through a variable in site.conf.template")
    assert runs.keeps(f, "/var/cache/nginx").kind == "unread"


@pytest.mark.parametrize(("files", "expected"), [
    pytest.param({"nginx/conf.d/.gitkeep": ""},
                 "its proxy configuration is mounted from nginx/conf.d/, which holds no configuration file in the "
                 "repository (something writes it at setup)", id="a folder a setup script fills"),
    pytest.param({}, "its nginx configuration is mounted from ./nginx/conf.d, which the tool cannot read here",
                 id="a folder that is not there"),
    pytest.param({"nginx/conf.d/site.conf": "server { client_max_body_size 2m; }\n"}, None, id="a config it reads"),
])
def test_a_proxy_config_the_repository_does_not_hold_is_not_known(
        tmp_path: Path, files: dict[str, str], expected: str | None) -> None:
    """An empty conf.d in the repository is not a configuration with no servers: what the
    proxy passes to and spools is not known, and read-only-root does not bound its spools."""
    from e2i_fix.facts import configs, runs

    p = index(tmp_path, {"compose.yaml": "services:\n  web:\n    image: nginx:1.27\n    volumes:\n"
                                         "      - ./nginx/conf.d:/etc/nginx/conf.d:ro\n", **files})
    f = facts.of(p, "web")
    assert f is not None
    got = configs.nginx_spools(f, f.knowledge.runtime("spools"))
    if expected is None:
        assert not isinstance(got, str) and configs.unread_proxy_config(f) is None
    else:
        assert got == expected
        assert runs.keeps(f, "/var/cache/nginx").kind == "unread"


def test_a_mount_named_through_dotenv_is_the_bind_it_names(tmp_path: Path) -> None:
    """`${NGINX_CONFIG_PATH}:/etc/nginx/conf.d` is the bind mount `.env` names: its files are the
    configuration nginx reads; one the tool cannot read leaves what nginx keeps unknown."""
    from e2i_fix.facts import configs, runs

    p = index(tmp_path, {"compose.yaml": "services:\n  web:\n    image: nginx:1.27\n    volumes:\n"
                                         "      - ${NGINX_CONFIG_PATH}:/etc/nginx/conf.d:ro\n"
                                         "  other:\n    image: nginx:1.27\n    volumes:\n"
                                         "      - ${ELSEWHERE}:/etc/nginx/conf.d:ro\n",
                         ".env": "NGINX_CONFIG_PATH=./nginx/conf.d\n",
                         "nginx/conf.d/default.conf": "server { client_max_body_size 50M; }\n"})
    web, other = facts.of(p, "web"), facts.of(p, "other")
    assert web is not None and other is not None
    assert [(m.kind, m.host) for m in web.mounts] == [("bind", tmp_path / "nginx" / "conf.d")]
    assert runs.keeps(web, "/var/cache/nginx") == runs.Keeps("sized", 50 * 2**20,
                                                             "client_max_body_size 50M in nginx/conf.d/default.conf")
    assert runs.keeps(other, "/var/cache/nginx").kind == "unread"


@pytest.mark.parametrize(("command", "started"), [
    ("[/init]", "/init"),
    ("[supervisord, -c, /etc/supervisor/supervisord.conf]", "supervisord"),
    ("[/init.sh]", None),  # a script named init is no s6 /init
    ("[sh, -c, 'cp supervisord.conf /etc/ && exec gunicorn app:app']", None),
])
def test_what_starts_a_process_supervisor(tmp_path: Path, command: str, started: str | None) -> None:
    from e2i_fix.facts import runs

    p = index(tmp_path, {"compose.yaml": f"services:\n  a:\n    image: example/a:1\n    entrypoint: {command}\n"})
    f = facts.of(p, "a")
    assert f is not None
    got = runs.supervisor(f)
    assert (got[1] if got else None) == started
