"""read-only-root: fixture stacks (known and unknown images, volumes on the paths an image
writes, built images), small inline cases and the corpus, judged by bytes and by the real
Compose CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e2i_fix._main import main
from e2i_fix.passes import registry

from hardening_cases import (apply, bad_option_is_an_error, cases, check, config_json, corpus, only_keys_changed, passes_of,
                             run_fixture)

ID = "read-only-root"
KEYS = {"read_only", "tmpfs", "volumes"}
FIXTURES = Path(__file__).parent / "fixtures" / ID
NGINX = ["/var/cache/nginx:size=64m", "/var/run:size=64m", "/tmp:size=64m"]


@pytest.mark.parametrize("case", cases(ID))
def test_fixture(tmp_path: Path, case: str) -> None:
    run_fixture(ID, case, tmp_path)


@pytest.mark.parametrize("case", cases(ID))
def test_compose_reads_only_read_only_and_tmpfs_changed(case: str) -> None:
    only_keys_changed(ID, case, KEYS)


@pytest.mark.parametrize(("case", "service", "reason"), [
    pytest.param("command-writes", "memcached", "it writes /home/memcache/memcached.conf (compose command redirects "
                 "into it through $SASL_CONF_PATH); /home/memcache/sasl-db", id="redirections through variables"),
    pytest.param("command-writes", "cache", "it writes through $REDIS_CONF (compose command redirects into it, through "
                 "a variable the stack gives no value): what it writes there is not known", id="an unknown target"),
    pytest.param("code-folder", "api", "/code/logs, /code lie among the image's own files, where a volume would hide "
                 "them", id="writes in its application folder"),
    pytest.param("celery-beat", "beat", "it writes /app/celerybeat-schedule (celery beat keeps its schedule file in "
                 "the working folder)", id="celery beat's schedule"),
    pytest.param("template-output", "web", "it writes /etc/nginx/conf.d (the nginx image renders the templates of "
                 "/etc/nginx/templates into it)", id="a template output folder"),
    pytest.param("swarm", "web", "its `tmpfs:` entry for /var/cache/nginx is ignored where the stack is deployed as a "
                 "swarm stack", id="a tmpfs: entry swarm ignores"),
    pytest.param("user-this-run", "api", "/app lies among the image's own files", id="the USER non-root-user adds"),
])
def test_not_made_read_only_and_why(tmp_path: Path, case: str, service: str, reason: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert "read_only" not in config_json(FIXTURES / case / "expected")["services"][service]
    work = tmp_path / case
    shutil.copytree(FIXTURES / case / "input", work)
    out = check(passes_of(ID, case), work, capsys)
    line = next(x for x in out if f"[{ID}] service {service!r}" in x)
    assert "not made read-only: " in line and reason in line
    assert "mount a volume" not in line


def test_swarm_gets_tmpfs_volumes() -> None:
    """docker stack deploy ignores `tmpfs:`: where the stack is also a swarm stack, the tmpfs
    mounts are `volumes:` entries of type tmpfs, their size in bytes as its schema wants."""
    svc = config_json(FIXTURES / "swarm" / "expected")["services"]["db"]
    assert svc["read_only"] is True and "tmpfs" not in svc
    assert [v for v in svc["volumes"] if v["type"] == "tmpfs"] == [
        {"type": "tmpfs", "target": "/var/run/postgresql", "tmpfs": {"size": "67108864"}},
        {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": "67108864"}},
    ]
    text = (FIXTURES / "swarm" / "expected" / "compose.yaml").read_text()
    assert "        tmpfs:\n          size: 67108864\n" in text


@pytest.mark.parametrize(
    ("case", "service", "tmpfs"),
    [
        pytest.param("known-and-unknown", "db", ["/var/run/postgresql:size=64m", "/tmp:size=64m"], id="postgres"),
        pytest.param("known-and-unknown", "web", ["/var/cache/nginx:size=32m", "/var/run:size=64m", "/tmp:size=64m"],
                     id="nginx: its own tmpfs kept, the rest added"),
        pytest.param("known-and-unknown", "cache", None, id="redis writes only its volume"),
        pytest.param("built", "app", ["/tmp:size=64m", "/srv/cache:size=64m"], id="built: volume on its data dir"),
        pytest.param("redis-releases", "queue", None, id="redis 7: VOLUME /data holds its snapshots"),
        pytest.param("redis-releases", "locks", None, id="redis 8 with a volume at /data"),
        pytest.param("valkey-volume", "cache", None, id="valkey with a volume at /data"),
        pytest.param("what-it-keeps", "static", NGINX, id="nginx's own configuration: 1m bodies fit"),
        pytest.param("what-it-keeps", "api-proxy", NGINX, id="nginx: 10m bodies, proxied responses not spooled"),
        pytest.param("what-it-keeps", "pg", ["/var/run/postgresql:size=64m", "/tmp:size=64m"], id="under a 1g limit"),
        pytest.param("inherited-command", "plain", ["/tmp:size=64m"], id="a known base and its own CMD"),
    ],
)
def test_compose_model(case: str, service: str, tmpfs: list[str] | None) -> None:
    svc = config_json(FIXTURES / case / "expected")["services"][service]
    assert svc["read_only"] is True
    assert svc.get("tmpfs") == tmpfs


@pytest.mark.parametrize(
    ("case", "service", "why"),
    [
        # Redis 8's Dockerfiles declare no VOLUME /data: a read-only root fails BGSAVE (MISCONF).
        pytest.param("redis-releases", "cache", "it writes /data (the redis image writes it), which no volume or tmpfs "
                     "holds", id="redis 8 without a volume"),
        pytest.param("redis-releases", "sessions", "what the redis image does here depends on its release, which its "
                     "tag does not tell", id="a release the tag does not tell"),
        # valkey-container#84 took VOLUME /data out of every line's Dockerfile: the first
        # background save on a read-only root fails, and valkey refuses writes (MISCONF).
        pytest.param("valkey-volume", "jobs", "it writes /data (the valkey/valkey image writes it), which no volume or "
                     "tmpfs holds", id="valkey 8.1 without a volume"),
        pytest.param("valkey-volume", "legacy", "it writes /data (the valkey/valkey image writes it), which no volume "
                     "or tmpfs holds", id="valkey 7.2, rebuilt without VOLUME /data"),
        # Request bodies up to 100M and proxied responses are spooled in /var/cache/nginx.
        pytest.param("what-it-keeps", "gateway", "nginx keeps up to 1.1G for one request of each kind in "
                     "/var/cache/nginx (client_max_body_size 100M in nginx/gateway.conf; proxy_max_temp_file_size "
                     "1024m, nginx's default), more than a 64m tmpfs holds: mount a volume at /var/cache/nginx, or set "
                     "`tmpfs-sizes` for it to what it keeps (a tmpfs counts against the container's memory)",
                     id="nginx spools more than a scratch tmpfs"),
        pytest.param("what-it-keeps", "db", "it writes /tmp, and /tmp is its tmpdir: filesort merge files, on-disk "
                     "temporary tables and the sort files of an index build, as large as the table they sort: no tmpfs "
                     "bound fits it; mount a volume at /tmp first", id="a database's tmpdir"),
        pytest.param("what-it-keeps", "tiny", "its tmpfs mounts (128M) would take its whole memory limit of 100M: a "
                     "tmpfs counts against it", id="tmpfs beyond the memory limit"),
        pytest.param("inherited-command", "portal", "its Dockerfile sets no ENTRYPOINT or CMD of its own: what runs "
                     "comes from example/portal-base:2.11, which the image table does not know: what it writes is not "
                     "known here", id="a command inherited from an unknown base"),
        pytest.param("inherited-command", "own", "it writes /srv/app/portal.ini (own/docker-entrypoint.d/10-config.sh "
                     "edits it with a config tool), which no volume or tmpfs holds", id="a script of entrypoint.d"),
    ],
)
def test_left_writable_and_why(case: str, service: str, why: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert "read_only" not in config_json(FIXTURES / case / "expected")["services"][service]
    out = check(ID, FIXTURES / case / "input", capsys)
    assert any(f"service {service!r} has a writable root filesystem; not made read-only: {why} (no fix applied)" in line
               for line in out), out


def test_a_memory_limit_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    out = check(ID, FIXTURES / "what-it-keeps" / "input", capsys)
    assert any("service 'pg'" in line and "the tmpfs mounts count against its memory limit of 1G" in line for line in out)


def test_a_scratch_bound_for_what_is_not_known_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    """An application's /tmp gets the scratch bound, and the message says it is one: the tool
    does not know what the application keeps there."""
    out = check(ID, FIXTURES / "inherited-command" / "input", capsys)
    assert any("service 'plain'" in line and "(it runs as app and writes /tmp; what it keeps in /tmp is not known here: "
               "64m is the scratch bound, `tmpfs-sizes` sets another)" in line for line in out), out
    out = check(ID, FIXTURES / "what-it-keeps" / "input", capsys)
    assert not any("service 'pg'" in line and "not known here" in line for line in out)


def test_a_configured_bound_for_nginx_is_taken(tmp_path: Path) -> None:
    """What nginx spools is more than the scratch bound; a bound the configuration sets for the
    folder is the user's figure, and the pass takes it."""
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "what-it-keeps" / "input", work)
    (work / ".e2i-fix.toml").write_text(f'[{ID}]\ntmpfs-sizes = {{"/var/cache/nginx" = "2g"}}\n')
    assert apply(ID, work) == 1
    svc = config_json(work)["services"]["gateway"]
    assert svc["read_only"] is True and svc["tmpfs"] == ["/var/cache/nginx:size=2g", "/var/run:size=64m", "/tmp:size=64m"]


