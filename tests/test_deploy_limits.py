"""deploy-limits: the profile table, what services ask for, legacy keys, anchors, extends,
override files, configuration, the example stack and the real-world corpus."""

from __future__ import annotations

import re

import difflib
import json
import math
import shutil
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from e2i_fix import project
from e2i_fix._main import main
from e2i_fix.sizing import clean_ceil, demands, format_size, parse_size

from conftest import (
    ROOT, compose_config, corpus_files, corpus_run, laid_out, snapshot,
)

FIXTURES = Path(__file__).parent / "fixtures" / "deploy-limits"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
M, G = 1024**2, 1024**3
SELECT = ["--select", "deploy-limits"]


def apply(*args: str, unsafe: bool = True) -> int:
    """Apply the pass; unsafe fixes too by default (most cases here are about the edits, and
    their figures come from the generic table: see the safety tests for the default run)."""
    return main(["--apply", *SELECT, *(["--unsafe-fixes"] if unsafe else []), *args])


def compose_files(folder: Path) -> list[str]:
    return sorted((p.name for p in folder.iterdir() if project.is_compose_name(p.name)),
                  key=lambda n: (n not in project.BASE_NAMES, n))


def resources(folder: Path, files: list[str]) -> dict[str, Any]:
    """Each service's deploy.resources as the real Compose CLI loads them (sizes in bytes)."""
    proc = compose_config(folder, files, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    return {name: (svc.get("deploy") or {}).get("resources") for name, svc in services.items()}


def figures(res: dict[str, Any] | None) -> tuple[float | None, int, float | None, int | None]:
    """Limits and reservations (None: not set; a CPU limit only where the configuration or
    observed usage gives a figure, reservations only where the stack writes them, or the
    configuration asks for them)."""
    assert res is not None
    lim, rsv = res["limits"], res.get("reservations") or {}
    return (float(lim["cpus"]) if "cpus" in lim else None, int(lim["memory"]),
            float(rsv["cpus"]) if "cpus" in rsv else None, int(rsv["memory"]) if "memory" in rsv else None)


def findings(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The `[deploy-limits] ...` part of every reported line (line numbers move as fixes land)."""
    captured = capsys.readouterr()
    return sorted(line.split(": ", 1)[1] for line in (captured.out + captured.err).splitlines()
                  if "[deploy-limits]" in line and "] resource totals" not in line)


# --- sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("512m", 512 * M), ("512M", 512 * M), ("1g", G), ("1.5G", 3 * G // 2), ("1gb", G), ("256MiB", 256 * M),
        ("1073741824", G), (1073741824, G), ("100k", 100 * 1024),
        ("${MEM_LIMIT}", None), ("lots", None), ("", None), (True, None), (None, None),
    ],
)
def test_parse_size_reads_sizes_as_compose_does(value: object, expected: int | None) -> None:
    assert parse_size(value) == expected


@pytest.mark.parametrize(
    ("need", "expected"),
    [(300 * M, "384M"), (384 * M, "384M"), (385 * M, "512M"), (600 * M, "768M"), (G, "1G"),
     (G + 1, "1536M"), (1537 * M, "2G"), (4608 * M, "5G"), (6 * G + 1, "7G")],
)
def test_clean_ceil_rounds_up_to_a_clean_size(need: int, expected: str) -> None:
    assert format_size(clean_ceil(need)) == expected


@pytest.mark.parametrize(
    ("config", "family", "need", "unread"),
    [
        pytest.param({"command": "redis-server --maxmemory 256mb --maxmemory-policy allkeys-lru"}, "redis",
                     384 * M, [], id="redis maxmemory, string command"),
        pytest.param({"command": ["redis-server", "--maxmemory", "1gb"]}, "redis", 1536 * M, [],
                     id="redis maxmemory, list command"),
        pytest.param({"command": "redis-server --maxmemory 1g"}, "redis", 1_500_000_000, [],
                     id="redis 1g is 10^9 bytes, 1gb is 2^30"),
        pytest.param({"environment": {"VALKEY_EXTRA_FLAGS": "--maxmemory 512mb --maxmemory-policy allkeys-lru"}},
                     "valkey", 768 * M, [], id="valkey's VALKEY_EXTRA_FLAGS are its arguments"),
        pytest.param({"environment": {"VALKEY_EXTRA_FLAGS": "--maxmemory ${CACHE_MAX}"}}, "valkey", None,
                     ["--maxmemory ${CACHE_MAX}"], id="an interpolated maxmemory in VALKEY_EXTRA_FLAGS"),
        pytest.param({"command": "--innodb-buffer-pool-size=512M --max-connections=512"}, "mariadb", 768 * M, [],
                     id="mariadb's buffer pool x 1.5"),
        pytest.param({"command": ["mysqld", "--innodb_buffer_pool_size", "2G"]}, "mysql", 3 * G, [],
                     id="mysql's buffer pool, list form"),
        pytest.param({"shm_size": "1g"}, "postgres", 2 * G, [], id="shm_size counts against the limit"),
        pytest.param({"shm_size": 268435456}, None, 512 * M, [], id="shm_size in bytes"),
        pytest.param({"shm_size": "${SHM}"}, "postgres", None, ["shm_size ${SHM}"], id="shm_size through a variable"),
        pytest.param({"command": "redis-server --maxmemory-policy noeviction"}, "redis", None, [],
                     id="maxmemory-policy is not maxmemory"),
        pytest.param({"environment": {"ES_JAVA_OPTS": "-Xms512m -Xmx512m"}}, "elasticsearch", G, [],
                     id="ES_JAVA_OPTS heap x 2"),
        pytest.param({"environment": {"OPENSEARCH_JAVA_OPTS": "-Xmx400m"}}, None, 800 * M, [],
                     id="OPENSEARCH_JAVA_OPTS x 2 whatever the image"),
        pytest.param({"environment": {"JAVA_OPTS": "-XX:+UseG1GC -Xmx2g"}}, None, 3 * G, [], id="JAVA_OPTS x 1.5"),
        pytest.param({"environment": {"_JAVA_OPTIONS": "-Xmx1024m"}}, None, 1536 * M, [], id="_JAVA_OPTIONS"),
        pytest.param({"environment": {"KAFKA_HEAP_OPTS": "-Xmx1G -Xms1G"}}, "kafka", 1536 * M, [], id="KAFKA_HEAP_OPTS"),
        pytest.param({"environment": {"JVMFLAGS": "-Xmx512m"}}, "zookeeper", 768 * M, [], id="zookeeper JVMFLAGS"),
        pytest.param({"entrypoint": ["java", "-XX:MaxHeapSize=2g", "-jar", "a.jar"]}, None, 3 * G, [],
                     id="MaxHeapSize in the entrypoint"),
        pytest.param({"command": "node --max-old-space-size=4096 server.js"}, None, 6 * G, [], id="node old space"),
        pytest.param({"environment": {"NODE_OPTIONS": "--max-old-space-size 2048"}}, None, 3 * G, [], id="NODE_OPTIONS"),
        pytest.param({"environment": {"JAVA_OPTS": "-XX:MaxRAMPercentage=80.0"}}, None, None, [],
                     id="a relative heap asks for nothing"),
        pytest.param({"command": "mongod --wiredTigerCacheSizeGB 32"}, "mongo", 65 * G, [],
                     id="a WiredTiger cache x 2 + 1G"),
        pytest.param({"command": ["mongod", "--wiredTigerCacheSizeGB", "0.5"]}, "mongo", 2 * G, [],
                     id="a WiredTiger cache in the list form"),
        pytest.param({"command": "redis-server --maxmemory ${REDIS_MAXMEMORY:-1gb}"}, "redis", math.ceil(1.5 * G),
                     [], id="a variable's written default is read"),
        pytest.param({"command": "redis-server --maxmemory ${REDIS_MAXMEMORY}"}, "redis", None,
                     ["--maxmemory ${REDIS_MAXMEMORY}"], id="a variable with no value cannot be read"),
        pytest.param({"environment": {"ES_JAVA_OPTS": "-Xmx${HEAP}"}}, "elasticsearch", None,
                     ["-Xmx${HEAP} in ES_JAVA_OPTS"], id="interpolated heap cannot be read"),
        pytest.param({"environment": {"ES_JAVA_OPTS": "${ES_JAVA_OPTS}"}}, "elasticsearch", None,
                     ["ES_JAVA_OPTS=${ES_JAVA_OPTS}"], id="a whole variable cannot be read"),
        pytest.param({"environment": {"JAVA_OPTS": "-Xmx1g -Dprice=$$5"}}, None, 1536 * M, [],
                     id="an escaped $$ is not interpolation"),
        pytest.param({"command": "memcached -m 1024 -c 4096"}, "memcached", 1536 * M, [], id="memcached -m (MB)"),
        pytest.param({"command": ["-m", "2g"]}, "memcached", 3 * G, [], id="memcached image, -m with a unit"),
        pytest.param({"command": "python -m http.server"}, None, None, [], id="-m of another program"),
        pytest.param({"environment": {"INSTALL4J_ADD_VM_PARAMS": "-Xms2703m -Xmx2703m"}}, "nexus3",
                     math.ceil(2703 * M * 1.5), [], id="Nexus INSTALL4J_ADD_VM_PARAMS"),
        pytest.param({"environment": {"SONAR_WEB_JAVAOPTS": "-Xmx1g"}}, "sonarqube", 1536 * M, [],
                     id="SonarQube *_JAVAOPTS"),
    ],
)
def test_demands(config: dict[str, Any], family: str | None, need: int | None, unread: list[str]) -> None:
    asked, got_unread = demands(config, family)
    assert max((d.need for d in asked), default=None) == need
    assert got_unread == unread


# --- fixture stacks -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_fixture(case: str, tmp_path: Path) -> None:
    """Each input stack comes out as expected/ (files absent there stay as they were), the
    real Compose CLI accepts every variant (base, base + each override), and a second run
    changes nothing."""
    src = FIXTURES / case
    shutil.copytree(src / "input", tmp_path, dirs_exist_ok=True)
    # A case whose decisions are all findings has no expected/: nothing is written.
    assert apply(str(tmp_path)) == (1 if (src / "expected").is_dir() else 0)
    for f in sorted(p for p in (src / "input").rglob("*") if p.is_file()):
        rel = f.relative_to(src / "input")
        want = src / "expected" / rel
        assert (tmp_path / rel).read_text() == (want if want.is_file() else f).read_text(), rel
    files = compose_files(tmp_path)
    for variant in [files[:1]] + [[files[0], o] for o in files[1:]]:
        proc = compose_config(tmp_path, variant, "-q")
        assert proc.returncode == 0, (variant, proc.stderr)
    before = snapshot(tmp_path)
    assert apply(str(tmp_path)) == 0
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        pytest.param("legacy-keys", [
            "[deploy-limits] service 'db' has mem_limit but no CPU limit: add cpus 1, mem_reservation 1g (as the stack writes its limits); cpus from config services.db",
            "[deploy-limits] service 'job' has cpus but no memory limit: add mem_limit 1g, mem_reservation 512m (as the stack writes its limits); from config default",
            "[deploy-limits] service 'proxy' has mem_limit but no CPU limit: add cpus 0.5 (as the stack writes its limits); cpus from config services.proxy",
        ], id="legacy keys"),
        pytest.param("legacy-carried", [
            "[deploy-limits] service 'db' has mem_limit but no CPU limit: add deploy.resources (1 CPU / 2g, reservations 0.5 / 1G); cpus from config services.db; mem_limit carried over (Compose refuses deploy.resources that differ from it)",
            "[deploy-limits] service 'job' has cpus but no memory limit: add deploy.resources (1.5 CPUs / 1G, reservations 0.75 / 512M); from config default; cpus carried over (Compose refuses deploy.resources that differ from it)",
            "[deploy-limits] service 'proxy' has mem_limit but no CPU limit: add deploy.resources (0.5 CPU / 512m, reservations 0.25 / 128m) with limits.pids 200; cpus from config services.proxy; mem_limit, pids_limit, mem_reservation carried over (Compose refuses deploy.resources that differ from them)",
        ], id="legacy keys carried into the stack's deploy.resources"),
        pytest.param("jvm-heap", [
            "[deploy-limits] service 'app' has no resource limits: add deploy.resources (memory 5G); from the service's own setting; memory raised to cover -Xmx3g in the command x 1.5",
            "[deploy-limits] service 'broker' has no resource limits: add deploy.resources (memory 2G); from image kafka (documented needs); it covers -Xmx1G in KAFKA_HEAP_OPTS x 1.5",
            "[deploy-limits] service 'elasticsearch' has no resource limits: add deploy.resources (memory 4G); from the service's own setting; memory raised to cover -Xmx2g in ES_JAVA_OPTS x 2",
            "[deploy-limits] service 'search' has no resource limits: add deploy.resources (memory 2G); from image opensearch (documented needs); it covers -Xmx512m in OPENSEARCH_JAVA_OPTS x 2",
        ], id="jvm heap"),
        pytest.param("partial-resources", [
            # The stack reserves memory, never CPUs: no CPU reservation is added.
            "[deploy-limits] service 'reserved' has no resource limits: add deploy.resources (memory 3G); from the service's memory reservation 3G; memory raised to the reservation 3G",
        ], id="partial resources"),
        pytest.param("anchors", [
            "[deploy-limits] service 'api' has no resource limits: add deploy.resources (memory 4G, reservation 2G); from role api (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage); 'cache', 'legacy', which would inherit it, get their own",
            "[deploy-limits] service 'cache' has no resource limits: add deploy.resources (memory 512M, reservation 256M); from image redis (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage)",
        ], id="anchors"),
        pytest.param("extends", [
            "[deploy-limits] service 'external' has no resource limits: add deploy.resources (1 CPU / 4G, reservations 0.5 / 2G); cpus from config default, memory from role worker (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage)",
            "[deploy-limits] service 'plain' has no resource limits: add deploy.resources (1 CPU / 1G, reservations 0.5 / 512M); from config default; 'tasks', which would inherit it, gets its own",
            "[deploy-limits] service 'tasks' has no resource limits: add deploy.resources (1 CPU / 4G, reservations 0.5 / 2G); cpus from config default, memory from role worker (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage)",
        ], id="extends"),
        # The override `!override`s api's deploy and `!reset`s backup: the base run alone still
        # gets both fixed.
        pytest.param("override-tags", [
            "[deploy-limits] service 'api' has no resource limits: add deploy.resources (memory 4G); from role api (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage)",
            "[deploy-limits] service 'backup' has no resource limits, and no figure can be trusted with it: the tool has no figures for its image, and it has no role, no observed usage and no size it sets itself; measure it (--usage, `docker stats` output) or set services.backup in the configuration (no fix applied)",
            "[deploy-limits] service 'worker' has no resource limits: add deploy.resources (memory 4G); from role worker (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage)",
        ], id="override tags"),
        pytest.param("override", [
            "[deploy-limits] service 'api' has no resource limits: add deploy.resources (1 CPU / 4G, reservations memory 1g); cpus from config default, memory from role api (generic profile); mem_reservation carried over (Compose refuses deploy.resources that differ from it); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage)",
            "[deploy-limits] service 'mailhog' has no resource limits: add deploy.resources (1 CPU / 1G, reservations memory 512M); from config default",
            "[deploy-limits] service 'redis' has no resource limits, and no figure can be trusted with it: Redis keeps its whole data set in memory, and no --maxmemory bounds it (redis.io/docs/latest/develop/reference/eviction/: maxmemory 0 means no limit): set --maxmemory and a limit above it; measure it (--usage, `docker stats` output) or set services.redis in the configuration (no fix applied)",
        ], id="override"),
        pytest.param("sources", [
            "[deploy-limits] service 'api' has no resource limits: add deploy.resources (memory 4G); from role api (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage)",
            "[deploy-limits] service 'broker' has no resource limits: add deploy.resources (memory 2G); from image kafka (documented needs)",
            "[deploy-limits] service 'cache' has no resource limits: add deploy.resources (memory 1536M); from the service's own setting; memory raised to cover --maxmemory 1gb x 1.5",
            "[deploy-limits] service 'configured' has no resource limits: add deploy.resources (0.5 CPU / 768M); from config services.configured",
            "[deploy-limits] service 'misc' has no resource limits, and no figure can be trusted with it: the tool has no figures for its image, and it has no role, no observed usage and no size it sets itself; measure it (--usage, `docker stats` output) or set services.misc in the configuration (no fix applied)",
            "[deploy-limits] service 'proxy' has no resource limits: add deploy.resources (memory 256M); from image nginx (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage)",
            "[deploy-limits] service 'search' has no resource limits: add deploy.resources (memory 5G); from the service's own setting; memory raised to cover -Xmx3g in SONAR_SEARCH_JAVAOPTS x 1.5",
        ], id="sources"),
        pytest.param("usage", [
            "[deploy-limits] 1 container of usage.json matches no service of this stack: other-proxy-1",
            "[deploy-limits] service 'db' has no resource limits: add deploy.resources (0.25 CPU / 1G, reservations 0.05 / 128M); cpus from observed usage (peak 0.05 CPUs x 1.5), memory from image postgres (documented needs)",
            "[deploy-limits] service 'idle' has no resource limits, and no figure can be trusted with it: the tool has no figures for its image, and it has no role, no observed usage and no size it sets itself; measure it (--usage, `docker stats` output) or set services.idle in the configuration (no fix applied)",
            "[deploy-limits] service 'kafka' has no resource limits: add deploy.resources (0.25 CPU / 2G, reservations 0.05 / 384M); cpus from observed usage (peak 0.04 CPUs x 1.5), memory from image kafka (documented needs)",
            "[deploy-limits] service 'web' has no resource limits: add deploy.resources (0.75 CPU / 384M, reservations 0.2 / 256M); cpus from observed usage (peak 0.4 CPUs x 1.5), memory from observed usage (peak 240M x 1.5)",
            "[deploy-limits] service 'worker' has no resource limits: add deploy.resources (2.25 CPUs / 3G, reservations 1 / 1G); cpus from observed usage (peak 1.46 CPUs x 1.5), memory from observed usage (peak 1.4G x 1.5)",
        ], id="usage"),
        pytest.param("budget", [
            "[deploy-limits] compose.yaml + compose.override.yaml with --profile debug: memory reservations add up to 6.5G, more than the host's 6G; memory limits add up to 17G, over 2 x the host's 6G: lower the figures or raise host-memory / host-cpus (no fix applied)",
            "[deploy-limits] compose.yaml + compose.override.yaml: memory reservations add up to 6.5G, more than the host's 6G; memory limits add up to 13G, over 2 x the host's 6G: lower the figures or raise host-memory / host-cpus (no fix applied)",
            "[deploy-limits] compose.yaml with --profile debug: memory limits add up to 13G, over 2 x the host's 6G: lower the figures or raise host-memory / host-cpus (no fix applied)",
            "[deploy-limits] service 'db' has no resource limits: add deploy.resources (memory 1G, reservation 512M); from image postgres (documented needs)",
            "[deploy-limits] service 'search' has no resource limits: add deploy.resources (memory 4G, reservation 2G); from the service's own setting; memory raised to cover -Xmx2g in OPENSEARCH_JAVA_OPTS x 2",
        ], id="budget"),
        pytest.param("postgres-settings", [
            "[deploy-limits] service 'conf' has no resource limits: add deploy.resources (memory 6G); from the service's own setting; memory raised to cover shared_buffers 2GB + 200 connections x work_mem 16MB + maintenance_work_mem 512MB (postgresql.conf)",
            "[deploy-limits] service 'connections' has no resource limits: add deploy.resources (memory 5G); from the service's own setting; memory raised to cover shared_buffers 128MB + 1000 connections x work_mem 4MB + maintenance_work_mem 64MB (-c flags)",
            "[deploy-limits] service 'flags' has no resource limits: add deploy.resources (memory 3G); from the service's own setting; memory raised to cover shared_buffers 1GB + 300 connections x work_mem 4MB + maintenance_work_mem 64MB (-c flags)",
            "[deploy-limits] service 'plain' has no resource limits: add deploy.resources (memory 1G); from image postgres (documented needs)",
        ], id="postgres: shared_buffers plus backends"),
        pytest.param("postgres-derivatives", [
            "[deploy-limits] service 'timeseries' has no resource limits, and no figure can be trusted with it: timescale/timescaledb runs postgres in an image of its own, and the postgres figure (1G) documents postgres's own configuration, not one timescale/timescaledb may bake in; measure it (--usage, `docker stats` output) or set services.timeseries in the configuration (no fix applied)",
            "[deploy-limits] service 'upgraded' has no resource limits: add deploy.resources (memory 5G); from the service's own setting; memory raised to cover shared_buffers 3GB + 200 connections x work_mem 4MB + maintenance_work_mem 768MB (postgresql.conf); pgautoupgrade/pgautoupgrade runs postgres in an image of its own: what it configures beyond the settings read here is not known, so an unsafe fix",
            "[deploy-limits] service 'vectors' has no resource limits, and no figure can be trusted with it: ghcr.io/example/postgres runs postgres in an image of its own, and the postgres figure (1G) documents postgres's own configuration, not one ghcr.io/example/postgres may bake in; measure it (--usage, `docker stats` output) or set services.vectors in the configuration (no fix applied)",
        ], id="derivatives of postgres"),
        pytest.param("unsized", [
            "[deploy-limits] service 'analytics' has no resource limits, and no figure can be trusted with it: an analytics database (ClickHouse), whose memory is its queries, merges and caches as its own configuration sizes them (max_memory_usage per query, the mark cache); measure it (--usage, `docker stats` output) or set services.analytics in the configuration (no fix applied)",
            "[deploy-limits] service 'app' has no resource limits, and no figure can be trusted with it: an all-in-one container, whose memory is every server it supervises (`supervisord` in app/entrypoint.sh); measure it (--usage, `docker stats` output) or set services.app in the configuration (no fix applied)",
            "[deploy-limits] service 'embeddings' has no resource limits, and no figure can be trusted with it: a model server, whose memory is the models it loads (`bentoml serve` in its command); measure it (--usage, `docker stats` output) or set services.embeddings in the configuration (no fix applied)",
            "[deploy-limits] service 'llm' has no resource limits, and no figure can be trusted with it: a model server (Ollama), whose memory is the models it pulls and runs; measure it (--usage, `docker stats` output) or set services.llm in the configuration (no fix applied)",
            "[deploy-limits] service 'mailer' has no resource limits, and no figure can be trusted with it: the tool has no figures for its image, and it has no role, no observed usage and no size it sets itself; measure it (--usage, `docker stats` output) or set services.mailer in the configuration (no fix applied)",
            "[deploy-limits] service 'worker' has no resource limits, and no figure can be trusted with it: its image example/flow-worker is built elsewhere and the tool has no figures for it: the generic worker figure (4G) says nothing of what that image runs; measure it (--usage, `docker stats` output) or set services.worker in the configuration (no fix applied)",
        ], id="no figure can be trusted"),
        pytest.param("swarm", [
            "[deploy-limits] service 'api' has no resource limits: add deploy.resources (memory 4G); from role api (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage); no reservations: the stack is also deployed with `docker stack deploy` (deploy.sh runs `docker stack deploy -c compose.yaml shop`), where they are scheduling constraints",
            "[deploy-limits] service 'db' has no resource limits: add deploy.resources (memory 1G); from image postgres (documented needs); no reservations: the stack is also deployed with `docker stack deploy` (deploy.sh runs `docker stack deploy -c compose.yaml shop`), where they are scheduling constraints",
        ], id="swarm: limits only"),
        pytest.param("rabbitmq-watermark", [
            "[deploy-limits] service 'broker' has no resource limits, and no figure can be trusted with it: RabbitMQ may not see the container's limit, and no absolute vm_memory_high_watermark bounds it (rabbitmq.com/docs/memory): set one in rabbitmq.conf and a limit of 2 times it; measure it (--usage, `docker stats` output) or set services.broker in the configuration (no fix applied)",
            "[deploy-limits] service 'queue' has no resource limits: add deploy.resources (memory 3G); from the service's own setting; memory raised to cover vm_memory_high_watermark.absolute 1536MiB x 2",
        ], id="rabbitmq and its watermark"),
        pytest.param("stream-processors", [
            "[deploy-limits] service 'connect' has no resource limits: add deploy.resources (memory 3G); from image cp-kafka-connect (documented needs)",
            "[deploy-limits] service 'jobmanager' has no resource limits: add deploy.resources (memory 2G); from image flink (documented needs)",
            "[deploy-limits] service 'pulsar' has no resource limits: add deploy.resources (memory 7G); from image pulsar (documented needs)",
            "[deploy-limits] service 'taskmanager' has no resource limits: add deploy.resources (memory 4G); from the service's own setting; memory raised to cover taskmanager.memory.process.size 4096m in FLINK_PROPERTIES",
        ], id="stream processors and brokers"),
        pytest.param("workers", [
            "[deploy-limits] service 'legacy' has no resource limits: add deploy.resources (memory 1536M); from the service's own setting; memory raised to cover UWSGI_RELOAD_ON_RSS=256 MB x 4 workers and the main process (`--processes 4` in its command)",
            "[deploy-limits] service 'tasks' has no resource limits: add deploy.resources (memory 4G); from role worker (generic profile); it covers --max-memory-per-child 400000 KiB x 4 workers and the main process (`--concurrency 4` in its command)",
        ], id="workers x a per-worker size"),
        pytest.param("heap-settings", [
            "[deploy-limits] service 'pulsar' has no resource limits: add deploy.resources (memory 10G); from the service's own setting; memory raised to cover -Xmx4g x 1.5 + -XX:MaxDirectMemorySize=4g in PULSAR_MEM",
            "[deploy-limits] service 'search' has no resource limits: add deploy.resources (memory 3G); from the service's own setting; memory raised to cover -Xmx2g in JAVA_OPTS x 1.5",
            "[deploy-limits] service 'solr' has no resource limits: add deploy.resources (memory 3G); from the service's own setting; memory raised to cover SOLR_HEAP=2g x 1.5",
        ], id="heaps from the environment"),
        pytest.param("limits-only", [
            "[deploy-limits] service 'api' has no resource limits: add deploy.resources (memory 4G); from role api (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage)",
            "[deploy-limits] service 'db' has no resource limits: add deploy.resources (memory 1G); from image postgres (documented needs)",
        ], id="no reservations where the stack reserves nothing"),
        pytest.param("stack-reserves", [
            "[deploy-limits] service 'db' has no resource limits: add deploy.resources (memory 1G, reservation 512M); from image postgres (documented needs)",
        ], id="the stack reserves memory: so do the new resources, and no CPUs"),
        pytest.param("opt-in-override", [
            # db is limited by the opt-in file of the COMPOSE_FILE chain: the base leaves it alone.
            "[deploy-limits] service 'app' has no resource limits: add deploy.resources (memory 4G); from role api (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage)",
        ], id="a file of the stack limits db: not the base's to limit"),
        pytest.param("variable-image", [
            "[deploy-limits] service 'cache' has no resource limits: add deploy.resources (memory 1536M); from the service's own setting; memory raised to cover --maxmemory 768mb x 1.5",
            "[deploy-limits] service 'db' has no resource limits: add deploy.resources (memory 1G); from image postgres (documented needs)",
        ], id="image through variables"),
    ],
)
def test_fixture_messages(case: str, expected: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(FIXTURES / case / "input", tmp_path, dirs_exist_ok=True)
    assert main(["--check", "--unsafe-fixes", *SELECT, str(tmp_path)]) == 1
    assert findings(capsys) == expected


def test_legacy_keys_meet_compose_rule(tmp_path: Path) -> None:
    """What the CLI loads: legacy values and deploy values agree, byte for byte."""
    shutil.copytree(FIXTURES / "legacy-carried" / "input", tmp_path, dirs_exist_ok=True)
    apply(str(tmp_path))
    proc = compose_config(tmp_path, ["compose.yaml"], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    svcs = json.loads(proc.stdout)["services"]
    proxy = svcs["proxy"]
    assert proxy["deploy"]["resources"]["limits"] == {"cpus": 0.5, "memory": proxy["mem_limit"], "pids": 200}
    assert proxy["deploy"]["resources"]["reservations"]["memory"] == proxy["mem_reservation"]
    assert svcs["db"]["deploy"]["resources"]["limits"]["memory"] == svcs["db"]["mem_limit"] == str(2 * G)
    assert svcs["job"]["deploy"]["resources"]["limits"]["cpus"] == svcs["job"]["cpus"] == 1.5


def test_a_stack_that_writes_legacy_keys_gets_legacy_keys(tmp_path: Path) -> None:
    """Every limited service writes `mem_limit`/`cpus`: the missing figures go there too, in
    the stack's units (`1g`), and no deploy block appears."""
    shutil.copytree(FIXTURES / "legacy-keys" / "input", tmp_path, dirs_exist_ok=True)
    apply(str(tmp_path))
    assert "deploy:" not in (tmp_path / "compose.yaml").read_text()
    proc = compose_config(tmp_path, ["compose.yaml"], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    svcs = json.loads(proc.stdout)["services"]
    assert (svcs["db"]["cpus"], svcs["db"]["mem_limit"], svcs["db"]["mem_reservation"]) == (1, str(2 * G), str(G))
    assert (svcs["job"]["cpus"], svcs["job"]["mem_limit"]) == (1.5, str(G))
    assert svcs["proxy"]["cpus"] == 0.5 and svcs["done"]["cpus"] == 0.5


def test_a_stack_that_limits_memory_only_gets_memory_limits_only(tmp_path: Path) -> None:
    """Services limited at `memory: 300M` and nothing else: a service without limits gets a
    memory limit written the same way, and no CPU limit or reservation anyone would delete."""
    f = tmp_path / "compose.yaml"
    limited = "".join(f"  {n}:\n    image: myorg/{n}:1\n    deploy:\n      resources:\n        limits:\n"
                      f"          memory: {m}\n" for n, m in (("ad", "300M"), ("cart", "160M")))
    cache = "  cache:\n    image: redis:7\n    command: redis-server --maxmemory 256mb\n"
    f.write_text(f"services:\n{limited}{cache}")
    assert apply(str(tmp_path)) == 1
    assert f.read_text() == (f"services:\n{limited}{cache}    deploy:\n      resources:\n"
                             "        limits:\n          memory: 512M\n")
    assert apply(str(tmp_path)) == 0


def test_anchored_service_and_the_services_that_merge_it(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "anchors" / "input", tmp_path, dirs_exist_ok=True)
    apply(str(tmp_path))
    res = resources(tmp_path, ["compose.yaml"])
    # No CPU figure is known for them: memory limits, and the memory reservations the stack writes.
    assert figures(res["api"]) == figures(res["admin"]) == (None, 4 * G, None, 2 * G)  # admin inherits api's
    assert figures(res["cache"]) == (None, 512 * M, None, 256 * M)  # its own, not api's
    assert res["legacy"] == {"limits": {"cpus": 1, "memory": str(G)}}  # shielded with its own values
    assert res["sidecar"] == {"limits": {"cpus": 0.5, "memory": str(256 * M)},
                              "reservations": {"cpus": 0.25, "memory": str(128 * M)}}  # untouched
    text = (tmp_path / "compose.yaml").read_text()
    assert text.count("deploy:") == 4  # x-defaults, api, cache, legacy: none in admin
    assert "admin:\n    <<: *app\n    command: gunicorn admin.main:app -b 0.0.0.0:8001\n  #" in text


def test_extends_follow_their_base(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "extends" / "input", tmp_path, dirs_exist_ok=True)
    apply(str(tmp_path))
    res = resources(tmp_path, ["compose.yaml"])
    assert res["web"] == res["base"] == {"limits": {"cpus": 1, "memory": str(G)},
                                         "reservations": {"cpus": 0.5, "memory": str(512 * M)}}  # base had limits: alone
    assert figures(res["copy"]) == figures(res["plain"]) == (1, G, 0.5, 512 * M)  # copy inherits plain's
    # The worker role's memory; CPUs from the configuration's default.
    assert figures(res["tasks"]) == (1, 4 * G, 0.5, 2 * G)
    assert figures(res["external"]) == (1, 4 * G, 0.5, 2 * G)  # its base, in another file, is a worker


def test_a_one_shot_job_gets_no_limits_but_inherits_its_base_s(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A migration that runs once gets no limits of its own (nor a finding); one that extends
    the server keeps what the server gets; one restarted on failure is no one-shot job here."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n  api:\n    image: example/api:1\n    build: .\n    command: gunicorn app:app\n"
        "  migrate:\n    image: example/api:1\n    build: .\n    restart: \"no\"\n    command: [flask, db, upgrade]\n"
        "  seed:\n    extends: api\n    command: [flask, seed]\n"
        "  retried-migrate:\n    image: example/api:1\n    build: .\n    restart: on-failure\n    command: [flask, db, upgrade]\n")
    capsys.readouterr()
    assert apply(str(tmp_path)) == 1
    res = resources(tmp_path, ["compose.yaml"])
    assert res["migrate"] is None
    assert res["seed"] == res["api"] is not None
    err = capsys.readouterr().err
    assert "service 'retried-migrate' has no resource limits" in err  # decided on (no figure for its image)
    assert "'migrate'" not in err


def test_override_file_variants(tmp_path: Path) -> None:
    """The service defined in both files gets it in the base; the one only in the override there."""
    shutil.copytree(FIXTURES / "override" / "input", tmp_path, dirs_exist_ok=True)
    apply(str(tmp_path))
    base = resources(tmp_path, ["compose.yaml"])
    both = resources(tmp_path, ["compose.yaml", "compose.override.yaml"])
    # The override reserves memory (`mem_reservation`), CPUs nowhere: so do the new figures.
    assert figures(base["api"]) == figures(both["api"]) == (1, 4 * G, None, G)  # CPUs: the configured default
    assert figures(both["mailhog"]) == (1, G, None, 512 * M)
    assert "mailhog" not in base


# --- small cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("services:\n  a:\n    image: x\n    deploy:\n      resources:\n        limits:\n"
                     "          cpus: '1'\n          memory: 1G\n", id="limits already set"),
        pytest.param("services:\n  a:\n    image: x\n    cpus: 2\n    mem_limit: 1g\n", id="legacy limits"),
        pytest.param("services:\n  a:  # e2i-fix: ignore[deploy-limits]\n    image: x\n", id="inline opt-out"),
        pytest.param("x-l: &l\n  deploy:\n    resources:\n      limits:\n        cpus: '1'\n        memory: 1G\n"
                     "services:\n  a:\n    <<: *l\n    image: x\n", id="limits through a merge key"),
        pytest.param("services:\n  a:\n    image: x\n    mem_limit: 1g\n  b:\n    extends: a\n    cpus: 1\n",
                     id="extends a base with limits, and that base has mem_limit and cpus together"),
        pytest.param("services:\n  migrate:\n    image: x\n    restart: \"no\"\n    command: [alembic, upgrade, head]\n",
                     id="a one-shot migration job"),
    ],
)
def test_noop(text: str, tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    if "extends" in text:  # `a` alone is not done: give it cpus, to keep only the extends case
        f.write_text(text.replace("mem_limit: 1g\n", "mem_limit: 1g\n    cpus: 1\n", 1))
    before = f.read_bytes()
    assert apply(str(tmp_path)) == 0
    assert f.read_bytes() == before


@pytest.mark.parametrize(
    ("files", "message"),
    [
        pytest.param({"compose.yaml": "x-d: &d\n  deploy:\n    restart_policy:\n      condition: on-failure\n"
                                      "services:\n  a:\n    <<: *d\n    image: postgres:16\n"},
                     "its deploy comes from a merged mapping (<<:) that an own key would replace", id="merged deploy"),
        pytest.param({"compose.yaml": "services:\n  a:\n    image: x\n    mem_limit: 1g\n",
                      "compose.override.yaml": "services:\n  a:\n    mem_limit: 2g\n"},
                     "its mem_limit differs between files", id="legacy key split across files"),
        pytest.param({"compose.yaml": "services:\n  a:\n    image: x\n    memswap_limit: 2g\n"},
                     "has memswap_limit but no mem_limit", id="memswap without mem_limit"),
        pytest.param({"compose.yaml": "services:\n  a: {image: x}\n"},
                     "its mapping cannot be edited here", id="flow style service"),
        pytest.param({"compose.yaml": "services:\n  a:\n    image: postgres:16\n    deploy: &d\n      replicas: 1\n"
                                      "  b:\n    image: redis:7\n    command: redis-server --maxmemory 2gb\n"
                                      "    deploy: *d\n"},
                     "its mapping is shared with 'b', which needs other figures", id="anchored deploy, other figures"),
        pytest.param({"compose.yaml": "services:\n  a:\n    image: x\n    deploy: &d\n      replicas: 1\n"
                                      "  b:\n    image: redis:7\n    command: redis-server --maxmemory 2gb\n"
                                      "    deploy: *d\n"},
                     "its deploy is an alias, in flow style or not a mapping", id="deploy through an alias"),
        pytest.param({"compose.yaml": "services:\n  a:\n    image: postgres:16\n    deploy: &d\n      replicas: 1\n"
                                      "  b:\n    image: example/unknown:1\n    deploy: *d\n"},
                     "its mapping is shared with 'b', which has no figure that can be trusted",
                     id="anchored deploy shared with a service no figure can be trusted with"),
        pytest.param({"compose.yaml": "services:\n  a:\n    image: postgres:16\n    deploy: {replicas: 2}\n"},
                     "its deploy is an alias, in flow style or not a mapping", id="flow style deploy"),
    ],
)
def test_reported_not_fixed(files: dict[str, str], message: str, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    before = snapshot(tmp_path)
    main(["--apply", *SELECT, str(tmp_path)])
    out = " ".join(findings(capsys))
    assert message in out and "(no fix applied)" in out
    assert snapshot(tmp_path) == before


def test_an_anchored_deploy_is_shared_when_the_figures_agree(tmp_path: Path) -> None:
    """`b` uses `a`'s deploy anchor and needs the same figures: the anchor gets them, once."""
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  a:\n    image: postgres:16\n    deploy: &d\n      replicas: 1\n"
                 "  b:\n    image: postgres:16-alpine\n    deploy: *d\n")
    assert apply(str(tmp_path)) == 1
    assert f.read_text().count("resources:") == 1
    res = resources(tmp_path, ["compose.yaml"])
    assert figures(res["a"]) == figures(res["b"]) == (None, G, None, None)  # no CPU figure is known


def test_a_size_set_through_a_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A size written through a variable is read with the value `.env` or its written default
    gives it here, and the limit covers it as an unsafe fix (the shell decides at `up`); one
    with no value here is a finding: any figure may be under it."""
    f = tmp_path / "compose.yaml"
    text = ("services:\n  cache:\n    image: redis:7\n    command: redis-server --maxmemory ${REDIS_MAXMEMORY:-2gb}\n"
            "  db:\n    image: mariadb:11\n    command: --innodb-buffer-pool-size=${POOL}\n"
            "  search:\n    image: elasticsearch:8.15.0\n    environment:\n      ES_JAVA_OPTS: -Xms${HEAP} -Xmx${HEAP}\n")
    f.write_text(text)
    (tmp_path / ".env").write_text("HEAP=4g\n")
    assert apply(str(tmp_path), unsafe=False) == 0  # safe fixes only: nothing applied
    assert f.read_text() == text
    assert findings(capsys) == [
        "[deploy-limits] service 'cache' has no resource limits: add deploy.resources (memory 3G); from the service's "
        "own setting; memory raised to cover --maxmemory 2gb x 1.5; read through --maxmemory ${REDIS_MAXMEMORY:-2gb} "
        "(REDIS_MAXMEMORY defaults to 2gb): the shell may give it another value at `up`, so an unsafe fix "
        "(no fix applied)",
        "[deploy-limits] service 'db' has no resource limits, and no figure can be trusted with it: it sizes itself "
        "through innodb_buffer_pool_size ${POOL}, which has no value here (no .env entry, no default), so no limit can be "
        "checked against it; measure it (--usage, `docker stats` output) or set services.db in the configuration "
        "(no fix applied)",
        "[deploy-limits] service 'search' has no resource limits: add deploy.resources (memory 8G); from the service's "
        "own setting; memory raised to cover -Xmx4g in ES_JAVA_OPTS x 2; read through -Xmx${HEAP} in ES_JAVA_OPTS (HEAP = 4g in .env): the shell may give it another "
        "value at `up`, so an unsafe fix (no fix applied)"]
    assert apply(str(tmp_path)) == 1
    assert 'memory: "3G"' in f.read_text() and 'memory: "8G"' in f.read_text()


def test_carried_interpolated_mem_limit_stays_equal(tmp_path: Path) -> None:
    """`mem_limit: ${MEM_LIMIT}` is carried over as written, so both always interpolate alike."""
    f = tmp_path / "compose.yaml"
    # The stack writes deploy.resources (web, first): db's legacy mem_limit is carried into one.
    web = ('  web:\n    image: nginx:1.27\n    deploy:\n      resources:\n        limits:\n          cpus: "0.5"\n'
           '          memory: "256M"\n        reservations:\n          cpus: "0.25"\n          memory: "128M"\n')
    f.write_text(f"services:\n{web}  db:\n    image: mysql:8\n    mem_limit: ${{MEM_LIMIT}}\n")
    (tmp_path / ".env").write_text("MEM_LIMIT=3g\n")
    (tmp_path / ".e2i-fix.toml").write_text('[deploy-limits]\nservices = { db = { cpus = "1" } }\n')
    assert apply(str(tmp_path)) == 1
    assert f.read_text() == (
        f"services:\n{web}  db:\n    image: mysql:8\n    mem_limit: ${{MEM_LIMIT}}\n"
        '    deploy:\n      resources:\n        limits:\n          cpus: "1"\n          memory: ${MEM_LIMIT}\n'
        '        reservations:\n          cpus: "0.5"\n'
    )
    res = resources(tmp_path, ["compose.yaml"])
    assert res["db"] == {"limits": {"cpus": 1, "memory": str(3 * G)}, "reservations": {"cpus": 0.5}}


def test_insertions_keep_crlf_and_the_missing_final_newline(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_bytes(b"services:\r\n  web:\r\n    image: nginx:1.27\r\n    deploy:\r\n      replicas: 2")
    assert apply(str(tmp_path)) == 1
    assert f.read_bytes() == (
        b"services:\r\n  web:\r\n    image: nginx:1.27\r\n    deploy:\r\n      replicas: 2\r\n"
        b'      resources:\r\n        limits:\r\n          memory: "256M"'
    )


def test_quote_style_of_the_file(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  web:\n    image: 'nginx:1.27'\n")
    apply(str(tmp_path))
    assert "        limits:\n          memory: '256M'\n" in f.read_text()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "services:\n  a:\n    image: nginx:1.27\n    logging:\n      driver: json-file\n",
            "services:\n  a:\n    image: nginx:1.27\n    logging:\n      driver: json-file\n"
            '      options:\n        max-size: "10m"\n        max-file: "3"\n'
            '    deploy:\n      resources:\n        limits:\n          memory: "256M"\n',
            id="regression: logging's options and a new deploy at one point"),
        pytest.param(
            "services:\n  a:\n    image: nginx:1.27\n    deploy:\n      replicas: 2\n",
            "services:\n  a:\n    image: nginx:1.27\n    deploy:\n      replicas: 2\n"
            '      resources:\n        limits:\n          memory: "256M"\n'
            "    logging: *default-logging\n",
            id="regression: new resources and a logging entry at one point"),
    ],
)
def test_with_the_logging_pass_at_one_point(text: str, expected: str, tmp_path: Path) -> None:
    """Both passes insert where the service ends: the deeper block must come first."""
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    assert main(["--apply", "--unsafe-fixes", "--select", "deploy-limits,logging", str(tmp_path)]) == 1
    assert f.read_text().endswith(expected)
    assert compose_config(tmp_path, ["compose.yaml"], "-q").returncode == 0


def test_the_documented_example(tmp_path: Path) -> None:
    from e2i_fix.passes import deploy_limits

    doc = deploy_limits.__doc__ or ""
    example = doc.split("## Example", 1)[1].split("## ", 1)[0]
    before, after = (textwrap.dedent(part.split(":\n\n", 1)[1]).strip() + "\n"
                     for part in example.split("After")[:2])
    (tmp_path / "compose.yaml").write_text(before)
    assert apply(str(tmp_path)) == 1
    assert (tmp_path / "compose.yaml").read_text() == after


# --- configuration --------------------------------------------------------------------------

STACK = (
    "services:\n"
    "  api:\n    build: .\n    command: gunicorn app:app\n"
    "  worker:\n    build: .\n    command: celery -A app worker\n"
    "  redis:\n    image: redis:7\n"
    "  valkey:\n    image: valkey/valkey:8\n"
    "  sessions:\n    image: bitnami/redis:7\n"
    "  misc:\n    image: busybox\n    command: [sleep, infinity]\n    mem_limit: 1g\n"
)
TABLES = (
    'services = {api = {cpus = "4", memory = "8G"}}\n'
    'images = {redis = {memory = "1G"}, "bitnami/redis" = {cpus = 0.5, memory = "2G"}}\n'
    'roles = {worker = {memory = "6G"}}\n'
    'default = {cpus = "0.5"}\n'
)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        pytest.param(".e2i-fix.toml", "[deploy-limits]\n" + TABLES, id=".e2i-fix.toml"),
        pytest.param("pyproject.toml", "[project]\nname = 'x'\n\n[tool.e2i-fix.deploy-limits]\n" + TABLES,
                     id="pyproject.toml"),
    ],
)
def test_config_overrides_per_service_image_role_and_default(name: str, text: str, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(STACK)
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\n")
    (tmp_path / name).write_text(text)
    assert apply(str(tmp_path)) == 1
    res = resources(tmp_path, ["compose.yaml"])
    assert figures(res["api"]) == (4, 8 * G, None, None)  # per service
    # Per image: memory set; CPUs from the configuration's default (the built-in ones are none).
    assert figures(res["redis"]) == (0.5, G, None, None)
    assert figures(res["valkey"]) == (0.5, G, None, None)  # valkey is a redis: the same entry
    assert figures(res["sessions"]) == (0.5, 2 * G, None, None)  # a repository beats the family
    assert figures(res["worker"]) == (0.5, 6 * G, None, None)  # role: memory set, CPUs the default's
    assert figures(res["misc"]) == (0.5, G, None, None)  # default: cpus set, its own mem_limit carried


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('[deploy-limits]\nservices = {api = {memory = "lots"}}\n',
                     "option services.api.memory: 'lots' is not a size", id="bad size"),
        pytest.param('[deploy-limits]\nservices = {api = {cpu = "2"}}\n',
                     "option services.api: unknown key cpu (allowed: cpus, memory)", id="unknown key"),
        pytest.param('[deploy-limits]\ndefault = {cpus = "-1"}\n',
                     "option default.cpus: '-1' is not a number of CPUs", id="bad cpus"),
    ],
)
def test_bad_options_are_reported(text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text(STACK.split("  worker:")[0])
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\n")
    (tmp_path / ".e2i-fix.toml").write_text(text)
    # A bad option value is the run's error, like an unknown option: exit 2, said on stderr.
    assert main(["--check", *SELECT, str(tmp_path)]) == 2
    assert any(message in line for line in capsys.readouterr().err.splitlines())


def test_unknown_option_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text(STACK)
    (tmp_path / ".e2i-fix.toml").write_text('[deploy-limits]\nhead-room = 2\n')
    assert main(["--check", *SELECT, str(tmp_path)]) == 2
    assert "unknown option head-room for deploy-limits" in capsys.readouterr().err


# --- the example stack ----------------------------------------------------------------------

REVIEW = {  # the review's figures, as limits: reservations only where the stack writes them
    "api": (2, 4 * G, None, None),
    "worker": (2, 4 * G, None, None),
    "mlflow": (1, 2 * G, None, None),
    "redis": (1, 512 * M, None, None),
    "falkordb": (1, G, None, None),
}


def test_the_example_stack_gets_the_review_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default run gives the review's figures (the example's .e2i-fix.toml has them); the
    services no figure can be trusted with are findings, with or without --unsafe-fixes."""
    shutil.copytree(ROOT / "examples" / "e2i", tmp_path / "e2i")
    folder = tmp_path / "e2i"
    assert main(["--dry-run", *SELECT, str(folder)]) == 1
    out = capsys.readouterr().out
    assert out.count("+    deploy:\n") == len(REVIEW)
    assert apply(str(folder), unsafe=False) == 1
    # redis runs with --maxmemory 256mb: 256mb x 1.5 = 384M is under 512M, so 512M stands.
    left = findings(capsys)
    # The services the tool has no figures for share one finding that names them; a service
    # with a reason of its own has its own.
    named = sorted(n for f in left for n in re.findall(r"'([\w-]+)'", f.split("] ", 1)[1].split(" have ")[0].split(" has ")[0]))
    assert named == ["bentoml", "feast", "flower", "frontend", "opik", "redis-commander"]
    assert all("no figure can be trusted with" in f and "(no fix applied)" in f for f in left), left
    assert any(f.split("] ", 1)[1].startswith("5 services (") for f in left), left
    for files in (["docker-compose.yml"], ["docker-compose.yml", "docker-compose.dev.yml"]):
        res = resources(folder, files)
        for name, want in REVIEW.items():
            assert figures(res[name]) == want, (files, name)
        assert {n for n, r in res.items() if r} == set(REVIEW)
    before = snapshot(folder)
    apply(str(folder))  # --unsafe-fixes: no guess for them either
    assert snapshot(folder) == before


def test_the_example_stack_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(ROOT / "examples" / "e2i", tmp_path / "e2i")
    main(["--check", *SELECT, str(tmp_path / "e2i")])
    got = findings(capsys)
    assert "[deploy-limits] service 'redis' has no resource limits: add deploy.resources (1 CPU / 512M); " \
           "from config services.redis; it covers --maxmemory 256mb x 1.5" in got
    assert "[deploy-limits] service 'bentoml' has no resource limits, and no figure can be trusted with it: a model " \
           "server (BentoML), whose memory is the models it loads; measure it (--usage, `docker stats` output) or " \
           "set services.bentoml in the configuration (no fix applied)" in got
    assert "[deploy-limits] service 'api' has no resource limits: add deploy.resources (2 CPUs / 4G); " \
           "from config services.api" in got
    # 5 fixes (the review's figures), bentoml's own finding, and one finding for the 5 services
    # the tool has no figures for.
    assert len(got) == 7


# --- the real-world corpus ------------------------------------------------------------------


def _verdict(folder: Path, files: list[str], root: Path) -> tuple[tuple[int, str], ...]:
    out = []
    for extra in ((), ("--no-interpolate",)):
        proc = compose_config(folder, files, "-q", *extra)
        # Warnings (unset variables) carry a timestamp; the verdict is the exit code and the error.
        errors = [line for line in proc.stderr.splitlines() if "level=warning" not in line]
        out.append((proc.returncode, "\n".join(errors).replace(str(root), "ROOT")))
    return tuple(out)


def test_corpus_inserts_lines_only_stays_valid_and_settles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, alone = corpus_run(tmp_path, lambda *paths: apply("--unsafe-fixes", *map(str, paths)))
    before_root, root, variants = run.before_root, run.root, run.variants
    args = ["--unsafe-fixes", str(root), *map(str, alone)]
    err = capsys.readouterr().err
    assert "internal error" not in err and "verification failed" not in err and "invalid YAML" not in err, err

    changed = 0
    for c in corpus_files("compose"):
        old = (before_root / laid_out(root, c).relative_to(root)).read_text(encoding="utf-8-sig")
        new = laid_out(root, c).read_text(encoding="utf-8-sig")
        changed += old != new
        ops = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False).get_opcodes()
        rewritten = [(tag, i1, i2) for tag, i1, i2, _, _ in ops if tag not in ("equal", "insert")]
        assert not rewritten, f"{c.id}: original lines removed or rewritten: {rewritten}"
    # The OpenTelemetry demo limits memory only, on every service: nothing it would keep to add;
    # feast's examples/podman_local/ is a local set-up (its folder says so: development).
    assert changed >= 36

    def judge(variant: tuple[Path, list[str]]) -> tuple[str, Any, Any]:
        folder, names = variant
        rel = folder.relative_to(root)
        return (f"{rel}/{names}", _verdict(before_root / rel, names, before_root), _verdict(folder, names, root))

    with ThreadPoolExecutor(max_workers=4) as pool:
        for where, old_v, new_v in pool.map(judge, variants):
            assert new_v == old_v, where

    again = snapshot(root)
    assert apply(*args) == 0, "not idempotent"
    assert snapshot(root) == again


