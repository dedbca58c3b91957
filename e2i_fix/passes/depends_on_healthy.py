"""depends-on-healthy: a dependency waits until its target is ready, not just started.

## What it does
Every `depends_on` entry that waits only for its target to start (the short form, or
`condition: service_started`) is upgraded:

- to `condition: service_healthy` when the target has a health check in every variant of the
  stack the entry applies to: its merged `healthcheck:`, the `HEALTHCHECK` of the Dockerfile
  stage it builds (`FROM <stage>` and `build.target` followed), or the `Healthcheck` of its
  image where `docker image inspect` output given to the tool says so. `disable: true` or
  `test: ["NONE"]`, here or in an override, means none;
- to `condition: service_completed_successfully` when the target is a one-shot job (a migration,
  an init or setup job, by its name or command, with `restart` absent, `"no"` or `on-failure`).

A short-form list becomes the long form, entry by entry in its order, its comments kept. An
entry is never made to wait on a target that a default-profile service cannot count on (a
profile-only target), and never `service_healthy` on a target without a health check: `docker
compose up` fails with "container X has no healthcheck configured". Nothing waits for a check
that `healthcheck-probes` finds unable to pass (a worker inheriting the API image's
`HEALTHCHECK`): the dependent would never start.

Left as it is:
- a wait that nothing at run time needs: the dependent runs a static web server (nginx, httpd,
  caddy, by its own command) whose configuration, read in full, passes no request to the
  target, and its environment does not name it (an admin console that serves files and only
  starts after the main site). A health check of the target would only delay it;
- a wait between numbered nodes of one cluster (`node2` on `node1`, `wazuh2.indexer` on
  `wazuh1.indexer`: names that differ only in their numbers, the same image or build): the
  target may become healthy only once its peers have joined (a quorum, an elected manager),
  so a peer waiting for it would never start;
- every entry of a stack that is also deployed with `docker stack deploy` (`facts.swarm`: a
  deploy key only swarm reads, or a script in the repository that deploys the stack's folder
  as a stack): that schema accepts only a list of names for `depends_on`, and swarm does not
  wait on dependencies;
- every entry of a stack one of whose files holds a `condition:` commented out: its authors
  took the conditions out (for a runner without them, such as podman-compose), so none is
  written back; a known-good probe for a target is still suggested.

Where the target is an image the table knows by its own name (Redis, Postgres, MySQL, MariaDB,
MongoDB, RabbitMQ, MLflow...) and has no health check at all, a finding suggests the image's
known-good probe and an unsafe fix adds it, with a `start_period` where the image's first
start is long and the probe cannot pass during it (MariaDB, MySQL: 2m, each with its source in
the table): the entrypoint initialises the data directory first, and a slow disk would take
longer than `interval` x `retries`, so `up` would fail with "dependency failed to start".
Failures during the start period do not count and the first passing probe ends it: a healthy
server is ready as soon as before. MariaDB's probe is `healthcheck.sh --connect`: its
`--innodb_initialized` needs the healthcheck user the entrypoint creates only for a new data
directory (or with `MARIADB_AUTO_UPGRADE`), so it never passes on a volume from before. An
image known only by the software it is built on (`ghcr.io/immich-app/postgres`) may ship a
`HEALTHCHECK` of its own, which a compose probe would replace: it is reported, nothing added.

An entry that waits for what an unsafe fix adds (the probe above, or a check that
`healthcheck-probes` writes) is as unsafe as that fix: it is labelled unsafe, counted among the
fixes `--unsafe-fixes` would apply, and comes with the probe it waits for. A health check only
in an override: the wait goes into that override where it defines the service (the base alone
cannot wait on it), else it is reported. Services and Dockerfiles of an included file count
with the file that includes them.

## Why
A started container is not a ready one: the worker connects before the API or the database
accepts connections, fails, and restarts in a loop, or worse, runs half-initialised.

## Example
Before:

    services:
      worker:
        depends_on:
          - api
      api:
        healthcheck:
          test: ["CMD", "curl", "-f", "http://localhost:8000/health"]

After:

    services:
      worker:
        depends_on:
          api:
            condition: service_healthy

## Fix safety
Safe: the dependency only waits for a check the stack already has. Adding a health check to a
known image is unsafe (`--unsafe-fixes`): it changes when the target counts as ready; so is a
wait on such a check.

## Options
- `interval`, `timeout`, `retries`: the timings of an added health check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from e2i_fix import facts, health, images, lazyre, render, yamledit
from e2i_fix.facts import configs
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, Service, ServiceDef, one_shot, targets
from e2i_fix.records import NamedTuple
from e2i_fix.yamldoc import (
    ComposeDoc, MappingNode, Node, ScalarNode, SequenceNode, effective_entry, position, to_value,
)

ID = "depends-on-healthy"
SUMMARY = "depends_on waits for service_healthy / service_completed_successfully"
SAFETY = Safety.SAFE
# No READS: the health check this pass adds to a target lets the next round make its
# dependents wait for it, so the pass runs again after every round that changed something.
DEFAULTS: dict[str, Any] = {"interval": "10s", "timeout": "5s", "retries": 5}

STARTED = "service_started"
HEALTHY = "service_healthy"
COMPLETED = "service_completed_successfully"

def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    plan = _Plan(project, options)
    allowed = targets(project, ID, options)
    plan.allowed = {s.name for s in allowed}
    for svc in allowed:
        yield from plan.service(svc)
    yield from plan.probes()


# A `condition:` of depends_on written and commented out: `#     condition: service_healthy`.
_COMMENTED = lazyre.compile(r"(?m)^[ \t]*#[ \t]*condition:[ \t]*['\"]?service_(?:healthy|started|completed_successfully)\b")


def _withdrawn(project: Project) -> str | None:
    """Why the stack's authors took depends_on conditions out, if they did: a condition of
    theirs commented out in one of its files (for a runner that does not support them, such as
    podman-compose). Then none is written back."""
    for d in project.docs:
        m = _COMMENTED.search(d.text)
        if m is not None:
            line = d.text.count("\n", 0, m.start()) + 1
            return (f"{Path(str(d.path)).name}:{line} holds a depends_on condition commented out: the stack's "
                    "authors took the conditions out")
    return None


class _Entry:
    """One target named in one definition's depends_on."""

    def __init__(self, name: str, node: Node, key: ScalarNode | None) -> None:
        self.name = name
        self.node = node  # the item (list form) or the value (long form)
        self.key = key  # the key (long form)


