"""no-new-privileges: fixture stacks, small inline cases and the corpus, judged by bytes and by
the real Compose CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix._main import main
from e2i_fix.passes import registry

from hardening_cases import apply, cases, check, config_json, corpus, only_keys_changed, run_fixture

ID = "no-new-privileges"
KEYS = {"security_opt"}
FIXTURES = Path(__file__).parent / "fixtures" / ID


@pytest.mark.parametrize("case", cases(ID))
def test_fixture(tmp_path: Path, case: str) -> None:
    run_fixture(ID, case, tmp_path)


@pytest.mark.parametrize("case", cases(ID))
def test_compose_reads_only_security_opt_changed(case: str) -> None:
    _, after = only_keys_changed(ID, case, KEYS)
    for name, svc in after["services"].items():
        if "no-new-privileges:true" in svc.get("security_opt", []):
            assert svc["security_opt"].count("no-new-privileges:true") == 1, name


def test_existing_options_are_kept(tmp_path: Path) -> None:
    model = config_json(Path(__file__).parent / "fixtures" / ID / "known-and-unknown" / "expected")["services"]
    # Spelled as `done` spells it: the stack's way.
    assert model["app"]["security_opt"] == ["label:disable", "no-new-privileges"]
    assert model["cache"]["security_opt"] == ["apparmor:unconfined", "no-new-privileges"]
    assert model["done"]["security_opt"] == ["no-new-privileges"]


def one(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("services:\n  a:\n    image: x\n    security_opt: [no-new-privileges:false]\n", id="explicit false"),
        pytest.param("services:\n  a:\n    image: x\n    security_opt: ['no-new-privileges=true']\n", id="equals form"),
        pytest.param("services:\n  a:\n    image: x\n    privileged: true\n", id="privileged"),
        pytest.param("services:\n  a:\n    image: x\n    network_mode: host\n", id="host network"),
        pytest.param("services:\n  a:  # e2i-fix: ignore[no-new-privileges]\n    image: x\n", id="opted out"),
        pytest.param("services:\n  a:\n    image: x\n    entrypoint: [doas, run]\n", id="doas"),
        pytest.param("services:\n  a:\n    image: x\n    user: app\n    command: su -c run root\n", id="su as non-root"),
        pytest.param("services:\n  a: {image: x}\n", id="flow service"),
        pytest.param("services:\n  a:\n    image: pihole/pihole:2024.07.0\n", id="an image that runs sudo"),
    ],
)
def test_noop(tmp_path: Path, text: str) -> None:
    f = one(tmp_path, text)
    assert apply(ID, tmp_path) == 0
    assert f.read_text() == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("    command: su -c run app\n", "    command: su -c run app\n    security_opt:\n      - no-new-privileges:true\n",
                     id="su as root steps down"),
        pytest.param("    command: [su-exec, app, run]\n", "    command: [su-exec, app, run]\n    security_opt:\n"
                     "      - no-new-privileges:true\n", id="su-exec"),
        pytest.param("    security_opt: []\n", "    security_opt: [no-new-privileges:true]\n", id="empty flow list"),
        pytest.param("    security_opt:\n    - label:disable\n", "    security_opt:\n    - label:disable\n"
                     "    - no-new-privileges:true\n", id="dash at key column"),
    ],
)
def test_fix(tmp_path: Path, text: str, expected: str) -> None:
    head = "services:\n  a:\n    image: x\n"
    f = one(tmp_path, head + text)
    assert apply(ID, tmp_path) == 1
    assert f.read_text() == head + expected
    assert apply(ID, tmp_path) == 0


def test_anchor_shared_by_services_is_declared_for_each(tmp_path: Path) -> None:
    text = "x-app: &app\n  image: x\nservices:\n  a: &a\n    image: x\n  b:\n    <<: *a\n"
    f = one(tmp_path, text)
    assert apply(ID, tmp_path) == 1
    model = config_json(tmp_path)["services"]
    assert model["a"]["security_opt"] == model["b"]["security_opt"] == ["no-new-privileges:true"]
    assert f.read_text().count("no-new-privileges") == 1
    assert apply(ID, tmp_path) == 0


def test_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = Path(__file__).parent / "fixtures" / ID / "setuid" / "input"
    out = check(ID, folder, capsys)
    assert f"{folder}/compose.yaml:2:3: [{ID}] service 'admin' does not set no-new-privileges, and its command calls " \
           "sudo: it needs to gain privileges at execve, which the option blocks (no fix applied)" in out
    assert f"{folder}/compose.yaml:5:3: [{ID}] service 'ping' does not set no-new-privileges, and its Dockerfile " \
           "runs 'chmod u+s': it needs to gain privileges at execve, which the option blocks (no fix applied)" in out
    assert f"{folder}/compose.yaml:10:3: [{ID}] service 'mailer' does not set no-new-privileges, and its Dockerfile " \
           "installs postfix (line 3): Postfix's setgid postdrop and postqueue, through which local programs submit " \
           "mail (sendmail): it needs to gain privileges at execve, which the option blocks (no fix applied)" in out
    assert not any("'relay' does not set" in line for line in out)  # msmtp has no setuid or setgid helper


def test_a_script_the_image_runs_is_read(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM debian\nCOPY start.sh /start.sh\nUSER app\nCMD [\"/start.sh\"]\n")
    (tmp_path / "app" / "start.sh").write_text("#!/bin/sh\nsudo /usr/sbin/cron\nexec run\n")
    text = "services:\n  a:\n    build: ./app\n"
    f = one(tmp_path, text)
    assert apply(ID, tmp_path) == 0
    assert f.read_text() == text


def test_documented() -> None:
    doc = registry()[ID].__doc__ or ""
    for heading in ("## What it does", "## Why", "## Example", "## Fix safety", "## Options"):
        assert heading in doc


def test_corpus(tmp_path: Path) -> None:
    """The pass alone over the corpus settles; Compose judges it with the other hardening
    passes in test_hardening_corpus.py."""
    corpus(ID, tmp_path, KEYS)


@pytest.mark.parametrize("override", [
    pytest.param("services:\n  a:\n    security_opt: !reset []\n", id="reset"),
    pytest.param("services:\n  a:\n    security_opt: !override [label:disable]\n", id="override"),
])
def test_an_override_that_resets_or_replaces_the_key_is_not_contradicted(tmp_path: Path, override: str) -> None:
    text = "services:\n  a:\n    image: x\n"
    f = one(tmp_path, text)
    (tmp_path / "compose.override.yaml").write_text(override)
    assert apply(ID, tmp_path) == 0
    assert f.read_text() == text


def test_a_template_the_services_merge_gets_the_key_once(tmp_path: Path) -> None:
    text = ("x-app: &app\n  image: example/app\n  restart: always\n\nservices:\n  web:\n    <<: *app\n"
            "  worker:\n    <<: *app\n    command: worker\n")
    f = one(tmp_path, text)
    assert apply(ID, tmp_path) == 1
    assert f.read_text() == text.replace("  restart: always\n", "  restart: always\n  security_opt:\n"
                                         "    - no-new-privileges:true\n")
    model = config_json(tmp_path)["services"]
    assert model["web"]["security_opt"] == model["worker"]["security_opt"] == ["no-new-privileges:true"]
    assert apply(ID, tmp_path) == 0


def test_a_template_nested_in_an_x_block_gets_the_key_once(tmp_path: Path) -> None:
    """`x-shared: {app: &app {...}}`: the template one level down is a template too."""
    text = ("x-shared:\n  app: &app\n    image: example/app\n    restart: always\n  env: &env\n    TZ: UTC\n\n"
            "services:\n" + "".join(f"  {n}:\n    <<: *app\n    command: {n}\n" for n in ("web", "worker", "beat")))
    f = one(tmp_path, text)
    assert apply(ID, tmp_path) == 1
    assert f.read_text() == text.replace("    restart: always\n", "    restart: always\n    security_opt:\n"
                                         "      - no-new-privileges:true\n")
    model = config_json(tmp_path)["services"]
    assert all(model[n]["security_opt"] == ["no-new-privileges:true"] for n in ("web", "worker", "beat"))
    assert apply(ID, tmp_path) == 0


def test_sudo_that_is_granted_and_sudo_nothing_uses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """sudo installed through an ARG list and granted in /etc/sudoers is a reason to leave the
    service alone; sudo installed that nothing calls and nothing grants is not."""
    model = config_json(FIXTURES / "sudo" / "expected")["services"]
    assert "security_opt" not in model["dev"] and model["web"]["security_opt"] == ["no-new-privileges:true"]
    out = check(ID, FIXTURES / "sudo" / "input", capsys)
    assert any("service 'dev' does not set no-new-privileges, and its Dockerfile installs sudo (line 7) and grants "
               "it (line 8: NOPASSWD)" in line for line in out)
    assert not any("service 'web' does not set" in line for line in out)


def test_swarm_ignores_security_opt(capsys: pytest.CaptureFixture[str]) -> None:
    assert config_json(FIXTURES / "swarm" / "expected") == config_json(FIXTURES / "swarm" / "input")
    out = check(ID, FIXTURES / "swarm" / "input", capsys)
    assert [line.split(": [", 1)[1] for line in out] == [
        f"{ID}] no-new-privileges is not added: the stack is also deployed with docker stack deploy (service 'api' "
        "sets deploy.update_config, which only swarm reads), which ignores security_opt (no fix applied)"]


def test_spelled_and_quoted_as_the_stack_writes_it() -> None:
    """The stack writes `["no-new-privileges=true"]`: new entries use that spelling, its quotes
    and its one-line lists, appended to a list or as a new key."""
    folder = Path(__file__).parent / "fixtures" / ID / "convention" / "expected"
    text = (folder / "compose.yaml").read_text()
    assert '    security_opt: ["label=disable", "no-new-privileges=true"]\n' in text
    assert text.endswith('  cache:\n    image: redis:7\n    security_opt: ["no-new-privileges=true"]\n')
    assert config_json(folder)["services"]["cache"]["security_opt"] == ["no-new-privileges=true"]


def _records(case: str, capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[str, str]]:
    """What the pass says of each service of a fixture, run as a production stack: (safety,
    message) by service."""
    import json

    from conftest import outside_the_repository
    from e2i_fix._main import main

    capsys.readouterr()
    with outside_the_repository(FIXTURES / case / "input") as work:
        main(["--dry-run", "--unsafe-fixes", "--format", "json", "--select", ID, str(work)])
    out = json.loads(capsys.readouterr().out)
    return {r["message"].split("'", 2)[1]: (r["safety"], r["message"]) for r in out["records"]
            if r.get("pass") == ID and r["message"].startswith("service '")}


_CHECK = ("an image that starts as a non-root user and gains root at execve (s6-overlay's setuid s6-overlay-suexec, "
          "sudo, su) does not start under it: check that the service starts")


@pytest.mark.parametrize(("service", "safety", "why"), [
    pytest.param("db", "safe", None, id="the table knows the image"),
    pytest.param("admin", "safe", None, id="an unknown image started as root"),
    pytest.param("php", "safe", None, id="s6-overlay as the user /run belongs to (table)"),
    pytest.param("app", "safe", None, id="a stage read on a known base"),
    pytest.param("s6run", "safe", None, id="s6-overlay in a stage that hands /run to its user"),
    pytest.param("backup", "unsafe", "neither the image table nor --inspect knows example/db-backup:4",
                 id="an unknown image started as a user"),
    pytest.param("runner", "unsafe", "neither the image table nor --inspect knows example/runner:1",
                 id="an unknown image"),
    pytest.param("portal", "unsafe", "its stages build on example/portal-base:2, which neither the image table nor "
                 "--inspect knows", id="a stage on an unknown base"),
    pytest.param("php-as-1000", "display-only", "it runs as 1000:1000, and serversideup/php runs s6-overlay's /init",
                 id="s6-overlay as another user (table)"),
    pytest.param("s6app", "display-only", "its Dockerfile installs s6-overlay (line 3) and it runs /init, whose setuid "
                 "s6-overlay-suexec must make it root to hand /run to app", id="s6-overlay installed, /run not handed over"),
])
def test_safe_only_where_what_it_does_at_start_is_known(service: str, safety: str, why: str | None,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The option is safe where the tool knows what the service does at start: it starts as
    root, or the table, `--inspect` or a stage it reads on a known base tells. Where nothing
    does, an image that starts as a user and gains root at execve (s6-overlay, nfrastack/
    db-backup#331; serversideup/docker-php#372) would not start: the fix is unsafe, and says so."""
    got = _records("what-is-known", capsys)[service]
    assert got[0] == safety
    if safety == "unsafe":
        assert got[1].endswith(f"; unsafe: {why}: {_CHECK}")
    elif why is not None:
        assert why in got[1] and "it needs to gain privileges at execve" in got[1]
    else:
        assert "unsafe" not in got[1]


