"""Reading and writing files byte-faithfully.

A file is read once as bytes. The BOM is split off and remembered, the newline style is
measured, and the text keeps its own line endings so parser offsets index it directly.
Writing is atomic: a temporary file in the same folder, the original mode, `os.replace`, and
only if the file on disk is still the one that was read.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from e2i_fix import lazyre
from e2i_fix.errors import InputError
from e2i_fix.records import NamedTuple

BOM = "\ufeff"
MAX_BYTES = 16 * 1024 * 1024
_LONE_CR = lazyre.compile(r"\r(?!\n)")


class Source(NamedTuple):
    path: Path
    raw: bytes
    text: str  # decoded, without the BOM, with the file's own line endings
    bom: bool
    newline: str  # "\r\n" or "\n": what inserted lines use
    mode: int | None = None  # None: the file does not exist yet

    @property
    def exists(self) -> bool:
        return self.mode is not None

    def encode(self, text: str) -> bytes:
        return ((BOM if self.bom else "") + text).encode("utf-8")


def decode(path: Path, raw: bytes, mode: int | None = None) -> Source:
    if b"\x00" in raw:
        raise InputError("binary file (NUL byte), not text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise InputError(f"not UTF-8 (byte 0x{raw[e.start]:02x})", line, col) from None
    bom = text.startswith(BOM)
    if bom:
        text = text[1:]
    if "\r" in text and (cr := _LONE_CR.search(text)):
        # YAML takes a lone CR for a line break; the editors count lines by LF and would
        # misplace their edits (and mix line endings), so such a file is left alone.
        line = text.count("\n", 0, cr.start()) + 1
        col = cr.start() - (text.rfind("\n", 0, cr.start()) + 1) + 1
        raise InputError("a line break is a lone CR (\\r), not LF or CRLF: not edited", line, col)
    first = text.find("\n")
    newline = "\r\n" if first > 0 and text[first - 1] == "\r" else "\n"
    return Source(path, raw, text, bom, newline, mode)


def read(path: Path) -> Source:
    """Read a regular file; anything else (folder, FIFO, device) is refused without blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        if os.path.islink(path):
            raise InputError(f"broken symlink (to {os.readlink(path)})") from None
        raise InputError("no such file") from None
    except IsADirectoryError:
        raise InputError("is a folder, not a file") from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "folder" if stat.S_ISDIR(st.st_mode) else "special file"
            raise InputError(f"is a {kind}, not a regular file")
        if st.st_size > MAX_BYTES:
            raise InputError(f"too large ({st.st_size} bytes)")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}") from None
    finally:
        os.close(fd)
    return decode(path, b"".join(chunks), stat.S_IMODE(st.st_mode))


def new_file(path: Path, like: Source | None = None) -> Source:
    """A document for a file that a fix creates (e.g. `.dockerignore`)."""
    newline = like.newline if like else "\n"
    return Source(path, b"", "", False, newline, None)


def _on_disk(path: Path, limit: int) -> tuple[bytes | None, tuple[int, int]] | None:
    """Up to `limit` bytes of `path` (None: not a regular file any more) and its owner;
    None when it is gone. Never blocks: the file may have been swapped for a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, (st.st_uid, st.st_gid)
        chunks = []
        size = 0
        while size < limit and (chunk := os.read(fd, min(1 << 20, limit - size))):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), (st.st_uid, st.st_gid)
    finally:
        os.close(fd)


def write(source: Source, data: bytes) -> None:
    """Atomically replace `source.path` with `data`.

    Symlinks are written through: the link stays and its target gets the new content.
    The file must still hold the bytes that were read; otherwise nothing is written.
    The owner is kept where the user may keep it (a run as root must not hand the file to root).
    """
    target = Path(os.path.realpath(source.path))
    try:
        on_disk = _on_disk(target, len(source.raw) + 1)
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}") from None
    if on_disk is None:
        if source.exists:
            raise InputError("deleted since it was read; not written")
    elif not source.exists:
        raise InputError("created by someone else since the run started; not written")
    elif on_disk[0] != source.raw:
        raise InputError("changed on disk since it was read; not written")
    owner = on_disk[1] if on_disk else None
    import tempfile  # only a run that writes pays for it

    if not source.exists:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)  # a scaffold's folder
        except OSError as e:
            raise InputError(f"cannot write: {e.strerror or e}") from None

    try:
        if not source.exists:  # a new file may open a new folder (a scaffolded docker/web/Dockerfile)
            os.makedirs(target.parent, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".e2i-fix")
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, source.mode if source.mode is not None else 0o644)
        if owner is not None and hasattr(os, "chown"):
            try:
                os.chown(tmp, *owner)
            except PermissionError:
                pass  # not ours to give away: the file ends up owned by whoever ran the tool
        if source.exists:
            os.replace(tmp, target)
        else:
            # A new file never replaces one that appeared meanwhile: link(2) refuses to.
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise InputError("created by someone else since the run started; not written") from None
            except OSError:
                if os.path.lexists(target):
                    raise InputError("created by someone else since the run started; not written") from None
                os.replace(tmp, target)  # a file system without hard links
            else:
                os.unlink(tmp)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise InputError(f"cannot write: {e.strerror or e}") from None
        raise
