"""The sizes a service asks for itself, and what says no fixed figure can cover it.

What the memory limit must reach (`Sizes.demands`, each with what says so):
- JVM heaps: `-Xmx` / `-XX:MaxHeapSize` (plus `-XX:MaxDirectMemorySize`) in the command or in
  `*_JAVA_OPTS`, `*_HEAP_OPTS`, `*_MEM`, `JAVA_TOOL_OPTIONS`... of the environment, the image's ENV
  included; a Flink process size (`*.memory.process.size` in `FLINK_PROPERTIES` or the command);
  a cache's `--maxmemory`, memcached's `-m`, Node's `--max-old-space-size` (`sizing.demands`);
- PostgreSQL: `shared_buffers` plus `max_connections` backends of `work_mem` each plus
  `maintenance_work_mem`, from `-c` flags, the mounted or copied postgresql.conf, or the file
  `-c config_file=` names; a setting the service leaves alone counts at its default (the image
  table's `settings`). Only where the service sets one of them itself;
- RabbitMQ: an absolute `vm_memory_high_watermark` (rabbitmq.conf, or the Erlang arguments of
  the environment) times the table's `watermark_factor`;
- workers that each may grow to a size the service sets: Celery's `--max-memory-per-child`
  (KiB) and uWSGI's `--reload-on-rss` (MB), for the main process and each of its workers.

`unread`: sizes set through a variable the stack does not resolve, or a configuration file it
names and does not hold. `unsized`: why no fixed figure covers what it needs (a process
supervisor running several servers in one container, a model server), or None.

Read through `facts.Facts.sizes`; `deploy-limits` keeps its limits above the demands.
"""

from __future__ import annotations

import functools
import math
import re
from typing import TYPE_CHECKING, Any

from e2i_fix import lazyre
from e2i_fix.records import NamedTuple

if TYPE_CHECKING:
    from e2i_fix.facts import Facts
    from e2i_fix.sizing import Demand

_PG_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_PG_FLAG = lazyre.compile(r"(?:^|\s)(?:-c\s*|--)([a-z_]+)=(\"[^\"]*\"|'[^']*'|\S+)")
# The unit a PostgreSQL memory setting takes without one (postgresql.org/docs/current/config-setting.html).
_PG_BASE = {"shared_buffers": 8192, "work_mem": 1024, "maintenance_work_mem": 1024}
_PG_MEMORY = ("shared_buffers", "max_connections", "work_mem", "maintenance_work_mem")


class Sizes(NamedTuple):
    demands: tuple[Demand, ...]  # what the memory limit must reach, each with what says so
    unread: tuple[str, ...]  # sizes set through a variable the stack does not resolve
    shared_buffers: int | None  # bytes
    max_connections: int | None
    workers: tuple[int, str] | None  # how many processes serve, and what says so
    watermark: str | None = None  # where an absolute RabbitMQ memory watermark is set
    unsized: str | None = None  # why no fixed figure covers what it needs
    # Why even a documented figure does not hold: the release sizes itself from the host's memory.
    blind: str | None = None


def read(f: Facts) -> Sizes:
    from e2i_fix import sizing

    family = _family(f)
    config = dict(f.config)
    config["command"] = f.argv or config.get("command")
    config.pop("entrypoint", None)
    env = _environment(f)
    demands, unread = sizing.demands(config, sizing.canon(family) if family else None, env, f.project.env)
    pg = _postgres(f, family)
    if pg.demand is not None:
        demands.append(pg.demand)
    unread += pg.unread
    watermark, need = _watermark(f, env, family)
    if need is not None:
        demands.append(need)
    workers = _workers(f)
    per_worker, why = _per_worker(f, env, workers)
    if per_worker is not None:
        demands.append(per_worker)
    elif why:
        unread.append(why)
    unsized = _unsized(f)
    grows, flag = f.knowledge.soft("grows"), f.knowledge.soft("grows_flag")
    if unsized is None and isinstance(grows, str) and not any(d.what.startswith(str(flag)) for d in demands):
        unsized = f"{grows}: set {flag} and a limit above it"
    return Sizes(tuple(demands), tuple(unread), pg.shared_buffers, pg.max_connections, workers, watermark, unsized,
                 _limit_blind(f, demands))


