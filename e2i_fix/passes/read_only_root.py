"""read-only-root: a read-only root filesystem, with bounded tmpfs where the image writes.

## What it does
Adds `read_only: true` to each service whose writes are known, and a bounded tmpfs for each
path it writes outside its volumes:

- a known image: the paths the image table (`e2i_fix/data/hardening.toml`, with sources) lists
  (`/var/run/postgresql` and `/tmp` for PostgreSQL, `/var/cache/nginx`, `/var/run` and `/tmp`
  for nginx);
- an image built here that runs as a non-root user: `/tmp`, and the folders its Dockerfile
  prepares for run time (`RUN mkdir`, `chown` and `chmod` of absolute paths, the `WORKDIR` when
  a RUN line hands it to the user).

The new keys follow the stack's habits: `tmpfs` before `read_only` where its services write
them so, the tmpfs items quoted and laid out as its other lists.

A path that a volume, a bind mount, an existing tmpfs or one of the image's own `VOLUME`s
already holds needs nothing. A scratch path (`/tmp`, `/var/tmp`, `/run`, `/var/run`, caches)
gets a tmpfs bounded as the `tmpfs-size` pass bounds them (`/tmp:size=64m`); the tmpfs entries
are appended to the service's own `tmpfs` list. Any other path the image writes is data, which a
tmpfs would lose at every restart: the service is reported with the volume it needs.

Reported, not changed: an image the table does not know and that is not built here, an image
that runs as root (it may write anywhere), an image the table says cannot run read-only (it
writes next to its own files), a service whose `read_only` or `tmpfs` an override sets. Services
with `read_only` already set (either way), privileged, on the host's network, or opted out are
left alone.

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
Unsafe: a write the table and the Dockerfile do not show (a cache under the user's home, a file
an admin page saves) fails with "Read-only file system". Test the service after applying; add
the path as a volume or a tmpfs.

## Options
- `tmpfs-size`, `tmpfs-sizes`: the bound of the new tmpfs mounts and per-path bounds, as the
  `size` and `sizes` options of `tmpfs-size` (default `64m`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import Any, NamedTuple

from e2i_fix import conventions, fileroles
from e2i_fix.fix import Fix, Safety
from e2i_fix.passes import _hardening as h, tmpfs_size
from e2i_fix.project import Project, Service, targets

ID = "read-only-root"
SUMMARY = "read_only: true with bounded tmpfs for the paths the image writes (known and built images)"
SAFETY = Safety.UNSAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
READS = frozenset({"read_only", "tmpfs", "volumes", "user", "command", "entrypoint", "privileged",
                   "network_mode", "build", "image", "extends"})
DEFAULTS: dict[str, Any] = {"tmpfs-size": tmpfs_size.DEFAULTS["size"], "tmpfs-sizes": {}}

_SCRATCH = re.compile(r"/(?:tmp|var/tmp|run|var/run)(?:/.*)?|.*/(?:cache|\.cache|tmp|temp|run|pids?)(?:/.*)?")
_PREPARES = re.compile(r"\b(mkdir|chown|chmod|install\s+-d)\b")


class Writes(NamedTuple):
    paths: list[str]
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
    for svc in allowed:
        if reach.inherits(svc) or "read_only" in svc.config or h.blocked(svc):
            continue
        for key in ("read_only", "tmpfs"):
            elsewhere = h.set_elsewhere(svc, key)
            if elsewhere is not None:
                yield h.finding(ID, svc, f"service {svc.name!r} has a writable root filesystem (not edited: its "
                                f"{key} is set in {elsewhere.name})")
                break
        else:
            yield from _fix(project, svc, options, reach)


def _plan(project: Project, svc: Service) -> list[str] | str:
    r = h.runs(project, svc)
    got = _writes(svc, r)
    if isinstance(got, str):
        return got
    held = _mounted(svc, r)
    return [p for p in dict.fromkeys(got.paths) if not any(_under(p, m) for m in held)]


def _fix(project: Project, svc: Service, options: dict[str, Any], reach: h.Reach) -> Iterator[Fix]:
    r = h.runs(project, svc)
    got = _writes(svc, r)
    if isinstance(got, str):
        yield h.finding(ID, svc, f"service {svc.name!r} has a writable root filesystem; not made read-only: {got}")
        return
    held = _mounted(svc, r)
    loose = [p for p in dict.fromkeys(got.paths) if not any(_under(p, m) for m in held)]
    data = [p for p in loose if not _SCRATCH.fullmatch(p)]
    if data:
        yield h.finding(ID, svc, f"service {svc.name!r} has a writable root filesystem; not made read-only: it "
                        f"writes {', '.join(data)}, which no volume holds (mount a volume there first)")
        return
    held_by = reach.held(svc, lambda o: _plan(project, o) == loose)
    if held_by:
        yield h.finding(ID, svc, f"service {svc.name!r} has a writable root filesystem (not edited: {held_by})")
        return
    sizes = {"size": options.get("tmpfs-size") or tmpfs_size.DEFAULTS["size"], "sizes": options.get("tmpfs-sizes") or {}}
    entries = [f"{p}:size={tmpfs_size._size_for(p, sizes)}" for p in loose]
    edits: list[Any] = []
    changes: list[tuple[str, ...]] = []
    got_ro = h.add_key(project, svc, "read_only", True)
    got_tmpfs = h.extend_list(project, svc, "tmpfs", entries) if entries else ([], [])
    if got_ro is not None and got_tmpfs is not None:
        tmpfs_first = conventions.read(project).first(h.where_doc(svc), "read_only", "tmpfs") is False
        edits = got_tmpfs[0] + got_ro[0] if tmpfs_first else got_ro[0] + got_tmpfs[0]
        changes = got_ro[1] + got_tmpfs[1]
    if got_ro is None or got_tmpfs is None:
        recipe = "`read_only: true`" + (f" and `tmpfs: [{', '.join(entries)}]`" if entries else "")
        yield h.finding(ID, svc, f"service {svc.name!r} has a writable root filesystem (not edited: its mapping "
                        f"or tmpfs cannot be edited here); add {recipe}")
        return
    reach.give(svc)
    path, line, col = h.where(svc)
    extra = f" with `tmpfs: {', '.join(entries)}`" if entries else ""
    yield Fix(ID, f"service {svc.name!r} has a writable root filesystem: add `read_only: true`{extra} ({got.why})",
              path, line, col, tuple(edits), SAFETY, tuple(changes),
              provenance=((f"writes {', '.join(got.paths) or 'only its volumes'}", got.source),))


def _writes(svc: Service, r: h.Runs) -> Writes | str:
    """The paths the service writes outside its volumes, or why they are not known."""
    if r.unreadable:
        return "its Dockerfile cannot be read"
    img = r.image
    users = h.users(svc, r)
    if img is not None and img.read_only is not None:
        if not img.read_only:
            return f"{img.name} writes next to its own files" + (f" ({img.notes})" if img.notes else "")
        if img.writes is not None:
            return Writes(list(img.writes), f"{img.name} writes {', '.join(img.writes) or 'only its volumes'}",
                          f"{img.name} (built-in table: {'; '.join(img.sources)})")
    if not r.built:
        return "what its image writes is not known here"
    if any(h.is_root(u) for u in users):
        return "its image runs as root and may write anywhere"
    paths = ["/tmp"]
    for s in r.stages:
        workdir = None
        for st in h.chain(s):
            for ins in st.instructions:
                if ins.name == "WORKDIR":
                    workdir = ins.args.strip()
                elif ins.name == "RUN":
                    paths += _prepared(ins.args, workdir)
    return Writes(paths, f"it runs as {', '.join(sorted({str(u) for u in users}))} and writes {', '.join(dict.fromkeys(paths))}",
                  "its Dockerfile (USER, RUN mkdir/chown/chmod, WORKDIR)")


def _prepared(script: str, workdir: str | None) -> list[str]:
    """Absolute paths a RUN line creates or hands over for run time."""
    out: list[str] = []
    for part in re.split(r"&&|\|\||;|\n", script):
        m = _PREPARES.search(part)
        if not m:
            continue
        try:
            words = shlex.split(part[m.end():], comments=True)
        except ValueError:
            continue
        for w in words:
            if w.startswith("-") or "$" in w or "*" in w:
                continue
            if w in (".", "./") and workdir and workdir.startswith("/"):
                out.append(workdir.rstrip("/") or "/")
            elif w.startswith("/") and w.rstrip("/") not in ("", "/usr", "/etc", "/bin", "/usr/local", "/opt"):
                if not w.startswith(("/usr/", "/etc/", "/bin/", "/sbin/", "/lib", "/dev/", "/proc/")):
                    out.append(w.rstrip("/"))
    return out


def _mounted(svc: Service, r: h.Runs) -> list[str]:
    """Where the service has something writable mounted: volumes, binds, tmpfs, the image's
    own VOLUMEs."""
    out: list[str] = []
    for v in svc.config.get("volumes") or ():
        if isinstance(v, dict):
            t = v.get("target")
            if isinstance(t, str):
                out.append(t)
        elif isinstance(v, str):
            parts = v.split(":")
            out.append(parts[1] if len(parts) >= 2 else parts[0])
    tmpfs = svc.config.get("tmpfs")
    for t in tmpfs if isinstance(tmpfs, list) else [tmpfs] if isinstance(tmpfs, str) else []:
        out.append(str(t).split(":", 1)[0])
    if r.image is not None:
        out += r.image.volumes
    for s in r.stages:
        for st in h.chain(s):
            for ins in st.instructions:
                if ins.name == "VOLUME":
                    out += [p for p in ins.operands if p.startswith("/")]
    return [p.rstrip("/") or "/" for p in out]


def _under(path: str, mount: str) -> bool:
    return path == mount or path.startswith(mount.rstrip("/") + "/")
