"""The engine: splicing, overlaps, shared edits, the fixed point, and passes that misbehave."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from e2i_fix import engine, render, yamledit
from e2i_fix.config import Settings
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, Stack, discover
from e2i_fix.verify import verify


def make_pass(pass_id: str, fn: Callable[[Project], Iterator[Fix]]) -> Any:
    return SimpleNamespace(ID=pass_id, SUMMARY="test", DEFAULTS={}, SAFETY=Safety.SAFE,
                           run=lambda project, options: fn(project))


def run(tmp_path: Path, text: str, *passes: Any, unsafe: bool = False) -> engine.Result:
    f = tmp_path / "compose.yaml"
    f.write_bytes(text.encode())
    settings = Settings({p.ID: p for p in passes}, unsafe=unsafe)
    return engine.run(Stack(tmp_path, [f]), list(passes), settings, verify)


BASE = "services:\n  a:\n    image: x\n  b:\n    image: y\n"


def add_key(key: str, value: object, services: tuple[str, ...] = ("a", "b"), pass_id: str = "p",
            safety: Safety = Safety.SAFE) -> Any:
    def fn(project: Project) -> Iterator[Fix]:
        for name in services:
            svc = project.services[name]
            if key in svc.config or svc.home is None:
                continue
            edit = yamledit.append_entry(svc.home.doc, svc.home.node, key, value, svc.home.key.end_mark.index)
            assert edit is not None
            yield Fix(pass_id, f"add {key}", svc.home.doc.path, 1, 1, (edit,), safety, (("services", name, key),))
    return make_pass(pass_id, fn)


def rewrite_image(pass_id: str, new: str, declared: tuple[str, ...]) -> Any:
    """A pass that rewrites service a's image `x` to `new`, declaring `declared` as its change."""
    def fn(project: Project) -> Iterator[Fix]:
        home = project.services["a"].home
        assert home is not None
        got = home.get("image")
        assert got is not None
        node = got[1]
        if node.value == "x":
            e = Edit(home.doc.path, node.start_mark.index, node.end_mark.index, new)
            yield Fix(pass_id, f"image becomes {new}", home.doc.path, edits=(e,), changes=(declared,))
    return make_pass(pass_id, fn)


@pytest.mark.parametrize(
    ("text", "edits", "expected"),
    [
        pytest.param("abcdef", [(1, 3, "X")], "aXdef", id="replace"),
        pytest.param("abcdef", [(2, 2, "X"), (2, 2, "Y")], "abXYcdef", id="insertions at one point keep order"),
        pytest.param("abcdef", [(0, 1, ""), (5, 6, "Z")], "bcdeZ", id="back to front"),
        pytest.param("a\r\nb\r\n", [(3, 3, "x\ny\n")], "a\r\nx\r\ny\r\nb\r\n", id="newline style of the file"),
    ],
)
def test_splice(text: str, edits: list[tuple[int, int, str]], expected: str) -> None:
    nl = "\r\n" if "\r\n" in text else "\n"
    got = engine.splice(text, [(i, Edit(Path("f"), s, e, t)) for i, (s, e, t) in enumerate(edits)], nl)
    assert got == expected


def test_applies_a_pass_and_reaches_a_fixed_point(tmp_path: Path) -> None:
    result = run(tmp_path, BASE, add_key("restart", "always"))
    assert not result.problems
    assert result.texts[tmp_path / "compose.yaml"] == (
        "services:\n  a:\n    image: x\n    restart: always\n  b:\n    image: y\n    restart: always\n"
    )
    assert [f.message for f in result.applied] == ["add restart", "add restart"]


def test_overlapping_fix_waits_for_the_next_round(tmp_path: Path) -> None:
    # Both passes insert at the end of service a; the second replaces a span the first touches.
    def wide(project: Project) -> Iterator[Fix]:
        doc = project.docs[0]
        if "image: x\n" in doc.text:  # replaces the whole line holding the image
            start = doc.text.index("    image: x")
            yield Fix("w", "wide", doc.path, edits=(Edit(doc.path, start, start + 12, "    image: x"),),
                      changes=(("services", "a", "image"),))

    result = run(tmp_path, BASE, rewrite_image("q", "x2", ("services", "a", "image")), make_pass("w", wide))
    assert not result.problems
    assert result.texts[tmp_path / "compose.yaml"].startswith("services:\n  a:\n    image: x2\n")
    assert [f.pass_id for f in result.applied] == ["q"]  # w's edit overlapped; next round it had nothing to do