def _limit_blind(f: Facts, demands: list[Demand]) -> str | None:
    """Why a release of the image sizes itself from the host's memory, not the container's limit
    (the table's `limit_aware_from`: mongod before 3.6), where nothing it sets bounds it."""
    since = f.knowledge.soft("limit_aware_from")
    ref = f.image if not f.built else None
    if not isinstance(since, str) or ref is None or demands:
        return None
    m = re.match(r"(\d+)\.(\d+)", ref.tag or "")
    want = tuple(int(x) for x in since.split(".")[:2])
    if m is None or (int(m.group(1)), int(m.group(2))) >= want:
        return None
    return (f"{ref.path}:{ref.tag} sizes itself from the host's memory, not the container's limit (releases before "
            f"{since}: {f.knowledge.soft('limit_aware_source')})")


def _family(f: Facts) -> str | None:
    if f.knowledge.software:
        return f.knowledge.software[0].key.rsplit("/", 1)[-1]
    ref = f.base if f.built else f.image
    return ref.family if ref is not None else None


def _environment(f: Facts) -> dict[str, object]:
    """The image's ENV, then the service's env files and `environment` as written: a size set
    through `${VAR:-default}` is what the shell says at `up`, not known here."""
    env: dict[str, object] = dict(f.env)
    env.update({k: v for k, v in f.project.environment_of(f.config).items() if v is not None})
    return env


