"""Self-verification before anything is written.

The result must parse (the engine already re-parsed every changed file), must still be valid
Compose wherever the input was (the compose-spec schema), and its normalised meaning may
differ from the original only at the paths the applied fixes declared. Each variant of the
stack is compared: the base alone, and the base with each override file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from e2i_fix import model
from e2i_fix.errors import Problem

if TYPE_CHECKING:
    from e2i_fix.engine import Result
    from e2i_fix.project import Project


def variants(project: Project) -> list[tuple[int, ...]]:
    """The files Compose can be run with: the base alone, and the base with each override
    (included files are part of each variant of the file that includes them)."""
    return project.variants()


def verify(result: Result) -> list[Problem]:
    assert result.before is not None and result.after is not None
    allowed = {p for f in result.applied for p in f.changes}
    passes = ", ".join(sorted({f.pass_id for f in result.applied}))
    problems: list[Problem] = []
    for files in variants(result.before):
        before = result.before.model(files)
        after = result.after.model(files)
        for path in sorted(model.differences(before, after)):
            if not model.covered(path, allowed):
                where = ".".join(path)
                problems.append(Problem(str(result.stack), f"verification failed: {where} changed, which no fix declared ({passes}); nothing written"))
                return problems
    from e2i_fix import schema  # only a run that changed something loads the schema
    alone = schema.keys_judged_alone()
    for doc_before, doc_after in zip(result.before.docs, result.after.docs):
        if doc_after.text == doc_before.text:
            continue
        old, new = doc_before.value, doc_after.value
        if alone:  # what did not change keeps its verdict: check only what did
            old, new = pruned(old, new)
        new_errors = schema.validate(new)
        if not new_errors:
            continue  # valid now: whatever the original was, nothing got worse
        # Compared by place: a message may quote a value that a fix was entitled to change.
        old_errors = {e.path for e in schema.validate(old)}
        for e in new_errors:
            if e.path not in old_errors:
                where = ".".join(str(p) for p in e.path)
                problems.append(Problem(str(doc_after.path), f"verification failed: the result is not valid Compose at {where}: {e.message} ({passes}); nothing written"))
                return problems
    return problems


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
