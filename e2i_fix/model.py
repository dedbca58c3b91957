"""The normalised meaning of a stack: what `docker compose config` would agree two files mean.

Merge keys are resolved (by the loader), `extends` is followed within a file (the Project
brings in other files' bases and included files first), override files are merged onto the base
as compose-go merges them (`!reset` / `!override` first drop what they replace), and the forms
Compose treats as equal are made equal: list environments and labels become mappings, short
`depends_on` becomes long form. Verification compares these models before and after a run; the
Project uses them to answer questions. `canonical` goes further, for comparing with what
`docker compose config` prints (see the notes above it).
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from e2i_fix import lazyre

# Keys whose sequences Compose replaces instead of appending when an override sets them.
_REPLACE = {"command", "entrypoint", "test"}
# Keys whose merged sequences compose-go makes unique (its `override/uniques.go`). Any other
# sequence is appended as it is: `security_opt`, `group_add`, `external_links`, `volumes_from`,
# `device_cgroup_rules`, `build.cache_from`, `build.platforms`... so the same item in a base
# and in what extends or overrides it is there twice, which the schema refuses (uniqueItems).
_UNIQUE = {"cap_add", "cap_drop", "devices", "dns", "dns_opt", "dns_search", "expose", "links", "profiles",
           "tmpfs", "tags", "aliases", "link_local_ips", "annotations", "labels", "environment", "sysctls",
           "args", "additional_contexts", "extra_hosts"}
_SERVICE_KEYS_AS_MAP = ("environment", "labels", "annotations", "sysctls", "extra_hosts")


def normalise_service(svc: Any) -> Any:
    if not isinstance(svc, dict):
        return svc
    out = dict(svc)
    for key in _SERVICE_KEYS_AS_MAP:
        if isinstance(out.get(key), list):
            out[key] = _list_to_map(out[key], ":" if key == "extra_hosts" else "=")
    dep = out.get("depends_on")
    if isinstance(dep, list):
        out["depends_on"] = {
            str(d): {"condition": "service_started", "required": True} for d in dep
        }
    elif isinstance(dep, dict):
        out["depends_on"] = {
            k: {"condition": "service_started", "required": True, **(v if isinstance(v, dict) else {})}
            for k, v in dep.items()
        }
    return out


def _list_to_map(items: list[Any], sep: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        s = str(item) if not isinstance(item, str) else item
        if sep == ":" and "=" in s and ":" not in s.split("=", 1)[0]:
            k, _, v = s.partition("=")
        elif sep in s:
            k, _, v = s.partition(sep)
        else:
            k, v = s, None
        out[k] = v
    return out


def merge(base: Any, over: Any, key: str = "") -> Any:
    """Compose's override merge (compose-go's `override.Merge`): mappings merge, sequences
    append (without duplicates where compose-go makes them unique, `_UNIQUE`), `command`,
    `entrypoint` and `healthcheck.test` are replaced, and
    `ports`, `volumes`, `secrets`, `configs` and `env_file` entries merge by what they mount or
    bind (the override's entry takes the base's place). A `logging` with another driver
    replaces the base's."""
    if isinstance(base, dict) and isinstance(over, dict):
        if key == "logging" and over.get("driver") not in (None, base.get("driver")) and base.get("driver") is not None:
            return over
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(out[k], v, k) if k in out else v
        return out
    if isinstance(base, list) and isinstance(over, list) and key not in _REPLACE:
        index = _BY_KEY.get(key)
        if index is not None:
            return _merge_by(base, over, index)
        if key not in _UNIQUE:
            return [*base, *over]
        out_l = list(base)
        for item in over:
            if item not in out_l:
                out_l.append(item)
        return out_l
    if over is None and isinstance(base, dict):
        return base  # `web:` with nothing under it names a service without changing it
    return over


def _merge_by(base: list[Any], over: list[Any], index: Callable[[Any], Any]) -> list[Any]:
    out = list(base)
    where = {index(item): i for i, item in enumerate(out)}
    for item in over:
        k = index(item)
        if k in where:
            out[where[k]] = item
        else:
            where[k] = len(out)
            out.append(item)
    return out


def _volume_target(item: Any) -> Any:
    if isinstance(item, dict):
        return item.get("target")
    parts = str(item).split(":")
    # `src:dst[:mode]`; a Windows drive letter (`C:\\x:/y`) is one part of the source
    if len(parts) > 1 and len(parts[0]) == 1 and parts[0].isalpha():
        parts = [parts[0] + ":" + parts[1], *parts[2:]]
    return parts[1] if len(parts) > 1 else parts[0]


