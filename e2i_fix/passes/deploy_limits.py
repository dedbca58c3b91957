"""deploy-limits: memory limits for every service (CPU limits where a figure is known), each with its source.

## What it does
Adds `deploy.resources` to each service that has no memory limit, or no CPU limit where the
configuration or observed usage gives a CPU figure:

    deploy:
      resources:
        limits:
          memory: "512M"

CPU limits come only from the configuration (`services`, `images`, `roles`, `default`: the
first of its entries with a `cpus`) and from observed usage: the built-in figures are memory
only. A guessed CPU limit throttles a service that needs more, and one above the host's CPU
count makes Docker refuse the container; the memory limit is what keeps one container from
taking the host.

Reservations (`reservations`, half the limits) only where the stack already reserves (one
service of it is enough: its other services get them the same way) or the option
`reservations = true` asks for them: a reservation is a promise to the scheduler, and one above
a limit that another file sets makes Docker refuse the container.
A service that another file of the stack limits (an override, a file of the `COMPOSE_FILE`
chain of `.env`: `deploy.resources.limits`, `mem_limit`, `cpus`) is left alone: the project
ships its own limits where it chose to.

Only what is missing is added: an existing `deploy:` keeps its `replicas`, `restart_policy`...
and gets `resources` next to them; existing `resources` with only reservations (or only GPU
`devices`) get `limits`; limits with only `memory` get `cpus`. Nothing that is there is ever
changed or lowered. A service that already has both a CPU and a memory limit (in
`deploy.resources.limits` or the legacy `cpus` / `mem_limit`) is left alone, reservations included.
A one-shot job that is never restarted (`restart` absent or `"no"`, named or commanded like a
migration, a seed or a setup job, or a data-only container: `project.runs_once`) gets none: it runs and exits, and a limit
is only a way for it to fail. It inherits what the service it extends or merges gets.

Every figure says where it came from, in the finding and as `provenance` in `--format json`.
First match wins, figure by figure (an entry may give only `cpus` or only `memory`):
1. the configuration: `services.<name>`;
2. observed usage (`--usage FILE`, below): the memory limit is the service's peak x `headroom`
   (1.5), never below its image's documented need (3); the CPU limit the peak CPU share x
   `headroom`, in quarters of a CPU; reservations the typical (median) sample;
3. the image, as the one reading of the service (`e2i_fix.facts`) gives it: `image:` with its
   variables read through `.env` and their defaults (`postgres:${PG_VERSION}`,
   `${REGISTRY:-docker.io}/library/postgres:16` are postgres), else the image the service's
   Dockerfile stages start from; `images` of the configuration first (by repository, path or
   family), then the image table (`e2i_fix/data/images.toml`, below);
4. the role, from the command (`celery ... worker`, `rq worker`, `sidekiq`: worker; `gunicorn`,
   `uvicorn`, `node server.js`: api) or else the service name: `roles`, then api 2 / 4G and
   worker 2 / 4G, generic profiles (`e2i_fix/data/deploy-limits.json`);
5. `default`, then the generic default 1 / 1G, which is never applied on its own (below).
Reservations, where they are written (above), are half the limits unless observed usage gives
them; never above the limit. Verification checks every variant: a fix after which a service
reserves more memory or CPUs than its limit (`reservations` or `mem_reservation` above
`limits` or `mem_limit`, in any file combination) is dropped, with a finding naming it.

### Never below what the service configures for itself
The memory limit is raised, to the next clean size (256M, 384M, 512M, 768M, 1G, 1536M, then
whole gigabytes), above what the service sizes itself to in every variant of the stack (the
base file, the base with each override), read from its command, its environment (the image's
ENV, the `env_file:` entries, `environment` over them) and the configuration files it mounts
or copies:
- JVM heaps: `-Xmx` / `-XX:MaxHeapSize` (the last one given) in the command or in `JAVA_OPTS`,
  `ES_JAVA_OPTS`, `OPENSEARCH_JAVA_OPTS`, `*_HEAP_OPTS` (`KAFKA_HEAP_OPTS`...), `*_MEM`
  (`PULSAR_MEM`...), `_JAVA_OPTIONS`, `JAVA_TOOL_OPTIONS`, `JVMFLAGS`, `*_JAVAOPTS` (SonarQube),
  `INSTALL4J_ADD_VM_PARAMS` (Nexus)..., and bare sizes in `*_HEAP`, `*_HEAP_SIZE`, `*_JAVA_MEM`
  (`SOLR_HEAP=2g`): x 2 for Elasticsearch and OpenSearch (their documented rule: heap at most
  half the memory, the rest is Lucene's file cache) and x 1.5 for any other JVM (metaspace,
  threads), plus `-XX:MaxDirectMemorySize`, which is outside the heap;
- Flink's whole-process sizes, `jobmanager.memory.process.size` and
  `taskmanager.memory.process.size`, in `FLINK_PROPERTIES` or the command;
- PostgreSQL: `shared_buffers` + `max_connections` x `work_mem` + `maintenance_work_mem`, from
  `-c` flags, a mounted or copied postgresql.conf, or the file `-c config_file=` names (a
  bind mount of any name): every backend may hold at least a `work_mem` for a sort or a hash
  (postgresql.org/docs/current/runtime-config-resource.html); a setting left alone counts at
  its default (128MB, 100, 4MB, 64MB). Only where the service sets one of them itself;
- RabbitMQ: an absolute `vm_memory_high_watermark` (rabbitmq.conf, or
  `RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS`) x 2: the watermark only throttles publishers, and
  Erlang's garbage collector can in the worst case use double it (rabbitmq.com/docs/memory);
- workers that each may grow to a size the service sets: Celery's `--max-memory-per-child`
  (KiB) and uWSGI's `--reload-on-rss` (MB, or `UWSGI_RELOAD_ON_RSS`), times the workers
  (`--concurrency`, `-c`, `--processes`, `-p`, `--workers`, `-w`, `WEB_CONCURRENCY`...) and the
  main process. A worker count alone says nothing: no per-worker figure can be sourced for
  a generic gunicorn or uvicorn worker;
- Redis `--maxmemory` (command or entrypoint, string or list form, or `*_EXTRA_FLAGS` such as
  valkey's `VALKEY_EXTRA_FLAGS`, which the entrypoint appends) x 1.5: fragmentation,
  client buffers and the copy-on-write fork of a save need room besides the data;
- Node `--max-old-space-size` (MB), in the command or `NODE_OPTIONS`, x 1.5;
- memcached `-m` / `--memory-limit` (MB) x 1.5;
- MySQL and MariaDB `--innodb-buffer-pool-size` x 1.5 (the pool is most of the server);
- MongoDB's `--wiredTigerCacheSizeGB` x 2 + 1G: its default cache is half of (the memory less
  1 GB) (mongodb.com/docs/manual/core/wiredtiger/), the rest is connections and aggregations;
- `shm_size` x 2: /dev/shm is a tmpfs whose pages count against the memory limit, and the
  processes need room besides it (a Postgres given `shm_size: 1g` gets at least 2G). A floor
  only: it says nothing of the rest of the service, and vouches for no generic figure.
A value set through `${VAR}` is read with the value the stack's `.env` or the default
written with it gives (`${POOL:-2048M}`, `-Xmx${HEAP}` with `HEAP=4g` in `.env`): the limit
covers it, as an unsafe fix (the shell may give it another value at `up`), and the message
says so. One with neither, or a `config_file` the stack does not hold, cannot be read: no fix,
a finding (any figure may be under it). A figure above what the service asks for is kept, and the message says what
it covers.

### The stack's way
Where two services or more of the stack already have limits or reservations, new ones are
written as those are (`e2i_fix/conventions.py`, the file's services first, else the stack's):
- a stack whose limited services write `mem_limit` / `cpus` / `mem_reservation` gets those
  keys, not a `deploy` block;
- a stack that limits memory only gets no CPU limit (unless the configuration gives CPU
  figures); one that reserves memory (in one service or more) gets memory reservations, one
  that reserves CPUs CPU reservations, one that reserves nothing none (unless `reservations =
  true`): nothing a reviewer would delete;
- figures take the stack's quotes and units (`300M` plain, `"1G"`, `512m`, `1gb`; `0.5` or
  `"0.5"`);
- a stack that writes its resources out in each service gets no shared `x-resources-*`
  block.
A stack with fewer such services gets the full set described here (limits; reservations as above).

### Where no figure can be trusted: a finding, not a guess
No fix at all, not even an unsafe one, where nothing can be trusted to cover what the service
needs; the finding says why and asks for a measurement (`--usage`) or a figure in the
configuration:
- an image the tool has no figures for, with no role, no observed usage and no size it sets
  itself (the generic default would be a guess);
- a Redis (valkey, keydb, FalkorDB) with no `--maxmemory`: its data set is its memory;
- a release that sizes itself from the host's memory, not the container's limit (mongod before
  3.6: the table's `limit_aware_from`), whatever figure the table documents;
- RabbitMQ without an absolute `vm_memory_high_watermark` (below);
- a size the service sets through a variable that has no value here;
- an image built elsewhere that the image table knows nothing of, where only a role (api,
  worker) would give a figure and nothing the service sets itself (a heap, a worker size)
  checks it: the role's figures are a guess for the stack's own code, and a pulled image runs
  what its own Dockerfile sets (a Node heap, a JVM, a pool of workers);
- an all-in-one container, whose memory is every server it supervises: its command, its
  entrypoint or the scripts they run start supervisord, s6, runit, my_init or systemd;
- a model server, whose memory is the models it loads: BentoML, Ollama, vLLM, Immich's
  machine learning (the image table), or a command that serves models (`bentoml serve`,
  `ollama serve`, `vllm serve`, `torchserve`, `tritonserver`, `tensorflow_model_server`,
  `text-generation-launcher`, `mlflow models serve`);
- an analytics database whose memory is what its own configuration lets queries, merges and
  caches take: ClickHouse (it keeps under 0.9 of the memory it detects, and its usage tips
  warn of memory errors below 16 GB: a generic figure would cut queries its settings allow);
- a derivative of an image whose figure the vendor documents: the figure is for the image's
  own configuration, and an image built on it (`ghcr.io/<org>/postgres`, `timescale/timescaledb`,
  `pgautoupgrade/pgautoupgrade`, `zulip/zulip-postgresql`, `bitnami/...`) may bake in a bigger
  one. Where the service's own settings are read (a mounted postgresql.conf...) the limit covers
  them, as an unsafe fix.
A service no figure can be trusted with never inherits another's through a shared mapping.

### Brokers, swarm
RabbitMQ sets its memory watermark from the memory it detects, and in a container it may not
see the limit (rabbitmq.com/docs/memory: an absolute threshold is highly recommended in
containers): without an absolute `vm_memory_high_watermark` no limit is added from a
built-in figure, and a finding says to set one in rabbitmq.conf with a limit of twice it.
A stack that `docker stack deploy` also runs (`e2i_fix.facts.swarm`: a deploy key only swarm
reads, or a script beside the stack that deploys it) gets limits only: swarm places a task only
on a node with its reservations free, so generic reservations can leave most of the stack
pending.

### The image table
Image families whose vendor documents what the default configuration needs (limits;
reservations are half), each with its source in `e2i_fix/data/images.toml`:
postgres (the official image, postgis/postgis, pgvector/pgvector) 1 / 1G: shared_buffers
128MB, 100 connections of 4MB work_mem, 64MB maintenance_work_mem by default
(postgresql.org/docs/current/runtime-config-resource.html); mysql, mariadb 1 / 1G: a 128MB
buffer pool (dev.mysql.com/doc/refman/8.0/en/innodb-parameters.html); mongo 1 / 1G: the
WiredTiger cache follows the container's limit (mongodb.com/docs/manual/core/wiredtiger/);
elasticsearch 2 / 2G and opensearch 2 / 2G: heap at most half the memory, OpenSearch's
jvm.options default 1g (elastic.co/guide/en/elasticsearch/reference/current/advanced-configuration.html,
opensearch.org/docs/latest/install-and-configure/install-opensearch/docker/); solr 1 / 1G:
SOLR_HEAP 512m (solr.apache.org/guide/solr/latest/deployment-guide/jvm-settings.html);
logstash 1 / 2G: -Xmx1g in its jvm.options (elastic.co/guide/en/logstash/current/jvm-settings.html);
flink 1 / 2G: jobmanager.memory.process.size 1600m, taskmanager.memory.process.size 1728m
(github.com/apache/flink, flink-dist config.yaml); kafka (cp-kafka, cp-server, bitnami/kafka,
apache/kafka) 1 / 2G: kafka-server-start.sh's default -Xmx1G (kafka.apache.org/documentation/#java);
kafka connect (cp-kafka-connect) 1 / 3G: connect-distributed.sh's default -Xmx2G
(github.com/apache/kafka, bin/connect-distributed.sh); pulsar 1 / 7G: PULSAR_MEM's default
-Xmx2g and 4g of direct memory (github.com/apache/pulsar, conf/pulsar_env.sh); zookeeper 1 / 1536M:
zkEnv.sh's 1000 MB heap (zookeeper.apache.org/doc/current/zookeeperAdmin.html); redpanda 1 / 2G:
2 GB per core (docs.redpanda.com); rabbitmq 1 / 512M: its watermark is a share of the memory
it detects (rabbitmq.com/docs/memory); keycloak 2 / 2G: 1250 MB base, 70% of the limit as
heap plus 300 MB (keycloak.org/high-availability/concepts-memory-and-cpu-sizing); sonarqube
2 / 4G: three JVMs at -Xmx512m and its search engine's cache
(docs.sonarsource.com/sonarqube-server/latest/setup-and-upgrade/installation-requirements/server-host/);
nexus3 2 / 8G: -Xmx2703m and 2703m of direct memory in the image (github.com/sonatype/docker-nexus3);
memcached 0.5 / 256M: 64 MB of items by default.
The CPU figures of the table are not written (above). Generic profiles (no vendor figure: the
software grows with its load, or its vendor gives minimums, and a minimum is not a ceiling),
unsafe fixes unless what the service sets itself checks them: redis, valkey, keydb 1 / 512M
(only with a `--maxmemory` the limit covers: without one, Redis's data set is its memory and
no figure covers it, a finding); falkordb 1 / 1G and mlflow 1 / 2G (the figures of
the stack review this tool started from); kibana, opensearch-dashboards 1 / 1G; prometheus
1 / 1G; minio 1 / 1G; nginx, httpd, caddy, haproxy, traefik 0.5 / 256M; grafana 1 / 1G (its
page asks for at least 512 MB and 1 core); jenkins 2 / 4G (4 GB+ for a small team); gitlab-ce
2 / 16G (16 GB is a single node's baseline, 8 GB the least with tuning).

### Observed usage
`--usage FILE` (or the option `usage`) reads what `docker stats --no-stream --format json`
prints (one JSON object a line; `docker compose stats --no-stream --format json` too; append as
many runs as you like: every line is a sample). A container is a service's when it is named
like Compose names it, `<project>-<service>-<n>` or `<project>_<service>_<n>` (the project:
`COMPOSE_PROJECT_NAME` in `.env`, `name:`, else the folder's name), or by the service's
`container_name`. If none is named after the project, the stack was run under another name
(`-p`): the one name under which most of its services (two at least) have containers is taken,
never one that a few services of another stack happen to share. Containers of no service are listed in one line of information; a
service with no sample falls back to the table. A line that is not a sample is an error with
its line number (exit 2). A CPU limit from usage only throttles: measure under real load.

### The host budget
Once the fixes are worked out, the pass totals the stack's limits and reservations (replicas and
`scale` counted; of its own figures, those the run writes: none for a development or test file)
for each variant (the base file, the base with each override) and each set of
services Compose would start (the default, `--profile <name>` for each profile, and all of
them): one line of information, printed by `--check` (never counted for the exit code). With
`host-memory` / `host-cpus` (options, or `--host-memory` / `--host-cpus`), reservations above
the host, or limits above `overcommit` (2) times the host, are a finding; CPU limits are capped
at `host-cpus` (Docker refuses a container a CPU limit above the host's count).

### Service templates and shared profiles
Services that merge one service template (`x-app: &app` with an `image`, `<<: *app`) and all
need the same new resources get them once, in the template, where the placement step finds
that means what the per-service edits would (`placement = "per-service"` turns it off). The
template's block is written out: it stands above where a new anchor goes.

Then, where `min-shared` (3) or more services of one file get the same new resources (with the same
safety), one anchored block holds them and each service refers to it. The block is named after
the sizing profile (`x-resources-postgres`, `x-resources-worker`) only when every service sharing
it has that profile; else after the start of the name they all share (`x-resources-celery`), else
`x-resources-shared`:

    x-resources-default: &resources-default
      limits:
        cpus: "1"
        memory: "1G"

and `deploy:` / `  resources: *resources-default` in each service (or `resources:` added to
its own `deploy:`). Compose reads exactly what the written-out form says. `shared-profiles =
false` writes every block out.

### Legacy keys
Compose refuses a project whose legacy keys differ from `deploy.resources` (checked with the
Compose v2.40 CLI, `docker compose config`; the check runs with interpolation on): as soon as a
`limits` block exists, `mem_limit` must equal `limits.memory`, `cpus` must equal `limits.cpus`
and `pids_limit` must equal `limits.pids`, an absent deploy key counting as different; as soon
as a `reservations` block exists, `mem_reservation` must equal `reservations.memory`. Values are
compared after parsing (`1g`, `1G`, `1024m` are equal, as are `cpus: 1.5` and `"1.5"`). So the
legacy values are carried over, written as they are (`${MEM_LIMIT}` included), and the message
names them. A legacy key set to different values in different compose files, or a
`memswap_limit` without `mem_limit`, leaves the service alone with a report.

### Where the text goes
In the service's first editable definition (the base file's; a service defined only in an
override gets it there), as strings: `cpus: "2"` and `memory: "4G"`. A service whose `deploy`
(or `resources`...) comes from a merged mapping (`<<: *x`) is reported, not edited: an own key
would replace the merged one. A service whose limits come from a merged mapping, or from its
`extends` base, is left alone; one that extends a service in a file outside the stack is
reported. A mapping that other services merge (`api: &app` ... `<<: *app`), or a `deploy`
anchor that others use, passes the new keys on to them: those that need the same figures
inherit them; those that need others get their own `deploy` in the same fix; if one cannot,
the fix is only reported. A service that `extends` one getting the same figures inherits them.

## Why
Without limits one container can take all the memory of the host, and the kernel's OOM killer
then picks a victim among all of them. But a limit below what a service needs is an OOM kill too, long after the diff
was merged: so each figure says where it came from, and only figures that rest on something
known are applied by default.

## Example
Before:

    services:
      redis:
        image: redis:7-alpine
        command: redis-server --maxmemory 512mb

After:

    services:
      redis:
        image: redis:7-alpine
        command: redis-server --maxmemory 512mb
        deploy:
          resources:
            limits:
              memory: "768M"

## Fix safety
Safe when every figure rests on something known: the configuration, observed usage, legacy
keys carried over, or an image whose vendor documents what its own configuration needs (the
image itself, not a derivative); a generic memory figure is safe only where what the service
configures for itself (`--maxmemory`, `-Xmx`, `shared_buffers`...) checks it. Unsafe
(`--unsafe-fixes`) when a figure is generic (a generic profile of that kind of image, a role):
nothing says the service fits in it; when a size the service asks for is read through a
`${VAR}` (the value here is `.env`'s or the written default); for a derivative whose own
settings are read. No fix at all where no figure can be trusted (above).

## Options
Entries are tables with `cpus` (a number or a string: `"0.5"`) and/or `memory` (`"512M"`, `"4G"`).
- `services`: per service name, e.g. `services = {api = {cpus = "4", memory = "8G"}}`.
- `images`: per image family (`redis`) or repository (`bitnami/redis`), over the built-in table.
- `roles`: `api` and `worker`, over the built-in ones.
- `default`: for everything else.
- `usage`: a `docker stats --format json` file, relative to the stack's folder (or `--usage FILE`);
  `headroom`: 1.5.
- `host-memory` (`"16G"`), `host-cpus` (also `--host-memory`, `--host-cpus`); `overcommit`: 2.
- `shared-profiles`: true; `min-shared`: 3.
- `reservations`: false; true writes reservations (half the limits, or the typical observed
  sample) for every service, not only in a stack that already reserves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from e2i_fix import conventions, fileroles, model, yamledit
from e2i_fix import facts
from e2i_fix.records import NamedTuple
from e2i_fix.sizing import (
    NO_FIGURES,
    Figure, Observed, Tables, ceil_step, clean_ceil, format_cpus, format_size, from_usage, half_size, human,
    memory as memory_limit, observed as observed_usage, parse_cpus, parse_size, pulled_reason, read_usage,
    tables as sizing_tables,
)
from e2i_fix.errors import InputError
from e2i_fix.fix import Edit, Fix, ModelPath, Safety
from e2i_fix.project import Project, Service, ServiceDef, runs_once, targets
from e2i_fix.render import Alias, Anchored, Raw
from e2i_fix.yamldoc import ComposeDoc, MappingNode, Node, ScalarNode, effective_entry, is_merge_key, merge_sources, position, to_value

ID = "deploy-limits"
SUMMARY = "deploy.resources limits (reservations where the stack reserves), each figure with its source, never below what a service needs"
SAFETY = Safety.SAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
# The service keys its decisions depend on: another pass changing one of them runs it again.
READS = frozenset({"image", "build", "command", "entrypoint", "environment", "deploy", "mem_limit",
                   "mem_reservation", "memswap_limit", "cpus", "pids_limit", "extends", "profiles", "scale",
                   "container_name", "env_file"})

DEFAULTS: dict[str, Any] = {
    "services": {},
    "images": {},  # merged over the built-in table (data/deploy-limits.json)
    "roles": {},
    "default": {},
    "usage": None,  # a `docker stats --no-stream --format json` file
    "headroom": 1.5,  # observed peak x headroom = the memory limit
    "host-memory": None,
    "host-cpus": None,
    "overcommit": 2.0,  # limits may add up to this many times the host
    "shared-profiles": True,
    "min-shared": 3,
    "reservations": False,  # true: reservations for every service, not only where the stack writes them
}
_OPTIONS = tuple(DEFAULTS)

_LEGACY = {"mem_limit": ("limits", "memory"), "cpus": ("limits", "cpus"), "pids_limit": ("limits", "pids"),
           "mem_reservation": ("reservations", "memory")}


# --- one service ----------------------------------------------------------------------------


class _Target(NamedTuple):
    """A mapping an edit adds `key` to (or fills `key:` in), `level` keys below the service."""

    node: Node
    key: str
    level: int  # 0: the service mapping, 1: deploy, 2: resources, 3: limits/reservations
    block: str = ""  # limits or reservations, at level 3


class _Plan:
    def __init__(self, svc: Service, home: ServiceDef, add: dict[str, dict[str, Any]], final: tuple[Any, ...],
                 message: str, safety: Safety, whole: bool, provenance: tuple[tuple[str, str], ...] = (),
                 profile: str = "default") -> None:
        self.svc = svc
        self.provenance = provenance  # (figure, where it came from) for each added figure
        self.profile = profile  # a name for the figures' source, for a shared anchored block
        self.home = home
        self.add = add  # {"limits": {...}, "reservations": {...}}, only what is missing
        self.final = final  # the resources the service ends up with, to compare two services
        self.message = message
        self.safety = safety
        self.whole = whole  # the service had no resources of its own: it can inherit a whole set
        self.reason: str | None = None  # why the text cannot take the edits: reported instead
        self.edits: list[Edit] = []
        self.targets: list[_Target] = []
        self.keys: dict[str, Any] | None = None  # legacy keys to add instead, where the stack writes those
        self.written: dict[str, dict[str, Any]] = add  # `add` as the stack writes its figures

    @property
    def top(self) -> bool:
        """The edit adds `deploy` to the service mapping itself."""
        return any(t.level == 0 for t in self.targets)


class _Untrusted(NamedTuple):
    """A service no figure can be trusted with: its finding."""

    fix: Fix


# What `wants` holds for such a service: no figures, so none it could share with another.
_UNTRUSTED: tuple[Any, ...] = ("untrusted",)


def _finding(svc: Service, message: str) -> Fix:
    d = svc.home or svc.defs[0]
    line, col = position(d.key)
    return Fix(ID, f"service {svc.name!r} {message}", d.doc.path, line, col, safety=Safety.DISPLAY_ONLY)


def _raw(d: ServiceDef, name: str) -> dict[str, Any]:
    svcs = d.doc.value.get("services")
    v = svcs.get(name) if isinstance(svcs, dict) else None
    return v if isinstance(v, dict) else {}


def _extends_of(d: ServiceDef, name: str) -> tuple[str | None, str | None]:
    ext = _raw(d, name).get("extends")
    if isinstance(ext, str):
        return ext, None
    if isinstance(ext, dict) and isinstance(ext.get("service"), str):
        return ext["service"], str(ext["file"]) if ext.get("file") else None
    return None, None


def _doc_at(project: Project, path: Path) -> ComposeDoc | None:
    want = os.path.normpath(os.path.abspath(path))  # no file-system calls: this runs per service
    return next((d for d in project.docs if os.path.normpath(os.path.abspath(d.path)) == want), None)


def _get(cfg: Any, *path: str) -> Any:
    for k in path:
        if not isinstance(cfg, dict):
            return None
        cfg = cfg.get(k)
    return cfg


def _has_limit(cfg: Any) -> bool:
    if not isinstance(cfg, dict):
        return False
    if cfg.get("mem_limit") is not None or cfg.get("cpus") is not None:
        return True
    lim = _get(cfg, "deploy", "resources", "limits")
    return isinstance(lim, dict) and bool(lim)


def _limited_elsewhere(svc: Service, home: ServiceDef) -> bool:
    """Whether a definition of `svc` other than `home` (an override, a file of a chain, one
    the stack runs alone) sets a limit: the project ships its own, in the files it chose."""
    return any(d is not home and d.doc is not home.doc and _has_limit(_raw(d, svc.name)) for d in svc.defs)


def _extends(project: Project, svc: Service) -> tuple[str, Any]:
    """("ok", the config to plan with) / ("base-limited", None) / ("outside", the file)."""
    cfg = svc.config
    for d in svc.defs:
        base_name, file = _extends_of(d, svc.name)
        if base_name is None:
            continue
        doc = d.doc if not file else _doc_at(project, Path(d.doc.path).parent / file)
        if doc is None:
            return "outside", file
        base = (model.normalise_stack([doc.value]).get("services") or {}).get(base_name)
        if _has_limit(base):
            return "base-limited", None
    return "ok", cfg


def _legacy(svc: Service, cfg: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The legacy keys with their one value, and those set to different values in different files."""
    values: dict[str, Any] = {}
    split: list[str] = []
    for key in (*_LEGACY, "memswap_limit"):
        seen = [cfg[key]] if cfg.get(key) is not None else []
        seen += [r[key] for d in svc.defs if (r := _raw(d, svc.name)).get(key) is not None]
        if len({repr(v) for v in seen}) > 1:
            split.append(key)
        elif seen:
            values[key] = seen[0]
    return values, split


