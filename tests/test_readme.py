"""The README says what is true: its passes table is the registry, its examples are valid."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from e2i_fix.config import Settings, apply_file
from e2i_fix.passes import registry

from conftest import ROOT

README = (ROOT / "README.md").read_text()
SETUP = [
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/e2i-fix --dry-run examples/e2i",
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q",
]


def section(title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.M | re.S)
    assert m, f"no section {title!r}"
    return m.group(1)


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.M | re.S)


def test_the_passes_table_and_the_registry_agree_both_ways() -> None:
    rows = {}
    for line in section("The passes").splitlines():
        m = re.match(r"^\| `([a-z0-9-]+)` \| ([a-z-]+) \| (.+) \|$", line)
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} has two rows"
            rows[m.group(1)] = m.group(2)
    passes = registry()
    assert set(rows) - set(passes) == set(), "rows for passes the registry does not have"
    assert set(passes) - set(rows) == set(), "passes without a row in the README"
    for pid, p in passes.items():
        assert rows[pid] == p.SAFETY.name.lower().replace("_", "-"), pid


def test_the_first_screen_is_the_two_set_up_commands() -> None:
    first = README[:README.index("\n## ")]
    assert blocks(first, "sh") == ["\n".join(SETUP) + "\n"]
    assert first.count("```") == 2


def test_the_configuration_example_is_accepted(tmp_path: Path) -> None:
    import tomllib

    (example,) = blocks(section("Configuration"), "toml")
    settings = apply_file(Settings(registry()), tmp_path / ".e2i-fix.toml", tomllib.loads(example))
    assert settings.select == {"deploy-limits", "logging"} and settings.exclude


def test_every_option_in_the_usage_table_exists() -> None:
    from e2i_fix._main import _parser

    flags = {o for a in _parser()._actions for o in a.option_strings}
    named = set(re.findall(r"^\| `(--[a-z-]+)", section("Usage"), re.M))
    named |= set(re.findall(r"^\| `--[a-z-]+[^|]*?(?: / |, )`(--[a-z-]+)", section("Usage"), re.M))
    assert named and named <= flags, named - flags
    assert {f for f in flags if f.startswith("--")} - {"--help"} <= named


def test_the_workflow_example_is_a_valid_workflow(tmp_path: Path) -> None:
    (workflow,) = blocks(section("GitHub Action"), "yaml")
    path = tmp_path / "e2i-fix.yml"
    path.write_text(workflow)
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import yaml

    uses = yaml.safe_load(workflow)["jobs"]["compose"]["steps"][1]
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert set(uses["with"]) <= set(action["inputs"])


def test_the_pre_commit_example_names_the_hooks() -> None:
    import yaml

    (config,) = blocks(section("pre-commit"), "yaml")
    hooks = {h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    named = {h["id"] for r in yaml.safe_load(config)["repos"] for h in r["hooks"]}
    assert named <= hooks
    assert all(f"`{h}`" in section("pre-commit") for h in hooks)


@pytest.mark.parametrize("heading", ["Install", "Usage", "The passes", "Configuration", "Suppressions",
                                     "pre-commit", "GitHub Action", "Fleet runs with all-repos", "Dependencies"])
def test_the_readme_has_its_sections(heading: str) -> None:
    assert f"\n## {heading}\n" in README
