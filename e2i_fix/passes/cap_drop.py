"""cap-drop: drop every Linux capability, and add back only those the image needs.

## What it does
Adds `cap_drop: [ALL]` to each service, with the `cap_add` its image needs:

- a service that runs as a non-root user (its `user:`, the `USER` of the Dockerfile stage it
  builds, or the user its image ships with) needs none: such a process has no effective
  capabilities to lose;
- a known image gets what the image table (`e2i_fix/data/hardening.toml`, each entry with its
  sources) says: the databases whose entrypoint chowns the data directory and steps down with
  gosu keep CHOWN, DAC_OVERRIDE, FOWNER, SETGID and SETUID; nginx keeps CHOWN, SETGID, SETUID
  and NET_BIND_SERVICE;
- an image built here that runs as root keeps root's powers over files and users (CHOWN,
  DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, and NET_BIND_SERVICE when it listens
  below 1024) and loses the rest: NET_RAW, MKNOD, SYS_CHROOT, AUDIT_WRITE, SETFCAP, SETPCAP.

The new keys are written as the stack writes them: in its order of `cap_drop` and
`cap_add`, its items quoted and laid out (`[ALL]` or `- ALL`) as its other lists.

A service built in several ways (an override that builds another target) gets what every way
needs. What the service already adds with `cap_add` stays: the missing capabilities are
appended to its own list. An image the table does not know, and that is not built here, is
reported with the recipe, not changed. So is a service whose `cap_drop` or `cap_add` an override
sets, or comes from a merge key.

Services that already drop ALL, run privileged, use the host's network or opted out are left
alone.

## Why
A container keeps 14 capabilities by default (NET_RAW for ARP spoofing, MKNOD, SYS_CHROOT,
DAC_OVERRIDE...) that most services never use and an attacker in the container would (CIS
Docker Benchmark 5.4, OWASP Docker Security rule 3).

## Example
Before:

    services:
      redis:
        image: redis:7-alpine

After:

    services:
      redis:
        image: redis:7-alpine
        cap_drop:
          - ALL
        cap_add:
          - CHOWN
          - DAC_OVERRIDE
          - SETGID
          - SETUID

## Fix safety
Unsafe: a capability the service uses that neither its image entry nor its Dockerfile shows
(a feature that binds a raw socket, a script that chowns a mounted folder) fails with
"Operation not permitted", often in a background task. Test the service after applying, and
add the capability to its `cap_add` or to `add` in the options.

## Options
- `add`: per service, capabilities to add back besides the table's, e.g.
  `add = {worker = ["NET_RAW"]}`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from e2i_fix import conventions, fileroles
from e2i_fix.fix import Fix, Safety
from e2i_fix.passes import _hardening as h
from e2i_fix.project import Project, Service, targets
from e2i_fix.yamldoc import effective_entry, to_value

ID = "cap-drop"
SUMMARY = "cap_drop: [ALL] with the cap_add the image needs (known and built images)"
SAFETY = Safety.UNSAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
READS = frozenset({"cap_drop", "cap_add", "command", "entrypoint", "user", "privileged", "network_mode",
                   "build", "image", "ports", "extends"})
DEFAULTS: dict[str, Any] = {"add": {}}

RECIPE = ("start with `cap_drop: [ALL]` and no cap_add, then add back what fails: chown -> CHOWN, "
          "a gosu/su-exec step-down -> SETUID and SETGID, a port below 1024 -> NET_BIND_SERVICE")


class Needs(NamedTuple):
    caps: tuple[str, ...]
    why: str
    source: str


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    extra = options.get("add") or {}
    if not isinstance(extra, dict) or not all(isinstance(v, list) and all(isinstance(c, str) for c in v)
                                              for v in extra.values()):
        yield Fix(ID, "option add must be a table of service = [capabilities]", project.docs[0].path,
                  safety=Safety.DISPLAY_ONLY, error=True)
        return
    allowed = targets(project, ID, options)
    reach = h.Reach(project, allowed)
    for svc in allowed:
        if reach.inherits(svc):
            continue
        dropped = svc.config.get("cap_drop")
        if isinstance(dropped, list) and any(_cap(c) == "ALL" for c in dropped):
            continue
        if h.blocked(svc):
            continue
        for key in ("cap_drop", "cap_add"):
            elsewhere = h.set_elsewhere(svc, key)
            if elsewhere is not None:
                yield h.finding(ID, svc, f"service {svc.name!r} keeps Docker's default capabilities (not edited: "
                                f"its {key} is set in {elsewhere.name})")
                break
        else:
            yield from _fix(project, svc, list(extra.get(svc.name, ())), reach, extra)


def _wanted(project: Project, svc: Service, extra: list[str]) -> list[str] | None:
    needs = _needs(svc, h.runs(project, svc))
    return None if needs is None else sorted({*needs.caps, *(_cap(c) for c in extra)})


def _fix(project: Project, svc: Service, extra: list[str], reach: h.Reach, extras: dict[str, Any]) -> Iterator[Fix]:
    r = h.runs(project, svc)
    needs = _needs(svc, r)
    if needs is None:
        what = "its Dockerfile cannot be read" if r.unreadable else "what its image needs is not known here"
        yield h.finding(ID, svc, f"service {svc.name!r} keeps Docker's default capabilities; {what}: {RECIPE}")
        return
    wanted = sorted({*needs.caps, *(_cap(c) for c in extra)})
    own = _own(svc, "cap_add")
    if own is None:
        yield h.finding(ID, svc, f"service {svc.name!r} keeps Docker's default capabilities (not edited: its "
                        "cap_add comes from a merge key)")
        return
    missing = [c for c in wanted if c not in own]
    held = reach.held(svc, lambda o: _wanted(project, o, list(extras.get(o.name, ()))) == wanted)
    if held:
        yield h.finding(ID, svc, f"service {svc.name!r} keeps Docker's default capabilities (not edited: {held})")
        return
    edits: list[Any] = []
    changes: list[tuple[str, ...]] = []
    keys: list[tuple[str, list[str]]] = [("cap_drop", ["ALL"]), ("cap_add", missing)]
    if conventions.read(project).first(h.where_doc(svc), "cap_drop", "cap_add") is False:
        keys.reverse()  # the stack writes cap_add first
    for key, items in keys:
        if not items:
            continue
        got = h.extend_list(project, svc, key, items)
        if got is None:
            recipe = f"`cap_drop: [ALL]`" + (f", `cap_add: [{', '.join(wanted)}]`" if wanted else "")
            yield h.finding(ID, svc, f"service {svc.name!r} keeps Docker's default capabilities (not edited: its "
                            f"{key} or mapping cannot be edited here); add {recipe}")
            return
        edits += got[0]
        changes += got[1]
    reach.give(svc)
    path, line, col = h.where(svc)
    added = f" and `cap_add: [{', '.join(missing)}]`" if missing else ""
    kept = f" (keeping its own cap_add: {', '.join(sorted(own))})" if own else ""
    yield Fix(ID, f"service {svc.name!r} keeps Docker's default capabilities: add `cap_drop: [ALL]`{added}"
              f"{kept}: {needs.why}", path, line, col, tuple(edits), SAFETY, tuple(changes),
              provenance=((f"cap_add {', '.join(wanted) or 'none'}", needs.source),))


def _cap(c: Any) -> str:
    s = str(c).strip().upper()
    return s.removeprefix("CAP_")


def _own(svc: Service, key: str) -> set[str] | None:
    """The capabilities the service's own definition already adds (None: from a merge key)."""
    home = svc.home
    if home is None:
        return set()
    got = effective_entry(home.node, key)
    if got is None:
        return set()
    if got[0] is not home.node:
        return None
    v = to_value(got[2])
    return {_cap(c) for c in v} if isinstance(v, list) else None


