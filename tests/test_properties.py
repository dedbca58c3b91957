"""Properties of whole runs on generated stacks: the tool never crashes, a dry run writes
nothing, `--apply` is idempotent, the result parses, the file's conventions (BOM, CRLF, final
newline) and every comment survive, and the meaning changes only where the passes say.

Stacks are written as text, not dumped, so that the styles vary the way hand-written files
do: indentation 2 or 4, sequences indented or not, quoting, list or map environments, short
or long `depends_on`, full-line and trailing comments, blank lines, anchors with merge keys,
existing logging (complete, partial, another driver, shared through an alias) and deploy
blocks, flow-style services.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import io
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e2i_fix import model
from e2i_fix._main import main
from e2i_fix.passes import registry

# What each pass may change in the normalised model. A pass that is not listed here is left
# out of the meaning check (it still runs in `test_every_pass_is_harmless`); list it with its
# paths to bring it in. `*` matches one key; a trailing `x-*` matches top-level extensions.
DECLARED: dict[str, list[tuple[str, ...]]] = {
    "logging": [("services", "*", "logging"), ("x-*",)],
    # A stack that writes `mem_limit` gets its limits that way (the stack's convention).
    "deploy-limits": [("services", "*", "deploy"), ("services", "*", "mem_limit"), ("services", "*", "cpus"),
                      ("services", "*", "mem_reservation"), ("x-*",)],
    "tmpfs-size": [("services", "*", "tmpfs"), ("x-*",)],
}
# Passes whose edits only insert whole lines (tmpfs-size rewrites tmpfs entries, and the
# generator writes none).
INSERT_ONLY = {"logging", "deploy-limits", "tmpfs-size"}

_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"}
NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,9}", fullmatch=True).filter(lambda s: s not in _RESERVED)
IMAGES = st.sampled_from([
    "nginx:1.27", "redis:7-alpine", "postgres:16", "python:3.12-slim", "node:20",
    "ghcr.io/acme/api:v1.2.3", "bitnami/redis", "falkordb/falkordb:latest", "myapp",
    "registry.local:5000/team/svc@sha256:" + "a" * 64,
])
ENV_KEYS = st.from_regex(r"[A-Z][A-Z0-9_]{0,11}", fullmatch=True)
ENV_VALUES = st.sampled_from([
    "value", "1", "8080", "true", "", "http://api:8000/v1", "a b c", "with'quote", "postgres://u:p@db/x", "${HOME}",
])
WORDS = st.from_regex(r"[A-Za-z0-9 ,.()_\u00e9\u2615-]{0,30}", fullmatch=True)


@dataclass(frozen=True)
class Style:
    indent: int  # mapping indent
    seq: int  # dash column minus parent key column
    quote: str  # '', "'" or '"' for strings that may be plain
    newline: str
    bom: bool
    final_newline: bool


class Text:
    """Lines of a YAML document under construction, with where comments may go."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.commentable: list[bool] = []  # a trailing comment may follow this line
        self.breakable: list[bool] = []  # a full-line comment or blank line may follow it

    def add(self, line: str, trailing: bool = True, after: bool = True) -> None:
        self.lines.append(line)
        self.commentable.append(trailing)
        self.breakable.append(after)


def q(s: str, style: Style, must: bool = False) -> str:
    """`s` as a YAML scalar in the chosen quote style (quoted anyway when `must`)."""
    quote = style.quote or ('"' if must else "")
    if not quote:
        return s
    if quote == "'":
        return "'" + s.replace("'", "''") + "'"
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _needs_quotes(v: str) -> bool:
    return v == "" or v != v.strip() or any(c in v for c in ":#'\"{}[],&*!|>%@`") or v.lower() in _RESERVED \
        or v.replace(".", "", 1).isdigit()


