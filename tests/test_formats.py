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


def test_github_escaping(tmp_path: Path) -> None:
    out = output.Reporter("github", "check", capture=True)
    out.fix(Fix("p", "50% of a\nb, c: d", Path("a,b:c.yml"), 2, 3), fixable=True)
    text = output.github_annotations(out.records, tmp_path)
    assert text == "::warning file=a%2Cb%3Ac.yml,line=2,col=3,title=e2i-fix [p]::50%25 of a%0Ab, c: d\n"


def annotations_of(out: str) -> tuple[list[str], list[str], list[str]]:
    lines = out.splitlines()
    assert all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines), out
    return ([ln for ln in lines if ln.startswith("::error ")], [ln for ln in lines if ln.startswith("::warning ")],
            [ln for ln in lines if ln.startswith("::notice ")])


def test_github_shows_the_most_severe_ten_of_each_level_and_a_notice_for_the_rest() -> None:
    """Ranks within a level: a problem or a wrong option, then what breaks a build; a safe fix,
    then an unsafe one, then a finding with no fix (display-only). Ties keep the run's order."""
    out = output.Reporter("github", "check", capture=True)
    f = Path("compose.yaml")
    for i in range(31, 34):  # findings with no fix, lines 31-33, first in the run
        out.fix(Fix("by-hand", "h", f, i, 1, safety=Safety.DISPLAY_ONLY), fixable=False)
    for i in range(21, 26):  # an unsafe fix on offer, lines 21-25
        out.fix(Fix("offer", "o", f, i, 1, edits=(Edit(f, 0, 0, "x"),), safety=Safety.UNSAFE), fixable=False, hidden=True)
    for i in range(1, 7):  # a safe fix --apply takes, lines 1-6
        out.fix(Fix("safe", "s", f, i, 1, edits=(Edit(f, 0, 0, "x"),)), fixable=True)
    for i in range(41, 51):  # what breaks a build, lines 41-50
        out.fix(Fix("build", "b", f, i, 1, severe=True, safety=Safety.DISPLAY_ONLY), fixable=False)
    for i in range(51, 54):  # problems: a file that does not parse
        out.problem(output.Problem(f"bad{i}.yaml", "invalid YAML", i, 1))
    errors, warnings, (notice,) = annotations_of(output.github_annotations(out.records, Path.cwd()))

    def lines(shown: list[str]) -> list[int]:
        return [int(re.search(r",line=(\d+),", a).group(1)) for a in shown]  # type: ignore[union-attr]

    assert lines(errors) == [51, 52, 53, *range(41, 48)]
    # regression: the display-only findings came first, and every proposed fix fell into the notice
    assert lines(warnings) == [1, 2, 3, 4, 5, 6, 21, 22, 23, 24]
    assert "(fix available with --unsafe-fixes)" in warnings[6]
    assert notice.startswith("::notice title=e2i-fix::7 more annotations are not shown (3 errors and 4 warnings)")
    assert "--format text" in notice and "--format sarif" in notice


