"""logging: fixture stacks, small inline cases and the corpus, judged by bytes and by the real
Compose CLI."""

from __future__ import annotations

import difflib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from e2i_fix import project as proj
from e2i_fix._main import main

from conftest import compose_config, corpus_run, snapshot

ID = "logging"
FIXTURES = Path(__file__).parent / "fixtures" / ID
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
DEFAULT = {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}
HIGH = {"driver": "json-file", "options": {"max-size": "50m", "max-file": "5"}}
STACK = {"driver": "json-file", "options": {"max-file": "4", "max-size": "512m"}}
SMALL = {"driver": "json-file", "options": {"max-size": "5m", "max-file": "2"}}


def apply(*args: str | Path) -> int:
    return main(["--apply", "--select", ID, *map(str, args)])


def check(folder: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    main(["--check", "--select", ID, str(folder)])
    return capsys.readouterr().out.splitlines()


def config_json(folder: Path) -> dict[str, Any]:
    stacks = [s for s in proj.discover([folder]) if isinstance(s, proj.Stack)]
    assert len(stacks) == 1
    proc = compose_config(folder, [p.name for p in stacks[0].compose], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def only_insertions(old: str, new: str) -> list[str]:
    """The lines `new` adds to `old`; fails if any line of `old` was removed or changed."""
    a = old.splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    added = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "insert":
            added += b[j1:j2]
        elif tag == "replace" and i2 == len(a) and i2 - i1 == 1 and b[j1] in (a[i1] + "\n", a[i1] + "\r\n") \
                and not a[i1].endswith("\n"):
            # The old last line had no newline: a line appended after it gives it one.
            added += b[j1 + 1 : j2]
        elif tag != "equal":
            raise AssertionError(f"{tag}: {a[i1:i2]!r} -> {b[j1:j2]!r}")
    return added


# --- fixture stacks -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_fixture(tmp_path: Path, case: str) -> None:
    work = tmp_path / case
    shutil.copytree(FIXTURES / case / "input", work)
    before = snapshot(work)
    expected = snapshot(FIXTURES / case / "expected")
    assert apply(work) == (0 if expected == before else 1)
    assert snapshot(work) == expected
    assert apply(work) == 0, "not idempotent"
    assert snapshot(work) == expected
    for name, data in expected.items():
        only_insertions(before[name].decode("utf-8-sig"), data.decode("utf-8-sig"))


@pytest.mark.parametrize(
    ("case", "service", "logging"),
    [
        pytest.param("plain", "web", DEFAULT, id="plain"),
        pytest.param("plain", "db", DEFAULT, id="plain 2"),
        pytest.param("api-role", "gateway", HIGH, id="api by command"),
        pytest.param("api-role", "backend", HIGH, id="api by name"),
        pytest.param("api-role", "worker", DEFAULT, id="worker"),
        pytest.param("high-volume-option", "web", HIGH, id="option names web"),
        pytest.param("high-volume-option", "api", DEFAULT, id="option replaces the role"),
        pytest.param("reuse-anchor", "db", {"driver": "json-file", "options": {"max-size": "20m", "max-file": "2"}},
                     id="existing anchor reused"),
        pytest.param("complete-options", "web", {"driver": "json-file", "options": {"max-file": "4", "max-size": "10m"}},
                     id="max-file kept"),
        pytest.param("complete-options", "db", {"options": {"labels": "tier", "max-size": "10m", "max-file": "3"}},
                     id="driver by default"),
        pytest.param("complete-options", "cache", DEFAULT, id="no options"),
        pytest.param("complete-anchor", "db", DEFAULT, id="shared anchor completed"),
        pytest.param("complete-merged", "a", DEFAULT, id="merged x- block completed"),
        pytest.param("complete-merged", "app-worker", DEFAULT, id="merged service completed"),
        pytest.param("extends", "child", DEFAULT, id="extends inherits"),
        pytest.param("merged-service", "app-worker", DEFAULT, id="merge inherits"),
        pytest.param("other-drivers", "a", {"driver": "syslog", "options": {"syslog-address": "udp://127.0.0.1:514"}},
                     id="syslog"),
        pytest.param("other-drivers", "b", {"driver": "local"}, id="local"),
        pytest.param("other-drivers", "c", {"driver": "none"}, id="none"),
        pytest.param("override", "web", DEFAULT, id="base service"),
        pytest.param("override", "debug", DEFAULT, id="override-only service"),
        pytest.param("crlf-bom", "db", DEFAULT, id="crlf"),
        pytest.param("flow-service", "web", None, id="flow service untouched"),
        pytest.param("flow-service", "db", DEFAULT, id="next to a flow service"),
        pytest.param("ignore-comment", "web", None, id="opted out"),
        pytest.param("anchor-after-services", "web", {"driver": "json-file", "options": {"max-size": "5m"}},
                     id="an anchor after the service: the stack's block, inline"),
        pytest.param("reset-override", "worker", {"driver": "json-file", "options": {"max-size": "20m"}},
                     id="the stack's figures"),
        pytest.param("template-all", "cli", DEFAULT, id="through the template"),
        pytest.param("template-override", "worker", DEFAULT, id="template value"),
        pytest.param("template-override", "api", HIGH, id="own value over the template's"),
        pytest.param("template-partial", "db", DEFAULT, id="outside the template"),
        pytest.param("template-partial", "triggerer", DEFAULT, id="inside the template"),
        pytest.param("template-opted-out", "legacy", None, id="opted out of a shared template"),
        pytest.param("template-opted-out", "scheduler", DEFAULT, id="next to an opted-out sharer"),
        pytest.param("fragment", "db", DEFAULT, id="a fragment is not a template"),
        pytest.param("template-extends", "triggerer", DEFAULT, id="through extends"),
        pytest.param("two-templates", "bridge", DEFAULT, id="two templates, the first wins"),
        pytest.param("two-templates", "snuba-replacer", DEFAULT, id="the second template"),
        pytest.param("convention-inline", "worker", STACK, id="the stack's figures, inline, for an api-like service too"),
        pytest.param("convention-inline", "cache", STACK, id="completed with the stack's figures"),
        pytest.param("convention-alias", "proxy", SMALL, id="before the stack's anchor: its block inline"),
        pytest.param("convention-alias", "scheduler", SMALL, id="after the stack's anchor: its alias"),
        pytest.param("convention-config", "worker", {"driver": "json-file", "options": {"max-size": "512m", "max-file": "6"}},
                     id="the configuration's figure, written as the stack writes its own"),
        pytest.param("convention-override-file", "cache", SMALL, id="the file's own anchor"),
    ],
)
def test_compose_reads_the_rotation(case: str, service: str, logging: dict[str, Any] | None) -> None:
    assert config_json(FIXTURES / case / "expected")["services"][service].get("logging") == logging


def test_the_stack_writes_it_the_same_way_in_every_file() -> None:
    """An override file that spells its logging out gets the block inline, with the base
    file's figures and quotes: the base file's anchor cannot be aliased from there."""
    expected = FIXTURES / "convention-override-file" / "expected"
    assert config_json(expected)["services"]["jaeger"]["logging"] == SMALL
    override = (expected / "compose.override.yaml").read_text()
    assert override.count('      driver: "json-file"\n      options:\n        max-size: "5m"\n        max-file: "2"\n') == 2
    assert "\nx-" not in override and "x-logging:" not in (expected / "compose.yaml").read_text()


def test_the_issue_s_stack_gets_no_anchor_and_no_10m() -> None:
    """A stack that rotates inline at 512m x 4 gets the same lines, in its key order and quotes."""
    text = (FIXTURES / "convention-inline" / "expected" / "compose.yaml").read_text()
    assert "x-logging" not in text and "10m" not in text and "50m" not in text
    assert text.count('      options:\n        max-file: "4"\n        max-size: 512m\n') == 4


def test_override_blocks_land_where_each_service_is_defined() -> None:
    expected = FIXTURES / "override" / "expected"
    base = (expected / "compose.yaml").read_text()
    over = (expected / "compose.override.yaml").read_text()
    assert base.count("logging: *default-logging") == 1 and "  web:\n    image: nginx:1.27\n    logging:" in base
    assert over.count("logging: *default-logging") == 1 and "    image: busybox:1.36\n    command: [\"sleep\", \"infinity\"]\n    logging:" in over
    # The base alone still rotates the logs of the service it defines.
    assert config_json_files(expected, ["compose.yaml"])["services"]["web"]["logging"] == DEFAULT


def config_json_files(folder: Path, files: list[str]) -> dict[str, Any]:
    proc = compose_config(folder, files, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_crlf_bom_and_missing_final_newline_survive() -> None:
    old = (FIXTURES / "crlf-bom" / "input" / "compose.yaml").read_bytes()
    new = (FIXTURES / "crlf-bom" / "expected" / "compose.yaml").read_bytes()
    assert old.startswith(b"\xef\xbb\xbf") and new.startswith(b"\xef\xbb\xbf")
    assert not new.endswith(b"\n")
    assert new.count(b"\n") == new.count(b"\r\n")
    added = only_insertions(old.decode("utf-8-sig"), new.decode("utf-8-sig"))
    assert all(line.endswith("\r\n") for line in added[:-1]) and not added[-1].endswith("\n")
    assert sorted(line.rstrip("\r\n") for line in added) == sorted([
        "x-logging: &default-logging", "  driver: json-file", "  options:", '    max-size: "10m"',
        '    max-file: "3"', "", "    logging: *default-logging", "    logging: *default-logging"])


def test_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "complete-merged" / "input", work)
    f = work / "compose.yaml"
    assert check(work, capsys) == [
        f"{f}:7:3: [{ID}] service 'a': json-file logging never rotates; add max-size, max-file to its anchor",
        f"{f}:9:3: [{ID}] service 'b': json-file logging never rotates; add max-size, max-file to its anchor",
        f"{f}:14:5: [{ID}] service 'app': json-file logging never rotates; add max-size, max-file",
        f"{f}:16:3: [{ID}] service 'app-worker': json-file logging never rotates; add max-size, max-file to its anchor",
    ]


def test_a_template_edit_is_one_line_and_every_service_is_reported(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "template-override" / "input", work)
    f = work / "compose.yaml"
    assert check(work, capsys) == [
        f"{f}:6:3: [{ID}] service 'api' has no log rotation: add `logging: *high-volume-logging`",
        f"{f}:9:3: [{ID}] service 'worker' has no log rotation: add `logging: *default-logging`"
        " (once, in `x-app-common`, for 2 services)",
        f"{f}:12:3: [{ID}] service 'beat' has no log rotation: add `logging: *default-logging`"
        " (once, in `x-app-common`, for 2 services)",
    ]


def test_a_flow_service_is_reported_not_edited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text('services:\n  web: {image: "nginx:1.27"}\n')
    assert check(tmp_path, capsys) == [
        f"{f}:2:3: [{ID}] service 'web' has no log rotation (its mapping cannot be edited here) (no fix applied)",
    ]
    assert apply(tmp_path) == 0
    assert f.read_text() == 'services:\n  web: {image: "nginx:1.27"}\n'


def test_opted_out_service_is_not_mentioned(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / "ignore-comment" / "input", work)
    assert [line for line in check(work, capsys) if "'web'" in line] == []


# --- small cases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("services:\n  a:\n    image: x\n    logging:\n      driver: json-file\n      options:\n"
                     "        max-size: 1m\n", id="rotates already"),
        pytest.param("services:\n  a:\n    image: x\n    logging:\n      driver: local\n", id="local driver"),
        pytest.param("services:\n  a:\n    image: x\n    logging: {driver: json-file}\n", id="flow logging"),
        pytest.param("x-o: &o\n  max-file: '2'\nservices:\n  a:\n    image: x\n    logging:\n      driver: json-file\n"
                     "      options: *o\n", id="options through an alias"),
        pytest.param("x-l: &l\n  driver: json-file\nservices:\n  a:  # e2i-fix: ignore[logging]\n    image: x\n"
                     "    logging: *l\n  b:\n    image: x\n    logging: *l\n", id="anchor shared with an opted-out service"),
        pytest.param("services:\n  a:  # e2i-fix: ignore\n    image: x\n", id="bare ignore"),
        pytest.param("services:\n  migrate:\n    image: x\n    restart: \"no\"\n    command: [alembic, upgrade, head]\n",
                     id="a one-shot migration job"),
        pytest.param("services:\n  seed:\n    image: x\n    command: [shop, load-fixtures]\n", id="a seed job, no restart"),
    ],
)
def test_noop(tmp_path: Path, text: str) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    assert apply(tmp_path) == 0
    assert f.read_text() == text


