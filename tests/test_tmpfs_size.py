"""tmpfs-size: fixture stacks, small inline cases, the example stack, and the corpus, each judged
by the real Compose CLI as well as by bytes."""

from __future__ import annotations

import difflib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from e2i_fix import project as proj
from e2i_fix._main import main
from e2i_fix.passes import registry

from conftest import compose_config, corpus_run, outside_the_repository, snapshot

ID = "tmpfs-size"
ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / ID
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
# Cases about how an entry is edited run under a bound the configuration sets; this one is
# about what bound each service's tmpfs gets without one, and leaves most of them for a person.
DECIDES = "what-it-keeps"
SIZED = re.compile(r"(?:^|[:,])size=")


def apply(*args: str | Path) -> int:
    return main(["--apply", "--select", ID, *map(str, args)])


def compose_files(folder: Path) -> list[str]:
    stacks = [s for s in proj.discover([folder]) if isinstance(s, proj.Stack)]
    assert len(stacks) == 1
    return [p.name for p in stacks[0].compose]


def config_json(folder: Path) -> dict[str, Any]:
    # Not --no-interpolate: with it Compose also skips the normalisation (`tmpfs: /run` stays a
    # string, `size: 64m` is not turned into bytes, `target: /c/` keeps its slash).
    proc = compose_config(folder, compose_files(folder), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def unbounded(model: dict[str, Any]) -> list[str]:
    """Every tmpfs mount in Compose's own normalised model that has no size."""
    out = []
    for name, svc in model["services"].items():
        out += [f"{name}: {t}" for t in svc.get("tmpfs", []) if not SIZED.search(t)]
        out += [f"{name}: {v['target']}" for v in svc.get("volumes", [])
                if v["type"] == "tmpfs" and not v.get("tmpfs", {}).get("size")]
    return out


# --- fixture stacks -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_fixture(tmp_path: Path, case: str) -> None:
    work = tmp_path / case
    shutil.copytree(FIXTURES / case / "input", work)
    expected = snapshot(FIXTURES / case / "expected")
    assert apply(work) == 1
    assert snapshot(work) == expected
    assert apply(work) == 0, "not idempotent"
    assert snapshot(work) == expected


@pytest.mark.parametrize("case", [c for c in CASES if c != DECIDES])
def test_compose_loads_each_fixture_with_every_mount_bounded(case: str) -> None:
    assert unbounded(config_json(FIXTURES / case / "input"))
    assert unbounded(config_json(FIXTURES / case / "expected")) == []


@pytest.mark.parametrize(
    ("case", "service", "tmpfs", "volume_sizes"),
    [
        pytest.param("string", "cache", ["/data:rw,noexec,size=64m"], {}, id="string"),
        pytest.param("list", "worker", [
            "/tmp/celery:size=64m", "/run:rw,noexec,size=64m", "/var/cache:size=256m",
            "/srv/a:size=64m", "/srv/b:mode=1770,size=64m"], {}, id="list"),
        pytest.param("flow", "web", [
            "/run:size=64m", "/tmp:rw,size=64m", "/var/cache/nginx:size=64m", "/srv:size=8m"], {}, id="flow"),
        pytest.param("flow", "tiny", ["/run:size=64m"], {}, id="flow service"),
        # Compose turns the long syntax's size into a string of bytes.
        pytest.param("long-volume", "app", None, {
            "/cache": "67108864", "/scratch": "67108864", "/sized": "1048576",
            "/flow": "67108864", "/flow-opts": "67108864"}, id="long syntax"),
        pytest.param("options", "builder", ["/var/lib/docker:size=4g", "/tmp:size=128m"],
                     {"/cache": "268435456"}, id="options"),
        pytest.param("override", "worker", ["/tmp:size=64m", "/dev/shm/x:size=64m"], {}, id="override merged"),
    ],
)
def test_compose_normalises_the_bounds(case: str, service: str, tmpfs: list[str] | None,
                                       volume_sizes: dict[str, str]) -> None:
    svc = config_json(FIXTURES / case / "expected")["services"][service]
    assert svc.get("tmpfs") == tmpfs
    sizes = {v["target"]: v["tmpfs"]["size"] for v in svc.get("volumes", []) if v["type"] == "tmpfs"}
    assert sizes == volume_sizes
    if case == "long-volume":  # the options already there stay
        modes = {v["target"]: v["tmpfs"].get("mode") for v in svc["volumes"] if v["type"] == "tmpfs"}
        assert modes["/scratch"] == 1777 and modes["/flow-opts"] == 1770


def test_a_bound_from_the_configuration_is_safe_and_the_only_one(tmp_path: Path) -> None:
    """Without --unsafe-fixes only the bound the configuration sets is written."""
    before = config_json(FIXTURES / DECIDES / "input")["services"]
    after = config_json(FIXTURES / DECIDES / "expected")["services"]
    assert after["worker"]["tmpfs"] == ["/scratch:size=256m"]
    assert all(after[n]["tmpfs"] == before[n]["tmpfs"] for n in before if n != "worker")


@pytest.mark.parametrize(
    ("service", "tmpfs"),
    [
        # Folders the image table knows hold only small files: the scratch bound, unsafe.
        pytest.param("pg", ["/var/run/postgresql:size=64m"], id="postgres socket folder"),
        pytest.param("static", ["/var/cache/nginx", "/var/run:size=64m"], id="nginx pid folder, not its spool"),
        pytest.param("proxy", ["/var/run:size=64m", "/var/cache", "/var/log/nginx:size=64m"],
                     id="nginx: not the folder of its cache and temp files"),
        pytest.param("db", ["/run/mysqld:size=64m", "/tmp"], id="mariadb: not its tmpdir"),
        pytest.param("app", ["/tmp"], id="an image the tool does not know"),
        pytest.param("worker", ["/scratch:size=256m"], id="configured"),
    ],
)
def test_what_each_service_keeps_decides_its_bound(tmp_path: Path, service: str, tmpfs: list[str]) -> None:
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / DECIDES / "input", work)
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(work)]) == 1
    assert config_json(work)["services"][service]["tmpfs"] == tmpfs


