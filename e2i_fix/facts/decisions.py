"""Decisions that passes of one run share, so two passes never disagree about one service.

A pass that changes what a service is (`non-root-user` gives a stage a new USER) takes its
decision here; another pass that depends on it (`cap-drop` keeps root's capabilities only for a
process that stays root) reads the same decision, in the same round, whether or not the first
pass's fix has been spliced in yet. A decision counts only where its fix will be applied in this
run: the pass is selected and its safety is allowed (`applies`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from e2i_fix.fix import Safety
    from e2i_fix.project import Project

T = TypeVar("T")


def applies(project: Project, pass_id: str, safety: Safety, service: str | None = None) -> bool:
    """Whether a fix of `pass_id` with `safety` (for `service`) is applied in this run. An index
    built outside the engine (no settings) assumes it is not: a pass that relies on another
    pass's decision then keeps to what the files say today."""
    settings = getattr(project, "settings", None)
    if settings is None or not settings.selected(pass_id):
        return False
    if service is not None and service in settings.options(pass_id).get("_ignored_services", ()):
        return False
    from e2i_fix.fix import Fix

    return bool(settings.allows(Fix(pass_id, "", project.folder, safety=safety)))


def decide(project: Project, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """`compute()` once per index and key: every pass that asks gets the same answer."""
    cache: dict[tuple[Any, ...], Any] = project.__dict__.setdefault("_decisions", {})
    if key not in cache:
        cache[key] = compute()
    got: T = cache[key]
    return got
