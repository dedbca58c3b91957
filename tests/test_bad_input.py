"""Bad input never hurts a file: one line on stderr, exit 2, nothing written, and the other
stacks of the same run are still processed.

Every case puts the bad file in `bad/` and a stack that needs a fix in `good/`, runs the
command line on both, and checks the error line, the untouched folder (no temp file left)
and the fixed sibling.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2i_fix import engine, source
from e2i_fix._main import main

from conftest import SUMMARY

PLAIN = "services:\n  web:\n    image: nginx:1.27\n"
FIXED_LINE = "    logging: *default-logging\n"
# `path[:line:col]: message`, nothing else.
LINE = re.compile(r"^(?P<path>\S.*?)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<message>.+)$")


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry under `folder`, hidden ones included (a leftover temp file is one)."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_symlink():
            out[rel] = f"-> {os.readlink(p)}"
        elif p.is_file():
            out[rel] = p.read_bytes()
        else:
            out[rel] = "<dir>" if p.is_dir() else "<special>"
    return out


def setup(tmp_path: Path) -> tuple[Path, Path]:
    bad = tmp_path / "bad"
    good = tmp_path / "good"
    bad.mkdir()
    good.mkdir()
    (good / "compose.yaml").write_text(PLAIN)
    return bad, good


def one_error(err: str, path: Path, message: str, line: int | None = None) -> re.Match[str]:
    """`err` (stderr, `fixed ...` lines aside) is exactly one well-formed line about `path`."""
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if not x.startswith("fixed ") and not SUMMARY.match(x)]
    assert len(lines) == 1, err
    m = LINE.match(lines[0])
    assert m, lines[0]
    assert m["path"] == str(path)
    assert message in m["message"], lines[0]
    if line is not None:
        assert m["line"] is not None and int(m["line"]) == line, lines[0]
    return m


def run_both(tmp_path: Path, bad: Path, good: Path, target: Path, message: str,
             capsys: pytest.CaptureFixture[str], line: int | None = None, *extra: str) -> None:
    """--apply then --dry-run on `tmp_path`: the bad side untouched both times, good fixed."""
    before = tree(bad)
    assert main(["--apply", "--select", "logging", *extra, str(tmp_path)]) == 2
    err = capsys.readouterr().err
    one_error(err, target, message, line)
    assert f"fixed {good / 'compose.yaml'}" in err.splitlines()
    assert tree(bad) == before
    assert FIXED_LINE in (good / "compose.yaml").read_text()
    assert sorted(p.name for p in good.iterdir()) == ["compose.yaml"]

    (good / "compose.yaml").write_text(PLAIN)
    assert main(["--select", "logging", *extra, str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    one_error(err, target, message, line)
    assert f"+++ {(good / 'compose.yaml').as_posix()}\n" in out
    assert str(bad) not in out
    assert tree(bad) == before
    assert (good / "compose.yaml").read_text() == PLAIN


def _bomb(levels: int, width: int) -> str:
    lines = [f"x-a0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"x-a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + PLAIN


def _merge_bomb(levels: int, width: int) -> str:
    lines = ["x-m0: &m0 {image: lol}"]
    lines += [f"x-m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * width)}]}}" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + PLAIN


def _alias_chain(n: int) -> str:
    lines = ["x-c0: &c0 [x]"] + [f"x-c{i}: &c{i} [*c{i - 1}]" for i in range(1, n)]
    return "\n".join(lines) + "\n" + PLAIN


CONTENT = [
    pytest.param(b"services:\n  web: [\n", "invalid YAML", 3, id="invalid YAML"),
    pytest.param(b"services:\n\tweb:\n\t\timage: x\n", "a tab: YAML indents with spaces only", 2, id="tab indentation"),
    pytest.param(b"services:\n  web:\n\timage: x\n", "a tab", 3, id="tab in a nested line"),
    pytest.param(b"services:\n  web:\n    image: caf\xe9\n", "not UTF-8 (byte 0xe9)", 3, id="latin-1 byte"),
    pytest.param(b"\xff\xfes\x00e\x00", "binary file", None, id="UTF-16 with BOM"),
    pytest.param(b"services:\n  web:\x00\n", "binary file (NUL byte)", None, id="NUL byte"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file", None, id="PNG data"),
    pytest.param(b"", "empty file", None, id="empty file"),
    pytest.param(b"  \n\n\t\n", "empty file", None, id="whitespace only"),
    pytest.param(b"# nothing here\n# yet\n", "empty file", None, id="comments only"),
    pytest.param(b"---\n...\n", "empty file", None, id="document markers only"),
    pytest.param(b"- web\n- db\n", "the top level is a sequence, not a mapping", 1, id="top level a list"),
    pytest.param(b"just a string\n", "the top level is a scalar, not a mapping", 1, id="top level a scalar"),
    pytest.param(b"services:\n  - web\n", "`services` is a sequence, not a mapping", 2, id="services a list"),
    pytest.param(b"services: web\n", "`services` is a scalar, not a mapping", 1, id="services a scalar"),
    pytest.param(b"services:\nx-a: 1\n", "`services` is empty, not a mapping", 1, id="services null"),
    pytest.param(b"services:\n  web: [nginx]\n", "service 'web' is a sequence, not a mapping", 2, id="a service a list"),
    pytest.param(b"services:\n  web: nginx\n", "service 'web' is a scalar, not a mapping", 2, id="a service a scalar"),
    pytest.param(PLAIN.encode() + b"services:\n  db: {}\n", "duplicate key 'services' (first defined on line 1)", 4,
                 id="duplicate top-level key"),
    pytest.param(PLAIN.encode() + b"    image: redis\n", "duplicate key 'image' (first defined on line 3)", 4,
                 id="duplicate nested key"),
    pytest.param(b"services:\n  web: {image: a, image: b}\n", "duplicate key 'image'", 2, id="duplicate key in flow"),
    pytest.param(PLAIN.encode() + b"---\nservices:\n  web: *nowhere\n", "undefined alias", 6,
                 id="a bad second document"),
    pytest.param(b"services:\n  web: *nowhere\n", "undefined alias", 2, id="undefined alias"),
    pytest.param(b"x-a: &a [1, *a]\n" + PLAIN.encode(), "recursive alias", 1, id="recursive alias"),
    pytest.param(b"x-a: &a {k: *a}\n" + PLAIN.encode(), "recursive alias", 1, id="recursive alias in a mapping"),
    pytest.param(_bomb(10, 9).encode(), "alias bomb", None, id="billion laughs"),
    pytest.param(_bomb(2, 1200).encode(), "alias bomb", None, id="wide alias bomb"),
    pytest.param(_merge_bomb(12, 8).encode(), "alias bomb", None, id="merge-key bomb"),
    pytest.param(_alias_chain(600).encode(), "nesting deeper than", None, id="deep through aliases"),
    pytest.param(b"x-deep: " + b"[" * 700 + b"]" * 700 + b"\n" + PLAIN.encode(), "nesting deeper than 500", 1,
                 id="700-deep flow"),
    pytest.param(b"x-deep: " + b"[" * 20000 + b"]" * 20000 + b"\n" + PLAIN.encode(), "nesting", 1,
                 id="20000-deep flow"),
    pytest.param(b"x-deep: " + b"{a: " * 5000 + b"1" + b"}" * 5000 + b"\n" + PLAIN.encode(), "nesting", 1,
                 id="5000-deep flow mapping"),
    pytest.param(("x-deep:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(700)) + " " * 701 + "v: 1\n"
                  + PLAIN).encode(), "nesting deeper than 500", None, id="700-deep block"),
    pytest.param(("x-deep:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(3000)) + PLAIN).encode(),
                 "nesting", None, id="3000-deep block"),
    pytest.param(("x-deep:\n" + "".join(" " * (i + 1) + "-\n" for i in range(3000)) + PLAIN).encode(),
                 "nesting", None, id="3000-deep block sequence"),
    pytest.param(b"services:\r  web:\r    image: x\r", "lone CR", 1, id="CR-only line endings"),
    pytest.param(b"services:\n  web:\n    image: x # a\rb\n", "lone CR", 3, id="a stray CR"),
]


@pytest.mark.parametrize(("raw", "message", "line"), CONTENT)
def test_bad_content(tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: bytes, message: str,
                     line: int | None) -> None:
    bad, good = setup(tmp_path)
    f = bad / "compose.yaml"
    f.write_bytes(raw)
    started = time.monotonic()
    run_both(tmp_path, bad, good, f, message, capsys, line)
    assert time.monotonic() - started < 10  # bombs and deep nesting are refused, not expanded


def test_several_documents_are_read_not_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Compose merges the documents of one file in order: valid, so read (its services are in
    the model) but not edited, said in one finding; the rest of the stack is still fixed."""
    (tmp_path / "compose.yaml").write_text(PLAIN + "---\nservices:\n  web:\n    environment: [A=1]\n  db:\n    image: x\n")
    (tmp_path / "compose.override.yaml").write_text("services:\n  web:\n    environment: [B=2]\n  cache:\n    image: redis\n")
    before = (tmp_path / "compose.yaml").read_bytes()
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 1  # a finding left
    err = capsys.readouterr().err
    assert "compose.yaml:4:1: [input] several YAML documents" in err
    assert (tmp_path / "compose.yaml").read_bytes() == before
    assert "logging: *default-logging" in (tmp_path / "compose.override.yaml").read_text()
    from e2i_fix.engine import Workspace
    from e2i_fix.project import Stack

    ws = Workspace(Stack(tmp_path, [tmp_path / "compose.yaml", tmp_path / "compose.override.yaml"]))
    ws.load()
    p = ws.project([])
    merged = p.model((0, 1))["services"]
    assert sorted(merged) == ["cache", "db", "web"]
    assert [len(p.services[n].defs) for n in ("web", "db", "cache")] == [3, 1, 1]
    assert p.services["db"].home is None  # read, not edited
    assert merged["web"]["environment"] == {"A": "1", "B": "2"}