class _Probe(NamedTuple):
    """The known-good probe a target without a health check gets, and where it goes."""

    probe: images.Probe
    edit: Edit | None  # None: the finding only (a derivative image, a mapping not editable here)
    where: ServiceDef
    users: list[str]


class _Plan:
    def __init__(self, project: Project, options: dict[str, Any]) -> None:
        self.project = project
        self.options = options
        self.variants = images.variants(project)
        # Where a definition counts: an included file's definitions are read with the base or
        # override file that includes it.
        own = images.owners(project)
        self.doc_index = {id(d): own[i] for i, d in enumerate(project.docs)}
        self.wanted_probes: dict[str, list[str]] = {}  # target -> services that would wait on it
        # (service, target) -> the variants where the target has a health check, when not all do
        self.partial: dict[tuple[str, str], list[tuple[int, ...]]] = {}
        self.allowed: set[str] = set(project.services)
        self._broken: dict[str, bool] = {}
        # (service, target) -> why the target's health check may never pass: the wait is unsafe
        self.doubts: dict[tuple[str, str], str] = {}
        self._probes: dict[str, _Probe | None] = {}
        # `docker stack deploy` refuses a depends_on mapping (its schema has a list of names),
        # and swarm does not wait on dependencies at all.
        self.swarm = facts.swarm(project)
        swarm = f"{self.swarm}, and that schema refuses depends_on conditions" if self.swarm else None
        self.held = swarm or _withdrawn(project)

    # --- decisions ---------------------------------------------------------------------------

    def writers(self, svc: Service) -> dict[str, int]:
        """Each target of `svc` and the last file (index) that writes its entry."""
        out: dict[str, int] = {}
        for d in svc.defs:
            got = effective_entry(d.node, "depends_on")
            if got is None:
                continue
            for e in _entries(got[2]) or ():
                out[e.name] = self.doc_index[id(d.doc)]
        return out

    def applies_in(self, svc: Service, target: str, k: int) -> list[tuple[int, ...]]:
        """The variants where the entry written in file `k` is the one Compose uses."""
        out: list[tuple[int, ...]] = []
        for v in self.variants:
            if k not in v:
                continue
            later = v[v.index(k) + 1:]  # a chain need not list its files in the index's order
            if any(target in self._written_in(svc, i) for i in later):
                continue
            if any(self.doc_index[id(d.doc)] in later and (d.tags.get(()) or d.tags.get(("depends_on",)))
                   for d in svc.defs):
                continue  # a later file `!override`s (or `!reset`s) it there: the entry is not used
            services = self.project.model(v).get("services") or {}
            if target in services and svc.name in services:
                out.append(v)
        return out

    def _written_in(self, svc: Service, i: int) -> set[str]:
        names: set[str] = set()
        for d in svc.defs:
            if self.doc_index[id(d.doc)] == i:
                got = effective_entry(d.node, "depends_on")
                if got is not None:
                    names.update(e.name for e in _entries(got[2]) or ())
        return names

    def decide(self, svc: Service, target: str, k: int, required: object) -> tuple[str | None, str, Safety]:
        """The condition the entry should have and the safety of that change, or None with the
        reason it stays."""
        services = self.project.services
        tsvc = services.get(target)
        if tsvc is None or target == svc.name or "$" in target:
            return None, "", SAFETY
        if required is not False and not self.project.always_with(svc, tsvc):
            return None, f"{target!r} runs only with profile {', '.join(tsvc.profiles)}", SAFETY
        where = self.applies_in(svc, target, k)
        if not where:
            return None, "", SAFETY
        models = [(v, (self.project.model(v).get("services") or {}).get(target) or {}) for v in where]
        if all(one_shot(cfg, target) for _, cfg in models):
            return COMPLETED, f"{target!r} is a one-shot job", SAFETY
        if self.quiet(svc, target, where):
            return None, "", SAFETY  # nothing in it connects to the target: waiting only delays it
        peer = _peers(svc, tsvc)
        if peer:
            # Nodes of one cluster (OpenSearch, Cassandra, etcd...): the target may become healthy
            # only once its peers have joined it (a quorum, an elected manager), so a peer that
            # waits for it may never start.
            return None, f"{target!r} runs {peer} as it does: a node of the same cluster, whose health may need it", SAFETY
        healthy = [v for v in where if images.health(self.project, v, target) is not None]
        if healthy and self.broken(tsvc):
            return None, "", SAFETY  # a check that cannot pass would hold the dependent back for ever
        if len(healthy) == len(where):
            added = ("services", target, "healthcheck") in self.project.unsafe_changes
            # A check the stack writes with a program its image is not known to have may never
            # pass: then waiting on it stops `up`, where today the mark is only cosmetic.
            doubt = None if added else next((d for v in where if (d := health.unproven(self.project, target, v))), None)
            if doubt is not None:
                self.doubts[(svc.name, target)] = doubt
                return HEALTHY, f"{target!r} has a health check, but {doubt}", Safety.UNSAFE
            return HEALTHY, f"{target!r} has a health check", Safety.UNSAFE if added else SAFETY
        if healthy:
            self.partial[(svc.name, target)] = healthy
            missing = [v for v in where if v not in healthy]
            return None, (f"{target!r} to be healthy: it has no health check with "
                          f"{'; '.join(images.variant_names(self.project, v) for v in missing)}"), SAFETY
        self.wanted_probes.setdefault(target, []).append(svc.name)
        probe = self.probe(target)
        if probe is not None and probe.edit is not None:
            # It waits for the probe an unsafe fix of this run adds: as unsafe as that fix, and
            # only where every variant the wait is read in has the file the probe goes into (a
            # test file run alone would wait on a service with no health check: `up` fails).
            home = self.doc_index.get(id(probe.where.doc))
            missing = [v for v in where if home not in v]
            if missing:
                return None, (f"{target!r} to be healthy: the probe it gets goes into a file that "
                              f"{'; '.join(images.variant_names(self.project, v) for v in missing)} does not read"), SAFETY
            return HEALTHY, f"{target!r} gets the known-good probe", Safety.UNSAFE
        return None, "", SAFETY

    def broken(self, tsvc: Service) -> bool:
        """Whether healthcheck-probes finds the target's health check unable to pass."""
        got = self._broken.get(tsvc.name)
        if got is None:
            got = self._broken[tsvc.name] = any(True for _ in health.check(self.project, tsvc, health.DEFAULTS))
        return got

    def quiet(self, svc: Service, target: str, where: list[tuple[int, ...]]) -> bool:
        """Whether nothing in `svc` connects to `target` at run time, in every variant: it runs
        a static web server (nginx, httpd, caddy: its own command) whose configuration, read in
        full, passes no request to the target, and its environment does not name it. Then a
        health check of the target does not make `svc` any more ready: it only delays it."""
        static = images.section("static_servers")
        tcfg = self.project.services[target].config
        names = {target, *(str(tcfg[k]) for k in ("container_name", "hostname") if isinstance(tcfg.get(k), str))}
        nets = tcfg.get("networks")
        for spec in nets.values() if isinstance(nets, dict) else ():
            names.update(str(a) for a in (spec or {}).get("aliases") or () if isinstance(spec, dict))
        for v in where:
            f = facts.of(self.project, svc.name, v)
            if f is None:
                return False
            ref = f.base if f.built else f.image
            if ref is None or ref.family not in static.get("images", ()):
                return False
            if f.argv and not any(Path(w).name in static.get("commands", ()) for w in f.argv[:2]):
                return False
            for m in f.mounts:
                if m.kind == "bind" and m.target.startswith(tuple(static.get("config_paths", ()))) \
                        and (m.host is None or not m.host.exists()):
                    return False  # a config it reads that cannot be read here
            if any(not u.host or u.host in names for u in configs.upstreams(f)):
                return False
            said = " ".join(f"{k}={val}" for k, val in f.env.items())
            if any(re.search(rf"(?<![\w.-]){re.escape(n)}(?![\w-])", said) for n in names):
                return False
        return True

    def probe(self, target: str) -> _Probe | None:
        """The known-good probe `target` gets (a known image without a health check), once."""
        if target in self._probes:
            return self._probes[target]
        tsvc = self.project.services[target]
        got: _Probe | None = None
        home = tsvc.home
        probe = images.known_probe(tsvc.image, tsvc.config, self.project.env)
        # A disabled check is a decision; a local build has its own Dockerfile.
        if "healthcheck" not in tsvc.config and tsvc.build is None and probe is not None \
                and not (home is not None and tsvc.shadows(home, "healthcheck") is not None):
            edit = None
            if home is not None and isinstance(home.node, MappingNode) and probe.exact:
                edit = health.add_healthcheck(home.doc, home.node, home.key.end_mark.index, probe.test, self.options,
                                              probe.start_period)
            where = home or tsvc.defs[0]
            got = _Probe(probe, edit, where, self.project.with_extenders(self.project.sharers(where.node)))
        self._probes[target] = got
        return got

    # --- fixes --------------------------------------------------------------------------------

    def service(self, svc: Service) -> Iterator[Fix]:
        writers = self.writers(svc)
        for d in svc.defs:
            got = effective_entry(d.node, "depends_on")
            if got is None:
                continue
            holder, key, node = got
            doc = d.doc
            k = self.doc_index[id(doc)]
            entries = _entries(node)
            if not entries:
                continue
            # The entries Compose uses from this file in some variant: the last file that
            # writes one, or this one where a variant reads it without that file (run alone).
            own = [e for e in entries if writers.get(e.name) == k or self.applies_in(svc, e.name, k)]
            # Everyone the edit reaches: the services whose definition merges the block that holds
            # the key, the service's own definition included (`app: &app` merged by `cron`).
            users = self.project.with_extenders(self.project.sharers(holder) or [svc.name])
            if holder is not d.node and svc.name != self.project.sharers(holder)[0]:
                continue  # a shared block is decided once, by its first user
            if any(u not in self.allowed for u in users):
                continue  # shared with a service that opts out: not this pass's to edit
            if svc.shadows(d, "depends_on") is not None:
                continue  # a later file resets or overrides it: an edit here would be lost
            changes = tuple(("services", u, "depends_on") for u in users) + yamledit.holding_block(doc, holder)
            decisions: dict[str, tuple[str, Safety]] = {}
            doubts: dict[str, str] = {}  # why a wait is unsafe, where the target's check is in doubt
            notes: list[str] = []
            for e in own:
                cond, required = _written(e)
                if cond != STARTED:
                    continue
                want, why, safety = self.decide(svc, e.name, k, required)
                if want is None:
                    if why:
                        notes.append(why)
                    continue
                decisions[e.name] = (want, safety)
                if (svc.name, e.name) in self.doubts:
                    doubts[e.name] = self.doubts[(svc.name, e.name)]
            if self.held:
                continue  # no condition where `docker stack deploy` reads the file, or its authors took them out
            line, col = position(key)
            pairs = [(e, healthy) for e in own if (healthy := self.partial.get((svc.name, e.name))) is not None]
            waits, waited = self._wait_in_overrides(svc, pairs, k)
            yield from waits
            for e, _ in pairs:
                if e.name not in waited:
                    why = next(w for w in notes if w.startswith(f"{e.name!r} to be healthy"))
                    yield Fix(ID, f"service {svc.name!r} cannot wait for {why}", doc.path, line, col,
                              safety=Safety.DISPLAY_ONLY)
            safe = {n: c for n, (c, sf) in decisions.items() if sf is SAFETY}
            unsafe = {n: c for n, (c, sf) in decisions.items() if sf is not SAFETY}
            editable = not doc.readonly and not doc.is_alias(node, doc.key_end(key))
            if safe:
                message = f"service {svc.name!r} starts before its dependencies are ready; wait for {_listed(safe)}"
                yield self._fix(svc, doc, key, node, entries, safe, editable, message, SAFETY, changes, [])
            if unsafe:
                # The entries that wait on what an unsafe fix adds, in a fix of their own: on
                # top of the safe one where both are written in one block (the next round
                # proposes them again once the safe one is in), with the probes they wait for.
                both = {**safe, **unsafe} if isinstance(node, SequenceNode) else unsafe
                probes = [pr for n in unsafe if (pr := self._probes.get(n)) is not None and pr.edit is not None
                          and ("services", n, "healthcheck") not in self.project.unsafe_changes]
                pending = {p.where.key.value for p in probes}
                said = ", ".join(f"{n} ({_short(c)}{', once it has the known-good probe' if n in pending else ''})"
                                 for n, c in unsafe.items())
                message = f"service {svc.name!r} starts before its dependencies are ready; wait for {said}"
                if doubts:
                    message += "; unsafe: " + "; ".join(f"{n!r}: {d}" for n, d in doubts.items())
                yield self._fix(svc, doc, key, node, entries, both, editable, message, Safety.UNSAFE, changes, probes)

    def _fix(self, svc: Service, doc: ComposeDoc, key: ScalarNode, node: Node, entries: list[_Entry],
             decisions: dict[str, str], editable: bool, message: str, safety: Safety,
             changes: tuple[tuple[str, ...], ...], probes: list[_Probe]) -> Fix:
        line, col = position(key)
        edits = _edits(doc, key, node, entries, decisions) if editable else None
        if edits is None:
            why = ("a target named by a variable keeps the short form" if any("$" in e.name for e in entries)
                   else "its depends_on cannot be edited here")
            return Fix(ID, message + f" ({why})", doc.path, line, col, safety=Safety.DISPLAY_ONLY)
        for p in probes:
            assert p.edit is not None
            edits.append(p.edit)
            changes += tuple(("services", u, "healthcheck") for u in p.users)
        return Fix(ID, message, doc.path, line, col, tuple(edits), safety, tuple(dict.fromkeys(changes)))

    def _wait_in_overrides(self, svc: Service, pairs: list[tuple[_Entry, list[tuple[int, ...]]]],
                           k: int) -> tuple[list[Fix], set[str]]:
        """The health checks are there only with some override files: each wait goes into each of
        them that defines the service, so the base alone stays as it was. One fix per override
        file where it has no `depends_on` yet (one new block, whatever the waits), else one per
        wait; and the names of the dependencies some wait went to."""
        per_doc: dict[int, tuple[ServiceDef, dict[str, dict[str, Any]]]] = {}  # the waits each override gets
        unsafe: set[int] = set()  # the overrides one of whose waits is on a probe an unsafe fix adds
        for e, healthy in pairs:
            _, required = _written(e)
            extra: dict[str, Any] = {}
            if isinstance(e.node, MappingNode):
                for kk, vv in e.node.value:
                    if isinstance(kk, ScalarNode) and kk.value in ("required", "restart") and isinstance(vv, ScalarNode):
                        extra[str(kk.value)] = to_value(vv)
            added = ("services", e.name, "healthcheck") in self.project.unsafe_changes
            for v in healthy:
                i = v[-1]
                if i == k:
                    continue
                d = next((d for d in svc.defs if self.doc_index[id(d.doc)] == i), None)
                if d is None or not d.editable or not isinstance(d.node, MappingNode) or svc.shadows(d, "depends_on"):
                    continue
                own = d.get("depends_on")
                if own is not None and not isinstance(own[1], MappingNode):
                    continue
                per_doc.setdefault(i, (d, {}))[1][e.name] = {"condition": HEALTHY, **extra}
                if added:
                    unsafe.add(i)
        fixes: list[Fix] = []
        waited: set[str] = set()
        changes = tuple(("services", u, "depends_on") for u in self.project.with_extenders([svc.name]))
        # Another definition of the service (another file of the chain) may send waits to the
        # same override: each is written once, and a new `depends_on` block only once; what is
        # left goes into that block in the next round.
        written: dict[tuple[str, int], set[str]] = self.__dict__.setdefault("_override_waits", {})
        for i, (d, waits) in per_doc.items():
            assert isinstance(d.node, MappingNode)
            done = written.get((svc.name, i))
            if done is not None:
                waited.update(n for n in waits if n in done)
                if d.get("depends_on") is None:
                    continue  # this run's block is not in the text yet
                waits = {n: w for n, w in waits.items() if n not in done}
            written.setdefault((svc.name, i), set()).update(waits)
            line, col = position(d.key)
            safety = Safety.UNSAFE if i in unsafe else SAFETY
            where = images.variant_names(self.project, (i,))
            if d.get("depends_on") is None:
                groups = [(list(waits), yamledit.ensure(d.doc, d.node, ("depends_on",), waits, d.key.end_mark.index))]
            else:
                groups = [([n], yamledit.ensure(d.doc, d.node, ("depends_on", n), w, d.key.end_mark.index))
                          for n, w in waits.items()]
            for names, edits in groups:
                if not edits:
                    continue
                waited.update(names)
                said = ", ".join(repr(n) for n in names)
                one = len(names) == 1
                fixes.append(Fix(ID, f"service {svc.name!r} starts before {said} {'is' if one else 'are'} ready; wait "
                                 f"for {'it' if one else 'them'} to be healthy with {where}, which gives "
                                 f"{'it its health check' if one else 'them their health checks'}",
                                 d.doc.path, line, col, tuple(edits), safety, changes))
        return fixes, waited

    def probes(self) -> Iterator[Fix]:
        """A known image without a health check that a service would wait for: suggest its probe."""
        for target, waiting in self.wanted_probes.items():
            got = self.probe(target)
            if got is None:
                continue
            probe = got.probe
            who = ", ".join(map(repr, dict.fromkeys(waiting)))
            shown = probe.test[1] if probe.test[0] == "CMD-SHELL" else " ".join(map(_shown, probe.test[1:]))
            line, col = position(got.where.key)
            provenance: tuple[tuple[str, str], ...] = (("probe", probe.source),)
            if probe.start_period:
                provenance += ((f"start_period {probe.start_period}", probe.start_source),)
            tsvc = self.project.services[target]
            if not probe.exact:
                yield Fix(ID, f"service {target!r} has no health check in the stack, so {who} cannot wait for it to be "
                          f"ready; its image {tsvc.image} runs {probe.family} in an image of its own and may ship a HEALTHCHECK of its "
                          f"own, which a probe here would replace: if it has none, `{shown}` is the probe "
                          "(`--inspect` with its `docker image inspect` output tells)",
                          got.where.doc.path, line, col,
                          safety=Safety.DISPLAY_ONLY, provenance=provenance)
                continue
            if self.held:
                message = (f"service {target!r} has no health check; add the known-good probe `{shown}` (nothing is "
                           f"made to wait for it: {self.held})")
            else:
                message = (f"service {target!r} has no health check, so {who} cannot wait for it to be ready; "
                           f"add the known-good probe `{shown}`")
            if probe.start_period:
                message += (f", with a start period of {probe.start_period} (its first start initialises the data "
                            "directory before the probe can pass)")
            if got.edit is None:
                yield Fix(ID, message, got.where.doc.path, line, col, safety=Safety.DISPLAY_ONLY, provenance=provenance)
                continue
            yield Fix(ID, message, got.where.doc.path, line, col, (got.edit,), Safety.UNSAFE,
                      tuple(("services", u, "healthcheck") for u in got.users), provenance=provenance)


