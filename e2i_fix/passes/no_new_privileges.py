"""no-new-privileges: processes cannot gain privileges at execve.

## What it does
Adds `no-new-privileges:true` to each service's `security_opt` (the list is created, or the
entry appended to the service's own list):

    security_opt:
      - no-new-privileges:true

A service whose command, entrypoint or Dockerfile needs to *gain* privileges when it runs a
program is reported instead: `sudo`, `doas`, `su` run by a non-root user, `setcap` file
capabilities, setuid or setgid bits (`chmod u+s`, `chmod 4755`...), a Dockerfile that
installs `sudo`, or an image the table in `e2i_fix/data/hardening.toml` knows to need sudo
(Pi-hole, Tdarr, the Gitea act runner: each with the report that shows it). The command and entrypoint are read from the service, from the Dockerfile stage
it builds (ENTRYPOINT, CMD, RUN) and from the shell scripts that stage copies in. Entrypoints
that *drop* privileges (`gosu`, `su-exec`, `setpriv`, `su` run by root) keep working: they
give privileges away, which no-new-privileges allows.

A service template several services merge (`<<: *app`) gets the new `security_opt` once, for
all of them, where they would all get the same (`placement = "per-service"` turns this off).

Services that already name `no-new-privileges` (with any value), that run privileged or on the
host's network, that opted out, or whose `security_opt` an override sets, are left alone; so is
a `security_opt` shared through an anchor or a merge key (reported).

The option is written as the stack already writes it: its spelling
(`no-new-privileges:true`, `no-new-privileges=true` or a bare `no-new-privileges`) where
another service sets it, and the quoting and layout (`[a, b]` or one `- a` per line) of the
file's other `security_opt`, `cap_add`, `cap_drop` and `tmpfs` lists.

## Why
Without it, a process in the container that runs a setuid binary or one with file
capabilities gets those privileges: the classic path from a shell in the container to root
(CIS Docker Benchmark 5.26, OWASP Docker Security rule 4).

## Example
Before:

    services:
      api:
        image: example/api

After:

    services:
      api:
        image: example/api
        security_opt:
          - no-new-privileges:true

## Fix safety
Safe: it only blocks a privilege gain at execve, and a service that needs one (as far as its
command, entrypoint and Dockerfile tell) is reported, not changed. A setuid program that the
image runs in a way none of those show would fail with "Operation not permitted": name the
service in `per-service-ignore` then.

## Options
None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from e2i_fix import conventions, fileroles, placement
from e2i_fix.fix import Fix, Safety
from e2i_fix.passes import _hardening as h
from e2i_fix.project import Project, targets
from e2i_fix.yamldoc import effective_entry

ID = "no-new-privileges"
SUMMARY = "security_opt no-new-privileges:true, unless the service gains privileges at execve"
SAFETY = Safety.SAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
READS = frozenset({"security_opt", "command", "entrypoint", "user", "privileged", "network_mode", "build",
                   "image", "extends"})
DEFAULTS: dict[str, Any] = {}

ENTRY = "no-new-privileges:true"
_GAIN = re.compile(
    r"(?:^|[\s;&|(`\"'/])(?:sudo|doas|pkexec)(?=$|[\s;&|)`\"'])"
    r"|\bsetcap\s"
    r"|\bchmod\s+(?:-\S+\s+)*(?:[ugoa]*\+[rwxXt]*s|[2467][0-7]{3})\b"
)
_SU = re.compile(r"(?:^|[\s;&|(`\"'/])su(?:\s|$)")
_INSTALLS_SUDO = re.compile(r"\b(?:apt-get|apt|apk|yum|dnf|microdnf|zypper)\b[^;&|]*\s(?:sudo|doas)\b")


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    allowed = targets(project, ID, options)
    reach = h.Reach(project, allowed)
    needs: dict[str, placement.Need] = {}
    ways = conventions.read(project)
    for svc in allowed:
        if reach.inherits(svc):
            continue
        opts = svc.config.get("security_opt")
        if isinstance(opts, list) and any(_names_nnp(o) for o in opts):
            continue
        if h.blocked(svc):
            continue
        elsewhere = h.set_elsewhere(svc, "security_opt")
        if elsewhere is not None:
            yield h.finding(ID, svc, f"service {svc.name!r} does not set no-new-privileges (not edited: "
                            f"its security_opt is set in {elsewhere.name})")
            continue
        r = h.runs(project, svc)
        why = _gains(project, svc, r)
        if why:
            yield h.finding(ID, svc, f"service {svc.name!r} does not set no-new-privileges, and {why}: "
                            "it needs to gain privileges at execve, which the option blocks")
            continue
        doc = h.where_doc(svc)
        entry = ways.no_new_privileges(doc) or ENTRY  # spelled as the stack spells it
        message = f"service {svc.name!r} can gain privileges through setuid binaries: add `security_opt: {entry}`"
        if not any(effective_entry(d.node, "security_opt") for d in svc.defs):
            # A new key: placement writes it once into a template the services share.
            needs[svc.name] = placement.Need(ways.items(doc, [entry]), message)
            continue
        held = reach.held(svc, lambda o: _gains(project, o, h.runs(project, o)) is None)
        got = None if held else h.extend_list(project, svc, "security_opt", [entry])
        if got is None:
            why = held or "its mapping or security_opt cannot be edited here"
            yield h.finding(ID, svc, f"service {svc.name!r} does not set no-new-privileges (not edited: {why}); "
                            f"add `security_opt: [\"{entry}\"]`")
            continue
        reach.give(svc)
        edits, changes = got
        path, line, col = h.where(svc)
        yield Fix(ID, message, path, line, col, tuple(edits), SAFETY, tuple(changes))
    yield from placement.add_key(project, ID, "security_opt", needs, options, SAFETY)


def _names_nnp(opt: Any) -> bool:
    return isinstance(opt, str) and opt.strip().lower().startswith("no-new-privileges")


def _gains(project: Project, svc: Any, r: h.Runs) -> str | None:
    """Why the service needs a privilege gain at execve, if anything it runs says so."""
    if r.image is not None and r.image.gains:
        return f"{r.image.name} {r.image.gains} (built-in table)"
    cmd = h.command_words(svc, r)
    if _GAIN.search(cmd):
        return f"its command runs {_GAIN.search(cmd).group(0).strip()!r}"  # type: ignore[union-attr]
    non_root = any(not h.is_root(u) for u in h.users(svc, r))
    if non_root and _SU.search(cmd):
        return "its command runs su as a non-root user"
    for line in h.run_lines(r):
        if _INSTALLS_SUDO.search(line):
            return "its Dockerfile installs sudo"
        m = _GAIN.search(line)
        if m and "sudo" not in m.group(0) and "doas" not in m.group(0):
            return f"its Dockerfile runs {m.group(0).strip()!r}"
    text = h.scripts(r)
    if text:
        m = _GAIN.search(text)
        if m:
            return f"a script its image runs calls {m.group(0).strip()!r}"
        if non_root and _SU.search(text):
            return "a script its image runs calls su as a non-root user"
    return None