def test_what_each_service_keeps_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    with outside_the_repository(FIXTURES / DECIDES / "input") as work:
        assert main(["--check", "--unsafe-fixes", "--select", ID, str(work)]) == 1
    out = capsys.readouterr().out
    said = {line.split(": tmpfs ", 1)[0].rsplit("] ", 1)[-1] + " " + line.split(": tmpfs ", 1)[1].split()[0]: line
            for line in out.splitlines() if ": tmpfs " in line}
    assert said["service 'pg' /var/run/postgresql"].endswith(
        "add size=64m (the postgres image keeps only its unix socket and lock file in /var/run/postgresql)")
    assert said["service 'app' /tmp"].endswith("(not edited: what it keeps there is not known here: a bound it outgrows "
                                              "fails it with ENOSPC; choose one with the `sizes` option (64m fits "
                                              "scratch files)) (no fix applied)")
    # The proxy cache and the temp files of the mounted nginx configuration are on /var/cache.
    cache = said["service 'proxy' /var/cache"]
    assert "nginx keeps up to 4.1G there for one request of each kind" in cache
    for why in ("client_max_body_size 50M in nginx/conf.d/default.conf", "proxy_max_temp_file_size 1024m, nginx's default",
                "proxy_cache_path /var/cache/nginx max_size=3g in nginx/conf.d/default.conf"):
        assert why in cache
    assert "(no fix applied)" in cache and "a tmpfs counts against the container's memory" in cache
    assert "/tmp is its tmpdir" in said["service 'db' /tmp"] and "mount a volume there instead" in said["service 'db' /tmp"]
    assert "client_max_body_size 1m, nginx's default" in said["service 'static' /var/cache/nginx"]


