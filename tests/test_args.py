"""The command lines read without argparse are read as argparse reads them."""

from __future__ import annotations

import pytest

from e2i_fix._main import DEFAULTS, _parser, _plain, main


@pytest.mark.parametrize("argv", [
    [], ["."], ["--dry-run"], ["--apply", "compose.yaml", "docker-compose.override.yml"],
    ["compose.yaml", "--check", "sub/compose.yml"], ["--unsafe-fixes", "--show-fixes", "--statistics", "--no-config", "x"],
    [""],
])
def test_as_argparse(argv: list[str]) -> None:
    got = _plain(argv)
    assert got is not None
    assert vars(got) == vars(_parser().parse_intermixed_args(argv))


@pytest.mark.parametrize("argv", [
    ["--apply", "--check"], ["--select", "logging"], ["--format=json"], ["-j", "2"], ["--", "x"], ["-"], ["--help"],
    ["--appl"], ["--version", "x"], ["--apply", "--apply", "a"],
])
def test_the_rest_goes_to_argparse(argv: list[str]) -> None:
    assert _plain(argv) is None


def test_the_defaults_are_the_parser_own() -> None:
    assert vars(_parser().parse_intermixed_args([])) == DEFAULTS


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    fast = capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        _parser().parse_intermixed_args(["--version"])
    assert e.value.code == 0
    assert fast == capsys.readouterr().out and fast.startswith("e2i-fix ")


def test_modes_that_exclude_one_another(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--apply", "--check", "x"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
