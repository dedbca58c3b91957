"""conventions: how a stack already writes rotation, lists and security options, read once."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix import conventions, project
from e2i_fix.engine import Workspace
from e2i_fix.render import Flow, Raw
from e2i_fix.yamldoc import Style


def index(root: Path, files: dict[str, str]) -> project.Project:
    for name, text in files.items():
        (root / name).write_text(text)
    ws = Workspace(project.Stack(root, [root / n for n in files]))
    ws.load()
    return ws.project([])


ROT = "    logging:\n      driver: json-file\n      options:\n        max-size: {size}\n        max-file: {files}\n"


def test_the_most_services_win_and_a_tie_goes_to_the_first(tmp_path: Path) -> None:
    text = ("services:\n  a:\n    image: x\n" + ROT.format(size="1m", files='"1"')
            + "  b:\n    image: x\n" + ROT.format(size='"2m"', files="2")
            + "  c:\n    image: x\n" + ROT.format(size='"2m"', files="2") + "  d:\n    image: x\n")
    p = index(tmp_path, {"compose.yaml": text})
    rot = conventions.read(p).rotation(p.docs[0])
    assert rot is not None and rot.services == 2 and rot.anchor is None
    assert rot.figures == {"max-size": "2m", "max-file": "2"}
    assert rot.value == {"driver": Raw("json-file"), "options": {"max-size": Raw('"2m"'), "max-file": Raw("2")}}
    (tmp_path / "tie").mkdir()
    tie = index(tmp_path / "tie", {
        "compose.yaml": "services:\n  a:\n    image: x\n" + ROT.format(size="1m", files="1")
                        + "  b:\n    image: x\n" + ROT.format(size="2m", files="2")})
    got = conventions.read(tie).rotation(tie.docs[0])
    assert got is not None and got.figures["max-size"] == "1m"


def test_an_anchored_block_and_its_aliases_are_one_way(tmp_path: Path) -> None:
    text = ("services:\n  a:\n    image: x\n    logging: &log\n      driver: json-file\n      options:\n"
            "        max-size: 5m\n  b:\n    image: x\n    logging: *log\n"
            "  c:\n    image: x\n" + ROT.format(size="9m", files="9"))
    p = index(tmp_path, {"compose.yaml": text})
    rot = conventions.read(p).rotation(p.docs[0])
    assert rot is not None and rot.anchor == "log" and rot.services == 2 and rot.figures == {"max-size": "5m"}


def test_a_file_without_its_own_follows_the_stack_inline(tmp_path: Path) -> None:
    base = ("x-l: &l\n  driver: json-file\n  options:\n    max-size: 7m\nservices:\n"
            "  a:\n    image: x\n    logging: *l\n")
    p = index(tmp_path, {"compose.yaml": base, "compose.override.yaml": "services:\n  b:\n    image: y\n"})
    ways = conventions.read(p)
    assert ways is conventions.read(p)  # read once per index
    own, other = ways.rotation(p.docs[0]), ways.rotation(p.docs[1])
    assert own is not None and own.anchor == "l"
    assert other is not None and other.anchor is None and other.node is None and other.figures == {"max-size": "7m"}


@pytest.mark.parametrize(
    ("driver", "options"),
    [
        pytest.param("local", "max-size: 5m", id="another driver"),
        pytest.param("json-file", "max-file: 3", id="no max-size"),
    ],
)
def test_what_does_not_rotate_is_no_convention(tmp_path: Path, driver: str, options: str) -> None:
    p = index(tmp_path, {"compose.yaml": f"services:\n  a:\n    image: x\n    logging:\n      driver: {driver}\n"
                                          f"      options:\n        {options}\n"})
    assert conventions.read(p).rotation(p.docs[0]) is None


def test_lists_spelling_and_order(tmp_path: Path) -> None:
    text = ("services:\n  a:\n    image: x\n    cap_add: ['NET_ADMIN']\n    cap_drop: ['ALL']\n"
            "    security_opt: ['no-new-privileges=true']\n"
            "  b:\n    image: x\n    cap_add: ['CHOWN']\n    cap_drop: ['ALL']\n  c:\n    image: x\n")
    p = index(tmp_path, {"compose.yaml": text})
    ways = conventions.read(p)
    doc = p.docs[0]
    assert ways.list_style(doc) == conventions.ListStyle(flow=True, quote="'")
    assert ways.no_new_privileges(doc) == "no-new-privileges=true"
    assert ways.first(doc, "cap_drop", "cap_add") is False
    assert ways.first(doc, "read_only", "tmpfs") is None
    assert ways.items(doc, ["ALL"]) == Flow([Raw("'ALL'")])


def test_a_stack_that_writes_none_leaves_the_pass_its_own(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  a:\n    image: x\n"})
    ways = conventions.read(p)
    doc = p.docs[0]
    assert ways.rotation(doc) is None and ways.list_style(doc) is None and ways.no_new_privileges(doc) is None
    assert ways.items(doc, ["ALL"]) == ["ALL"]


@pytest.mark.parametrize(
    ("value", "quote", "like", "written"),
    [
        pytest.param("512m", '"', None, '"512m"', id="double quotes"),
        pytest.param("512m", "'", None, "'512m'", id="single quotes"),
        pytest.param("512m", "", Raw("10m"), "512m", id="a plain string for a plain string"),
        pytest.param("6", "", Raw("4"), "6", id="a number for a number"),
        pytest.param("6", "", Raw("10m"), '"6"', id="not a number where the stack wrote a string"),
        pytest.param("yes", "", Raw("no"), '"yes"', id="quoted where YAML 1.1 reads a boolean"),
        pytest.param("a: b", "", None, '"a: b"', id="never plain where it would read otherwise"),
    ],
)
def test_styled(value: str, quote: str, like: Raw | None, written: str, tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  a:\n    image: x\n"})
    doc = p.docs[0]
    doc.__dict__["style"] = Style(quote='"')
    assert conventions.styled(value, quote, doc, like) == Raw(written)


def test_limits_how_the_stack_writes_them(tmp_path: Path) -> None:
    text = ("services:\n  a:\n    image: x\n    mem_limit: 512m\n  b:\n    image: x\n    mem_limit: 1g\n"
            "    mem_reservation: 256m\n  c:\n    image: x\n")
    p = index(tmp_path, {"compose.yaml": text})
    ways = conventions.read(p)
    doc = p.docs[0]
    lim = ways.limits(doc)
    assert lim is not None and lim.legacy and not lim.cpus and lim.reserves_memory and not lim.reserves_cpus
    assert ways.size(doc, "1536M") == Raw("1536m") and ways.cpus(doc, "1") == "1"


def test_one_limited_service_is_not_yet_a_convention(tmp_path: Path) -> None:
    p = index(tmp_path, {"compose.yaml": "services:\n  a:\n    image: x\n    mem_limit: 512m\n  b:\n    image: x\n"})
    ways = conventions.read(p)
    assert ways.limits(p.docs[0]) is None and ways.size(p.docs[0], "1G") == "1G"


@pytest.mark.parametrize(
    ("memory", "cpus", "size", "cpu"),
    [
        pytest.param('"1G"', '"0.5"', Raw('"2G"'), Raw('"1"'), id="quoted"),
        pytest.param("300M", "0.5", Raw("2G"), Raw("1"), id="plain, a number for a number"),
        pytest.param("512mb", "'1'", Raw("2gb"), Raw("'1'"), id="lower case, a b"),
    ],
)
def test_figures_in_the_stack_s_style(memory: str, cpus: str, size: Raw, cpu: Raw, tmp_path: Path) -> None:
    one = f"    deploy:\n      resources:\n        limits:\n          cpus: {cpus}\n          memory: {memory}\n"
    p = index(tmp_path, {"compose.yaml": f"services:\n  a:\n    image: x\n{one}  b:\n    image: y\n{one}"})
    ways = conventions.read(p)
    lim = ways.limits(p.docs[0])
    assert lim is not None and not lim.legacy and lim.cpus and not lim.reserves_memory and not lim.anchored
    assert ways.size(p.docs[0], "2G") == size and ways.cpus(p.docs[0], "1") == cpu
