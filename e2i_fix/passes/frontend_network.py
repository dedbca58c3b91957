"""frontend-network: a frontend gets a network of its own, shared only with what it talks to.

## What it does
Finds the stack's frontends and moves each to one new network that it shares only with the
services it talks to (and those that talk to it); everything else keeps its networks.

A service is a frontend when it is named in the `frontends` option, or (with no option) when
its environment has browser-build variables (`VITE_`, `REACT_APP_`, `NEXT_PUBLIC_`, `VUE_APP_`,
`NUXT_PUBLIC_`), it is built from a `frontend`/`web`/`ui`/`client` folder or Dockerfile, or its
image runs node or a static web server and its build context's `package.json` depends on a
browser framework (React, Vue, Vite, Angular, Svelte, Next...), or it runs a static web server
image (nginx, httpd), or a node image under a frontend name (`web`, `frontend`, `ui`...). What
runs decides first: a service whose entrypoint or command (or the scripts they run) starts an
application server or a worker (python, gunicorn, uwsgi, uvicorn, celery, rq, php-fpm, java...),
or a process supervisor (s6's `/init`, supervisord, runit: an all-in-one container of an app
server and its workers), is a backend, whatever browser-build variables it carries and whatever
package.json its build context holds (a Flask API built from a repository root that also holds
the browser app).

What a service talks to is inferred from its `depends_on` and `links`, the service names in the
URLs and `host:port` values of its environment and in values that are nothing but host names
(`REDIS_HOST: redis`, `ALLOWED_HOSTS: nginx,api`), and the proxy targets of the nginx, caddy or
haproxy configuration its container reads (bind-mounted or copied by its Dockerfile; read once
for every pass by `e2i_fix.facts`): `proxy_pass` and its kin, `upstream` servers, quoted or
not, `set $var` followed, `${VAR}` of a template filled from the service's environment. Host
names are service names, `container_name`s, `hostname`s and network aliases.

Frontends linked to each other or to a common service share one new network; each other group
gets its own (`web-frontend`, `admin-frontend`...). The new network is declared at top level in the stack's own naming (`frontend_network` where
networks are called `*_network`, with `name: e2i_frontend_network` where the stack sets
`name: e2i_...` on its networks, and `driver: bridge` where all of them say so). The frontend
keeps only it (its aliases carried over); each service it talks to joins it and keeps its other
networks, in the form it writes them (list or mapping). A service on the implicit `default`
network gets `networks: [default, frontend_network]`, so it keeps every other link.

Left alone, with a finding that says why:
- a reverse proxy that fronts the stack (a gateway): a Traefik, Caddy, HAProxy, nginx-proxy,
  docker-gen... image, a web server or proxy that mounts the Docker socket (where it finds its
  backends), or a frontend that talks to three services or more and passes requests to some
  through its proxy config. What runs decides, not the image alone: a one-shot job of such an
  image (a migration, init or setup job by its name or command, not restarted forever: `kong
  migrations bootstrap` with `restart: on-failure`) is neither a gateway nor a frontend;
- a frontend that a gateway finds through the Docker socket: one with a `VIRTUAL_HOST`,
  `VIRTUAL_HOST_MULTIPORTS` (nginx-proxy, docker-gen), `LETSENCRYPT_HOST` or `ACME_HOST`
  (acme-companion) variable, `traefik.*` labels (unless `traefik.enable=false`) or a `caddy`
  label (caddy-docker-proxy). Such a gateway reaches its backends only on a network they share,
  and may run in another stack: the frontend is never taken off its networks;
- a frontend that shares a network with a gateway of the stack: the proxy reaches it there, so
  it is never taken off it;
- a frontend that talks to three services or more otherwise (a network of its own would cut
  it off from little; it is not called a proxy);
- a frontend on a network with an explicit `name:` or an external one: outside stacks and
  proxies attach to it by that name, so it is never taken off it;
- a frontend on a network the stack declares that holds nothing but it, what it talks to and
  the stack's gateways (an nginx alone on `webnet`, beside the app's network): the stack draws
  its networks itself, and a network of the pass's would only leave its own unused;
- a frontend whose proxy config names a host with a variable nothing here fills in: what it
  talks to is not known;
- a frontend that talks to a `network_mode` service, one with a fixed `ipv4_address`, networks
  set in an override file, through a merge key or `extends`, or services opted out.

A frontend with no link found either way is left alone without a word: there is nothing to go
on.

## Why
A frontend on the main network can reach the databases and queues directly; one that is
compromised, or just misconfigured, should reach only the API it serves.

## Example
Before:

    services:
      web:
        build: ./frontend
        depends_on: [api]
      api:
        image: example/api:1.0
        depends_on: [db]
      db:
        image: postgres:16

After:

    services:
      web:
        build: ./frontend
        depends_on: [api]
        networks:
          - frontend
      api:
        image: example/api:1.0
        depends_on: [db]
        networks:
          - default
          - frontend
      db:
        image: postgres:16
    networks:
      frontend:

## Fix safety
Unsafe: it changes who can reach whom. A link it could not see (a host name built at run time,
a URL in a file it does not read) would be cut. The finding lists the links it inferred and
where each came from; review them before applying.

## Options
- `frontends`: service names to treat as the frontends (default: detect them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from e2i_fix import facts, fileroles, lazyre, render, yamledit
from e2i_fix.facts import configs, runs, sizes
from e2i_fix.fix import Edit, Fix, ModelPath, Safety
from e2i_fix.project import Project, Service, image_family, opted_out
from e2i_fix.yamldoc import ComposeDoc, MappingNode, ScalarNode, SequenceNode, effective_entry, position

ID = "frontend-network"
SUMMARY = "a frontend moves to its own network, shared only with the services it talks to"
SAFETY = Safety.UNSAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
READS = frozenset({"networks", "network_mode", "depends_on", "links", "environment", "volumes", "build", "image",
                   "extends", "container_name", "hostname"})
DEFAULTS: dict[str, Any] = {"frontends": None}

_DATA = Path(__file__).resolve().parents[1] / "data" / "frontend_network.json"
_URL = lazyre.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/\s]*@)?([A-Za-z0-9_.-]+)")
_HOST_PORT = lazyre.compile(r"(?:^|[\s,;=(\"'])([A-Za-z][A-Za-z0-9_.-]*):([0-9]{2,5})\b")
_MAX_CONFIG = 512 * 1024
_BARE = lazyre.compile(r"\s*[A-Za-z][A-Za-z0-9_.-]*(?:\s*,\s*[A-Za-z][A-Za-z0-9_.-]*)*\s*")


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    from e2i_fix import datafiles

    return datafiles.load(_DATA.name)


@lru_cache(maxsize=1)
def _backend_rx() -> re.Pattern[str]:
    words = "|".join(re.escape(w) for w in _data()["backends"])
    return re.compile(rf"(?:^|[\s/\"'=;&|(])((?:{words})[0-9.]*)(?=$|[\s\"';&|)])", re.MULTILINE)


# --- what talks to what ---------------------------------------------------------------------


def hosts(project: Project) -> dict[str, str]:
    """Host names that reach a service: its name, container_name, hostname, network aliases."""
    out: dict[str, str] = {}
    for name, svc in project.services.items():
        cfg = svc.config
        for key in ("container_name", "hostname"):
            v = cfg.get(key)
            if isinstance(v, str) and v:
                out.setdefault(v, name)
        nets = cfg.get("networks")
        if isinstance(nets, dict):
            for spec in nets.values():
                aliases = spec.get("aliases") if isinstance(spec, dict) else None
                for a in aliases if isinstance(aliases, list) else ():
                    out.setdefault(str(a), name)
    for name in project.services:
        out[name] = name
    return out


def talks_to(project: Project, svc: Service, known: dict[str, str],
             via: dict[str, set[str]] | None = None) -> dict[str, list[str]]:
    """The services `svc` talks to, each with where that was inferred from (and in `via`, the
    host names it uses for each)."""
    out: dict[str, list[str]] = {}

    def add(host: str, why: str) -> None:
        target = known.get(host)
        if target is None or target == svc.name:
            return
        if why not in out.setdefault(target, []):
            out[target].append(why)
        if via is not None:
            via.setdefault(target, set()).add(host)

    cfg = svc.config
    deps = cfg.get("depends_on")
    for d in deps if isinstance(deps, (dict, list)) else ():
        add(str(d), "depends_on")
    links = cfg.get("links")
    for link in links if isinstance(links, list) else ():
        add(str(link).split(":", 1)[0], "links")
    env = cfg.get("environment")
    for k, v in env.items() if isinstance(env, dict) else ():
        if isinstance(v, str):
            for h in _hosts_in(v):
                add(h, f"environment {k}")
    for u in _upstreams(project, svc):
        if u.host:
            add(u.host, u.where)
    return out


def _upstreams(project: Project, svc: Service) -> list[configs.Upstream]:
    """Where the proxy configs the service reads (nginx, caddy, haproxy; mounted or copied,
    quoted or not) pass requests to: the facts layer's one reading of them."""
    f = facts.of(project, svc)
    return configs.upstreams(f) if f is not None else []