def pg_size(value: str, unit: int = 8192) -> int | None:
    """A PostgreSQL memory setting in bytes (`128MB`, `1GB`, `16384` in 8 kB blocks)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtT]?[bB])?\s*", value)
    if not m:
        return None
    n = int(m.group(1))
    return n * _PG_UNITS[m.group(2).lower()] if m.group(2) else n * unit


# --- PostgreSQL -----------------------------------------------------------------------------


class _Pg(NamedTuple):
    demand: Demand | None
    unread: list[str]
    shared_buffers: int | None
    max_connections: int | None


def _postgres(f: Facts, family: str | None) -> _Pg:
    from e2i_fix import sizing
    from e2i_fix.facts import configs
    from e2i_fix.facts import image as imagedata

    words = " ".join(f.argv)
    runs_postgres = bool(f.argv) and f.argv[0].rsplit("/", 1)[-1] in ("postgres", "postmaster")
    if not runs_postgres and (family is None or sizing.canon(family) != "postgres"):
        return _Pg(None, [], None, None)
    flags = {m.group(1): m.group(2).strip("'\"") for m in _PG_FLAG.finditer(words)}
    unread: list[str] = []
    where = "postgresql.conf"
    conf_file = flags.pop("config_file", None)
    if conf_file is not None:
        conf = configs.settings(f, "postgresql", conf_file) or _mounted_settings(f, conf_file)
        where = conf_file.rsplit("/", 1)[-1]
        if not conf:
            unread.append(f"config_file={conf_file} (not a file the stack holds)")
    else:
        conf = configs.settings(f, "postgresql")
    own = {**{k: v for k, v in conf.items() if k in _PG_MEMORY},
           **{k: v for k, v in flags.items() if k in _PG_MEMORY}}
    said = {k: ("-c" if k in flags else where) for k in own}
    entry = imagedata.table().exact.get("postgres")
    defaults: dict[str, str] = dict(entry.get("settings") or {}) if entry is not None else {}
    values: dict[str, int] = {}
    for k in _PG_MEMORY:
        raw = own.get(k, defaults.get(k))
        if raw is None:
            continue
        if "$" in raw:
            unread.append(f"{k}={raw}")
            continue
        got = (int(raw) if raw.strip().isdigit() else None) if k == "max_connections" else pg_size(raw, _PG_BASE[k])
        if got is not None:
            values[k] = got
    sb, mc = values.get("shared_buffers"), values.get("max_connections")
    shown_sb = sb if "shared_buffers" in own else None
    shown_mc = mc if "max_connections" in own else None
    if not own or unread or len(values) < len(_PG_MEMORY):
        return _Pg(None, unread, shown_sb, shown_mc)
    need = values["shared_buffers"] + values["max_connections"] * values["work_mem"] + values["maintenance_work_mem"]
    parts = [f"shared_buffers {_pg_shown(values['shared_buffers'])}",
             f"{values['max_connections']} connections x work_mem {_pg_shown(values['work_mem'])}",
             f"maintenance_work_mem {_pg_shown(values['maintenance_work_mem'])}"]
    sources = sorted(set(said.values()))
    what = " + ".join(parts) + f" ({', '.join(s if s != '-c' else '-c flags' for s in sources)})"
    return _Pg(sizing.Demand(need, what), [], shown_sb, shown_mc)


def _pg_shown(b: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if b % size == 0:
            return f"{b // size}{unit}"
    return f"{b}B"


def _mounted_settings(f: Facts, target: str) -> dict[str, str]:
    """The settings of the file bind-mounted at `target`, whatever its name."""
    from e2i_fix.facts import configs

    for m in f.mounts:
        if m.kind == "bind" and m.target == target and m.host is not None and configs.in_project(f, m.host):
            try:
                if m.host.is_file() and m.host.stat().st_size < 512 * 1024:
                    return configs.parse_settings(m.host.read_text("utf-8", "replace"), "postgresql")
            except OSError:
                return {}
    return {}


# --- RabbitMQ -------------------------------------------------------------------------------

_RABBIT_SIZE = lazyre.compile(r"\s*\"?(\d+(?:\.\d+)?)\s*([A-Za-z]*)\"?\s*")
_RABBIT_UNITS = {"": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4, "k": 1024, "m": 1024**2,
                 "g": 1024**3, "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3,
                 "gib": 1024**3, "ti": 1024**4, "tib": 1024**4}
_ERL_WATERMARK = lazyre.compile(r"vm_memory_high_watermark\s*\{\s*absolute\s*,\s*\"?([^}\"]+)\"?\s*\}")


def rabbit_size(value: str) -> int | None:
    """Bytes of a RabbitMQ memory value: `1073741824`, `1024MiB`, `4Gi`, `2GB` (decimal)."""
    m = _RABBIT_SIZE.fullmatch(value)
    if not m or m.group(2).lower() not in _RABBIT_UNITS:
        return None
    return int(float(m.group(1)) * _RABBIT_UNITS[m.group(2).lower()])


def _watermark(f: Facts, env: dict[str, object], family: str | None) -> tuple[str | None, Demand | None]:
    """Where an absolute memory watermark is set, and the memory it asks for."""
    from e2i_fix import sizing
    from e2i_fix.facts import configs

    if family is None or sizing.canon(family) != "rabbitmq":
        return None, None
    found: list[tuple[str, str]] = []
    conf = configs.settings(f, "rabbitmq")
    if "vm_memory_high_watermark.absolute" in conf:
        found.append((conf["vm_memory_high_watermark.absolute"], "vm_memory_high_watermark.absolute in rabbitmq.conf"))
    for name in ("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "RABBITMQ_SERVER_START_ARGS"):
        m = _ERL_WATERMARK.search(str(env.get(name) or ""))
        if m:
            found.append((m.group(1), f"vm_memory_high_watermark in {name}"))
    if not found:
        return None, None
    value, where = found[-1]
    b = rabbit_size(value) if "$" not in value else None
    if b is None:
        return where, None
    factor = f.knowledge.soft("watermark_factor") or 2
    return where, sizing.Demand(math.ceil(b * factor), f"{where.split(' in ')[0]} {value.strip()} x {factor:g}")


# --- workers --------------------------------------------------------------------------------

_WORKER_FLAGS = lazyre.compile(r"(?:^|\s)(?:--workers|-w|--concurrency|--processes|--num-workers)[= ]?\s*(\d+)\b")
_CELERY_C = lazyre.compile(r"\bcelery\b.*\s-c\s*(\d+)\b")
_UWSGI_P = lazyre.compile(r"\buwsgi\b.*\s-p\s*(\d+)\b")
_WORKER_ENV = ("WEB_CONCURRENCY", "GUNICORN_WORKERS", "UVICORN_WORKERS", "CELERY_WORKER_CONCURRENCY",
               "UWSGI_PROCESSES", "WORKERS", "MAX_WORKERS")
# A size each worker process may reach before it is replaced, as the service sets it: Celery's
# --max-memory-per-child in KiB (docs.celeryq.dev, workers guide, "Max memory per child"),
# uWSGI's --reload-on-rss in MB (uwsgi-docs.readthedocs.io, Options).
_PER_CHILD = (
    (lazyre.compile(r"--max-memory-per-child[= ]\s*(\S+)"), None, (1024, "KiB"), "--max-memory-per-child"),
    (lazyre.compile(r"--reload-on-rss[= ]\s*(\S+)"), "UWSGI_RELOAD_ON_RSS", (1024**2, "MB"), "--reload-on-rss"),
)


def _workers(f: Facts) -> tuple[int, str] | None:
    words = " ".join([*f.argv, *(s.text for s in f.scripts if s.path is None)])
    m = _WORKER_FLAGS.search(words) or _CELERY_C.search(words) or _UWSGI_P.search(words)
    if m:
        return int(m.group(1)), f"`{m.group(0).strip()}` in its command"
    for name in _WORKER_ENV:
        v = f.env.get(name)
        if v and v.strip().isdigit():
            return int(v), f"{name}={v.strip()}"
    return None


def _per_worker(f: Facts, env: dict[str, object],
                workers: tuple[int, str] | None) -> tuple[Demand | None, str | None]:
    """Workers x the size each may reach, for the main process and each worker."""
    from e2i_fix import sizing

    words = " ".join([*f.argv, *(s.text for s in f.scripts if s.path is None)])
    for pattern, var, unit, flag in _PER_CHILD:
        m = pattern.search(words)
        raw = m.group(1).strip("'\"") if m else (str(env.get(var) or "") if var else "")
        if not raw:
            continue
        said = f"{flag} {raw}" if m else f"{var}={raw}"
        if not raw.isdigit():
            return None, said
        if workers is None:
            return None, f"{said} with no worker count (the default follows the host's CPUs)"
        n = workers[0]
        return sizing.Demand((n + 1) * int(raw) * unit[0],
                             f"{said} {unit[1]} x {n} workers and the main process ({workers[1]})"), None
    return None, None


# --- what no fixed figure covers ------------------------------------------------------------


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], dict[str, Any]]:
    from e2i_fix.facts import image as imagedata

    data: dict[str, Any] = imagedata.section("sizing")
    return re.compile(data["supervisors"], re.MULTILINE), re.compile(data["model_servers"]), data


def _unsized(f: Facts) -> str | None:
    why = f.knowledge.soft("unsized")
    if isinstance(why, str):
        return why
    supervisors, models, data = _patterns()
    got = _found(f, models)
    if got is not None:
        return f"{data['model_servers_source']} (`{got[0].group(0)}` in {got[1]})"
    sup = all_in_one(f)
    if sup is not None:
        return f"{data['supervisors_source']} (`{sup[0]}` in {sup[1]})"
    return None


def all_in_one(f: Facts) -> tuple[str, str] | None:
    """The process supervisor the service runs (supervisord, s6's `/init`, runit, systemd...),
    and where it is written: an all-in-one container of several servers."""
    got = _found(f, _patterns()[0])
    if got is None:
        return None
    m, where = got
    return (m.group(1) if m.lastindex else m.group(0)).strip().strip("\"'"), where


def _found(f: Facts, rx: re.Pattern[str]) -> tuple[re.Match[str], str] | None:
    """The first match of `rx` in what the service runs, and where it is written: its entrypoint
    or its command (each named by where it comes from, `the ENTRYPOINT at Dockerfile:12`), the
    two read as one line, then the scripts they run."""
    parts = f.launch
    texts = list(parts)
    if len(parts) == 2:
        texts.append((f"{parts[0][0]} and {parts[1][0]}", f"{parts[0][1]} {parts[1][1]}"))
    texts += [(s.origin, _code(s.text)) for s in f.scripts]
    for where, text in texts:
        m = rx.search(text)
        if m:
            return m, where
    return None


def _code(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