def _mount_target(prefix: str) -> Callable[[Any], Any]:
    def index(item: Any) -> Any:
        if isinstance(item, dict):
            return item.get("target") or f"{prefix}{item.get('source')}"
        return f"{prefix}{item}"
    return index


def _port_key(item: Any) -> Any:
    if isinstance(item, dict):
        return (item.get("host_ip", "0.0.0.0"), str(item.get("published", "")), str(item.get("target")),
                item.get("protocol", "tcp"))
    return str(item)


def _env_file_key(item: Any) -> Any:
    return item.get("path") if isinstance(item, dict) else item


_BY_KEY: dict[str, Callable[[Any], Any]] = {
    "volumes": _volume_target,
    "ports": _port_key,
    "secrets": _mount_target("/run/secrets/"),
    "configs": _mount_target("/"),
    "env_file": _env_file_key,
}


def without(model: dict[str, Any], paths: Iterable[tuple[str | int, ...]]) -> dict[str, Any]:
    """`model` with what `paths` lead to left out (copying only the way there): an override's
    `!reset` and `!override` nodes first remove what the files before it set. A path through
    a sequence item stops at the sequence, which the item's own merge then handles."""
    for path in paths:
        keys: list[str] = []
        for p in path:
            if not isinstance(p, str):
                break
            keys.append(p)
        else:
            model = _drop(model, keys)
    return model


def _drop(value: Any, keys: list[str]) -> Any:
    if not isinstance(value, dict) or keys[0] not in value:
        return value
    out = dict(value)
    if len(keys) == 1:
        del out[keys[0]]
    else:
        out[keys[0]] = _drop(value[keys[0]], keys[1:])
    return out


def resolve_extends(services: Mapping[str, Any], tags: Iterable[tuple[tuple[str | int, ...], str]] = ()) -> dict[str, Any]:
    """Follow `extends` among `services`. One with `file:` names a file outside the stack and
    keeps its own keys only. `tags` are the file's `!reset` / `!override` places: what a service
    resets or overrides is dropped from what it extends first, as Compose does."""
    tagged: dict[str, list[tuple[str | int, ...]]] = {}
    for path, _ in tags:
        if len(path) > 2 and path[0] == "services":
            tagged.setdefault(str(path[1]), []).append(path[2:])
    done: dict[str, Any] = {}

    def get(name: str, trail: tuple[str, ...]) -> Any:
        if name in done:
            return done[name]
        svc = services.get(name)
        if not isinstance(svc, dict) or "extends" not in svc or name in trail:
            done[name] = svc
            return svc
        ext = svc["extends"]
        base_name = ext if isinstance(ext, str) else ext.get("service") if isinstance(ext, dict) else None
        from_file = isinstance(ext, dict) and ext.get("file")
        base = get(str(base_name), (*trail, name)) if base_name is not None and not from_file else None
        own = {k: v for k, v in svc.items() if k != "extends"}
        result = extend(base, own, tagged.get(name, ())) if isinstance(base, dict) else svc
        done[name] = result
        return result

    out = {name: get(name, ()) for name in services}
    del get  # a recursive closure is a reference cycle: break it, or the values wait for the GC
    return out


def extend(parent: dict[str, Any], own: dict[str, Any], tagged: Iterable[tuple[str | int, ...]] = ()) -> dict[str, Any]:
    """A service that extends `parent` with its own keys `own` (`tagged`: the places inside it
    that it `!reset`s or `!override`s)."""
    merged: dict[str, Any] = merge(without(normalise_service(parent), tagged), normalise_service(own))
    return merged


def normalise_stack(docs: Iterable[Mapping[str, Any]],
                    tags: Sequence[Iterable[tuple[tuple[str | int, ...], str]]] = ()) -> dict[str, Any]:
    """Merge the files of one variant (base first) into one normalised model. `tags` are each
    file's `!reset` / `!override` places (`ComposeDoc.tags`), in the same order as `docs`."""
    model: dict[str, Any] = {}
    for i, doc in enumerate(docs):
        doc = dict(doc)
        services = doc.get("services")
        if isinstance(services, dict):
            own_tags = tags[i] if i < len(tags) else ()
            doc["services"] = {k: normalise_service(v) for k, v in resolve_extends(services, own_tags).items()}
        if i < len(tags) and model:
            model = without(model, (p for p, _ in tags[i]))
        model = merge(model, doc)
    return model


