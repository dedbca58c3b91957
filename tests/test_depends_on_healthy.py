"""depends-on-healthy: fixture stacks (cross-file ones among them), inline cases, the example
stack, and the corpus judged by the real Compose CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from e2i_fix import dockerfile, project as proj, source
from e2i_fix._main import main

from conftest import compose_config, corpus_run, corpus_stacks
from startup_helpers import FIXTURES, cases, config, findings, run_fixture

ID = "depends-on-healthy"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "e2i"


@pytest.mark.parametrize("case", cases(ID))
def test_fixture(tmp_path: Path, case: str) -> None:
    run_fixture(tmp_path, ID, case)


def conditions(folder: Path, files: list[str], service: str) -> dict[str, str]:
    deps = config(folder, files)["services"][service].get("depends_on") or {}
    return {k: v["condition"] for k, v in deps.items()}


@pytest.mark.parametrize(
    ("case", "files", "service", "expected"),
    [
        pytest.param("dockerfile-healthcheck", ["compose.yaml"], "worker",
                     {"api": "service_healthy", "cache": "service_started"}, id="health check only in the Dockerfile"),
        pytest.param("include-healthcheck", ["compose.yaml"], "api",
                     {"db": "service_healthy", "cache": "service_started", "search": "service_healthy",
                      "migrate": "service_completed_successfully"},
                     id="health checks only in an included file and its Dockerfile; a one-shot job there"),
        pytest.param("include-healthcheck", ["compose.yaml"], "migrate", {"db": "service_healthy"},
                     id="fixed in the included file that defines it"),
        pytest.param("override-healthcheck", ["compose.yaml", "compose.override.yaml"], "worker",
                     {"api": "service_started"}, id="health check only in an override: the base cannot wait"),
        pytest.param("override-healthcheck", ["compose.yaml", "compose.override.yaml"], "scheduler",
                     {"api": "service_healthy"}, id="health check only in an override: the wait goes there"),
        pytest.param("override-healthcheck", ["compose.yaml"], "scheduler",
                     {"api": "service_started"}, id="and the base alone is as it was"),
        pytest.param("disabled-override", ["compose.yaml"], "worker",
                     {"api": "service_started", "db": "service_started"}, id="disabled in an override"),
        pytest.param("one-shot-migration", ["compose.yaml"], "api",
                     {"db": "service_healthy", "migrate": "service_completed_successfully",
                      "create-buckets": "service_completed_successfully"}, id="one-shot jobs"),
        pytest.param("profiles", ["compose.yaml"], "web",
                     {"debug-proxy": "service_healthy", "cache": "service_healthy"}, id="profile-only target, not required"),
        pytest.param("profiles", ["compose.yaml"], "tools",
                     {"debug-proxy": "service_healthy", "cache": "service_healthy", "metrics": "service_started"},
                     id="same profile waits, another profile is kept"),
        pytest.param("known-image-probe", ["compose.yaml"], "app",
                     {"redis": "service_healthy", "postgres": "service_healthy", "legacy-mongo": "service_started"},
                     id="known images get their probe, then are waited for"),
        pytest.param("long-form", ["compose.yaml"], "a", {"db": "service_healthy"}, id="anchored block"),
        pytest.param("long-form", ["compose.yaml"], "c", {"db": "service_healthy", "queue": "service_healthy"},
                     id="entries without condition"),
        pytest.param("long-form", ["compose.yaml"], "e", {"db": "service_healthy", "queue": "service_healthy"},
                     id="flow list"),
    ],
)
def test_compose_reads_the_conditions(case: str, files: list[str], service: str, expected: dict[str, str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPOSE_PROFILES", "debug,metrics")
    assert conditions(FIXTURES / ID / case / "expected", files, service) == expected


def test_required_and_restart_are_kept() -> None:
    deps = config(FIXTURES / ID / "one-shot-migration" / "expected", ["compose.yaml"])["services"]["api"]["depends_on"]
    assert deps["db"]["restart"] is True and deps["migrate"]["required"] is False
    over = config(FIXTURES / ID / "override-healthcheck" / "expected", ["compose.yaml", "compose.override.yaml"])
    assert over["services"]["scheduler"]["depends_on"]["api"]["restart"] is True
    long_form = config(FIXTURES / ID / "long-form" / "expected", ["compose.yaml"])["services"]["c"]["depends_on"]
    assert long_form["db"]["required"] is False


def test_comments_and_order_kept() -> None:
    text = (FIXTURES / ID / "dockerfile-healthcheck" / "expected" / "compose.yaml").read_text()
    assert ("      # The API must answer before tasks are queued.\n      api:  # HTTP\n"
            "        condition: service_healthy\n      cache:\n        condition: service_started\n") in text
    flow = (FIXTURES / ID / "long-form" / "expected" / "compose.yaml").read_text()
    assert "    depends_on:  # both\n      db:\n" in flow


def test_partial_health_checks_are_reported(tmp_path: Path) -> None:
    assert findings(FIXTURES / ID / "override-healthcheck" / "input", ID) == [
        "<dir>/compose.override.yaml:5:3: [depends-on-healthy] service 'scheduler' starts before 'api' is ready; "
        "wait for it to be healthy with compose.override.yaml, which gives it its health check",
        "<dir>/compose.yaml:6:5: [depends-on-healthy] service 'worker' cannot wait for 'api' to be healthy: "
        "it has no health check with compose.yaml (no fix applied)",
    ]
    assert findings(FIXTURES / ID / "disabled-override" / "input", ID) == [
        f"<dir>/compose.yaml:12:5: [depends-on-healthy] service 'worker' cannot wait for {t!r} to be healthy: "
        "it has no health check with compose.yaml + compose.dev.yaml (no fix applied)" for t in ("api", "db")
    ]


def test_probe_is_unsafe(tmp_path: Path) -> None:
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / ID / "known-image-probe" / "input", work)
    assert main(["--apply", "--select", ID, str(work)]) == 0  # nothing safe to do
    lines = findings(work, ID)
    assert any("service 'redis' has no health check, so 'app' cannot wait for it to be ready; "
               "add the known-good probe `redis-cli ping`" in line for line in lines)
    assert not any("legacy-mongo" in line for line in lines)  # mongosh is not in mongo 4.4


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("services:\n  a:\n    image: x\n    depends_on:\n      - b\n  b:\n    image: y\n", id="no health check"),
        pytest.param("services:\n  a:\n    image: x\n    depends_on:\n      b:\n        condition: service_healthy\n"
                     "  b:\n    image: y\n    healthcheck:\n      test: [CMD, 'true']\n", id="already waits"),
        pytest.param("services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: y\n    healthcheck:\n"
                     "      disable: true\n", id="disabled"),
        pytest.param("services:\n  a:  # e2i-fix: ignore[depends-on-healthy]\n    image: x\n    depends_on: [b]\n"
                     "  b:\n    image: y\n    healthcheck:\n      test: [CMD, 'true']\n", id="opted out"),
        pytest.param("services:\n  a:\n    image: x\n    depends_on:\n      b:\n        condition: service_started\n"
                     "  b:\n    image: redis:7\n    healthcheck:\n      test: [NONE]\n", id="NONE test, known image"),
        pytest.param("services:\n  a:\n    image: x\n    depends_on:\n      - ${DB_HOST:-db}\n  db:\n    image: y\n"
                     "    healthcheck:\n      test: [CMD, 'true']\n", id="target from a variable"),
        pytest.param("services:\n  a:\n    image: x\n    depends_on:\n      - db\n      - db\n  db:\n    image: y\n"
                     "    healthcheck:\n      test: [CMD, 'true']\n", id="a name listed twice"),
        pytest.param("x-d: &d\n  depends_on: [db]\nservices:\n  a:  # e2i-fix: ignore[depends-on-healthy]\n    <<: *d\n"
                     "    image: x\n  b:\n    <<: *d\n    image: x\n  db:\n    image: y\n    healthcheck:\n"
                     "      test: [CMD, 'true']\n", id="a block shared with an opted-out service"),
    ],
)
def test_noop(tmp_path: Path, text: str) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 0
    assert f.read_text() == text


def test_long_running_service_named_like_a_job_is_not_waited_to_finish(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  a:\n    image: x\n    depends_on: [init-server]\n  init-server:\n    image: y\n"
                 "    command: gunicorn app:app\n")
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 0


# --- the example stack ------------------------------------------------------------------------


def test_example_worker_waits_for_a_healthy_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "e2i"
    shutil.copytree(EXAMPLE, work)
    monkeypatch.setenv("COMPOSE_PROFILES", "*")
    variants = (["docker-compose.yml"], ["docker-compose.yml", "docker-compose.dev.yml"])
    before = [config(work, files)["services"] for files in variants]
    assert main(["--apply", "--unsafe-fixes", "--select", f"{ID},healthcheck-probes", str(work)]) == 1
    assert [_check_healthy_targets(work, files, b) for files, b in zip(variants, before)] == [10, 10]
    shutil.rmtree(work)
    shutil.copytree(EXAMPLE, work)
    assert main(["--apply", "--select", ID, str(work)]) == 1
    for files in variants:
        got = conditions(work, files, "worker")
        assert got == {"api": "service_healthy", "redis": "service_healthy", "falkordb": "service_healthy"}
        assert conditions(work, files, "api")["mlflow"] == "service_started"  # no health check yet


# --- the corpus -------------------------------------------------------------------------------


def _stage_has_healthcheck(folder: Path, svc: dict[str, Any]) -> bool:
    build = svc.get("build")
    if not isinstance(build, dict):
        return False
    ctx = Path(build.get("context", folder))
    path = ctx / build.get("dockerfile", "Dockerfile")
    if not path.is_file():
        return False
    stage = dockerfile.parse(source.read(path)).stage(build.get("target"))
    return bool(stage and stage.healthcheck)


def _check_healthy_targets(folder: Path, files: list[str], before: dict[str, Any]) -> int:
    """Every `service_healthy` that is new since `before` (the services as Compose printed them
    before the run) has a target with a health check, in the stack or in the stage it builds."""
    after = config(folder, files)["services"]
    written = 0
    for name, svc in after.items():
        for target, dep in (svc.get("depends_on") or {}).items():
            was = ((before.get(name) or {}).get("depends_on") or {}).get(target, {}).get("condition")
            if dep["condition"] != "service_healthy" or was == "service_healthy":
                continue
            written += 1
            t = after[target]
            hc = t.get("healthcheck") or {}
            has = bool(hc.get("test")) and hc.get("test") != ["NONE"] and not hc.get("disable")
            assert has or (not hc.get("disable") and _stage_has_healthcheck(folder, t)), (folder, files, name, target)
    return written


def test_corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `service_healthy` the tool writes (all three startup passes, unsafe fixes too) has a
    target with a health check in the stack as Compose loads it, or in the image it builds; and
    Compose judges every variant as before."""
    passes = "depends-on-healthy,no-force-root,healthcheck-probes"

    def apply(*args: str | Path) -> int:
        return main(["--apply", "--unsafe-fixes", "--select", passes, *map(str, args)])

    run, extra = corpus_run(tmp_path, apply)
    assert len(run.changed) >= 10
    assert run.verdicts_kept() >= len(run.changed)
    written = 0
    monkeypatch.setenv("COMPOSE_PROFILES", "*")  # profile-only services are judged too
    for folder, files in corpus_stacks(run.root)[0]:
        rel = folder.relative_to(run.root)
        if not any(str(rel / f) in run.changed for f in files):
            continue
        before = compose_config(run.before_root / rel, list(files), "--format", "json")
        if before.returncode != 0:
            continue  # Compose refused the original too (a missing env file): verdicts_kept compared them
        proc_before = json.loads(before.stdout)["services"]
        written += _check_healthy_targets(folder, list(files), proc_before)
    assert written >= 20
    assert apply(run.root, *extra) == 0


