"""Sizing: Compose sizes and CPU counts, what a service sizes itself to (heap flags, a cache's
`--maxmemory`, memcached's `-m`), the table of figures (configuration over the built-in
`data/deploy-limits.json`) and observed usage (`docker stats` JSON).

The built-in figures of images come from the image table (`data/images.toml`); the roles and
the default from `data/deploy-limits.json`. The `deploy-limits` pass decides where figures go;
this module says what they are.
"""

from __future__ import annotations

import math
import os
import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix import lazyre
from e2i_fix.errors import InputError
from e2i_fix.project import Project, Service, command_text, role
from e2i_fix.records import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

    from e2i_fix.facts import Facts
    from e2i_fix.facts.image import ImageRef, Knowledge
    from e2i_fix.facts.sizes import Sizes

KiB, MiB, GiB = 1024, 1024**2, 1024**3
_DATA_FILE = Path(__file__).resolve().parent / "data" / "deploy-limits.json"
_DATA: dict[str, Any] = {}



# Why a service gets no memory figure at all when nothing about it can be read.
NO_FIGURES = ("the tool has no figures for its image, and it has no role, no observed usage and no size it sets "
              "itself")

def table_data() -> dict[str, Any]:
    """The built-in table, read on first use."""
    if not _DATA:
        from e2i_fix import datafiles

        _DATA.update(datafiles.load(_DATA_FILE.name))
    return _DATA


def canon(family: str) -> str:
    """The family whose software an image family runs, as the image table names it
    (`valkey` -> `redis`, `cp-kafka` -> `cp-kafka`'s entry)."""
    from e2i_fix.facts import image as imagedata

    entry = imagedata.table().family.get(family)
    return entry.key.rsplit("/", 1)[-1] if entry is not None else family


def heap_factor(family: str | None) -> float:
    from e2i_fix.facts import image as imagedata

    entry = imagedata.table().family.get(family) if family else None
    factor = entry.get("heap_factor") if entry is not None else None
    return float(factor) if factor is not None else 1.5


# --- sizes ----------------------------------------------------------------------------------

_COMPOSE_SIZE = lazyre.compile(r"(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?")
UNIT = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": 1024**4, "p": 1024**5}


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
    return int(float(m.group(1)) * UNIT[(m.group(2) or "").lower()])


def format_size(b: int) -> str:
    for unit, size in (("G", GiB), ("M", MiB), ("K", KiB)):
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
    mib = math.ceil(b / MiB)
    small = next((s for s in _LADDER if s >= mib), None)
    return small * MiB if small is not None else math.ceil(b / GiB) * GiB


def half_size(b: int) -> int | None:
    half = b // 2 // MiB * MiB
    return half or None


# --- what a service asks for ----------------------------------------------------------------

_REDIS_UNIT = {"": 1, "k": 1000, "kb": KiB, "m": 1000**2, "mb": MiB, "g": 1000**3, "gb": GiB}
_MAXMEMORY = lazyre.compile(r"--maxmemory(?![\w-])(?:=|\s+)(\S+)")
_INNODB_POOL = lazyre.compile(r"--innodb[-_]buffer[-_]pool[-_]size(?:=|\s+)(\S+)")
_EXTRA_FLAGS = lazyre.compile(r"(?:^|_)EXTRA_FLAGS$")
_XMX = lazyre.compile(r"(-Xmx|-XX:MaxHeapSize=)(\S+)")
_JVM_SIZE = lazyre.compile(r"(\d+)([kKmMgGtT]?)")
_OLD_SPACE = lazyre.compile(r"--max-old-space-size(?:=|\s+)(\S+)")
_JVM_ENV = lazyre.compile(r"(?:^|_)(?:JAVA_OPTS|JAVA_OPTIONS|JAVA_TOOL_OPTIONS|HEAP_OPTS|JVM_OPTS|JVMFLAGS|JVM_ARGS|JAVAOPTS"
                      r"|VM_PARAMS|HEAP|MEM)$")
# A heap given as a bare size (`SOLR_HEAP=512m`, `ES_HEAP_SIZE=2g`, `*_JAVA_MEM=1g`): the launch
# script passes it to -Xmx. A bare number has no unit the tool can tell, so it is not read.
_HEAP_ENV = lazyre.compile(r"(?:^|_)(?:HEAP|HEAP_SIZE|HEAPSIZE|JAVA_MEM)$")
_DIRECT = lazyre.compile(r"-XX:MaxDirectMemorySize=(\S+)")
# Flink's whole-process sizes, in FLINK_PROPERTIES (appended to its configuration by the image's
# entrypoint) or `-D key=value` on the command line.
_FLINK = lazyre.compile(r"\b((?:jobmanager|taskmanager)\.memory\.process\.size)\s*[:=]\s*['\"]?(\d+(?:\.\d+)?\s*[a-zA-Z]*)")
_FLINK_UNIT = {"": 1, "b": 1, "bytes": 1, "k": KiB, "kb": KiB, "m": MiB, "mb": MiB, "g": GiB, "gb": GiB, "t": 1024**4,
               "tb": 1024**4}
