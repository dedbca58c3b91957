"""The fix passes, in the order they run. Each module's docstring is its documentation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from e2i_fix.fix import Fix, Safety
    from e2i_fix.project import Project


class Pass(Protocol):
    """A pass module. It may also say which file roles it serves (`ROLES`, a frozenset of
    `fileroles` roles; every role when it says nothing): the engine keeps its fixes out of the
    files of the other roles."""

    ID: str
    SUMMARY: str
    SAFETY: Safety
    DEFAULTS: dict[str, Any]
    __doc__: str | None

    def run(self, project: Project, options: dict[str, Any]) -> Iterator[Fix]: ...


def registry() -> dict[str, Pass]:
    """Every pass by id, in run order. Imported on first use: `--version` needs none of this."""
    from e2i_fix.passes import (
        buildkit_syntax, cap_drop, cache_mounts, deploy_limits, depends_on_healthy, dockerignore, env_anchors,
        frontend_network, healthcheck_probes, localhost_ports, lockfile, logging, missing_build_files, no_force_root,
        no_new_privileges, non_root_user, read_only_root, tmpfs_size,
        unused_suppression,
    )

    # env-anchors rewrites whole environment blocks: passes that edit single entries go first.
    # The hardening passes run after no-force-root: the user it sets decides what they add.
    # buildkit-syntax comes after the passes that add BuildKit features to a Dockerfile.
    modules: list[Any] = [deploy_limits, logging, tmpfs_size, no_force_root, healthcheck_probes, depends_on_healthy,
                          env_anchors, frontend_network, missing_build_files, lockfile, non_root_user, cache_mounts,
                          buildkit_syntax, dockerignore, no_new_privileges, cap_drop, read_only_root, localhost_ports,
                          unused_suppression]
    return {m.ID: m for m in modules}
