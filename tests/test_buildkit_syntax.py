"""buildkit-syntax: the directive first, after a BOM and before `# escape=`; never a second one."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix._main import main

from conftest import fixture_case

ID = "buildkit-syntax"
FIXTURES = Path(__file__).parent / "fixtures" / ID
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_fixture(tmp_path: Path, case: str) -> None:
    fixture_case(FIXTURES, case, ID, tmp_path)


def test_bom_kept_and_escape_directive_still_read() -> None:
    raw = (FIXTURES / "bom-escape" / "expected" / "Dockerfile").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf# syntax=docker/dockerfile:1\n# escape=`\n")
    from e2i_fix import dockerfile, source

    doc = dockerfile.parse(source.decode(Path("Dockerfile"), raw))
    assert doc.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert (doc.instructions[1].line, doc.instructions[1].end_line) == (4, 5)  # the backtick still continues the RUN


def test_added_after_another_pass_brings_a_feature(tmp_path: Path) -> None:
    """The fixed-point loop: cache-mounts adds `RUN --mount`, then this pass the directive."""
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    build: .\n")
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\nRUN pip install flask\n")
    assert main(["--apply", "--select", f"{ID},cache-mounts", str(tmp_path)]) == 1
    assert (tmp_path / "Dockerfile").read_text() == (
        "# syntax=docker/dockerfile:1\nFROM python:3.12-slim\n"
        "RUN --mount=type=cache,target=/root/.cache/pip pip install flask\n")
    assert main(["--apply", "--select", f"{ID},cache-mounts", str(tmp_path)]) == 0