# memcached's item memory in MB: `-m 64`, `-m64`, `--memory-limit=64` (newer ones take k/m/g).
_MEMCACHED = lazyre.compile(r"(?:^|\s)(?:-m\s*|--memory-limit(?:=|\s+))(\S+)")
_INTERP = lazyre.compile(r"(?<!\$)\$(?:\{|[A-Za-z_])")
_WT_CACHE = lazyre.compile(r"--wiredTigerCacheSizeGB(?:=|\s+)(\S+)")


class Demand(NamedTuple):
    need: int  # bytes the limit must reach
    what: str  # for the message: "-Xmx512m in ES_JAVA_OPTS x 2"
    # Set through a variable, read with the value `.env` or the written default gives it here:
    # `${ELASTIC_MEMORY_SIZE} = 4G (.env)`. The shell decides at `up`.
    variable: str | None = None
    # A floor, not a size of the whole service (`shm_size`): it raises a limit, and vouches for
    # no figure.
    floor: bool = False


def _jvm_bytes(tok: str) -> int | None:
    sm = _JVM_SIZE.fullmatch(tok)
    return int(sm.group(1)) * UNIT[sm.group(2).lower()] if sm else None


def _redis_bytes(tok: str) -> int | None:
    m = re.fullmatch(r"(\d+)([kmg]b?)?", tok.lower())
    return int(m.group(1)) * _REDIS_UNIT[m.group(2) or ""] if m else None


def _read(tok: str, label: str, variables: dict[str, str] | None, unread: list[str]) -> tuple[str, str | None] | None:
    """`tok` as Compose gives it here, its variables from `variables` (the stack's `.env`) or the
    defaults written with them (`${POOL:-2048M}`), and what says so where a variable gave it
    (`label` and the value's source); None, with `label` noted unread, where a variable has
    neither (its value is the shell's)."""
    from e2i_fix.project import _VAR, interpolate

    if not _INTERP.search(tok):
        return tok, None
    said: list[str] = []
    for m in _VAR.finditer(tok):
        name = m.group("name") or m.group("bare")
        if variables is not None and name in variables:
            said.append(f"{name} = {variables[name]} in .env")
        elif m.group("op") in (":-", "-") and m.group("arg"):
            said.append(f"{name} defaults to {m.group('arg')}")
        else:
            unread.append(label)
            return None
    return interpolate(tok, variables or {}), f"{label} ({', '.join(said)})"