def same(a: Any, b: Any) -> bool:
    """Equal, and of equal types all the way down: `1 == True == 1.0`, but marshal tells them
    apart (and is faster than `repr`). Key order counts too, which only makes it stricter."""
    return a is b or (a == b and marshal.dumps(a) == marshal.dumps(b))


def differences(a: Any, b: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths where `a` and `b` differ, as deep as both sides are mappings."""
    if a is b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a.keys() | b.keys():
            if k not in a or k not in b:
                yield (*path, k)
                continue
            x, y = a[k], b[k]
            # Most of a stack is untouched: equal subtrees are found in C.
            if x is y or (type(x) is dict and same(x, y)):
                continue
            yield from differences(x, y, (*path, k))
    elif a != b or type(a) is not type(b):
        yield path


def covered(path: tuple[str, ...], allowed: Iterable[tuple[str, ...]]) -> bool:
    """Whether `path` lies under one of the `allowed` paths (pass a set when asking often)."""
    allowed = allowed if isinstance(allowed, (set, frozenset)) else set(allowed)
    return any(path[:i] in allowed for i in range(len(path) + 1))


# --- the canonical form: what the differential test compares -------------------------------
#
# `docker compose config --format json --no-interpolate --no-path-resolution --no-normalize`
# prints the merged model much as it was written, with a few forms expanded. `canonical` brings
# both that output and the index's model (`Project.model`) to one form, so that they can be
# compared key for key:
#
# - `environment`, `labels`, `annotations`, `sysctls`, `extra_hosts`, `build.args` become
#   mappings of strings (a bare `KEY` maps to None);
# - `ports` become long form, one entry per port of a range (`published` a string, `target` a
#   number, `protocol` and `mode` spelled out); `volumes` become long form as compose-go's
#   short-syntax parser writes them (`bind.create_host_path`, `read_only`, `volume.nocopy`,
#   `bind.selinux`); `secrets` and `configs` get their default target;
# - `env_file` entries become `{path, required}`; `depends_on` long form; `networks` a mapping;
#   `dns`, `dns_search`, `dns_opt` lists; `build` a mapping, its `context` `.` unless written;
# - the top-level `include` is left out (its files are merged in), and so are `extends` (followed)
#   and the obsolete `version`; an empty `volume: {}` or `bind: {}` says nothing and goes.
#
# It is only for comparing: the index keeps the shapes passes and verification work with.

_AS_MAP = ("environment", "labels", "annotations", "sysctls", "extra_hosts")
_PORT = lazyre.compile(r"^(?:(?:\[(?P<ip6>[^\]]+)\]|(?P<ip>[^:\[\]]*)):)??(?:(?P<pub>[^:]*):)?(?P<target>[^:/]+)(?:/(?P<proto>\w+))?$")


def canonical(model: Any) -> Any:
    """`model` (the index's, or `docker compose config`'s JSON) in the comparison form above."""
    if not isinstance(model, dict):
        return model
    out = {k: v for k, v in model.items() if k not in ("include", "version")}
    services = out.get("services")
    if isinstance(services, dict):
        out["services"] = {k: _canonical_service(v) for k, v in services.items()}
    return out


def _strings(m: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v if v is None or isinstance(v, str) else as_string(v) for k, v in m.items()}


def as_string(v: Any) -> str:
    """A scalar as Compose turns it into an environment string."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _canonical_service(svc: Any) -> Any:
    if not isinstance(svc, dict):
        return svc
    out = normalise_service({k: v for k, v in svc.items() if k != "extends"})
    for key in _AS_MAP:
        if isinstance(out.get(key), dict):
            out[key] = _strings(out[key])
    build = out.get("build")
    if isinstance(build, str):
        build = {"context": build}
    if isinstance(build, dict):
        build = {"context": ".", **build}  # a build with no context builds the project folder
        if isinstance(build.get("args"), list):
            build["args"] = _list_to_map(build["args"], "=")
        if isinstance(build.get("args"), dict):
            build["args"] = _strings(build["args"])
        out["build"] = build
    if isinstance(out.get("ports"), list):
        out["ports"] = [p for item in out["ports"] for p in _ports(item)]
    if isinstance(out.get("volumes"), list):
        out["volumes"] = [long_volume(v) for v in out["volumes"]]
    for key, prefix in (("secrets", "/run/secrets/"), ("configs", "/")):
        if isinstance(out.get(key), list):
            out[key] = [_mount(v, prefix) for v in out[key]]
    ef = out.get("env_file")
    if ef is not None:
        out["env_file"] = [{"required": True, **e} if isinstance(e, dict) else {"path": e, "required": True}
                           for e in (ef if isinstance(ef, list) else [ef])]
    if isinstance(out.get("networks"), list):
        out["networks"] = {str(n): None for n in out["networks"]}
    for key in ("dns", "dns_search", "dns_opt"):
        if isinstance(out.get(key), str):
            out[key] = [out[key]]
    return out


def _ports(item: Any) -> list[Any]:
    if isinstance(item, dict):
        p = {"mode": "ingress", "protocol": "tcp", **item}
        if "published" in p and p["published"] is not None:
            p["published"] = str(p["published"])
        if isinstance(p.get("target"), str) and p["target"].isdigit():
            p["target"] = int(p["target"])
        return [p]
    m = _PORT.match(str(item))
    if m is None:
        return [item]
    ip = m.group("ip6") or m.group("ip")
    pub, target, proto = m.group("pub"), m.group("target"), m.group("proto") or "tcp"
    targets = _range(target)
    pubs = _range(pub) if pub else []
    if targets is None or pubs is None:
        return [item]
    out = []
    for i, t in enumerate(targets):
        port: dict[str, Any] = {"mode": "ingress", "protocol": proto, "target": t}
        if ip:
            port["host_ip"] = ip
        if pubs:
            port["published"] = str(pubs[i]) if len(pubs) == len(targets) else pub
        out.append(port)
    return out


def _range(text: str) -> list[int] | None:
    a, _, b = text.partition("-")
    if not a.isdigit() or b and not b.isdigit():
        return None
    return list(range(int(a), int(b or a) + 1))


def split_outside_vars(text: str, sep: str = ":") -> list[str]:
    """`text` split at `sep`, except inside `${...}` (`${DIR:-.}/data:/data` is two parts)."""
    parts: list[str] = []
    depth = start = 0
    for i, ch in enumerate(text):
        if text.startswith("${", i):
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        elif ch == sep and not depth:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _clean(path: str) -> str:
    import posixpath

    return posixpath.normpath(path) if path.startswith("/") else path


def long_volume(item: Any) -> Any:
    """A `volumes` entry in long form, as compose-go's short-syntax parser writes it."""
    if not isinstance(item, str):
        if isinstance(item, dict):
            item = {k: v for k, v in item.items() if not (k in ("volume", "bind") and v == {})}
            if isinstance(item.get("target"), str):
                item["target"] = _clean(item["target"])
        return item
    parts = split_outside_vars(item)
    if len(parts) > 1 and len(parts[0]) == 1 and parts[0].isalpha():
        parts = [parts[0] + ":" + parts[1], *parts[2:]]
    if len(parts) == 1:
        return {"target": _clean(parts[0]), "type": "volume"}
    src, target, mode = parts[0], _clean(parts[1]), ":".join(parts[2:])
    bind = src.startswith((".", "/", "~")) or (len(src) > 1 and src[1] == ":")
    out: dict[str, Any] = {"source": src, "target": target, "type": "bind" if bind else "volume"}
    opts: dict[str, Any] = {"create_host_path": True} if bind else {}
    vol: dict[str, Any] = {}
    for opt in filter(None, mode.split(",")):
        if opt == "ro":
            out["read_only"] = True
        elif opt in ("z", "Z"):
            opts["selinux"] = opt  # compose-go keeps it under `bind` whatever the type
        elif opt == "nocopy" and not bind:
            vol["nocopy"] = True
        elif opt in ("shared", "rshared", "slave", "rslave", "private", "rprivate") and bind:
            opts["propagation"] = opt
    if opts:
        out["bind"] = opts
    if vol:
        out["volume"] = vol
    return out


def _mount(item: Any, prefix: str) -> Any:
    if isinstance(item, str):
        return {"source": item, "target": prefix + item}
    if isinstance(item, dict) and "target" not in item and isinstance(item.get("source"), str):
        return {**item, "target": prefix + item["source"]}
    return item