def _hosts_in(value: str) -> list[str]:
    """Host names in an environment value: in URLs, in `host:port`, and a value that is nothing
    but host names (`REDIS_HOST: redis`, `ALLOWED_HOSTS: web,api`); the caller keeps those that
    name a service."""
    bare = value.replace(",", " ").split() if _BARE.fullmatch(value) else []
    return [m.group(1) for m in _URL.finditer(value)] + [m.group(1) for m in _HOST_PORT.finditer(value)] + bare


def backend(project: Project, svc: Service) -> str | None:
    """Why what the service runs is a backend (`it runs gunicorn`), if it is: its entrypoint
    and command, and the scripts they run, start an application server or a worker."""
    f = facts.of(project, svc)
    if f is None:
        return None
    sup = sizes.all_in_one(f)
    if sup is not None:
        return f"it runs {sup[0]} ({sup[1]}), a process supervisor: an all-in-one container of several servers"
    rx = _backend_rx()
    m = rx.search(" ".join(f.argv))
    if m is None:
        for script in f.scripts:
            m = rx.search(runs._code(script.text))
            if m is not None:
                break
    return f"it runs {m.group(1)}" if m else None


def networks_of(svc: Service) -> set[str] | None:
    """The networks a service is on (None: `network_mode`, it has none of its own)."""
    cfg = svc.config
    if cfg.get("network_mode") is not None:
        return None
    nets = cfg.get("networks")
    if isinstance(nets, dict):
        return {str(k) for k in nets}
    if isinstance(nets, list):
        return {str(n) for n in nets}
    return {"default"}


