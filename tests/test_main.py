"""The command line on real files in tmp_path: modes, exit codes, and byte fidelity."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from e2i_fix import __version__
from e2i_fix._main import main

from conftest import snapshot

PLAIN = "services:\n  web:\n    image: nginx:1.27\n"
DONE = (
    "x-logging: &default-logging\n"
    "  driver: json-file\n"
    "  options:\n"
    '    max-size: "10m"\n'
    '    max-file: "3"\n'
    "\n"
    "services:\n"
    "  web:\n"
    "    image: nginx:1.27\n"
    "    logging: *default-logging\n"
)


def stack(tmp_path: Path, text: str | bytes, name: str = "compose.yaml") -> Path:
    f = tmp_path / name
    f.write_bytes(text.encode() if isinstance(text, str) else text)
    return f


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"e2i-fix {__version__}\n"


def test_dry_run_prints_a_diff_writes_nothing_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = stack(tmp_path, PLAIN)
    before = snapshot(tmp_path)
    assert main(["--select", "logging", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"--- {f.as_posix()}\n+++ {f.as_posix()}\n")
    assert "+    logging: *default-logging\n" in out
    assert snapshot(tmp_path) == before


def test_apply_rewrites_then_nothing_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = stack(tmp_path, PLAIN)
    os.chmod(f, 0o640)
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 1
    assert f.read_text() == DONE
    assert stat.S_IMODE(f.stat().st_mode) == 0o640  # mode kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compose.yaml"]  # no temp file left
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 0
    assert main(["--check", "--select", "logging", str(tmp_path)]) == 0
    assert f.read_text() == DONE


def test_check_lists_findings_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = stack(tmp_path, PLAIN)
    assert main(["--check", "--select", "logging", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out == f"{f}:2:3: [logging] service 'web' has no log rotation: add `logging: *default-logging`\n"
    assert f.read_text() == PLAIN


def test_nothing_to_fix_exits_0_and_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack(tmp_path, DONE)
    assert main(["--select", "logging", str(tmp_path)]) == 0
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(PLAIN.replace("\n", "\r\n").encode(), id="crlf"),
        pytest.param(b"\xef\xbb\xbf" + PLAIN.encode(), id="bom"),
        pytest.param(PLAIN.rstrip("\n").encode(), id="no final newline"),
        pytest.param(b"\xef\xbb\xbf" + PLAIN.rstrip("\n").replace("\n", "\r\n").encode(), id="all three"),
        pytest.param("# caf\u00e9 \u2615\n\n".encode() + PLAIN.encode(), id="non-ascii comment"),
    ],
)
def test_file_conventions_survive(tmp_path: Path, raw: bytes) -> None:
    f = stack(tmp_path, raw)
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 1
    out = f.read_bytes()
    crlf = b"\r\n" in raw
    assert out.startswith(b"\xef\xbb\xbf") == raw.startswith(b"\xef\xbb\xbf")
    assert out.endswith(b"\n") == raw.endswith(b"\n")
    if crlf:
        assert out.count(b"\n") == out.count(b"\r\n")
    expected = DONE if raw.endswith(b"\n") else DONE.rstrip("\n")
    if crlf:
        expected = expected.replace("\n", "\r\n")
    assert out.removeprefix(b"\xef\xbb\xbf").decode().endswith(expected)
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 0


def test_no_pass_is_byte_identical(tmp_path: Path) -> None:
    raw = b"\xef\xbb\xbf# c\r\nservices:\r\n  web: {image: 'x'}   # trailing\r\n"
    stack(tmp_path, raw)
    assert main(["--apply", "--ignore", "all", str(tmp_path)]) == 0
    assert (tmp_path / "compose.yaml").read_bytes() == raw


def test_an_error_in_one_stack_does_not_stop_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    good = tmp_path / "good"
    bad.mkdir()
    good.mkdir()
    stack(bad, "services:\n  web: [\n")
    g = stack(good, PLAIN)
    missing = tmp_path / "nope.yaml"
    assert main(["--apply", "--select", "logging", str(bad), str(missing), str(good)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith(f"{bad / 'compose.yaml'}:") and "invalid YAML" in line for line in err)
    assert f"{missing}: no such file or folder" in err
    assert g.read_text() == DONE
    assert (bad / "compose.yaml").read_text() == "services:\n  web: [\n"


def test_unknown_pass_id_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--select", "nope", "."]) == 2
    assert "unknown pass id nope" in capsys.readouterr().err


def test_list_and_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-passes"]) == 0
    listed = capsys.readouterr().out
    assert "logging" in listed
    assert main(["--explain", "logging"]) == 0
    doc = capsys.readouterr().out
    assert doc.startswith("# logging\n") and "## What it does" in doc and "## Fix safety" in doc
    assert main(["--explain", "nope"]) == 2


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--format", "xml"]) == 2


def test_a_file_named_alone_gets_what_the_folder_run_gives_it(tmp_path: Path) -> None:
    """What pre-commit runs when one file is staged: the folder's stack is read, and the named
    file gets exactly the fixes a run on the folder gives it; no other compose file is written."""
    files = {"compose.yaml": PLAIN, "compose.override.yaml": "services:\n  web:\n    ports: ['80:80']\n  extra:\n"
                                                             "    image: redis:7\n"}

    def copy(name: str) -> Path:
        (tmp_path / name).mkdir()
        for f, text in files.items():
            stack(tmp_path / name, text, f)
        return tmp_path / name

    folder = copy("folder")
    assert main(["--apply", "--select", "logging", str(folder)]) == 1
    for named in (["compose.override.yaml"], ["compose.yaml"], ["compose.yaml", "compose.override.yaml"]):
        work = copy("-".join(named))
        assert main(["--apply", "--select", "logging", *(str(work / n) for n in named)]) == 1
        for f, text in files.items():
            want = (folder / f).read_text() if f in named else text  # not named: not written
            assert (work / f).read_text() == want, (named, f)
    # The override's share is the new service's rotation; web's goes into the base.
    assert "  extra:\n    image: redis:7\n    logging:" in (folder / "compose.override.yaml").read_text()
    assert "  web:\n    ports: ['80:80']\n  extra" in (folder / "compose.override.yaml").read_text()


def test_config_file_selects_and_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack(tmp_path, PLAIN)
    (tmp_path / ".e2i-fix.toml").write_text('ignore = ["logging", "deploy-limits", "no-new-privileges"]\n')
    assert main([str(tmp_path)]) == 0
    assert main(["--no-config", "--select", "logging", str(tmp_path)]) == 1
    (tmp_path / ".e2i-fix.toml").write_text('colour = "blue"\n')
    capsys.readouterr()
    assert main([str(tmp_path)]) == 2
    assert "unknown key 'colour'" in capsys.readouterr().err


def test_inline_opt_out(tmp_path: Path) -> None:
    text = "services:\n  web:  # e2i-fix: ignore[logging]\n    image: nginx\n"
    stack(tmp_path, text)
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 0
    assert (tmp_path / "compose.yaml").read_text() == text


def test_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    stack(tmp_path, PLAIN)
    assert main(["--check", "--format", "json", "--select", "logging", str(tmp_path)]) == 1
    records = json.loads(capsys.readouterr().out)["records"]
    assert [r["pass"] for r in records] == ["logging"] and records[0]["fixable"] is True


def test_a_reader_that_leaves_early_is_no_error(tmp_path: Path) -> None:
    """`e2i-fix | head -1`: the pipe closes under the tool; it stops quietly."""
    import subprocess
    import sys

    for i in range(200):  # well past a pipe buffer of output
        d = tmp_path / f"s{i}"
        d.mkdir()
        stack(d, PLAIN)
    proc = subprocess.Popen([sys.executable, "-m", "e2i_fix", "--dry-run", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_a_stack_reached_by_several_paths_runs_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A folder given twice, a file inside a given folder, a folder inside another: each stack
    once, as a linter reads each file once."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    assert main(["--check", "--no-config", "--select", "logging", str(tmp_path / "app")]) == 1
    once = capsys.readouterr().out
    assert main(["--check", "--no-config", "--select", "logging", str(tmp_path / "app"),
                 str(tmp_path / "app" / "compose.yaml"), str(tmp_path), str(tmp_path / "app")]) == 1
    assert capsys.readouterr().out == once
