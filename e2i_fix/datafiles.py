"""The data tables of `e2i_fix/data/` (TOML and JSON), parsed once and kept beside the bytecode.

Parsing the image table (38 KB of TOML, in pure Python) took a tenth of a small run, and the
JSON tables cost the import of `json` and the parse of the 90 KB compose-spec schema. A parse
is kept the way Python keeps bytecode: in `data/__pycache__/`, marshalled, keyed by the file's
size and modification time, written only where the interpreter writes bytecode (not under
`PYTHONDONTWRITEBYTECODE`) and only where the folder is writable. A missing, stale or unreadable
copy is parsed again: the TOML file is always what counts.
"""

from __future__ import annotations

import marshal
import os
import sys
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"


def load(name: str) -> dict[str, Any]:
    """The TOML or JSON file `data/<name>`, parsed (from the kept copy where it is current)."""
    path = DATA / name
    st = os.stat(path)
    key = (st.st_size, st.st_mtime_ns)
    kept = DATA / "__pycache__" / f"{name}.{sys.implementation.cache_tag}.marshal"
    try:
        with open(kept, "rb") as f:
            got = marshal.load(f)
        if isinstance(got, tuple) and len(got) == 2 and got[0] == key and isinstance(got[1], dict):
            table: dict[str, Any] = got[1]
            return table
    except (OSError, EOFError, ValueError, TypeError):
        pass
    if name.endswith(".json"):
        import json

        table = json.loads(path.read_bytes())
    else:
        import tomllib

        with open(path, "rb") as f:
            table = tomllib.load(f)
    if not sys.dont_write_bytecode:
        _keep(kept, key, table)
    return table


def _keep(kept: Path, key: tuple[int, int], table: dict[str, Any]) -> None:
    try:
        blob = marshal.dumps((key, table))
    except ValueError:  # a value marshal cannot hold (a TOML date): parsed each time
        return
    tmp = kept.with_name(f"{kept.name}.{os.getpid()}.tmp")
    try:
        kept.parent.mkdir(exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(blob)
        os.replace(tmp, kept)  # atomic: a concurrent run reads the old copy or the new one
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