def demands(config: dict[str, Any], family: str | None,
            environment: dict[str, Any] | None = None,
            variables: dict[str, str] | None = None) -> tuple[list[Demand], list[str]]:
    """What the service sizes itself to, and the sizes it sets through a `${VAR}` that has no
    value here (unreadable). A variable `.env` (`variables`) or a written default gives a value
    to is read with it, and the demand says so."""
    out: list[Demand] = []
    unread: list[str] = []
    cmd = command_text(config)
    env = config.get("environment") if environment is None else environment
    env = env if isinstance(env, dict) else {}

    # The valkey image appends $VALKEY_EXTRA_FLAGS to the server's arguments (bitnami's images
    # read REDIS_EXTRA_FLAGS / VALKEY_EXTRA_FLAGS alike): a --maxmemory there is the service's own.
    flags = " ".join(str(v) for k, v in env.items() if v is not None and _EXTRA_FLAGS.search(k))
    _flag_sizes(_MAXMEMORY, f"{cmd} {flags}" if flags else cmd, _redis_bytes, "--maxmemory", out, unread, variables)

    jvm = [("the command", cmd)] + [(k, str(v)) for k, v in env.items() if v is not None and _JVM_ENV.search(k)]
    for where, text in jvm:
        factor = 2.0 if where in ("ES_JAVA_OPTS", "OPENSEARCH_JAVA_OPTS") else heap_factor(family)
        through: str | None = None
        if where != "the command" and text.lstrip().startswith("$") and _INTERP.match(text.lstrip()):
            whole = _read(text.strip(), f"{where}={text.strip()}", variables, unread)
            if whole is None:
                continue
            text, through = whole
        # The JVM takes the last -Xmx it is given; direct memory (-XX:MaxDirectMemorySize) is
        # outside the heap and comes on top of it.
        heap: tuple[int, str, str | None] | None = None
        for m in _XMX.finditer(text):
            tok = m.group(2).strip("'\"")
            got = _read(tok, f"{m.group(1)}{tok} in {where}", variables, unread)
            if got is None:
                heap = None
                continue
            tok, said = got[0], got[1] or through
            b = _jvm_bytes(tok)
            if b is not None:
                heap = (b, f"{m.group(1)}{tok}", said)
        if heap is None:
            continue
        need, what = math.ceil(heap[0] * factor), f"{heap[1]} in {where} x {factor:g}"
        direct = _DIRECT.search(text)
        b = _jvm_bytes(direct.group(1).strip("'\"")) if direct else None
        if direct and b is not None:
            need += b
            what = f"{heap[1]} x {factor:g} + {direct.group(0)} in {where}"
        out.append(Demand(need, what, heap[2]))

    for k, v in env.items():
        text = str(v).strip().strip("'\"") if v is not None else ""
        if not _HEAP_ENV.search(k) or not text or "-X" in text:
            continue
        got = _read(text, f"{k}={text}", variables, unread)
        if got is None:
            continue
        text, said = got
        sm = re.fullmatch(r"(\d+)([kKmMgGtT])", text)
        if sm:
            factor = 2.0 if k.startswith(("ES_", "OPENSEARCH_")) else heap_factor(family)
            b = int(sm.group(1)) * UNIT[sm.group(2).lower()]
            out.append(Demand(math.ceil(b * factor), f"{k}={text} x {factor:g}", said))

    flink = [("the command", cmd)] + ([("FLINK_PROPERTIES", str(env["FLINK_PROPERTIES"]))]
                                      if env.get("FLINK_PROPERTIES") else [])
    for where, text in flink:
        for m in _FLINK.finditer(text):
            sm = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", m.group(2).strip())
            unit = _FLINK_UNIT.get(sm.group(2).lower()) if sm else None
            if sm and unit:
                out.append(Demand(math.ceil(float(sm.group(1)) * unit), f"{m.group(1)} {m.group(2).strip()} in {where}"))

    node = [("the command", cmd)] + ([("NODE_OPTIONS", str(env["NODE_OPTIONS"]))] if env.get("NODE_OPTIONS") else [])
    for where, text in node:
        for m in _OLD_SPACE.finditer(text):
            raw = m.group(1).strip("'\"")
            got = _read(raw, f"--max-old-space-size {raw} in {where}", variables, unread)
            if got is None:
                continue
            tok, said = got
            if tok.isdigit() and int(tok):
                out.append(Demand(math.ceil(int(tok) * MiB * 1.5), f"--max-old-space-size={tok} in {where} x 1.5", said))
    if family and canon(family) == "memcached" or re.search(r"(?:^|[\s/])memcached(?:\s|$)", cmd):
        _flag_sizes(_MEMCACHED, cmd, _memcached_bytes, "memcached -m", out, unread, variables)
    # MongoDB: a WiredTiger cache set on the command line. Its default is half of (the memory
    # less 1 GB) (mongodb.com/docs/manual/core/wiredtiger/#memory-use): a set cache needs twice
    # it plus 1 GB, the rest being connections, aggregations and index builds.
    _flag_sizes(_WT_CACHE, cmd, _gb_bytes, "--wiredTigerCacheSizeGB", out, unread, variables,
                lambda b: 2 * b + GiB, "x 2 + 1G")
    # MySQL and MariaDB: the InnoDB buffer pool is most of what the server takes, the rest its
    # connections' buffers (the buffer pool is sized at 50 to 75 % of the memory given to the
    # server: dev.mysql.com/doc/refman/8.4/en/innodb-buffer-pool-resize.html).
    _flag_sizes(_INNODB_POOL, cmd, _jvm_bytes, "innodb_buffer_pool_size", out, unread, variables)
    # /dev/shm is a tmpfs whose pages count against the container's memory limit (Postgres's
    # dynamic shared memory, a browser's or a trainer's shared buffers): a service that asks for
    # a large one uses it, and needs as much again for its processes.
    shm = config.get("shm_size")
    said = None
    if isinstance(shm, str):
        got = _read(shm, f"shm_size {shm}", variables, unread)
        shm, said = got if got is not None else (None, None)
    if shm is not None and (b := parse_size(shm)):
        out.append(Demand(math.ceil(b * 2), f"shm_size {shm} x 2 (/dev/shm counts against the memory limit)", said,
                          floor=True))
    return out, list(dict.fromkeys(unread))


def _flag_sizes(rx: re.Pattern[str], text: str, parse: Callable[[str], int | None], name: str,
                out: list[Demand], unread: list[str], variables: dict[str, str] | None = None,
                need: Callable[[int], float] = lambda b: b * 1.5, how: str = "x 1.5") -> None:
    """Each size `rx` finds in `text` (its first group), as a need (`need` of it: x 1.5 unless
    said); one written through a variable with no value here is unread."""
    for m in rx.finditer(text):
        raw = m.group(1).strip("'\"")
        got = _read(raw, f"{name} {raw}", variables, unread)
        if got is None:
            continue
        tok, said = got
        b = parse(tok)
        if b:
            out.append(Demand(math.ceil(need(b)), f"{name} {tok} {how}", said))


