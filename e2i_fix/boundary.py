"""Where the tool may write: the project a command-line path belongs to.

A compose file is untrusted input (the tool runs in CI on pull requests): a `build.context` of
`../../elsewhere` or `/etc`, or a file that is a symlink to somewhere else, may be read for
context but is never written. The project is the git work tree that holds the path given on
the command line, found by walking up for `.git` (no `git` process), or, outside git, that path
itself (the folder, or a file's folder). Paths are compared after symlinks are resolved.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


def root_of(path: Path) -> Path:
    """The folder that bounds the writes of a run given `path` (resolved)."""
    return _root(Path(os.path.realpath(path)))  # cached by the real path: `.` moves with the cwd


@lru_cache(maxsize=256)
def _root(folder: Path) -> Path:
    if not folder.is_dir():
        folder = folder.parent
    here = folder
    while True:
        if os.path.lexists(here / ".git"):  # a folder, or a file in a linked work tree
            return here
        if here.parent == here:
            return folder
        here = here.parent


def inside(root: Path, path: Path) -> bool:
    """Whether writing `path` (through any symlink) stays inside `root`."""
    real = os.path.realpath(path)
    base = str(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)
