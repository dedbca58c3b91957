"""The sizes a service asks for itself: JVM heaps (`-Xmx`, `*_JAVA_OPTS`, `*_HEAP`), a cache's
`--maxmemory`, memcached's `-m`, Node's `--max-old-space-size`, PostgreSQL's `shared_buffers`
and `max_connections` (command `-c` flags or a mounted postgresql.conf), and worker counts
(`--workers`, `-w`, `WEB_CONCURRENCY`, `--concurrency`). Read through `facts.Facts.sizes`;
`deploy-limits` keeps its limits above them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from e2i_fix.facts import Facts
    from e2i_fix.sizing import Demand

_PG_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_PG_FLAG = re.compile(r"(?:^|\s)(?:-c\s*|--)([a-z_]+)=(\"[^\"]*\"|'[^']*'|\S+)")


class Sizes(NamedTuple):
    demands: tuple[Demand, ...]  # what the memory limit must reach, each with what says so
    unread: tuple[str, ...]  # sizes set through a variable the stack does not resolve
    shared_buffers: int | None  # bytes
    max_connections: int | None
    workers: tuple[int, str] | None  # how many processes serve, and what says so


def read(f: Facts) -> Sizes:
    from e2i_fix import sizing

    family = f.knowledge.software[0].key.rsplit("/", 1)[-1] if f.knowledge.software else None
    if family is None:
        ref = f.base if f.built else f.image
        family = ref.family if ref is not None else None
    config = dict(f.config)
    config["command"] = f.argv or config.get("command")
    config.pop("entrypoint", None)
    env: dict[str, object] = dict(f.env)
    demands, unread = sizing.demands(config, sizing.canon(family) if family else None, env)
    sb, mc = _postgres(f)
    return Sizes(tuple(demands), tuple(unread), sb, mc, _workers(f))


def pg_size(value: str, unit: int = 8192) -> int | None:
    """A PostgreSQL memory setting in bytes (`128MB`, `1GB`, `16384` in 8 kB blocks)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgGtT]?[bB])?\s*", value)
    if not m:
        return None
    n = int(m.group(1))
    return n * _PG_UNITS[m.group(2).lower()] if m.group(2) else n * unit


def _postgres(f: Facts) -> tuple[int | None, int | None]:
    from e2i_fix.facts import configs

    words = " ".join(f.argv)
    conf = configs.settings(f, "postgresql")
    for m in _PG_FLAG.finditer(words):
        conf[m.group(1)] = m.group(2).strip("'\"")
    sb = pg_size(conf["shared_buffers"]) if "shared_buffers" in conf and "$" not in conf["shared_buffers"] else None
    mc_raw = conf.get("max_connections", "")
    mc = int(mc_raw) if mc_raw.strip().isdigit() else None
    return sb, mc


_WORKER_FLAGS = re.compile(r"(?:^|\s)(?:--workers|-w|--concurrency|--processes|--num-workers)[= ]?\s*(\d+)\b")
_CELERY_C = re.compile(r"\bcelery\b.*\s-c\s*(\d+)\b")
_WORKER_ENV = ("WEB_CONCURRENCY", "GUNICORN_WORKERS", "UVICORN_WORKERS", "CELERY_WORKER_CONCURRENCY",
               "WORKERS", "MAX_WORKERS")


def _workers(f: Facts) -> tuple[int, str] | None:
    words = " ".join([*f.argv, *(s.text for s in f.scripts if s.path is None)])
    m = _WORKER_FLAGS.search(words) or _CELERY_C.search(words)
    if m:
        return int(m.group(1)), f"`{m.group(0).strip()}` in its command"
    for name in _WORKER_ENV:
        v = f.env.get(name)
        if v and v.strip().isdigit():
            return int(v), f"{name}={v.strip()}"
    return None