@st.composite
def stacks(draw: st.DrawFn) -> tuple[bytes, Style]:
    indent = draw(st.sampled_from([2, 4]))
    style = Style(
        indent=indent,
        seq=draw(st.sampled_from(sorted({0, 2, indent}))),
        quote=draw(st.sampled_from(["", "'", '"'])),
        newline=draw(st.sampled_from(["\n", "\r\n"])),
        bom=draw(st.booleans()),
        final_newline=draw(st.booleans()),
    )
    i = " " * style.indent
    names = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
    t = Text()
    if draw(st.integers(0, 4)) == 0:
        t.add("---", trailing=False)
    if draw(st.booleans()):
        t.add("# " + draw(WORDS).strip(), trailing=False)
    if draw(st.integers(0, 3)) == 0:
        t.add(f"version: {q('3.8', style, must=True)}")
    if draw(st.booleans()):
        t.add(f"name: {q('demo', style)}")

    common = draw(st.booleans())
    if common:
        t.add("x-common: &common")
        t.add(f"{i}restart: {q('unless-stopped', style)}")
        if draw(st.booleans()):
            t.add(f"{i}environment:")
            t.add(f"{i}{i}TZ: {q('UTC', style, must=False)}")
    shared_log = draw(st.sampled_from([None, "full", "partial", "local"]))
    if shared_log:
        t.add("x-logging: &log")
        t.add(f"{i}driver: {'local' if shared_log == 'local' else 'json-file'}")
        if shared_log != "local":
            t.add(f"{i}options:")
            if shared_log == "full":
                t.add(f'{i}{i}max-size: {q("5m", style, must=True)}')
            t.add(f'{i}{i}max-file: {q("2", style, must=True)}')
    if draw(st.booleans()):
        t.add("", trailing=False)

    t.add("services:")
    first_anchored = False
    for n, name in enumerate(names):
        if n and draw(st.booleans()):
            t.add("", trailing=False)
        if draw(st.integers(0, 9)) == 0:
            t.add(f"{i}{name}: {{image: {q(draw(IMAGES), style, must=True)}}}")  # flow style: not editable
            continue
        key = q(name, style) if draw(st.integers(0, 4)) == 0 else name
        # The first service may be an anchor that a later one merges (`<<: *first`).
        anchor = " &first" if n == 0 and len(names) > 1 and draw(st.booleans()) else ""
        first_anchored = first_anchored or bool(anchor)
        t.add(f"{i}{key}:{anchor}")
        p = i * 2
        blocks: list[list[tuple[str, bool]]] = []  # one per key, so keys can be shuffled
        blocks.append([(f"{p}image: {q(draw(IMAGES), style)}", True)])
        env = draw(st.dictionaries(ENV_KEYS, ENV_VALUES, max_size=3))
        env_form = draw(st.sampled_from(["list", "map", "flow"]))
        if env and env_form == "flow":
            pairs = ", ".join(f"{k}: {q(v, style, must=True)}" for k, v in env.items())
            blocks.append([(f"{p}environment: {{{pairs}}}", True)])
        elif env:
            block = [(f"{p}environment:", True)]
            if env_form == "list":
                dash = " " * (2 * style.indent + style.seq)
                for k, v in env.items():
                    item = f"{k}={v}"
                    block.append((f"{dash}- {q(item, style, must=_needs_quotes(v))}", True))
            else:
                for k, v in env.items():
                    block.append((f"{p}{i}{k}: {q(v, style, must=_needs_quotes(v)) if v else ''}", True))
            blocks.append(block)
        deps = [d for d in names[:n] if draw(st.booleans())]
        if deps:
            form = draw(st.sampled_from(["flow", "block", "long"]))
            if form == "flow":
                blocks.append([(f"{p}depends_on: [{', '.join(deps)}]", True)])
            elif form == "block":
                dash = " " * (2 * style.indent + style.seq)
                blocks.append([(f"{p}depends_on:", True)] + [(f"{dash}- {d}", True) for d in deps])
            else:
                block = [(f"{p}depends_on:", True)]
                for d in deps:
                    block += [(f"{p}{i}{d}:", True), (f"{p}{i}{i}condition: service_started", True)]
                blocks.append(block)
        if draw(st.booleans()):
            port = draw(st.sampled_from(["8080:80", "127.0.0.1:5432:5432", "3000", "9000-9001:9000-9001"]))
            quoted = q(port, style, must=True) if draw(st.booleans()) else port
            if draw(st.booleans()):
                blocks.append([(f"{p}ports: [{quoted}]", True)])
            else:
                dash = " " * (2 * style.indent + style.seq)
                blocks.append([(f"{p}ports:", True), (f"{dash}- {quoted}", True)])
        if draw(st.booleans()):
            blocks.append([(f'{p}command: ["serve", {q("--port=80", style, must=True)}]', True)])
        if draw(st.integers(0, 4)) == 0:
            # A folded block scalar: no comment may follow its header or its body lines.
            blocks.append([(f"{p}entrypoint: >", False), (f"{p}{i}sh -c", False), (f"{p}{i}'exec app'", False)])
        log = draw(st.sampled_from([None, None, "full", "partial", "local", "alias"]))
        if log == "alias" and shared_log:
            blocks.append([(f"{p}logging: *log", True)])
        elif log in ("full", "partial", "local"):
            block = [(f"{p}logging:", True), (f"{p}{i}driver: {'local' if log == 'local' else 'json-file'}", True)]
            if log == "full":
                block += [(f"{p}{i}options:", True), (f'{p}{i}{i}max-size: {q("20m", style, must=True)}', True)]
            blocks.append(block)
        if draw(st.integers(0, 5)) == 0:
            blocks.append([(f"{p}mem_limit: {draw(st.sampled_from(['512m', '2g', '1073741824']))}", True)])
        if draw(st.integers(0, 3)) == 0:
            blocks.append([(f"{p}deploy:", True), (f"{p}{i}resources:", True), (f"{p}{i}{i}limits:", True),
                           (f"{p}{i}{i}{i}memory: 256M", True)])
        blocks = draw(st.permutations(blocks))
        merges = [m for m, on in (("*common", common), ("*first", n > 0 and first_anchored)) if on and draw(st.booleans())]
        if merges:
            value = merges[0] if len(merges) == 1 else f"[{', '.join(merges)}]"
            blocks.insert(0, [(f"{p}<<: {value}", True)])
        for block in blocks:
            last = len(block) - 1
            for at, (line, ok) in enumerate(block):
                # Inside a folded scalar nothing may be inserted; after its last line, it may.
                t.add(line, trailing=ok, after=ok or at == last)

    # Comments: trailing ones on lines that allow them, full-line ones between lines.
    out: list[str] = []
    for line, trailing, after in zip(t.lines, t.commentable, t.breakable):
        if trailing and line and draw(st.integers(0, 5)) == 0:
            line += "  # " + draw(WORDS).strip()
        elif trailing and line and draw(st.integers(0, 9)) == 0:
            line += " " * draw(st.integers(1, 3))  # trailing whitespace
        out.append(line)
        if after and draw(st.integers(0, 6)) == 0:
            pad = " " * draw(st.sampled_from([0, style.indent, 2 * style.indent]))
            out.append(pad + "# " + draw(WORDS).strip())
    text = style.newline.join(out) + (style.newline if style.final_newline else "")
    raw = ("\ufeff" if style.bom else "") + text
    return raw.encode("utf-8"), style


