"""yamledit: new top-level blocks follow the file's own spacing between top-level keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix._main import main

TIGHT = "x-a: &a\n  restart: always\nx-b: &b\n  pull_policy: never\nservices:\n"
SPACED = "x-a: &a\n  restart: always\n\nx-b: &b\n  pull_policy: never\n\nservices:\n"
SERVICES = "  api:\n    image: x\n    command: gunicorn app:app\n  web:\n    image: y\n"
BLOCKS = ('x-logging: &default-logging\n  driver: json-file\n  options:\n    max-size: "10m"\n    max-file: "3"\n',
          'x-logging-high-volume: &high-volume-logging\n  driver: json-file\n  options:\n    max-size: "50m"\n'
          '    max-file: "5"\n')


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(TIGHT, TIGHT.replace("services:\n", "".join(BLOCKS) + "services:\n"),
                     id="no blank lines between the x- keys: none around the new blocks"),
        pytest.param(SPACED, SPACED.replace("services:\n", "\n".join(BLOCKS) + "\nservices:\n"),
                     id="one blank line between top-level keys: one between the new blocks"),
        pytest.param("services:\n", "\n".join(BLOCKS) + "\nservices:\n", id="services first"),
        pytest.param('version: "3"\nservices:\n', 'version: "3"\n' + "".join(BLOCKS) + "services:\n",
                     id="the one gap has no blank line: none around the blocks"),
    ],
)
def test_top_level_blocks_follow_the_file_spacing(head: str, expected: str, tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(head + SERVICES)
    assert main(["--apply", "--no-config", "--select", "logging", str(tmp_path)]) == 1
    got = f.read_text()
    assert got.split("  api:\n")[0] == expected