# --- what is a frontend ---------------------------------------------------------------------


def frontend_reason(project: Project, svc: Service) -> str | None:
    """Why the service is a frontend, if it is. What runs decides first: a service that runs an
    application server or a worker (python, gunicorn, uwsgi, celery...) is a backend, whatever
    browser-build variables it carries or its build context's package.json says. A package.json
    counts only for a service whose image runs node or a static web server."""
    if backend(project, svc):
        return None
    data = _data()
    env = svc.config.get("environment")
    for k in env if isinstance(env, dict) else ():
        if str(k).startswith(tuple(data["env_prefixes"])):
            return f"its environment has {k}"
    f = facts.of(project, svc)
    ref = (f.base if f.built else f.image) if f is not None else None
    family = ref.family if ref is not None else image_family(svc.image)
    build = svc.build
    if build is not None and build.context is not None:
        folders = set(build.context.resolve().parts[-1:]) if build.context != project.folder else set()
        if build.dockerfile is not None:
            try:
                rel = build.dockerfile.relative_to(build.context).parts[:-1]
            except ValueError:
                rel = ()
            folders.update(rel)
        for part in folders:
            if _named(part.lower(), data["folder_names"]):
                return f"it is built from {part}/"
        if family in (*data["node_images"], *data["static_images"]):
            deps = _package_deps(build.context / "package.json")
            hit = next((p for p in data["packages"] if p in deps), None)
            if hit:
                return f"its package.json depends on {hit}"
    if (family in data["static_images"] or family in data["gateways"]) and not _job(svc):
        return f"it runs {family}"
    if family in data["node_images"] and _named(svc.name.lower(), data["service_names"]):
        return f"it runs {family} under the name {svc.name!r}"
    return None


def _named(name: str, names: list[str]) -> bool:
    return any(name == n or name.startswith((f"{n}-", f"{n}_")) or name.endswith((f"-{n}", f"_{n}")) for n in names)


def _package_deps(path: Path) -> set[str]:
    import json

    try:
        if not path.is_file() or path.stat().st_size > _MAX_CONFIG:
            return set()
        pkg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    out: set[str] = set()
    for key in ("dependencies", "devDependencies"):
        got = pkg.get(key) if isinstance(pkg, dict) else None
        if isinstance(got, dict):
            out.update(got)
    return out