@pytest.mark.parametrize(("restart", "rotated"), [
    pytest.param("", False, id="never restarted"), pytest.param('    restart: "no"\n', False, id="restart no"),
    pytest.param("    restart: on-failure\n", True, id="restarted on failure"),
    pytest.param("    restart: unless-stopped\n", True, id="restarted"),
])
def test_a_one_shot_job_gets_no_rotation_of_its_own(tmp_path: Path, restart: str, rotated: bool) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  web:\n    image: nginx:1.27\n  migrate:\n    image: example/shop:2.1\n"
                 f"{restart}    command: [shop, migrate]\n")
    assert apply(tmp_path) == 1
    services = config_json(tmp_path)["services"]
    assert services["web"]["logging"] == DEFAULT
    assert ("logging" in services["migrate"]) is rotated


@pytest.mark.parametrize(("command", "rotated"), [
    pytest.param("[sh, /scripts/generate-secrets.sh]", False, id="a job another waits to complete"),
    pytest.param("[gunicorn, app:app]", True, id="a server is no job, whatever waits for it"),
])
def test_a_job_others_wait_to_complete_gets_no_rotation(tmp_path: Path, command: str, rotated: bool) -> None:
    """Named like nothing the tool knows (`secrets-gen`), but the stack waits for it to exit
    with `service_completed_successfully`: a one-shot job."""
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  web:\n    image: nginx:1.27\n    depends_on:\n      secrets-gen:\n"
                 "        condition: service_completed_successfully\n"
                 f"  secrets-gen:\n    image: example/tools:1\n    command: {command}\n")
    assert apply(tmp_path) == 1
    services = config_json(tmp_path)["services"]
    assert services["web"]["logging"] == DEFAULT
    assert ("logging" in services["secrets-gen"]) is rotated


