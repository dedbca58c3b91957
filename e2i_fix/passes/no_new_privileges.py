"""no-new-privileges: processes cannot gain privileges at execve.

## What it does
Adds `no-new-privileges:true` to each service's `security_opt` (the list is created, or the
entry appended to the service's own list):

    security_opt:
      - no-new-privileges:true

A service that needs to *gain* privileges when it runs a program is reported instead, in any
variant of the stack:

- something it runs calls `sudo`, `doas` or `pkexec`: its command, its entrypoint, or a shell
  script they run (read from the build context or a bind mount);
- its Dockerfile installs sudo (by name, or through an ARG or ENV list such as
  `apt-get install ${RUNTIME_PACKAGES}`) **and** grants it: a sudoers entry (`>> /etc/sudoers`,
  `NOPASSWD`, a file copied into /etc/sudoers.d) or the sudo or wheel group. Sudo installed
  that nothing calls and nothing grants is no reason: the option is added;
- its Dockerfile installs a package whose setuid or setgid helper the image's daemons run as
  another user (the table's `setid_packages`, each with its source): Postfix's setgid
  `postdrop` and `postqueue` (mail that local programs submit), Exim's and sendmail's
  submission binaries, FUSE's setuid `fusermount`;
- `setcap` file capabilities or setuid and setgid bits (`chmod u+s`, `chmod 4755`...) in its
  Dockerfile or what it runs; for an image it pulls that this repository's CI builds and
  pushes (a workflow that pushes images names it), in the Dockerfile that workflow builds;
  `su` run by a non-root user;
- an image the table in `e2i_fix/data/images.toml` knows to need a gain (Pi-hole, Tdarr, the
  Gitea act runner: each with the report that shows it), or to need one as a user other than
  its own (serversideup/php as anything but www-data);
- s6-overlay's `/init`, installed by a stage it builds (the release tarballs, the alpine
  package), started as a non-root user that no RUN line hands /run to: `/init` runs
  `s6-overlay-suexec`, a setuid-root helper, to make /run that user's, and under the option it
  cannot (nfrastack/db-backup#331, serversideup/docker-php#372). An image that gives /run to
  its user (`chown -R app:app /run`) starts without it.

Entrypoints that *drop* privileges (`gosu`, `su-exec`, `setpriv`, `su` run by root) keep
working: they give privileges away, which no-new-privileges allows.

Where the stack is also deployed with `docker stack deploy` (`facts.swarm`), nothing is added
and one finding says why: swarm ignores `security_opt`.

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
Safe where the tool knows what the service does at start, in every variant the edit reaches:
it starts as root (a setuid binary gives a root process nothing it lacks: the compose `user:`,
the stage's USER, or the image's default user the table knows), the image table or `--inspect`
knows the image (who it runs as), or it builds a stage the tool reads on a base image either
knows (or `scratch`), with none of the above in it. The option only blocks a gain at execve, and every
gain those show is reported, not changed.

Unsafe where what it does at start is not known: a pulled image that neither the table nor
`--inspect` knows and that may start as a user (an image that starts as a non-root user and
gains root at execve, s6-overlay's setuid `s6-overlay-suexec`, sudo or su, does not start under
it), a stage built on such a base, or a stage the tool cannot read (a `build.target` written
with a variable that has no value here: `.env` and defaults are read as Compose reads them).
The message says which; check that the service starts. A template edit that reaches such a
service is unsafe for every service it reaches. A setuid program that a known image runs in a
way none of the above shows would still fail with "Operation not permitted": name the service
in `per-service-ignore` then.

## Options
None.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from e2i_fix import conventions, facts, fileroles, lazyre, placement
from e2i_fix.facts import decisions, runs
from e2i_fix.fix import Fix, Safety
from e2i_fix.passes import _hardening as h
from e2i_fix.project import Project, Service, targets
from e2i_fix.yamldoc import effective_entry

ID = "no-new-privileges"
SUMMARY = "security_opt no-new-privileges:true, unless the service gains privileges at execve"
SAFETY = Safety.SAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
READS = frozenset({"security_opt", "command", "entrypoint", "user", "privileged", "network_mode", "build",
                   "image", "extends", "volumes"})
DEFAULTS: dict[str, Any] = {}

ENTRY = "no-new-privileges:true"
_SETUID = lazyre.compile(r"\bsetcap\s|\bchmod\s+(?:-\S+\s+)*(?:[ugoa]*\+[rwxXt]*s|[2467][0-7]{3})\b")
_SU = lazyre.compile(r"(?:^|[\s;&|(`\"'/])su(?:\s|$)")
_CHECK = ("an image that starts as a non-root user and gains root at execve (s6-overlay's setuid "
          "s6-overlay-suexec, sudo, su) does not start under it: check that the service starts")


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    allowed = targets(project, ID, options)
    swarm = facts.swarm(project)
    if swarm and allowed:
        yield h.finding(ID, allowed[0], f"no-new-privileges is not added: the stack is also deployed with docker stack "
                        f"deploy ({swarm}), which ignores security_opt")
        return
    reach = h.Reach(project, allowed)
    needs: dict[str, placement.Need] = {}
    unsafe: dict[str, str] = {}  # the services whose start is not known here, and why
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
        why = _gains(project, svc)
        if why:
            yield h.finding(ID, svc, f"service {svc.name!r} does not set no-new-privileges, and {why}: "
                            "it needs to gain privileges at execve, which the option blocks")
            continue
        unknown = _unknown(project, svc)
        safety = SAFETY if unknown is None else Safety.UNSAFE
        doc = h.where_doc(svc)
        entry = ways.no_new_privileges(doc) or ENTRY  # spelled as the stack spells it
        message = f"service {svc.name!r} can gain privileges through setuid binaries: add `security_opt: {entry}`"
        if unknown is not None:
            message += f"; unsafe: {unknown}: {_CHECK}"
        if not any(effective_entry(d.node, "security_opt") for d in svc.defs):
            # A new key: placement writes it once into a template the services share.
            needs[svc.name] = placement.Need(ways.items(doc, [entry]), message)
            if unknown is not None:
                unsafe[svc.name] = unknown
            continue
        held = reach.held(svc, lambda o: _gains(project, o) is None and (_unknown(project, o) is None) == (unknown is None))
        got = None if held else h.extend_list(project, svc, "security_opt", [entry])
        if got is None:
            why = held or "its mapping or security_opt cannot be edited here"
            yield h.finding(ID, svc, f"service {svc.name!r} does not set no-new-privileges (not edited: {why}); "
                            f"add `security_opt: [\"{entry}\"]`")
            continue
        reach.give(svc)
        edits, changes = got
        path, line, col = h.where(svc)
        yield Fix(ID, message, path, line, col, tuple(edits), safety, tuple(changes))
    yield from _placed(project, needs, unsafe, options)


def _placed(project: Project, needs: dict[str, placement.Need], unsafe: dict[str, str],
            options: dict[str, Any]) -> Iterator[Fix]:
    """The new keys, placed once in a template the services share where they can be. A template
    edit that reaches a service whose start is not known is as unsafe as that service's own:
    every fix that carries the edit is."""
    # Each fix with the service its message names (`service 'web' ...`).
    placed = [(fix, fix.message.split("'", 2)[1] if fix.message.startswith("service '") else None)
              for fix in placement.add_key(project, ID, "security_opt", needs, options, SAFETY)]
    tainted: dict[tuple[Any, ...], str] = {}
    for fix, name in placed:
        if name in unsafe and fix.edits:
            tainted.setdefault(fix.edits, name)
    for fix, name in placed:
        other = tainted.get(fix.edits) if fix.edits else None
        if other is not None and fix.applicable:
            if name not in unsafe:
                fix = fix._replace(message=f"{fix.message}; unsafe: the edit also reaches {other!r}, and "
                                           f"{unsafe[other]}: {_CHECK}")
            fix = fix._replace(safety=Safety.UNSAFE)
        yield fix


def _unknown(project: Project, svc: Service) -> str | None:
    """Why what the service does at start is not known here, in a variant the edit reaches (the
    fix is then unsafe), or None where it is in every one."""
    for f in facts.reached(project, svc.name):
        why = _not_known(project, f)
        if why:
            return why
    return None


def _not_known(project: Project, f: facts.Facts) -> str | None:
    """Known: it starts as root (a setuid binary gives a root process nothing it lacks); the
    image table or `--inspect` knows the image; or it builds a stage the tool reads on a base
    either knows (or `scratch`). Else why not."""
    if f.unreadable:
        b = f.build
        target = b.target if b is not None else None
        if target and "$" in target:
            return f"the stage it builds cannot be read (its target {target} has a variable with no value here)"
        return "the Dockerfile stage it builds cannot be read"
    user = decisions.user_after(project, f)
    if user.name is not None and user.root:
        return None
    if f.built:
        base = f.base
        if base is not None and base.path == "scratch":
            return None
        if user.name is None and runs.s6_overlay(f):
            return "it runs s6-overlay's /init as a user not known here"
        if f.base_knowledge.runtime("user") is not None:
            return None
        name = base.name if base is not None else f.chain[0].root_image if f.chain else "its base image"
        return f"its stages build on {name}, which neither the image table nor --inspect knows"
    if f.knowledge.runtime("user") is not None:
        return None
    img = f.image.name if f.image is not None else "its image"
    return f"neither the image table nor --inspect knows {img}"


def _names_nnp(opt: Any) -> bool:
    return isinstance(opt, str) and opt.strip().lower().startswith("no-new-privileges")


def _gains(project: Project, svc: Service) -> str | None:
    """Why the service needs a privilege gain at execve, if anything it runs says so, in any
    variant of the stack that the edit reaches."""
    for f in facts.reached(project, svc.name):
        k = f.knowledge
        gains = k.runtime("gains")
        if gains:
            return f"{k.image.key if k.image else 'its image'} {gains} (built-in table)"
        sudo = runs.sudo(f)
        if sudo.called:
            return sudo.called
        if sudo.installed and sudo.granted:
            return f"its Dockerfile installs sudo ({sudo.installed}) and grants it ({sudo.granted})"
        setid = runs.setid_package(f)
        if setid:
            return setid
        source = runs.source_dockerfile(f)
        if source is not None:
            # The image is this repository's own, built by its CI: what its Dockerfile sets up
            # at build time is what runs here.
            text = runs._read(source[0]) or ""
            m = _SETUID.search(text)
            if m:
                return (f"its image is built from {source[0].name} ({source[1]} publishes it), which runs "
                        f"{m.group(0).strip()!r}")
        for st in f.chain:
            for ins in st.instructions:
                if ins.name == "RUN":
                    m = _SETUID.search(f.expand(ins.command, st, ins))
                    if m:
                        return f"its Dockerfile runs {m.group(0).strip()!r}"
        words = " ".join(f.argv)
        m = _SETUID.search(words)
        if m:
            return f"its command runs {m.group(0).strip()!r}"
        for s in f.scripts:
            m = _SETUID.search(runs._code(s.text))
            if m:
                return f"{s.origin} runs {m.group(0).strip()!r}"
        user = decisions.user_after(project, f)
        if not user.root:
            for origin, text in [("its command", words), *((s.origin, runs._code(s.text)) for s in f.scripts)]:
                if _SU.search(text) and not runs._SU.search(text):
                    return f"{origin} runs su as a non-root user"
            name = str(user.name)
            s6 = runs.s6_overlay(f)
            if s6 and not runs.owns_run(f, name):
                return (f"{s6}, whose setuid s6-overlay-suexec must make it root to hand /run to {name}, "
                        "the user it starts as (no RUN line gives /run to that user)")
            other = k.runtime("other_user_gains")
            own = k.runtime("user")
            if other and isinstance(own, str) and name.split(":", 1)[0] != own.split(":", 1)[0]:
                return f"it runs as {name}, and {k.image.key if k.image else 'its image'} {other} (built-in table)"
    return None