def _needs(svc: Service, r: h.Runs) -> Needs | None:
    users = h.users(svc, r)
    if r.unreadable:
        return None
    if not r.built and r.image is None and not svc.config.get("user"):
        return None
    if all(not h.is_root(u) for u in users):
        who = ", ".join(sorted({str(u) for u in users}))
        return Needs((), f"it runs as {who}, and a non-root process has no capabilities to lose",
                     "the service's user" if svc.config.get("user") else "the image's USER")
    img = r.image
    if img is not None and img.user is not None and not h.is_root(img.user):
        img = None  # the table's figures are for the image's own user, not for root
    if img is not None and img.cap_add is not None:
        why = f"its image needs {', '.join(img.cap_add)}" if img.cap_add else "its image needs none"
        if img.step_down:
            why += f" (its entrypoint runs as root and steps down with {img.step_down})"
        return Needs(img.cap_add, why, f"{img.name} (built-in table: {'; '.join(img.sources)})")
    if r.built:
        caps = list(h.profiles()["root"])
        if any(p < 1024 for p in h.port_numbers(svc, r)):
            caps.append("NET_BIND_SERVICE")
        return Needs(tuple(sorted(caps)), "its image runs as root: it keeps root's powers over files and users "
                     f"({', '.join(sorted(caps))}) and loses NET_RAW, MKNOD, SYS_CHROOT, AUDIT_WRITE, SETFCAP, SETPCAP",
                     "its Dockerfile (no non-root USER); the root profile of the built-in table")
    return None
