"""Health checks: whether a service's health check can pass in each variant of the stack (its
tool is in the image, its path is served, its port is listened on, an inherited `HEALTHCHECK`
fits the command), and the one way a health check is written into a service.

What a service is in a variant (its image, the stage it builds, what runs, the ports it serves,
the nginx config it reads) is the facts layer's reading (`e2i_fix.facts`); a fix for what one
variant runs goes to the file of that variant, never to the base every variant shares.

The `healthcheck-probes` pass reports and fixes what this module finds; `depends-on-healthy`
asks it before it makes anything wait for a check. Its findings carry that pass's id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from e2i_fix import facts, images, lazyre, render, shellwords, yamledit
from e2i_fix.facts import configs, runs
from e2i_fix.fix import Edit, Fix, ModelPath, Safety
from e2i_fix.project import Project, Service, ServiceDef, role
from e2i_fix.records import NamedTuple
from e2i_fix.yamldoc import ComposeDoc, MappingNode, Node, ScalarNode, SequenceNode, effective_entry, position

ID = "healthcheck-probes"  # the pass that reports what this module finds
SAFETY = Safety.UNSAFE
# The timings of a health check this module adds (healthcheck-probes' options override them).
DEFAULTS: dict[str, Any] = {"interval": "30s", "timeout": "10s", "retries": 3}

_URL = lazyre.compile(r"(https?)://([A-Za-z0-9_.\-\[\]]+)(?::(\d+))?(/[^\s'\"),;]*)?")
_LOCAL = {"localhost", "127.0.0.1", "0.0.0.0", "[::1]"}
_PROBE_TOOLS = ("curl", "wget", "python", "python3", "node", "nc")
_NGINX = ("nginx", "nginx-unprivileged", "openresty")


class _Probe(NamedTuple):
    tool: str | None
    url: re.Match[str] | None
    text: str


class _Verdict(NamedTuple):
    """What is wrong with a health check in one variant, and the fix when one is known: a whole
    new `test` (`test`), one string replaced inside it (`old` -> `new`), or `disable: true`
    (`disable`)."""

    message: str
    test: tuple[str, ...] | None = None
    old: str | None = None
    new: str | None = None
    disable: bool = False
    provenance: tuple[tuple[str, str], ...] = ()

    @property
    def fixable(self) -> bool:
        return self.test is not None or self.old is not None or self.disable

    def same_fix(self, other: _Verdict) -> bool:
        return (self.test, self.old, self.new, self.disable) == (other.test, other.old, other.new, other.disable)


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
        return shellwords.split(first)
    except ValueError:
        return first.split()


def _disabled(hc: Any) -> bool:
    return isinstance(hc, dict) and (hc.get("disable") is True or hc.get("test") in (["NONE"], "NONE"))


def check(project: Project, svc: Service, options: dict[str, Any]) -> Iterator[Fix]:
    """What this pass finds wrong with one service's health check, in every variant of the
    stack (depends-on-healthy asks it before it makes anything wait for that check)."""
    return _service(project, svc, options)


def _service(project: Project, svc: Service, options: dict[str, Any]) -> Iterator[Fix]:
    own: dict[int, tuple[ServiceDef | None, list[tuple[facts.Facts, _Verdict | None]]]] = {}
    inherited: list[tuple[facts.Facts, _Verdict | None]] = []
    for f in facts.every(project, svc):
        hc = f.config.get("healthcheck")
        if _disabled(hc):
            continue
        if isinstance(hc, dict) and hc.get("test") is not None:
            probe = _parse(hc["test"])
            if probe is None:
                continue
            writer = _writer(project, svc, f.files)
            own.setdefault(id(writer), (writer, []))[1].append((f, _judge(f, probe)))
        elif f.stage is not None and f.stage.healthcheck is not None:
            inherited.append((f, _inherited(svc, f)))
    for writer, judged in own.values():
        yield from _dispose(project, svc, writer, judged, options, compose=True)
    if inherited:
        yield from _dispose(project, svc, svc.home, inherited, options, compose=False)


def _writer(project: Project, svc: Service, files: tuple[int, ...]) -> ServiceDef | None:
    """The definition whose `healthcheck.test` Compose uses when it runs `files`."""
    owner = images.owners(project)
    index = {id(d): i for i, d in enumerate(project.docs)}
    for d in reversed(svc.defs):
        if owner[index[id(d.doc)]] not in files:
            continue
        got = effective_entry(d.node, "healthcheck") if isinstance(d.node, MappingNode) else None
        if got is not None and isinstance(got[2], MappingNode) and d.doc.get(got[2], "test") is not None:
            return d
    return None


def _variant_def(project: Project, svc: Service, files: tuple[int, ...]) -> ServiceDef | None:
    """The definition of the service in the last file of a variant (an override's)."""
    owner = images.owners(project)
    index = {id(d): i for i, d in enumerate(project.docs)}
    return next((d for d in reversed(svc.defs) if owner[index[id(d.doc)]] == files[-1]), None)


def _dispose(project: Project, svc: Service, writer: ServiceDef | None,
             judged: list[tuple[facts.Facts, _Verdict | None]], options: dict[str, Any], compose: bool) -> Iterator[Fix]:
    """One finding or fix for what is wrong in the variants that share one health check: where
    every variant has the same fault, it is fixed where the check (or, for an inherited one,
    the service) is written; where only some have it, each of those gets the fix in its own
    file, and the files every variant shares are left as they are."""
    bad = [(f, v) for f, v in judged if v is not None]
    if not bad:
        return
    first = bad[0][1]
    if len(bad) == len(judged) and all(v.same_fix(first) for _, v in bad):
        yield _fix_at(project, svc, writer, first, options, compose)
        return
    for f, v in bad:
        if len(f.files) == 1:
            # The base alone has the fault and another variant does not: a fix in the base
            # would reach that variant too.
            where = writer or svc.home or svc.defs[0]
            line, col = position(where.key)
            yield Fix(ID, _in_variant(v.message, svc, project, f.files), where.doc.path, line, col,
                      safety=Safety.DISPLAY_ONLY, provenance=v.provenance)
            continue
        d = _variant_def(project, svc, f.files)
        named = v._replace(message=_in_variant(v.message, svc, project, f.files))
        if v.old is not None and v.new is not None:
            hc = f.config.get("healthcheck") or {}
            test = hc.get("test")
            words = [str(x) for x in test] if isinstance(test, list) else ["CMD-SHELL", str(test)]
            named = named._replace(test=tuple(w.replace(v.old, v.new, 1) for w in words), old=None, new=None)
        # Only the test: the variant's file merges it over the timings every variant shares.
        yield _fix_at(project, svc, d, named, {}, compose=False)


def _in_variant(message: str, svc: Service, project: Project, files: tuple[int, ...]) -> str:
    who = f"service {svc.name!r}"
    return message.replace(who, f"{who} with {images.variant_names(project, files)}", 1)


def _fix_at(project: Project, svc: Service, d: ServiceDef | None, v: _Verdict, options: dict[str, Any],
            compose: bool) -> Fix:
    """`v` fixed in definition `d`: in place in its `test` (a check written there), else as a
    `healthcheck` of its own; a finding where that cannot be edited."""
    where = d or svc.home or svc.defs[0]
    line, col = position(where.key)
    path = where.doc.path
    got = _test_node(d) if compose and d is not None else None
    if got is not None:
        line, col = position(got[1])  # a check written here is reported at its test
    if not v.fixable or d is None:
        return Fix(ID, v.message, path, line, col, safety=Safety.DISPLAY_ONLY, provenance=v.provenance)
    edits: list[Edit] | None = None
    users: list[str] = [svc.name]
    if compose:
        if got is not None:
            doc, key, node, shared = got
            if shared:
                if v.test is not None:
                    edits = _replace_test(doc, key, node, list(v.test))
                elif v.old is not None and v.new is not None:
                    edits = _replace_in_test(doc, node, v.old, v.new)
    elif d.editable and svc.shadows(d, "healthcheck") is None:
        edit = _set_check(d.doc, d.node, d.key.end_mark.index, list(v.test) if v.test is not None else None,
                          options) if isinstance(d.node, MappingNode) and (v.test is not None or v.disable) else None
        edits = [edit] if edit is not None else None
        users = project.sharers(d.node) if d is svc.home else [svc.name]
    if not edits:
        return Fix(ID, v.message, path, line, col, safety=Safety.DISPLAY_ONLY, provenance=v.provenance)
    changes: tuple[ModelPath, ...] = tuple(("services", u, "healthcheck") for u in project.with_extenders(users))
    return Fix(ID, v.message, path, line, col, tuple(edits), SAFETY, changes, provenance=v.provenance)


# --- a health check written in the compose files ----------------------------------------------


def _test_node(d: ServiceDef) -> tuple[ComposeDoc, ScalarNode, Node, bool] | None:
    """Where `d`'s effective `test:` is written, and whether it is its own (not a shared block)."""
    got = effective_entry(d.node, "healthcheck") if isinstance(d.node, MappingNode) else None
    if got is None:
        return None
    holder, key, hc = got
    kv = d.doc.get(hc, "test") if isinstance(hc, MappingNode) else None
    if kv is None:
        return None
    if d.doc.readonly or d.doc.is_alias(hc, d.doc.key_end(key)) or d.doc.is_alias(kv[1], d.doc.key_end(kv[0])):
        return None
    return d.doc, kv[0], kv[1], holder is d.node


def _judge(f: facts.Facts, probe: _Probe) -> _Verdict | None:
    """What is wrong with a compose health check in one variant."""
    name = f.name
    tools = _tools(f)
    url = probe.url
    if probe.tool in _PROBE_TOOLS and tools is not None and probe.tool not in tools:
        base = f.base.written if f.base is not None else "its image"
        message = f"service {name!r}: the health check runs {probe.tool}, which {base} does not have"
        if f.stage is not None:
            message += " and its Dockerfile does not install"
        replacement = _with_tool(tools, url.group(0)) if url else None
        if replacement is not None:
            return _Verdict(message + f"; probe with {replacement[0]} instead", test=tuple(replacement),
                            provenance=(("tools", f"{base} (e2i_fix/data/images.toml)"),))
        return _Verdict(message)
    if url is None or url.group(2) not in _LOCAL or probe.text[url.end():url.end() + 2] in (":$", "${") \
            or probe.text[url.end():url.end() + 1] == "$":
        return None  # a port or path from a variable is the variable's
    path = url.group(4) or "/"
    port = int(url.group(3)) if url.group(3) else (443 if url.group(1) == "https" else 80)
    dev = _dev_server(f)
    if dev is not None and path not in ("", "/"):
        new_url = url.group(0)[: len(url.group(0)) - len(url.group(4) or "")] + "/"
        return _Verdict(f"service {name!r}: the health check probes {path}, which the {dev[0]} dev server does not "
                        f"have ({dev[1]}); probe / instead", old=url.group(0), new=new_url)
    if _is_nginx(f) and path not in ("", "/"):
        texts = [c.text for c in configs.nginx(f)]
        if not any(configs.answers(text, path) for text in texts):
            what = "the nginx config the service mounts or copies" if texts else "the nginx image's default config"
            return _Verdict(f"service {name!r}: the health check probes {path}, which {what} has no `location` for; "
                            f"add `location = {path} {{ return 200; }}` or probe /")
    ports, why, tier = runs.listening_by(f)
    if ports and port not in ports:
        listed = ", ".join(map(str, sorted(ports)))
        message = f"service {name!r}: the health check probes port {port}, but the service listens on {listed} ({why})"
        if tier >= 2 and port in runs.exposed(f):
            # A default or a PORT variable against the port the image itself EXPOSEs: a process
            # that starts others (a launcher, a proxy in front of the app) may serve the exposed
            # one; reported, not moved.
            return _Verdict(message + f"; the image EXPOSEs {port}, which may be what answers: check which port serves",
                            provenance=(("port", why),))
        if len(ports) == 1 and url.group(3):
            new_port = next(iter(ports))
            new_url = url.group(0).replace(f":{port}", f":{new_port}", 1)
            return _Verdict(message + f"; probe {new_port}", old=url.group(0), new=new_url, provenance=(("port", why),))
        return _Verdict(message, provenance=(("port", why),))
    return None


# What every shell has: a check written with them needs no tool of the image's.
_BUILTINS = frozenset({"true", "exit", "test", "[", ":", "echo", "printf", "kill", "sh", "bash"})


def unproven(project: Project, target: str, files: tuple[int, ...]) -> str | None:
    """Why the tool cannot vouch that the target's health check can pass, if it cannot: a check
    the stack writes that runs a program the image is not known to have (`wget` in an image the
    tool knows nothing of). An image's own HEALTHCHECK, the image table's known-good probe, and a
    program its stage installs or its image is known to ship are vouched for."""
    h = images.health(project, files, target)
    if h is None or h.source != "compose":
        return None  # the image's author wrote it
    probe = _parse(h.test)
    if probe is None or probe.tool is None:
        return None
    tool = probe.tool
    if tool in _BUILTINS:
        return None
    f = facts.of(project, target, files)
    if f is None:
        return None
    known = f.knowledge.soft("probe")
    if isinstance(known, list) and known:
        own = _parse(known)
        if own is not None and own.tool == tool:
            return None  # the client the table's probe runs: the image ships it
    tools = _tools(f)
    if tools is not None and tool in tools:
        return None
    if f.built and f.stage is not None and tool in images.installed(f.stage, f.expand):
        return None
    if any(Path(w).name == tool for w in f.argv[:3]):
        return None  # the program the service itself runs (`celery ... inspect ping`)
    return (f"its health check runs {tool}, which the tool does not know to be in its image: where it is "
            "missing the check never passes, and `up` stops at the dependency")


def _tools(f: facts.Facts) -> set[str] | None:
    """The probe tools the service's container has, where that is known."""
    if f.stage is not None:
        return images.stage_tools(f.stage, f.expand)
    if f.built:
        return None
    img = f.config.get("image")
    return images.image_tools(img if isinstance(img, str) else None, f.project.env)


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


def _dev_server(f: facts.Facts) -> tuple[str, str] | None:
    """(`vite`, why) when the service runs a development server, from what runs, else from its
    environment and port."""
    if f.stage is not None and _is_nginx(f):
        return None
    cmd = " ".join(f.argv)
    env = f.config.get("environment")
    keys = [str(k) for k in env] if isinstance(env, dict) else []
    container_ports = set(runs.container_ports(f.config))
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


def _is_nginx(f: facts.Facts) -> bool:
    ref = f.base if f.built else f.image
    fam = ref.family if ref is not None else ""
    return fam in _NGINX or fam.startswith("nginx")


# --- a health check inherited from the image ------------------------------------------------

_CELERY_APP = lazyre.compile(r"(?:-A|--app)[= ]?\s*(\S+)")


def _inherited(svc: Service, f: facts.Facts) -> _Verdict | None:
    """What is wrong with the HEALTHCHECK a service inherits from the stage it builds, in one
    variant: a probe of a port the service's own command does not serve."""
    words, origin = f.command
    if origin != "compose command" or not words:
        return None  # the image's own command, which its HEALTHCHECK was written for
    assert f.stage is not None
    ins = f.stage.healthcheck
    assert ins is not None
    m = _URL.search(ins.args)
    if m is None or m.group(2) not in _LOCAL:
        return None
    port = int(m.group(3)) if m.group(3) else 80
    cmd = " ".join(words)
    if port in runs.command_ports(f):
        return None
    celery = bool(re.search(r"\bcelery\b", cmd))
    if not celery and role(svc) != "worker":
        return None
    worker = celery and re.search(r"\bworker\b", cmd)
    message = (f"service {svc.name!r} inherits its image's HEALTHCHECK (Dockerfile line {ins.line}), which probes port "
               f"{port}; `{cmd}` does not serve it, so the container is never healthy")
    app = _CELERY_APP.search(cmd) if worker else None
    if app is None:
        # No probe is known for this command: a check that always fails is worse than none.
        return _Verdict(message + "; disable it (or give the service a health check of its own)", disable=True)
    named = re.search(r"(?:^|\s)(?:-n|--hostname)[= ]", cmd)
    ping = f"celery -A {app.group(1)} inspect ping" + ("" if named else " -d celery@$$HOSTNAME")
    return _Verdict(message + f"; probe it with `{ping}`", test=("CMD-SHELL", ping))


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
                    options: dict[str, Any], start_period: str | None = None) -> Edit | None:
    """`healthcheck:` as the last entry of a service, its test a flow list as people write it
    (with `start_period` where the image's first start is long)."""
    timings = {k: options[k] for k in ("interval", "timeout", "retries") if options.get(k) is not None}
    if start_period:
        timings["start_period"] = start_period
    edit = yamledit.append_entry(doc, mapping, "healthcheck", {"test": "\0", **timings}, after)
    if edit is None:
        return None
    flow = "[" + ", ".join(render.quote(str(x), '"') for x in test) + "]"
    return edit._replace(text=edit.text.replace(render.quote("\0", '"'), flow, 1))
