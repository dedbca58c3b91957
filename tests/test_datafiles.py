"""The data tables' kept parse: the TOML file always counts, the kept copy only saves a parse."""

from __future__ import annotations

import json
import marshal
import os
import sys
import tomllib
from pathlib import Path

import pytest

from e2i_fix import datafiles


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(datafiles, "DATA", tmp_path)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    (tmp_path / "t.toml").write_text('[a]\nx = 1\nnames = ["p", "q"]\n')
    return tmp_path


def kept(data: Path) -> Path:
    return data / "__pycache__" / f"t.toml.{sys.implementation.cache_tag}.marshal"


def test_the_parse_is_kept_and_read_back(data: Path) -> None:
    assert datafiles.load("t.toml") == {"a": {"x": 1, "names": ["p", "q"]}}
    key, table = marshal.loads(kept(data).read_bytes())
    assert table == {"a": {"x": 1, "names": ["p", "q"]}}
    # What is kept is what is read, while the file is as it was.
    kept(data).write_bytes(marshal.dumps((key, {"from": "kept"})))
    assert datafiles.load("t.toml") == {"from": "kept"}


def test_a_changed_file_is_parsed_again(data: Path) -> None:
    datafiles.load("t.toml")
    (data / "t.toml").write_text('[a]\nx = 22\n')
    os.utime(data / "t.toml", ns=(1, 1))
    assert datafiles.load("t.toml") == {"a": {"x": 22}}


@pytest.mark.parametrize("bad", [b"", b"not marshal", marshal.dumps([1, 2]), marshal.dumps(((0, 0), {}))])
def test_a_broken_copy_is_parsed_again(data: Path, bad: bytes) -> None:
    kept(data).parent.mkdir()
    kept(data).write_bytes(bad)
    assert datafiles.load("t.toml") == {"a": {"x": 1, "names": ["p", "q"]}}


def test_nothing_kept_without_bytecode_writing(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert datafiles.load("t.toml")["a"]["x"] == 1
    assert not kept(data).exists()


def test_a_date_is_parsed_each_time(data: Path) -> None:
    (data / "t.toml").write_text("when = 2024-01-01\n")
    assert str(datafiles.load("t.toml")["when"]) == "2024-01-01"
    assert not kept(data).exists()


def test_json(data: Path) -> None:
    (data / "t.json").write_text('{"a": [1, 2.5, true, null, "x"]}')
    assert datafiles.load("t.json") == {"a": [1, 2.5, True, None, "x"]}
    assert (data / "__pycache__" / f"t.json.{sys.implementation.cache_tag}.marshal").is_file()
    assert datafiles.load("t.json") == {"a": [1, 2.5, True, None, "x"]}


@pytest.mark.parametrize("name", ["images.toml", "cache_mounts.toml", "lockfiles.toml", "compose-spec.json",
                                  "deploy-limits.json", "frontend_network.json"])
def test_the_packaged_tables(name: str) -> None:
    raw = (Path(datafiles.__file__).parent / "data" / name).read_bytes()
    assert datafiles.load(name) == (json.loads(raw) if name.endswith(".json") else tomllib.loads(raw.decode()))