def _gb_bytes(tok: str) -> int | None:
    """A size in gigabytes, fractions too (`0.5`)."""
    try:
        return int(float(tok) * GiB)
    except ValueError:
        return None


def _memcached_bytes(tok: str) -> int | None:
    """memcached's `-m`: megabytes, or a size with a unit in newer releases."""
    sm = re.fullmatch(r"(\d+)([kKmMgG]?)", tok)
    return int(sm.group(1)) * UNIT[(sm.group(2) or "m").lower()] if sm else None


# --- the profile table ----------------------------------------------------------------------


class Entry(NamedTuple):
    cpus: Decimal | None
    memory: int | None
    label: str  # for the message: "role api (generic profile)"
    source: str  # for the machine-readable provenance
    safe: bool  # its figures may be applied by the default run
    floor: bool = False  # a documented need: no other figure goes below it
    kind: str = "config"  # config, documented, derivative, generic, role, default


class Figure(NamedTuple):
    value: Any  # Decimal (cpus) or int (bytes)
    label: str
    source: str
    safe: bool
    kind: str = "config"  # where it comes from: config, usage, documented, derivative, generic, role, default


class Profile(NamedTuple):
    """The figures the table gives one service, and what they were matched on."""

    cpu: Figure | None  # None: no CPU figure is known for it (only the configuration gives one)
    memory: Figure
    floor: Figure | None  # the documented memory need of its image, a floor for observed usage
    image: str | None  # the repository they were matched on: "ghcr.io/immich-app/postgres"
    family: str | None  # the table's name for its software: "postgres"
    # The image the service pulls when it is built elsewhere and the table knows nothing of it
    # ("flowiseai/flowise-worker:2"): a role's figure says nothing of what that image runs.
    pulled: str | None = None


_TABLES: dict[str, Tables] = {}


def tables(options: dict[str, Any], defaults: dict[str, Any]) -> Tables:
    """The tables for these options, built once per distinct configuration (every stack of a
    run usually shares one)."""
    key = repr([(k, options.get(k)) for k in defaults])
    got = _TABLES.get(key)
    if got is None:
        got = _TABLES[key] = Tables(options, defaults)
    return got


