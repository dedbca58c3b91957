"""Output formats: SARIF (against the official schema), GitHub annotations, JSON; colour, the
summary line, --statistics, --show-fixes and the progress bar."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from e2i_fix import _main, output, yamledit
from e2i_fix._main import main
from e2i_fix.config import Settings
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project

from conftest import ROOT, layout

SCHEMA = ROOT.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"
EXAMPLE = ROOT / "examples" / "e2i"
PLAIN = "services:\n  web:\n    image: nginx:1.27\n  db:\n    image: postgres:16\n"


def sarif_validator() -> Any:
    import jsonschema

    if not SCHEMA.is_file():
        pytest.skip(f"the SARIF schema is not here ({SCHEMA} is missing)")
    return jsonschema.Draft4Validator(json.loads(SCHEMA.read_text()))


def valid_sarif(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(text)
    errors = sorted(sarif_validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    return doc


def copy_example(tmp_path: Path) -> Path:
    dest = tmp_path / "e2i"
    shutil.copytree(EXAMPLE, dest)
    return dest


def run_main(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    got = capsys.readouterr()
    return code, got.out, got.err


def offsets(text: str, line: int, col: int) -> int:
    return output.Positions(text).offset(line, col)


def apply_replacements(texts: dict[str, str], doc: dict[str, Any], base: Path) -> dict[str, str]:
    """Apply every result's fixes (an edit shared by several fixes once) as the engine splices.
    An unsafe fix left out of the run is offered too (`fixable` false): --apply leaves it out."""
    from e2i_fix.engine import splice

    edits: dict[str, dict[Edit, None]] = {}
    for result in doc["runs"][0]["results"]:
        if not result["properties"]["fixable"]:
            continue  # an unsafe fix on offer: --apply without --unsafe-fixes leaves it
        for fix in result.get("fixes", []):
            for change in fix["artifactChanges"]:
                path = str(base / change["artifactLocation"]["uri"])
                text = texts.setdefault(path, "")  # a new file (a .dockerignore) starts empty
                for r in change["replacements"]:
                    d = r["deletedRegion"]
                    start = offsets(text, d["startLine"], d["startColumn"])
                    end = offsets(text, d["endLine"], d["endColumn"])
                    edits.setdefault(path, {})[Edit(Path(path), start, end, r["insertedContent"]["text"])] = None
    out = dict(texts)
    for path, es in edits.items():
        out[path] = splice(out[path], list(enumerate(es)), "\n")
    return out


# --- SARIF ---------------------------------------------------------------------------------


def test_sarif_of_the_example_validates_and_its_fixes_are_the_apply_result(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    stack = copy_example(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_main(capsys, ["--check", "--format", "sarif", "e2i"])
    assert code == 1
    doc = valid_sarif(out)
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    from e2i_fix.passes import registry

    passes = registry()
    assert [r["id"] for r in rules] == list(passes)
    for rule in rules:
        assert rule["shortDescription"]["text"] == passes[rule["id"]].SUMMARY
        assert "## What it does" in rule["help"]["markdown"]
    results = run["results"]
    assert results and all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    for r in results:
        region = r["locations"][0]["physicalLocation"]["region"]
        assert (region["endLine"], region["endColumn"]) >= (region["startLine"], region["startColumn"])
        # What breaks a build (a missing Dockerfile) is an error; the rest are warnings.
        assert r["level"] == ("error" if r["ruleId"] in ("missing-build-files", "lockfile") else "warning"), r["ruleId"]
        assert r["partialFingerprints"]
    assert {r["level"] for r in results} == {"error", "warning"}
    assert len({next(iter(r["partialFingerprints"].values())) for r in results}) == len(results)
    # The fixes, applied to the files as read, give exactly what --apply writes.
    files = sorted(p for p in stack.rglob("*") if p.is_file())
    before = {str(p.relative_to(tmp_path)): p.read_text() for p in files}
    fixed = apply_replacements(before, doc, Path("."))
    assert main(["--apply", "e2i"]) == 1
    after = sorted(p for p in stack.rglob("*") if p.is_file())  # with the files the run created
    assert fixed == {str(p.relative_to(tmp_path)): p.read_text() for p in after}


def test_sarif_fingerprints_survive_lines_moving(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text(PLAIN)
    _, out, _ = run_main(capsys, ["--check", "--format", "sarif", "."])
    first = {r["ruleId"] + r["message"]["text"]: r["partialFingerprints"] for r in valid_sarif(out)["runs"][0]["results"]}
    (tmp_path / "compose.yaml").write_text("# a comment moves every line\n\n" + PLAIN)
    _, out, _ = run_main(capsys, ["--check", "--format", "sarif", "."])
    second = {r["ruleId"] + r["message"]["text"]: r["partialFingerprints"] for r in valid_sarif(out)["runs"][0]["results"]}
    assert first == second and len(first) >= 2


def test_sarif_with_a_broken_stack_and_absolute_paths_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "compose.yaml").write_text(PLAIN)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "compose.yaml").write_text("services:\n  web: [\n")
    code, out, _ = run_main(capsys, ["--dry-run", "--format", "sarif", str(tmp_path)])
    assert code == 2
    run = valid_sarif(out)["runs"][0]
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "error" and run["invocations"][0]["executionSuccessful"] is False
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].startswith("file:///")
    assert run["results"]


def test_every_sarif_report_over_the_corpus_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = layout(tmp_path / "corpus")
    code, out, _ = run_main(capsys, ["--check", "--unsafe-fixes", "--format", "sarif", str(root)])
    assert code in (0, 1, 2)
    doc = valid_sarif(out)
    assert doc["runs"][0]["results"]
    code, out, _ = run_main(capsys, ["--check", "--format", "sarif", str(root)])
    valid_sarif(out)


def test_a_hidden_unsafe_fix_is_a_result_with_its_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text(PLAIN)
    code = _main._run([Path(".")], "check", Settings({"risky": RISKY}), "sarif", use_config=False)
    assert code == 1
    run = valid_sarif(capsys.readouterr().out)["runs"][0]
    (rule,) = run["tool"]["driver"]["rules"]
    assert rule["helpUri"] == "https://docs.docker.com/reference/compose-file/services/#restart"
    (r1, r2) = run["results"]
    assert r1["properties"] == {"fixable": False, "safety": "unsafe"}
    (change,) = r1["fixes"][0]["artifactChanges"]
    assert change["artifactLocation"] == {"uri": "compose.yaml", "uriBaseId": "%SRCROOT%"}
    assert change["replacements"][0]["insertedContent"]["text"].strip() == "restart: always"


# --- GitHub annotations --------------------------------------------------------------------


def test_github_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text(PLAIN)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "compose.yaml").write_text("services:\n  web: [\n")
    code, out, err = run_main(capsys, ["--check", "--format", "github", "--select", "logging", "."])
    assert code == 2 and err == ""
    lines = out.splitlines()
    assert any(line.startswith("::error file=b/compose.yaml,line=3,col=1,title=e2i-fix::invalid YAML") for line in lines)
    # A region over several lines has no end column: GitHub reads columns on one line only.
    assert "::warning file=compose.yaml,line=2,col=3,endLine=3,title=e2i-fix [logging]::service 'web'" in out
    assert all(line.startswith(("::warning ", "::error ")) for line in lines)


def test_github_error_findings_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compose.yaml").write_text(PLAIN)
    (tmp_path / ".e2i-fix.toml").write_text('[tmpfs-size]\nsize = "huge"\n')
    code, out, _ = run_main(capsys, ["--check", "--format", "github", "--select", "tmpfs-size", "."])
    assert code == 2
    assert out == "::error file=compose.yaml,title=e2i-fix [tmpfs-size]::option size = 'huge' is not a size" \
                  " (like 64m, 1g or a number of bytes)\n"
    code, out, _ = run_main(capsys, ["--check", "--format", "sarif", "--select", "tmpfs-size", "."])
    (result,) = valid_sarif(out)["runs"][0]["results"]
    assert result["level"] == "error" and "region" not in result["locations"][0]["physicalLocation"]


def test_github_escaping() -> None:
    out = output.Reporter("github", "check", capture=True)
    out.fix(Fix("p", "50% of a\nb, c: d", Path("a,b:c.yml"), 2, 3), fixable=True)
    ((_, text),) = out.captured()[0]
    assert text == "::warning file=a%2Cb%3Ac.yml,line=2,col=3,title=e2i-fix [p]::50%25 of a%0Ab, c: d\n"


# --- JSON ----------------------------------------------------------------------------------


def test_json_keeps_its_fields_and_adds_edits_and_provenance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text(PLAIN)
    code, out, _ = run_main(capsys, ["--check", "--unsafe-fixes", "--format", "json", str(tmp_path)])
    assert code == 1
    records = json.loads(out)
    for r in records:
        assert {"type", "pass", "path", "line", "col", "message", "fixable", "safety", "edits", "provenance"} <= set(r)
    from e2i_fix.engine import splice

    # What --apply --unsafe-fixes writes is the fixes taken: a finding may carry edits as a suggestion.
    edits = {Edit(Path("f"), e["start"], e["end"], e["text"]): None for r in records if r["fixable"]
             for e in r["edits"]}
    text = splice(PLAIN, list(enumerate(edits)), "\n")
    assert main(["--apply", "--unsafe-fixes", str(tmp_path)]) == 1
    assert text == (tmp_path / "compose.yaml").read_text()
    limits = [r for r in records if r["pass"] == "deploy-limits"]
    assert limits and all(isinstance(p["what"], str) and isinstance(p["source"], str)
                          for r in limits for p in r["provenance"])


@hsettings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_later_rounds_edit_maps_back_to_the_original_or_says_it_cannot(data: st.DataObject) -> None:
    from e2i_fix.engine import Result, splice

    words = st.sampled_from(["", "a", "bc\n", "\n", "xyz"])
    original = data.draw(st.text("ab\n", max_size=20))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(original)), max_size=6)))
    first = [(k, Edit(Path("f"), cuts[k], cuts[k + 1] if data.draw(st.booleans()) else cuts[k], data.draw(words)))
             for k in range(0, len(cuts) - 1, 2)]
    spans: list[tuple[int, int, int]] = []
    middle = splice(original, first, "\n", spans)
    s = data.draw(st.integers(0, len(middle)))
    e = data.draw(st.integers(s, len(middle)))
    later = Fix("p", "m", Path("f"), edits=(Edit(Path("f"), s, e, data.draw(words)),))
    result = Result(stack=None)  # type: ignore[arg-type]
    result.spans = [{Path("f"): spans}]
    result.round_of[id(later)] = 1
    mapped = result.original_edits(later)
    if mapped is None:
        return
    (m,) = mapped
    assert 0 <= m.start <= m.end <= len(original)
    # It removes the same characters of the file as read...
    assert original[m.start:m.end] == middle[s:e]
    # ...and, where no earlier insertion sits at its place (then the order would be a guess),
    # gives the same result as the rounds did.
    if not any(edit.start == edit.end == m.start or edit.end == m.start == m.end for _, edit in first if edit.text):
        assert splice(original, first + [(len(cuts), m)], "\n") == splice(middle, [(0, later.edits[0])], "\n")


# --- text: colour, summary, statistics, show-fixes, progress --------------------------------


@pytest.mark.parametrize(("choice", "env", "tty", "expected"), [
    ("auto", {}, True, True),
    ("auto", {}, False, False),  # piped
    ("auto", {"NO_COLOR": "1"}, True, False),
    ("auto", {"NO_COLOR": ""}, True, True),  # an empty NO_COLOR is no request
    ("auto", {"FORCE_COLOR": "1"}, False, True),
    ("auto", {"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),
    ("auto", {"TERM": "dumb"}, True, False),
    ("always", {"NO_COLOR": "1"}, False, True),
    ("never", {"FORCE_COLOR": "1"}, True, False),
])
def test_colour_rules(choice: str, env: dict[str, str], tty: bool, expected: bool) -> None:
    assert output.use_color(choice, env, tty) is expected


def test_diffs_are_coloured_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "compose.yaml").write_text(PLAIN)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    _, plain, _ = run_main(capsys, [str(tmp_path)])  # captured: not a terminal
    assert "\x1b[" not in plain and "+    logging: *default-logging" in plain
    _, always, _ = run_main(capsys, ["--color", "always", str(tmp_path)])
    assert "\x1b[32m+    logging: *default-logging\x1b[0m\n" in always and "\x1b[1m--- " in always
    assert always.replace("\x1b[0m", "").replace("\x1b[1m", "").replace("\x1b[32m", "").replace(
        "\x1b[31m", "").replace("\x1b[36m", "") == plain
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[32m" in run_main(capsys, [str(tmp_path)])[1]
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in run_main(capsys, [str(tmp_path)])[1]
    assert "\x1b[" in run_main(capsys, ["--color=always", str(tmp_path)])[1]


def restart_pass(safety: Safety) -> Any:
    def fn(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
        for name, svc in project.services.items():
            if "restart" in svc.config or svc.home is None:
                continue
            edit = yamledit.append_entry(svc.home.doc, svc.home.node, "restart", "always", svc.home.key.end_mark.index)
            assert edit is not None
            line, col = svc.home.key.start_mark.line + 1, svc.home.key.start_mark.column + 1
            yield Fix("risky", f"{name}: restart always", svc.home.doc.path, line, col, (edit,), safety,
                      (("services", name, "restart"),))
    return SimpleNamespace(ID="risky", SUMMARY="restart: always", DEFAULTS={}, SAFETY=safety, run=fn,
                           __doc__="risky: a test pass.\n\n## What it does\nAdds restart.\n\n## Why\n"
                                   "See <https://docs.docker.com/reference/compose-file/services/#restart>.\n")


RISKY = restart_pass(Safety.UNSAFE)


@pytest.mark.parametrize(("mode", "unsafe", "expected"), [
    ("dry-run", False, "2 fixes in 2 files (2 more with --unsafe-fixes); --apply writes them"),
    ("check", False, "2 fixes in 2 files (2 more with --unsafe-fixes)"),
    ("dry-run", True, "4 fixes in 2 files; --apply writes them"),
    ("apply", False, "2 fixes applied in 2 files (2 more with --unsafe-fixes)"),
])
def test_the_summary_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str, unsafe: bool, expected: str) -> None:
    from e2i_fix.passes import logging

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    passes: dict[str, Any] = {"logging": logging, "risky": RISKY}
    code = _main._run([tmp_path], mode, Settings(passes, unsafe=unsafe), "text", use_config=False)
    assert code == 1
    assert capsys.readouterr().err.splitlines()[-1] == expected


def test_no_summary_when_nothing_to_say_and_errors_are_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n    restart: always\n")
    assert _main._run([tmp_path], "dry-run", Settings({"risky": RISKY}), "text", use_config=False) == 0
    assert capsys.readouterr().err == ""
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "compose.yaml").write_text("services: [\n")
    assert _main._run([tmp_path], "check", Settings({"risky": RISKY}), "text", use_config=False) == 2
    assert capsys.readouterr().err.splitlines()[-1] == "1 error"


def test_statistics_and_show_fixes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text(PLAIN)
    code, out, err = run_main(capsys, ["--check", "--statistics", "--select", "logging,tmpfs-size", str(tmp_path)])
    assert code == 1
    assert out.splitlines() == ["    2\tlogging\t[*] " + __import__("e2i_fix.passes.logging").passes.logging.SUMMARY]
    code, out, err = run_main(capsys, ["--dry-run", "--show-fixes", "--select", "logging", str(tmp_path)])
    path = tmp_path / "compose.yaml"
    assert f"Would fix 2 issues:\n- {path}:\n    2 × logging (" in err


@pytest.mark.parametrize("jobs", [1, 2])
def test_progress_bar_on_a_terminal_only(tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: int) -> None:
    for i in range(_main.PROGRESS_MIN):
        (tmp_path / f"s{i:02}").mkdir()
        (tmp_path / f"s{i:02}" / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    view = _main._View(progress=True)
    assert _main._run([tmp_path], "dry-run", Settings({"risky": RISKY}), "text", use_config=False, jobs=jobs,
                      view=view) == 0
    err = capsys.readouterr().err
    assert f"\r[{'.' * 30}] 0/" not in err and f"] {jobs}/{_main.PROGRESS_MIN} stacks" in err
    # The bar is cleared before anything else is printed, and at the end.
    assert err.rfind("\r[") < err.rfind("\r\x1b[K")
    assert err.endswith(f"\n{_main.PROGRESS_MIN} fixes with --unsafe-fixes\n")
    assert all(line.startswith(("\r", "/")) or "with --unsafe-fixes" in line for line in err.split("\n") if line)
    assert _main._run([tmp_path], "dry-run", Settings({"risky": RISKY}), "text", use_config=False, jobs=1) == 0
    assert "\r" not in capsys.readouterr().err


def _image_pass(pass_id: str, old: str, new: str, start: int = 0) -> Any:
    """Rewrites service a's image `old` to `new` (from character `start` of the value on)."""
    def fn(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
        home = project.services["a"].home
        assert home is not None
        got = home.get("image")
        assert got is not None
        node = got[1]
        if node.value == old:
            e = Edit(home.doc.path, node.start_mark.index + start, node.end_mark.index, new)
            yield Fix(pass_id, f"image {old} becomes {new}", home.doc.path, node.start_mark.line + 1,
                      node.start_mark.column + 1, (e,), changes=(("services", "a", "image"),))
    return SimpleNamespace(ID=pass_id, SUMMARY=pass_id, DEFAULTS={}, SAFETY=Safety.SAFE, run=fn, __doc__=f"{pass_id}.\n")


def _after_a(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    """Adds restart to b once a's image is x:1: proposed only in the second round."""
    if project.services["a"].config.get("image") != "x:1":
        return
    b = project.services["b"].home
    assert b is not None
    edit = yamledit.append_entry(b.doc, b.node, "restart", "always", b.key.end_mark.index)
    assert edit is not None
    yield Fix("after-a", "b restarts", b.doc.path, b.key.start_mark.line + 1, 3, (edit,), changes=(("services", "b", "restart"),))


def test_edits_of_a_later_round_are_located_in_the_file_as_read(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Round 1 rewrites a's image; round 2 adds to b (mapped back to the original lines) and
    rewrites what round 1 wrote (no stand-alone edit exists: reported without one)."""
    monkeypatch.chdir(tmp_path)
    text = "services:\n  a:\n    image: x\n  b:\n    image: y\n"
    (tmp_path / "compose.yaml").write_text(text)
    passes: dict[str, Any] = {
        "one": _image_pass("one", "x", "x:1"),
        "after-a": SimpleNamespace(ID="after-a", SUMMARY="s", DEFAULTS={}, SAFETY=Safety.SAFE, run=_after_a, __doc__="a.\n"),
        "two": _image_pass("two", "x:1", ":2", start=1),
    }
    assert _main._run([Path(".")], "check", Settings(passes), "json", use_config=False) == 1
    records = {r["pass"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["two"]["edits"] is None and records["two"]["fixable"] is True
    (edit,) = records["after-a"]["edits"]
    assert text[:edit["start"]] + edit["text"] + text[edit["end"]:] == text + "    restart: always\n"
    assert (edit["start_line"], edit["start_col"]) == (6, 1)
    assert _main._run([Path(".")], "check", Settings(passes), "sarif", use_config=False) == 1
    results = {r["ruleId"]: r for r in valid_sarif(capsys.readouterr().out)["runs"][0]["results"]}
    assert "fixes" not in results["two"] and results["after-a"]["fixes"] and results["one"]["fixes"]
    (rep,) = results["after-a"]["fixes"][0]["artifactChanges"][0]["replacements"]
    assert rep["deletedRegion"] == {"startLine": 6, "startColumn": 1, "endLine": 6, "endColumn": 1}


def test_on_a_real_terminal_the_diff_is_coloured_and_piped_it_is_not(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    (tmp_path / "compose.yaml").write_text(PLAIN)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env["TERM"] = "xterm"
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "e2i_fix", "--dry-run", str(tmp_path)], stdout=slave,
                            stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the other side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 1
    assert b"\x1b[32m+    logging: *default-logging\x1b[0m" in b"".join(chunks)
    piped = subprocess.run([sys.executable, "-m", "e2i_fix", "--dry-run", str(tmp_path)], capture_output=True, env=env)
    assert b"\x1b[" not in piped.stdout and b"+    logging: *default-logging\n" in piped.stdout
    assert re.fullmatch(r"\d+ fixes in 1 file( \(\d+ more with --unsafe-fixes\))?; --apply writes them",
                        piped.stderr.decode().splitlines()[-1])