def test_github_annotations_of_the_example_and_the_step_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    copy_example(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    code, out, _ = run_main(capsys, ["--check", "--format", "json", "e2i"])
    records = json.loads(out)["records"]
    severe = [r for r in records if r["type"] == "finding" and (r["severe"] or r["error"])]
    other = [r for r in records if r["type"] == "finding" and not (r["severe"] or r["error"] or r["info"])]
    assert code == 1 and len(severe) >= 1 and len(other) > 10
    code, out, err = run_main(capsys, ["--check", "--format", "github", "e2i"])
    assert code == 1 and err == ""
    errors, warnings, notices = annotations_of(out)
    assert len(errors) == min(len(severe), 10) and len(warnings) == 10
    (notice,) = notices
    hidden = len(severe) + len(other) - len(errors) - len(warnings)
    assert notice.startswith(f"::notice title=e2i-fix::{hidden} more annotations are not shown")
    # The warnings shown are the fixes --apply takes (safe), ahead of the findings no fix settles.
    # (`edits: []`: none; `null`: a fix on offer whose edits only apply after another's)
    safe = [(r["path"], r["line"]) for r in other if r["fixable"] and r["safety"] == "safe"]
    assert len(safe) >= 10
    shown = [re.match(r"::warning file=([^,]+),line=(\d+),", a) for a in warnings]
    assert [(m.group(1), int(m.group(2))) for m in shown if m] == safe[:10]

    # On a runner: the job summary gets the counts per pass and the files, appended.
    target = tmp_path / "summary.md"
    target.write_text("# before\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert run_main(capsys, ["--check", "--format", "github", "e2i"])[1] == out
    text = target.read_text()
    assert text.startswith("# before\n## e2i-fix\n")
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| (\d+ \| \d+) \|$", text, re.M))
    counted: dict[str, list[int]] = {}
    for r in records:
        if r["type"] == "finding" and not r["info"]:
            counted.setdefault(r["pass"], [0, 0])[not r["fixable"]] += 1
    assert rows == {pid: f"{a} | {b}" for pid, (a, b) in counted.items()}
    files = re.findall(r"^\| `([^`]+)` \| (\d+) \| (\d+) \|$", text.split("\n| file |")[1], re.M)
    assert {f for f, _, _ in files} == {r["path"] for r in severe + other}
    assert sum(int(e) + int(w) for _, e, w in files) == len(severe) + len(other)
    # A summary that cannot be written is said, and the annotations still printed.
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no" / "such" / "folder" / "summary.md"))
    code, out2, err = run_main(capsys, ["--check", "--format", "github", "e2i"])
    assert out2 == out and "cannot append the step summary" in err


def git_repo(path: Path) -> Path:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True, capture_output=True)
    return path


@pytest.mark.parametrize("where", ["root, absolute path", "sub-folder, relative path", "outside git, absolute path"])
def test_paths_are_relative_to_the_repository_root(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    repo = git_repo(tmp_path / "repo")
    (repo / "deploy").mkdir()
    (repo / "deploy" / "compose.yaml").write_text(PLAIN)
    (tmp_path / "elsewhere").mkdir()
    cwd, arg = {"root, absolute path": (repo, str(repo / "deploy")),
                "sub-folder, relative path": (repo / "deploy", "."),
                "outside git, absolute path": (tmp_path / "elsewhere", str(repo / "deploy"))}[where]
    monkeypatch.chdir(cwd)
    code, out, _ = run_main(capsys, ["--check", "--format", "sarif", "--select", "logging", arg])
    run = valid_sarif(out)["runs"][0]
    assert code == 1 and run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == repo.as_uri() + "/"
    locations = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    changes = [c["artifactLocation"] for r in run["results"] for c in r["fixes"][0]["artifactChanges"]]
    assert locations and changes
    assert all(loc == {"uri": "deploy/compose.yaml", "uriBaseId": "%SRCROOT%"} for loc in locations + changes)
    code, out, _ = run_main(capsys, ["--check", "--format", "github", "--select", "logging", arg])
    assert out.startswith("::warning file=deploy/compose.yaml,line=2,")


def test_outside_git_paths_are_relative_to_the_current_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "here" / "s").mkdir(parents=True)
    (tmp_path / "here" / "s" / "compose.yaml").write_text(PLAIN)
    (tmp_path / "there").mkdir()
    (tmp_path / "there" / "compose.yaml").write_text(PLAIN)
    monkeypatch.chdir(tmp_path / "here")
    code, out, _ = run_main(capsys, ["--check", "--format", "sarif", "--select", "logging",
                                     str(tmp_path / "here" / "s"), str(tmp_path / "there")])
    run = valid_sarif(out)["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == (tmp_path / "here").as_uri() + "/"
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert uris == {"s/compose.yaml", (tmp_path / "there" / "compose.yaml").as_uri()}


# --- JSON ----------------------------------------------------------------------------------


def test_json_keeps_its_fields_and_adds_edits_and_provenance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text(PLAIN)
    code, out, _ = run_main(capsys, ["--check", "--unsafe-fixes", "--format", "json", str(tmp_path)])
    assert code == 1
    records = json.loads(out)["records"]
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


def report_validator() -> Any:
    """The JSON report's schema, as the installed package ships it."""
    import importlib.resources

    import jsonschema

    schema = json.loads((importlib.resources.files("e2i_fix") / "data" / "report.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def valid_report(text: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(text)
    errors = sorted(report_validator().iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    return doc


def test_the_json_report_is_versioned_and_valid_in_every_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from e2i_fix import __version__

    copy_example(tmp_path)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "compose.yaml").write_text("services:\n  web: [\n")
    monkeypatch.chdir(tmp_path)
    seen: dict[str, set[str]] = {}
    for mode in ("--dry-run", "--check", "--apply"):
        for extra in ([], ["--unsafe-fixes"]) if mode != "--apply" else ([],):
            code, out, err = run_main(capsys, [mode, "--format", "json", *extra, "e2i", "broken"])
            doc = valid_report(out)
            assert code == 2 and err == ""
            assert (doc["version"], doc["tool"], doc["mode"]) == (1, {"name": "e2i-fix", "version": __version__},
                                                                  mode[2:])
            records = doc["records"]
            for r in records:
                seen.setdefault(r["type"], set()).add(r.get("safety", ""))
            findings = [r for r in records if r["type"] == "finding"]
            # The summary counts what the records say.
            assert doc["summary"]["fixes"] == sum(r["fixable"] for r in findings) > 0
            assert doc["summary"]["errors"] == len([r for r in records if r["type"] == "error"]) == 1
            # (after --apply edits are null: they were made in files that are now rewritten)
            assert doc["summary"]["unsafe_fixes"] == (0 if extra else len(
                [r for r in findings if not r["fixable"] and r["safety"] == "unsafe" and r["edits"] != []]))
            assert extra or doc["summary"]["unsafe_fixes"] > 0
    assert set(seen) == {"finding", "diff", "fixed", "error"}
    # Safety levels as the documentation spells them (lockfile's findings are display-only).
    assert seen["finding"] == {"safe", "unsafe", "display-only"}
    # A report in the old spelling, or without its version, is not one.
    doc = json.loads(run_main(capsys, ["--check", "--format", "json", "e2i"])[1])
    validator = report_validator()
    assert validator.is_valid(doc)
    (lockfile,) = [r for r in doc["records"] if r.get("pass") == "lockfile"]
    lockfile["safety"] = "display_only"
    assert not validator.is_valid(doc)
    lockfile["safety"] = "display-only"
    del doc["version"]
    assert not validator.is_valid(doc)


def test_every_json_report_over_the_corpus_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = layout(tmp_path / "corpus")
    code, out, _ = run_main(capsys, ["--check", "--unsafe-fixes", "--format", "json", str(root)])
    assert code in (0, 1, 2)
    assert valid_report(out)["records"]


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
    records = {r["pass"]: r for r in json.loads(capsys.readouterr().out)["records"]}
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


# --- a file several stacks read: told once in a run --------------------------------------------

DOCKERFILE = ('FROM python:3.12-slim\nWORKDIR /app\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n'
              'COPY . .\nCMD ["gunicorn", "app:app"]\n')


def shared_dockerfile(root: Path, *stacks: str) -> Path:
    """Stacks in folders of their own that all build `app/Dockerfile` (as karakeep's e2e,
    benchmark and tool stacks build its docker/Dockerfile)."""
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text(DOCKERFILE)
    (root / "app" / "requirements.txt").write_text("flask\n")
    for name in stacks:
        (root / name).mkdir()
        (root / name / "compose.yaml").write_text("services:\n  api:\n    build: ../app\n")
    return root


BUILD = ["--select", "cache-mounts,buildkit-syntax"]


def test_a_file_several_stacks_build_is_shown_and_counted_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """One diff and one count per file in a run, in every format: what --apply writes."""
    root = shared_dockerfile(tmp_path / "w", "one", "three", "two")
    monkeypatch.chdir(root)
    code, out, err = run_main(capsys, ["--dry-run", *BUILD, "."])
    assert code == 1 and out.count("--- app/Dockerfile\n") == 1
    assert err == "2 fixes in 1 file; --apply writes them\n"
    code, out, _ = run_main(capsys, ["--dry-run", "--format", "json", *BUILD, "."])
    report = json.loads(out)
    assert report["summary"]["fixes"] == 2 and report["summary"]["files"] == 1
    assert [r["path"] for r in report["records"] if r["type"] == "diff"] == ["app/Dockerfile"]
    assert sorted(r["pass"] for r in report["records"] if r["type"] == "finding") == ["buildkit-syntax", "cache-mounts"]
    code, out, _ = run_main(capsys, ["--check", "--format", "sarif", *BUILD, "."])
    assert len(valid_sarif(out)["runs"][0]["results"]) == 2
    code, out, _ = run_main(capsys, ["--check", "--format", "github", *BUILD, "."])
    assert len(out.splitlines()) == 2
    code, out, err = run_main(capsys, ["--check", *BUILD, "."])
    assert len(out.splitlines()) == 2 and err == "2 fixes in 1 file\n"
    code, out, err = run_main(capsys, ["--apply", *BUILD, "."])
    assert err == "fixed app/Dockerfile\n2 fixes applied in 1 file\n"


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork on this platform")
def test_a_shared_file_is_told_once_whether_the_stacks_run_in_one_process_or_three(tmp_path: Path) -> None:
    """The parent hears each worker's stacks as it would hear its own: a fresh command line
    (which forks before it reads a Dockerfile) prints the same with --jobs 3 as with --jobs 1."""
    import subprocess
    import sys

    root = shared_dockerfile(tmp_path / "w", "one", "three", "two")
    runs = [subprocess.run([sys.executable, "-m", "e2i_fix", "--dry-run", *BUILD, "--jobs", jobs, "."], cwd=root,
                           capture_output=True, text=True, timeout=120) for jobs in ("1", "3")]
    assert runs[0].returncode == runs[1].returncode == 1
    assert (runs[0].stdout, runs[0].stderr) == (runs[1].stdout, runs[1].stderr)
    assert runs[0].stdout.count("--- app/Dockerfile\n") == 1 and runs[0].stderr.startswith("2 fixes in 1 file")


@pytest.mark.skipif(shutil.which("patch") is None, reason="patch(1) is not installed")
def test_what_a_later_stack_adds_to_a_shared_file_is_a_diff_from_the_earlier_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A test stack gives the shared Dockerfile its build fixes, a production stack later also
    its user: the preview, applied with patch(1), is what --apply writes, with the same counts."""
    import subprocess

    preview = shared_dockerfile(tmp_path / "preview", "e2e", "prod")
    applied = shared_dockerfile(tmp_path / "applied", "e2e", "prod")
    for folder in (preview, applied):
        (folder / "prod" / "compose.yaml").write_text("name: shop-production\n"
                                                     + (folder / "prod" / "compose.yaml").read_text())
    argv = ["--unsafe-fixes", "--select", "cache-mounts,buildkit-syntax,non-root-user", "."]
    monkeypatch.chdir(preview)
    code, diff, err = run_main(capsys, ["--dry-run", *argv])
    assert code == 1 and err.startswith("3 fixes in 1 file")
    assert diff.count("--- app/Dockerfile\n") == 2  # the first stack's, then what the second adds to it
    monkeypatch.chdir(applied)
    code, _, err = run_main(capsys, ["--apply", *argv])
    assert err.endswith("3 fixes applied in 1 file\n")
    proc = subprocess.run(["patch", "-s", "-p0"], cwd=preview, input=diff, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert (preview / "app" / "Dockerfile").read_text() == (applied / "app" / "Dockerfile").read_text()
    assert "USER app" in (applied / "app" / "Dockerfile").read_text()


def test_a_file_left_alone_is_a_note_in_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "compose.yaml").write_text(PLAIN)
    (tmp_path / "docker-compose-old.yml").write_text("services:\n  worker:\n    environment: [A=1]\n")
    monkeypatch.chdir(tmp_path)
    note = "left alone: service 'worker' has no image, build or extends"
    code, out, _ = run_main(capsys, ["--dry-run", "--format", "json", "--select", "logging", "."])
    (rec,) = [r for r in json.loads(out)["records"] if r["type"] == "finding" and r["pass"] == "input"]
    assert rec["info"] and rec["message"].startswith(note) and rec["path"] == "docker-compose-old.yml"
    assert json.loads(out)["summary"]["findings"] == 0
    code, out, _ = run_main(capsys, ["--check", "--format", "github", "--select", "logging", "."])
    (notice,) = [line for line in out.splitlines() if line.startswith("::notice ")]
    assert notice.startswith("::notice file=docker-compose-old.yml,title=e2i-fix [input]::" + note)
    code, out, _ = run_main(capsys, ["--check", "--format", "sarif", "--select", "logging", "."])
    run = valid_sarif(out)["runs"][0]
    (n,) = run["invocations"][0]["toolExecutionNotifications"]
    assert n["level"] == "note" and n["message"]["text"].startswith("[input] " + note)
    assert run["invocations"][0]["executionSuccessful"] is True
    assert all(r["ruleId"] != "input" for r in run["results"])
    code, out, _ = run_main(capsys, ["--check", "--select", "logging", "."])
    assert f"docker-compose-old.yml: [input] {note}" in out
    code, out, _ = run_main(capsys, ["--check", "--statistics", "--select", "logging", "."])
    assert "input" not in out and out.startswith("    2\tlogging\t[*]")


def test_statistics_say_whether_the_fixes_were_safe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`[*]` where safe fixes settle every finding of a pass; `[!]` where unsafe ones did
    (depends-on-healthy waiting on a health check an unsafe fix adds); `[-]` some; `[ ]` none."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: example/app:1\n    environment:\n      DATABASE_URL: postgres://u:p@db:5432/app\n"
        "    depends_on: [db]\n  db:\n    image: postgres:16\n")
    argv = ["--check", "--statistics", "--select", "depends-on-healthy,logging,deploy-limits", str(tmp_path)]

    def marks(out: str) -> dict[str, str]:
        return {line.split("\t")[1].strip(): line.split("\t")[2][:3] for line in out.splitlines()}

    # The wait for db and db's probe are unsafe fixes; app's limits are not sourced (no fix).
    assert marks(run_main(capsys, ["--unsafe-fixes", *argv])[1]) == {
        "depends-on-healthy": "[!]", "logging": "[*]", "deploy-limits": "[-]"}
    assert marks(run_main(capsys, argv)[1]) == {"depends-on-healthy": "[ ]", "logging": "[*]", "deploy-limits": "[-]"}
