"""What passes propose: text edits grouped into fixes, each with a safety level."""

from __future__ import annotations

import enum
from pathlib import Path

from e2i_fix.records import NamedTuple

# A place in the normalised Compose model, e.g. ("services", "api", "logging").
ModelPath = tuple[str, ...]


class Safety(enum.IntEnum):
    """How much a fix may be trusted; the default run applies only `SAFE` ones."""

    DISPLAY_ONLY = 0  # reported, never applied
    UNSAFE = 1  # applied with --unsafe-fixes
    SAFE = 2

    @property
    def label(self) -> str:
        """As the documentation and the reports spell it: `display-only`, `unsafe`, `safe`."""
        return self.name.lower().replace("_", "-")


class Edit(NamedTuple):
    """Replace `text[start:end]` of the document at `path` (insertion: start == end)."""

    path: Path
    start: int
    end: int
    text: str


class Fix(NamedTuple):
    """One logical change (possibly over several files), or a finding with no edits."""

    pass_id: str
    message: str
    path: Path  # where to report it
    line: int = 0
    col: int = 0
    edits: tuple[Edit, ...] = ()
    safety: Safety = Safety.SAFE
    # Where the normalised model may change; verification rejects any other difference.
    changes: tuple[ModelPath, ...] = ()
    error: bool = False  # the run itself is wrong (a bad option value): exit 2
    # A finding about something that breaks the build or `up` (a file a build needs is missing):
    # an error in SARIF and GitHub annotations, and like any other finding for the exit code.
    severe: bool = False
    # Where the figures of a fix came from, for the finding and machine-readable output:
    # (what, source) pairs such as ("memory 4G", "role api (built-in table)").
    provenance: tuple[tuple[str, str], ...] = ()
    # Information, not a finding: shown by --check, never counted for the exit code.
    info: bool = False
    # A finding that says the same of many services: (key, message for several, service). The
    # engine makes one finding of those with the same pass, file and key, at the first one's
    # place, its message the second item with `{count}` and `{services}` filled in.
    group: tuple[str, str, str] | None = None

    @property
    def applicable(self) -> bool:
        return bool(self.edits) and self.safety > Safety.DISPLAY_ONLY

    def location(self) -> str:
        return f"{self.path}:{self.line}:{self.col}" if self.line else str(self.path)


def as_path(p: Path | str) -> Path:
    """`p` as a Path: itself when it is one (no new object to build and hash on hot paths)."""
    return p if isinstance(p, Path) else Path(p)