def _listed(decisions: dict[str, str]) -> str:
    return ", ".join(f"{n} ({_short(c)})" for n, c in decisions.items())


def _shown(word: str) -> str:
    """A word of a probe as a person would type it: double quotes where a shell needs quotes."""
    import shlex  # only for a word a health check quotes

    if shlex.quote(word) == word:
        return word
    return f'"{word}"' if not any(c in word for c in '"$`\\') else shlex.quote(word)


def _short(cond: str) -> str:
    return {HEALTHY: "healthy", COMPLETED: "completed successfully"}.get(cond, cond)


def _entries(node: Node) -> list[_Entry] | None:
    if isinstance(node, SequenceNode):
        out = []
        for item in node.value:
            if not isinstance(item, ScalarNode):
                return None
            out.append(_Entry(str(item.value), item, None))
        return out
    if isinstance(node, MappingNode):
        return [_Entry(str(k.value), v, k) for k, v in node.value if isinstance(k, ScalarNode) and k.value != "<<"]
    return None


def _written(e: _Entry) -> tuple[object, object]:
    """The condition and `required` an entry is written with (short form: started, required)."""
    if e.key is None:
        return STARTED, True
    if isinstance(e.node, MappingNode):
        got: dict[str, object] = {str(k.value): v.value for k, v in e.node.value
                                  if isinstance(k, ScalarNode) and isinstance(v, ScalarNode)}
        cond = got.get("condition", STARTED)
        req = got.get("required", True)
        return cond, False if req in ("false", "False", False) else req
    if isinstance(e.node, ScalarNode) and e.node.value in ("", "~", "null"):
        return STARTED, True
    return None, None