# --- the pass -------------------------------------------------------------------------------


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    if not project.docs or project.docs[0].readonly:
        return
    services = project.services
    ignored = options.get("_ignored_services", set())
    named = options.get("frontends")
    fronts: dict[str, str] = {}
    for name, svc in services.items():
        if name in ignored or svc.reset is not None or opted_out(svc, ID) or networks_of(svc) is None:
            continue
        if named is not None:
            if name in named:
                fronts[name] = "the frontends option names it"
        else:
            why = frontend_reason(project, svc)
            if why:
                fronts[name] = why
    if not fronts:
        return
    known = hosts(project)
    talks = {name: talks_to(project, svc, known) for name, svc in services.items()}
    nets = {name: networks_of(svc) for name, svc in services.items()}
    gates = {name: why for name, svc in services.items() if (why := gateway(project, svc, talks[name], known))}
    doc = project.docs[0]
    plan: dict[str, dict[str, list[str]]] = {}  # frontend -> neighbour -> why
    for f in fronts:
        svc = services[f]
        peers: dict[str, list[str]] = {t: list(w) for t, w in talks[f].items()}
        for other, t in talks.items():
            if f in t and other != f:
                peers.setdefault(other, []).extend(f"{other} -> {f}: {w}" for w in t[f])
        line, col = _where(svc)
        where = svc.defs[0].doc.path
        if named is None:
            if f in gates:
                yield Fix(ID, f"service {f!r} {gates[f]}: a reverse proxy in front of the stack, left on its networks",
                          where, line, col, safety=Safety.DISPLAY_ONLY)
                continue
            if len(talks[f]) >= _data()["gateway_targets"]:
                yield Fix(ID, f"service {f!r} talks to {', '.join(sorted(talks[f]))}: three services or more, a "
                          "network of its own would cut it off from little, left on its networks",
                          where, line, col, safety=Safety.DISPLAY_ONLY)
                continue
        if not peers:
            continue  # nothing seen to keep or to cut: no evidence to act on
        if any(nets[p] is None for p in peers):
            odd = sorted(p for p in peers if nets[p] is None)
            yield Fix(ID, f"frontend {f!r} talks to {', '.join(odd)}, which use network_mode: left on its networks",
                      where, line, col, safety=Safety.DISPLAY_ONLY)
            continue
        kept = _kept(project, svc, nets, gates)
        if kept:
            yield Fix(ID, f"frontend {f!r} {kept}", where, line, col, safety=Safety.DISPLAY_ONLY)
            continue
        plan[f] = peers
    groups = []
    for g in _components(plan):
        if _isolated(g, plan, nets):
            continue
        drawn = next(((f, d) for f in g if (d := _drawn(project, f, nets, gates, plan[f]))), None)
        if drawn:
            svc = project.services[drawn[0]]
            yield Fix(ID, drawn[1], svc.defs[0].doc.path, *_where(svc), safety=Safety.DISPLAY_ONLY)
            continue
        held = list(_held(project, g, nets))
        yield from held
        if not held:
            groups.append(g)
    if not groups:
        return
    yield from _fix(project, doc, plan, groups, fronts, nets)


# --- what a frontend is never taken off -----------------------------------------------------


def gateway(project: Project, svc: Service, talks: dict[str, list[str]], known: dict[str, str]) -> str | None:
    """Why the service is a way into the stack, if it is: it runs a reverse proxy image
    (`runs traefik`), it is a proxy that watches the Docker socket for its backends, or its proxy
    config passes requests to three services or more. (One that talks to that many services
    otherwise, a worker or an app with many clients, is no proxy; nor is a one-shot job that
    runs the proxy's image, `kong migrations bootstrap`.)"""
    data = _data()
    if _job(svc):
        return None  # what runs decides: a one-shot job of a proxy's image routes nothing
    f = facts.of(project, svc)
    ref = (f.base if f.built else f.image) if f is not None else None
    family = ref.family if ref is not None else image_family(svc.image)
    if family in data["gateways"]:
        return f"runs {family}"
    ups = _upstreams(project, svc)
    socket = _socket(f)
    if socket and (family in data["static_images"] or ups):
        return f"passes requests on and mounts the Docker socket ({socket}), where it finds its backends"
    if len(talks) < data["gateway_targets"]:
        return None
    proxied = sorted({known[u.host] for u in ups if u.host in known and known[u.host] != svc.name})
    return f"passes requests to {', '.join(proxied)}" if proxied else None


def _job(svc: Service) -> bool:
    """A one-shot job (`project.one_shot`: named or commanded like a migration, an
    init or setup job, and not restarted forever): it runs its task and exits, whatever image it
    runs, so it serves nothing and fronts nothing."""
    from e2i_fix.project import one_shot

    return one_shot(svc.config, svc.name)


