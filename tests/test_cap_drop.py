"""cap-drop: fixture stacks (known and unknown images, an existing cap_add, built images),
small inline cases and the corpus, judged by bytes and by the real Compose CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e2i_fix._main import main
from e2i_fix.passes import _hardening, registry

from hardening_cases import (apply, bad_option_is_an_error, cases, check, config_json, corpus, only_keys_changed, passes_of,
                             run_fixture)

ID = "cap-drop"
KEYS = {"cap_drop", "cap_add"}
FIXTURES = Path(__file__).parent / "fixtures" / ID
STEP_DOWN = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]
REDIS_8 = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETPCAP", "SETUID"]
ROOT = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID"]


@pytest.mark.parametrize("case", cases(ID))
def test_fixture(tmp_path: Path, case: str) -> None:
    run_fixture(ID, case, tmp_path)


@pytest.mark.parametrize("case", cases(ID))
def test_compose_reads_only_capabilities_changed(case: str) -> None:
    # A case run with no-force-root also changes the user and environment it owns.
    only_keys_changed(ID, case, KEYS if passes_of(ID, case) == ID else KEYS | {"user", "environment"})


@pytest.mark.parametrize(
    ("case", "service", "cap_add"),
    [
        pytest.param("known-and-unknown", "db", STEP_DOWN, id="postgres steps down with gosu"),
        pytest.param("known-and-unknown", "cache", ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"], id="redis"),
        pytest.param("known-and-unknown", "web", ["CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID"], id="nginx"),
        pytest.param("known-and-unknown", "monitor", None, id="non-root image"),
        pytest.param("existing-cap-add", "web", ["SYS_PTRACE", "CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID"],
                     id="own cap_add kept first"),
        pytest.param("existing-cap-add", "cache", ["NET_ADMIN", "CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"],
                     id="flow cap_add"),
        pytest.param("existing-cap-add", "tool", ["NET_RAW"], id="non-root user keeps its own"),
        pytest.param("built", "app", None, id="built non-root USER"),
        pytest.param("built", "proxy", ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE",
                                        "SETGID", "SETUID"], id="built root listening on 80"),
        pytest.param("built", "db", STEP_DOWN, id="built FROM postgres"),
        pytest.param("redis-releases", "queue", ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"], id="redis 7: gosu"),
        # Redis 8's entrypoint empties the bounding set with setpriv: without SETPCAP it exits 127.
        pytest.param("redis-releases", "cache", REDIS_8, id="redis 8: setpriv needs SETPCAP"),
        pytest.param("redis-releases", "locks", REDIS_8, id="untagged redis is the newest"),
        pytest.param("pam", "upgrade", ["AUDIT_WRITE", *ROOT], id="su as root keeps AUDIT_WRITE"),
        pytest.param("pam", "admin", ["AUDIT_WRITE", *ROOT], id="sudo as root keeps AUDIT_WRITE"),
        pytest.param("pam", "worker", ROOT, id="gosu needs no AUDIT_WRITE"),
    ],
)
def test_compose_model(case: str, service: str, cap_add: list[str] | None) -> None:
    svc = config_json(FIXTURES / case / "expected")["services"][service]
    assert "ALL" in svc["cap_drop"]
    assert svc.get("cap_add") == cap_add


def test_unknown_and_excluded_services_are_left_alone() -> None:
    before = config_json(FIXTURES / "built" / "input")["services"]
    after = config_json(FIXTURES / "built" / "expected")["services"]
    for name in ("loose", "hostnet", "missing"):
        assert before[name] == after[name]
    assert "cap_drop" not in config_json(FIXTURES / "known-and-unknown" / "expected")["services"]["thing"]


def test_messages(capsys: pytest.CaptureFixture[str]) -> None:
    folder = FIXTURES / "known-and-unknown" / "input"
    out = check(ID, folder, capsys)
    assert any(f"[{ID}] service 'thing' keeps Docker's default capabilities; what its image needs is not known "
               "here: start with `cap_drop: [ALL]`" in line and line.endswith("(no fix applied)") for line in out)
    assert any("service 'db'" in line and "steps down with gosu" in line for line in out)


def test_a_release_the_tag_does_not_tell_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """`redis:${REDIS_TAG}` with no value: Redis 7 and 8 need different capabilities, so the
    service is reported, not given either list."""
    out = check(ID, FIXTURES / "redis-releases" / "input", capsys)
    assert "cap_drop" not in config_json(FIXTURES / "redis-releases" / "expected")["services"]["sessions"]
    assert any("service 'sessions' keeps Docker's default capabilities; what the redis image does here depends "
               "on its release, which its tag does not tell" in line for line in out)
    assert any("service 'cache'" in line and "steps down with setpriv" in line and "SETPCAP" in line for line in out)


def test_pam_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    out = check(ID, FIXTURES / "pam" / "input", capsys)
    upgrade = next(line for line in out if "service 'upgrade'" in line)
    assert "upgrade/scripts/00-upgrade.sh runs su, which goes through PAM: its audit record needs AUDIT_WRITE" in upgrade
    assert "loses NET_RAW, MKNOD, SYS_CHROOT, SETFCAP, SETPCAP;" in upgrade
    assert "admin/entrypoint.sh runs sudo, which goes through PAM" in next(line for line in out if "service 'admin'" in line)
    worker = next(line for line in out if "service 'worker'" in line)
    assert "PAM" not in worker and "loses NET_RAW, MKNOD, SYS_CHROOT, AUDIT_WRITE, SETFCAP, SETPCAP" in worker


@pytest.mark.parametrize(
    ("script", "pam"),
    [
        pytest.param("su -m postgres -c 'initdb'", True, id="su -c"),
        pytest.param("su - app -c ./run", True, id="su - user -c"),
        pytest.param("exec runuser -u app -- ./run", True, id="runuser"),
        pytest.param("/usr/sbin/sshd -D", True, id="sshd"),
        pytest.param("if [ -n \"$MIGRATE\" ]; then sudo -u app ./migrate; fi", True, id="sudo after then"),
        pytest.param("exec gosu app ./run", False, id="gosu"),
        pytest.param("exec su-exec app ./run", False, id="su-exec"),
        pytest.param("exec setpriv --reuid app --regid app --clear-groups ./run", False, id="setpriv"),
        pytest.param("echo 'run it with sudo if you must'", False, id="a word in a message"),
        pytest.param("npm login --registry x", False, id="login as an argument"),
    ],
)
def test_what_goes_through_pam(tmp_path: Path, script: str, pam: bool) -> None:
    one(tmp_path, "services:\n  a:\n    build: .\n")
    (tmp_path / "Dockerfile").write_text("FROM debian:12\nCOPY entrypoint.sh /entrypoint.sh\nENTRYPOINT [\"/entrypoint.sh\"]\n")
    (tmp_path / "entrypoint.sh").write_text(f"#!/bin/sh\nset -e\n{script}\n")
    assert apply(ID, tmp_path) == 1
    assert ("AUDIT_WRITE" in config_json(tmp_path)["services"]["a"]["cap_add"]) is pam


def test_what_runs_from_a_base_the_table_does_not_know_is_reported(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Built as root on an unknown base with no ENTRYPOINT of its own: the base's entrypoint
    runs, and what it needs is not known; with an ENTRYPOINT of its own, root's set applies."""
    one(tmp_path, "services:\n  a:\n    build: a\n  b:\n    build: b\n")
    for name, tail in (("a", "CMD [\"serve\"]\n"), ("b", "ENTRYPOINT [\"serve\"]\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text(f"FROM example/base:1\nCOPY . /app\n{tail}")
    out = check(ID, tmp_path, capsys)
    assert any("service 'a' keeps Docker's default capabilities; its Dockerfile sets no ENTRYPOINT of its own: what "
               "runs comes from example/base:1, which the image table does not know: what it needs is not known here"
               in line for line in out), out
    assert apply(ID, tmp_path) == 1
    model = config_json(tmp_path)["services"]
    assert "cap_drop" not in model["a"] and model["b"]["cap_add"] == ROOT


def one(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("services:\n  a:\n    image: redis\n    cap_drop: [all]\n", id="already drops all"),
        pytest.param("services:\n  a:\n    image: redis\n    privileged: true\n", id="privileged"),
        pytest.param("services:\n  a:  # e2i-fix: ignore[cap-drop]\n    image: redis\n", id="opted out"),
        pytest.param("services:\n  a:\n    image: ${IMAGE}\n", id="image from a variable"),
        pytest.param("services:\n  a:\n    image: mher/flower\n    user: root\n", id="non-root image run as root"),
        pytest.param("services:\n  a:\n    image: example/x\n    user: ${UID}\n", id="user from a variable"),
        pytest.param("x-c: &c\n  cap_add: [X]\nservices:\n  a:\n    <<: *c\n    image: redis\n", id="cap_add merged"),
    ],
)
def test_noop(tmp_path: Path, text: str) -> None:
    f = one(tmp_path, text)
    assert apply(ID, tmp_path) == 0
    assert f.read_text() == text


def test_an_override_that_sets_the_key_is_not_contradicted(tmp_path: Path) -> None:
    one(tmp_path, "services:\n  a:\n    image: redis\n")
    (tmp_path / "compose.override.yaml").write_text("services:\n  a:\n    cap_drop: [NET_RAW]\n")
    assert apply(ID, tmp_path) == 0


def test_a_merged_service_inherits(tmp_path: Path) -> None:
    text = "services:\n  a: &a\n    image: redis:7\n  b:\n    <<: *a\n  c:\n    <<: *a\n    user: '999'\n"
    f = one(tmp_path, text)
    # c runs as another user and needs no capability: a's list would be wrong for it, so a is
    # reported rather than edited, and b and c get keys of their own.
    assert apply(ID, tmp_path) == 1
    model = config_json(tmp_path)["services"]
    assert "cap_drop" not in model["a"]
    assert model["b"]["cap_add"] == ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"]
    assert model["c"]["cap_drop"] == ["ALL"] and "cap_add" not in model["c"]
    text = "services:\n  a: &a\n    image: redis:7\n  b:\n    <<: *a\n"
    f = one(tmp_path, text)
    assert apply(ID, tmp_path) == 1
    model = config_json(tmp_path)["services"]
    assert model["a"]["cap_add"] == model["b"]["cap_add"] == ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"]
    assert f.read_text().count("cap_drop") == 1


def test_option_adds_capabilities(tmp_path: Path) -> None:
    one(tmp_path, "services:\n  a:\n    build: .\n")
    (tmp_path / "Dockerfile").write_text("FROM debian\nUSER nobody\n")
    (tmp_path / ".e2i-fix.toml").write_text(f'[{ID}]\nadd = {{a = ["NET_RAW"]}}\n')
    assert apply(ID, tmp_path) == 1
    assert config_json(tmp_path)["services"]["a"]["cap_add"] == ["NET_RAW"]


def test_documented() -> None:
    doc = registry()[ID].__doc__ or ""
    for heading in ("## What it does", "## Why", "## Example", "## Fix safety", "## Options"):
        assert heading in doc


def test_corpus(tmp_path: Path) -> None:
    """The pass alone over the corpus settles; Compose judges it with the other hardening
    passes in test_hardening_corpus.py."""
    corpus(ID, tmp_path, KEYS)


@pytest.mark.parametrize(("toml", "message"), [
        ('add = ["NET_RAW"]', 'option add must be a table'),
        ('add = {a = "NET_RAW"}', 'option add must be a table'),
])
def test_a_bad_option_is_an_error(tmp_path: Path, toml: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert message in bad_option_is_an_error(ID, tmp_path, toml, capsys)


@pytest.mark.parametrize(("case", "service", "cap_add", "reason"), [
    pytest.param("file-caps", "proxy", ["DAC_OVERRIDE", "NET_BIND_SERVICE"], "/usr/bin/caddy carries file capabilities "
                 "(NET_BIND_SERVICE): without them in the bounding set it fails to start (EPERM)", id="caddy"),
    pytest.param("file-caps", "server", ["NET_BIND_SERVICE"], "/usr/local/bin/server carries file capabilities",
                 id="setcap in its Dockerfile, non-root user"),
    pytest.param("user-this-run", "api", None, "it runs as app (USER app, which non-root-user gives its stage in this "
                 "run), and a non-root process has no capabilities to lose", id="the USER non-root-user adds"),
    pytest.param("user-this-run", "worker", None, "it runs as celery (`user: celery`, which no-force-root sets in this "
                 "run)", id="the user no-force-root sets"),
    pytest.param("user-this-run", "db-tools", ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID"],
                 "its image runs as root: it keeps root's powers", id="a stage that keeps root"),
])
def test_the_decision_and_its_reason(tmp_path: Path, case: str, service: str, cap_add: list[str] | None, reason: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    svc = config_json(FIXTURES / case / "expected")["services"][service]
    assert svc["cap_drop"] == ["ALL"] and svc.get("cap_add") == cap_add
    work = tmp_path / case
    shutil.copytree(FIXTURES / case / "input", work)
    out = check(passes_of(ID, case), work, capsys)
    assert any(f"[{ID}] service {service!r}" in line and reason in line for line in out)


def test_no_run_adds_a_user_and_keeps_root_capabilities(tmp_path: Path) -> None:
    """The user decision is one: with non-root-user in the run, the service it gives a USER
    loses root's capabilities; without it (not selected, or its unsafe fix not allowed), the
    same service keeps them, and its Dockerfile keeps running as root."""
    root = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID"]
    for ids, unsafe, user_added, caps in [("non-root-user,cap-drop", True, True, None),
                                          ("cap-drop", True, False, root),
                                          ("non-root-user,cap-drop", False, False, None)]:
        work = tmp_path / f"{ids}-{unsafe}"
        shutil.copytree(FIXTURES / "user-this-run" / "input", work)
        args = ["--apply", "--select", ids, *(["--unsafe-fixes"] if unsafe else []), str(work)]
        main(args)
        added = "USER app" in (work / "api" / "Dockerfile").read_text()
        assert added is user_added
        svc = config_json(work)["services"]["api"]
        if not unsafe:
            assert "cap_drop" not in svc  # cap-drop is unsafe: nothing of it either
            continue
        assert svc["cap_drop"] == ["ALL"] and svc.get("cap_add") == caps


def test_a_process_supervisor_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An image built here whose entrypoint starts supervisord runs several programs as root,
    each with needs of its own: no root profile is guessed for it."""
    text = "services:\n  app:\n    build: .\n"
    f = one(tmp_path, text)
    (tmp_path / "Dockerfile").write_text("FROM debian:12\nCOPY start.sh /start.sh\nENTRYPOINT [\"/start.sh\"]\n")
    (tmp_path / "start.sh").write_text("#!/bin/sh\nexec supervisord -n -c /etc/supervisor/supervisord.conf -u root\n")
    assert apply(ID, tmp_path) == 0
    assert f.read_text() == text
    out = check(ID, tmp_path, capsys)
    assert any("start.sh starts supervisord: the programs it runs as root each need capabilities of their own" in line
               for line in out)


def test_written_in_the_stack_s_order_and_quotes() -> None:
    """The stack writes `cap_add` before `cap_drop`, its items single-quoted: so do new ones."""
    folder = Path(__file__).parent / "fixtures" / ID / "convention" / "expected"
    text = (folder / "compose.yaml").read_text()
    assert text.endswith("  cache:\n    image: redis:7\n    cap_add:\n      - 'CHOWN'\n      - 'DAC_OVERRIDE'\n"
                         "      - 'SETGID'\n      - 'SETUID'\n    cap_drop:\n      - 'ALL'\n")
    assert config_json(folder)["services"]["cache"]["cap_drop"] == ["ALL"]


@pytest.mark.parametrize(("service", "why"), [
    pytest.param("web", "web/root/docker/helpers.sh runs su, which goes through PAM",
                 id="helpers sourced through a variable the script defaults"),
    pytest.param("cron", "cron/entrypoint.d/20-crontab.sh runs su, which goes through PAM",
                 id="a script of the .d folder run-parts runs"),
])
def test_scripts_reached_through_variables_and_folders(service: str, why: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`source "${ENTRYPOINT_ROOT}/helpers.sh"` after `: "${ENTRYPOINT_ROOT:="/docker"}"`, and the
    scripts of a `.d` folder the entrypoint runs (`find "$ENTRYPOINT_D_ROOT"`, `run-parts`), are
    read: a root process that runs su there keeps AUDIT_WRITE ("su: System error" without it)."""
    out = check(ID, FIXTURES / "scripts-through-variables" / "input", capsys)
    line = next(x for x in out if f"service {service!r}" in x)
    assert "AUDIT_WRITE, CHOWN" in line and why in line
    assert "AUDIT_WRITE" in config_json(FIXTURES / "scripts-through-variables" / "expected")["services"][service]["cap_add"]
    plain = next(x for x in out if "service 'plain'" in x)
    assert "PAM" not in plain and "loses NET_RAW, MKNOD, SYS_CHROOT, AUDIT_WRITE" in plain


def _git(folder: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True,
                   env={"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(folder), "PATH": "/usr/bin:/bin"})


def test_a_release_only_an_untracked_env_gives_is_one_install_s(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`redis:${REDIS_VERSION}` with `REDIS_VERSION="7.2"` only in a `.env` git ignores: that is
    one install's release, not the repository's, and an install that sets 8 would need SETPCAP
    (setpriv exits 127 without it). The service is reported, the variable named; a default
    written in the compose file, or a `.env` git tracks, is the repository's value. (The
    fixture itself, in no git work tree, reads its `.env` as the stack's own: both get the
    Redis 7 set.)"""
    import shutil

    work = tmp_path / "stack"
    shutil.copytree(FIXTURES / "local-env" / "input", work)
    _git(work, "init", "-q")
    _git(work, "add", "compose.yaml", ".gitignore")
    capsys.readouterr()
    main(["--check", "--unsafe-fixes", "--select", ID, str(work)])
    out = capsys.readouterr().out.splitlines()
    cache = next(x for x in out if "service 'cache'" in x)
    assert ("what the redis image does here depends on its release, and its tag comes from REDIS_VERSION, '7.2' "
            "only in .env, a file git ignores (one install's value, not the repository's" in cache)
    assert cache.endswith("(no fix applied)")
    queue = next(x for x in out if "service 'queue'" in x)
    assert "cap_add: [CHOWN, DAC_OVERRIDE, SETGID, SETUID]" in queue and "gosu" in queue
    _git(work, "add", "-f", ".env")
    capsys.readouterr()
    main(["--check", "--unsafe-fixes", "--select", ID, str(work)])
    cache = next(x for x in capsys.readouterr().out.splitlines() if "service 'cache'" in x)
    assert "cap_add: [CHOWN, DAC_OVERRIDE, SETGID, SETUID]" in cache


@pytest.mark.parametrize(("volumes", "dac"), [
    pytest.param("    volumes:\n      - ./certs:/etc/nginx/certs:ro\n", True, id="a folder of TLS keys from the host"),
    pytest.param("    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock:ro\n", False, id="the Docker socket"),
    pytest.param("    volumes:\n      - cache:/var/cache/nginx\n", False, id="a named volume"),
    pytest.param("", False, id="nothing from the host"),
])
def test_a_root_process_that_binds_host_files_keeps_dac_override(tmp_path: Path, volumes: str, dac: bool) -> None:
    """nginx's master runs as root and reads the keys it binds from the host: a key of mode
    0600 that a host user owns (mkcert's, a certbot copy chowned to the user) is read only
    through DAC_OVERRIDE."""
    text = "services:\n  web:\n    image: nginx:1.27\n    ports: ['443:443']\n" + volumes
    if "cache:" in volumes:
        text += "volumes:\n  cache:\n"
    f = one(tmp_path, text)
    assert apply(ID, tmp_path, "--unsafe-fixes") == 1
    got = f.read_text()
    assert ("DAC_OVERRIDE" in got) == dac, got
    assert "NET_BIND_SERVICE" in got and "SETUID" in got
