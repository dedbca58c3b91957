"""Self-verification before anything is written.

The result must parse (the engine already re-parsed every changed file), and in every variant
of the stack (`Project.variants`: the base alone, the base with each override, each file that
runs alone, the `.env` chain) its merged model must still be valid Compose wherever the input's
was (the compose-spec schema, `uniqueItems` included: a list key added both to a service and
to what extends or overrides it is there twice), and mean what the input meant but at the paths
the applied fixes declared. Each changed file must also be valid on its own.

`verify` returns the failures, each with the variant and the place; the engine drops the fixes
that caused them and runs again (`engine.run`), so one bad fix costs that fix, not the stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix import model
from e2i_fix.records import NamedTuple

if TYPE_CHECKING:
    from e2i_fix.engine import Result
    from e2i_fix.project import Project, Variant


class Failure(NamedTuple):
    """A variant (or one file) that the result breaks: where, and how."""

    variant: str  # "compose.yaml + compose.dev.yaml", or one file's name
    files: tuple[Path, ...]  # the compose files it reads
    path: tuple[str | int, ...]  # where in the (merged) model
    message: str  # "is not valid Compose: items at 0 and 1 are equal", "changed, which no fix declared"
    undeclared: bool = False  # a change no fix declared (else: not valid Compose)

    def reason(self) -> str:
        where = ".".join(str(p) for p in self.path) or "the file"
        return f"with {self.variant}, {where} {self.message}"


def variants(project: Project) -> list[Variant]:
    """The ways the stack is run (`Project.variants`)."""
    return project.variants()


def verify(result: Result) -> list[Failure]:
    before, after = result.before, result.after
    assert before is not None and after is not None
    allowed = {p for f in result.applied for p in f.changes}
    out: list[Failure] = []
    checked = []
    # A variant whose files (and what they include or extend from) are as they were means what
    # it meant and is as valid as it was: it is not merged and checked again.
    changed = {i for i, (a, b) in enumerate(zip(before.docs, after.docs)) if a.text != b.text}
    changed |= set(range(min(len(before.docs), len(after.docs)), max(len(before.docs), len(after.docs))))
    for files in variants(before):
        if changed.isdisjoint(_reads(before, files)):
            continue
        name = before.variant_name(files)
        paths = tuple(before.docs[i].path for i in files)
        old, new = before.model(files), after.model(files)
        for path in sorted(model.differences(old, new)):
            if not model.covered(path, allowed):
                out.append(Failure(name, paths, path, "changed, which no fix declared", True))
        checked.append((name, paths, old, new))
    from e2i_fix import schema  # only a run that changed something loads the schema

    for doc_before, doc_after in zip(before.docs, after.docs):
        if doc_after.text != doc_before.text:
            rel = before.variant_name((before.docs.index(doc_before),))
            checked.append((rel, (doc_after.path,), doc_before.value, doc_after.value))
    for name, paths, old, new in checked:
        # A service whose mounts did not change has the clashes it had: only the others are
        # looked at.
        old, new = _mounts_changed(old, new)
        before_clashes = set(_clashes(old))
        out += [Failure(name, paths, place, f"would mount {target} twice, which the engine refuses at `up`")
                for place, target in _clashes(new) if (place, target) not in before_clashes]
    for name, paths, old, new in checked:
        before_over = {place for place, _ in _reserved_above(old)}
        out += [Failure(name, paths, place, what) for place, what in _reserved_above(new) if place not in before_over]
    alone = schema.keys_judged_alone()
    for name, paths, old, new in checked:
        if alone:  # what did not change keeps its verdict: check only what did
            old, new = pruned(old, new)
        new_errors = schema.validate(new)
        if not new_errors:
            continue  # valid now: whatever the original was, nothing got worse
        # Compared by place: a message may quote a value that a fix was entitled to change.
        old_errors = {e.path for e in schema.validate(old)}
        out += [Failure(name, paths, e.path, f"would not be valid Compose: {e.message}")
                for e in new_errors if e.path not in old_errors]
    return out


def _reads(project: Project, files: tuple[int, ...]) -> set[int]:
    """The files a variant's model is made of: its own, and those they include or extend
    from, transitively."""
    seen = set(files)
    todo = list(files)
    while todo:
        for _, idx in project.refs.get(todo.pop(), ()):
            for j in idx:
                if j not in seen:
                    seen.add(j)
                    todo.append(j)
    return seen


def _mounts_changed(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both models with only the services whose `tmpfs` or `volumes` differ."""
    a, b = old.get("services"), new.get("services")
    if not isinstance(a, dict) or not isinstance(b, dict):
        return old, new
    keep = [k for k in b if not _same_mounts(a.get(k, _MISSING), b[k])]
    return ({"services": {k: a[k] for k in keep if k in a}},
            {"services": {k: b[k] for k in keep}})