class Tables:
    """The options, checked, with the built-in table under them."""

    def __init__(self, options: dict[str, Any], defaults: dict[str, Any]) -> None:
        self.errors: list[str] = []
        self.defaults = defaults
        data = table_data()
        self.services = self._table(options.get("services"), "services", str)
        self.images = self._table(options.get("images"), "images", str.lower)
        self.roles = self._table(options.get("roles"), "roles", str)
        self.default = self._entry(options.get("default") or {}, "default", "config default")
        self.builtin_images = _builtin_images(self)
        self.builtin_roles = {k: self._builtin(v, f"role {k}", False)._replace(kind="role")
                              for k, v in data["roles"].items()}
        self.builtin_default = self._builtin(data["default"], "", False)._replace(kind="default")
        self.headroom = self._number(options, "headroom", 1)
        self.overcommit = self._number(options, "overcommit", 1)
        self.host_cpus = parse_cpus(options.get("host-cpus")) if options.get("host-cpus") is not None else None
        if options.get("host-cpus") is not None and not self.host_cpus:
            self.errors.append(f"option host-cpus: {options['host-cpus']!r} is not a number of CPUs")
        hm = options.get("host-memory")
        self.host_memory = parse_size(hm) if isinstance(hm, str) else None
        if hm is not None and not self.host_memory:
            self.errors.append(f"option host-memory: {hm!r} is not a size like \"16G\"")
        self.shared = options.get("shared-profiles", True)
        if not isinstance(self.shared, bool):
            self.errors.append("option shared-profiles must be true or false")
            self.shared = False
        n = options.get("min-shared", 3)
        self.min_shared = n if isinstance(n, int) and not isinstance(n, bool) and n >= 2 else 3
        if self.min_shared != n:
            self.errors.append(f"option min-shared: {n!r} is not a whole number of 2 or more")
        self.reservations = options.get("reservations", False)
        if not isinstance(self.reservations, bool):
            self.errors.append("option reservations must be true or false")
            self.reservations = False
        u = options.get("usage")
        self.usage_path = u if isinstance(u, str) and u else None
        if u is not None and self.usage_path is None:
            self.errors.append("option usage must be the path of a `docker stats --format json` file")

    def _number(self, options: dict[str, Any], name: str, least: float) -> float:
        v = options.get(name, self.defaults[name])
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= least:
            return float(v)
        self.errors.append(f"option {name}: {v!r} is not a number of {least:g} or more")
        return float(self.defaults[name])

    @staticmethod
    def _builtin(v: dict[str, Any], what: str, documented: bool) -> Entry:
        if not what:
            label = "the generic default"
        else:
            label = f"{what} ({'documented needs' if documented else 'generic profile'})"
        return Entry(parse_cpus(v["cpus"]), parse_size(v["memory"]), label, f"{label}: {v['source']}",
                     documented, documented, "documented" if documented else "generic")

    def _table(self, value: Any, name: str, key: Any) -> dict[str, Entry]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.errors.append(f"option {name} must be a table of name = {{cpus = ..., memory = ...}}")
            return {}
        out = {}
        for k, v in value.items():
            e = self._entry(v, f"{name}.{k}", f"config {name}.{k}")
            if e is not None:
                out[key(str(k))] = e
        return out

    def _entry(self, v: Any, where: str, label: str) -> Entry | None:
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
        return Entry(cpus, memory, label, label, True)

    def profile(self, svc: Service, f: Facts | None = None) -> Profile:
        """The CPU and memory figures for `svc`, first match wins (the configuration's service,
        its images, the built-in image table, the role, the default), and the documented memory
        need of its image (a floor for observed usage), if the table has one. The image is the
        one facts read (`f`: variables through `.env`, the image that runs); a documented figure
        holds only for the image whose configuration it documents: one matched through its
        family is a derivative's, never safe."""
        chain: list[Entry] = []
        if svc.name in self.services:
            chain.append(self.services[svc.name])
        floor: Figure | None = None
        matched: tuple[str | None, str | None] = (None, None)
        for ref, runs in _images(svc, f):
            if ref is None:
                continue
            keys = tuple(dict.fromkeys((ref.repository, ref.path, ref.family)))
            names = (*keys, canon(ref.family))
            found = [self.images[k] for k in names if k in self.images]
            knowledge = imagedata_knowledge(ref)
            entry = next((e for e in knowledge.software if e.key in self.builtin_images), None)
            if entry is not None:
                builtin = self.builtin_images[entry.key]
                if builtin.kind == "documented" and not (runs and _documents(entry, knowledge, ref)):
                    name = builtin.label.split(" ", 2)[1]
                    label = f"image {name} (documented needs of {name} itself)"
                    builtin = builtin._replace(label=label, source=builtin.source.replace(builtin.label, label, 1),
                                               safe=False, floor=False, kind="derivative")
                found.append(builtin)
            if found or knowledge.software:
                matched = (ref.repository, knowledge.software[0].key.rsplit("/", 1)[-1] if knowledge.software else None)
            if found:
                chain.extend(found)
                doc = next((e for e in found if e.floor and e.memory), None)
                if doc is not None:
                    floor = Figure(doc.memory, doc.label, doc.source, True, "documented")
                break
        pulled = None
        first = _images(svc, f)[0]
        if first[1] and first[0] is not None and matched == (None, None):
            pulled = first[0].path
        r = role_of(svc, f)
        if r:
            chain += [t[r] for t in (self.roles, self.builtin_roles) if r in t]
        chain += [e for e in (self.default, self.builtin_default) if e is not None]
        # CPU figures only from the configuration, its first entry that has one: a built-in one
        # is no figure known for this service (a guessed CPU limit throttles it, and one above
        # the host's count makes Docker refuse the container).
        c = next((e for e in chain if e.cpus is not None and e.kind == "config"), None)
        m = next(e for e in chain if e.memory is not None)
        return Profile(Figure(c.cpus, c.label, c.source, c.safe, c.kind) if c is not None else None,
                       Figure(m.memory, m.label, m.source, m.safe, m.kind), floor, *matched, pulled)


def image_keys(image: str | None) -> tuple[str, ...]:
    """`${REG:-ghcr.io}/bitnami/kafka:3.7` -> ("bitnami/kafka", "kafka"): the names a
    configuration's `images` table may use for it; () when unknown."""
    from e2i_fix.facts import image as imagedata

    ref = imagedata.parse(image)
    if ref is None:
        return ()
    return (ref.path, ref.family) if ref.path != ref.family else (ref.family,)


def role_of(svc: Service, f: Facts | None) -> str | None:
    """`worker` or `api` from what runs (the compose command, else the image's ENTRYPOINT and
    CMD as facts read them: a Dockerfile's `CMD gunicorn ...`), else from the service name."""
    from e2i_fix.project import _API_CMD, _WORKER_CMD

    if f is not None and f.argv and not command_text(svc.config):
        words = " ".join(f.argv)
        if _WORKER_CMD.search(words):
            return "worker"
        if _API_CMD.search(words):
            return "api"
    return role(svc)


def imagedata_knowledge(ref: ImageRef) -> Knowledge:
    from e2i_fix.facts import image as imagedata

    return imagedata.knowledge(ref)