# --- the sources of figures, and their safety -----------------------------------------------


def test_only_figures_that_rest_on_something_known_are_safe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default run applies the configuration's figure, the one covering --maxmemory and the
    documented image needs; the generic profile, the role and the default wait for --unsafe-fixes."""
    shutil.copytree(FIXTURES / "sources" / "input", tmp_path, dirs_exist_ok=True)
    assert apply(str(tmp_path), unsafe=False) == 1
    res = resources(tmp_path, ["compose.yaml"])
    assert {n for n, r in res.items() if r} == {"configured", "broker", "search", "cache"}
    assert figures(res["configured"]) == (0.5, 768 * M, None, None)  # config
    assert figures(res["broker"]) == (None, 2 * G, None, None)  # Kafka's default 1G heap; no CPU figure known
    assert figures(res["search"]) == (None, 5 * G, None, None)  # SONAR_SEARCH_JAVAOPTS -Xmx3g x 1.5
    assert figures(res["cache"]) == (None, 1536 * M, None, None)  # --maxmemory 1gb x 1.5 checks the profile
    left = {f.split("'")[1]: f for f in findings(capsys)}
    assert sorted(left) == ["api", "misc", "proxy"]
    assert all("(no fix applied)" in f for f in left.values())
    assert all("a generic figure, so an unsafe fix" in left[n] for n in ("api", "proxy"))
    assert "no figure can be trusted with it" in left["misc"]


def test_provenance_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(FIXTURES / "sources" / "input", tmp_path, dirs_exist_ok=True)
    assert main(["--check", "--format", "json", *SELECT, str(tmp_path)]) == 1
    records = json.loads(capsys.readouterr().out)["records"]
    by_service = {r["message"].split("'")[1]: r for r in records if r["message"].startswith("service ")}
    assert by_service["broker"]["provenance"] == [
        {"what": "limits.memory 2G", "source": "image kafka (documented needs): kafka-server-start.sh defaults "
         "KAFKA_HEAP_OPTS to -Xmx1G -Xms1G, x 1.5 plus the page cache a broker reads from "
         "(kafka.apache.org/documentation/#java)"}]
    assert by_service["cache"]["provenance"][0] == {
        "what": "limits.memory 1536M", "source": "the service's own setting: --maxmemory 1gb x 1.5"}
    # The stack reserves nothing: limits only, each with its source.
    assert [p["what"] for p in by_service["configured"]["provenance"]] == ["limits.cpus 0.5", "limits.memory 768M"]
    assert by_service["api"]["safety"] == "unsafe" and by_service["broker"]["safety"] == "safe"
    assert by_service["misc"]["safety"] == "display-only" and not by_service["misc"].get("provenance")
    totals = [r for r in records if r["info"]]
    assert len(totals) == 1 and totals[0]["message"].startswith("resource totals, compose.yaml: default: 7 containers")


# --- observed usage -------------------------------------------------------------------------

SAMPLE = ('{"BlockIO":"0B / 0B","CPUPerc":"%s","Container":"x","ID":"x","MemPerc":"1%%","MemUsage":"%s / 7.66GiB",'
          '"Name":"%s","NetIO":"0B / 0B","PIDs":"3"}\n')


def test_usage_from_the_command_line_and_a_project_run_under_another_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--usage FILE`: containers of `docker compose -p staging up` (staging-web-1) still match
    when most of the stack's services have containers under that name; a service that another
    stack of the file happens to share does not."""
    stack = "services:\n  web:\n    image: example/web:1\n  db:\n    image: postgres:16\n"
    (tmp_path / "compose.yaml").write_text(stack)
    other = tmp_path / "other"
    other.mkdir()
    (other / "compose.yaml").write_text(stack + "".join(f"  {n}:\n    image: {n}:1\n" for n in ("rabbitmq", "mailpit", "memcached")))
    usage = tmp_path / "stats.json"
    usage.write_text(SAMPLE % ("80.00%", "600MiB", "staging-web-1") + SAMPLE % ("10.00%", "300MiB", "staging-web-1")
                     + SAMPLE % ("1.00%", "50MiB", "staging-db-1") + SAMPLE % ("1.00%", "50MiB", "blog-web-1"))
    assert main(["--apply", *SELECT, "--usage", str(usage), str(tmp_path / "compose.yaml")]) == 1
    assert figures(resources(tmp_path, ["compose.yaml"])["web"]) == (1.25, G, None, None)
    capsys.readouterr()
    # `other` has five services: staging's two are not most of them, so nothing matches.
    assert main(["--check", *SELECT, "--usage", str(usage), str(other)]) == 1
    assert "observed usage (peak" not in " ".join(findings(capsys))