@pytest.mark.parametrize("name", ["compose.yaml", "docker-compose.override.yml"])
def test_bad_override_or_base(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    """A bad file stops its own stack (base or override alike), and nothing of it is written."""
    bad, good = setup(tmp_path)
    (bad / "compose.yaml").write_text(PLAIN)
    (bad / name).write_text("services:\n  web: [\n")
    run_both(tmp_path, bad, good, bad / name, "invalid YAML", capsys, 3)


def test_a_null_service_is_left_to_compose(tmp_path: Path) -> None:
    """Compose accepts `web:` with no value in an override file (it changes nothing), so it is
    not an input error; there is nothing to add logging to."""
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n")
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 0
    assert (tmp_path / "compose.yaml").read_text() == "services:\n  web:\n"


def test_yaml_tags_are_never_constructed(tmp_path: Path) -> None:
    """A Python tag is only text to the composer: nothing runs, the stack is still fixed."""
    f = tmp_path / "compose.yaml"
    f.write_text(f'x-a: !!python/object/apply:os.system ["touch {tmp_path}/pwned"]\n' + PLAIN)
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 1
    assert not (tmp_path / "pwned").exists()
    assert FIXED_LINE in f.read_text()


# --- things that are not regular files --------------------------------------------------------


def _subprocess(args: list[str]) -> subprocess.CompletedProcess[str]:
    # A blocking read would hang pytest itself: run the CLI in a child with a deadline.
    return subprocess.run([sys.executable, "-m", "e2i_fix", *args], capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize("explicit", [False, True], ids=["found in a folder", "named on the command line"])
@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda p: os.mkfifo(p), "is a special file, not a regular file", id="FIFO"),
        pytest.param(lambda p: os.symlink("/dev/zero", p), "is a special file, not a regular file", id="link to /dev/zero"),
        pytest.param(lambda p: os.symlink("/dev/null", p), "is a special file, not a regular file", id="link to /dev/null"),
    ],
)
def test_special_files_never_block(tmp_path: Path, make: Callable[[Path], None], message: str, explicit: bool) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    bad, good = setup(tmp_path)
    f = bad / "compose.yaml"
    make(f)
    before = tree(bad)
    targets = [str(f), str(good)] if explicit else [str(tmp_path)]
    p = _subprocess(["--apply", "--select", "logging", *targets])
    assert p.returncode == 2
    one_error(p.stderr, f, message)
    assert tree(bad) == before
    assert FIXED_LINE in (good / "compose.yaml").read_text()