def _carry(value: Any, key: str) -> Any:
    """A legacy value as its deploy key takes it; Compose compares them after parsing."""
    if key == "pids_limit" or isinstance(value, str):
        return value
    if key == "cpus":
        return format_cpus(Decimal(str(value)))
    return format_size(int(value))


def _cpu_phrase(c: Any) -> str:
    d = parse_cpus(c)
    return f"{c} CPU" if d is not None and d <= 1 else f"{c} CPUs"


def _plan(project: Project, svc: Service, tables: Tables, shadow: bool = False,
          observed: Observed | None = None) -> _Plan | _Untrusted | Fix | None:
    """What `svc` lacks and where it goes. A `shadow` plan is for a service that has its limits
    in legacy keys but would inherit another's new `deploy`: it gets its own, with those values."""
    state, cfg = _extends(project, svc)
    if state == "base-limited":
        return None  # the base is where the limits are: it gets them, this service inherits them
    if state == "outside":
        return _finding(svc, f"extends a service in {cfg}, which is not part of this stack: resource limits not checked")
    res = _get(cfg, "deploy", "resources")
    res = res if isinstance(res, dict) else {}
    lim = res["limits"] if isinstance(res.get("limits"), dict) else {}
    rsv = res["reservations"] if isinstance(res.get("reservations"), dict) else {}
    legacy, split = _legacy(svc, cfg)
    has_cpu = "cpus" in lim or "cpus" in legacy
    has_mem = "memory" in lim or "mem_limit" in legacy
    # The stack's way (`conventions`): a stack that limits memory only, or reserves nothing,
    # gets no CPU limit or reservation it would delete; one that writes `mem_limit` gets that.
    place = svc.home or next((d for d in svc.defs if not d.doc.readonly), svc.defs[0])
    ways = conventions.read(project).limits(place.doc)
    # The configuration still overrides: CPU figures in it are CPU limits wanted.
    want_cpu = ways is None or ways.cpus or _configures_cpus(tables)
    # Reservations only where the stack writes them (or the configuration asks): a reservation
    # is a scheduling promise, and one above a limit that some other file sets makes Docker
    # refuse the container.
    mem_rsv, cpu_rsv = conventions.read(project).reserves(place.doc)
    want_rsv_cpu = tables.reservations or cpu_rsv
    want_rsv_mem = tables.reservations or mem_rsv
    if (has_cpu or not want_cpu) and has_mem and not shadow:
        return None
    if shadow and not (has_cpu and has_mem and "deploy" not in cfg):
        return None
    if split:
        return _finding(svc, f"has no resource limits, but its {', '.join(split)} differs between files: "
                             "set deploy.resources by hand")
    if not has_mem and legacy.get("memswap_limit") not in (None, -1, "-1"):
        return _finding(svc, "has memswap_limit but no mem_limit: set mem_limit (and deploy.resources) by hand")
    if not shadow and _limited_elsewhere(svc, place):
        return None  # another file of the stack (an override, a file of a chain) ships its limits
    home = svc.home
    if home is None:
        if all(d.doc.readonly for d in svc.defs):
            return None  # only in a file read for context: not ours to report
        return _finding(svc, "has no resource limits (its mapping cannot be edited here)")
    later = svc.shadows(home, "deploy", "resources", "limits")
    if later is not None:
        return _finding(svc, f"has no resource limits, and {later.doc.path.name} resets or overrides its deploy "
                             "section (`!reset`/`!override`): set deploy.resources there")

    if not has_cpu and not has_mem:
        what = "no resource limits"
    elif not has_cpu:
        what = "mem_limit but no CPU limit" if "mem_limit" in legacy and "memory" not in lim else "no CPU limit"
    else:
        what = "cpus but no memory limit" if "cpus" in legacy and "cpus" not in lim else "no memory limit"
    seen = facts.reached(project, svc)
    profile = tables.profile(svc, facts.of(project, svc) or (seen[0] if seen else None))
    cpu_fig, mem_fig = profile.cpu, profile.memory
    if observed is not None and svc.name not in tables.services:
        cpu_fig, mem_fig = from_usage(observed, tables, profile.floor)
    if cpu_fig is None and "cpus" not in lim and "cpus" not in legacy:
        # No CPU figure is known for it (only the configuration and observed usage give one):
        # the memory limit is what protects the host.
        want_cpu = want_rsv_cpu = False
        if has_mem and not shadow:
            return None
    swarm = facts.swarm(project)
    notes: list[str] = []
    safety = SAFETY
    add_l: dict[str, Any] = {}
    add_r: dict[str, Any] = {}
    carried: list[str] = []
    prov: list[tuple[str, str]] = []

    # Limits: what is there stays, legacy values are carried over, the rest comes from the table.
    final_cpus: Decimal | None
    if "cpus" in lim:
        final_cpus = parse_cpus(lim["cpus"])
    elif not want_cpu and "cpus" not in legacy:
        final_cpus = None  # the stack limits memory only
    elif "cpus" in legacy:
        add_l["cpus"] = _carry(legacy["cpus"], "cpus")
        final_cpus = parse_cpus(legacy["cpus"])
        carried.append("cpus")
        prov.append((f"limits.cpus {add_l['cpus']}", "the service's cpus, carried over"))
    else:
        assert cpu_fig is not None  # wanted only where a figure is known
        final_cpus = cpu_fig.value
        source = cpu_fig.source
        if tables.host_cpus is not None and final_cpus > tables.host_cpus:
            # Docker refuses a CPU limit above the host's count: the container would not start.
            final_cpus = tables.host_cpus
            source += f", capped at host-cpus {format_cpus(tables.host_cpus)}"
            notes.append(f"cpus capped at host-cpus {format_cpus(tables.host_cpus)}")
        if "cpus" in rsv:
            floor_c = parse_cpus(rsv["cpus"])
            if floor_c is None:
                notes.append(f"reservations.cpus {rsv['cpus']} cannot be read")
                safety = Safety.UNSAFE
            elif floor_c > final_cpus:
                final_cpus = floor_c
                source = f"the service's CPU reservation {rsv['cpus']}"
        add_l["cpus"] = format_cpus(final_cpus)
        prov.append((f"limits.cpus {add_l['cpus']}", source))
    final_mem: int | None
    if "memory" in lim:
        final_mem = parse_size(lim["memory"])
    elif "mem_limit" in legacy:
        add_l["memory"] = _carry(legacy["mem_limit"], "mem_limit")
        final_mem = parse_size(legacy["mem_limit"])
        carried.append("mem_limit")
        prov.append((f"limits.memory {add_l['memory']}", "the service's mem_limit, carried over"))
    else:
        reservation = rsv.get("memory") if "memory" in rsv else legacy.get("mem_reservation")
        mem = memory_limit(profile, mem_fig, [f.sizes for f in seen], reservation)
        if mem.value is None:
            untrusted = _finding(svc, f"has {what}, and no figure can be trusted with it: {mem.unknown}; "
                                      f"measure it (--usage, `docker stats` output) or set services.{svc.name} "
                                      "in the configuration")
            if what == "no resource limits" and mem.unknown == NO_FIGURES:
                untrusted = untrusted._replace(group=(
                    NO_FIGURES, "{count} services ({services}) have no resource limits, and no figure can be trusted "
                    "with them: the tool has no figures for their images, and they have no role, no observed usage "
                    "and no size they set themselves; measure them (--usage, `docker stats` output) or set their "
                    "figures under [deploy-limits.services] in the configuration", svc.name))
            elif what == "no resource limits" and mem.pulled and profile.pulled and mem.unknown:
                why = pulled_reason(profile.pulled, mem_fig, their=True).replace("{", "{{").replace("}", "}}")
                untrusted = untrusted._replace(group=(
                    mem.unknown, "{count} services ({services}) have no resource limits, and no figure can be trusted "
                    f"with them: {why}; measure them (--usage, `docker stats` output) or set their figures under "
                    "[deploy-limits.services] in the configuration", svc.name))
            return _Untrusted(untrusted)
        final_mem = mem.value
        notes += mem.notes
        if not mem.safe:
            safety = Safety.UNSAFE
        add_l["memory"] = format_size(final_mem)
        prov.append((f"limits.memory {add_l['memory']}", mem.source))
    if "pids_limit" in legacy and "pids" not in lim:
        add_l["pids"] = _carry(legacy["pids_limit"], "pids_limit")
        carried.append("pids_limit")
        prov.append((f"limits.pids {add_l['pids']}", "the service's pids_limit, carried over"))

    # Reservations: the typical observed sample, or half the limits, or the legacy reservation.
    typical = observed if observed is not None and svc.name not in tables.services else None
    if shadow:
        pass  # only what the legacy keys say
    elif not (want_rsv_cpu or want_rsv_mem or "mem_reservation" in legacy):
        pass  # the stack reserves nothing, and the configuration asks for no reservations
    elif swarm:
        # `docker stack deploy` places a task only on a node with its reservations free: a
        # generic reservation can leave most of the stack pending. Limits only.
        notes.append(f"no reservations: the stack is also deployed with `docker stack deploy` ({swarm}), where "
                     "they are scheduling constraints")
    elif not want_rsv_cpu:
        pass  # the stack reserves no CPUs
    elif "cpus" not in rsv:
        if final_cpus:
            if typical is not None:
                got = min(ceil_step(typical.typical_cpus, "0.05"), final_cpus)
                add_r["cpus"] = format_cpus(got)
                prov.append((f"reservations.cpus {add_r['cpus']}", f"the typical (median) sample of {os.path.basename(tables.usage_path or '')}"))
            else:
                add_r["cpus"] = format_cpus(final_cpus / 2)
                prov.append((f"reservations.cpus {add_r['cpus']}", "half the CPU limit"))
        elif final_cpus is None:
            notes.append("no CPU reservation: the CPU limit cannot be read")
    if "memory" not in rsv:
        half = half_size(final_mem) if final_mem else None
        if swarm and not shadow and "mem_reservation" not in legacy:
            pass
        elif "mem_reservation" in legacy:
            add_r["memory"] = _carry(legacy["mem_reservation"], "mem_reservation")
            carried.append("mem_reservation")
            prov.append((f"reservations.memory {add_r['memory']}", "the service's mem_reservation, carried over"))
        elif shadow or not want_rsv_mem:
            pass
        elif typical is not None and final_mem:
            add_r["memory"] = format_size(min(clean_ceil(typical.typical_memory), final_mem))
            prov.append((f"reservations.memory {add_r['memory']}",
                         f"the typical (median) sample {format_size(clean_ceil(typical.typical_memory))} "
                         f"of {os.path.basename(tables.usage_path or '')}"))
        elif half:
            add_r["memory"] = format_size(half)
            prov.append((f"reservations.memory {add_r['memory']}", "half the memory limit"))
        elif final_mem is None:
            notes.append("no memory reservation: the memory limit cannot be read")

    add = {k: v for k, v in (("limits", add_l), ("reservations", add_r)) if v}
    keys = None
    if ways is not None and ways.legacy and not res and not shadow:
        # The stack writes `mem_limit` / `cpus` / `mem_reservation`: new figures go there too.
        keys = {k: v for k, v in (("cpus", None if "cpus" in legacy else add_l.get("cpus")),
                                  ("mem_limit", None if "mem_limit" in legacy else add_l.get("memory")),
                                  ("mem_reservation", None if "mem_reservation" in legacy else add_r.get("memory")))
                if v is not None}
        carried = []
        keys = {k: _as_written(project, home.doc, {"k": {"cpus" if k == "cpus" else "memory": v}})["k"].popitem()[1]
                for k, v in keys.items()}
        body = "add " + ", ".join(f"{k} {_shown(v)}" for k, v in keys.items()) + " (as the stack writes its limits)"
    elif {"cpus", "memory"} <= set(add_l) and {"cpus", "memory"} <= set(add_r):
        body = (f"add deploy.resources ({_cpu_phrase(add_l['cpus'])} / {add_l['memory']}, "
                f"reservations {add_r['cpus']} / {add_r['memory']})")
        if "pids" in add_l:
            body += f" with limits.pids {add_l['pids']}"
    elif set(add_l) == {"memory"} and set(add_r) <= {"memory"} and not lim:
        # A memory limit only: no CPU figure is known for it.
        body = (f"add deploy.resources (memory {add_l['memory']}"
                f"{', reservation ' + add_r['memory'] if add_r else ''})")
    elif {"cpus", "memory"} == set(add_l):
        # Limits, and the reservations the stack's way asks for (memory only, say).
        rsv_phrase = ", ".join(f"{k} {v}" for k, v in add_r.items())
        body = (f"add deploy.resources ({_cpu_phrase(add_l['cpus'])} / {add_l['memory']}"
                f"{', reservations ' + rsv_phrase if rsv_phrase else ''})")
    else:
        body = "add " + ", ".join(f"deploy.resources.{b}.{k} {v}" for b, kv in add.items() for k, v in kv.items())
    if carried:
        them = "it" if len(carried) == 1 else "them"
        notes.insert(0, f"{', '.join(carried)} carried over (Compose refuses deploy.resources that differ from {them})")
    notes.insert(0, _from_phrase(prov))
    message = f"service {svc.name!r} has {what}: {body}" + "".join(f"; {n}" for n in notes if n)
    final = tuple(add.get(b, {}).get(k, have.get(k)) for b, have in (("limits", lim), ("reservations", rsv))
                  for k in ("cpus", "memory", "pids"))
    if keys is not None:  # each figure named by the key it goes to
        names = {"limits.cpus": "cpus", "limits.memory": "mem_limit", "reservations.memory": "mem_reservation"}
        prov = [(f"{names[f.split()[0]]} {_shown(keys[names[f.split()[0]]])}", src) for f, src in prov
                if names.get(f.split()[0]) in keys]
    plan = _Plan(svc, home, add, final, message, safety, whole=not res and not carried and keys is None,
                 provenance=tuple(prov), profile=_profile_name(mem_fig))
    plan.keys = keys
    plan.written = _as_written(project, home.doc, add)
    reason = _locate(plan)
    if reason:
        plan.reason = f"has {what}, but {reason}: set deploy.resources by hand"
    return plan