def _edits(doc: ComposeDoc, key: ScalarNode, node: Node, entries: list[_Entry], decisions: dict[str, str]) -> list[Edit] | None:
    if isinstance(node, SequenceNode):
        if any("$" in e.name for e in entries):
            return None  # a name from a variable is not a key the long form can be checked with
        if len({e.name for e in entries}) < len(entries):
            return None  # a name listed twice would be a duplicate key
        return _list_to_long(doc, key, node, entries, decisions)
    assert isinstance(node, MappingNode)
    # In a flow mapping (`{db: {condition: service_started}}`) only a value or a flow entry is
    # edited in place; an empty entry there cannot take a block under it (ensure says so).
    edits: list[Edit] = []
    for e in entries:
        cond = decisions.get(e.name)
        if cond is None:
            continue
        assert e.key is not None
        after = doc.key_end(e.key)
        v = e.node
        if isinstance(v, MappingNode):
            if doc.is_alias(v, after):
                return None
            kv = doc.get(v, "condition")
            if kv is not None:
                s = kv[1]
                if not isinstance(s, ScalarNode):
                    return None
                q = s.style if s.style in ("'", '"') else ""
                edits.append(Edit(doc.path, s.start_mark.index, s.end_mark.index, f"{q}{cond}{q}"))
            elif v.flow_style:
                if v.value:
                    end = v.value[-1][1].end_mark.index
                    edits.append(Edit(doc.path, end, end, f", condition: {cond}"))
                else:
                    edits.append(Edit(doc.path, v.start_mark.index, v.end_mark.index, f"{{condition: {cond}}}"))
            else:
                got = yamledit.append_entry(doc, v, "condition", cond, after)
                if got is None:
                    return None
                edits.append(got)
        else:
            got_list = yamledit.ensure(doc, node, (e.name, "condition"), cond, doc.key_end(key))
            if not got_list:
                return None
            edits.extend(got_list)
    return edits


