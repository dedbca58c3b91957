"""deploy-limits: CPU and memory limits, and reservations, for every service.

## What it does
Adds `deploy.resources` to each service that has no CPU or no memory limit:

    deploy:
      resources:
        limits:
          cpus: "1"
          memory: "512M"
        reservations:
          cpus: "0.5"
          memory: "256M"

Reservations are half the limits. Only what is missing is added: an existing `deploy:` keeps
its `replicas`, `restart_policy`... and gets `resources` next to them; existing `resources`
with only reservations (or only GPU `devices`) get `limits`; limits with only `memory` get
`cpus`. Nothing that is there is ever changed or lowered. A service that already has both a
CPU and a memory limit (in `deploy.resources.limits` or the legacy `cpus` / `mem_limit`) is
left alone, reservations included.

The figures come from a profile table, first match wins:
1. `services.<name>` from the configuration;
2. the image: the family of `image:` (no registry, no tag: `docker.io/bitnami/redis:7` is
   `redis`), else of the image the service's Dockerfile stage starts from. A known image says
   more about what a container needs than the command does (a `redis-server` is a Redis
   whatever its name), so it comes before the role;
3. the role, from the command (`celery ... worker`, `rq worker`, `dramatiq`, `sidekiq`: worker;
   `gunicorn`, `uvicorn`, `node server.js`: api) or else the service name (`worker`, `api`,
   `backend`, `server`);
4. `default`.
An entry may give only `cpus` or only `memory`; the other comes from the next match.

Built-in images (limits; reservations are half): redis, valkey, keydb 1 / 512M; falkordb 1 / 1G;
mlflow 1 / 2G; postgres (postgis, timescaledb, pgvector...) 1 / 1G; mysql, mariadb 1 / 1G;
mongo 1 / 1G; elasticsearch, opensearch 2 / 2G; kibana, logstash, opensearch-dashboards 1 / 1G;
kafka (cp-kafka, cp-server, bitnami/kafka...) 1 / 2G; zookeeper 0.5 / 512M; rabbitmq 1 / 512M;
clickhouse 2 / 4G; minio 1 / 1G; nginx, httpd, caddy, haproxy, traefik 0.5 / 256M; grafana
0.5 / 512M; prometheus 1 / 1G; memcached 0.5 / 256M. Roles: api 2 / 4G, worker 2 / 4G.
Default: 1 / 1G.

Never below what the service asks for itself. The memory limit is raised, to the next clean
size (256M, 384M, 512M, 768M, 1G, 1536M, then whole gigabytes), above:
- Redis `--maxmemory` (command or entrypoint, string or list form) x 1.5: fragmentation,
  client buffers and the copy-on-write fork of a save need room besides the data;
- JVM `-Xmx` / `-XX:MaxHeapSize` in the command or in `JAVA_OPTS`, `ES_JAVA_OPTS`,
  `OPENSEARCH_JAVA_OPTS`, `KAFKA_HEAP_OPTS`, `_JAVA_OPTIONS`, `JAVA_TOOL_OPTIONS`, `JVMFLAGS`...
  x 2 for Elasticsearch and OpenSearch (their documented rule: heap at most half the memory,
  the rest is Lucene's file cache) and x 1.5 for any other JVM (metaspace, threads, direct
  buffers);
- Node `--max-old-space-size` (MB), in the command or `NODE_OPTIONS`, x 1.5.
A value set through `${VAR}` cannot be read: the table's figure is used, the message says so,
and the fix is marked unsafe (a heap larger than the limit gets the container killed).
The environment of `env_file:` files is not read.

Legacy keys. Compose refuses a project whose legacy keys differ from `deploy.resources` (checked
with the Compose v2.40 CLI, `docker compose config`; the check runs with interpolation on, so
`config --no-interpolate` does not show it): as soon as a `limits` block exists, `mem_limit`
must equal `limits.memory`, `cpus` must equal `limits.cpus` and `pids_limit` must equal
`limits.pids`, an absent deploy key counting as different (`mem_limit: 1g` next to a `limits`
with only `cpus` is refused); as soon as a `reservations` block exists, `mem_reservation` must
equal `reservations.memory`. Values are compared after parsing: `1g`, `1G`, `1024m` and
`1073741824` are equal, as are `cpus: 1.5` and `"1.5"`. `memswap_limit` is not compared.
So the legacy values are carried over, written as they are (`${MEM_LIMIT}` included):
`limits.memory` = `mem_limit`, `limits.cpus` = `cpus`, `limits.pids` = `pids_limit`,
`reservations.memory` = `mem_reservation`, and the message names them. A legacy key set to
different values in different compose files of the stack, or a `memswap_limit` without
`mem_limit` (a memory limit above it stops the container from starting), leaves the service
alone with a report.

Where the text goes: in the service's first editable definition (the base file's; a service
defined only in an override gets it there), as strings: `cpus: "2"` (the schema takes a number
or a string, and Compose reads `"2"` and `2.0` alike) and `memory: "4G"` (a string is required).
A service whose `deploy` (or `resources`...) comes from a merged mapping (`<<: *x`) is reported,
not edited: an own key would replace the merged one. A service whose limits come from a merged
mapping, or from its `extends` base (in the same file or in another file of the stack), is left
alone: the base is where they belong; one that extends a service in a file outside the stack is
reported. A mapping that other services merge (`api: &app` ... `<<: *app`), or a `deploy`
anchor that others use (`deploy: *d`), passes the new keys on to them: those that need the same
figures inherit them; those that need others get their own `deploy` in the same fix (a merge is
shallow: an own `deploy` replaces the merged one); one with its limits in legacy keys gets its
own `deploy` with exactly those values; if one cannot (it opts out, or cannot be edited and needs
other figures) the fix is only reported. A service that `extends` one getting the same figures
inherits them the same way.

## Why
Without limits one container can take all the memory of the host, and the kernel's OOM killer
then picks a victim among all of them; without reservations nothing tells the scheduler what a
service needs.

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
              cpus: "1"
              memory: "768M"
            reservations:
              cpus: "0.5"
              memory: "384M"

## Fix safety
Safe: limits at these sizes only stop a runaway container, and never go below what the service
configures for itself. Unsafe when a size the service asks for is set through `${VAR}` and
cannot be checked.

## Options
Entries are tables with `cpus` (a number or a string: `"0.5"`) and/or `memory` (`"512M"`, `"4G"`).
- `services`: per service name, e.g. `services = {api = {cpus = "4", memory = "8G"}}`.
- `images`: per image family (`redis`) or repository (`bitnami/redis`); merged over the built-in
  table, entry by entry.
- `roles`: `api` and `worker`; merged over the built-in ones.
- `default`: for everything else.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

from e2i_fix import model, yamledit
from e2i_fix.fix import Edit, Fix, ModelPath, Safety
from e2i_fix.project import Project, Service, ServiceDef, command_text, image_family, role, targets
from e2i_fix.yamldoc import ComposeDoc, MappingNode, Node, ScalarNode, effective_entry, is_merge_key, merge_sources, position, to_value

ID = "deploy-limits"
SUMMARY = "deploy.resources limits and reservations from a profile table, never below what a service asks for"
SAFETY = Safety.SAFE
# The service keys its decisions depend on: another pass changing one of them runs it again.
READS = frozenset({"image", "build", "command", "entrypoint", "environment", "deploy", "mem_limit",
                   "mem_reservation", "memswap_limit", "cpus", "pids_limit", "extends"})

_BUILTIN_IMAGES: dict[str, dict[str, str]] = {
    "redis": {"cpus": "1", "memory": "512M"},
    "falkordb": {"cpus": "1", "memory": "1G"},
    "mlflow": {"cpus": "1", "memory": "2G"},
    "postgres": {"cpus": "1", "memory": "1G"},
    "mysql": {"cpus": "1", "memory": "1G"},
    "mariadb": {"cpus": "1", "memory": "1G"},
    "mongo": {"cpus": "1", "memory": "1G"},
    "elasticsearch": {"cpus": "2", "memory": "2G"},
    "opensearch": {"cpus": "2", "memory": "2G"},
    "kibana": {"cpus": "1", "memory": "1G"},
    "logstash": {"cpus": "1", "memory": "1G"},
    "kafka": {"cpus": "1", "memory": "2G"},
    "zookeeper": {"cpus": "0.5", "memory": "512M"},
    "rabbitmq": {"cpus": "1", "memory": "512M"},
    "clickhouse": {"cpus": "2", "memory": "4G"},
    "minio": {"cpus": "1", "memory": "1G"},
    "nginx": {"cpus": "0.5", "memory": "256M"},
    "traefik": {"cpus": "0.5", "memory": "256M"},
    "grafana": {"cpus": "0.5", "memory": "512M"},
    "prometheus": {"cpus": "1", "memory": "1G"},
    "memcached": {"cpus": "0.5", "memory": "256M"},
}
# Image families that run the same software as a table entry.
_ALIASES = {
    "valkey": "redis", "keydb": "redis", "redis-stack-server": "redis", "redis-stack": "redis",
    "postgresql": "postgres", "postgis": "postgres", "timescaledb": "postgres", "timescaledb-ha": "postgres",
    "pgvector": "postgres", "percona": "mysql", "percona-server": "mysql", "mysql-server": "mysql",
    "mongodb": "mongo", "mongodb-community-server": "mongo",
    "opensearch-dashboards": "kibana",
    "cp-kafka": "kafka", "cp-server": "kafka", "kafka-native": "kafka", "redpanda": "kafka",
    "cp-zookeeper": "zookeeper",
    "clickhouse-server": "clickhouse",
    "nginx-unprivileged": "nginx", "openresty": "nginx", "httpd": "nginx", "caddy": "nginx", "haproxy": "nginx",
}
_BUILTIN_ROLES: dict[str, dict[str, str]] = {
    "api": {"cpus": "2", "memory": "4G"},
    "worker": {"cpus": "2", "memory": "4G"},
}
_BUILTIN_DEFAULT = {"cpus": "1", "memory": "1G"}

DEFAULTS: dict[str, Any] = {
    "services": {},
    "images": {k: dict(v) for k, v in _BUILTIN_IMAGES.items()},
    "roles": {k: dict(v) for k, v in _BUILTIN_ROLES.items()},
    "default": dict(_BUILTIN_DEFAULT),
}

_KiB, _MiB, _GiB = 1024, 1024**2, 1024**3
_LEGACY = {"mem_limit": ("limits", "memory"), "cpus": ("limits", "cpus"), "pids_limit": ("limits", "pids"),
           "mem_reservation": ("reservations", "memory")}
_ES_LIKE = {"elasticsearch", "opensearch"}


# --- sizes ----------------------------------------------------------------------------------

_COMPOSE_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?")
_UNIT = {"": 1, "k": _KiB, "m": _MiB, "g": _GiB, "t": 1024**4, "p": 1024**5}


def parse_size(value: Any) -> int | None:
    """Bytes of a Compose size (`512m`, `1.5G`, `1073741824`); None when it cannot be read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        return None
    m = _COMPOSE_SIZE.fullmatch(value.strip())
    if not m:
        return None
    return int(float(m.group(1)) * _UNIT[(m.group(2) or "").lower()])