def test_a_folder_named_like_a_compose_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Compose would try to read it (and fail): so does the search, and it still looks inside."""
    bad, good = setup(tmp_path)
    (bad / "compose.yaml").mkdir()
    (bad / "compose.yaml" / "notes.txt").write_text("hi\n")
    run_both(tmp_path, bad, good, bad / "compose.yaml", "is a folder", capsys)


def test_a_folder_named_like_a_compose_file_is_searched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inner = tmp_path / "compose.yaml"
    inner.mkdir()
    (inner / "compose.yaml").write_text(PLAIN)
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 2
    one_error(capsys.readouterr().err, inner, "is a folder")
    assert FIXED_LINE in (inner / "compose.yaml").read_text()


def test_a_missing_path_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad, good = setup(tmp_path)
    missing = bad / "compose.yaml"
    assert main(["--apply", "--select", "logging", str(missing), str(good)]) == 2
    one_error(capsys.readouterr().err, missing, "no such file or folder")
    assert FIXED_LINE in (good / "compose.yaml").read_text()
    assert tree(bad) == {}


def _loop(a: Path, b: Path) -> None:
    a.symlink_to(b.name)
    b.symlink_to(a.name)


def _to_fifo(f: Path) -> None:
    f.unlink()
    os.mkfifo(f)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda d: os.symlink("gone.yaml", d / "compose.yaml"), "broken symlink (to gone.yaml)", id="dangling"),
        pytest.param(lambda d: _loop(d / "compose.yaml", d / "compose.yml"), "Too many levels of symbolic links",
                     id="loop"),
    ],
)
def test_broken_symlinks(tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], Any],
                         message: str) -> None:
    bad, good = setup(tmp_path)
    make(bad)
    before = tree(bad)
    assert main(["--apply", "--select", "logging", str(bad / "compose.yaml"), str(good)]) == 2
    one_error(capsys.readouterr().err, bad / "compose.yaml", message)
    assert tree(bad) == before
    assert FIXED_LINE in (good / "compose.yaml").read_text()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: chmod 000 does not stop root from reading (the patched test below covers the path)")
def test_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad, good = setup(tmp_path)
    f = bad / "compose.yaml"
    f.write_text(PLAIN)
    f.chmod(0)
    try:
        run_both(tmp_path, bad, good, f, "cannot read: Permission denied", capsys)
    finally:
        f.chmod(0o644)


def test_an_unreadable_file_patched(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    bad, good = setup(tmp_path)
    f = bad / "compose.yaml"
    f.write_text(PLAIN)
    real_open = os.open

    def deny(path: Any, *args: Any, **kwargs: Any) -> int:
        if Path(path) == f:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    run_both(tmp_path, bad, good, f, "cannot read: Permission denied", capsys)


def test_a_file_over_the_size_cap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad, good = setup(tmp_path)
    f = bad / "compose.yaml"
    with open(f, "wb") as fh:
        fh.truncate(source.MAX_BYTES + 1)  # sparse: costs no disk, and is never read
    run_both(tmp_path, bad, good, f, f"too large ({source.MAX_BYTES + 1} bytes)", capsys)


# --- the file changes under the tool; writing fails ------------------------------------------


@pytest.fixture
def deadline() -> Iterator[None]:
    """Fail instead of hanging if a read blocks (a FIFO opened without O_NONBLOCK does)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError("blocked for 20 s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _after_run(monkeypatch: pytest.MonkeyPatch, act: Callable[[], None]) -> None:
    """Do `act` once, after the stack's files were read and fixed in memory, before writing."""
    real = engine.run
    done: list[bool] = []

    def run(stack: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(stack, *args, **kwargs)
        if not done and "bad" in str(stack):
            done.append(True)
            act()
        return result

    monkeypatch.setattr(engine, "run", run)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(lambda f: f.write_text(PLAIN + "  db:\n    image: redis\n"), "changed on disk since it was read",
                     id="edited"),
        pytest.param(lambda f: f.write_text(PLAIN.replace("1.27", "1.28")), "changed on disk since it was read",
                     id="edited, same size"),
        pytest.param(lambda f: f.unlink(), "deleted since it was read", id="deleted"),
        pytest.param(lambda f: _to_fifo(f), "changed on disk since it was read", id="now a FIFO"),
    ],
)
def test_a_file_changed_between_read_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch, deadline: None,
                                               change: Callable[[Path], Any], message: str) -> None:
    bad, good = setup(tmp_path)
    f = bad / "compose.yaml"
    f.write_text(PLAIN)
    snap: dict[str, dict[str, bytes | str]] = {}

    def act() -> None:
        change(f)
        snap["bad"] = tree(bad)

    _after_run(monkeypatch, act)
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 2
    one_error(capsys.readouterr().err, f, message)
    assert tree(bad) == snap["bad"]  # the other writer's version stands
    assert FIXED_LINE in (good / "compose.yaml").read_text()