def test_usage_of_compose_v1_names(tmp_path: Path) -> None:
    """`<project>_<service>_<n>`, as docker-compose 1.x named containers; kB and MB are decimal."""
    stack = tmp_path / "My Shop"
    stack.mkdir()
    (stack / "compose.yaml").write_text("services:\n  web:\n    image: example/web:1\n")
    usage = tmp_path / "stats.json"
    usage.write_text(SAMPLE % ("5%", "500MB", "myshop_web_1") + SAMPLE % ("5%", "400000kB", "myshop_web_2"))
    assert main(["--apply", *SELECT, "--usage", str(usage), str(stack)]) == 1
    assert figures(resources(stack, ["compose.yaml"])["web"]) == (0.25, 768 * M, None, None)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        pytest.param(SAMPLE % ("1%", "1MiB", "a-web-1") + "{not json\n", "2:2", "not a JSON object (Expecting property",
                     id="not JSON"),
        pytest.param("\n" + SAMPLE % ("1%", "1MiB", "a-web-1") + "[1, 2]\n", "3:1", "not a JSON object", id="a list"),
        pytest.param(SAMPLE % ("1%", "lots", "a-web-1"), "1:1", "MemUsage 'lots / 7.66GiB' of 'a-web-1' is not a size",
                     id="bad MemUsage"),
        pytest.param(SAMPLE % ("high", "1MiB", "a-web-1"), "1:1", "CPUPerc 'high' of 'a-web-1' is not a percentage",
                     id="bad CPUPerc"),
        pytest.param('{"CPUPerc": "1%", "MemUsage": "1MiB / 2GiB"}\n', "1:1", "no container Name", id="no name"),
    ],
)
def test_a_bad_usage_file_is_one_line_and_exit_2(text: str, where: str, message: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n")
    usage = tmp_path / "usage.json"
    usage.write_text(text)
    assert main(["--check", *SELECT, "--usage", str(usage), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{usage}:{where}: {message}"), err


def test_a_bad_usage_file_named_in_the_config_is_the_stack_error(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n")
    (tmp_path / ".e2i-fix.toml").write_text('[deploy-limits]\nusage = "usage.json"\n')
    (tmp_path / "usage.json").write_text(SAMPLE % ("1%", "1MiB", "a-web-1") + "oops\n")
    assert main(["--check", *SELECT, str(tmp_path)]) == 2
    assert f"{tmp_path / 'usage.json'}:2:1: [deploy-limits] not a JSON object" in capsys.readouterr().err


def test_a_missing_usage_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n")
    assert main(["--check", *SELECT, "--usage", str(tmp_path / "nope.json"), str(tmp_path)]) == 2
    assert "cannot read the usage file" in capsys.readouterr().err


# --- the host budget ------------------------------------------------------------------------

BUDGET = (
    "services:\n"
    "  api:\n    image: x\n    deploy:\n      replicas: 2\n      resources:\n        limits: {cpus: '2', memory: 4G}\n"
    "        reservations: {cpus: '1', memory: 3G}\n"
    "  db:\n    image: postgres:16\n"
    "  tools:\n    image: y\n    profiles: [debug]\n    cpus: 4\n    mem_limit: 8g\n"
)


def test_totals_are_information_for_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With nothing to fix, --check prints the totals and exits 0: information is not a finding."""
    (tmp_path / "compose.yaml").write_text(BUDGET.replace("  db:\n    image: postgres:16\n", ""))
    (tmp_path / "compose.override.yaml").write_text("services:\n  api:\n    deploy:\n      replicas: 3\n")
    assert main(["--check", *SELECT, str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{tmp_path / 'compose.yaml'}: [deploy-limits] resource totals, compose.yaml: default: 2 containers, "
        "limits 4 CPUs / 8G, reservations 2 / 6G; --profile debug: 3 containers, limits 8 CPUs / 16G, "
        "reservations 2 / 6G",
        f"{tmp_path / 'compose.yaml'}: [deploy-limits] resource totals, compose.yaml + compose.override.yaml: "
        "default: 3 containers, limits 6 CPUs / 12G, reservations 3 / 9G; --profile debug: 4 containers, "
        "limits 10 CPUs / 20G, reservations 3 / 9G",
    ]
    assert main(["--dry-run", *SELECT, str(tmp_path)]) == 0
    assert capsys.readouterr() == ("", "")  # the totals are the summary of --check


def test_totals_count_only_figures_the_run_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A development file gets no limits (the pass serves production and example files): the
    totals of its variants count none for it, as `--apply` would leave it."""
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    (tmp_path / "compose.dev.yaml").write_text("services:\n  worker:\n    image: example/app:1\n    build: .\n"
                                               "    command: celery -A app worker\n")
    main(["--check", "--unsafe-fixes", *SELECT, str(tmp_path)])
    totals = [line.split("resource totals, ", 1)[1] for line in capsys.readouterr().out.splitlines()
              if "resource totals" in line]
    assert totals == [
        "compose.yaml: default: 1 container, limits 0 CPU / 256M, reservations 0 / 0M (1 without a CPU limit)",
        "compose.yaml + compose.dev.yaml: default: 2 containers, limits 0 CPU / 256M, reservations 0 / 0M "
        "(1 without a memory limit, 2 without a CPU limit)",
        "compose.dev.yaml: default: 1 container, limits 0 CPU / 0M, reservations 0 / 0M (1 without a memory limit, "
        "1 without a CPU limit)"]
    # Named production, the file gets the worker's figure, and the totals count it.
    (tmp_path / ".e2i-fix.toml").write_text('[roles]\nproduction = ["compose.dev.yaml"]\n')
    main(["--check", "--unsafe-fixes", *SELECT, str(tmp_path)])
    out = capsys.readouterr().out
    assert "resource totals, compose.dev.yaml: default: 1 container, limits 0 CPU / 4G" in out


def test_a_stack_that_does_not_fit_the_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text(BUDGET)
    assert main(["--check", *SELECT, "--host-memory", "8G", "--host-cpus", "4", str(tmp_path)]) == 1
    got = [line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if "containers" not in line]
    assert got == [
        "[deploy-limits] service 'db' has no resource limits: add deploy.resources (memory 1G, reservation 512M); "
        "from image postgres (documented needs)",
        "[deploy-limits] compose.yaml with --profile debug: memory limits add up to 17G, over 2 x the host's 8G: "
        "lower the figures or raise host-memory / host-cpus (no fix applied)",
    ]


def test_host_budget_from_the_config_and_its_cpu_cap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Reservations above the host are a finding; a CPU limit above host-cpus is capped (Docker
    would refuse to start the container)."""
    (tmp_path / "compose.yaml").write_text(BUDGET)
    (tmp_path / ".e2i-fix.toml").write_text(
        '[deploy-limits]\nhost-memory = "4G"\nhost-cpus = 1\novercommit = 4\n'
        'images = {postgres = {cpus = "2"}}\n')
    assert main(["--check", *SELECT, str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "service 'db' has no resource limits: add deploy.resources (1 CPU / 1G, reservations 0.5 / 512M); " \
           "cpus from config images.postgres, capped at host-cpus 1, memory from image postgres (documented " \
           "needs); cpus capped at host-cpus 1" in out
    assert "compose.yaml: memory reservations add up to 6.5G, more than the host's 4G; CPU reservations add up " \
           "to 2.5, more than the host's 1; CPU limits add up to 5, over 4 x the host's 1" in out
    assert "resource totals (host: 1 CPUs / 4G), compose.yaml: default: 3 containers" in out


# --- shared profiles ------------------------------------------------------------------------


def test_shared_profiles_mean_the_written_out_form(tmp_path: Path) -> None:
    """`docker compose config` reads the anchored form exactly as the written-out one (the new
    `x-` block aside: Compose keeps extension fields in its output)."""
    shared, plain = tmp_path / "a" / "stack", tmp_path / "b" / "stack"
    for folder in (shared, plain):
        shutil.copytree(FIXTURES / "shared" / "input", folder)
    (plain / ".e2i-fix.toml").write_text((plain / ".e2i-fix.toml").read_text() + "shared-profiles = false\n")
    assert apply(str(shared)) == apply(str(plain)) == 1
    assert "*resources-default" in (shared / "compose.yaml").read_text()
    assert "*resources" not in (plain / "compose.yaml").read_text()
    configs = []
    for folder in (shared, plain):
        proc = compose_config(folder, ["compose.yaml"], "--format", "json")
        assert proc.returncode == 0, proc.stderr
        configs.append(json.loads(proc.stdout.replace(str(folder), "STACK")))
    assert configs[0].pop("x-resources-default") == {"limits": {"cpus": "0.5", "memory": "768M"}}
    assert configs[0] == configs[1]


@pytest.mark.parametrize(
    ("n", "shared"), [pytest.param(2, False, id="two services: written out"), pytest.param(3, True, id="three")])
def test_shared_profiles_take_three_services(n: int, shared: bool, tmp_path: Path) -> None:
    text = "services:\n" + "".join(f"  s{i}:\n    image: postgres:16\n" for i in range(n))
    (tmp_path / "compose.yaml").write_text(text)
    assert apply(str(tmp_path)) == 1
    got = (tmp_path / "compose.yaml").read_text()
    assert ("x-resources-postgres: &resources-postgres\n" in got) is shared
    assert got.count("limits:") == (1 if shared else n)


def test_a_service_added_later_refers_to_the_existing_block(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "shared" / "input", tmp_path, dirs_exist_ok=True)
    assert apply(str(tmp_path)) == 1
    f = tmp_path / "compose.yaml"
    f.write_text(f.read_text() + "  late:\n    image: example/late:1\n")
    before = f.read_text()
    assert apply(str(tmp_path)) == 1
    assert f.read_text() == before + "    deploy:\n      resources: *resources-default\n"


def test_totals_count_the_profiles_compose_profiles_enables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text(BUDGET.replace("  db:\n    image: postgres:16\n", ""))
    (tmp_path / ".env").write_text("COMPOSE_PROFILES=debug\n")
    assert main(["--check", *SELECT, str(tmp_path)]) == 0
    assert capsys.readouterr().out.split(": [deploy-limits] ")[1] == (
        "resource totals, compose.yaml: default (COMPOSE_PROFILES=debug): 3 containers, limits 8 CPUs / 16G, "
        "reservations 2 / 6G\n")


def test_a_heap_set_in_an_env_file_is_covered(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  search:\n    image: elasticsearch:8.15.0\n"
                                           "    env_file: search.env\n")
    (tmp_path / "search.env").write_text("# heap\nES_JAVA_OPTS=-Xms3g -Xmx3g\n")
    assert apply(str(tmp_path), unsafe=False) == 1
    assert figures(resources(tmp_path, ["compose.yaml"])["search"]) == (None, 6 * G, None, None)


TEMPLATED = (
    "x-app: &app\n  image: example/app:1\n  restart: always\n"
    "services:\n"
    + "".join(f"  job{i}:\n    <<: *app\n    command: run {i}\n" for i in range(3))
    + "".join(f"  tool{i}:\n    image: example/tool:{i}\n" for i in range(3))
)


@pytest.mark.parametrize("placement", ["template", "per-service"])
def test_a_service_template_and_shared_profiles(placement: str, tmp_path: Path) -> None:
    """The services that merge one template get the resources once, in it (written out: the
    template stands above where a new anchor could go); the others share one anchored block.
    With `placement = "per-service"` every service refers to the block."""
    (tmp_path / "compose.yaml").write_text(TEMPLATED)
    (tmp_path / ".e2i-fix.toml").write_text(f'placement = "{placement}"\n\n[deploy-limits]\n'
                                            'default = {cpus = "1", memory = "1G"}\n')
    assert apply(str(tmp_path)) == 1
    text = (tmp_path / "compose.yaml").read_text()
    block = '  deploy:\n    resources:\n      limits:\n        cpus: "1"\n        memory: "1G"\n'
    assert (("  restart: always\n" + block) in text) is (placement == "template")
    assert text.count("resources: *resources-default") == (3 if placement == "template" else 6)
    res = resources(tmp_path, ["compose.yaml"])
    assert all(figures(res[n]) == (1, G, None, None) for n in res)
    assert apply(str(tmp_path)) == 0


# --- one reading of the service -------------------------------------------------------------


def test_the_role_of_what_the_image_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A service that builds an image whose CMD is gunicorn is an API server, though its compose
    entry says nothing of it; its generic figure is an unsafe fix."""
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    build: .\n")
    (tmp_path / "Dockerfile").write_text('FROM python:3.12-slim\nCMD ["gunicorn", "-b", "0.0.0.0:8000", "app:app"]\n')
    assert main(["--check", "--unsafe-fixes", *SELECT, str(tmp_path)]) == 1
    assert findings(capsys) == [
        "[deploy-limits] service 'web' has no resource limits: add deploy.resources (memory 4G); "
        "from role api (generic profile); a generic figure, so an unsafe fix (set it in the configuration, or measure "
        "with --usage)"]


def test_an_image_through_variables_is_one_family_for_every_pass(tmp_path: Path) -> None:
    """`${REGISTRY:-docker.io}/library/postgres:${PG_VERSION}` is the official postgres image
    for deploy-limits (its documented figure, a safe fix) as for cap-drop (the capabilities its
    entrypoint needs): one reading of the image."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n  db:\n    image: ${REGISTRY:-docker.io}/library/postgres:${PG_VERSION}\n")
    (tmp_path / ".env").write_text("PG_VERSION=16-alpine\n")
    assert main(["--apply", "--unsafe-fixes", "--select", "deploy-limits,cap-drop", str(tmp_path)]) == 1
    proc = compose_config(tmp_path, ["compose.yaml"], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    db = json.loads(proc.stdout)["services"]["db"]
    assert figures(db["deploy"]["resources"]) == (None, G, None, None)
    assert db["cap_drop"] == ["ALL"] and sorted(db["cap_add"]) == ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]


# --- reservations never above a limit -------------------------------------------------------


def test_a_reservation_above_a_limit_drops_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """compose.override.yaml reserves 2G for db; the base would get postgres's 1G limit: with
    the override, Docker would refuse the container. Verification drops the fix and says why."""
    shutil.copytree(FIXTURES / "reservation-above-limit" / "input", tmp_path, dirs_exist_ok=True)
    before = snapshot(tmp_path)
    assert main(["--apply", *SELECT, str(tmp_path)]) == 0  # nothing written: a finding
    assert snapshot(tmp_path) == before
    assert findings(capsys) == [
        "[deploy-limits] service 'db' has no resource limits: add deploy.resources (memory 1G); from image "
        "postgres (documented needs) (not applied: with compose.yaml + compose.override.yaml, "
        "services.db.deploy.resources.reservations.memory reserves 2G, above the memory limit 1G: Docker refuses "
        "to create the container) (no fix applied)"]


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        pytest.param({"mem_limit": "500m", "deploy": {"resources": {"reservations": {"memory": "512M"}}}},
                     [("services", "s", "deploy", "resources", "reservations", "memory")], id="deploy over mem_limit"),
        pytest.param({"deploy": {"resources": {"limits": {"memory": "1g"}}}, "mem_reservation": "2g"},
                     [("services", "s", "mem_reservation")], id="mem_reservation over limits.memory"),
        pytest.param({"deploy": {"resources": {"limits": {"cpus": "0.5"}, "reservations": {"cpus": 1}}}},
                     [("services", "s", "deploy", "resources", "reservations", "cpus")], id="cpus"),
        pytest.param({"cpus": 2, "deploy": {"resources": {"reservations": {"cpus": "1.5", "memory": "1G"}}}}, [],
                     id="under the limit, and memory not limited"),
        pytest.param({"mem_limit": "${MEM}", "mem_reservation": "2g"}, [], id="a limit that cannot be read"),
        pytest.param({"mem_limit": "1g", "mem_reservation": "1024m"}, [], id="equal is allowed"),
    ],
)
def test_reservations_above_limits_are_found(service: dict[str, Any], expected: list[tuple[str, ...]]) -> None:
    from e2i_fix import verify

    assert [place for place, _ in verify._reserved_above({"services": {"s": service}})] == expected


def test_reservations_when_the_configuration_asks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  db:\n    image: postgres:16\n")
    (tmp_path / ".e2i-fix.toml").write_text("[deploy-limits]\nreservations = true\n")
    assert main(["--show-config", str(tmp_path)]) == 0
    assert f"\nreservations = true  # {tmp_path / '.e2i-fix.toml'}\n" in capsys.readouterr().out
    assert apply(str(tmp_path)) == 1
    assert figures(resources(tmp_path, ["compose.yaml"])["db"]) == (None, G, None, 512 * M)
    (tmp_path / ".e2i-fix.toml").write_text("[deploy-limits]\nreservations = \"yes\"\n")
    assert main(["--check", *SELECT, str(tmp_path)]) == 2
    assert "option reservations must be true or false" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("services", "name"),
    [
        pytest.param({"backend": "gunicorn app:app", "worker-1": "celery -A app worker", "worker-2": "celery -A app worker"},
                     "resources-shared", id="regression: an api and two workers share no 'worker' block"),
        pytest.param({"celery-default": "celery -A app worker -Q default", "celery-mail": "celery -A app worker -Q mail",
                      "celery-web": "gunicorn app:app"}, "resources-celery", id="the start of their names"),
        pytest.param({"mail": "celery -A app worker -Q mail", "jobs": "celery -A app worker -Q jobs",
                      "reports": "rq worker reports"}, "resources-worker", id="every service a worker"),
    ],
)
def test_a_shared_block_is_named_after_all_who_share_it(services: dict[str, str], name: str, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n" + "".join(
        f"  {n}:\n    image: example/app:1\n    build: .\n    command: {c}\n" for n, c in services.items()))
    assert apply(str(tmp_path)) == 1
    text = (tmp_path / "compose.yaml").read_text()
    assert text.startswith(f"x-{name}: &{name}\n")
    assert text.count(f"resources: *{name}\n") == 3


def test_a_role_is_no_figure_for_an_image_built_elsewhere(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Workers of an image the stack pulls and the table does not know get no role figure, not
    even an unsafe one: one finding names them all. Built here, the same worker gets the role's
    figure (unsafe); pulled but sizing itself (a Node heap), it gets a limit above that size."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n"
        "  worker-mail:\n    image: example/flow:2\n    command: celery -A flow worker -Q mail\n"
        "  worker-jobs:\n    image: example/flow:2\n    command: celery -A flow worker -Q jobs\n"
        "  tasks:\n    image: example/flow:2\n    build: .\n    command: celery -A flow worker\n"
        "  sized-worker:\n    image: example/other:2\n    command: node worker.js\n"
        "    environment:\n      NODE_OPTIONS: --max-old-space-size=6144\n")
    assert main(["--check", "--unsafe-fixes", *SELECT, str(tmp_path)]) == 1
    got = findings(capsys)
    assert ("[deploy-limits] 2 services ('worker-mail', 'worker-jobs') have no resource limits, and no figure can be "
            "trusted with them: their image example/flow is built elsewhere and the tool has no figures for it: the "
            "generic worker figure (4G) says nothing of what that image runs; measure them (--usage, `docker stats` "
            "output) or set their figures under [deploy-limits.services] in the configuration (no fix applied)") in got
    assert any(m.startswith("[deploy-limits] service 'tasks' has no resource limits: add deploy.resources (memory 4G)")
               and "a generic figure, so an unsafe fix" in m for m in got)
    assert any(m.startswith("[deploy-limits] service 'sized-worker' has no resource limits: add deploy.resources "
                            "(memory 9G)") and "--max-old-space-size" in m for m in got)
    assert len(got) == 3


def test_what_a_service_sets_that_vouches_for_no_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`shm_size` raises a limit but says nothing of the rest of the service: an image the tool
    has no figure for stays a finding. A mongod before 3.6 sizes its cache from the host, not
    the container: no figure; a newer one with the cache set gets twice it plus 1G."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n  archiver:\n    image: example/archiver:0.8\n    shm_size: 1gb\n"
        "  old:\n    image: mongo:3.2\n  new:\n    image: mongo:7.0\n    command: --wiredTigerCacheSizeGB 1\n"
        "  plain:\n    image: mongo:7.0\n")
    assert main(["--check", "--unsafe-fixes", *SELECT, str(tmp_path)]) == 1
    got = {m.split("'")[1]: m for m in findings(capsys)}
    assert "no figure can be trusted" in got["archiver"] and "(no fix applied)" in got["archiver"]
    assert "mongo:3.2 sizes itself from the host's memory, not the container's limit" in got["old"]
    assert got["new"].startswith("[deploy-limits] service 'new' has no resource limits: add deploy.resources (memory 3G)")
    assert "--wiredTigerCacheSizeGB 1 x 2 + 1G" in got["new"]
    assert got["plain"].startswith("[deploy-limits] service 'plain' has no resource limits: add deploy.resources "
                                   "(memory 1G); from image mongo (documented needs)")