def _from_phrase(prov: list[tuple[str, str]]) -> str:
    """`from role api (generic profile)`, or per figure where the limits' sources differ."""
    short = {what.split(" ", 1)[0]: src.split(": ", 1)[0] for what, src in prov if what.startswith("limits.")
             and "carried over" not in src}
    if not short:
        return ""
    if len(set(short.values())) == 1 and ({"limits.cpus", "limits.memory"} <= set(short) or set(short) == {"limits.memory"}):
        return f"from {next(iter(short.values()))}"
    return ", ".join(f"{k.removeprefix('limits.')} from {v}" for k, v in short.items())


def _profile_name(mem: Figure) -> str:
    """A name for a shared block of these figures, after where the memory figure comes from:
    the role, the image family, `default`..."""
    label = mem.label
    m = re.match(r"(?:role|image|config \w+\.)\s*([\w.-]+)", label)
    if m:
        return re.sub(r"[^a-z0-9-]+", "-", m.group(1).lower()).strip("-") or "default"
    if label.startswith("observed"):
        return "observed"
    return "default"


def _is_empty(node: Node) -> bool:
    return isinstance(node, ScalarNode) and not node.style and node.value in ("", "~", "null", "Null", "NULL")


def _merged_in(node: MappingNode, key: str) -> bool:
    v = to_value(node)
    return isinstance(v, dict) and key in v