def format_size(b: int) -> str:
    for unit, size in (("G", _GiB), ("M", _MiB), ("K", _KiB)):
        if b % size == 0:
            return f"{b // size}{unit}"
    return str(b)


def parse_cpus(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return d if d.is_finite() and d >= 0 else None


def format_cpus(d: Decimal) -> str:
    return format(d.normalize(), "f")


# Clean sizes below 2G, in MiB: powers of two and one and a half times them (64M ... 1G, 1536M).
_LADDER = sorted(m for m in {2**k for k in range(6, 11)} | {3 * 2**k for k in range(5, 10)})


def clean_ceil(b: int) -> int:
    """The next clean size at or above `b`: 384M, 512M, 768M, 1G, 1536M, then whole gigabytes."""
    mib = math.ceil(b / _MiB)
    small = next((s for s in _LADDER if s >= mib), None)
    return small * _MiB if small is not None else math.ceil(b / _GiB) * _GiB


def _half_size(b: int) -> int | None:
    half = b // 2 // _MiB * _MiB
    return half or None


# --- what a service asks for ----------------------------------------------------------------

_REDIS_UNIT = {"": 1, "k": 1000, "kb": _KiB, "m": 1000**2, "mb": _MiB, "g": 1000**3, "gb": _GiB}
_MAXMEMORY = re.compile(r"--maxmemory(?![\w-])(?:=|\s+)(\S+)")
_XMX = re.compile(r"(-Xmx|-XX:MaxHeapSize=)(\S+)")
_JVM_SIZE = re.compile(r"(\d+)([kKmMgGtT]?)")
_OLD_SPACE = re.compile(r"--max-old-space-size(?:=|\s+)(\S+)")
_JVM_ENV = re.compile(r"(?:^|_)(?:JAVA_OPTS|JAVA_OPTIONS|JAVA_TOOL_OPTIONS|HEAP_OPTS|JVM_OPTS|JVMFLAGS|JVM_ARGS)$")
_INTERP = re.compile(r"(?<!\$)\$(?:\{|[A-Za-z_])")


class _Demand(NamedTuple):
    need: int  # bytes the limit must reach
    what: str  # for the message: "-Xmx512m in ES_JAVA_OPTS x 2"


def _redis_bytes(tok: str) -> int | None:
    m = re.fullmatch(r"(\d+)([kmg]b?)?", tok.lower())
    return int(m.group(1)) * _REDIS_UNIT[m.group(2) or ""] if m else None


def demands(config: dict[str, Any], family: str | None) -> tuple[list[_Demand], list[str]]:
    """What the service sizes itself to, and the sizes it sets through `${VAR}` (unreadable)."""
    out: list[_Demand] = []
    unread: list[str] = []
    cmd = command_text(config)
    env = config.get("environment")
    env = env if isinstance(env, dict) else {}

    for m in _MAXMEMORY.finditer(cmd):
        tok = m.group(1).strip("'\"")
        if _INTERP.search(tok):
            unread.append(f"--maxmemory {tok}")
            continue
        b = _redis_bytes(tok)
        if b:
            out.append(_Demand(math.ceil(b * 1.5), f"--maxmemory {tok} x 1.5"))

    jvm = [("the command", cmd)] + [(k, str(v)) for k, v in env.items() if v is not None and _JVM_ENV.search(k)]
    for where, text in jvm:
        factor = 2.0 if family in _ES_LIKE or where in ("ES_JAVA_OPTS", "OPENSEARCH_JAVA_OPTS") else 1.5
        if where != "the command" and text.lstrip().startswith("$") and _INTERP.match(text.lstrip()):
            unread.append(f"{where}={text.strip()}")
            continue
        for m in _XMX.finditer(text):
            tok = m.group(2).strip("'\"")
            if _INTERP.search(tok):
                unread.append(f"{m.group(1)}{tok} in {where}")
                continue
            sm = _JVM_SIZE.fullmatch(tok)
            if sm:
                b = int(sm.group(1)) * _UNIT[sm.group(2).lower()]
                out.append(_Demand(math.ceil(b * factor), f"{m.group(1)}{tok} in {where} x {factor:g}"))

    node = [("the command", cmd)] + ([("NODE_OPTIONS", str(env["NODE_OPTIONS"]))] if env.get("NODE_OPTIONS") else [])
    for where, text in node:
        for m in _OLD_SPACE.finditer(text):
            tok = m.group(1).strip("'\"")
            if _INTERP.search(tok):
                unread.append(f"--max-old-space-size {tok} in {where}")
            elif tok.isdigit() and int(tok):
                out.append(_Demand(math.ceil(int(tok) * _MiB * 1.5), f"--max-old-space-size={tok} in {where} x 1.5"))
    return out, unread


# --- the profile table ----------------------------------------------------------------------


class _Entry(NamedTuple):
    cpus: Decimal | None
    memory: int | None


_TABLES: dict[str, _Tables] = {}


def _tables(options: dict[str, Any]) -> _Tables:
    """The tables for these options, built once per distinct configuration (every stack of a
    run usually shares one)."""
    key = repr([(k, options.get(k)) for k in ("services", "images", "roles", "default")])
    got = _TABLES.get(key)
    if got is None:
        got = _TABLES[key] = _Tables(options)
    return got


class _Tables:
    """The options, checked and merged over the built-in tables."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.errors: list[str] = []
        self.services = self._table(options.get("services"), "services")
        self.images = self._table(self._over(_BUILTIN_IMAGES, options.get("images"), "images", str.lower), "images")
        self.roles = self._table(self._over(_BUILTIN_ROLES, options.get("roles"), "roles", str), "roles")
        default = self._entry(options.get("default") or {}, "default")
        builtin = self._entry(_BUILTIN_DEFAULT, "default")
        assert builtin is not None
        self.default = _Entry(default.cpus if default and default.cpus is not None else builtin.cpus,
                              default.memory if default and default.memory is not None else builtin.memory)

    def _over(self, builtin: dict[str, dict[str, str]], user: Any, name: str, key: Any) -> dict[str, Any]:
        """The user's entries over the built-in ones, entry by entry (`memory` alone keeps `cpus`)."""
        out: dict[str, Any] = {k: dict(v) for k, v in builtin.items()}
        if user is None:
            return out
        if not isinstance(user, dict):
            self.errors.append(f"option {name} must be a table of name = {{cpus = ..., memory = ...}}")
            return out
        for k, v in user.items():
            k = key(str(k))
            out[k] = {**out.get(k, {}), **v} if isinstance(v, dict) else v
        return out

    def _table(self, value: Any, name: str) -> dict[str, _Entry]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.errors.append(f"option {name} must be a table of name = {{cpus = ..., memory = ...}}")
            return {}
        out = {}
        for k, v in value.items():
            e = self._entry(v, f"{name}.{k}")
            if e is not None:
                out[str(k)] = e
        return out

    def _entry(self, v: Any, where: str) -> _Entry | None:
        if not isinstance(v, dict):
            self.errors.append(f"option {where} must be a table with cpus and/or memory")
            return None
        bad = sorted(set(v) - {"cpus", "memory"})
        if bad:
            self.errors.append(f"option {where}: unknown key {', '.join(bad)} (allowed: cpus, memory)")
            return None
        cpus = parse_cpus(v["cpus"]) if "cpus" in v else None
        memory = parse_size(v["memory"]) if "memory" in v else None
        if "cpus" in v and not cpus:
            self.errors.append(f"option {where}.cpus: {v['cpus']!r} is not a number of CPUs")
            return None
        if "memory" in v and (not memory or isinstance(v["memory"], int)):
            self.errors.append(f"option {where}.memory: {v['memory']!r} is not a size like \"512M\"")
            return None
        return _Entry(cpus, memory)

    def profile(self, project: Project, svc: Service) -> tuple[Decimal, int]:
        chain: list[_Entry] = []
        if svc.name in self.services:
            chain.append(self.services[svc.name])
        for image in (svc.image, svc.build.stage.root_image if svc.build and svc.build.stage else None):
            keys = _image_keys(image)
            if not keys:
                continue
            canon = _ALIASES.get(keys[-1], keys[-1])
            found = [self.images[k] for k in (*keys, canon) if k in self.images]
            if found:
                chain.extend(found)
                break
        r = role(svc)
        if r and r in self.roles:
            chain.append(self.roles[r])
        chain.append(self.default)
        cpus = next(e.cpus for e in chain if e.cpus is not None)
        memory = next(e.memory for e in chain if e.memory is not None)
        return cpus, memory


_VAR = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def _image_keys(image: str | None) -> tuple[str, ...]:
    """`${REG:-ghcr.io}/bitnami/kafka:3.7` -> ("bitnami/kafka", "kafka"); () when unknown."""
    if not image:
        return ()
    # `${VAR:-default}` reads as its default; a bare `${VAR}` as nothing.
    name = _VAR.sub(lambda m: m.group(2) or "", image).split("@", 1)[0]
    parts = [p for p in name.split("/") if p]
    if not parts:
        return ()
    parts[-1] = parts[-1].split(":", 1)[0]
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    family = image_family("/".join(parts))
    if not family or "$" in family:
        return ()
    repo = "/".join(parts).lower()
    return (repo, family) if repo != family else (family,)


# --- one service ----------------------------------------------------------------------------


class _Target(NamedTuple):
    """A mapping an edit adds `key` to (or fills `key:` in), `level` keys below the service."""

    node: Node
    key: str
    level: int  # 0: the service mapping, 1: deploy, 2: resources, 3: limits/reservations
    block: str = ""  # limits or reservations, at level 3


class _Plan:
    def __init__(self, svc: Service, home: ServiceDef, add: dict[str, dict[str, Any]], final: tuple[Any, ...],
                 message: str, safety: Safety, whole: bool) -> None:
        self.svc = svc
        self.home = home
        self.add = add  # {"limits": {...}, "reservations": {...}}, only what is missing
        self.final = final  # the resources the service ends up with, to compare two services
        self.message = message
        self.safety = safety
        self.whole = whole  # the service had no resources of its own: it can inherit a whole set
        self.reason: str | None = None  # why the text cannot take the edits: reported instead
        self.edits: list[Edit] = []
        self.targets: list[_Target] = []

    @property
    def top(self) -> bool:
        """The edit adds `deploy` to the service mapping itself."""
        return any(t.level == 0 for t in self.targets)


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


def _plan(project: Project, svc: Service, tables: _Tables, shadow: bool = False) -> _Plan | Fix | None:
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
    if has_cpu and has_mem and not shadow:
        return None
    if shadow and not (has_cpu and has_mem and "deploy" not in cfg):
        return None
    if split:
        return _finding(svc, f"has no resource limits, but its {', '.join(split)} differs between files: "
                             "set deploy.resources by hand")
    if not has_mem and legacy.get("memswap_limit") not in (None, -1, "-1"):
        return _finding(svc, "has memswap_limit but no mem_limit: set mem_limit (and deploy.resources) by hand")
    home = svc.home
    if home is None:
        if all(d.doc.readonly for d in svc.defs):
            return None  # only in a file read for context: not ours to report
        return _finding(svc, "has no resource limits (its mapping cannot be edited here)")
    later = svc.shadows(home, "deploy", "resources", "limits")
    if later is not None:
        return _finding(svc, f"has no resource limits, and {later.doc.path.name} resets or overrides its deploy "
                             "section (`!reset`/`!override`): set deploy.resources there")

    cpus, memory = tables.profile(project, svc)
    notes: list[str] = []
    safety = SAFETY
    add_l: dict[str, Any] = {}
    add_r: dict[str, Any] = {}
    carried: list[str] = []

    # Limits: what is there stays, legacy values are carried over, the rest comes from the table.
    final_cpus: Decimal | None
    if "cpus" in lim:
        final_cpus = parse_cpus(lim["cpus"])
    elif "cpus" in legacy:
        add_l["cpus"] = _carry(legacy["cpus"], "cpus")
        final_cpus = parse_cpus(legacy["cpus"])
        carried.append("cpus")
    else:
        final_cpus = cpus
        if "cpus" in rsv:
            floor = parse_cpus(rsv["cpus"])
            if floor is None:
                notes.append(f"reservations.cpus {rsv['cpus']} cannot be read")
                safety = Safety.UNSAFE
            else:
                final_cpus = max(final_cpus, floor)
        add_l["cpus"] = format_cpus(final_cpus)
    final_mem: int | None
    if "memory" in lim:
        final_mem = parse_size(lim["memory"])
    elif "mem_limit" in legacy:
        add_l["memory"] = _carry(legacy["mem_limit"], "mem_limit")
        final_mem = parse_size(legacy["mem_limit"])
        carried.append("mem_limit")
    else:
        final_mem, safety = _memory(svc, cfg, memory, rsv, legacy, notes, safety)
        add_l["memory"] = format_size(final_mem)
    if "pids_limit" in legacy and "pids" not in lim:
        add_l["pids"] = _carry(legacy["pids_limit"], "pids_limit")
        carried.append("pids_limit")

    # Reservations: half the limits, or the legacy reservation.
    if shadow:
        pass  # only what the legacy keys say
    elif "cpus" not in rsv:
        if final_cpus:
            add_r["cpus"] = format_cpus(final_cpus / 2)
        elif final_cpus is None:
            notes.append("no CPU reservation: the CPU limit cannot be read")
    if "memory" not in rsv:
        half = _half_size(final_mem) if final_mem else None
        if "mem_reservation" in legacy:
            add_r["memory"] = _carry(legacy["mem_reservation"], "mem_reservation")
            carried.append("mem_reservation")
        elif shadow:
            pass
        elif half:
            add_r["memory"] = format_size(half)
        elif final_mem is None:
            notes.append("no memory reservation: the memory limit cannot be read")

    add = {k: v for k, v in (("limits", add_l), ("reservations", add_r)) if v}
    if not has_cpu and not has_mem:
        what = "no resource limits"
    elif not has_cpu:
        what = "mem_limit but no CPU limit" if "mem_limit" in carried else "no CPU limit"
    else:
        what = "cpus but no memory limit" if "cpus" in carried else "no memory limit"
    if {"cpus", "memory"} <= set(add_l) and {"cpus", "memory"} <= set(add_r):
        body = (f"add deploy.resources ({_cpu_phrase(add_l['cpus'])} / {add_l['memory']}, "
                f"reservations {add_r['cpus']} / {add_r['memory']})")
        if "pids" in add_l:
            body += f" with limits.pids {add_l['pids']}"
    else:
        body = "add " + ", ".join(f"deploy.resources.{b}.{k} {v}" for b, kv in add.items() for k, v in kv.items())
    if carried:
        them = "it" if len(carried) == 1 else "them"
        notes.insert(0, f"{', '.join(carried)} carried over (Compose refuses deploy.resources that differ from {them})")
    message = f"service {svc.name!r} has {what}: {body}" + "".join(f"; {n}" for n in notes)
    final = tuple(add.get(b, {}).get(k, have.get(k)) for b, have in (("limits", lim), ("reservations", rsv))
                  for k in ("cpus", "memory", "pids"))
    plan = _Plan(svc, home, add, final, message, safety, whole=not res and not carried)
    reason = _locate(plan)
    if reason:
        plan.reason = f"has {what}, but {reason}: set deploy.resources by hand"
    return plan


def _memory(svc: Service, cfg: dict[str, Any], memory: int, rsv: dict[str, Any], legacy: dict[str, Any],
            notes: list[str], safety: Safety) -> tuple[int, Safety]:
    """The memory limit: the table's, raised above what the service asks for and its reservation."""
    keys = _image_keys(svc.image) or _image_keys(svc.build.stage.root_image if svc.build and svc.build.stage else None)
    family = _ALIASES.get(keys[-1], keys[-1]) if keys else None
    asked, unread = demands(cfg, family)
    final = memory
    top = max(asked, key=lambda d: d.need, default=None)
    if top is not None and top.need > final:
        final = clean_ceil(top.need)
        notes.append(f"memory raised to cover {top.what}")
    for u in unread:
        notes.append(f"{u} cannot be read, so the limit is not checked against it")
        safety = Safety.UNSAFE
    floor = rsv.get("memory") if "memory" in rsv else legacy.get("mem_reservation")
    if floor is not None:
        b = parse_size(floor)
        if b is None:
            notes.append(f"the memory reservation {floor} cannot be read")
            safety = Safety.UNSAFE
        elif b > final:
            final = clean_ceil(b)
            notes.append(f"memory raised to the reservation {floor}")
    return final, safety


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
    for level, key, value in ((0, "deploy", {"resources": plan.add}), (1, "resources", plan.add)):
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
    edits: list[Edit] = []
    for block, want in plan.add.items():
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
    tables = _tables(options)
    for err in tables.errors:
        yield Fix(ID, err, project.docs[0].path, safety=Safety.DISPLAY_ONLY, error=True)
    chosen = targets(project, ID, options)
    plans: dict[str, _Plan] = {}
    wants: dict[str, tuple[Any, ...]] = {}  # what each service lacking limits should end up with
    for svc in chosen:
        got = _plan(project, svc, tables)
        if isinstance(got, Fix):
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
    for p in plans.values():
        if p.svc.name not in inherits:
            yield _fix(project, p, plans, inherits, names, tables, wants, reach, extending)


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
         tables: _Tables, wants: dict[str, tuple[Any, ...]], reach: dict[int, set[str]],
         extending: list[Service]) -> Fix:
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
        own = _plan(project, other, tables, shadow=True) if name in chosen else None
        if isinstance(own, _Plan) and own.reason is None:
            # Its limits are in legacy keys: its own deploy says the same, and shields it from ours.
            edits += [e for e in own.edits if e not in edits]
            shielded.append(name)
            continue
        why = ("opts out of this pass" if name not in chosen else "needs other figures" if name in wants
               else "has legacy limits that would then conflict")
        head = p.message.split(":", 1)[0]
        return Fix(ID, f"{head}, but its mapping is shared with {name!r}, which {why}: set deploy.resources by hand",
                   p.home.doc.path, line, col, safety=Safety.DISPLAY_ONLY)
    changes: tuple[ModelPath, ...] = tuple(("services", s, "deploy") for s in sorted(reached | {p.svc.name}))
    message = p.message
    if shielded:
        names = ", ".join(map(repr, shielded))
        one = len(shielded) == 1
        message += f"; {names}, which would inherit it, get{'s' if one else ''} {'its' if one else 'their'} own"
    return Fix(ID, message, p.home.doc.path, line, col, tuple(edits), safety, changes)