def test_messages_name_the_conditions(tmp_path: Path) -> None:
    work = tmp_path / "w"
    shutil.copytree(FIXTURES / ID / "one-shot-migration" / "input", work)
    lines = findings(work, ID)
    assert any(re.search(r"service 'api' starts before its dependencies are ready; wait for db \(healthy\), "
                         r"migrate \(completed successfully\), create-buckets \(completed successfully\)", line)
               for line in lines), lines


# --- what counts as a health check ------------------------------------------------------------

_DF = "FROM python:3.12-slim AS base\nHEALTHCHECK CMD true\n\nFROM base AS app\nCMD [\"x\"]\n\nFROM base AS quiet\nHEALTHCHECK NONE\n"


@pytest.mark.parametrize(
    ("base", "override", "expected"),
    [
        pytest.param("    image: x\n    healthcheck:\n      test: [CMD, 'true']\n", None, [True], id="compose test"),
        pytest.param("    image: x\n    healthcheck:\n      disable: true\n", None, [False], id="disable: true"),
        pytest.param("    image: x\n    healthcheck:\n      test: [NONE]\n", None, [False], id="test NONE"),
        pytest.param("    build:\n      context: .\n      target: app\n", None, [True], id="inherited through FROM <stage>"),
        pytest.param("    build:\n      context: .\n      target: quiet\n", None, [False], id="HEALTHCHECK NONE"),
        pytest.param("    build:\n      context: .\n      target: app\n    healthcheck:\n      disable: true\n", None,
                     [False], id="compose disables the image's check"),
        pytest.param("    image: x\n    healthcheck:\n      test: [CMD, 'true']\n",
                     "    healthcheck:\n      disable: true\n", [True, False], id="an override disables it"),
        pytest.param("    build:\n      context: .\n      target: quiet\n",
                     "    build:\n      target: app\n", [False, True], id="an override's build.target"),
        pytest.param("    image: x\n", "    healthcheck:\n      test: [CMD, 'true']\n", [False, True],
                     id="only in an override"),
    ],
)
def test_health_in_each_variant(tmp_path: Path, base: str, override: str | None, expected: list[bool]) -> None:
    from e2i_fix import images
    from e2i_fix.engine import Workspace

    (tmp_path / "Dockerfile").write_text(_DF)
    (tmp_path / "compose.yaml").write_text("services:\n  s:\n" + base)
    if override is not None:
        (tmp_path / "compose.override.yaml").write_text("services:\n  s:\n" + override)
    stack = next(s for s in proj.discover([tmp_path]) if isinstance(s, proj.Stack))
    project = Workspace(stack)
    project.load()
    p = project.project([])
    got = [images.health(p, v, "s") is not None for v in images.variants(p)]
    assert got == expected
    # The index's own answer is the one for every file merged: the last variant here.
    assert p.services["s"].has_healthcheck is expected[-1]


