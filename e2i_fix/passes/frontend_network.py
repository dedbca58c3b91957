"""frontend-network: a frontend gets a network of its own, shared only with what it talks to.

## What it does
Finds the stack's frontends and moves each to one new network that it shares only with the
services it talks to (and those that talk to it); everything else keeps its networks.

A service is a frontend when it is named in the `frontends` option, or (with no option) when
its environment has browser-build variables (`VITE_`, `REACT_APP_`, `NEXT_PUBLIC_`, `VUE_APP_`,
`NUXT_PUBLIC_`), it is built from a `frontend`/`web`/`ui`/`client` folder or Dockerfile, or from
a context whose `package.json` depends on a browser framework (React, Vue, Vite, Angular,
Svelte, Next...), or it runs a static web server image (nginx, httpd), or a node image under a
frontend name (`web`, `frontend`, `ui`...).

What a service talks to is inferred from its `depends_on` and `links`, the service names in the
URLs and `host:port` values of its environment, and the `proxy_pass` / `upstream` (and
`fastcgi_pass`, `uwsgi_pass`, `grpc_pass`) targets of the nginx configuration its container
uses: bind-mounted files or folders (`nginx.conf`, `conf.d/*.conf`, `templates/`) and the files
its Dockerfile COPYs there. Host names are service names, `container_name`s, `hostname`s and
network aliases.

Frontends linked to each other or to a common service share one new network; each other group
gets its own (`web-frontend`, `admin-frontend`...). The new network is declared at top level in the stack's own naming (`frontend_network` where
networks are called `*_network`, with `name: e2i_frontend_network` where the stack sets
`name: e2i_...` on its networks, and `driver: bridge` where all of them say so). The frontend
keeps only it (its aliases carried over); each service it talks to joins it and keeps its other
networks, in the form it writes them (list or mapping). A service on the implicit `default`
network gets `networks: [default, frontend_network]`, so it keeps every other link.

Left alone, with a finding that says why: a reverse proxy that fronts the stack (Traefik,
Caddy, HAProxy... or a frontend that talks to three services or more), a frontend that talks to
a `network_mode` service, one with a fixed `ipv4_address`, networks set in an override file,
through a merge key or `extends`, or services opted out. A frontend with no link found either
way is left alone without a word: there is nothing to go on.

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

import json
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from e2i_fix import fileroles, render, yamledit
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
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/\s]*@)?([A-Za-z0-9_.-]+)")
_HOST_PORT = re.compile(r"(?:^|[\s,;=(\"'])([A-Za-z][A-Za-z0-9_.-]*):([0-9]{2,5})\b")
_NGINX_PASS = re.compile(r"\b(?:proxy|fastcgi|uwsgi|scgi|grpc)_pass\s+([^\s;]+)")
_NGINX_SET = re.compile(r"\bset\s+\$\w+\s+[\"']?([A-Za-z][A-Za-z0-9+.-]*://[^\s;\"']+)")
_UPSTREAM = re.compile(r"\bupstream\s+([\w.-]+)\s*\{([^}]*)\}")
_SERVER = re.compile(r"\bserver\s+([^\s;]+)")
_COMMENT = re.compile(r"#[^\n]*")
_NGINX_FILES = (".conf", ".template", ".conf.template")
_MAX_CONFIG = 512 * 1024


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    got: dict[str, Any] = json.loads(_DATA.read_text(encoding="utf-8"))
    return got


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
    for path, text in _nginx_configs(project, svc):
        for h in nginx_targets(text):
            add(h, _shown(path, project.folder))
    return out


def _hosts_in(value: str) -> list[str]:
    return [m.group(1) for m in _URL.finditer(value)] + [m.group(1) for m in _HOST_PORT.finditer(value)]


def nginx_targets(text: str) -> list[str]:
    """The hosts an nginx configuration passes requests to (upstream servers expanded)."""
    text = _COMMENT.sub("", text)
    upstreams = {m.group(1): [_host(s) for s in _SERVER.findall(m.group(2))] for m in _UPSTREAM.finditer(text)}
    out: list[str] = []
    for target in [*_NGINX_PASS.findall(text), *_NGINX_SET.findall(text)]:
        host = _host(target)
        out += upstreams.get(host, [host])
    for servers in upstreams.values():
        out += servers
    return [h for h in dict.fromkeys(out) if h and not h.startswith("$")]


def _host(target: str) -> str:
    rest = target.split("://", 1)[-1]
    rest = rest.split("@", 1)[-1]
    return re.split(r"[:/]", rest, maxsplit=1)[0]


def _shown(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def _nginx_configs(project: Project, svc: Service) -> list[tuple[Path, str]]:
    """The nginx configuration files the service's container reads: bind mounts and the files
    its Dockerfile copies (read for the decision, never edited)."""
    paths: list[Path] = []
    vols = svc.config.get("volumes")
    for v in vols if isinstance(vols, list) else ():
        src: Any
        dst: Any
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) < 2:
                continue
            src, dst = parts[0], parts[1]
        elif isinstance(v, dict) and v.get("type", "bind") == "bind":
            src, dst = v.get("source"), v.get("target")
        else:
            continue
        if not isinstance(src, str) or not isinstance(dst, str) or "$" in src:
            continue
        if not (src.startswith((".", "/", "~")) and (dst.startswith("/etc/nginx") or "nginx" in dst
                                                       or src.endswith(_NGINX_FILES))):
            continue
        paths.append(project.folder / src if not src.startswith("/") else Path(src))
    build = svc.build
    stage = build.stage if build else None
    if build is not None and stage is not None and build.context is not None:
        for ins, sources in stage.copies():
            dest = ins.operands[-1]
            for s in sources:
                if dest.startswith("/etc/nginx") or s.endswith(_NGINX_FILES) or "nginx" in s:
                    paths.append(build.context / s)
    out: list[tuple[Path, str]] = []
    for p in paths:
        for f in _config_files(p):
            try:
                if f.stat().st_size <= _MAX_CONFIG:
                    out.append((f, f.read_text(encoding="utf-8", errors="replace")))
            except OSError:
                continue
    return out


def _config_files(p: Path) -> list[Path]:
    try:
        if p.is_file():
            return [p]
        if p.is_dir():
            return sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(_NGINX_FILES))[:50]
    except OSError:
        pass
    return []


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
    data = _data()
    env = svc.config.get("environment")
    for k in env if isinstance(env, dict) else ():
        if str(k).startswith(tuple(data["env_prefixes"])):
            return f"its environment has {k}"
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
        package = build.context / "package.json"
        deps = _package_deps(package)
        hit = next((p for p in data["packages"] if p in deps), None)
        if hit:
            return f"its package.json depends on {hit}"
    family = image_family(svc.image) or (image_family(build.stage.root_image) if build and build.stage else None)
    if family in data["static_images"] or family in data["gateways"]:
        return f"it runs {family}"
    if family in data["node_images"] and _named(svc.name.lower(), data["service_names"]):
        return f"it runs {family} under the name {svc.name!r}"
    return None


def _named(name: str, names: list[str]) -> bool:
    return any(name == n or name.startswith((f"{n}-", f"{n}_")) or name.endswith((f"-{n}", f"_{n}")) for n in names)


def _package_deps(path: Path) -> set[str]:
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
    data = _data()
    doc = project.docs[0]
    plan: dict[str, dict[str, list[str]]] = {}  # frontend -> neighbour -> why
    for f, why in fronts.items():
        svc = services[f]
        peers: dict[str, list[str]] = {t: list(w) for t, w in talks[f].items()}
        for other, t in talks.items():
            if f in t and other != f:
                peers.setdefault(other, []).extend(f"{other} -> {f}: {w}" for w in t[f])
        line, col = _where(svc)
        family = image_family(svc.image)
        if named is None and (family in data["gateways"] or len(talks[f]) >= data["gateway_targets"]):
            what = f"runs {family}" if family in data["gateways"] else f"talks to {', '.join(sorted(talks[f]))}"
            yield Fix(ID, f"service {f!r} {what}: a reverse proxy in front of the stack, left on its networks",
                      svc.defs[0].doc.path, line, col, safety=Safety.DISPLAY_ONLY)
            continue
        if not peers:
            continue  # nothing seen to keep or to cut: no evidence to act on
        if any(nets[p] is None for p in peers):
            odd = sorted(p for p in peers if nets[p] is None)
            yield Fix(ID, f"frontend {f!r} talks to {', '.join(odd)}, which use network_mode: left on its networks",
                      svc.defs[0].doc.path, line, col, safety=Safety.DISPLAY_ONLY)
            continue
        plan[f] = peers
    groups = [g for g in _components(plan) if not _isolated(g, plan, nets)]
    if not groups:
        return
    yield from _fix(project, doc, plan, groups, fronts, nets)


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