@pytest.mark.parametrize(("service", "rotated"), [
    pytest.param("    image: busybox\n    volumes:\n      - ./data:/var/lib/mysql\n", False,
                 id="a data-only container exits at once"),
    pytest.param("    image: alpine:3.20\n", False, id="a bare alpine exits at once"),
    pytest.param("    image: busybox\n    command: [sleep, infinity]\n", True, id="a command keeps it running"),
    pytest.param("    image: debian:12\n    tty: true\n", True, id="a terminal keeps its shell running"),
    pytest.param("    image: busybox\n    restart: always\n", True, id="restarted"),
])
def test_a_container_that_exits_at_once_gets_no_rotation(tmp_path: Path, service: str, rotated: bool) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(f"services:\n  web:\n    image: nginx:1.27\n  data:\n{service}")
    assert apply(tmp_path) == 1
    assert ("logging" in config_json(tmp_path)["services"]["data"]) is rotated


def test_a_one_shot_job_takes_its_template_s_rotation(tmp_path: Path) -> None:
    """Airflow's shape: the init job merges the template the servers merge. It needs no rotation,
    and does not keep the template from getting it once (per service, it gets none)."""
    f = tmp_path / "compose.yaml"
    text = ("x-app: &app\n  image: example/shop:2.1\n\nservices:\n  web:\n    <<: *app\n    command: [shop, serve]\n"
            "  jobs:\n    <<: *app\n    command: [shop, jobs]\n  shop-init:\n    <<: *app\n    command: [shop, migrate]\n")
    f.write_text(text)
    assert apply(tmp_path) == 1
    assert f.read_text().count("logging: *default-logging") == 1
    assert "x-app: &app\n  image: example/shop:2.1\n  logging: *default-logging\n" in f.read_text()
    f.write_text(text)
    (tmp_path / ".e2i-fix.toml").write_text('placement = "per-service"\n')
    assert apply(tmp_path) == 1
    assert "logging" not in config_json(tmp_path)["services"]["shop-init"]
    assert f.read_text().count("logging: *default-logging") == 2


