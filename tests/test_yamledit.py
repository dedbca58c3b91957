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


# --- where a new key goes -------------------------------------------------------------------

LOG = "    logging: *default-logging\n"


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        pytest.param("    image: y\n    environment:\n      A: a\n      # B: b\n",
                     "    image: y\n    environment:\n      A: a\n      # B: b\n" + LOG,
                     id="a commented-out entry closing the environment stays under it"),
        pytest.param("    image: y\n    # ports:\n    #   - 80:80\n",
                     "    image: y\n    # ports:\n    #   - 80:80\n" + LOG,
                     id="a commented-out key of the service stays where it is"),
        pytest.param("    image: y\n    environment:\n      A: a\n\n      # the rest comes from .env\n",
                     "    image: y\n    environment:\n      A: a\n\n      # the rest comes from .env\n" + LOG,
                     id="a blank line, then a closing comment"),
        pytest.param("    image: y\n    environment:\n      A: a\n\n",
                     "    image: y\n    environment:\n      A: a\n" + LOG + "\n",
                     id="blank lines after the service stay after the new key"),
        pytest.param("    image: y\n  # the next service\n",
                     "    image: y\n" + LOG + "  # the next service\n",
                     id="a comment heading what comes next stays with it"),
        pytest.param("    image: y\n    # closing note",
                     "    image: y\n    # closing note\n" + LOG.rstrip("\n"),
                     id="no final newline after the comment"),
    ],
)
def test_a_new_key_goes_after_the_last_key_and_its_trailing_comments(service: str, expected: str,
                                                                    tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    head = "x-logging: &default-logging\n  driver: json-file\n  options:\n    max-size: 5m\nservices:\n"
    f.write_text(head + "  web:\n" + service)
    assert main(["--apply", "--no-config", "--select", "logging", str(tmp_path)]) == 1
    assert f.read_text() == head + "  web:\n" + expected
    assert main(["--apply", "--no-config", "--select", "logging", str(tmp_path)]) == 0


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param("# Copyright Example\n# Run: docker compose up\nservices:\n",
                     "# Copyright Example\n# Run: docker compose up\n\n" + BLOCKS[0] + "\nservices:\n",
                     id="the file's header stays first"),
        pytest.param("---\n# Example stack\nservices:\n", "---\n# Example stack\n\n" + BLOCKS[0] + "\nservices:\n",
                     id="after a document marker too"),
        pytest.param("name: shop\n\n# The services\nservices:\n",
                     "name: shop\n\n" + BLOCKS[0] + "\n# The services\nservices:\n",
                     id="a comment heading services stays with it"),
    ],
)
def test_a_new_block_goes_below_the_file_header(head: str, expected: str, tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(head + "  web:\n    image: y\n")
    assert main(["--apply", "--no-config", "--select", "logging", str(tmp_path)]) == 1
    assert f.read_text().split("  web:\n")[0] == expected