def _same_mounts(a: Any, b: Any) -> bool:
    if not isinstance(a, dict) or not isinstance(b, dict):
        return model.same(a, b)
    return all(model.same(a.get(k, _MISSING), b.get(k, _MISSING)) for k in ("tmpfs", "volumes"))


def _clashes(value: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Mount paths a service mounts twice (a bounded `/tmp:size=64m` in one file and `/tmp` in
    another): `config` accepts them, the engine does not."""
    out: list[tuple[tuple[str, ...], str]] = []
    svcs = value.get("services")
    for name, svc in svcs.items() if isinstance(svcs, dict) else ():
        if not isinstance(svc, dict):
            continue
        seen: set[str] = set()
        tmpfs = svc.get("tmpfs")
        for item in tmpfs if isinstance(tmpfs, list) else [tmpfs] if isinstance(tmpfs, str) else []:
            target = str(item).split(":", 1)[0]
            if target in seen and "$" not in target:
                out.append((("services", str(name), "tmpfs"), target))
            seen.add(target)
        vols = svc.get("volumes")
        for item in vols if isinstance(vols, list) else []:
            long = model.long_volume(item)
            where = long.get("target") if isinstance(long, dict) else None
            if isinstance(where, str) and where in seen and "$" not in where:
                out.append((("services", str(name), "volumes"), where))
            if isinstance(where, str):
                seen.add(where)
    return out


def _reserved_above(value: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Reservations above the limit of the same resource (`deploy.resources.reservations.memory`
    or `mem_reservation` over `limits.memory` or `mem_limit`; `reservations.cpus` over
    `limits.cpus` or `cpus`): `config` accepts them, Docker refuses to create the container."""
    from e2i_fix.sizing import parse_cpus, parse_size

    out: list[tuple[tuple[str, ...], str]] = []
    svcs = value.get("services")
    for name, svc in svcs.items() if isinstance(svcs, dict) else ():
        if not isinstance(svc, dict):
            continue
        dep = svc.get("deploy")
        got = dep.get("resources") if isinstance(dep, dict) else None
        res: dict[str, Any] = got if isinstance(got, dict) else {}
        lim: dict[str, Any] = res["limits"] if isinstance(res.get("limits"), dict) else {}
        rsv: dict[str, Any] = res["reservations"] if isinstance(res.get("reservations"), dict) else {}
        for kind, parse, limits, reserved in (
                ("memory", parse_size, (("deploy", "resources", "limits", "memory"), lim.get("memory")),
                 [(("deploy", "resources", "reservations", "memory"), rsv.get("memory")),
                  (("mem_reservation",), svc.get("mem_reservation"))]),
                ("cpus", parse_cpus, (("deploy", "resources", "limits", "cpus"), lim.get("cpus")),
                 [(("deploy", "resources", "reservations", "cpus"), rsv.get("cpus"))])):
            limit = limits[1] if limits[1] is not None else svc.get("mem_limit" if kind == "memory" else "cpus")
            top = _parsed(parse, limit)
            if not top:
                continue  # no limit, `${VAR}`, or 0 (no limit to Docker)
            for where, got in reserved:
                amount = _parsed(parse, got)
                if amount is not None and amount > top:
                    out.append((("services", str(name), *where),
                                f"reserves {got}, above the {kind} limit {limit}: Docker refuses to create the "
                                "container"))
    return out


def _parsed(parse: Any, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return None
    try:
        return parse(value)
    except (TypeError, ValueError, ArithmeticError):
        return None


_MISSING = object()


def pruned(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both documents without what they have in common: equal top-level keys, equal services,
    and a service's equal keys are left out of both (equal as `model.same` sees it)."""
    return _cut(before, after, 3)


def _cut(a: dict[str, Any], b: dict[str, Any], levels: int) -> tuple[dict[str, Any], dict[str, Any]]:
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for key in {**a, **b}:
        x, y = a.get(key, _MISSING), b.get(key, _MISSING)
        if model.same(x, y):
            continue
        # Below the top level only `services` is cut further: its names, then each one's keys.
        if levels > 1 and (levels < 3 or key == "services") and isinstance(x, dict) and isinstance(y, dict):
            x, y = _cut(x, y, levels - 1)
        if x is not _MISSING:
            old[key] = x
        if y is not _MISSING:
            new[key] = y
    return old, new