def test_an_alias_of_a_service_inherits(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  web: &web\n    image: nginx:1.27\n  web2: *web\n")
    assert apply(tmp_path) == 1
    assert f.read_text().endswith("  web: &web\n    image: nginx:1.27\n    logging: *default-logging\n  web2: *web\n")
    assert config_json(tmp_path)["services"]["web2"]["logging"] == DEFAULT


# --- the corpus -----------------------------------------------------------------------------


def test_corpus(tmp_path: Path) -> None:
    """Lines are only inserted, Compose judges every stack (base alone and with each override)
    as before, and a second run finds nothing."""
    run, extra = corpus_run(tmp_path, apply)
    changed = run.changed
    assert len(changed) >= 10
    for k in changed:
        added = only_insertions(run.before[k].decode("utf-8-sig"), run.after[k].decode("utf-8-sig"))
        assert added, k
    assert run.verdicts_kept() >= len(changed)
    assert apply(run.root, *extra) == 0
    assert snapshot(run.root) == run.after


def test_an_anchor_without_max_size_is_completed_and_reused(tmp_path: Path) -> None:
    """regression: a service with no logging beside a service whose anchored logging lacks
    max-size. The anchor gets max-size and the first service its alias; a second anchor was
    inserted at the first one's end, and the new max-size landed inside it (duplicate key)."""
    text = ("x-logging: &log\n  driver: json-file\n  options:\n    max-file: \"2\"\n\n    # closes the block\n"
            "services:\n  a:\n    image: nginx:1.27\n  b:\n    image: nginx:1.27\n    logging: *log\n")
    (tmp_path / "compose.yaml").write_text(text)
    assert main(["--apply", "--no-config", "--select", "logging", str(tmp_path)]) == 1
    new = (tmp_path / "compose.yaml").read_text()
    assert new.count("max-size") == 1 and new.count("&") == 1 and "    logging: *log\n" in new.split("  b:")[0]
    proc = compose_config(tmp_path, ["compose.yaml"], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    assert services["a"]["logging"] == services["b"]["logging"]
    assert services["a"]["logging"]["options"]["max-size"] == "10m"