def _images(svc: Service, f: Facts | None) -> list[tuple[ImageRef | None, bool]]:
    """The images a service's figures are looked up by, in order, each with whether it is the
    image that runs as the table knows it: its `image:`, then the image its Dockerfile stages
    start from (the one that runs when the stages only add files to it)."""
    from e2i_fix.facts import image as imagedata

    if f is None:
        root = svc.build.stage.root_image if svc.build and svc.build.stage else None
        return [(imagedata.parse(svc.image), svc.build is None), (imagedata.parse(root), False)]
    out: list[tuple[ImageRef | None, bool]] = [(f.image, not f.built)]
    if f.built:
        out.append((f.base, f.runs_image is not None and f.runs_image == f.base))
    return out


def _documents(entry: Any, knowledge: Knowledge, ref: ImageRef) -> bool:
    """Whether the entry's documented figure is about this image's own configuration: the image
    itself (its key or `images`), narrowed by `limits_images` where the entry names them."""
    if knowledge.image is None or knowledge.image is not entry:
        return False
    only = knowledge.image.get("limits_images")
    return only is None or ref.repository in only or ref.path in only


def _builtin_images(tables: Tables) -> dict[str, Entry]:
    """The figures of the image table (`data/images.toml`), by entry."""
    from e2i_fix.facts import image as imagedata

    out: dict[str, Entry] = {}
    seen: set[int] = set()
    for e in imagedata.table().exact.values():
        if id(e) in seen or e.get("memory") is None:
            continue
        seen.add(id(e))
        fields = {"cpus": e.get("cpus"), "memory": e.get("memory"), "source": e.get("limits_source")}
        # Named by its software: `confluentinc/cp-kafka` is "kafka", the first name of its family.
        family = e.get("family")
        name = family[0] if family and "/" in e.key else e.key.rsplit("/", 1)[-1]
        out[e.key] = tables._builtin(fields, f"image {name}", bool(e.get("documented")))
    return out


# --- observed usage -------------------------------------------------------------------------

_STAT_SIZE = lazyre.compile(r"(\d+(?:\.\d+)?)\s*([kKMGTP]?)(i?)B")
_STAT_POWER = {"": 0, "k": 1, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}
_USAGE: dict[str, tuple[float, dict[str, list[tuple[int, Decimal]]]]] = {}


def _stat_size(text: str) -> int | None:
    m = _STAT_SIZE.fullmatch(text.strip())
    if not m:
        return None
    return int(Decimal(m.group(1)) * (1024 if m.group(3) else 1000) ** _STAT_POWER[m.group(2)])


def read_usage(path: str) -> dict[str, list[tuple[int, Decimal]]]:
    """The samples of a `docker stats --no-stream --format json` file (or `docker compose
    stats`, or several runs of either appended), per container name: (memory in bytes, CPUs).
    Read once per run. Raises InputError with the line of the first bad entry."""
    try:
        mtime = os.stat(path).st_mtime
        if path in _USAGE and _USAGE[path][0] == mtime:
            return _USAGE[path][1]
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the usage file: {e}") from None
    import json

    out: dict[str, list[tuple[int, Decimal]]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"not a JSON object ({e.msg}): expected `docker stats --no-stream --format json` "
                             "output, one object a line", n, e.colno) from None
        if not isinstance(rec, dict):
            raise InputError("not a JSON object: expected one `docker stats --format json` object a line", n, 1)
        name = rec.get("Name") or rec.get("Container")
        if not isinstance(name, str) or not name:
            raise InputError("no container Name in this sample", n, 1)
        mem, cpu = rec.get("MemUsage"), rec.get("CPUPerc")
        if mem in ("--", "0B / 0B") or cpu == "--":
            continue  # a container that is not running: no sample
        used = _stat_size(mem.split("/", 1)[0]) if isinstance(mem, str) else None
        if used is None:
            raise InputError(f"MemUsage {mem!r} of {name!r} is not a size like \"12.5MiB / 1GiB\"", n, 1)
        try:
            cores = Decimal(cpu.strip().removesuffix("%")) / 100 if isinstance(cpu, str) else None
        except InvalidOperation:
            cores = None
        if cores is None or not cores.is_finite() or cores < 0:
            raise InputError(f"CPUPerc {cpu!r} of {name!r} is not a percentage like \"12.5%\"", n, 1)
        out.setdefault(name.lstrip("/"), []).append((used, cores))
    _USAGE[path] = (mtime, out)
    return out


class Observed(NamedTuple):
    peak_memory: int
    typical_memory: int  # the median sample
    peak_cpus: Decimal
    typical_cpus: Decimal
    samples: int