def test_a_known_probe_follows_the_port_the_command_names(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  m:\n    image: ghcr.io/mlflow/mlflow:v2.16.2\n    command: mlflow server --port 5001\n"
                 "  a:\n    image: x\n    depends_on: [m]\n")
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    svcs = config(tmp_path, ["compose.yaml"])["services"]
    assert "http://localhost:5001/health" in svcs["m"]["healthcheck"]["test"][-1]
    assert svcs["a"]["depends_on"]["m"]["condition"] == "service_healthy"


@pytest.mark.parametrize("tag", ["!reset []", "!override [cache]"])
def test_an_override_that_resets_depends_on_is_respected(tmp_path: Path, tag: str) -> None:
    """The override's own depends_on stays as it is; the base run alone still waits for its
    healthy db (the edit counts there, and is lost only where the override replaces it)."""
    base = ("services:\n  a:\n    image: x\n    depends_on: [db]\n  db:\n    image: y\n    healthcheck:\n"
            "      test: [CMD, 'true']\n  cache:\n    image: redis\n")
    over = f"services:\n  a:\n    depends_on: {tag}\n"
    (tmp_path / "compose.yaml").write_text(base)
    (tmp_path / "compose.override.yaml").write_text(over)
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 1
    assert (tmp_path / "compose.override.yaml").read_text() == over
    assert config(tmp_path, ["compose.yaml"])["services"]["a"]["depends_on"]["db"]["condition"] == "service_healthy"
    merged = config(tmp_path, ["compose.yaml", "compose.override.yaml"])["services"]["a"]
    assert merged.get("depends_on", {}).keys() == ({"cache"} if "cache" in tag else set())
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 0