def _locate(plan: _Plan) -> str | None:
    """Fill in the plan's edits, adding only what is missing, or say why the text cannot take them."""
    home = plan.home
    doc = home.doc
    after = home.key.end_mark.index
    root = home.node
    assert isinstance(root, MappingNode)  # an editable definition is a block mapping
    cur: Node = root
    path: list[str] = []
    if plan.keys is not None:
        edits: list[Edit] = []
        for key, value in plan.keys.items():
            got = yamledit.ensure(doc, root, (key,), value, after)
            if not got:
                return "its mapping cannot be edited here"
            edits += got
            plan.targets.append(_Target(root, key, 0))
        plan.edits = edits
        return None
    for level, key, value in ((0, "deploy", {"resources": plan.written}), (1, "resources", plan.written)):
        assert isinstance(cur, MappingNode)
        kv = doc.get(cur, key)
        if kv is None or _is_empty(kv[1]):
            if kv is None and _merged_in(cur, key):
                return f"its {'.'.join((*path, key))} comes from a merged mapping (<<:) that an own key would replace"
            made = yamledit.ensure(doc, root, (*path, key), value, after)
            if not made:
                return "its mapping cannot be edited here"
            plan.edits, plan.targets = made, [_Target(cur, key, level)]
            return None
        k, v = kv
        if not isinstance(v, MappingNode) or v.flow_style or doc.is_alias(v, doc.key_end(k)):
            return f"its {'.'.join((*path, key))} is an alias, in flow style or not a mapping"
        path.append(key)
        cur = v
    assert isinstance(cur, MappingNode)
    edits = []
    for block, want in plan.written.items():
        kv = doc.get(cur, block)
        if kv is None or _is_empty(kv[1]):
            if kv is None and _merged_in(cur, block):
                return f"its deploy.resources.{block} comes from a merged mapping (<<:) that an own key would replace"
            got = yamledit.ensure(doc, root, (*path, block), want, after)
            if not got:
                return "its mapping cannot be edited here"
            edits += got
            plan.targets.append(_Target(cur, block, 2))
            continue
        k, v = kv
        if not isinstance(v, MappingNode) or v.flow_style or doc.is_alias(v, doc.key_end(k)):
            return f"its deploy.resources.{block} is an alias, in flow style or not a mapping"
        for key, value in want.items():
            if _merged_in(v, key):
                return f"its deploy.resources.{block}.{key} comes from a merged mapping (<<:)"
            got = yamledit.ensure(doc, root, (*path, block, key), value, after)
            if not got:
                return "its mapping cannot be edited here"
            edits += got
            plan.targets.append(_Target(v, key, 3, block))
    # Insertions at one point (the end of `limits` is the end of `resources`): the deeper one
    # first, or it would land inside the shallower block.
    plan.edits = sorted(edits, key=lambda e: (e.start, -_indent(e.text)))
    return None