def test_a_memory_limit_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one(tmp_path, "services:\n  db:\n    image: postgres:16\n    mem_limit: 512m\n    tmpfs:\n      - /var/run/postgresql\n",
        configured=False)
    capsys.readouterr()
    assert main(["--check", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    assert "(a tmpfs counts against its memory limit of 512M)" in capsys.readouterr().out


def test_crlf_bom_and_missing_final_newline_survive() -> None:
    raw = (FIXTURES / "crlf-bom" / "expected" / "compose.yaml").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and not raw.endswith(b"\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")


# --- small cases ----------------------------------------------------------------------------


def one(tmp_path: Path, text: str, configured: bool = True) -> Path:
    """A one-file stack; `configured`: under a bound the configuration sets for every tmpfs,
    the cases about how an entry is edited."""
    f = tmp_path / "compose.yaml"
    f.write_bytes(text.encode())
    if configured:
        (tmp_path / ".e2i-fix.toml").write_text(f'[{ID}]\nsize = "64m"\n')
    return f


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("services:\n  a:\n    image: x\n", id="no tmpfs"),
        pytest.param("services:\n  a:\n    image: x\n    tmpfs: /run:size=1m\n", id="sized"),
        pytest.param("services:\n  a:\n    image: x\n    tmpfs:\n      - /run:rw,size=1m\n", id="sized after options"),
        pytest.param("services:\n  a:\n    image: x\n    volumes:\n      - type: tmpfs\n        target: /c\n"
                     "        tmpfs:\n          size: 1m\n", id="long syntax sized"),
        pytest.param("services:\n  a:\n    image: x\n    tmpfs: ${SCRATCH:-/tmp}\n", id="from a variable"),
        pytest.param("services:\n  a:  # e2i-fix: ignore[tmpfs-size]\n    image: x\n    tmpfs: /run\n", id="opted out"),
        pytest.param("services:\n  a:\n    image: docker:dind\n    tmpfs: /var/lib/docker\n", id="image store"),
        pytest.param("services:\n  a:\n    image: x\n    tmpfs: |-\n      /run\n", id="block scalar"),
        pytest.param("x-t: &t\n  tmpfs:\n    mode: 1777\nservices:\n  a:\n    image: x\n    volumes:\n"
                     "      - <<: *t\n        type: tmpfs\n        target: /x\n", id="options from a merge key"),
        pytest.param("services:\n  a:\n    image: x\n    volumes:\n      - {type: tmpfs, target: /x,  # c\n"
                     "        }\n", id="comment inside a flow mapping"),
        pytest.param("x-c: &c\n  image: x\n  tmpfs: [/tmp]\nservices:\n  a:  # e2i-fix: ignore[tmpfs-size]\n"
                     "    <<: *c\n  b:\n    <<: *c\n", id="shared with an opted-out service"),
    ],
)
def test_noop(tmp_path: Path, text: str) -> None:
    f = one(tmp_path, text)
    assert apply(tmp_path) == 0
    assert f.read_text() == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('    tmpfs: "/run:"\n', '    tmpfs: "/run:size=64m"\n', id="empty options"),
        pytest.param("    tmpfs: /run:rw,\n", "    tmpfs: /run:rw,size=64m\n", id="trailing comma"),
        pytest.param("    tmpfs: /run   # why\n", "    tmpfs: /run:size=64m   # why\n", id="comment kept"),
        pytest.param('    tmpfs: ["/run"]\n', '    tmpfs: ["/run:size=64m"]\n', id="quoted in flow"),
        pytest.param("    tmpfs: [ /run ]\n", '    tmpfs: [ "/run:size=64m" ]\n', id="plain in flow gets quotes"),
        pytest.param("    tmpfs: [&t /run]\n", '    tmpfs: [&t "/run:size=64m"]\n', id="anchor in flow kept"),
        pytest.param("    tmpfs:\n      - /run\n      - /run2\n", "    tmpfs:\n      - /run:size=64m\n      - /run2:size=64m\n",
                     id="block list"),
        pytest.param("    volumes:\n      - {type: tmpfs, target: /x, tmpfs: {}}\n",
                     '    volumes:\n      - {type: tmpfs, target: /x, tmpfs: {size: "64m"}}\n', id="empty flow options"),
    ],
)
def test_fix(tmp_path: Path, text: str, expected: str) -> None:
    head = "services:\n  a:\n    image: x\n"
    f = one(tmp_path, head + text)
    assert apply(tmp_path) == 1
    assert f.read_text() == head + expected
    assert apply(tmp_path) == 0