def project_name(project: Project) -> str | None:
    """The name Compose gives the project: COMPOSE_PROJECT_NAME, `name:`, else the folder's."""
    raw = project.env.get("COMPOSE_PROJECT_NAME") or project.model(tuple(range(len(project.docs)))).get("name")
    if raw is None:
        raw = project.folder.resolve().name
    if not isinstance(raw, str) or "$" in raw:
        return None
    return re.sub(r"[^a-z0-9_-]", "", raw.lower()) or None


def observed(project: Project, samples: dict[str, list[tuple[int, Decimal]]]) -> tuple[dict[str, Observed], list[str]]:
    """Each service's figures from the samples of its containers (`<project>-<service>-<n>`,
    `<project>_<service>_<n>` or its `container_name`), and the containers that match no
    service of the stack."""
    services = project.services
    by_name = {str(s.config["container_name"]): s.name for s in services.values()
               if isinstance(s.config.get("container_name"), str)}
    prefix = project_name(project)
    found: dict[str, list[tuple[int, Decimal]]] = {}
    unknown: list[str] = []

    def split(container: str) -> tuple[str, str] | None:
        """`shop-web-1` -> ("shop", "web") for a service of this stack; None otherwise."""
        m = re.fullmatch(r"(.+)[-_]\d+", container)
        if not m:
            return None
        base = m.group(1)
        for sep in "-_":
            if prefix and base.startswith(prefix + sep) and base[len(prefix) + 1 :] in services:
                return prefix, base[len(prefix) + 1 :]
        for i, ch in enumerate(base):  # the longest service name that ends it
            if ch in "-_" and i and base[i + 1 :] in services:
                return base[:i], base[i + 1 :]
        return None

    parsed = {c: split(c) for c in samples if c not in by_name}
    # Containers under this project's name; else (a stack started with `-p other`) under the one
    # name most of this stack's services have containers under: never a few services that
    # another stack of the same file happens to share.
    covered: dict[str, set[str]] = {}
    for sp in parsed.values():
        if sp is not None:
            covered.setdefault(sp[0], set()).add(sp[1])
    chosen = prefix if prefix in covered else None
    if chosen is None and covered:
        best = max(covered, key=lambda k: len(covered[k]))
        if len(covered[best]) >= 2 and 2 * len(covered[best]) > len(services):
            chosen = best
    for container, got in samples.items():
        svc = by_name.get(container)
        if svc is None:
            sp = parsed.get(container)
            svc = sp[1] if sp is not None and sp[0] == chosen else None
        if svc is None:
            unknown.append(container)
        else:
            found.setdefault(svc, []).extend(got)
    del split
    out = {}
    for name, got in found.items():
        mems = sorted(m for m, _ in got)
        cpus = sorted(c for _, c in got)
        out[name] = Observed(mems[-1], mems[len(mems) // 2], cpus[-1], cpus[len(cpus) // 2], len(got))
    return out, sorted(unknown) if found else []  # a file of other stacks only: nothing to say


# --- the memory limit -----------------------------------------------------------------------


def human(b: int) -> str:
    """`10.5G`, `768M`: sizes in messages."""
    if b >= GiB:
        return f"{b / GiB:.1f}".removesuffix(".0") + "G"
    return f"{math.ceil(b / MiB)}M"


def ceil_step(d: Decimal, step: str) -> Decimal:
    q = Decimal(step)
    return max(q, (d / q).to_integral_value(ROUND_CEILING) * q)


def from_usage(obs: Observed, tables: Tables, floor: Figure | None) -> tuple[Figure, Figure]:
    """The limits a service's observed peak asks for, never below its image's documented need."""
    h = tables.headroom
    where = f"{os.path.basename(tables.usage_path or '')} ({obs.samples} sample{'s' if obs.samples != 1 else ''})"
    cpus = ceil_step(obs.peak_cpus * Decimal(str(h)), "0.25")
    peak_c = format_cpus(obs.peak_cpus.quantize(Decimal("0.01"), ROUND_CEILING))
    cpu_label = f"observed usage (peak {peak_c} CPUs x {h:g})"
    cpu_fig = Figure(cpus, cpu_label, f"{cpu_label}: {where}", True, "usage")
    memory = clean_ceil(math.ceil(obs.peak_memory * h))
    peak_m = human(obs.peak_memory)
    mem_label = f"observed usage (peak {peak_m} x {h:g})"
    mem_fig = Figure(memory, mem_label, f"{mem_label}: {where}", True, "usage")
    if floor is not None and floor.value > memory:
        mem_fig = Figure(floor.value, floor.label, f"{floor.source} (above the observed peak {peak_m} x {h:g})", True,
                         "usage")
    return cpu_fig, mem_fig


def pulled_reason(image: str, fig: Figure, their: bool = False) -> str:
    """Why a role's figure is not applied to an image built elsewhere."""
    return (f"{'their' if their else 'its'} image {image} is built elsewhere and the tool has no figures for it: the "
            f"generic {fig.label.split()[1]} figure ({human(int(fig.value))}) says nothing of what that image runs")


class Memory(NamedTuple):
    """The memory limit of one service, or why no figure can be trusted with it."""

    value: int | None  # bytes; None: a finding (`unknown` says why)
    source: str
    safe: bool
    notes: tuple[str, ...]
    unknown: str | None = None
    pulled: bool = False  # `unknown` is about an image built elsewhere (`pulled_reason`)


_TRUSTED = ("config", "usage", "documented")


def memory(profile: Profile, fig: Figure, sizes: list[Sizes], reservation: Any) -> Memory:
    """The memory limit from `fig`, raised above what the service sizes itself to in every
    variant (`sizes`) and above its memory reservation. A figure the vendor documents for the
    image that runs, the configuration's or observed usage is trusted; a generic one (a profile
    of that kind of image, a role) only where something the service says about itself checks
    it, else the fix is unsafe. No fix at all where nothing can be trusted to cover the need:
    the generic default with nothing the service says about itself, a generic figure for what
    no fixed figure covers (a process supervisor, a model server), a documented figure for a
    derivative of the image it documents."""
    notes: list[str] = []
    safe = True
    asked = [d for s in sizes for d in s.demands]
    unread = list(dict.fromkeys(u for s in sizes for u in s.unread))
    unsized = next((s.unsized for s in sizes if s.unsized), None)
    final = int(fig.value)
    source = fig.source
    top = max(asked, key=lambda d: d.need, default=None)
    if unread:
        # A size the service sets through a variable with no value here (the shell's at `up`):
        # any figure may be under it. A finding, not a guess.
        return Memory(None, source, False, tuple(notes),
                      f"it sizes itself through {unread[0]}, which has no value here (no .env entry, no default), "
                      "so no limit can be checked against it")
    if top is not None and top.need > final:
        final = clean_ceil(top.need)
        notes.append(f"memory raised to cover {top.what}")
        source = f"the service's own setting: {top.what}"
    elif top is not None:
        notes.append(f"it covers {top.what}")
    through = [d.variable for d in asked if d.variable]
    if through:
        notes.append(f"read through {through[0]}: the shell may give it another value at `up`, so an unsafe fix")
        safe = False
    own = any(not d.floor for d in asked)
    if reservation is not None:
        b = parse_size(reservation)
        if b is None:
            notes.append(f"the memory reservation {reservation} cannot be read")
            safe = False
        elif b > final:
            own = True
            final = clean_ceil(b)
            notes.append(f"memory raised to the reservation {reservation}")
            source = f"the service's memory reservation {reservation}"
    kind = fig.kind
    blind = next((s.blind for s in sizes if s.blind), None)
    if blind and kind not in ("config", "usage"):
        return Memory(None, source, False, tuple(notes), blind)
    if kind in _TRUSTED:
        pass
    elif unsized and kind in ("generic", "role", "default"):
        return Memory(None, source, False, tuple(notes), unsized)
    elif kind == "derivative":
        entry = fig.label.split(" ", 2)[1]
        image = profile.image or "its image"
        if not own:
            return Memory(None, source, False, tuple(notes),
                          f"{image} runs {entry} in an image of its own, and the {entry} figure ({human(int(fig.value))}) documents "
                          f"{entry}'s own configuration, not one {image} may bake in")
        notes.append(f"{image} runs {entry} in an image of its own: what it configures beyond the settings read here is not known, "
                     "so an unsafe fix")
        safe = False
    elif kind == "role" and not own and profile.pulled:
        # An image built elsewhere runs what its own Dockerfile sets (a Node heap, a JVM, a
        # pool of workers): a role's figure for it is a guess the tool cannot check.
        return Memory(None, source, False, tuple(notes), pulled_reason(profile.pulled, fig), pulled=True)
    elif kind == "default" and not own:
        return Memory(None, source, False, tuple(notes), NO_FIGURES)
    elif not own:
        # A generic figure, checked against nothing the service says about itself: a limit
        # below what it needs is an OOM kill long after the diff was merged.
        notes.append("a generic figure, so an unsafe fix (set it in the configuration, or measure with --usage)")
        safe = False
    if profile.family == "rabbitmq" and not any(s.watermark for s in sizes) and kind not in ("config", "usage"):
        # Its relative watermark is a share of the memory it detects, which may not be the
        # container's limit: a limit alone is a broker killed before it throttles publishers.
        from e2i_fix.facts import image as imagedata

        factor = imagedata.table().family["rabbitmq"].get("watermark_factor") or 2
        return Memory(None, source, False, tuple(notes),
                      f"RabbitMQ may not see the container's limit, and no absolute vm_memory_high_watermark bounds it "
                      f"(rabbitmq.com/docs/memory): set one in rabbitmq.conf and a limit of {factor:g} times it")
    return Memory(final, source, safe, tuple(notes))