def test_what_is_not_known_is_left_writable() -> None:
    after = config_json(FIXTURES / "known-and-unknown" / "expected")["services"]
    assert "read_only" not in after["thing"] and "read_only" not in after["commander"]
    assert after["chosen"].get("read_only", False) is False
    built = config_json(FIXTURES / "built" / "expected")["services"]
    assert "read_only" not in built["report"] and "read_only" not in built["rooted"]


def test_messages(capsys: pytest.CaptureFixture[str]) -> None:
    out = check(ID, FIXTURES / "built" / "input", capsys)
    assert any("service 'report' has a writable root filesystem; not made read-only: it writes /srv/reports (its "
               "Dockerfile hands it over for run time: RUN mkdir at line 2), which no volume or tmpfs holds" in line
               for line in out)
    assert not any("mount a volume" in line for line in out)
    assert any("service 'rooted'" in line and "runs as root" in line for line in out)


def one(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("services:\n  a:\n    image: redis\n    read_only: true\n", id="already read-only"),
        pytest.param("services:\n  a:\n    image: redis\n    network_mode: host\n", id="host network"),
        pytest.param("services:\n  a:\n    image: postgres\n    tmpfs: /run\n", id="tmpfs string"),
        pytest.param("services:\n  a:  # e2i-fix: ignore\n    image: redis\n", id="opted out"),
    ],
)
def test_noop(tmp_path: Path, text: str) -> None:
    f = one(tmp_path, text)
    assert apply(ID, tmp_path) == 0
    assert f.read_text() == text