def test_a_check_that_cannot_pass_is_not_waited_for(tmp_path: Path) -> None:
    """The worker inherits the API image's HEALTHCHECK on a port it does not serve: waiting for
    it would hold the dependent back for ever. Once healthcheck-probes gives it a probe of its
    own (an unsafe fix), the next round waits for it."""
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\nHEALTHCHECK CMD python -c \"import urllib.request; "
                                         "urllib.request.urlopen('http://localhost:8000/health')\"\n")
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  worker:\n    build: .\n    command: celery -A app worker\n"
                 "  monitor:\n    image: x\n    depends_on: [worker]\n")
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 0
    assert main(["--apply", "--unsafe-fixes", "--select", f"{ID},healthcheck-probes", str(tmp_path)]) == 1
    assert conditions(tmp_path, ["compose.yaml"], "monitor") == {"worker": "service_healthy"}


def test_a_flow_mapping_is_edited_in_place(tmp_path: Path) -> None:
    f = tmp_path / "compose.yaml"
    f.write_text("services:\n  a:\n    image: x\n    depends_on: {db: {condition: service_started}, q: {required: true}}\n"
                 "  db:\n    image: y\n    healthcheck: {test: [CMD, 'true']}\n  q:\n    image: y\n"
                 "    healthcheck: {test: [CMD, 'true']}\n")
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 1
    assert "    depends_on: {db: {condition: service_healthy}, q: {required: true, condition: service_healthy}}\n" \
        in f.read_text()
    assert conditions(tmp_path, ["compose.yaml"], "a") == {"db": "service_healthy", "q": "service_healthy"}


