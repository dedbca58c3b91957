"""env-anchors: fixture stacks, quoting, the example, the corpus; the meaning of every file and
every variant judged by the real Compose CLI (`config --format json --no-interpolate`)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from e2i_fix import project as proj, render
from e2i_fix._main import main
from e2i_fix.source import Source
from e2i_fix.yamldoc import Style, parse, to_value

from conftest import ROOT, compose_config, corpus_run, snapshot

ID = "env-anchors"
FIXTURES = Path(__file__).parent / "fixtures" / ID
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def apply(*args: str | Path) -> int:
    return main(["--apply", "--unsafe-fixes", "--select", ID, *map(str, args)])


ANY_SIZE = f"[{ID}]\nmin-lines = 0\n"  # for cases about how entries move, not whether it is worth it


def meaning(folder: Path, files: list[str], root: Path | None = None) -> tuple[int, Any]:
    """What Compose makes of `files`: its JSON model with the folder's path taken out and list
    environments read as mappings (Compose leaves them as written when it does not interpolate;
    `KEY=VALUE` is VALUE, a bare `KEY` is null, as in a mapping)."""
    root = root or folder
    proc = compose_config(folder, files, "--format", "json", "--no-interpolate")
    if proc.returncode != 0:
        return proc.returncode, proc.stderr.replace(str(root), "<root>").split("msg=")[-1]
    data = json.loads(proc.stdout.replace(json.dumps(str(root))[1:-1], "<root>"))
    for svc in (data.get("services") or {}).values():
        env = svc.get("environment")
        if isinstance(env, list):
            svc["environment"] = {k: v if eq else None for k, eq, v in (str(s).partition("=") for s in env)}
    return 0, data


def same_meaning(before: Path, after: Path, files: list[str], roots: tuple[Path, Path] | None = None) -> list[str]:
    """Compose reads `files` the same in both folders except for the new top-level `x-` keys
    (paths are compared below `roots`, the two copies); returns those keys."""
    code_b, old = meaning(before, files, roots[0] if roots else before.parent)
    code_a, new = meaning(after, files, roots[1] if roots else after.parent)
    assert code_a == code_b, (files, old, new)
    if code_b != 0:
        assert new == old
        return []
    added = sorted(set(new) - set(old))
    assert all(k.startswith("x-") for k in added), added
    for k in added:
        del new[k]
    assert new == old, files
    return added


def variants(folder: Path) -> list[list[str]]:
    stacks = [s for s in proj.discover([folder]) if isinstance(s, proj.Stack)]
    out = []
    for s in stacks:
        names = [p.name for p in s.compose]
        out += [[names[0]]] + [[names[0], n] for n in names[1:]]
    return out


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


@pytest.mark.parametrize("case", CASES)
def test_compose_reads_the_same(tmp_path: Path, case: str) -> None:
    # One folder name for both sides: Compose names the project after it.
    before = shutil.copytree(FIXTURES / case / "input", tmp_path / "before" / case)
    after = shutil.copytree(FIXTURES / case / "expected", tmp_path / "after" / case)
    for files in variants(before):
        same_meaning(before, after, files)


def env_of(folder: Path, service: str, files: list[str] | None = None) -> Any:
    files = files or ["compose.yaml"]
    return meaning(folder, files)[1]["services"][service]["environment"]


def test_values_stay_the_same_strings() -> None:
    expected = FIXTURES / "booleans-numbers" / "expected"
    env = env_of(expected, "a")
    assert all(isinstance(v, str) for v in env.values()), env
    assert env["T"] == "true" and env["OCT"] == "0755" and env["DOT"] == ".5" and env["NUL"] == "null"
    assert env["COLON"] == "a: b" and env["HASH"] == "a #b" and env["A"] == "${A}"


def test_bare_keys_take_the_shell_environment(tmp_path: Path) -> None:
    """`- KEY` and `KEY:` mean the same to Compose: the value comes from the shell."""
    expected = FIXTURES / "bare-keys" / "expected"
    proc = compose_config(expected, ["compose.yaml"], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["services"]["a"]["environment"]["AWS_REGION"] is None
    assert "AWS_REGION:\n" in (expected / "compose.yaml").read_text()


def test_override_keeps_its_blocks_and_an_override_tag_is_respected() -> None:
    expected = FIXTURES / "override" / "expected"
    assert (expected / "compose.override.yaml").read_bytes() == (FIXTURES / "override" / "input" / "compose.override.yaml").read_bytes()
    text = (expected / "compose.yaml").read_text()
    assert text.count("<<: *app-env") == 2  # api and worker; beat is replaced by `!override`
    assert "  beat:\n    image: ghcr.io/example/app:1.4.2\n    environment:\n      - A=1\n" in text
    assert env_of(expected, "beat", ["compose.yaml", "compose.override.yaml"]) == {"A": "1"}


def test_existing_merges_are_kept_behind_the_new_anchor() -> None:
    text = (FIXTURES / "existing-anchors" / "expected" / "compose.yaml").read_text()
    assert "<<: [*app-env, *base-env]\n" in text
    assert "<<: [*app-env, *base-env, *common-env]  # both\n" in text
    # The service's own HOST still wins over the one `*base-env` brings.
    assert env_of(FIXTURES / "existing-anchors" / "expected", "api")["HOST"] == "shared"


def test_example_api_and_worker_share_one_anchor(tmp_path: Path) -> None:
    work = tmp_path / "e2i"
    shutil.copytree(ROOT / "examples" / "e2i", work)
    assert apply(work) == 1
    text = (work / "docker-compose.yml").read_text()
    # api and worker build the project's own folder: the anchor is named after the project.
    assert text.count("x-e2i-env: &e2i-env\n") == 1
    assert text.count("      <<: *e2i-env\n") == 2
    block = text.split("x-e2i-env: &e2i-env\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(block) == 12 and "  REDIS_URL: redis://redis:6379/0" in block
    assert '      C_FORCE_ROOT: "1"\n' in text
    before = shutil.copytree(ROOT / "examples" / "e2i", tmp_path / "before" / "e2i")
    for files in variants(before):
        assert same_meaning(before, work, files) == ["x-e2i-env"]
    assert apply(work) == 0


# --- small cases ----------------------------------------------------------------------------

SHARED = "      - A=1\n      - B=2\n      - C=3\n"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"services:\n  a:\n    image: x\n    environment:\n{SHARED}", id="one service"),
        pytest.param(f"services:\n  a:\n    image: x\n    environment:\n{SHARED}  b:  # e2i-fix: ignore[{ID}]\n"
                     f"    image: x\n    environment:\n{SHARED}", id="opted out"),
        pytest.param(f"services:\n  a:\n    image: x\n    environment: &e\n{SHARED}  b:\n    image: x\n"
                     f"    environment:\n{SHARED}", id="anchored environment"),
        pytest.param(f"services:\n  a:\n    image: x\n    environment:\n{SHARED}      - A=2\n  b:\n    image: x\n"
                     f"    environment:\n{SHARED}", id="duplicate list keys"),
        pytest.param(f"services:\n  a:\n    image: x\n    environment:\n{SHARED}  b:\n    image: x\n"
                     f"    environment: !override\n{SHARED}", id="tagged"),
    ],
)
def test_noop(tmp_path: Path, text: str) -> None:
    (tmp_path / ".e2i-fix.toml").write_text(ANY_SIZE)  # left alone for what it is, not for its size
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    assert apply(tmp_path) == 0
    assert f.read_text() == text


def test_options(tmp_path: Path) -> None:
    env = "    environment:\n      - A=1\n      - B=2\n"
    text = f"services:\n  a:\n    image: x\n{env}  b:\n    image: y\n{env}  c:\n    image: z\n{env}"
    (tmp_path / "compose.yaml").write_text(text)
    assert apply(tmp_path) == 0  # two entries: below min-entries, and saves nothing
    (tmp_path / ".e2i-fix.toml").write_text(f'[{ID}]\nmin-entries = 2\nmin-lines = 0\n')
    assert apply(tmp_path) == 1
    # a, b and c are every service with an environment: `common` says who shares it.
    assert (tmp_path / "compose.yaml").read_text().startswith("x-common-env: &common-env\n  A: \"1\"\n  B: \"2\"\n")


def test_crlf_and_no_final_newline(tmp_path: Path) -> None:
    (tmp_path / ".e2i-fix.toml").write_text(ANY_SIZE)
    f = tmp_path / "compose.yaml"
    text = f"services:\n  a:\n    image: x\n    environment:\n{SHARED}  b:\n    image: x\n    environment:\n{SHARED}"
    f.write_bytes(text.rstrip("\n").replace("\n", "\r\n").encode())
    assert apply(tmp_path) == 1
    out = f.read_bytes()
    assert out.count(b"\n") == out.count(b"\r\n") and not out.endswith(b"\n")
    assert out.endswith(b"    environment:\r\n      <<: *x-env")  # both run image x
    assert apply(tmp_path) == 0


def test_many_services_many_groups(tmp_path: Path) -> None:
    """Groups of services with their own shared entries get an anchor each, named after who
    shares it; one run settles."""
    lines = ["services:"]
    for g in range(5):
        for r in ("api", "worker", "beat"):
            lines += [f"  team{g}-{r}:", "    image: x", "    environment:", f"      - DB=db-{g}", f"      - CACHE=cache-{g}",
                      f"      - QUEUE=q-{g}", f"      - BUCKET=b-{g}", f"      - REGION=r-{g}", f"      - OWNER=o-{g}",
                      "      - LOG=info", f"      - ROLE={r}"]
    (tmp_path / "compose.yaml").write_text("\n".join(lines) + "\n")
    assert apply(tmp_path) == 1
    text = (tmp_path / "compose.yaml").read_text()
    assert [f"x-team{g}-env: &team{g}-env" in text for g in range(5)] == [True] * 5
    assert text.count("<<: *team") == 15 and "common" not in text and "env-2" not in text
    assert apply(tmp_path) == 0


def test_names_say_who_shares_it_or_what_it_holds() -> None:
    """The API and the two celery services build ./backend and share its settings; the celery
    services and Flower share the broker's: `x-backend-env`, `x-celery-env`. The API key and
    JWT secret the frontend also holds stay where they are: two unrelated entries."""
    text = (FIXTURES / "names" / "expected" / "compose.yaml").read_text()
    assert text.startswith("x-backend-env: &backend-env\n  DATABASE_URL:")
    assert "\nx-celery-env: &celery-env\n  CELERY_BROKER_URL:" in text
    assert text.count("<<: [*backend-env, *celery-env]\n") == 2
    assert text.count("API_KEY: ${API_KEY}") == 2 and text.count("x-") == 2


def test_a_section_header_stays_with_the_entries_it_heads() -> None:
    """`# App` heads an entry that moves and one that stays: both places keep it. `# Database`
    and `# Common` go with their whole sections, the replica's own comment with the replica;
    no header is left above nothing."""
    text = (FIXTURES / "sections" / "expected" / "compose.yaml").read_text()
    anchor, services = text.split("\nservices:\n")
    assert anchor.splitlines()[1:4] == ["  # App", "  APP_NAME: shop", "  # Database"]
    assert "  # the read replica takes the reports\n  DB_REPLICA: db-replica\n  # Common\n" in anchor
    assert services.count("      <<: *shop-env\n      # App\n      APP_ROLE:") == 2
    assert "# Database" not in services and "# Common" not in services
    for block in services.split("environment:\n")[1:]:
        lines = [ln.strip() for ln in block.splitlines()]
        for a, b in zip(lines, lines[1:]):
            assert not (a.startswith("#") and (not b or b.startswith("#") or ":" not in b)), block


# --- quoting --------------------------------------------------------------------------------

TRICKY = ["true", "False", "yes", "No", "on", "OFF", "y", "n", "null", "Null", "~", "", "42", "-1", "+1", "0755",
          "0o17", "0x1F", "0b11", "1_000", "1e3", ".5", ".5e3", ".", ".inf", "-.Inf", ".NaN", "12:30", "1:20:30",
          "2001-12-14", "a: b", "a #b", "a:", "*x", "&x", "!x", "|x", ">x", "'x", '"x', "%x", "@x", "`x", "-x", "?x",
          "[x", "{x", ",x", "#x", " x", "x ", "<<", "=", "${VAR}", "${A:-x y}", "tab\there", "new\nline", "cr\rhere",
          "nel\x85", "ls\u2028", "bom\ufeff", "back\\slash", "é", "redis://redis:6379/0", "a,b", "a]b"]


@pytest.mark.parametrize("s", TRICKY)
@pytest.mark.parametrize("q", ['"', "'"])
def test_render_keeps_strings_strings(s: str, q: str) -> None:
    """A rendered string reads back as the same string in YAML 1.2 (Compose, and this tool's
    parser) and in YAML 1.1 (PyYAML's resolver)."""
    out = render.scalar(s, Style(quote=q))
    doc = f"k: {out}\n"
    assert yaml.safe_load(doc) == {"k": s}, out
    assert to_value(parse(Source(Path("x"), b"", doc, False, "\n"))) == {"k": s}, out


# --- the corpus -----------------------------------------------------------------------------


def test_corpus(tmp_path: Path) -> None:
    """Every variant of every stack means to Compose what it meant, the new `x-` keys aside,
    and a second run finds nothing."""
    run, extra = corpus_run(tmp_path, apply)
    assert run.changed
    changed = set(run.changed)
    judged = 0
    for folder, files in run.variants:
        rel = folder.relative_to(run.root)
        if any(str(rel / f) in changed for f in files):
            same_meaning(run.before_root / rel, folder, files, (run.before_root, run.root))
            judged += 1
    assert judged >= len(changed)
    assert apply(run.root, *extra) == 0
    assert snapshot(run.root) == run.after


# --- properties -----------------------------------------------------------------------------

POOL = [("DATABASE_URL", "postgresql://db/app"), ("REDIS_URL", "redis://cache:6379/0"), ("LOG_LEVEL", "info"),
        ("TZ", "UTC"), ("DEBUG", "false"), ("PORT", "8000"), ("CELERY_BROKER_URL", "redis://cache:6379/1"),
        ("CELERY_RESULT_BACKEND", "redis://cache:6379/2"), ("CELERY_TIMEZONE", "UTC"), ("SECRET_KEY", "${SECRET_KEY}"),
        ("EMPTY", ""), ("FROM_SHELL", None)]
HEADINGS = ["# App", "# Common", "# --- Redis ---", "# Celery"]
NOTES = ["# set to nginx", "# the broker and the cache share one Redis", "# see the docs"]


@st.composite
def shared_stacks(draw: st.DrawFn) -> str:
    """Services that share environment entries, in list or map form, with own comments,
    section headings, blank lines and trailing comments."""
    names = draw(st.lists(st.sampled_from(["api", "worker", "beat", "web", "celery-worker", "celery-beat"]),
                          min_size=2, max_size=5, unique=True))
    lines = ["services:"]
    for name in names:
        lines += [f"  {name}:", f"    image: {draw(st.sampled_from(['example/app:1', 'example/app:1', 'redis:7']))}",
                  "    environment:"]
        form = draw(st.sampled_from(["list", "map"]))
        for k, v in draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=8, unique=True)):
            if draw(st.integers(0, 5)) == 0:
                lines.append("")
            if draw(st.integers(0, 3)) == 0:
                lines.append("      " + draw(st.sampled_from(HEADINGS + NOTES)))
            trail = "  # " + draw(st.sampled_from(["why", "ask ops"])) if draw(st.integers(0, 6)) == 0 else ""
            if form == "list":
                lines.append(f"      - {k}" + ("" if v is None else f"={v}") + trail)
            else:
                lines.append(f"      {k}:" + ("" if v is None else f' "{v}"') + trail)
    return "\n".join(lines) + "\n"