# --- checks ---------------------------------------------------------------------------------


def run(args: list[str]) -> int:
    rc = main(args)
    assert rc in (0, 1), f"exit {rc} on a valid stack"
    return rc


def decoded(raw: bytes) -> str:
    return raw.decode("utf-8").removeprefix("\ufeff")


def meaning(raw: bytes) -> dict[str, Any]:
    doc = yaml.safe_load(decoded(raw))  # an independent reader: PyYAML's own constructor
    assert isinstance(doc, dict)
    return model.normalise_stack([doc])


def declared(path: tuple[str, ...], passes: list[str]) -> bool:
    for pid in passes:
        for pattern in DECLARED[pid]:
            if pattern == ("x-*",):
                if path and str(path[0]).startswith("x-"):
                    return True
            elif len(path) >= len(pattern) and all(p in ("*", k) for p, k in zip(pattern, path)):
                return True
    return False


def check_conventions(before: bytes, after: bytes) -> None:
    assert after.startswith(b"\xef\xbb\xbf") == before.startswith(b"\xef\xbb\xbf")
    assert after.endswith(b"\n") == before.endswith(b"\n")
    if b"\r\n" in before:
        assert after.count(b"\n") == after.count(b"\r\n"), "a bare LF in a CRLF file"
    else:
        assert b"\r" not in after


def check_comments(before: str, after: str, moved: bool = False) -> None:
    """Every comment line, and every trailing comment, is still there, in order. Where entries
    may move (env-anchors takes shared environment entries, their comments with them, into one
    anchored block: two services' identical entries become one), every comment is still said."""
    if moved:
        said = {line[line.index("#"):].strip() for line in after.splitlines() if "#" in line}
        lost = sorted({line[line.index("#"):].strip() for line in before.splitlines() if "#" in line} - said)
        assert not lost, f"comments lost: {lost}"
        return
    comments = [line for line in before.splitlines() if "#" in line]
    kept = [line for line in after.splitlines() if "#" in line]
    matcher = difflib.SequenceMatcher(None, comments, kept, autojunk=False)
    lost = [comments[i1:i2] for op, i1, i2, _, _ in matcher.get_opcodes() if op in ("delete", "replace")]
    assert not lost, f"comment lines lost or changed: {lost}"


def check_only_inserted(before: str, after: str) -> None:
    a = before.splitlines()
    b = after.splitlines()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    changed = [(op, a[i1:i2], b[j1:j2]) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op in ("delete", "replace")]
    assert not changed, f"input lines deleted or modified: {changed}"


