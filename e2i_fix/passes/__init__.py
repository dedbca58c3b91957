"""The fix passes, in the order they run. Each module's docstring is its documentation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from e2i_fix.fix import Fix, Safety
    from e2i_fix.project import Project


class Pass(Protocol):
    ID: str
    SUMMARY: str
    SAFETY: Safety
    DEFAULTS: dict[str, Any]
    __doc__: str | None

    def run(self, project: Project, options: dict[str, Any]) -> Iterator[Fix]: ...


def registry() -> dict[str, Pass]:
    """Every pass by id, in run order. Imported on first use: `--version` needs none of this."""
    from e2i_fix.passes import (
        buildkit_syntax, cache_mounts, deploy_limits, dockerignore, lockfile, logging, missing_build_files,
        non_root_user, tmpfs_size, unused_suppression,
    )

    # missing-build-files first: an official image replaces a build the Dockerfile passes
    # would otherwise look at; buildkit-syntax after the passes that add BuildKit features.
    modules: list[Any] = [missing_build_files, deploy_limits, logging, tmpfs_size, lockfile, non_root_user,
                          cache_mounts, buildkit_syntax, dockerignore, unused_suppression]
    return {m.ID: m for m in modules}