def _only_in(folder: Path, fail: Callable[..., Any], real: Callable[..., Any], where: Callable[..., str]) -> Callable[..., Any]:
    def patched(*args: Any, **kwargs: Any) -> Any:
        if str(folder) in where(*args, **kwargs):
            return fail(*args, **kwargs)
        return real(*args, **kwargs)
    return patched


def _raise(code: int) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))
    return fail


@pytest.mark.parametrize(
    ("module", "name", "where", "message"),
    [
        pytest.param(tempfile, "mkstemp", lambda *a, **k: str(k.get("dir")), "cannot write: Permission denied",
                     id="temp file cannot be created"),
        pytest.param(os, "fsync", lambda fd: os.readlink(f"/proc/self/fd/{fd}"), "cannot write: No space left on device",
                     id="disk full on flush"),
        pytest.param(os, "chmod", lambda p, *a, **k: str(p), "cannot write: Operation not permitted",
                     id="mode cannot be set"),
        pytest.param(os, "replace", lambda src, dst: str(dst), "cannot write: Read-only file system",
                     id="rename fails"),
    ],
)
def test_write_errors_leave_the_original_intact(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch, module: Any, name: str,
                                                where: Callable[..., str], message: str) -> None:
    if name == "fsync" and not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell which file a descriptor is")
    code = {"mkstemp": errno.EACCES, "fsync": errno.ENOSPC, "chmod": errno.EPERM, "replace": errno.EROFS}[name]
    bad, good = setup(tmp_path)
    f = bad / "compose.yaml"
    f.write_text(PLAIN)
    before = tree(bad)
    monkeypatch.setattr(module, name, _only_in(bad, _raise(code), getattr(module, name), where))
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    monkeypatch.undo()
    one_error(err, f, message)
    assert tree(bad) == before  # original bytes, no temp file
    assert FIXED_LINE in (good / "compose.yaml").read_text()


def test_an_interrupt_while_writing_leaves_the_original_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(PLAIN)
    before = tree(tmp_path)

    def interrupted(src: Any, dst: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 2  # Ctrl-C: click's Abort
    monkeypatch.undo()
    assert tree(tmp_path) == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="only root can give a file to another user to set this up")
def test_a_run_as_root_keeps_the_owner(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(PLAIN)
    os.chown(f, 4321, 4322)
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 1
    assert FIXED_LINE in f.read_text()
    st = f.stat()
    assert (st.st_uid, st.st_gid) == (4321, 4322)


def test_errors_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With `--format json` the error is a record on stdout, next to the good stack's diff."""
    import json

    bad, good = setup(tmp_path)
    (bad / "compose.yaml").write_text("services:\n  web: [\n")
    assert main(["--format", "json", "--select", "logging", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert err == ""
    records = json.loads(out)["records"]
    assert [(r["type"], r["path"], r.get("line")) for r in records if r["type"] == "error"] == \
        [("error", str(bad / "compose.yaml"), 3)]
    assert any(r["type"] == "diff" and r["path"] == str(good / "compose.yaml") for r in records)