def nothing_fixable(args: list[str]) -> bool:
    """`--check` lists no fixable finding (unfixable ones, e.g. on a flow-style service, stay)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run(["--check", "--format", "json", *args])
    return not any(r.get("fixable") for r in json.loads(out.getvalue())["records"])


def roundtrip(raw: bytes, select: list[str] | None, extra: Callable[[bytes, bytes], None] | None = None) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        f = folder / "compose.yaml"
        f.write_bytes(raw)
        sel = ["--select", ",".join(select)] if select is not None else []
        args = ["--no-config", *sel, str(folder)]

        run(args)  # dry run
        assert f.read_bytes() == raw and [p.name for p in folder.iterdir()] == ["compose.yaml"]

        rc = run(["--apply", *args])
        after = f.read_bytes()
        if rc == 0:
            assert after == raw
        check_conventions(raw, after)
        yaml.safe_load(decoded(after))
        check_comments(decoded(raw), decoded(after), moved=select is None or "env-anchors" in select)
        if extra:
            extra(raw, after)

        assert run(["--apply", *args]) == 0, "a second --apply still changed something"
        assert f.read_bytes() == after
        assert nothing_fixable(args), "--check still finds something to fix"
        assert sorted(p.name for p in folder.iterdir()) == ["compose.yaml"]


KNOWN = [pid for pid in registry() if pid in DECLARED]
SETTINGS = settings(max_examples=250, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(stacks())
def test_declared_passes_change_only_what_they_declare(stack: tuple[bytes, Style]) -> None:
    raw, _ = stack

    def meaning_and_lines(before: bytes, after: bytes) -> None:
        old, new = meaning(before), meaning(after)
        undeclared = [p for p in model.differences(old, new) if not declared(p, KNOWN)]
        assert not undeclared, f"meaning changed at {undeclared}"
        if set(KNOWN) <= INSERT_ONLY:
            check_only_inserted(decoded(before), decoded(after))

    roundtrip(raw, KNOWN, meaning_and_lines)


@settings(SETTINGS, max_examples=150)
@given(stacks())
def test_every_pass_is_harmless(stack: tuple[bytes, Style]) -> None:
    roundtrip(stack[0], None)


def test_the_generator_covers_the_styles() -> None:
    """The generator does produce what the properties are about (guards against a generator
    that silently stops varying)."""
    seen: set[str] = set()

    @settings(max_examples=300, database=None, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(stacks())
    def collect(stack: tuple[bytes, Style]) -> None:
        raw, style = stack
        text = decoded(raw)
        seen.update(k for k, hit in {
            "bom": style.bom, "crlf": style.newline == "\r\n", "no final newline": not style.final_newline,
            "indent 4": style.indent == 4, "dash at key column": style.seq == 0,
            "list env": "- " in text and "=" in text, "long depends_on": "condition: service_started" in text,
            "merge": "<<: *common" in text, "shared logging": "logging: *log" in text,
            "trailing comment": any("  # " in line for line in text.splitlines()),
            "full-line comment": any(line.lstrip().startswith("#") for line in text.splitlines()),
            "flow service": ": {image:" in text, "deploy": "deploy:" in text, "block scalar": ": >" in text,
            "service merge": "*first" in text, "flow env": "environment: {" in text, "mem_limit": "mem_limit:" in text,
            "document start": text.startswith("---"), "unicode": "\u2615" in text,
            "trailing space": any(line.endswith(" ") and "#" not in line for line in text.splitlines()),
        }.items() if hit)

    collect()
    assert seen == {"bom", "crlf", "no final newline", "indent 4", "dash at key column", "list env",
                    "long depends_on", "merge", "shared logging", "trailing comment", "full-line comment",
                    "flow service", "deploy", "block scalar", "service merge", "flow env", "mem_limit",
                    "document start", "unicode", "trailing space"}


def test_appending_after_a_final_block_scalar(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    raw = b"services:\n  a:\n    image: nginx:1.27\n    entrypoint: >\n      sh -c\n      'exec app'"
    f.write_bytes(raw)
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 1
    assert meaning(f.read_bytes())["services"]["a"]["entrypoint"] == "sh -c 'exec app'"


def test_two_passes_inserting_at_one_point(tmp_path: Path) -> None:
    """Regression found by the properties: `options:` for the logging and `deploy:` for the
    service go in at one point (the end of both); the deeper one must go first."""
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  b:\n    image: nginx:1.27\n    logging:\n      driver: json-file\n")
    if "deploy-limits" not in registry():
        pytest.skip("needs the deploy-limits pass")
    assert main(["--apply", "--no-config", "--unsafe-fixes", "--select", "logging,deploy-limits", str(tmp_path)]) == 1
    new = meaning(f.read_bytes())["services"]["b"]
    assert new["logging"]["options"]["max-size"] and new["deploy"]["resources"]["limits"]
