"""The unified diff: `patch` turns the original into the result, whatever the lines repeat."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from e2i_fix.output import unified_diff
from e2i_fix.source import decode

LINES = st.sampled_from(["x\n", "y\n", "  restart: always\n", "    logging: *default-logging\n", "u1\n", "u2\n"])


@pytest.mark.skipif(shutil.which("patch") is None, reason="patch(1) is not installed")
@settings(max_examples=150, deadline=None)
@given(
    a=st.lists(LINES, max_size=40),
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 60), LINES), max_size=5),
    cut_final_newline=st.booleans(),
)
def test_patch_reproduces_the_result(a: list[str], ops: list[tuple[bool, int, str]], cut_final_newline: bool) -> None:
    b = list(a)
    for insert, pos, line in ops:
        if insert:
            b.insert(min(pos, len(b)), line)
        elif b:
            del b[min(pos, len(b) - 1)]
    new = "".join(b)
    if cut_final_newline:
        new = new.rstrip("\n")
    old = "".join(a)
    diff = unified_diff(Path("f"), decode(Path("f"), old.encode(), 0o644), new)
    if old == new:
        assert diff == ""
        return
    assert patched(old, diff) == new


def patched(old: str, diff: str) -> str:
    """What patch(1) makes of `old` with `diff`."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "f"
        f.write_text(old)
        proc = subprocess.run(["patch", "-s", "-p0", str(f)], input=diff, text=True, capture_output=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return f.read_text()


def test_a_long_file_of_repeated_lines_diffs_in_linear_time() -> None:
    # 3,000 services that all look alike, each gaining one line: difflib alone is quadratic here.
    old = "".join(f"  s{i}:\n    image: x\n    restart: always\n" for i in range(3000))
    new = "".join(f"  s{i}:\n    image: x\n    restart: always\n    logging: *l\n" for i in range(3000))
    diff = unified_diff(Path("f"), decode(Path("f"), old.encode(), 0o644), new)
    assert diff.count("\n+    logging: *l\n") == 3000
    assert not any(line.startswith("-") and not line.startswith("---") for line in diff.splitlines())


EDIT_TEXT = st.sampled_from(["", "x\n", "  logging: *l\n", "y", "\n", "restart: always\n"])


@st.composite
def rounds_of_edits(draw: st.DrawFn) -> tuple[str, list[str], list[list[tuple[int, int, int]]]]:
    """A text and a few rounds of non-overlapping splices, as the engine applies them."""
    from e2i_fix.engine import splice
    from e2i_fix.fix import Edit

    text = "".join(draw(st.lists(LINES, max_size=30)))
    texts, spans = [text], []
    for _ in range(draw(st.integers(1, 3))):
        cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=8)))
        edits = []
        for k in range(0, len(cuts) - 1, 2):
            start, end = cuts[k], cuts[k + 1] if draw(st.booleans()) else cuts[k]
            edits.append((k, Edit(Path("f"), start, end, draw(EDIT_TEXT))))
        round_spans: list[tuple[int, int, int]] = []
        text = splice(text, edits, "\n", round_spans)
        texts.append(text)
        spans.append(round_spans)
    return texts[0], texts[1:], spans


@pytest.mark.skipif(shutil.which("patch") is None, reason="patch(1) is not installed")
@settings(max_examples=150, deadline=None)
@given(case=rounds_of_edits())
def test_the_regions_of_several_rounds_cover_every_change(case: tuple[str, list[str], list[list[tuple[int, int, int]]]]) -> None:
    from e2i_fix.engine import Result

    old, texts, spans = case
    new = texts[-1]
    result = Result(stack=None)  # type: ignore[arg-type]
    result.spans = [{Path("f"): s} for s in spans]
    regions = result.regions(Path("f"))
    # Outside the regions the texts are equal, piece for piece.
    a = b = 0
    for a0, a1, b0, b1 in regions:
        assert a0 >= a and b0 >= b and a0 <= a1 and b0 <= b1
        assert old[a:a0] == new[b:b0]
        a, b = a1, b1
    assert old[a:] == new[b:]
    diff = unified_diff(Path("f"), decode(Path("f"), old.encode(), 0o644), new, regions)
    assert (diff == "") == (old == new)
    if diff:
        assert patched(old, diff) == new


# --- the paths in the headers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        pytest.param("compose.yaml", "compose.yaml", id="plain"),
        pytest.param("docker/testing/../../docker/Dockerfile", "docker/Dockerfile", id="a detour through .."),
        pytest.param("./web/./Dockerfile", "web/Dockerfile", id="dots"),
        pytest.param("{here}/web/Dockerfile", "web/Dockerfile", id="absolute, inside: relative"),
        pytest.param("../other/compose.yaml", "../other/compose.yaml", id="outside, given relative"),
        pytest.param("{here}/../other/compose.yaml", "{parent}/other/compose.yaml", id="outside, given absolute"),
    ],
)
def test_header_paths_are_normalised_and_relative(tmp_path: Path, path: str, shown: str) -> None:
    from e2i_fix.output import header_path

    here = tmp_path / "repo"
    (here / "docker" / "testing").mkdir(parents=True)
    fill = {"here": str(here), "parent": tmp_path.as_posix()}
    assert header_path(Path(path.format(**fill)), str(here)) == shown.format(**fill)


def test_a_symlinked_folder_keeps_its_detour(tmp_path: Path) -> None:
    """`link/../x` is next to what `link` points to, not next to `link`: the header names the
    file that is written."""
    from e2i_fix.output import header_path

    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "link").symlink_to(tmp_path / "real" / "deep")
    assert header_path(Path("link/../Dockerfile"), str(tmp_path / "repo")) == "../real/Dockerfile"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_diff_headers_apply_where_the_command_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A stack in `docker/testing` that builds `../..` with `docker/Dockerfile`: run from the
    repository's root, the headers name `docker/Dockerfile`, not `docker/testing/../../docker/...`."""
    from e2i_fix._main import main

    (tmp_path / "docker" / "testing").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # the write boundary: the work tree
    (tmp_path / "docker" / "Dockerfile").write_text("FROM python:3.12-slim\nRUN pip install flask\nCOPY app.py /app/\n")
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "docker" / "testing" / "compose.yml").write_text(
        "services:\n  web:\n    build:\n      context: ../..\n      dockerfile: docker/Dockerfile\n")
    monkeypatch.chdir(tmp_path)
    assert main(["--dry-run", "--unsafe-fixes", "--select", "cache-mounts", "docker/testing"]) == 1
    heads = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("--- ", "+++ "))]
    assert heads == ["--- docker/Dockerfile", "+++ docker/Dockerfile"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_one_dockerfile_reached_two_ways_is_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`context: ../..` with `dockerfile: docker/Dockerfile`, and `context: ..`: the same file,
    edited once and shown once, so the preview applies."""
    from e2i_fix._main import main

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "docker" / "testing").mkdir(parents=True)
    (tmp_path / "docker" / "Dockerfile").write_text("FROM python:3.12-slim\nRUN pip install flask\nCOPY app.py /app/\n")
    (tmp_path / "docker" / "testing" / "compose.yml").write_text(
        "services:\n  a:\n    build:\n      context: ../..\n      dockerfile: docker/Dockerfile\n"
        "  b:\n    build:\n      context: ..\n")
    monkeypatch.chdir(tmp_path / "docker" / "testing")
    assert main(["--dry-run", "--select", "cache-mounts", "."]) == 1
    diff = capsys.readouterr().out
    assert [line for line in diff.splitlines() if line.startswith("+++ ")] == ["+++ ../Dockerfile"]
    assert diff.count("+RUN --mount=type=cache") == 1