def test_shared_edit_is_applied_once(tmp_path: Path) -> None:
    def fn(project: Project) -> Iterator[Fix]:
        doc = project.docs[0]
        if "x-shared" in doc.value:
            return
        block = yamledit.top_level_block(doc, "x-shared", render.Anchored("s", {"k": "v"}))
        for name in ("a", "b"):
            home = project.services[name].home
            ref = yamledit.append_entry(doc, home.node, "labels", render.Alias("s"), home.key.end_mark.index)  # type: ignore[union-attr]
            yield Fix("s", "share", doc.path, edits=(ref, block),  # type: ignore[arg-type]
                      changes=(("services", name, "labels"), ("x-shared",)))

    result = run(tmp_path, BASE, make_pass("s", fn))
    assert not result.problems, result.problems
    out = result.texts[tmp_path / "compose.yaml"]
    assert out.count("x-shared: &s") == 1
    assert out.count("labels: *s") == 2


def test_a_pass_that_breaks_parsing_is_named_and_dropped(tmp_path: Path) -> None:
    def broken(project: Project) -> Iterator[Fix]:
        doc = project.docs[0]
        yield Fix("broken", "oops", doc.path, edits=(Edit(doc.path, 0, 0, "{{{\n"),))

    result = run(tmp_path, BASE, add_key("restart", "always"), make_pass("broken", broken))
    assert any("[broken] produced invalid YAML" in p.message for p in result.problems)
    # The well-behaved pass still did its work.
    assert "restart: always" in result.texts[tmp_path / "compose.yaml"]
    assert "{{{" not in result.texts[tmp_path / "compose.yaml"]


def test_a_pass_that_never_settles_is_reported_and_nothing_changes(tmp_path: Path) -> None:
    def forever(project: Project) -> Iterator[Fix]:
        doc = project.docs[0]
        end = len(doc.text)
        yield Fix("loop", "again", doc.path, edits=(Edit(doc.path, end, end, "# more\n"),))

    result = run(tmp_path, BASE, make_pass("loop", forever))
    assert any("did not settle" in p.message and "loop" in p.message for p in result.problems)
    assert not result.changed()


def test_undeclared_change_fails_verification(tmp_path: Path) -> None:
    # It rewrites the image but says it only touches logging: dropped, with a finding that says
    # why; the stack is no error, and the other pass's fixes stay.
    result = run(tmp_path, BASE, rewrite_image("liar", "evil", ("services", "a", "logging")), add_key("restart", "always"))
    assert not result.problems
    dropped = [f for f in result.findings if f.pass_id == "liar"]
    assert [f.message for f in dropped] == [
        "image becomes evil (not applied: with compose.yaml, services.a.image changed, which no fix declared)"]
    assert [f.pass_id for f in result.applied] == ["p", "p"]
    assert "evil" not in result.texts[tmp_path / "compose.yaml"]
    assert result.texts[tmp_path / "compose.yaml"].count("restart: always") == 2


def test_an_undeclared_change_blames_the_fix_that_changes_that_key_first(tmp_path: Path) -> None:
    """A change no fix declared (an edit of a block that other services merge reaches further
    than its fix said) is put first on the fixes that change the same key, not on the innocent
    fixes of the same service: those stay."""
    result = run(tmp_path, BASE, rewrite_image("liar", "evil", ("services", "b", "image")), add_key("restart", "always"))
    assert [f.message for f in result.findings if f.pass_id == "liar"] == [
        "image becomes evil (not applied: with compose.yaml, services.a.image changed, which no fix declared)"]
    assert result.texts[tmp_path / "compose.yaml"].count("restart: always") == 2


def test_unsafe_and_display_only_fixes(tmp_path: Path) -> None:
    unsafe = add_key("restart", "always", pass_id="u", safety=Safety.UNSAFE)
    result = run(tmp_path, BASE, unsafe)
    assert not result.changed() and len(result.findings) == 2
    result = run(tmp_path, BASE, unsafe, unsafe=True)
    assert result.changed()
    shown = add_key("restart", "always", pass_id="d", safety=Safety.DISPLAY_ONLY)
    result = run(tmp_path, BASE, shown, unsafe=True)
    assert not result.changed() and len(result.findings) == 2


def test_edits_to_context_files_are_dropped(tmp_path: Path) -> None:
    base = tmp_path / "compose.yaml"
    base.write_text(BASE)
    over = tmp_path / "compose.override.yaml"
    over.write_text("services:\n  c:\n    image: z\n")
    p = add_key("restart", "always", services=("a", "c"))
    result = engine.run(Stack(tmp_path, [base, over], {base}), [p], Settings({"p": p}), verify)
    assert not result.problems
    assert result.texts[base] == BASE
    assert result.texts[over] == "services:\n  c:\n    image: z\n    restart: always\n"


