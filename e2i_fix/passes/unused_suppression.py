"""unused-suppression: a suppression comment that suppresses nothing.

## What it does
Reports a `# e2i-fix: ignore[ID]` comment (on the line above what it covers), or a
`# e2i-fix: skip-file`, that kept no fix out during the run, and a pass id in one that no pass
has. The engine keeps the suppressions; this entry gives the finding its id, so it can be
selected, ignored and explained like any pass. Ids of passes that were not selected are not
judged: the comment may be for a run that selects them.

## Why
A suppression outlives the reason for it: the line it covered was fixed by hand or moved, or the
pass id was misspelt and never suppressed anything. Either way it no longer says what it seems to.

## Example
Before:

    # e2i-fix: ignore[cache-mounts]
    COPY . /app

After: reported, `nothing to suppress for cache-mounts` (a COPY has no cache mount to add).

## Fix safety
Display only: whether to delete the comment or move it is the author's call.

## Options
None.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from e2i_fix.fix import Fix, Safety
from e2i_fix.project import Project

ID = "unused-suppression"
SUMMARY = "a suppression comment that suppresses nothing (reported by the engine)"
SAFETY = Safety.DISPLAY_ONLY
READS: frozenset[str] = frozenset()
DEFAULTS: dict[str, Any] = {}


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    """Nothing to propose: the engine knows which suppressions were used once every pass ran."""
    return iter(())