def _socket(f: facts.Facts | None) -> str | None:
    """The Docker socket the service bind-mounts, if it does."""
    for m in f.mounts if f is not None else ():
        if m.kind == "bind" and m.source and m.source.rstrip("/").endswith("docker.sock"):
            return m.source
    return None


def discovered(project: Project, svc: Service) -> str | None:
    """How a gateway that watches the Docker socket finds the service, if the service marks
    itself for one: a `VIRTUAL_HOST` variable (nginx-proxy, docker-gen), `traefik.*` labels, a
    `caddy` label (caddy-docker-proxy). Such a gateway reaches it only on a network they share,
    and it may run in this stack or in another."""
    marks = _data()["discovery"]
    f = facts.of(project, svc)
    env = f.env if f is not None else project.environment_of(svc.config)
    for key, who in marks["env"].items():
        if key in env:
            return f"carries {key}, by which {who} finds it through the Docker socket"
    raw = svc.config.get("labels")
    labels = {str(k): "" if v is None else str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    for prefix, who in marks["labels"].items():
        stem = prefix.rstrip(".")
        hit = sorted(k for k in labels if k == stem or k.startswith((f"{stem}.", f"{stem}_")))
        off = any(k.startswith(f"{stem}.") and labels.get(k, "").strip().lower() == v for k, v in marks["off"].items())
        if hit and not off:
            return f"carries the label {hit[0]}, by which {who} finds it through the Docker socket"
    return None


def _kept(project: Project, svc: Service, nets: dict[str, set[str] | None], gates: dict[str, str]) -> str | None:
    """Why a frontend stays on its networks whatever it talks to, if it does: a gateway finds it
    through the Docker socket, or it shares a network with a gateway of the stack (a reverse
    proxy reaches it there)."""
    how = discovered(project, svc)
    if how:
        return f"{how} and reaches it only on a network they share: left on its networks"
    mine = nets[svc.name] or set()
    for g in sorted(gates):
        shared = sorted(mine & (nets[g] or set()))
        if g != svc.name and shared:
            return (f"shares network `{shared[0]}` with {g!r}, which {gates[g]}: a reverse proxy in front of the "
                    "stack reaches it there, left on its networks")
    return None


def _drawn(project: Project, f: str, nets: dict[str, set[str] | None], gates: dict[str, str],
           peers: dict[str, list[str]]) -> str | None:
    """Why the stack has drawn its networks around a frontend itself, if it has: the frontend
    is on a network the stack declares that holds nothing but the frontend, what it talks to
    and the stack's gateways (a `webnet` of its own beside the app's network). The authors
    segment the stack themselves; a network of the pass's would only redraw their lines."""
    declared = project.model(project.widest).get("networks") or {}
    for n in sorted((nets[f] or set()) - {"default"}):
        if not isinstance(declared, dict) or n not in declared:
            continue
        others = sorted(o for o, theirs in nets.items() if o != f and theirs and n in theirs)
        if all(o in peers or o in gates for o in others):
            company = f"shares only with {', '.join(others)}" if others else "has to itself"
            return (f"frontend {f!r} is on `{n}`, a network of the stack's own that it {company}: the stack draws "
                    "its networks itself, left on them")
    return None


def _held(project: Project, group: list[str], nets: dict[str, set[str] | None]) -> Iterator[Fix]:
    """Why a group of frontends stays on its networks: one of them is on a network others attach
    to by name, its proxy configuration is not known here, or it passes requests to a host it names with a variable."""
    for f in group:
        svc = project.services[f]
        line, col = _where(svc)
        where = svc.defs[0].doc.path
        fixed = _fixed_networks(project, nets[f] or set())
        if fixed:
            yield Fix(ID, f"frontend {f!r} is on network {fixed}: left on its networks", where, line, col,
                      safety=Safety.DISPLAY_ONLY)
            continue
        reading = facts.of(project, svc)
        unread = configs.unread_proxy_config(reading) if reading is not None else None
        if unread is not None:
            yield Fix(ID, f"frontend {f!r}: {unread}: what it passes requests to is not known, left on its networks",
                      where, line, col, safety=Safety.DISPLAY_ONLY)
            continue
        unknown = sorted({u.where for u in _upstreams(project, svc) if not u.host})
        if unknown:
            yield Fix(ID, f"frontend {f!r} passes requests to a host its proxy config names with a variable "
                      f"({', '.join(unknown)}): what it talks to is not known, left on its networks",
                      where, line, col, safety=Safety.DISPLAY_ONLY)


def _fixed_networks(project: Project, names: set[str]) -> str | None:
    """A network of `names` that outside containers may attach to by name: one with an explicit
    `name:`, or an external one (the service must stay on it)."""
    declared = project.model(project.widest).get("networks") or {}
    for n in sorted(names):
        spec = declared.get(n) if isinstance(declared, dict) else None
        if not isinstance(spec, dict):
            continue
        if spec.get("external"):
            return f"`{n}`, which is external (created outside the stack, which others share)"
        if isinstance(spec.get("name"), str):
            return f"`{n}`, which has an explicit name (`name: {spec['name']}`: outside stacks and proxies attach to it)"
    return None


def _where(svc: Service) -> tuple[int, int]:
    return position(svc.defs[0].key)


def _components(plan: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Frontends linked to each other or to a common service form one group; each group gets a
    network of its own, so a frontend never shares one with another group's services."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for f, peers in plan.items():
        for p in peers:
            parent[find(p)] = find(f)
    out: dict[str, list[str]] = {}
    for f in plan:
        out.setdefault(find(f), []).append(f)
    del find  # a closure over itself would be a reference cycle
    return list(out.values())


def _isolated(group: list[str], plan: dict[str, dict[str, list[str]]], nets: dict[str, set[str] | None]) -> bool:
    """Whether the group's frontends already share their networks only with the group."""
    allowed = {*group, *(p for f in group for p in plan[f])}
    for f in group:
        mine = nets[f] or set()
        if any(o not in allowed and theirs and theirs & mine for o, theirs in nets.items()):
            return False
        if not all((nets[p] or set()) & mine for p in plan[f]):
            return False
    return True


def _network_names(doc: ComposeDoc, groups: list[list[str]]) -> tuple[list[str], dict[str, Any]]:
    """One new network per group, in the stack's naming: the suffix its networks share
    (`_network`...), the `name:` prefix they are given, their common `driver: bridge`."""
    declared = doc.value.get("networks")
    declared = declared if isinstance(declared, dict) else {}
    keys = [str(k) for k in declared]
    suffix = next((x for x in ("_network", "-network", "_net", "-net") if any(k.endswith(x) for k in keys)), "")
    taken = set(keys)
    names = []
    for g in groups:
        joiner = "-" if suffix.startswith("-") or not suffix and "-" in g[0] else "_"
        base = f"frontend{suffix}" if len(groups) == 1 else f"{g[0]}{joiner}frontend{suffix}"
        name, i = base, 2
        while name in taken:
            name = f"{base}{joiner}{i}"
            i += 1
        taken.add(name)
        names.append(name)
    spec: dict[str, Any] = {}
    for k, v in declared.items():
        given = v.get("name") if isinstance(v, dict) else None
        if isinstance(given, str) and given.endswith(str(k)) and given != k:
            spec["name"] = given[: len(given) - len(str(k))]  # the prefix
            break
    if declared and all(isinstance(v, dict) and v.get("driver") == "bridge" for v in declared.values()):
        spec["driver"] = "bridge"
    return names, spec


class _Skip(Exception):
    """A service whose networks cannot be edited here, and why."""


def _fix(project: Project, doc: ComposeDoc, plan: dict[str, dict[str, list[str]]], groups: list[list[str]],
         fronts: dict[str, str], nets: dict[str, set[str] | None]) -> Iterator[Fix]:
    services = project.services
    names, spec = _network_names(doc, groups)
    edits: list[Edit] = []
    changes: list[ModelPath] = []
    specs: dict[str, dict[str, Any]] = {}
    parts: list[str] = []
    provenance: list[tuple[str, str]] = []
    try:
        for net, group in zip(names, groups):
            own = dict(spec)
            if "name" in own:
                own["name"] = own["name"] + net
            specs[net] = own
            joined: set[str] = set()
            for f in group:
                edits.append(_only(project, services[f], net))
                changes += [("services", s, "networks") for s in project.with_extenders([f])]
            for f in group:
                for p in plan[f]:
                    if p in plan or p in joined:
                        continue
                    joined.add(p)
                    edit = _join(project, services[p], net, nets[p] or set())
                    if edit is not None:
                        edits.append(edit)
                        home = services[p].home
                        users = project.with_extenders(project.sharers(home.node) if home else [p])
                        changes += [("services", s, "networks") for s in users]
                parts.append(f"frontend {f!r} ({fronts[f]}) moves to network `{net}`, shared only with "
                             + ", ".join(f"{p} ({'; '.join(w)})" for p, w in plan[f].items()))
                provenance += [(f"{f} -> {p}", "; ".join(w)) for p, w in plan[f].items()]
        top, paths = _declare(doc, specs)
    except _Skip as e:
        first = groups[0][0]
        line, col = _where(services[first])
        yield Fix(ID, f"frontend {first!r} could get a network of its own, but {e}", services[first].defs[0].doc.path,
                  line, col, safety=Safety.DISPLAY_ONLY)
        return
    edits.append(top)
    changes += paths
    first = groups[0][0]
    line, col = _where(services[first])
    yield Fix(ID, "; ".join(parts), services[first].defs[0].doc.path, line, col, tuple(edits), SAFETY,
              tuple(dict.fromkeys(changes)), provenance=tuple(provenance))


def _home(project: Project, svc: Service) -> tuple[ComposeDoc, MappingNode, int]:
    home = svc.home
    if home is None or not isinstance(home.node, MappingNode) or home.doc is not project.docs[0]:
        raise _Skip(f"{svc.name!r} cannot be edited here")
    for d in svc.defs:
        if d is not home and d.get("networks") is not None:
            raise _Skip(f"{d.doc.path.name} sets the networks of {svc.name!r}")
    if svc.shadows(home, "networks") is not None:
        raise _Skip(f"an override replaces the networks of {svc.name!r}")
    return home.doc, home.node, home.key.end_mark.index


def _only(project: Project, svc: Service, net: str) -> Edit:
    """The frontend keeps only the new network (its aliases carried over)."""
    doc, node, after = _home(project, svc)
    if project.sharers(node) != [svc.name] or project.with_extenders([svc.name]) != [svc.name]:
        raise _Skip(f"other services share the definition of {svc.name!r}")
    if svc.name in project.extends_parents:
        raise _Skip(f"{svc.name!r} extends another service")
    got = effective_entry(node, "networks")
    if got is not None and got[0] is not node:
        raise _Skip(f"the networks of {svc.name!r} come from a merge key")
    cfg = svc.config.get("networks")
    if isinstance(cfg, dict) and any(isinstance(v, dict) and (v.get("ipv4_address") or v.get("ipv6_address"))
                                     for v in cfg.values()):
        raise _Skip(f"{svc.name!r} has a fixed address")
    aliases = _aliases(cfg)
    value: Any = {net: {"aliases": aliases}} if aliases else [net]
    if got is None:
        edit = yamledit.append_entry(doc, node, "networks", value, after)
        if edit is None:
            raise _Skip(f"the mapping of {svc.name!r} cannot be edited here")
        return edit
    _, key, val = got
    key_end = doc.key_end(key)
    if doc.is_alias(val, key_end):
        raise _Skip(f"the networks of {svc.name!r} are an alias")
    if isinstance(val, (MappingNode, SequenceNode)) and val.value and not val.flow_style:
        if isinstance(val, MappingNode) and not aliases:
            value = {net: None}
        start = doc.line_after(key_end)
        stop = doc.line_after(doc.content_end(val, key_end))
        column = key.start_mark.column + doc.style.indent
        text = _block(value, column, doc)
        if stop == len(doc.text) and not doc.text.endswith("\n"):
            text = text.removesuffix("\n")
        return Edit(doc.path, start, stop, text)
    # A flow collection or an empty value: written again in flow style, on the key's line.
    end = doc.content_end(val, key_end)
    flow = f"[{net}]" if not aliases else "{" + f"{net}: {{aliases: [{', '.join(aliases)}]}}" + "}"
    return Edit(doc.path, key_end, end, f" {flow}")


def _aliases(networks: Any) -> list[str]:
    out: list[str] = []
    for v in networks.values() if isinstance(networks, dict) else ():
        got = v.get("aliases") if isinstance(v, dict) else None
        out += [str(a) for a in got if str(a) not in out] if isinstance(got, list) else []
    return out


def _block(value: Any, column: int, doc: ComposeDoc) -> str:
    if isinstance(value, dict) and all(v is None for v in value.values()):
        return "".join(f"{' ' * column}{render.scalar(k, doc.style)}:\n" for k in value)
    if isinstance(value, list):
        pad = " " * (column - doc.style.indent + doc.style.seq_offset)
        return "".join(f"{pad}- {render.scalar(v, doc.style)}\n" for v in value)
    return render.block(value, column, doc.style)


def _join(project: Project, svc: Service, net: str, current: set[str]) -> Edit | None:
    """A service the frontend talks to joins the new network, keeping its others."""
    if net in current:
        return None
    if opted_out(svc, ID):
        raise _Skip(f"{svc.name!r} opts out of {ID}")
    doc, node, after = _home(project, svc)
    got = effective_entry(node, "networks")
    if got is None:
        if svc.config.get("networks") is not None:
            if svc.name not in project.extends_parents:
                raise _Skip(f"the networks of {svc.name!r} come from elsewhere")
            value = [net]  # `extends` adds a service's own networks to those it inherits
        else:
            value = ["default", net]  # explicit networks take a service off `default`: keep it
        edit = yamledit.append_entry(doc, node, "networks", value, after)
        if edit is None:
            raise _Skip(f"the mapping of {svc.name!r} cannot be edited here")
        return edit
    holder, key, val = got
    if holder is not node:
        raise _Skip(f"the networks of {svc.name!r} come from a merge key")
    key_end = doc.key_end(key)
    if doc.is_alias(val, key_end) or not isinstance(val, (MappingNode, SequenceNode)) or not val.value:
        raise _Skip(f"the networks of {svc.name!r} cannot be edited here")
    # Aliases are per network: the frontend may reach the service by one (an nginx upstream
    # often does), so they come along to the new network.
    aliases = _aliases(svc.config.get("networks"))
    if val.flow_style:
        if aliases:
            raise _Skip(f"the networks of {svc.name!r} are a flow mapping with aliases")
        close = doc.content_end(val, key_end) - 1
        text = f", {net}" if isinstance(val, SequenceNode) else f", {net}: null"
        return Edit(doc.path, close, close, text)
    pos = doc.line_after(doc.content_end(val, key_end))
    if isinstance(val, SequenceNode):
        first = val.value[0]
        dash = doc.text.rfind("-", 0, first.start_mark.index)
        text = f"{' ' * (dash - doc.line_start(dash))}- {render.scalar(net, doc.style)}\n"
    elif aliases:
        text = render.entry(net, {"aliases": aliases}, val.value[0][0].start_mark.column, doc.style)
    else:
        text = f"{' ' * val.value[0][0].start_mark.column}{render.scalar(net, doc.style)}:\n"
    if pos == len(doc.text) and not doc.text.endswith("\n"):
        text = "\n" + text.removesuffix("\n")
    return Edit(doc.path, pos, pos, text)


def _declare(doc: ComposeDoc, specs: dict[str, dict[str, Any]]) -> tuple[Edit, list[ModelPath]]:
    kv = doc.get(doc.root, "networks")
    if kv is None:
        column = doc.root.value[0][0].start_mark.column
        text = f"{' ' * column}networks:\n" + _entries(specs, column + doc.style.indent, doc)
        gap = "\n" if yamledit.top_level_gap(doc) else ""
        edit = yamledit.top_level_text(doc, gap + text, before="\0")  # no such key: the end
        return edit, [("networks",)]
    key, node = kv
    key_end = doc.key_end(key)
    if isinstance(node, MappingNode) and node.value and not node.flow_style and not doc.is_alias(node, key_end):
        column = node.value[0][0].start_mark.column
        pos = doc.line_after(doc.content_end(node, key_end))
        paths: list[ModelPath] = [("networks", n) for n in specs]
    elif isinstance(node, ScalarNode) and not node.value and not node.style:
        column = key.start_mark.column + doc.style.indent
        pos = doc.line_after(key_end)
        paths = [("networks",)]
    else:
        raise _Skip("the top-level networks cannot be edited here")
    text = _entries(specs, column, doc)
    if pos == len(doc.text) and not doc.text.endswith("\n"):
        text = "\n" + text.removesuffix("\n")
    return Edit(doc.path, pos, pos, text), paths


def _entries(specs: dict[str, dict[str, Any]], column: int, doc: ComposeDoc) -> str:
    return "".join(_entry(k, v or None, column, doc) for k, v in specs.items())


def _entry(key: str, value: Any, column: int, doc: ComposeDoc) -> str:
    if value is None:
        return f"{' ' * column}{render.scalar(key, doc.style)}:\n"
    return render.entry(key, value, column, doc.style)
