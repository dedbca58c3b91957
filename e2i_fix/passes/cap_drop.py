"""cap-drop: drop every Linux capability, and add back only those the image needs.

## What it does
Adds `cap_drop: [ALL]` to each service, with the `cap_add` it needs in every variant of the
stack, for the user it runs as **once this run's fixes are in** (`facts.decisions.user_after`,
the decision `non-root-user` and `no-force-root` take):

- a service that runs as a non-root user (its `user:`, the `USER` of the Dockerfile stage it
  builds, the user its image ships with, or the USER or `user:` those passes give it in this
  same run) needs none: such a process has no effective capabilities to lose. Where they will
  not give it one (not selected, their unsafe fix not allowed, or the stage must start as
  root), it is still root and is treated as root;
- a known image run as root gets what the image table (`e2i_fix/data/images.toml`, each entry
  with its sources) says for the release its tag names: the databases whose entrypoint chowns
  the data directory and steps down with gosu keep CHOWN, DAC_OVERRIDE, FOWNER, SETGID and
  SETUID; Redis 7 (gosu) keeps CHOWN, DAC_OVERRIDE, SETGID and SETUID, Redis 8 (and an untagged,
  `latest` or `alpine` redis, read as the newest) also FOWNER and SETPCAP: its entrypoint steps
  down with `setpriv --bounding-set=-all`, and emptying the bounding set needs SETPCAP (without
  it setpriv exits 127 at every start); nginx keeps CHOWN, SETGID, SETUID and NET_BIND_SERVICE;
  caddy keeps NET_BIND_SERVICE. A known image whose process runs as root and binds files or
  folders from the host (the Docker socket aside) also keeps DAC_OVERRIDE: they belong to a
  host user, and root reads one of mode 0600 (a TLS key as mkcert or a certbot copy leaves
  it) only through it. Where the needs differ between releases and the tag does not
  tell which runs, the service is reported: a variable with no value, or one whose value only a
  `.env` git does not track gives (the file an install copies from `.env.example` and edits:
  one install's release, not the repository's; the message names the variable). A default
  written in the compose file (`redis:${TAG:-7}`) or a tracked `.env` is the repository's;
- an image built here that runs as root keeps root's powers over files and users (CHOWN,
  DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, and NET_BIND_SERVICE when it listens
  below 1024) and loses the rest: NET_RAW, MKNOD, SYS_CHROOT, AUDIT_WRITE, SETFCAP, SETPCAP.
  One whose entrypoint starts a process supervisor (supervisord, s6, runit) is reported
  instead: each program it runs as root has needs of its own; so is one whose Dockerfile sets
  no ENTRYPOINT (or no CMD, with none from compose) of its own on a base image the table does
  not know: what runs, and what it needs, is that base's;
- a root process that runs a tool going through PAM (`su`, `sudo`, `runuser`, `login`, `sshd`:
  the table's `pam` profile), in its command, entrypoint or the scripts they run (followed
  through paths written with variables, `source "${ENTRYPOINT_ROOT}/helpers.sh"`, and through
  the `.d` folders they run every script of), also keeps AUDIT_WRITE: PAM's audit record needs it, and without it PAM fails the call ("su: System
  error"). gosu, su-exec and setpriv change the user with plain system calls and need none;
- an image the table says gains root at execve (sudo in its entrypoint, a setuid binary:
  `gains`) is reported, whatever its user: once it switches, root needs what its command does;
- whatever the user, the capabilities of binaries that carry file capabilities stay (caddy's
  `/usr/bin/caddy` has cap_net_bind_service, a Dockerfile's `setcap ... /usr/local/bin/x`):
  with them out of the bounding set, the binary fails to start with EPERM.

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

import re
from collections.abc import Iterator
from typing import Any

from e2i_fix import conventions, facts, fileroles
from e2i_fix.facts import decisions, runs
from e2i_fix.fix import Fix, Safety
from e2i_fix.passes import _hardening as h
from e2i_fix.project import Project, Service, targets
from e2i_fix.records import NamedTuple
from e2i_fix.yamldoc import effective_entry, to_value

ID = "cap-drop"
SUMMARY = "cap_drop: [ALL] with the cap_add the image needs (known and built images)"
SAFETY = Safety.UNSAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
READS = frozenset({"cap_drop", "cap_add", "command", "entrypoint", "user", "privileged", "network_mode",
                   "build", "image", "ports", "extends"})
DEFAULTS: dict[str, Any] = {"add": {}}

# Reasons several services of one file share, said once for all of them.
_PLURAL = {"what its image needs is not known here": "what their images need is not known here",
           "its Dockerfile cannot be read": "their Dockerfiles cannot be read"}
# What a root process that runs a PAM-based tool keeps (the image table's `pam` profile).
_PAM = "{}, which goes through PAM: its audit record needs AUDIT_WRITE, without which PAM fails the call ('su: System error')"
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
    needs = _needs(project, svc)
    return None if isinstance(needs, str) else sorted({*needs.caps, *(_cap(c) for c in extra)})


def _fix(project: Project, svc: Service, extra: list[str], reach: h.Reach, extras: dict[str, Any]) -> Iterator[Fix]:
    needs = _needs(project, svc)
    if isinstance(needs, str):
        finding = h.finding(ID, svc, f"service {svc.name!r} keeps Docker's default capabilities; {needs}: {RECIPE}")
        plural = _PLURAL.get(needs)
        if plural is not None:
            finding = finding._replace(group=(needs, "{count} services ({services}) keep Docker's default "
                                              f"capabilities; {plural}: {RECIPE}", svc.name))
        yield finding
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


def _needs(project: Project, svc: Service) -> Needs | str:
    """What the service needs back once it drops ALL, in every variant the edit reaches, with the
    user each variant runs as once this run's fixes are in; or why that is not known."""
    caps: set[str] = set()
    whys: list[str] = []
    sources: list[str] = []
    binaries: dict[str, tuple[str, ...]] = {}
    every = facts.reached(project, svc.name)
    if not every:
        return "what its image needs is not known here"
    from e2i_fix.images import variant_names

    for f in every:
        # With several variants that differ, each reason says which it is about.
        label = f"with {variant_names(project, f.files)}: " if len(every) > 1 else ""
        if f.unreadable:
            return "its Dockerfile cannot be read"
        binaries.update(f.file_caps)
        gains = f.knowledge.runtime("gains")
        if gains:
            # sudo or a setuid binary switches to root at execve, and root then needs what its
            # command does (sudo itself SETUID, SETGID, AUDIT_WRITE): not known from here.
            return f"its image {gains} (built-in table): what it needs once it gains root is not known here"
        user = decisions.user_after(project, f)
        if not user.root:
            said = f" ({user.source})" if "in this run" in user.source else ""
            whys.append(f"{label}it runs as {user.name}{said}, and a non-root process has no capabilities to lose")
            sources.append(user.source)
            continue
        k = f.knowledge
        table_user = k.runtime("user")
        needed = k.runtime("cap_add")
        pam = runs.pam(f)
        if needed is not None and (not isinstance(table_user, str) or table_user.split(":", 1)[0] in facts.ROOT_USERS):
            kept = {str(c) for c in needed} | ({"AUDIT_WRITE"} if pam else set())
            binds = [] if "DAC_OVERRIDE" in kept else _host_binds(f)
            if binds:
                kept.add("DAC_OVERRIDE")
            caps.update(kept)
            why = label + (f"its image needs {', '.join(needed)}" if needed else "its image needs none")
            if f.step_down:
                why += f" (its entrypoint runs as root and steps down with {f.step_down})"
            if pam:
                why += f"; {_PAM.format(pam)}"
            if binds:
                why += (f"; as root it reads what it binds from the host ({', '.join(binds[:3])}"
                        f"{', ...' if len(binds) > 3 else ''}), files a host user owns: one of mode 0600 (a TLS key "
                        "as mkcert or a certbot copy leaves it) needs DAC_OVERRIDE")
            whys.append(why)
            sources.append(k.source("cap_add"))
            continue
        varies = k.varies("cap_add")
        if varies:
            return varies
        if not f.built:
            return "what its image needs is not known here"
        inherited = runs.inherited(f)
        if inherited:
            return f"{inherited}: what it needs is not known here"
        sup = runs.supervisor(f)
        if sup is not None:
            return f"{sup[0]} starts {sup[1]}: the programs it runs as root each need capabilities of their own"
        root = set(h.profiles()["root"])
        if any(p < 1024 for p in _ports(f)):
            root.add("NET_BIND_SERVICE")
        if pam:
            root.add("AUDIT_WRITE")
        caps.update(root)
        lost = [c for c in ("NET_RAW", "MKNOD", "SYS_CHROOT", "AUDIT_WRITE", "SETFCAP", "SETPCAP") if c not in root]
        whys.append(f"{label}its image runs as root: it keeps root's powers over files and users "
                    f"({', '.join(sorted(root))}) and loses {', '.join(lost)}" + (f"; {_PAM.format(pam)}" if pam else ""))
        sources.append("its Dockerfile (no non-root USER); the root profile of the built-in table")
    bare = [w[len(_label(w)):] for w in whys]
    if len(set(bare)) == 1:
        whys = bare  # every variant for the same reason: said once
    for binary, needed_by in sorted(binaries.items()):
        caps.update(needed_by)
        whys.append(f"{binary} carries file capabilities ({', '.join(needed_by)}): without them in the bounding "
                    "set it fails to start (EPERM)")
        sources.append(f"the file capabilities of {binary}")
    return Needs(tuple(sorted(caps)), "; ".join(dict.fromkeys(whys)), "; ".join(dict.fromkeys(sources)))


def _host_binds(f: facts.Facts) -> list[str]:
    """The container paths the service binds from the host (the Docker socket aside: root owns
    it): files and folders of a host user, which root reads only through DAC_OVERRIDE where
    their mode keeps others out."""
    return [m.target for m in f.mounts if m.kind == "bind" and m.target not in _SOCKETS]


_SOCKETS = frozenset({"/var/run/docker.sock", "/run/docker.sock", "/tmp/docker.sock"})


def _label(why: str) -> str:
    m = re.match(r"with [^:]*: ", why)
    return m.group(0) if m else ""


def _ports(f: facts.Facts) -> list[int]:
    """The container ports the service listens on: its `ports:` targets and what it serves."""
    out = [port for port, _ in f.ports]
    for p in f.config.get("ports") or ():
        target = p.get("target") if isinstance(p, dict) else str(p).rsplit(":", 1)[-1].split("/", 1)[0]
        for piece in str(target).split("-"):
            if piece.isdigit():
                out.append(int(piece))
    return out