def test_locations_of_later_rounds_map_back_to_the_original(tmp_path: Path) -> None:
    # Round 1 adds two lines above service b; the finding, proposed on the fixed text, names b's
    # key there (line 6) and must be reported where b is in the file as read (line 4).
    def report_b(project: Project) -> Iterator[Fix]:
        home = project.services["b"].home
        assert home is not None
        line, col = home.key.start_mark.line + 1, home.key.start_mark.column + 1
        yield Fix("r", "about b", home.doc.path, line, col, safety=Safety.DISPLAY_ONLY)

    result = run(tmp_path, BASE, add_key("healthcheck", {"test": "true"}, services=("a",)), make_pass("r", report_b))
    (finding,) = result.findings
    assert (finding.line, finding.col) == (6, 3)
    assert result.original_location(finding) == (4, 3)
    (applied,) = result.applied
    assert result.original_location(applied) == (applied.line, applied.col)


def test_a_pass_runs_again_only_when_a_key_it_reads_changed(tmp_path: Path) -> None:
    calls: dict[str, int] = {"reads-restart": 0, "reads-image": 0}

    def counting(pass_id: str, reads: set[str]) -> Any:
        def fn(project: Project) -> Iterator[Fix]:
            calls[pass_id] += 1
            return iter(())
        p = make_pass(pass_id, fn)
        p.READS = frozenset(reads)
        return p

    writer = add_key("restart", "always", pass_id="writer")  # no READS: reads everything
    result = run(tmp_path, BASE, writer, counting("reads-restart", {"restart"}), counting("reads-image", {"image"}))
    assert not result.problems
    # Round 1: all three run. Round 2: the writer (it reads everything) and the pass that reads
    # `restart`, which the writer changed; the pass reading only `image` is not asked again.
    assert calls == {"reads-restart": 2, "reads-image": 1}


