"""The fix passes, in the order they run. Each module's docstring is its documentation."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from e2i_fix.fix import Fix, Safety
    from e2i_fix.project import Project


class Pass(Protocol):
    """A pass module. It may also say which file roles it serves (`ROLES`, a frozenset of
    `fileroles` roles; every role when it says nothing): the engine keeps its fixes out of the
    files of the other roles. `NEEDS = "build"`: it reads only what services build (Dockerfiles,
    build contexts), and has nothing to say on a stack that builds nothing."""

    @property
    def ID(self) -> str: ...  # noqa: N802 - module attributes, read-only here

    @property
    def SUMMARY(self) -> str: ...  # noqa: N802

    @property
    def SAFETY(self) -> Safety: ...  # noqa: N802

    @property
    def DEFAULTS(self) -> dict[str, Any]: ...  # noqa: N802

    __doc__: str | None

    def run(self, project: Project, options: dict[str, Any]) -> Iterator[Fix]: ...


# Every pass in run order: (id, module, NEEDS). The ids and NEEDS are the modules' own (a test
# holds them to it), written here so that a run imports only the passes it runs.
# env-anchors rewrites whole environment blocks: passes that edit single entries go first.
# The hardening passes run after no-force-root: the user it sets decides what they add.
# buildkit-syntax comes after the passes that add BuildKit features to a Dockerfile.
PASSES: tuple[tuple[str, str, str | None], ...] = (
    ("deploy-limits", "deploy_limits", None),
    ("logging", "logging", None),
    ("tmpfs-size", "tmpfs_size", None),
    ("no-force-root", "no_force_root", None),
    ("healthcheck-probes", "healthcheck_probes", None),
    ("depends-on-healthy", "depends_on_healthy", None),
    ("env-anchors", "env_anchors", None),
    ("frontend-network", "frontend_network", None),
    ("missing-build-files", "missing_build_files", "build"),
    ("lockfile", "lockfile", "build"),
    ("non-root-user", "non_root_user", "build"),
    ("cache-mounts", "cache_mounts", "build"),
    ("buildkit-syntax", "buildkit_syntax", "build"),
    ("dockerignore", "dockerignore", "build"),
    ("no-new-privileges", "no_new_privileges", None),
    ("cap-drop", "cap_drop", None),
    ("read-only-root", "read_only_root", None),
    ("localhost-ports", "localhost_ports", None),
    ("unused-suppression", "unused_suppression", None),
)


class _Lazy:
    # A pass whose module is imported the first time anything but its id and NEEDS is asked
    # of it. (No docstring: `__doc__` is the module's.)
    __slots__ = ("ID", "NEEDS", "_name", "_module")

    def __init__(self, pass_id: str, name: str, needs: str | None) -> None:
        self.ID = pass_id
        self.NEEDS = needs
        self._name = name
        self._module: Any = None

    def _load(self) -> Any:
        if self._module is None:
            self._module = importlib.import_module(f"e2i_fix.passes.{self._name}")
        return self._module

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self._load(), attr)

    @property
    def __doc__(self) -> str | None:  # type: ignore[override]
        doc: str | None = self._load().__doc__
        return doc

    @property
    def SUMMARY(self) -> str:  # noqa: N802 - the module attribute it stands for
        return str(self._load().SUMMARY)

    @property
    def SAFETY(self) -> Safety:  # noqa: N802
        safety: Safety = self._load().SAFETY
        return safety

    @property
    def DEFAULTS(self) -> dict[str, Any]:  # noqa: N802
        defaults: dict[str, Any] = self._load().DEFAULTS
        return defaults

    def run(self, project: Project, options: dict[str, Any]) -> Iterator[Fix]:
        got: Iterator[Fix] = self._load().run(project, options)
        return got

    def __repr__(self) -> str:
        return f"<pass {self.ID}>"


def registry() -> dict[str, Pass]:
    """Every pass by id, in run order. A pass's module is imported when it is first used:
    `--version` needs none, a stack that builds nothing no Dockerfile pass."""
    return {pid: _Lazy(pid, name, needs) for pid, name, needs in PASSES}