def _as_written(project: Project, doc: ComposeDoc, add: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The figures to add, written as the stack writes its own (`conventions`): `300M` plain
    or `"1G"` quoted, `512m`, `0.5` or `"0.5"`. Carried legacy values stay as they are."""
    ways = conventions.read(project)
    out: dict[str, dict[str, Any]] = {}
    for block, figures in add.items():
        out[block] = {k: ways.size(doc, v) if k == "memory" and _is_figure(v)
                      else ways.cpus(doc, v) if k == "cpus" and _is_figure(v) else v
                      for k, v in figures.items()}
    return out


def _configures_cpus(tables: Tables) -> bool:
    entries = [*tables.services.values(), *tables.images.values(), *tables.roles.values(), tables.default]
    return any(e is not None and e.cpus is not None for e in entries)


def _shown(v: Any) -> str:
    """A figure as the file will say it, for a message: `1g`, `0.5`."""
    return v.text.strip("'\"") if isinstance(v, Raw) else str(v)


def _is_figure(v: Any) -> bool:
    return isinstance(v, str) and v[:1].isdigit()


def _indent(text: str) -> int:
    line = text.lstrip("\n")
    return len(line) - len(line.lstrip(" "))


# --- who else an edit reaches ---------------------------------------------------------------


def _own_key(node: Node, key: str) -> Node | None:
    if isinstance(node, MappingNode):
        for k, v in node.value:
            if isinstance(k, ScalarNode) and k.value == key and not is_merge_key(k):
                found: Node = v
                return found
    return None


def _lookup(node: Node | None, key: str) -> Node | None:
    """The value a merge-resolving loader gives `key`: own first, then the merged mappings in order."""
    got = effective_entry(node, key) if node is not None else None
    return got[2] if got else None


def _receives(node: Node, t: _Target) -> bool:
    """Whether a service defined by `node` sees the key an edit adds to (or fills in) `t.node`."""
    level: Node | None = node
    for key in ("deploy", "resources", t.block)[: t.level]:
        level = _lookup(level, key)
    if not isinstance(level, MappingNode):
        return False
    for n in (level, *merge_sources(level)):
        if n is t.node:
            return True
        if _own_key(n, t.key) is not None:
            return False
    return False


def _extending(project: Project) -> list[Service]:
    """The services with an `extends` in any of their definitions."""
    return [s for s in project.services.values() if any(_extends_of(d, s.name)[0] for d in s.defs)]


def _extenders(project: Project, names: set[str], doc: ComposeDoc, extending: list[Service]) -> set[str]:
    """Services that extend one of `names` as defined in `doc`, transitively."""
    out = set(names)
    changed = True
    while changed:
        changed = False
        for s in extending:
            if s.name in out:
                continue
            for d in s.defs:
                base, file = _extends_of(d, s.name)
                target = d.doc if not file else _doc_at(project, Path(d.doc.path).parent / file)
                if base in out and target is doc:
                    out.add(s.name)
                    changed = True
                    break
    return out - names


def _legacy_conflict(other: Service, p: _Plan) -> bool:
    """Whether `other`, receiving `p`'s deploy keys, would keep legacy keys that differ from them."""
    cfg = other.config
    res = _get(cfg, "deploy", "resources")
    res = res if isinstance(res, dict) else {}
    for key, (block, dkey) in _LEGACY.items():
        if cfg.get(key) is None:
            continue
        own: dict[str, Any] = res[block] if isinstance(res.get(block), dict) else {}
        got = own.get(dkey, p.add.get(block, {}).get(dkey))
        if got is None:
            if block in p.add or block in res:
                return True
        elif key == "cpus":
            if parse_cpus(got) is None or parse_cpus(got) != parse_cpus(cfg[key]):
                return True
        elif key == "pids_limit":
            if str(got) != str(cfg[key]):
                return True
        elif parse_size(got) is None or parse_size(got) != parse_size(cfg[key]):
            return True
    return False


# --- the pass -------------------------------------------------------------------------------


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    tables = sizing_tables(options, DEFAULTS)
    for err in tables.errors:
        yield Fix(ID, err, project.docs[0].path, safety=Safety.DISPLAY_ONLY, error=True)
    observed: dict[str, Observed] = {}
    if tables.usage_path:
        # From the command line, an absolute path; in the configuration, relative to the stack.
        usage = os.path.join(project.folder, tables.usage_path)
        try:
            samples = read_usage(usage)
        except InputError as e:
            yield Fix(ID, e.message, Path(usage), e.line or 0, e.col or 0, safety=Safety.DISPLAY_ONLY, error=True)
            return
        observed, unknown = observed_usage(project, samples)
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            yield Fix(ID, f"{len(unknown)} container{'s' if len(unknown) != 1 else ''} of {os.path.basename(usage)} "
                          f"match{'es' if len(unknown) == 1 else ''} no service of this stack: {shown}",
                      project.docs[0].path, safety=Safety.DISPLAY_ONLY, info=True)
    chosen = targets(project, ID, options)
    plans: dict[str, _Plan] = {}
    wants: dict[str, tuple[Any, ...]] = {}  # what each service lacking limits should end up with
    for svc in chosen:
        if runs_once(svc):
            continue  # a migration or seed job: a limit is only a way for it to fail
        got = _plan(project, svc, tables, observed=observed.get(svc.name))
        if isinstance(got, _Untrusted):
            wants[svc.name] = _UNTRUSTED
            yield got.fix
        elif isinstance(got, Fix):
            yield got
        elif got is not None and got.reason:
            wants[svc.name] = got.final
            yield _finding(svc, got.reason)
        elif got is not None:
            wants[svc.name] = got.final
            plans[svc.name] = got
    inherits = _inheritors(plans)
    names = {s.name for s in chosen}
    reach = _reach_index(project) if plans else {}
    extending = _extending(project) if plans else []
    pairs = [(p, _fix(project, p, plans, inherits, names, tables, wants, reach, extending, observed))
             for p in plans.values() if p.svc.name not in inherits]
    pairs = _placed(project, pairs, options)
    if tables.shared:
        pairs = _shared_profiles(project, pairs, tables.min_shared)
    yield from (f for _, f in pairs)
    unsafe = bool(options.get("_unsafe"))
    # What this run writes: a fix the settings allow, in a file of a role the pass serves (the
    # engine keeps it out of a development file: its figure is no total of that variant).
    applied = {p.svc.name for p, f in pairs if f.applicable and (unsafe or f.safety >= Safety.SAFE)
               and project.role_of(Path(f.path)) in (None, *ROLES)}
    yield from _budget(project, tables, {n: p.final for n, p in plans.items() if n in applied
                                         or (n in inherits and inherits[n].svc.name in applied)})


def _simple(p: _Plan, f: Fix) -> bool:
    """A plan that adds a whole `resources` (limits and reservations: memory, CPUs where a figure
    is known) to the service's own mapping and reaches no other service that needs another
    figure."""
    return (f.applicable and f.edits == tuple(p.edits) and p.whole and len(p.targets) == 1
            and p.targets[0].level in (0, 1) and set(p.add) in ({"limits", "reservations"}, {"limits"})
            and all("memory" in v and set(v) <= {"cpus", "memory"} for v in p.add.values()))


def _placed(project: Project, pairs: list[tuple[_Plan, Fix]], options: dict[str, Any]) -> list[tuple[_Plan, Fix]]:
    """Services that merge one service template (`<<: *snuba-defaults`) and all need the same
    new resources get them once, in the template (the placement step decides where, and only
    where the meaning is what the per-service edits would give). The rest keep their own."""
    from e2i_fix import placement

    out = list(pairs)
    by_safety: dict[Safety, list[int]] = {}
    for i, (p, f) in enumerate(pairs):
        if _simple(p, f):
            by_safety.setdefault(f.safety, []).append(i)
    for safety, members in by_safety.items():
        if len(members) < 2:
            continue  # one service: no template to share
        needs = {pairs[i][0].svc.name: placement.Need({b: dict(v) for b, v in pairs[i][0].written.items()},
                                                     pairs[i][1].message, provenance=pairs[i][1].provenance)
                 for i in members}
        got = placement.add_key(project, ID, ("deploy", "resources"), needs, options, safety)
        by_name: dict[str, Fix] = {}
        for fix in got:
            name = fix.message.split("'", 2)[1] if fix.message.startswith("service '") else None
            if name in needs:
                by_name[name] = fix
        for i in members:
            placed = by_name.get(pairs[i][0].svc.name)
            if placed is not None and placed.applicable:
                # This pass's own declaration of what changes, and placement's: every service its
                # edits reach, and the template's top-level key.
                changes = tuple(dict.fromkeys((*pairs[i][1].changes, *placed.changes)))
                out[i] = (pairs[i][0], placed._replace(changes=changes))
    return out


def _shared_profiles(project: Project, pairs: list[tuple[_Plan, Fix]], least: int) -> list[tuple[_Plan, Fix]]:
    """Where `least` or more services of one file get the same new resources, one anchored
    block (`x-resources-<profile>: &resources-<profile>`) holds them and each service refers
    to it: `deploy: {resources: *resources-<profile>}`, in block style, or `resources:` added
    to the `deploy:` it has. Compose reads exactly what the written-out form says."""
    groups: dict[tuple[int, tuple[Any, ...], Safety], list[int]] = {}
    for i, (p, f) in enumerate(pairs):
        if _simple(p, f):
            # One safety per group: a block that only some of its users' fixes would bring in
            # (the safe ones, in the default run) would be shared by fewer than it says.
            groups.setdefault((id(p.home.doc), p.final, f.safety), []).append(i)
    taken: dict[int, tuple[set[str], set[str]]] = {}  # per file: anchor names, top-level keys
    out = list(pairs)
    for members in groups.values():
        doc = pairs[members[0]][0].home.doc
        add = pairs[members[0]][0].add
        ways = conventions.read(project).limits(doc)
        if ways is not None and not ways.anchored:
            continue  # the stack writes its resources out in each service: so do these
        existing = _existing_block(doc, add)
        if len(members) < least and existing is None:
            continue
        names, keys = taken.setdefault(id(doc), ({n for n, _ in doc.anchors()}, set(doc.value)))
        name = existing or yamledit.unique_name(f"resources-{_block_name([pairs[i][0] for i in members])}", names)
        key = yamledit.unique_name(f"x-{name}", keys)
        refs: dict[int, list[Edit]] = {}
        for i in members:
            p = pairs[i][0]
            assert isinstance(p.home.node, MappingNode)
            after = p.home.key.end_mark.index
            if p.targets[0].level == 0:
                got = yamledit.ensure(doc, p.home.node, ("deploy",), {"resources": Alias(name)}, after)
            else:
                got = yamledit.ensure(doc, p.home.node, ("deploy", "resources"), Alias(name), after)
            if got:
                refs[i] = got
        if existing is not None:
            # The file already holds these figures under an anchor (an earlier run's block):
            # a service added since refers to it too.
            for i, edits in refs.items():
                p, f = pairs[i]
                out[i] = (p, f._replace(edits=tuple(edits), message=f"{f.message}; shared block *{name}"))
            continue
        if len(refs) < least:
            continue
        names.add(name)
        keys.add(key)
        written = pairs[members[0]][0].written
        block = yamledit.top_level_block(doc, key, Anchored(name, {b: dict(written[b]) for b in ("limits", "reservations")
                                                                   if b in written}))
        for i, edits in refs.items():
            p, f = pairs[i]
            out[i] = (p, f._replace(edits=(*edits, block), changes=(*f.changes, (key,)),
                                    message=f"{f.message}; shared block *{name}"))
    return out


def _block_name(plans: list[_Plan]) -> str:
    """What a shared block is named after, truthfully: the sizing profile when every service
    sharing it has that profile (`postgres`, `worker`); else the part of the services' names
    they all begin with (`celery` for celery-worker and celery-beat); else `shared`. A block
    an api-sized backend shares with two workers is no `worker` block."""
    profiles = {p.profile for p in plans}
    if len(profiles) == 1:
        return profiles.pop()
    words = [re.split(r"[-_.]", p.svc.name.lower()) for p in plans]
    common: list[str] = []
    for parts in zip(*words):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    prefix = re.sub(r"[^a-z0-9-]+", "-", "-".join(common)).strip("-")
    return prefix or "shared"


def _existing_block(doc: ComposeDoc, add: dict[str, dict[str, Any]]) -> str | None:
    """An anchored mapping of exactly these limits and reservations, written before `services:`
    (an alias must follow its anchor) and already used as some service's `resources`."""
    services = doc.get(doc.root, "services")
    if services is None:
        return None
    want = _figures_of(add)
    used = {id(v) for _, svc in (services[1].value if isinstance(services[1], MappingNode) else [])
            if isinstance(svc, MappingNode) for v in [_lookup(_lookup(svc, "deploy"), "resources")] if v is not None}
    for name, node in doc.anchors():
        if (isinstance(node, MappingNode) and node.start_mark.index < services[0].start_mark.index
                and id(node) in used):
            v = to_value(node)
            if isinstance(v, dict) and set(v) in ({"limits", "reservations"}, {"limits"}) and _figures_of(v) == want:
                return name
    return None


def _figures_of(res: dict[str, Any]) -> tuple[Any, ...] | None:
    out: list[Any] = []
    for b in ("limits", "reservations"):
        v = res.get(b)
        if v is None and b == "reservations":
            out += [None, None]  # limits only (a stack swarm deploys)
            continue
        if not isinstance(v, dict) or set(v) != {"cpus", "memory"}:
            return None
        out += [parse_cpus(v["cpus"]), parse_size(v["memory"])]
    return tuple(out)


# --- the host budget ------------------------------------------------------------------------


def _budget(project: Project, tables: Tables, finals: dict[str, tuple[Any, ...]]) -> Iterator[Fix]:
    """The stack's total limits and reservations, per variant (base alone, base + each
    override) and per set of profiles Compose would start, once this run's fixes are in;
    a finding where they do not fit the host."""
    path = project.docs[0].path
    info: list[str] = []
    # COMPOSE_PROFILES (in `.env`) names the profiles a plain `docker compose up` enables.
    enabled = set(project.default_profiles)
    for files in project.variants():
        services = project.model(files).get("services") or {}
        profiles = sorted({str(p) for s in services.values() if isinstance(s, dict)
                           for p in (s.get("profiles") or []) if isinstance(s.get("profiles"), list)} - enabled)
        runs: list[tuple[str, set[str] | None]] = [("", enabled)]
        runs += [(f"--profile {p}", enabled | {p}) for p in profiles]
        if len(profiles) > 1:
            runs.append(('--profile "*"', None))
        where = " + ".join(Path(project.docs[i].path).name for i in files)
        parts = []
        for label, active in runs:
            t = _totals(services, active, finals)
            what = f"{where}{' with ' + label if label else ''}"
            default = f"default (COMPOSE_PROFILES={','.join(sorted(enabled))})" if enabled else "default"
            parts.append(f"{label or default}: {_totals_phrase(t)}")
            yield from _over_budget(what, t, tables, path)
        info.append(f"{where}: " + "; ".join(parts))
    host = ""
    if tables.host_cpus is not None or tables.host_memory is not None:
        host = " (host: " + " / ".join(
            x for x in (f"{format_cpus(tables.host_cpus)} CPUs" if tables.host_cpus is not None else "",
                        human(tables.host_memory) if tables.host_memory else "") if x) + ")"
    for line in info:
        yield Fix(ID, f"resource totals{host}, {line}", path, safety=Safety.DISPLAY_ONLY, info=True)


class _Totals(NamedTuple):
    cpus: Decimal
    memory: int
    rsv_cpus: Decimal
    rsv_memory: int
    containers: int
    no_cpus: int  # containers without a CPU limit
    no_memory: int


def _totals(services: dict[str, Any], active: set[str] | None, finals: dict[str, tuple[Any, ...]]) -> _Totals:
    cpus, rsv_cpus = Decimal(0), Decimal(0)
    memory = rsv_memory = containers = no_cpus = no_memory = 0
    for name, cfg in services.items():
        if not isinstance(cfg, dict):
            continue
        profs = cfg.get("profiles")
        if isinstance(profs, list) and profs and active is not None and not active & {str(p) for p in profs}:
            continue  # Compose does not start it
        n = _get(cfg, "deploy", "replicas")
        n = cfg.get("scale") if n is None else n
        count = n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 1
        if not count:
            continue
        res = _get(cfg, "deploy", "resources")
        res = res if isinstance(res, dict) else {}
        lim: dict[str, Any] = res["limits"] if isinstance(res.get("limits"), dict) else {}
        rsv: dict[str, Any] = res["reservations"] if isinstance(res.get("reservations"), dict) else {}
        final = finals.get(name, (None,) * 6)
        c = parse_cpus(lim.get("cpus", cfg.get("cpus", final[0])))
        m = parse_size(lim.get("memory", cfg.get("mem_limit", final[1])))
        rc = parse_cpus(rsv.get("cpus", final[3]))
        rm = parse_size(rsv.get("memory", cfg.get("mem_reservation", final[4])))
        containers += count
        if c:
            cpus += c * count
        else:
            no_cpus += count
        if m:
            memory += m * count
        else:
            no_memory += count
        rsv_cpus += (rc or 0) * count
        rsv_memory += (rm or 0) * count
    return _Totals(cpus, memory, rsv_cpus, rsv_memory, containers, no_cpus, no_memory)


def _totals_phrase(t: _Totals) -> str:
    out = (f"{t.containers} container{'s' if t.containers != 1 else ''}, limits {_cpu_phrase(format_cpus(t.cpus))} / "
           f"{human(t.memory)}, reservations {format_cpus(t.rsv_cpus)} / {human(t.rsv_memory)}")
    missing = [f"{n} without a {what} limit" for n, what in ((t.no_memory, "memory"), (t.no_cpus, "CPU")) if n]
    if missing:
        out += f" ({', '.join(missing)})"
    return out


def _over_budget(what: str, t: _Totals, tables: Tables, path: Path) -> Iterator[Fix]:
    k = tables.overcommit
    hm, hc = tables.host_memory, tables.host_cpus
    problems = []
    if hm and t.rsv_memory > hm:
        problems.append(f"memory reservations add up to {human(t.rsv_memory)}, more than the host's {human(hm)}")
    if hc is not None and t.rsv_cpus > hc:
        problems.append(f"CPU reservations add up to {format_cpus(t.rsv_cpus)}, more than the host's {format_cpus(hc)}")
    if hm and t.memory > hm * k:
        problems.append(f"memory limits add up to {human(t.memory)}, over {k:g} x the host's {human(hm)}")
    if hc is not None and t.cpus > hc * Decimal(str(k)):
        problems.append(f"CPU limits add up to {format_cpus(t.cpus)}, over {k:g} x the host's {format_cpus(hc)}")
    if problems:
        yield Fix(ID, f"{what}: {'; '.join(problems)}: lower the figures or raise host-memory / host-cpus",
                  path, safety=Safety.DISPLAY_ONLY)


def _inheritors(plans: dict[str, _Plan]) -> dict[str, _Plan]:
    """Services that get the same figures from a mapping they merge or a service they extend."""
    by_node = {id(p.home.node): p for p in plans.values() if p.top}
    out: dict[str, _Plan] = {}
    memo: dict[str, _Plan | None] = {}

    def source(p: _Plan) -> _Plan | None:
        """The plan whose new `deploy` this one would see, itself not inheriting."""
        if p.svc.name in memo:
            return memo[p.svc.name]
        memo[p.svc.name] = None  # cycles cannot happen in YAML merges; guard anyway
        found: _Plan | None = None
        if p.top:
            for src in merge_sources(p.home.node):
                d = by_node.get(id(src))
                if d is not None and d is not p and source(d) is None:
                    found = d
                    break
        if found is None and p.whole:
            base, file = _extends_of(p.home, p.svc.name)
            d = plans.get(base) if base and not file else None
            if d is not None and d is not p and d.home.doc is p.home.doc and source(d) is None:
                found = d
        ok = found is not None and found.final == p.final and found.safety >= p.safety
        memo[p.svc.name] = found if ok else None
        return memo[p.svc.name]

    for p in plans.values():
        d = source(p)
        if d is not None:
            out[p.svc.name] = d
    del source  # a recursive closure is a reference cycle holding every plan: break it
    return out


def _reach_index(project: Project) -> dict[int, set[str]]:
    """Every mapping a service's `deploy.resources.<block>` lookup passes through (its own
    and merged ones, at each level), by node identity: only those services can receive an edit
    made there. Built once, so a plan checks its few candidates, not every service."""
    out: dict[int, set[str]] = {}
    for svc in project.services.values():
        for d in svc.defs:
            level: list[Node] = [d.node]
            for key in ("deploy", "resources", None):
                for n in level:
                    for m in (n, *merge_sources(n)):
                        out.setdefault(id(m), set()).add(svc.name)
                if key is None:
                    nxt = [_lookup(n, b) for n in level for b in ("limits", "reservations")]
                else:
                    nxt = [_lookup(n, key) for n in level]
                level = [n for n in nxt if n is not None]
            for n in level:
                for m in (n, *merge_sources(n)):
                    out.setdefault(id(m), set()).add(svc.name)
    return out


def _fix(project: Project, p: _Plan, plans: dict[str, _Plan], inherits: dict[str, _Plan], chosen: set[str],
         tables: Tables, wants: dict[str, tuple[Any, ...]], reach: dict[int, set[str]],
         extending: list[Service], observed: dict[str, Observed]) -> Fix:
    """The fix for one plan, with the edits of the services its edit would otherwise reach."""
    candidates = {name for t in p.targets for name in reach.get(id(t.node), ())}
    reached = {name for name in candidates for d in project.services[name].defs
               if any(_receives(d.node, t) for t in p.targets)}
    reached |= _extenders(project, reached | {p.svc.name}, p.home.doc, extending)
    edits = list(p.edits)
    safety = p.safety
    line, col = position(p.home.key)
    shielded: list[str] = []
    for name in sorted(reached - {p.svc.name}):
        other = project.services[name]
        q = plans.get(name)
        if inherits.get(name) is p or wants.get(name) == p.final:
            continue  # it needs the same figures: sharing them is right
        if any(d.node is p.home.node for d in other.defs) and name not in wants:
            continue  # the same mapping under another name (`b: *a`), with limits of its own
        if q is not None:
            # Figures of its own: its own deploy, in this same fix, so it never inherits ours.
            edits += [e for e in q.edits if e not in edits]
            safety = min(safety, q.safety)
            shielded.append(name)
            continue
        if name in chosen and name not in wants and not _legacy_conflict(other, p):
            continue  # limits of its own, and nothing it inherits conflicts with its legacy keys
        own = _plan(project, other, tables, shadow=True, observed=observed.get(name)) if name in chosen else None
        if isinstance(own, _Plan) and own.reason is None:
            # Its limits are in legacy keys: its own deploy says the same, and shields it from ours.
            edits += [e for e in own.edits if e not in edits]
            shielded.append(name)
            continue
        why = ("opts out of this pass" if name not in chosen
               else "has no figure that can be trusted" if wants.get(name) == _UNTRUSTED
               else "needs other figures" if name in wants else "has legacy limits that would then conflict")
        head = p.message.split(":", 1)[0]
        return Fix(ID, f"{head}, but its mapping is shared with {name!r}, which {why}: set deploy.resources by hand",
                   p.home.doc.path, line, col, safety=Safety.DISPLAY_ONLY)
    keys = ("deploy",) if p.keys is None else tuple(p.keys)
    changes: tuple[ModelPath, ...] = tuple(("services", s, k) for s in sorted(reached | {p.svc.name}) for k in keys)
    message = p.message
    if shielded:
        names = ", ".join(map(repr, shielded))
        one = len(shielded) == 1
        message += f"; {names}, which would inherit it, get{'s' if one else ''} {'its' if one else 'their'} own"
    return Fix(ID, message, p.home.doc.path, line, col, tuple(edits), safety, changes, provenance=p.provenance)