def test_a_bug_in_verification_writes_nothing_and_says_so(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(BASE)
    p = add_key("restart", "always")

    def broken(result: engine.Result) -> list[Any]:
        raise KeyError("oops")

    result = engine.run(Stack(tmp_path, [f]), [p], Settings({"p": p}), broken)
    assert [x.message for x in result.problems] == ["internal error in verification: KeyError: 'oops'; nothing written"]
    assert not result.changed() and not result.applied


def test_a_failure_no_single_drop_clears_drops_every_suspect(tmp_path: Path) -> None:
    """A failure that stays whichever single fix is dropped: the suspects go, then the fixes of
    the variant's files, until it clears; each says why, and the stack is no error."""
    from e2i_fix.verify import Failure

    f = tmp_path / "compose.yaml"
    f.write_text(BASE)
    p = add_key("restart", "always")

    def always(result: engine.Result) -> list[Failure]:
        return [Failure("compose.yaml", (f,), ("services", "a", "restart"), "is wrong")]

    result = engine.run(Stack(tmp_path, [f]), [p], Settings({"p": p}), always)
    assert not result.problems and not result.changed()
    assert [x.message for x in result.findings] == [
        "add restart (not applied: with compose.yaml, services.a.restart is wrong)"] * 2


def test_verification_gives_up_after_a_few_runs_and_writes_nothing(tmp_path: Path) -> None:
    """A pass that proposes another fix each time it runs cannot be narrowed down: after a
    few runs the stack is left as it was, with a finding; still no error."""
    from e2i_fix.verify import Failure

    f = tmp_path / "compose.yaml"
    f.write_text(BASE)
    runs = []

    def restless(project: Project) -> Iterator[Fix]:
        runs.append(1)
        home = project.services["a"].home
        assert home is not None
        edit = yamledit.append_entry(home.doc, home.node, "restart", f"n{len(runs)}", home.key.end_mark.index)
        if "restart" not in project.services["a"].config and edit is not None:
            yield Fix("r", f"attempt {len(runs)}", home.doc.path, 1, 1, (edit,), changes=(("services", "a", "restart"),))

    def always(result: engine.Result) -> list[Failure]:
        return [Failure("compose.yaml", (f,), ("services", "a", "restart"), "is wrong")]

    p = make_pass("r", restless)
    result = engine.run(Stack(tmp_path, [f]), [p], Settings({"r": p}), always)
    assert not result.problems and not result.changed() and not result.applied
    assert [x.message for x in result.findings if x.pass_id == "verify"] == [
        "verification failed: with compose.yaml, services.a.restart is wrong; nothing written"]
    assert len(runs) <= 2 * engine.MAX_RUNS  # each run of the engine runs the pass once or twice


def test_verification_leaves_alone_the_variants_whose_files_did_not_change(tmp_path: Path) -> None:
    # The dev file is an override that also runs alone: an edit of the base does not reach it
    # alone, and that model is not merged again to be checked. The others are, and caught.
    (tmp_path / "compose.yaml").write_text(BASE)
    (tmp_path / "docker-compose.dev.yml").write_text("services:\n  dev:\n    image: z\n")
    (stack,) = [s for s in discover([tmp_path]) if isinstance(s, Stack)]
    liar = rewrite_image("liar", "evil", ("services", "a", "logging"))
    merged: list[str] = []
    real = Project.model

    def model(self: Project, files: tuple[int, ...]) -> dict[str, Any]:
        merged.append(self.variant_name(files))
        return real(self, files)

    ok = add_key("restart", "always")
    settings = Settings({p.ID: p for p in (ok, liar)})
    result = engine.run(stack, [ok], settings)  # the passes' own reading, before verification
    assert [v.kind for v in result.before.variants()] == ["base", "override", "alone"]
    merged.clear()
    Project.model = model  # type: ignore[method-assign]
    try:
        failures = verify(result)
        assert failures == []
        assert "docker-compose.dev.yml" not in merged
        assert merged.count("compose.yaml") == merged.count("compose.yaml + docker-compose.dev.yml") == 2
        got = engine.run(stack, [ok, liar], settings, verify)
    finally:
        Project.model = real  # type: ignore[method-assign]
    assert [f.message for f in got.findings if f.pass_id == "liar"] == [
        "image becomes evil (not applied: with compose.yaml, services.a.image changed, which no fix declared)"]


def test_one_finding_for_what_several_services_of_a_file_share(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Services the tool has no facts for: one finding per pass and file that names them, at
    the first one; a service with a reason of its own keeps its own finding."""
    from e2i_fix._main import main

    (tmp_path / "compose.yaml").write_text(
        "services:\n  a:\n    image: acme/a:1\n  b:\n    image: acme/b:1\n  c:\n    image: acme/c:1\n"
        "  d:\n    image: acme/d:1\n    privileged: true\n")
    assert main(["--check", "--no-config", "--select", "cap-drop,read-only-root", str(tmp_path)]) == 1
    lines = [x for x in capsys.readouterr().out.splitlines() if "[cap-drop]" in x]
    grouped = [x for x in lines if "3 services ('a', 'b', 'c') keep Docker's default capabilities; what their "
               "images need is not known here" in x]
    assert len(grouped) == 1 and grouped[0].startswith(f"{tmp_path / 'compose.yaml'}:2:3:")
    assert not any("service 'a'" in x or "service 'b'" in x for x in lines)


def test_a_grouped_finding_is_placed_in_the_file_as_read(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """regression: the one finding of several services is a new value; it must still be mapped
    back from the round that proposed it to the file as read (other fixes moved its lines)."""
    from e2i_fix._main import main

    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  postgres:\n    image: postgres:16-alpine\n    restart: always\n    volumes:\n"
        "      - ./pgdata:/var/lib/postgresql/data\n  app:\n    environment:\n"
        "      - DATABASE_URL=postgresql://postgres:${POSTGRES_PASSWORD}@postgres:5432/postgres\n"
        "    restart: always\n    image: ghcr.io/linkwarden/linkwarden:latest\n    ports:\n      - 3000:3000\n    volumes:\n"
        "      - ./data:/data/data\n    depends_on:\n      - postgres\n      - search\n"
        "  search:\n    image: getmeili/meilisearch:v1.13.3\n    restart: always\n    volumes:\n      - ./meili_data:/meili_data\n")
    (tmp_path / "docker-compose.dev.yml").write_text("services:\n  app:\n    build: .\n")
    (tmp_path / "Dockerfile").write_text('FROM node:20\nCMD ["node", "server.js"]\n')
    assert main(["--check", "--no-config", "--unsafe-fixes", str(tmp_path)]) == 1
    lines = [x for x in capsys.readouterr().out.splitlines() if "2 services ('app', 'search')" in x]
    assert lines and all(x.startswith(f"{tmp_path / 'docker-compose.yml'}:7:3:") for x in lines), lines