def test_size_options(tmp_path: Path) -> None:
    one(tmp_path, "services:\n  a:\n    image: postgres:16\n")
    (tmp_path / ".e2i-fix.toml").write_text(f'[{ID}]\ntmpfs-size = "16m"\ntmpfs-sizes = {{"/tmp" = "1g"}}\n')
    assert apply(ID, tmp_path) == 1
    assert config_json(tmp_path)["services"]["a"]["tmpfs"] == ["/var/run/postgresql:size=16m", "/tmp:size=1g"]


def test_documented() -> None:
    doc = registry()[ID].__doc__ or ""
    for heading in ("## What it does", "## Why", "## Example", "## Fix safety", "## Options"):
        assert heading in doc


def test_corpus(tmp_path: Path) -> None:
    """The pass alone over the corpus settles; Compose judges it with the other hardening
    passes in test_hardening_corpus.py."""
    corpus(ID, tmp_path, KEYS)


@pytest.mark.parametrize(("toml", "message"), [
        ('tmpfs-size = "10%"', "option tmpfs-size = '10%' is not a size"),
        ('tmpfs-sizes = {"/tmp" = 0}', 'option tmpfs-sizes./tmp = 0 is not a size'),
])
def test_a_bad_option_is_an_error(tmp_path: Path, toml: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert message in bad_option_is_an_error(ID, tmp_path, toml, capsys)


def test_written_in_the_stack_s_order_and_layout() -> None:
    """The stack writes `tmpfs` as a one-line list of double-quoted items, before `read_only`."""
    folder = Path(__file__).parent / "fixtures" / ID / "convention" / "expected"
    text = (folder / "compose.yaml").read_text()
    assert ('      - pg_data:/var/lib/postgresql/data\n    tmpfs: ["/var/run/postgresql:size=64m", "/tmp:size=64m"]\n'
            '    read_only: true\n\nvolumes:\n') in text
    assert config_json(folder)["services"]["db"]["read_only"] is True


def test_a_script_a_heredoc_writes_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`COPY <<EOT /docker-entrypoint.d/40-config.sh` writes a script the nginx entrypoint runs
    at start; it `sed -i`s the files `find` lists under /out: on a read-only root the entrypoint
    exits. Reported, not made read-only."""
    (tmp_path / "web" / "dist").mkdir(parents=True)
    (tmp_path / "web" / "Dockerfile").write_text(
        "# syntax=docker/dockerfile:1\nFROM nginx:1.27-alpine\nCOPY dist /out\n"
        "COPY <<EOT /docker-entrypoint.d/40-config.sh\n#!/bin/sh\n"
        "find /out -name '*.js' | xargs sed -i \"s#API_URL#\\$API#g\"\nEOT\n")
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    build: ./web\n    ports: [\"3000:80\"]\n")
    capsys.readouterr()
    main(["--apply", "--unsafe-fixes", "--select", "read-only-root", str(tmp_path)])
    assert "read_only" not in (tmp_path / "compose.yaml").read_text()
    out = capsys.readouterr()
    assert "edits the files `find` lists there in place (sed -i)" in out.out + out.err


def test_an_install_at_start_writes_the_system(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The project's own entrypoint for its database installs an extension at start when a
    documented switch is on (`apt-get install`, `make install`): on a read-only root it exits."""
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "entrypoint.sh").write_text(
        "#!/bin/sh\nif [ \"$PG_BIGM\" = true ]; then\n  apt-get update && apt-get install -y build-essential\n"
        "  make install\nfi\nexec docker-entrypoint.sh postgres\n")
    (tmp_path / "compose.yaml").write_text(
        "services:\n  db:\n    image: postgres:16\n    entrypoint: [\"/bin/sh\", \"/docker-entrypoint-mount.sh\"]\n"
        "    volumes:\n      - ./pg/entrypoint.sh:/docker-entrypoint-mount.sh\n      - data:/var/lib/postgresql/data\n"
        "volumes:\n  data:\n")
    capsys.readouterr()
    main(["--apply", "--unsafe-fixes", "--select", "read-only-root", str(tmp_path)])
    assert "read_only" not in (tmp_path / "compose.yaml").read_text()
    out = capsys.readouterr()
    assert "installs at start" in out.out + out.err