def _list_to_long(doc: ComposeDoc, key: ScalarNode, node: SequenceNode, entries: list[_Entry],
                  decisions: dict[str, str]) -> list[Edit] | None:
    style = doc.style
    text = doc.text
    key_col = key.start_mark.column
    if node.flow_style:
        # `depends_on: [a, b]` becomes a block under its key; what follows the `]` stays.
        body = {e.name: {"condition": decisions.get(e.name, STARTED)} for e in entries}
        block = render.block(body, key_col + style.indent, style).removesuffix("\n")
        # A comment after the `]` moves up to the key's line, where it still reads as about it.
        end = node.end_mark.index
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        rest = text[end:line_end].rstrip("\r")
        if rest.strip() and not rest.lstrip().startswith("#"):
            return None
        return [Edit(doc.path, doc.key_end(key), end + len(rest), rest + "\n" + block)]
    edits = []
    for e in entries:
        item = e.node
        start = item.start_mark.index
        dash = text.rfind("-", 0, start)
        line_start = doc.line_start(dash)
        if dash < 0 or text[line_start:dash].strip() or text[dash + 1 : start].strip():
            return None
        end = item.end_mark.index
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        rest = text[end:line_end].rstrip("\r")
        if rest.strip() and not rest.lstrip().startswith("#"):
            return None
        column = dash - line_start
        if column <= key_col:
            column = key_col + style.indent
        name = text[start:end]
        pad = " " * column
        cond = decisions.get(e.name, STARTED)
        new = f"{pad}{name}:{rest}\n{pad}{' ' * style.indent}condition: {cond}"
        edits.append(Edit(doc.path, line_start, line_start + len(text[line_start:end]) + len(rest), new))
    return edits


_NUMBERS = lazyre.compile(r"\d+")


def _peers(svc: Service, target: Service) -> str | None:
    """The image both run, where they are numbered nodes of one cluster (`es01` and `es02`,
    `wazuh1.indexer` and `wazuh2.indexer`: names that differ only in their numbers) running the
    same image, or the same build; None for a client and its server (an API and its worker)."""
    if _NUMBERS.sub("#", svc.name) != _NUMBERS.sub("#", target.name):
        return None
    if svc.build is not None or target.build is not None:
        a, b = svc.build, target.build
        if a is not None and b is not None and a.dockerfile == b.dockerfile and a.target == b.target:
            return "the image it builds"
        return None
    image = svc.config.get("image")
    return image if isinstance(image, str) and image == target.config.get("image") else None