@pytest.mark.parametrize(("service", "safety", "why"), [
    pytest.param("web", "safe", None, id="a target through .env: its stage is read"),
    pytest.param("worker", "display-only", "its Dockerfile runs 'chmod u+s'", id="a target through a default"),
    pytest.param("cron", "unsafe", "the stage it builds cannot be read (its target ${CRON_RUNTIME}-runtime has a "
                 "variable with no value here)", id="a target with no value: never safe"),
])
def test_a_target_written_with_a_variable(service: str, safety: str, why: str | None,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """`target: ${APP_RUNTIME}-runtime` is read through `.env` and defaults, as Compose reads
    it, and the stage's checks run; a stage that cannot be read gets no safe decision."""
    got = _records("build-target-variable", capsys)[service]
    assert got[0] == safety
    if safety == "unsafe":
        assert got[1].endswith(f"; unsafe: {why}: {_CHECK}")
    elif why is not None:
        assert why in got[1]


def test_a_template_that_reaches_an_unknown_image_is_unsafe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One template edit for a service known to start as root and one that is not: every fix
    that carries the edit is unsafe, and a safe run leaves the template alone."""
    import json

    from e2i_fix._main import main

    text = ("x-app: &app\n  image: example/runner:1\n  restart: always\n\nservices:\n  admin:\n    <<: *app\n"
            "    user: root\n  runner:\n    <<: *app\n")
    f = one(tmp_path, text)
    capsys.readouterr()
    main(["--dry-run", "--unsafe-fixes", "--format", "json", "--select", ID, str(tmp_path)])
    fixes = [r for r in json.loads(capsys.readouterr().out)["records"] if r.get("pass") == ID]
    assert {r["safety"] for r in fixes} == {"unsafe"} and len(fixes) == 2
    assert any("the edit also reaches 'runner'" in r["message"] for r in fixes)
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 0
    assert f.read_text() == text


def test_pgadmin_gains_at_execve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """pgAdmin's python carries cap_net_bind_service and its entrypoint sudo's postfix: under
    no-new-privileges it moves to port 8080. Reported, never fixed; cap-drop reports too (its
    sudo needs what root needs once it switches)."""
    (tmp_path / "compose.yaml").write_text("services:\n  pgadmin:\n    image: dpage/pgadmin4:9.16\n"
                                           "    ports: [\"8080:80\"]\n")
    capsys.readouterr()
    main(["--apply", "--unsafe-fixes", "--select", "no-new-privileges,cap-drop", str(tmp_path)])
    text = (tmp_path / "compose.yaml").read_text()
    assert "no-new-privileges" not in text and "cap_drop" not in text  # its sudo needs what root needs
    out = capsys.readouterr()
    assert "listens on 8080 instead" in out.out + out.err
    assert "what it needs once it gains root is not known here" in out.out + out.err


def test_a_mail_server_s_setgid_postdrop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docker-mailserver starts as root, but its non-root daemons submit mail through Postfix's
    setgid postdrop: the option would stop Sieve replies. Reported, not fixed."""
    (tmp_path / "compose.yaml").write_text("services:\n  mail:\n    image: ghcr.io/docker-mailserver/docker-mailserver:15\n")
    capsys.readouterr()
    main(["--apply", "--unsafe-fixes", "--select", "no-new-privileges", str(tmp_path)])
    assert "no-new-privileges" not in (tmp_path / "compose.yaml").read_text()
    out = capsys.readouterr()
    assert "setgid postdrop" in out.out + out.err


def test_an_image_this_repository_publishes_is_read_from_its_dockerfile(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The example stack pulls the image the repository's CI builds from its root Dockerfile and
    pushes: the file capabilities that Dockerfile sets are the image's, and the option would
    take them away (a poller's ICMP checks fail); a repository image whose Dockerfile sets none
    gets the option, and so does one no workflow here publishes."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "build.yml").write_text(
        "on: push\njobs:\n  build:\n    uses: docker/github-builder/.github/workflows/bake.yml@v1\n"
        "    with:\n      push: ${{ github.event_name != 'pull_request' }}\n      meta-images: |\n"
        "        example/monitor\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM alpine:3.20\nRUN apk add --no-cache fping \\\n    && setcap cap_net_raw+ep /usr/sbin/fping\n"
        "USER monitor\nCMD [\"poller\"]\n")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "compose.yaml").write_text(
        "services:\n  poller:\n    image: example/monitor:2\n  other:\n    image: example/monitor-ui:2\n")
    out = check(ID, tmp_path, capsys)
    assert any("service 'poller' does not set no-new-privileges, and its image is built from Dockerfile "
               "(.github/workflows/build.yml publishes it), which runs 'setcap'" in line for line in out)
    assert any("service 'other' can gain privileges" in line for line in out)


def test_a_published_image_named_with_its_registry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The workflow pushes `ghcr.io/example/panel:latest`; the stack pulls `ghcr.io/example/panel`."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "docker.yaml").write_text(
        "on: push\njobs:\n  push:\n    steps:\n      - uses: docker/build-push-action@v6\n        with:\n"
        "          push: true\n          file: ./Dockerfile\n          tags: ghcr.io/example/panel:latest\n")
    (tmp_path / "Dockerfile").write_text("FROM alpine:3.20\nRUN chmod u+s /usr/bin/helper\nCMD [\"panel\"]\n")
    (tmp_path / "compose.yaml").write_text("services:\n  panel:\n    image: ghcr.io/example/panel:v1\n")
    out = check(ID, tmp_path, capsys)
    assert any("service 'panel' does not set no-new-privileges, and its image is built from Dockerfile "
               "(.github/workflows/docker.yaml publishes it)" in line for line in out)
