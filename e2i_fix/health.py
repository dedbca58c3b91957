"""Health checks: whether a service's health check can pass (its tool is in the image, its
path is served, its port is listened on, an inherited `HEALTHCHECK` fits the command), and the
one way a health check is written into a service.

The `healthcheck-probes` pass reports and fixes what this module finds; `depends-on-healthy`
asks it before it makes anything wait for a check. Its findings carry that pass's id.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from e2i_fix import images, render, yamledit
from e2i_fix.dockerfile import Stage
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, Service, command_text, image_family, role
from e2i_fix.yamldoc import ComposeDoc, MappingNode, Node, ScalarNode, SequenceNode, effective_entry, position

ID = "healthcheck-probes"  # the pass that reports what this module finds
SAFETY = Safety.UNSAFE
# The timings of a health check this module adds (healthcheck-probes' options override them).
DEFAULTS: dict[str, Any] = {"interval": "30s", "timeout": "10s", "retries": 3}

_URL = re.compile(r"(https?)://([A-Za-z0-9_.\-\[\]]+)(?::(\d+))?(/[^\s'\"),;]*)?")
_LOCAL = {"localhost", "127.0.0.1", "0.0.0.0", "[::1]"}
_PORT_FLAG = images.PORT_FLAG
_PROBE_TOOLS = ("curl", "wget", "python", "python3", "node", "nc")


class _Probe(NamedTuple):
    tool: str | None
    url: re.Match[str] | None
    text: str


def _parse(test: Any) -> _Probe | None:
    if isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL"):
        if test[0] == "CMD":
            words = [str(x) for x in test[1:]]
            text = " ".join(words)
        else:
            text = " ".join(str(x) for x in test[1:])
            words = _first_command(text)
    elif isinstance(test, str):
        text = test
        words = _first_command(text)
    else:
        return None
    tool = Path(words[0]).name if words else None
    return _Probe(tool, _URL.search(text), text)


def _first_command(text: str) -> list[str]:
    first = re.split(r"\s(?:&&|\|\||;|\|)\s", text, maxsplit=1)[0]
    try:
        return shlex.split(first)
    except ValueError:
        return first.split()


def _stage(project: Project, svc: Service) -> Stage | None:
    return images.built_stage(project, svc.config)


def check(project: Project, svc: Service, options: dict[str, Any]) -> Iterator[Fix]:
    """What this pass finds wrong with one service's health check (depends-on-healthy asks it
    before it makes anything wait for that check)."""
    return _service(project, svc, options)


def _service(project: Project, svc: Service, options: dict[str, Any]) -> Iterator[Fix]:
    hc = svc.config.get("healthcheck")
    stage = _stage(project, svc)
    if isinstance(hc, dict) and (hc.get("disable") is True or hc.get("test") in (["NONE"], "NONE")):
        return
    if isinstance(hc, dict) and hc.get("test") is not None:
        probe = _parse(hc["test"])
        if probe is not None:
            yield from _compose_check(project, svc, stage, probe)
        return
    # The stage can differ by variant (an override's `build.target`): the first variant whose
    # stage has a HEALTHCHECK the service inherits is the one to judge.
    for v in images.variants(project):
        cfg = (project.model(v).get("services") or {}).get(svc.name)
        own = cfg.get("healthcheck") if isinstance(cfg, dict) else None
        if not isinstance(cfg, dict) or isinstance(own, dict) and (own.get("test") is not None or own.get("disable")):
            continue  # its own check (or none): only timings keep the image's test
        st = images.built_stage(project, cfg)
        if st is not None and st.healthcheck is not None:
            yield from _inherited(project, svc, cfg, st, options)
            return


# --- a health check written in the compose files ----------------------------------------------


def _test_node(svc: Service) -> tuple[ComposeDoc, ScalarNode, Node, list[str]] | None:
    """Where the effective `test:` is written, and the services that share it."""
    for d in reversed(svc.defs):
        got = effective_entry(d.node, "healthcheck")
        if got is None:
            continue
        holder, key, hc = got
        kv = d.doc.get(hc, "test") if isinstance(hc, MappingNode) else None
        if kv is None:
            continue
        if d.doc.readonly or d.doc.is_alias(hc, d.doc.key_end(key)) or d.doc.is_alias(kv[1], d.doc.key_end(kv[0])):
            return None
        return d.doc, kv[0], kv[1], [svc.name] if holder is d.node else []
    return None


def _compose_check(project: Project, svc: Service, stage: Stage | None, probe: _Probe) -> Iterator[Fix]:
    where = _test_node(svc)
    at = where[1] if where else (svc.home or svc.defs[0]).key
    doc_path = where[0].path if where else (svc.home or svc.defs[0]).doc.path
    line, col = position(at)
    editable = where is not None and bool(where[3])
    changes = tuple(("services", u, "healthcheck") for u in project.with_extenders([svc.name]))

    def fix(message: str, new_test: list[str] | None = None, old: str | None = None, new: str | None = None,
            provenance: tuple[tuple[str, str], ...] = ()) -> Fix:
        edits: list[Edit] | None = None
        if editable and where is not None:
            if new_test is not None:
                edits = _replace_test(where[0], where[1], where[2], new_test)
            elif old is not None and new is not None:
                edits = _replace_in_test(where[0], where[2], old, new)
        if not edits:
            return Fix(ID, message, doc_path, line, col, safety=Safety.DISPLAY_ONLY, provenance=provenance)
        return Fix(ID, message, doc_path, line, col, tuple(edits), SAFETY, changes, provenance=provenance)

    tools = images.stage_tools(stage) if stage is not None else images.image_tools(svc.image) if svc.build is None else None
    url = probe.url
    if probe.tool in _PROBE_TOOLS and tools is not None and probe.tool not in tools:
        base = stage.root_image if stage is not None else svc.image
        message = f"service {svc.name!r}: the health check runs {probe.tool}, which {base} does not have"
        if stage is not None:
            message += " and its Dockerfile does not install"
        replacement = _with_tool(tools, url.group(0)) if url else None
        if replacement is not None:
            yield fix(message + f"; probe with {replacement[0]} instead", new_test=replacement,
                      provenance=(("tools", f"{base} (e2i_fix/data/images.json)"),))
        else:
            yield fix(message)
        return
    if url is None or url.group(2) not in _LOCAL or probe.text[url.end():url.end() + 2] in (":$", "${") \
            or probe.text[url.end():url.end() + 1] == "$":
        return  # a port or path from a variable is the variable's
    path = url.group(4) or "/"
    port = int(url.group(3)) if url.group(3) else (443 if url.group(1) == "https" else 80)
    dev = _dev_server(svc, stage)
    if dev is not None and path not in ("", "/"):
        new_url = url.group(0)[: len(url.group(0)) - len(url.group(4) or "")] + "/"
        yield fix(f"service {svc.name!r}: the health check probes {path}, which the {dev[0]} dev server does not "
                  f"have ({dev[1]}); probe / instead", old=url.group(0), new=new_url)
        return
    if _is_nginx(svc, stage) and path not in ("", "/"):
        configs = _nginx_configs(project, svc, stage)
        if not any(_has_location(text, path) for text in configs):
            what = "the nginx config the service mounts or copies" if configs else "the nginx image's default config"
            yield fix(f"service {svc.name!r}: the health check probes {path}, which {what} has no `location` for; "
                      f"add `location = {path} {{ return 200; }}` or probe /")
            return
    ports, why = _listening(svc, stage)
    if ports and port not in ports:
        listed = ", ".join(map(str, sorted(ports)))
        message = f"service {svc.name!r}: the health check probes port {port}, but the service listens on {listed} ({why})"
        if len(ports) == 1 and url.group(3):
            new_port = next(iter(ports))
            new_url = url.group(0).replace(f":{port}", f":{new_port}", 1)
            yield fix(message + f"; probe {new_port}", old=url.group(0), new=new_url, provenance=(("port", why),))
        else:
            yield fix(message, provenance=(("port", why),))


def _with_tool(tools: set[str], url: str) -> list[str] | None:
    if "wget" in tools:
        return ["CMD", "wget", "-q", "--spider", url]
    for py in ("python3", "python"):
        if py in tools:
            return ["CMD", py, "-c", f"import urllib.request; urllib.request.urlopen('{url}', timeout=5)"]
    if "node" in tools:
        return ["CMD", "node", "-e",
                f"require('http').get('{url}', r => process.exit(r.statusCode < 400 ? 0 : 1)).on('error', () => process.exit(1))"]
    return None


def _dev_server(svc: Service, stage: Stage | None) -> tuple[str, str] | None:
    """(`vite`, why) when the service runs a development server, from its command, else from
    its environment and port."""
    if stage is not None and _is_nginx(svc, stage):
        return None
    cmd = command_text(svc.config) or _stage_command(stage)
    env = svc.config.get("environment")
    keys = [str(k) for k in env] if isinstance(env, dict) else []
    container_ports = _container_ports(svc)
    for name, spec in images.section("dev_servers").items():
        if name.startswith("_"):
            continue
        port = int(spec["port"])
        if cmd and re.search(spec["command"], cmd):
            return name, f"its command is `{cmd}`"
        if cmd and re.search(spec["generic"], cmd) and (port in container_ports or f":{port}" in cmd):
            return name, f"its command is `{cmd}` on {port}, {name}'s port"
        if not cmd and port in container_ports and any(k.startswith(spec["env_prefix"]) for k in keys):
            return name, f"it serves {port}, {name}'s port, with {spec['env_prefix']}* variables"
    return None


def _stage_command(stage: Stage | None) -> str:
    while stage is not None:
        parts = [" ".join(ins.operands) for n in ("ENTRYPOINT", "CMD") if (ins := stage.last(n)) is not None]
        if parts:
            return " ".join(parts)
        stage = stage.parent
    return ""


def _is_nginx(svc: Service, stage: Stage | None) -> bool:
    image = stage.root_image if stage is not None else svc.image
    fam = image_family(image) or ""
    return fam in ("nginx", "nginx-unprivileged", "openresty") or fam.startswith("nginx")


def _nginx_configs(project: Project, svc: Service, stage: Stage | None) -> list[str]:
    """The text of the nginx config files the service mounts or its image copies."""
    out: list[str] = []
    sources: list[Path] = []
    vols = svc.config.get("volumes")
    for v in vols if isinstance(vols, list) else []:
        src, target = (v.get("source"), v.get("target")) if isinstance(v, dict) else (str(v).split(":") + [""])[:2]
        if isinstance(src, str) and isinstance(target, str) and target.startswith("/etc/nginx") and src.startswith((".", "/")):
            sources.append(project.folder / src)
    if stage is not None and svc.build is not None and svc.build.context is not None:
        s: Stage | None = stage
        while s is not None:
            for ins, srcs in s.copies():
                if ins.operands and ins.operands[-1].startswith("/etc/nginx"):
                    sources.extend(svc.build.context / p for p in srcs)
            s = s.parent
    for p in sources:
        files = sorted([*p.glob("*.conf"), *p.glob("*.template")]) if p.is_dir() else [p]
        for f in files:
            try:
                out.append(f.read_text(encoding="utf-8", errors="replace"))
            except OSError:
                continue
    return out


def _has_location(text: str, path: str) -> bool:
    for m in re.finditer(r"\blocation\s+(=|\^~|~\*?)?\s*([^\s{]+)\s*\{", text):
        kind, loc = m.group(1), m.group(2)
        if kind in ("~", "~*"):
            if re.search(loc, path, re.IGNORECASE if kind == "~*" else 0):
                return True
        elif kind == "=":
            if loc == path:
                return True
        elif loc != "/" and path.startswith(loc):
            return True
        elif loc == "/" and re.search(r"proxy_pass|return\s+200|try_files[^;]*(?:index\.html|@)", text[m.end():m.end() + 2000]):
            return True  # a catch-all that proxies or falls back answers any path
    return False


def _container_ports(svc: Service) -> set[int]:
    out: set[int] = set()
    for key in ("ports", "expose"):
        items = svc.config.get(key)
        for p in items if isinstance(items, list) else []:
            if isinstance(p, dict):
                t = p.get("target")
                if isinstance(t, int):
                    out.add(t)
                continue
            s = str(p).split("/", 1)[0]
            last = s.rsplit(":", 1)[-1]
            if last.isdigit():
                out.add(int(last))
    return out


def _listening(svc: Service, stage: Stage | None) -> tuple[set[int], str]:
    """The ports the service listens on, strongest evidence first, and where they come from."""
    cmd = command_text(svc.config) or _stage_command(stage)
    found = {int(m.group(1)) for m in _PORT_FLAG.finditer(cmd)}
    if found:
        return found, f"its command `{cmd}`"
    if "$" in cmd:
        return set(), ""
    env = svc.config.get("environment")
    moved = any("PORT" in str(k).upper() for k in env) if isinstance(env, dict) else False
    known = None if moved else images.known_port(svc.image if svc.build is None else None)
    if known is not None:
        return {known[0]}, known[1]
    exposed: set[int] = set()
    s = stage
    while s is not None:
        for ins in s.instructions:
            if ins.name == "EXPOSE":
                exposed.update(int(w.split("/")[0]) for w in ins.operands if w.split("/")[0].isdigit())
        s = s.parent
    # Published ports alone prove nothing: a server may listen on an admin port it does not
    # publish. A Dockerfile's EXPOSE says what the image is meant to serve.
    if exposed:
        return exposed | _container_ports(svc), "its Dockerfile's EXPOSE, ports and expose"
    return set(), ""


# --- a health check inherited from the image ------------------------------------------------

_CELERY_APP = re.compile(r"(?:-A|--app)[= ]?\s*(\S+)")


def _inherited(project: Project, svc: Service, config: dict[str, Any], stage: Stage,
               options: dict[str, Any]) -> Iterator[Fix]:
    if not command_text(config):
        return  # the image's own command, which its HEALTHCHECK was written for
    ins = stage.healthcheck
    assert ins is not None
    m = _URL.search(ins.args)
    if m is None or m.group(2) not in _LOCAL:
        return
    port = int(m.group(3)) if m.group(3) else 80
    cmd = command_text(config)
    serves = {int(x.group(1)) for x in _PORT_FLAG.finditer(cmd)}
    if port in serves:
        return
    celery = bool(re.search(r"\bcelery\b", cmd))
    if not celery and role(svc) != "worker":
        return
    worker = celery and re.search(r"\bworker\b", cmd)
    home = svc.home
    if home is not None and svc.shadows(home, "healthcheck") is not None:
        home = None  # a later file resets or overrides it: an edit here would be lost
    line, col = position((home or svc.defs[0]).key)
    path = (home or svc.defs[0]).doc.path
    message = (f"service {svc.name!r} inherits its image's HEALTHCHECK (Dockerfile line {ins.line}), which probes port "
               f"{port}; `{cmd}` does not serve it, so the container is never healthy")
    app = _CELERY_APP.search(cmd) if worker else None
    if home is None or not isinstance(home.node, MappingNode):
        yield Fix(ID, message + "; give it a health check of its own, or `healthcheck: {disable: true}`",
                  path, line, col, safety=Safety.DISPLAY_ONLY)
        return
    changes = tuple(("services", u, "healthcheck") for u in project.with_extenders(project.sharers(home.node)))
    if app is None:
        # No probe is known for this command: a check that always fails is worse than none.
        off = _set_check(home.doc, home.node, home.key.end_mark.index, None, options)
        message += "; disable it (or give the service a health check of its own)"
        if off is None:
            yield Fix(ID, message, path, line, col, safety=Safety.DISPLAY_ONLY)
        else:
            yield Fix(ID, message, path, line, col, (off,), SAFETY, changes)
        return
    named = re.search(r"(?:^|\s)(?:-n|--hostname)[= ]", cmd)
    ping = f"celery -A {app.group(1)} inspect ping" + ("" if named else " -d celery@$$HOSTNAME")
    edit = _set_check(home.doc, home.node, home.key.end_mark.index, ["CMD-SHELL", ping], options)
    if edit is None:
        yield Fix(ID, message + f"; probe it with `{ping}`", path, line, col, safety=Safety.DISPLAY_ONLY)
        return
    yield Fix(ID, message + f"; probe it with `{ping}`", path, line, col, (edit,), SAFETY, changes)


# --- edits ------------------------------------------------------------------------------------


def _set_check(doc: ComposeDoc, node: MappingNode, after: int, test: list[str] | None,
               options: dict[str, Any]) -> Edit | None:
    """A service's own check: `test` (None: `disable: true`), in its `healthcheck:` if it has
    one (timings only), else as a new one."""
    kv = doc.get(node, "healthcheck")
    if kv is None:
        if test is None:
            return yamledit.append_entry(doc, node, "healthcheck", {"disable": True}, after)
        return add_healthcheck(doc, node, after, test, options)
    hc = kv[1]
    if not isinstance(hc, MappingNode) or hc.flow_style or doc.is_alias(hc, doc.key_end(kv[0])):
        return None
    value: Any = True if test is None else "\0"
    edit = yamledit.append_entry(doc, hc, "disable" if test is None else "test", value, doc.key_end(kv[0]))
    if edit is None or test is None:
        return edit
    flow = "[" + ", ".join(render.quote(str(x), '"') for x in test) + "]"
    return edit._replace(text=edit.text.replace(render.quote("\0", '"'), flow, 1))



def _quoted(node: ScalarNode, value: str, doc: ComposeDoc) -> str:
    if node.style == '"':
        return render.quote(value, '"')
    if node.style == "'":
        return render.quote(value, "'")
    return render.scalar(value, doc.style)


def _replace_in_test(doc: ComposeDoc, node: Node, old: str, new: str) -> list[Edit] | None:
    scalars = [node] if isinstance(node, ScalarNode) else list(node.value) if isinstance(node, SequenceNode) else []
    for s in scalars:
        if isinstance(s, ScalarNode) and old in str(s.value):
            if s.style in ("|", ">"):
                return None
            return [Edit(doc.path, s.start_mark.index, s.end_mark.index, _quoted(s, str(s.value).replace(old, new, 1), doc))]
    return None


def _replace_test(doc: ComposeDoc, key: ScalarNode, node: Node, test: list[str]) -> list[Edit] | None:
    flow = "[" + ", ".join(render.quote(x, '"') for x in test) + "]"
    start = doc.key_end(key)
    end = doc.content_end(node, start)
    return [Edit(doc.path, start, end, " " + flow)]


def add_healthcheck(doc: ComposeDoc, mapping: MappingNode, after: int, test: list[str],
                    options: dict[str, Any]) -> Edit | None:
    """`healthcheck:` as the last entry of a service, its test a flow list as people write it."""
    timings = {k: options[k] for k in ("interval", "timeout", "retries") if options.get(k) is not None}
    edit = yamledit.append_entry(doc, mapping, "healthcheck", {"test": "\0", **timings}, after)
    if edit is None:
        return None
    flow = "[" + ", ".join(render.quote(str(x), '"') for x in test) + "]"
    return edit._replace(text=edit.text.replace(render.quote("\0", '"'), flow, 1))
