"""read-only-root: a read-only root filesystem, where every path the service writes is a volume
or a bounded tmpfs.

## What it does
Adds `read_only: true` to a service when every path it writes, in every variant of the stack,
is a volume, a bind mount, an existing tmpfs or one of the image's own `VOLUME`s, or is scratch
space a bounded tmpfs can take (`/tmp`, `/var/tmp`, `/run`, `/var/run`, caches); those get a
tmpfs appended to the service's own `tmpfs` list. What the service writes is read once, by the
facts layer (`facts.writes`):

- for a known image, the paths the image table (`e2i_fix/data/images.toml`, with sources) lists
  for the release its tag names (`/var/run/postgresql` and `/tmp` for PostgreSQL;
  `/var/cache/nginx`, `/var/run` and `/tmp` for nginx; `/data` for Redis, which Redis 7 declares
  a `VOLUME` and Redis 8 does not: there, without a volume at `/data`, BGSAVE fails and Redis
  refuses writes, MISCONF), and the folder its entrypoint renders templates into where the
  service gives it templates (nginx's `/etc/nginx/conf.d`);
- for an image built here that runs as a non-root user (once this run's fixes are in: a USER
  `non-root-user` adds counts, and with it the working folder it hands the user), `/tmp` and
  the folders its Dockerfile hands over for run time (RUN chown, a chmod that makes them
  writable, a mkdir in a stage that runs as the user);
- for every service: the redirections, `tee`, `sed -i`, file tools and config tools (crudini,
  yq -i, `ckan config-tool`...) of its command, entrypoint and the scripts they run (and of the
  `.sh` scripts its stages copy into an `*entrypoint.d` folder, which many images' entrypoints
  run at start), with targets named through variables read through the script's own
  assignments and the service's environment; log and pid file flags; celery beat's schedule
  file in its working folder; caches under $HOME (npm, pip at run time); a Rails server's tmp/
  and log/.

Each new tmpfs gets the bound the configuration sets (`tmpfs-sizes` for its path, else
`tmpfs-size`), else the scratch bound (64m), where what the service keeps there fits it
(`facts.runs.keeps`: the image table's `bounded` folders of sockets and pid files) or is not
known (an application's /tmp: the message says the bound is the scratch one, for the reviewer
to weigh). Where it does not fit, the service is reported with what to mount instead:

- a folder where the image keeps data as large as what it serves (the table's `unbounded`:
  MariaDB's and MySQL's tmpdir is `/tmp`, where sort files and on-disk temporary tables as
  large as a table go, so a bound aborts an index build): mount a volume there;
- nginx's temp folder where its configuration (the files it mounts or copies, read by
  `facts.configs`; the image's own where it has none) lets it spool more than the bound for one
  request of each kind: request bodies up to `client_max_body_size` (default 1m), responses of
  each `proxy_pass`, `fastcgi_pass`... with buffering on up to `*_max_temp_file_size` (default
  1024m), a `proxy_cache_path` up to its `max_size`: mount a volume at `/var/cache/nginx`, or set
  `tmpfs-sizes` for it to what nginx keeps there;
- a tmpfs counts against the container's memory: where the service has a memory limit
  (`mem_limit`, `deploy.resources.limits.memory`) the new bounds together must stay below it
  (else reported), and the message says they count against it.

Reported, not changed, with the reason: a write to any other path (data a tmpfs would lose, or
files among the image's own: the working folder, where its stages copy files; a volume there
would hide the image's code, so the pass never advises one), a write through a variable the
stack gives no value (what it writes is not known), an image the table does not know and that
is not built here, an image built here whose Dockerfile sets no ENTRYPOINT (or no CMD, with
none from compose) of its own on a base image the table does not know (what runs is the base's
start script, which may rewrite files in the image: what it writes is not known), an image
whose facts depend on its release where the tag does not tell which (a variable with no value,
or one only a `.env` git does not track gives: one install's release), an image that runs as root (it may write anywhere), an image the table says cannot run
read-only (it writes next to its own files), a service whose `read_only` or `tmpfs` an override
sets. Services with `read_only` already set (either way), privileged, on the host's
network, or opted out are left alone.

The new keys follow the stack's habits: `tmpfs` before `read_only` where its services write
them so, the tmpfs items quoted and laid out as its other lists.

Where the stack is also deployed with `docker stack deploy` (`facts.swarm`: a swarm-only deploy
key, or a script that stack-deploys the file), the tmpfs mounts are written as `volumes:`
entries of type tmpfs, their size in bytes (swarm ignores `tmpfs:`, and its schema wants an
integer), and a `tmpfs:` entry the service already has for a path it writes is reported: swarm
would not mount it.

## Why
A writable root filesystem lets an attacker in the container replace binaries, plant tools
and persist (CIS Docker Benchmark 5.13, OWASP Docker Security rule 8).

## Example
Before:

    services:
      db:
        image: postgres:16
        volumes:
          - pg_data:/var/lib/postgresql/data

After:

    services:
      db:
        image: postgres:16
        volumes:
          - pg_data:/var/lib/postgresql/data
        read_only: true
        tmpfs:
          - /var/run/postgresql:size=64m
          - /tmp:size=64m

## Fix safety
Unsafe: a write neither the table nor what the service runs shows (a file an admin page
saves, a library's cache) fails with "Read-only file system". Test the service after applying;
add the path as a volume or a tmpfs.

## Options
- `tmpfs-size`, `tmpfs-sizes`: the bound of the new tmpfs mounts and per-path bounds, as the
  `size` and `sizes` options of `tmpfs-size` (default: the scratch bound, 64m, where what the
  service keeps there fits it). A bound set here is taken as it is.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import Any

from e2i_fix import conventions, facts, fileroles, lazyre, sizing
from e2i_fix.facts import decisions, runs
from e2i_fix.fix import Fix, Safety
from e2i_fix.passes import _hardening as h, tmpfs_size
from e2i_fix.project import Project, Service, targets
from e2i_fix.records import NamedTuple

# Reasons several services of one file share, said once for all of them.
_PLURAL = {"what its image writes is not known here": "what their images write is not known here",
           "its Dockerfile cannot be read": "their Dockerfiles cannot be read"}

ID = "read-only-root"
SUMMARY = "read_only: true where every path the service writes is a volume or a bounded tmpfs"
SAFETY = Safety.UNSAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
READS = frozenset({"read_only", "tmpfs", "volumes", "user", "command", "entrypoint", "environment", "privileged",
                   "network_mode", "build", "image", "extends", "working_dir"})
DEFAULTS: dict[str, Any] = {"tmpfs-size": None, "tmpfs-sizes": {}}

_SCRATCH = lazyre.compile(r"/(?:tmp|var/tmp|run|var/run)(?:/.*)?|.*/(?:cache|\.cache|tmp|temp|run|pids?)(?:/.*)?")


class Plan(NamedTuple):
    """What a read-only root needs: the tmpfs mounts to add, and why the writes are known."""

    tmpfs: list[str]
    why: str
    source: str


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    bad = tmpfs_size._bad_options({"size": options.get("tmpfs-size"), "sizes": options.get("tmpfs-sizes")})
    if bad:
        bad = bad.replace("option size", "option tmpfs-size").replace("option sizes", "option tmpfs-sizes")
        yield Fix(ID, bad, project.docs[0].path, safety=Safety.DISPLAY_ONLY, error=True)
        return
    allowed = targets(project, ID, options)
    reach = h.Reach(project, allowed)
    swarm = facts.swarm(project)
    for svc in allowed:
        if reach.inherits(svc) or "read_only" in svc.config or h.blocked(svc):
            continue
        for key in ("read_only", "tmpfs" if not swarm else "volumes"):
            elsewhere = h.set_elsewhere(svc, key)
            if elsewhere is not None:
                yield h.finding(ID, svc, f"service {svc.name!r} has a writable root filesystem (not edited: its "
                                f"{key} is set in {elsewhere.name})")
                break
        else:
            yield from _fix(project, svc, options, reach, swarm)


def _sizes(options: dict[str, Any]) -> dict[str, Any]:
    """The tmpfs bounds the configuration sets, as `tmpfs-size` reads them."""
    return {"size": options.get("tmpfs-size"), "sizes": options.get("tmpfs-sizes") or {}}


def _fix(project: Project, svc: Service, options: dict[str, Any], reach: h.Reach, swarm: str | None) -> Iterator[Fix]:
    sizes = _sizes(options)
    plan = _plan(project, svc, swarm, sizes)
    if isinstance(plan, str):
        finding = h.finding(ID, svc, f"service {svc.name!r} has a writable root filesystem; not made read-only: {plan}")
        plural = _PLURAL.get(plan)
        if plural is not None:
            finding = finding._replace(group=(plan, "{count} services ({services}) have a writable root filesystem; "
                                              f"not made read-only: {plural}", svc.name))
        yield finding
        return
    held_by = reach.held(svc, lambda o: _plan(project, o, swarm, sizes) == plan)
    if held_by:
        yield h.finding(ID, svc, f"service {svc.name!r} has a writable root filesystem (not edited: {held_by})")
        return
    got_ro = h.add_key(project, svc, "read_only", True)
    if swarm:
        # docker stack deploy ignores `tmpfs:`; a tmpfs entry of `volumes:` is what it mounts.
        items: list[Any] = [{"type": "tmpfs", "target": p, "tmpfs": {"size": _bytes(tmpfs_size._size_for(p, sizes))}}
                            for p in plan.tmpfs]
        shown = [f"{p} (a tmpfs volume of {tmpfs_size._size_for(p, sizes)})" for p in plan.tmpfs]
        got_tmpfs = h.extend_list(project, svc, "volumes", items) if items else ([], [])
        key = "volumes"
    else:
        entries = [f"{p}:size={tmpfs_size._size_for(p, sizes)}" for p in plan.tmpfs]
        shown = entries
        got_tmpfs = h.extend_list(project, svc, "tmpfs", entries) if entries else ([], [])
        key = "tmpfs"
    edits: list[Any] = []
    changes: list[tuple[str, ...]] = []
    if got_ro is not None and got_tmpfs is not None:
        tmpfs_first = key == "tmpfs" and conventions.read(project).first(h.where_doc(svc), "read_only", "tmpfs") is False
        edits = got_tmpfs[0] + got_ro[0] if tmpfs_first else got_ro[0] + got_tmpfs[0]
        changes = got_ro[1] + got_tmpfs[1]
    if got_ro is None or got_tmpfs is None:
        recipe = "`read_only: true`" + (f" and `{key}: [{', '.join(shown)}]`" if shown else "")
        yield h.finding(ID, svc, f"service {svc.name!r} has a writable root filesystem (not edited: its mapping "
                        f"or {key} cannot be edited here); add {recipe}")
        return
    reach.give(svc)
    path, line, col = h.where(svc)
    extra = f" with `{key}: {', '.join(shown)}`" if shown else ""
    if swarm and shown:
        extra += f" (the stack is also deployed as a swarm stack, which ignores `tmpfs:`: {swarm})"
    yield Fix(ID, f"service {svc.name!r} has a writable root filesystem: add `read_only: true`{extra} ({plan.why})",
              path, line, col, tuple(edits), SAFETY, tuple(changes), provenance=((plan.why, plan.source),))


def _bytes(size: str | int) -> int:
    got = sizing.parse_size(size)
    return got if got is not None else 64 * 1024 * 1024


def _plan(project: Project, svc: Service, swarm: str | None, sizes: dict[str, Any]) -> Plan | str:
    """The tmpfs mounts a read-only root needs in every variant the edit reaches, or why it
    cannot have one."""
    every = facts.reached(project, svc.name)
    if not every:
        return "what its image writes is not known here"
    loose: dict[str, str] = {}
    whys: list[str] = []
    sources: list[str] = []
    targets_by_variant: list[set[str]] = []
    for f in every:
        got = _writes(project, f)
        if isinstance(got, str):
            return got
        writes, why, source = got
        whys.append(why)
        sources.append(source)
        held = _held(f, swarm)
        targets_by_variant.append({m.target.rstrip("/") or "/" for m in f.mounts})
        unknown = [w for w in writes if not w.known]
        if unknown:
            w = unknown[0]
            return f"it writes through {w.path} ({w.why}): what it writes there is not known"
        for w in writes:
            if not any(_under(w.path, m) for m in held):
                loose.setdefault(w.path, w.why)
    data = {p: why for p, why in loose.items() if not _SCRATCH.fullmatch(p)}
    if data:
        code = _code_folders(every)
        said = f"it writes {'; '.join(f'{p} ({why})' for p, why in data.items())}, which no volume or tmpfs holds"
        inside = [p for p in data if any(_under(p, c) or _under(c, p) for c in code)]
        if inside:
            said += (f"; {', '.join(inside)} {'lies' if len(inside) == 1 else 'lie'} among the image's own files, "
                     "where a volume would hide them")
        return said
    if swarm:
        ignored = {str(t).split(":", 1)[0].rstrip("/") for f in every for t in _tmpfs_entries(f.config)}
        moved = [p for p in loose if p in ignored]
        if moved:
            return (f"its `tmpfs:` entry for {', '.join(moved)} is ignored where the stack is deployed as a swarm "
                    f"stack ({swarm}): it belongs in `volumes:` as a tmpfs entry")
    for p in loose:
        if any(p in targets for targets in targets_by_variant):
            return f"it writes {p} in one variant of the stack, where another mounts something there"
    refused, note = _fits(every, list(loose), sizes)
    if refused is not None:
        return refused
    return Plan(list(loose), "; ".join(dict.fromkeys(whys)) + note, "; ".join(dict.fromkeys(sources)))


def _fits(every: list[facts.Facts], paths: list[str], sizes: dict[str, Any]) -> tuple[str | None, str]:
    """Why the tmpfs mounts for `paths` cannot hold what the service keeps there (None: they
    can), and a note on the memory limit they count against. A bound the configuration sets is
    taken as it is; otherwise what the service keeps in each folder decides: data as large as
    what it serves (a database's temporary folder) or more than the scratch bound (nginx's
    request bodies and proxied responses, as its configuration lets it spool them) is refused
    with what to mount instead."""
    scratch = sizing.parse_size(tmpfs_size.SCRATCH) or 0
    guessed: list[str] = []
    for p in paths:
        if tmpfs_size.configured(p, sizes) is not None:
            continue
        for f in every:
            k = runs.keeps(f, p)
            if k.kind == "unknown" and p not in guessed:
                guessed.append(p)
            if k.kind == "large":
                return f"it writes {p}, and {k.why}: no tmpfs bound fits it; mount a volume at {p} first", ""
            if k.kind == "unread":
                return f"it writes {p}, and {k.why}", ""
            if k.kind == "sized" and (k.size is None or k.size > scratch):
                kept = "what nothing bounds" if k.size is None else f"up to {runs.shown_size(k.size)} for one request of each kind"
                return (f"nginx keeps {kept} in {p} ({k.why}), more than a {tmpfs_size.SCRATCH} tmpfs holds: mount a "
                        f"volume at {p}, or set `tmpfs-sizes` for it to what it keeps (a tmpfs counts against the "
                        "container's memory)"), ""
    note = ""
    if guessed:
        note = (f"; what it keeps in {', '.join(guessed)} is not known here: {tmpfs_size.SCRATCH} is the scratch "
                "bound, `tmpfs-sizes` sets another")
    limits = {limit for f in every if (limit := runs.memory_limit(f))}
    if limits and paths:
        limit = min(limits)
        total = sum(sizing.parse_size(tmpfs_size._size_for(p, sizes)) or 0 for p in paths)
        if total >= limit:
            return (f"its tmpfs mounts ({runs.shown_size(total)}) would take its whole memory limit of "
                    f"{runs.shown_size(limit)}: a tmpfs counts against it"), ""
        note += f"; the tmpfs mounts count against its memory limit of {runs.shown_size(limit)}"
    return None, note


def _writes(project: Project, f: facts.Facts) -> tuple[list[facts.runs.Write], str, str] | str:
    """What the service writes in one variant, why that is known, and where it comes from; or
    why it is not known."""
    from e2i_fix.facts.runs import Write

    if f.unreadable:
        return "its Dockerfile cannot be read"
    k = f.knowledge
    ro = k.runtime("read_only")
    if ro is False:
        notes = k.runtime("notes")
        return f"{k.image.key if k.image else 'its image'} writes next to its own files" + (f" ({notes})" if notes else "")
    for field in ("volumes", "writes"):
        varies = k.varies(field)
        if varies:
            return varies
    inherited = runs.inherited(f)
    if inherited:
        return f"{inherited}: what it writes is not known here"
    writes = list(f.writes)
    user = decisions.user_after(project, f)
    if ro is True and k.runtime("writes") is not None:
        listed = [str(p) for p in k.runtime("writes")]
        name = k.image.key if k.image is not None else "its image"
        return writes, f"{name} writes {', '.join(listed) or 'only its volumes'}", k.source("writes")
    if not f.built:
        return "what its image writes is not known here"
    if user.root:
        return "its image runs as root and may write anywhere"
    writes.insert(0, Write("/tmp", "a program's temporary files"))
    if f.user.root and f.workdir:
        # The USER comes from this run: non-root-user gives it its working folder.
        writes.append(Write(f.workdir, f"{decisions.NON_ROOT_USER} gives it its working folder in this run"))
    shown = ", ".join(dict.fromkeys(w.path for w in writes if w.known))
    return (writes, f"it runs as {user.name} and writes {shown}",
            "its Dockerfile (USER, the folders it hands over) and what it runs")


def _held(f: facts.Facts, swarm: str | None) -> list[str]:
    """Where the service has something writable mounted: volumes, binds, tmpfs (not `tmpfs:`
    entries where swarm deploys it: swarm ignores them), the image's own VOLUMEs."""
    out: list[str] = []
    tmpfs_key = {str(t).split(":", 1)[0] for t in _tmpfs_entries(f.config)}
    for m in f.mounts:
        if m.kind == "tmpfs" and swarm and m.target in tmpfs_key:
            continue
        out.append(m.target)
    out += [str(v) for v in f.knowledge.runtime("volumes") or ()]
    for st in f.chain:
        for ins in st.instructions:
            if ins.name == "VOLUME":
                out += [f.expand(p, st, ins) for p in ins.operands if f.expand(p, st, ins).startswith("/")]
    return [posixpath.normpath(p) for p in out if "$" not in p]


def _tmpfs_entries(config: dict[str, Any]) -> list[Any]:
    tmpfs = config.get("tmpfs")
    return tmpfs if isinstance(tmpfs, list) else [tmpfs] if isinstance(tmpfs, str) else []


def _code_folders(every: list[facts.Facts]) -> set[str]:
    """The folders that hold the image's own files: its working folder and where its stages
    copy files to."""
    from e2i_fix.facts import runs

    out: set[str] = set()
    for f in every:
        if f.workdir and f.workdir != "/":
            out.add(posixpath.normpath(f.workdir))
        for target, _, host in runs._copied(f):
            out.add(target if host.is_dir() else posixpath.dirname(target))
    return {p for p in out if p not in ("/", "/usr", "/usr/local", "/usr/local/bin", "/etc")}


def _under(path: str, mount: str) -> bool:
    return path == mount or path.startswith(mount.rstrip("/") + "/")
