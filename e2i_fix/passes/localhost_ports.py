"""localhost-ports: the published ports of internal services listen on the loopback only.

## What it does
Binds the published ports of internal services (databases, caches, brokers, admin and dev
tools: the images the table in `e2i_fix/data/hardening.toml` marks internal, and the services
named in `internal-services`) to the loopback interface, where each port is written:

- short syntax: `"5432:5432"` becomes `"127.0.0.1:5432:5432"`, `"0.0.0.0:5432:5432"` becomes
  `"127.0.0.1:5432:5432"`, `"[::]:5432:5432"` becomes `"[::1]:5432:5432"`; ranges
  (`"8000-8002:8000-8002"`), protocols (`/udp`) and variables in the port fields
  (`"${PG_PORT:-5432}:5432"`) are kept as written;
- a container port alone (`"5432"`, `5432`, `"3000-3002"`) is still published, on a random
  host port of every interface (that is what `docker compose up` does with it): it becomes
  `"127.0.0.1::5432"`, which keeps the random host port;
- long syntax: `host_ip: 127.0.0.1` is added, or a wildcard `host_ip` (`0.0.0.0`, `::`) is
  replaced.

A port already bound to an address is left as it is; so is one whose address or whole value
comes from a variable (`"${BIND}:5432:5432"`, `"${PG_PORTS}"`), which is reported. The services
a user reaches are never touched: the `api` role (gunicorn, uvicorn, a name like `api`), the
servers the table marks public (nginx, traefik, caddy, haproxy...), anything named in
`public-services`, and every service the table does not know. Except on the ports the table
marks internal of an image that also serves users (`internal_ports`, each with its source):
Kong's Admin API (8001, 8444) and Kong Manager (8002, 8445) serve only its operators, and the
Admin API has no authentication by default, so those are bound while its proxy ports (8000,
8443) are left to its users; a port published as a range is left as it is. Ports written in an anchor that
services outside this set share are reported, not changed.

## Why
Docker publishes a port on every interface of the host and its rules bypass host firewalls
such as ufw: a database published for a developer's client is open to the network (CIS
Docker Benchmark 5.14, OWASP Docker Security rule 5a). Other services reach it over the
Compose network whatever its published address.

## Example
Before:

    services:
      redis:
        image: redis:7-alpine
        ports:
          - "6379:6379"

After:

    services:
      redis:
        image: redis:7-alpine
        ports:
          - "127.0.0.1:6379:6379"

## Fix safety
Unsafe: a client on another host (a colleague's database tool, a monitoring server) can no
longer connect; reach the service through an SSH tunnel, or name it in `public-services`.

## Options
- `internal-services`: service names to bind besides the table's internal images.
- `public-services`: service names never bound.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from e2i_fix import facts, fileroles, lazyre, render, yamledit
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.passes import _hardening as h
from e2i_fix.project import Project, Service, role, targets
from e2i_fix.yamldoc import (
    ComposeDoc, MappingNode, ScalarNode, SequenceNode, effective_entry, is_merge_key, position, scalar_value,
)

ID = "localhost-ports"
SUMMARY = "published ports of internal services (databases, caches, admin tools) bind to 127.0.0.1"
SAFETY = Safety.UNSAFE
ROLES = fileroles.SERVING  # not development and test files (`fileroles`)
READS = frozenset({"ports", "image", "build", "command", "entrypoint", "privileged", "network_mode", "extends"})
DEFAULTS: dict[str, Any] = {"internal-services": [], "public-services": []}

LOOPBACK = "127.0.0.1"
_DEFAULT = lazyre.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-((?:[^{}]|\{[^{}]*\})*)\}")


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    for key in ("internal-services", "public-services"):
        v = options.get(key) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            yield Fix(ID, f"option {key} must be a list of service names", project.docs[0].path,
                      safety=Safety.DISPLAY_ONLY, error=True)
            return
    allowed = targets(project, ID, options)
    internal = {s.name: why for s in allowed if (why := _internal(project, s, options))}
    # Services that serve users on some ports and only their operators on others (an admin API).
    only = {s.name: own for s in allowed if s.name not in internal and (own := _internal_ports(project, s, options))}
    done: set[int] = set()
    for doc in project.docs:
        if doc.readonly:
            continue
        svcs = doc.node("services")
        if not isinstance(svcs, MappingNode):
            continue
        for k, node in svcs.value:
            if not isinstance(k, ScalarNode) or is_merge_key(k) or (k.value not in internal and k.value not in only):
                continue
            got = effective_entry(node, "ports")
            if got is None or not isinstance(got[2], SequenceNode) or id(got[2]) in done:
                continue
            holder, _, seq = got
            done.add(id(seq))
            users = project.with_extenders(project.sharers(holder) or [k.value])
            if k.value in internal:
                outside = sorted(u for u in users if u not in internal)
                for item in seq.value:
                    yield from _port(doc, item, k.value, users, outside, internal[k.value])
                continue
            ports = only[k.value]
            outside = sorted(u for u in users if only.get(u) != ports)
            for item in seq.value:
                port = _container_port(item)
                if port in ports:
                    yield from _port(doc, item, k.value, users, outside, ports[port])


def _internal(project: Project, svc: Service, options: dict[str, Any]) -> str | None:
    if h.blocked(svc) or svc.name in (options.get("public-services") or ()):
        return None
    if svc.name in (options.get("internal-services") or ()):
        return "named in internal-services"
    if role(svc) == "api":
        return None
    f = facts.of(project, svc)
    k = f.knowledge if f is not None else None
    if k is not None and k.image is not None and k.runtime("internal"):
        return f"{k.image.key} is an internal service (built-in table)"
    return None


def _internal_ports(project: Project, svc: Service, options: dict[str, Any]) -> dict[int, str]:
    """The container ports of a service that serves users on others which serve only its
    operators, each with why (the image table's `internal_ports`: Kong's Admin API and Manager)."""
    if h.blocked(svc) or svc.name in (options.get("public-services") or ()):
        return {}
    f = facts.of(project, svc)
    k = f.knowledge if f is not None else None
    ports = k.runtime("internal_ports") if k is not None and k.image is not None else None
    if not isinstance(ports, dict):
        return {}
    key = k.image.key if k is not None and k.image is not None else "its image"
    return {int(p): f"{what}: only its operators use it ({key}, built-in table)" for p, what in ports.items()
            if str(p).isdigit()}


def _container_port(item: Any) -> int | None:
    """The container port a `ports` entry publishes (one port, not a range), where it is written
    as a number."""
    if isinstance(item, MappingNode):
        for k, v in item.value:
            if isinstance(k, ScalarNode) and k.value == "target" and isinstance(v, ScalarNode):
                got = scalar_value(v)
                return int(got) if isinstance(got, int) or (isinstance(got, str) and got.isdigit()) else None
        return None
    if not isinstance(item, ScalarNode):
        return None
    value = scalar_value(item)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    last = _fields(str(value))[-1].split("/", 1)[0]
    return int(last) if last.isdigit() else None


def _port(doc: ComposeDoc, item: Any, name: str, users: list[str], outside: list[str], why: str) -> Iterator[Fix]:
    line, col = position(item)
    who = f"service {name!r}"
    if isinstance(item, MappingNode):
        yield from _long(doc, item, who, users, outside, why, line, col)
        return
    if not isinstance(item, ScalarNode):
        return
    value = scalar_value(item)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return
    text = str(value)
    new = bound(text)
    if new is None:
        if "$" in text and not _bound_already(text):
            yield Fix(ID, f"{who} publishes {text!r} on an address a variable chooses (not edited)",
                      doc.path, line, col, safety=Safety.DISPLAY_ONLY)
        return
    msg = f"{who} publishes {text} on every interface: bind it to the loopback, {new!r} ({why})"
    if outside:
        yield Fix(ID, f"{msg} (not edited: shared with {', '.join(map(repr, outside))})", doc.path, line, col,
                  safety=Safety.DISPLAY_ONLY)
        return
    edit = _rewrite(doc, item, text, new)
    if edit is None:
        yield Fix(ID, f"{msg} (not edited: this scalar cannot be edited in place)", doc.path, line, col,
                  safety=Safety.DISPLAY_ONLY)
        return
    yield Fix(ID, msg, doc.path, line, col, (edit,), SAFETY, tuple(("services", u, "ports") for u in users))


def _fields(text: str) -> list[str]:
    """A short-syntax port split on the colons outside `${...}` and `[...]`."""
    fields: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if text.startswith("${", i) or ch == "[":
            depth += 1
        elif ch in "}]" and depth:
            depth -= 1
        elif ch == ":" and not depth:
            fields.append(text[start:i])
            start = i + 1
    fields.append(text[start:])
    return fields


def _wildcard(ip: str) -> str | None:
    """The loopback of the same family for a wildcard address, else None."""
    import ipaddress  # only a stack with an address in a port needs it

    bare = ip.strip()
    bracketed = bare.startswith("[") and bare.endswith("]")
    if bracketed:
        bare = bare[1:-1]
    if bare in ("", "*"):
        return LOOPBACK
    try:
        addr = ipaddress.ip_address(bare)
    except ValueError:
        return None
    if not addr.is_unspecified:
        return None
    if addr.version == 6:
        return "[::1]" if bracketed else "::1"
    return LOOPBACK


def bound(text: str) -> str | None:
    """The port bound to the loopback, or None when it already names an address (or a variable
    does)."""
    fields = _fields(text)
    if any(_may_hold_address(f) for f in fields):
        return None
    if len(fields) == 1:
        if "$" in text:
            return None  # `${PORTS}` may hold a whole mapping
        return f"{LOOPBACK}::{text}"
    if len(fields) == 2:
        return f"{LOOPBACK}:{text}"
    ip = ":".join(fields[:-2])
    if "$" in ip:
        return None
    lo = _wildcard(ip)
    if lo is None or lo == "::1":
        return None  # an IPv6 address without brackets: Compose refuses it anyway
    return lo + text[len(ip):]


def _may_hold_address(field: str) -> bool:
    """A variable whose default holds a colon, `${SQL_PORT:-127.0.0.1:13306}`: the address
    comes with it."""
    return any(":" in m.group(1) for m in _DEFAULT.finditer(field))


def _bound_already(text: str) -> bool:
    fields = _fields(text)
    return len(fields) > 2 and "$" not in ":".join(fields[:-2])


def _rewrite(doc: ComposeDoc, node: ScalarNode, old: str, new: str) -> Edit | None:
    text = doc.text
    start, end = node.start_mark.index, node.end_mark.index
    if node.style in ("'", '"'):
        inner = text[start + 1 : end - 1]
        if inner != old or text[start] != node.style:
            return None  # escapes or folds inside: not a plain copy of the value
        return Edit(doc.path, start + 1, end - 1, new)
    if node.style or text[start:end] != old:
        return None
    if isinstance(scalar_value(node), int) or not _plain_ok(new):
        return Edit(doc.path, start, end, render.quote(new, doc.style.quote))
    return Edit(doc.path, start, end, new)


def _plain_ok(s: str) -> bool:
    # Plain is fine where the file wrote one: an address prefix makes it no number, and `[` or
    # `::` at the start would not read back as the same string.
    return not s.startswith(("[", ":")) and " #" not in s


def _long(doc: ComposeDoc, item: MappingNode, who: str, users: list[str], outside: list[str], why: str,
          line: int, col: int) -> Iterator[Fix]:
    kv = doc.get(item, "host_ip")
    target = doc.get(item, "target")
    desc = scalar_value(target[1]) if target and isinstance(target[1], ScalarNode) else "?"
    msg = f"{who} publishes port {desc} on every interface: bind it to the loopback, `host_ip: {LOOPBACK}` ({why})"
    edits: list[Edit] | None = None
    if kv is None:
        if effective_entry(item, "host_ip") is not None:
            return  # an address from a merge key: not this entry's to change
        if outside:
            yield Fix(ID, f"{msg} (not edited: shared with {', '.join(map(repr, outside))})", doc.path, line, col,
                      safety=Safety.DISPLAY_ONLY)
            return
        if item.flow_style:
            from e2i_fix.passes.tmpfs_size import _flow_insert

            e = _flow_insert(doc, item, f"host_ip: {LOOPBACK}")
            edits = None if e is None else [e]
        else:
            e = yamledit.append_entry(doc, item, "host_ip", LOOPBACK, item.start_mark.index)
            edits = None if e is None else [e]
    else:
        v = kv[1]
        value = scalar_value(v) if isinstance(v, ScalarNode) else None
        if not isinstance(value, str) or "$" in value:
            return
        lo = _wildcard(value)
        if lo is None or not value.strip():
            return
        lo = lo.strip("[]")
        if outside:
            yield Fix(ID, f"{msg} (not edited: shared with {', '.join(map(repr, outside))})", doc.path, line, col,
                      safety=Safety.DISPLAY_ONLY)
            return
        assert isinstance(v, ScalarNode)
        e2 = _rewrite(doc, v, value, lo)
        edits = None if e2 is None else [e2]
    if not edits:
        yield Fix(ID, f"{msg} (not edited: this entry cannot be edited in place)", doc.path, line, col,
                  safety=Safety.DISPLAY_ONLY)
        return
    yield Fix(ID, msg, doc.path, line, col, tuple(edits), SAFETY, tuple(("services", u, "ports") for u in users))