# --- what a wait builds on --------------------------------------------------------------------


def _json(folder: Path, *extra: str) -> list[dict[str, Any]]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["--dry-run", "--format", "json", "--select", ID, *extra, str(folder)])
    got: list[dict[str, Any]] = json.loads(out.getvalue())["records"]
    return got


def test_a_wait_on_a_probe_this_run_adds_is_unsafe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`db` has no health check; the unsafe fix gives it postgres's probe. Every entry that waits
    for it is as unsafe as that probe: labelled so, counted in the safe run's "more with
    --unsafe-fixes", and applied only with it. The wait on `api`, whose check is in the file,
    stays safe."""
    folder = FIXTURES / ID / "probe-wait-unsafe" / "input"
    records = [(r["safety"], r["message"]) for r in _json(folder) if r.get("pass") == ID]
    assert records == [
        ("safe", "service 'worker' starts before its dependencies are ready; wait for api (healthy)"),
        ("unsafe", "service 'api' starts before its dependencies are ready; wait for db (healthy, once it has the "
                   "known-good probe)"),
        ("unsafe", "service 'worker' starts before its dependencies are ready; wait for db (healthy, once it has the "
                   "known-good probe)"),
        ("unsafe", "service 'db' has no health check, so 'api', 'worker' cannot wait for it to be ready; add the "
                   "known-good probe `pg_isready -U \"$${POSTGRES_USER:-postgres}\"`"),
    ]
    work = tmp_path / "w"
    shutil.copytree(folder, work)
    capsys.readouterr()
    assert main(["--apply", "--select", ID, str(work)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "1 fix applied in 1 file (3 more with --unsafe-fixes)"
    assert conditions(work, ["compose.yaml"], "worker") == {"api": "service_healthy", "db": "service_started"}
    assert conditions(work, ["compose.yaml"], "api") == {"db": "service_started"}
    shutil.rmtree(work)
    shutil.copytree(folder, work)
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(work)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "4 fixes applied in 1 file"  # 1 + 3
    assert conditions(work, ["compose.yaml"], "worker") == {"api": "service_healthy", "db": "service_healthy"}


def test_a_wait_on_a_check_another_unsafe_fix_added_is_unsafe(tmp_path: Path) -> None:
    """healthcheck-probes gives a worker a Celery probe (unsafe); the wait that the next round
    writes on it is unsafe too."""
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\nHEALTHCHECK CMD python -c \"import urllib.request; "
                                         "urllib.request.urlopen('http://localhost:8000/health')\"\n")
    (tmp_path / "compose.yaml").write_text("services:\n  worker:\n    build: .\n    command: celery -A app worker\n"
                                           "  monitor:\n    image: x\n    depends_on: [worker]\n")
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["--dry-run", "--unsafe-fixes", "--format", "json", "--select", f"{ID},healthcheck-probes", str(tmp_path)])
    waits = [(r["safety"], r["message"]) for r in json.loads(out.getvalue())["records"] if r.get("pass") == ID]
    assert waits == [("unsafe", "service 'monitor' starts before its dependencies are ready; wait for worker (healthy)")]


def test_no_condition_where_docker_stack_deploy_reads_the_file() -> None:
    """scripts/swarm.sh deploys compose/production with `docker stack deploy`, whose schema has
    a list of names for depends_on: the entries keep the short form; the probes still come, and
    say that nothing waits for them."""
    folder = FIXTURES / ID / "swarm" / "expected" / "compose" / "production"
    assert conditions(folder, ["compose.yaml"], "api") == {"db": "service_started", "cache": "service_started"}
    assert "depends_on:\n      - db\n      - cache\n" in (folder / "compose.yaml").read_text()
    lines = findings(FIXTURES / ID / "swarm" / "input", ID, "--unsafe-fixes")
    assert len(lines) == 2 and all(re.search(r"has no health check; add the known-good probe `.*` \(nothing is made "
                                             r"to wait for it: \S*scripts/swarm\.sh deploys \S*compose/production with "
                                             r"`docker stack deploy`, and that schema refuses depends_on conditions\)$", line)
                                   for line in lines), lines


def test_a_static_site_does_not_wait() -> None:
    """admin is nginx serving files: nothing in it connects to web, so a health check of web
    would only hold it back. The proxy passes requests to web: it waits."""
    folder = FIXTURES / ID / "static-site" / "expected"
    assert conditions(folder, ["compose.yaml"], "proxy") == {"web": "service_healthy", "admin": "service_started"}
    assert "depends_on:\n      - web\n  proxy:" in (folder / "compose.yaml").read_text()  # admin as it was


def test_mariadb_probe_works_on_an_existing_volume() -> None:
    """`healthcheck.sh --innodb_initialized` needs the healthcheck user the entrypoint creates
    only for a new data directory (or with MARIADB_AUTO_UPGRADE); `--connect` needs none."""
    svcs = config(FIXTURES / ID / "mariadb-existing-volume" / "expected", ["compose.yaml"])["services"]
    assert svcs["db"]["healthcheck"]["test"] == ["CMD", "healthcheck.sh", "--connect"]
    assert svcs["webserver"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_a_derivative_image_may_have_its_own_check(tmp_path: Path) -> None:
    """An image matched by its family only (built on postgres) may ship a HEALTHCHECK that a
    compose probe would replace: reported, nothing added. Where `docker image inspect` output
    says it has one, the server waits for it, safely."""
    folder = FIXTURES / ID / "derivative-image" / "input"
    assert findings(folder, ID, "--unsafe-fixes") == [
        "<dir>/compose.yaml:2:3: [depends-on-healthy] service 'database' has no health check in the stack, so 'server' "
        "cannot wait for it to be ready; its image ghcr.io/example/postgres:16-vectors runs postgres in an image of its own and may ship "
        "a HEALTHCHECK of its own, which a probe here would replace: if it has none, "
        "`pg_isready -U \"$${POSTGRES_USER:-postgres}\"` is the probe (`--inspect` with its `docker image inspect` "
        "output tells) (no fix applied)",
    ]
    out = tmp_path / "inspect.json"
    out.write_text(json.dumps([{"RepoTags": ["ghcr.io/example/postgres:16-vectors"],
                                "Config": {"Healthcheck": {"Test": ["CMD-SHELL", "/usr/local/bin/healthcheck.sh"]}}}]))
    work = tmp_path / "w"
    shutil.copytree(folder, work)
    try:
        assert main(["--apply", "--select", ID, "--inspect", str(out), str(work)]) == 1
    finally:
        from e2i_fix.facts import image as imagedata

        imagedata.use_inspect({})
    assert conditions(work, ["compose.yaml"], "server") == {"database": "service_healthy"}
    assert "healthcheck" not in (work / "compose.yaml").read_text()


def test_a_long_first_start_gets_a_start_period() -> None:
    """MariaDB's entrypoint initialises the data directory on a server with --skip-networking
    (timezone tables, initdb.d) and MySQL's with no server at all, so their probes fail
    throughout a first start that a slow disk makes longer than 10s x 5 retries: they get a
    start period, during which failures do not count (the first pass ends it). Postgres's
    probe passes on the server its entrypoint initialises with: none."""
    svcs = config(FIXTURES / ID / "first-start" / "expected", ["compose.yaml"])["services"]
    assert svcs["mariadb"]["healthcheck"]["start_period"] == "2m0s"
    assert svcs["mysql"]["healthcheck"]["start_period"] == "2m0s"
    assert "start_period" not in svcs["postgres"]["healthcheck"]
    lines = findings(FIXTURES / ID / "first-start" / "input", ID, "--unsafe-fixes")
    mariadb = next(x for x in lines if "service 'mariadb' has no health check" in x)
    assert mariadb.endswith("add the known-good probe `healthcheck.sh --connect`, with a start period of 2m (its "
                            "first start initialises the data directory before the probe can pass)")


def test_the_start_period_s_source_is_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(FIXTURES / ID / "first-start" / "input", tmp_path / "stack")
    capsys.readouterr()
    main(["--dry-run", "--unsafe-fixes", "--format", "json", "--select", ID, str(tmp_path / "stack")])
    records = json.loads(capsys.readouterr().out)["records"]
    probe = next(r for r in records if r.get("message", "").startswith("service 'mariadb' has no health check"))
    assert any(p["what"] == "start_period 2m" and "--skip-networking" in p["source"]
               and "docs.docker.com/reference/dockerfile/#healthcheck" in p["source"] for p in probe["provenance"])


def test_conditions_the_authors_commented_out_are_not_written_back(tmp_path: Path) -> None:
    """A stack whose files hold a depends_on condition commented out (taken out for a runner
    without them, such as podman-compose) gets no condition back; the same stack without that
    comment does."""
    text = ("services:\n"
            "  app:\n    image: example/app:1.0\n"
            "    # depends_on:\n    #   db:\n    #     condition: service_healthy\n"
            "  exporter:\n    image: example/exporter:1.0\n    depends_on:\n      - db\n"
            "  db:\n    image: postgres:16\n"
            "    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready\"]\n")
    (tmp_path / "compose.yaml").write_text(text)
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 0
    assert (tmp_path / "compose.yaml").read_text() == text
    (tmp_path / "compose.yaml").write_text(text.replace("    # depends_on:\n    #   db:\n    #     condition: service_healthy\n", ""))
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 1
    assert "condition: service_healthy" in (tmp_path / "compose.yaml").read_text()


def test_a_service_others_merge_changes_them_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`app: &app` with its depends_on, merged by `cron` and `queue`: the condition written in
    app reaches them, the fix says so, and verification keeps it and every other fix."""
    text = ("services:\n"
            "  app: &app\n    image: example/app:1.0\n    depends_on:\n      - db\n"
            "  cron:\n    <<: *app\n    command: cron.sh\n"
            "  queue:\n    <<: *app\n    command: queue.sh\n"
            "  db:\n    image: postgres:16\n"
            "    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready\"]\n")
    (tmp_path / "compose.yaml").write_text(text)
    assert main(["--apply", "--select", f"{ID},logging", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert "not applied" not in out.out + out.err
    got = (tmp_path / "compose.yaml").read_text()
    assert got.count("condition: service_healthy") == 1 and "logging:" in got
    got_config = compose_config(tmp_path, ["compose.yaml"], "--format", "json")
    assert got_config.returncode == 0, got_config.stderr
    merged = json.loads(got_config.stdout)
    for name in ("app", "cron", "queue"):
        assert merged["services"][name]["depends_on"]["db"]["condition"] == "service_healthy"


@pytest.mark.parametrize(("image", "test", "safety"), [
    pytest.param("example/gateway:1.0", '["CMD", "wget", "-q", "--spider", "http://localhost:4000/health"]', "unsafe",
                 id="a tool the image is not known to have"),
    pytest.param("node:20-alpine", '["CMD", "wget", "-q", "--spider", "http://localhost:4000/health"]', "safe",
                 id="busybox wget in an alpine image"),
    pytest.param("postgres:16", '["CMD-SHELL", "pg_isready -U app"]', "safe", id="the image's own client"),
    pytest.param("example/gateway:1.0", '["CMD-SHELL", "test -f /tmp/ready"]', "safe", id="a shell builtin"),
])
def test_a_wait_on_a_check_nothing_vouches_for_is_unsafe(tmp_path: Path, image: str, test: str, safety: str) -> None:
    """Today an unhealthy mark is cosmetic; once a service waits for it, a check that cannot run
    (its program missing from the image) stops `up`. Where the tool cannot vouch for the
    program, the wait is an unsafe fix that says why."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: example/app:1.0\n    depends_on:\n      - gateway\n"
        f"  gateway:\n    image: {image}\n    healthcheck:\n      test: {test}\n")
    records = [(r["safety"], r["message"]) for r in _json(tmp_path) if r.get("pass") == ID]
    assert [s for s, _ in records] == [safety], records
    assert ("which the tool does not know to be in its image" in records[0][1]) is (safety == "unsafe")


def test_no_wait_on_a_probe_a_file_run_alone_does_not_get(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The probe for `mysql` goes into the base; `docker-compose.test.yml` also runs alone
    (`make e2e`), where its `mysql` has no health check: a wait written there would fail `up`
    ("has no healthcheck configured"). The base gets probe and wait; the test file is reported."""
    mysql = "  mysql:\n    image: mysql:8.4\n    environment:\n      MYSQL_RANDOM_ROOT_PASSWORD: \"yes\"\n"
    (tmp_path / "docker-compose.yml").write_text("services:\n  app:\n    image: example/app:1.0\n    depends_on:\n"
                                                 "      - mysql\n" + mysql)
    test = "services:\n  app:\n    image: example/app:test\n    depends_on:\n      - mysql\n" + mysql
    (tmp_path / "docker-compose.test.yml").write_text(test)
    capsys.readouterr()
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    assert (tmp_path / "docker-compose.test.yml").read_text() == test
    base = (tmp_path / "docker-compose.yml").read_text()
    assert "condition: service_healthy" in base and "mysqladmin" in base
    out = capsys.readouterr()
    assert "cannot wait for 'mysql' to be healthy" in out.out + out.err


@pytest.mark.parametrize("dockerfile", [
    pytest.param('FROM alpine:3.20\nENV INSTALL_PKGS="bash curl tzdata"\nRUN apk add --no-cache ${INSTALL_PKGS}\n',
                 id="packages named through an ENV list"),
    pytest.param("FROM debian:bookworm-slim\nRUN <<EOF\nset -e\napt-get update\napt-get install -y --no-install-recommends curl\n"
                 "EOF\n", id="installed in a heredoc"),
])
def test_a_tool_installed_through_a_variable_or_a_heredoc_is_in_the_image(tmp_path: Path, dockerfile: str) -> None:
    (tmp_path / "gateway").mkdir()
    (tmp_path / "gateway" / "Dockerfile").write_text(dockerfile)
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: example/app:1.0\n    depends_on:\n      - gateway\n"
        "  gateway:\n    build: ./gateway\n    healthcheck:\n"
        '      test: ["CMD", "curl", "-fsS", "http://localhost:4000/health"]\n')
    records = [(r["safety"], r["message"]) for r in _json(tmp_path) if r.get("pass") == ID]
    assert [s for s, _ in records] == ["safe"], records


def test_waits_that_only_an_override_allows_go_there_in_one_block(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Two dependencies get their health checks only in the override, where the service has no
    `depends_on`, and two files of the stack define the service's `depends_on`: one new block
    with both waits, never two `depends_on` keys (the stack would no longer read)."""
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: example/app:1\n    depends_on:\n      - db\n      - cache\n"
        "  db:\n    image: example/db:1\n  cache:\n    image: example/cache:1\n")
    (tmp_path / "compose.prod.yaml").write_text(
        "services:\n  app:\n    image: example/app:1\n    depends_on:\n      - db\n      - cache\n"
        "  db:\n    image: example/db:1\n  cache:\n    image: example/cache:1\n")
    (tmp_path / "compose.override.yaml").write_text(
        "services:\n  app:\n    ports: ['8000:8000']\n"
        "  db:\n    healthcheck:\n      test: [CMD-SHELL, 'true']\n"
        "  cache:\n    healthcheck:\n      test: [CMD-SHELL, 'true']\n")
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "invalid YAML" not in err
    text = (tmp_path / "compose.override.yaml").read_text()
    assert text.count("depends_on:") == 1 and text.count("condition: service_healthy") == 2
    proc = compose_config(tmp_path, ["compose.yaml", "compose.override.yaml"], "--format", "json")
    assert proc.returncode == 0, proc.stderr
    deps = json.loads(proc.stdout)["services"]["app"]["depends_on"]
    assert deps["db"]["condition"] == deps["cache"]["condition"] == "service_healthy"
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 0


def test_nodes_of_one_cluster_do_not_wait_for_each_other(tmp_path: Path) -> None:
    """`node2` and `node3` start after `node1`, which becomes healthy only once a manager is
    elected from two of the three: a wait for its health would never end. Numbered nodes of one
    image are peers; the dashboard, a client, waits."""
    node = ("    image: example/search:2.19\n    healthcheck:\n      test: [CMD-SHELL, 'curl -fs localhost:9200']\n")
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  node1:\n{node}  node2:\n{node}    depends_on:\n      - node1\n"
        f"  node3:\n{node}    depends_on:\n      - node1\n"
        "  dashboard:\n    image: example/dashboard:2.19\n    depends_on:\n      - node1\n")
    records = [(r["safety"], r["message"]) for r in _json(tmp_path) if r.get("pass") == ID and r.get("edits")]
    assert len(records) == 1 and "service 'dashboard'" in records[0][1], records