def test_alias_of_an_anchored_entry_is_fixed_once_for_every_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "services:\n  a:\n    image: x\n    tmpfs:\n      - &t /tmp\n  b:\n    image: x\n    tmpfs: [*t, /b]\n"
    f = one(tmp_path, text)
    assert main(["--check", "--select", ID, str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{f}:5:9: [{ID}] services 'a', 'b' (shared): tmpfs /tmp has no size bound: add size=64m\n" in out
    assert apply(tmp_path) == 1
    # The anchor is in a block list, but its alias sits in a flow list: quoting is the safe side.
    assert f.read_text() == text.replace("&t /tmp", '&t "/tmp:size=64m"').replace("/b]", '"/b:size=64m"]')
    model = config_json(tmp_path)["services"]
    assert model["a"]["tmpfs"] == ["/tmp:size=64m"] and model["b"]["tmpfs"] == ["/tmp:size=64m", "/b:size=64m"]


def test_extends_inherits_the_bound(tmp_path: Path) -> None:
    text = "services:\n  a:\n    image: x\n    tmpfs: [/tmp]\n  b:\n    extends: a\n  c:\n    extends: b\n    tmpfs: [/c]\n"
    f = one(tmp_path, text)
    # Verification accepts it only if b and c, which change through a, are declared too.
    assert apply(tmp_path) == 1
    assert f.read_text() == text.replace("[/tmp]", '["/tmp:size=64m"]').replace("[/c]", '["/c:size=64m"]')
    model = config_json(tmp_path)["services"]
    assert model["b"]["tmpfs"] == ["/tmp:size=64m"]
    assert model["c"]["tmpfs"] == ["/tmp:size=64m", "/c:size=64m"]


def test_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ("services:\n  dind:\n    image: docker:dind\n    tmpfs: /var/lib/docker\n  worker:\n    image: x\n"
            "    tmpfs:\n      - /tmp/celery\n      - ${X:-/x}\n    volumes:\n      - type: tmpfs\n        target: /cache\n")
    f = one(tmp_path, text)
    assert main(["--check", "--select", ID, str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{f}:8:9: [{ID}] service 'worker': tmpfs /tmp/celery has no size bound: add size=64m",
        f"{f}:11:9: [{ID}] service 'worker': tmpfs volume /cache has no size bound: add tmpfs.size: 64m",
        f"{f}:4:12: [{ID}] service 'dind': tmpfs /var/lib/docker has no size bound"
        " (not edited: it holds more than scratch files: choose its bound with the `sizes` option) (no fix applied)",
        f"{f}:9:9: [{ID}] service 'worker': tmpfs ${{X:-/x}} has no size bound: add size=64m"
        " (not edited: it comes from a variable) (no fix applied)",
    ]


def test_a_mount_path_another_file_keeps_is_not_split(tmp_path: Path) -> None:
    """Named alone, an override is fixed as a run on the folder fixes it, but its base is not
    written: bounding the override's `/tmp` without the base's would give Compose two different
    `/tmp` mounts, which it refuses at `up`. Verification drops that one fix; `/new` is bounded."""
    base = one(tmp_path, "services:\n  w:\n    image: x\n    tmpfs:\n      - /tmp\n")
    over = tmp_path / "compose.override.yaml"
    over.write_text("services:\n  w:\n    tmpfs:\n      - /tmp\n      - /new\n")
    assert apply(over) == 1
    assert base.read_text() == "services:\n  w:\n    image: x\n    tmpfs:\n      - /tmp\n"
    assert over.read_text() == "services:\n  w:\n    tmpfs:\n      - /tmp\n      - /new:size=64m\n"
    assert config_json(tmp_path)["services"]["w"]["tmpfs"] == ["/tmp", "/new:size=64m"]


@pytest.mark.parametrize("value", ['"10%"', '"64mb"', "0", "true", '"abc"'])
def test_a_bad_size_option_is_reported_and_nothing_changes(tmp_path: Path, value: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    text = "services:\n  a:\n    image: x\n    tmpfs: /run\n"
    f = one(tmp_path, text)
    (tmp_path / ".e2i-fix.toml").write_text(f"[{ID}]\nsize = {value}\n")
    # A bad option value is the run's error, like an unknown option: exit 2, said on stderr.
    assert main(["--check", "--select", ID, str(tmp_path)]) == 2
    assert "is not a size" in capsys.readouterr().err
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 2
    assert f.read_text() == text


def test_documented() -> None:
    doc = registry()[ID].__doc__ or ""
    for heading in ("## What it does", "## Why", "## Example", "## Fix safety", "## Options"):
        assert heading in doc


# --- the example stack ----------------------------------------------------------------------


def test_example_worker_scratch_is_reported_until_the_configuration_sizes_it(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The worker's `/tmp/celery` holds what its tasks write: the tool cannot tell how much, so it
    says so; with a bound in the configuration, that bound is written, as a safe fix."""
    work = tmp_path / "e2i"
    shutil.copytree(ROOT / "examples" / "e2i", work)
    before = snapshot(work)
    capsys.readouterr()
    assert main(["--check", "--unsafe-fixes", "--select", ID, str(work)]) == 1
    out = capsys.readouterr().out
    assert "service 'worker': tmpfs /tmp/celery has no size bound (not edited: what it keeps there is not known here" in out
    assert apply(work) == 0 and snapshot(work) == before  # a finding only: nothing to write
    with (work / ".e2i-fix.toml").open("a") as cfg:
        cfg.write('\n[tmpfs-size]\nsizes = {"/tmp/celery" = "256m"}\n')
    before = snapshot(work)
    assert apply(work) == 1
    after = snapshot(work)
    changed = [k for k in after if after[k] != before.get(k)]
    assert changed == ["docker-compose.yml"]
    diff = [line for line in difflib.unified_diff(
        before["docker-compose.yml"].decode().splitlines(), after["docker-compose.yml"].decode().splitlines(), n=0)
        if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert diff == ["-      - /tmp/celery", "+      - /tmp/celery:size=256m"]
    assert config_json(work)["services"]["worker"]["tmpfs"] == ["/tmp/celery:size=256m"]
    assert apply(work) == 0


# --- the corpus -----------------------------------------------------------------------------


def test_corpus_is_reported_where_nothing_sizes_a_mount(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The corpus's unbounded tmpfs mounts are an application's /tmp and Docker-in-Docker image
    stores: what they hold is not known here, and no edit is proposed for them."""
    run, _ = corpus_run(tmp_path, lambda *a: main(["--check", "--unsafe-fixes", "--select", ID, *map(str, a)]))
    out = capsys.readouterr().out
    assert run.changed == []
    assert "has no size bound (not edited: what it keeps there is not known here" in out
    assert "fixes" not in out.splitlines()[-1]


def test_corpus(tmp_path: Path) -> None:
    """Under a bound the configuration sets, only tmpfs lines change (or lines are inserted),
    Compose judges every stack as before, and a second run finds nothing."""
    (tmp_path / ".e2i-fix.toml").write_text(f'[{ID}]\nsize = "64m"\n')
    run, extra = corpus_run(tmp_path, apply)
    changed = run.changed
    assert changed, "the corpus has unbounded tmpfs mounts: some file must change"
    for k in changed:
        old = run.before[k].decode().splitlines(keepends=True)
        new = run.after[k].decode().splitlines(keepends=True)
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
            if tag in ("equal", "insert"):
                continue
            assert tag == "replace" and i2 - i1 == j2 - j1, (k, old[i1:i2], new[j1:j2])
            for o, n in zip(old[i1:i2], new[j1:j2]):
                assert re.sub(r"[:,]size=64m", "", n) == o != n, (k, o, n)
    assert run.verdicts_kept() >= len(changed)
    assert apply(run.root, *extra) == 0
    assert snapshot(run.root) == run.after
