"""The normalised meaning of a stack: what `docker compose config` would agree two files mean.

Merge keys are resolved (by the loader), `extends` is followed within the stack, override files
are merged onto the base, and the forms Compose treats as equal are made equal: list
environments and labels become mappings, short `depends_on` becomes long form. Verification
compares these models before and after a run; the Project uses them to answer questions.
"""

from __future__ import annotations

import marshal
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

# Keys whose sequences Compose replaces instead of appending when an override sets them.
_REPLACE = {"command", "entrypoint", "test"}
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
    append without duplicates, `command`, `entrypoint` and `healthcheck.test` are replaced, and
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


def resolve_extends(services: Mapping[str, Any]) -> dict[str, Any]:
    """Follow `extends` among `services`. One with `file:` names a file outside the stack and
    keeps its own keys only."""
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
        result = merge(normalise_service(base), normalise_service(own)) if isinstance(base, dict) else svc
        done[name] = result
        return result

    out = {name: get(name, ()) for name in services}
    del get  # a recursive closure is a reference cycle: break it, or the values wait for the GC
    return out


def normalise_stack(docs: Iterable[Mapping[str, Any]],
                    tags: Sequence[Iterable[tuple[tuple[str | int, ...], str]]] = ()) -> dict[str, Any]:
    """Merge the files of one variant (base first) into one normalised model. `tags` are each
    file's `!reset` / `!override` places (`ComposeDoc.tags`), in the same order as `docs`."""
    model: dict[str, Any] = {}
    for i, doc in enumerate(docs):
        doc = dict(doc)
        services = doc.get("services")
        if isinstance(services, dict):
            doc["services"] = {k: normalise_service(v) for k, v in resolve_extends(services).items()}
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