def environments(text: str) -> dict[str, dict[str, Any]]:
    """Each service's environment as Compose reads it (merge keys resolved, lists as mappings)."""
    out = {}
    for name, svc in yaml.safe_load(text)["services"].items():
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = {k: (v if eq else None) for k, eq, v in (s.partition("=") for s in env)}
        out[name] = {k: (None if v is None else str(v)) for k, v in env.items()}
    return out


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(shared_stacks())
def test_moving_entries_keeps_meaning_and_every_comment(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        (folder / ".e2i-fix.toml").write_text(f"[{ID}]\nmin-lines = 0\nmin-entries = 2\n")
        f = folder / "compose.yaml"
        f.write_text(text)
        with contextlib.redirect_stderr(io.StringIO()):
            assert apply(folder) in (0, 1)
            after = f.read_text()
            assert apply(folder) == 0, "a second run changed something"
    assert environments(after) == environments(text)
    said = {ln.strip() for ln in after.splitlines() if ln.strip().startswith("#")}
    said |= {ln[ln.index("#"):].strip() for ln in after.splitlines() if "  #" in ln}
    assert {ln.strip() for ln in text.splitlines() if ln.strip().startswith("#")} <= said
    lines = after.splitlines()
    for n, line in enumerate(lines):
        if line.strip() in HEADINGS:  # a heading is followed by what it heads
            nxt = next((x for x in lines[n + 1 :] if not x.strip().startswith("#")), "")
            assert nxt.strip() and len(nxt) - len(nxt.lstrip()) == len(line) - len(line.lstrip()), (line, after)
    for key in re.findall(r"^x-([^:]+):", after, re.M):
        assert key.endswith("-env") and not re.search(r"-\d+-env$", key), key
