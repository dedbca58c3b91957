"""The hardening passes together over the corpus, judged by the real Compose CLI: every variant
it accepted is still accepted, and its model changes only at the keys these passes own."""

from __future__ import annotations

import shutil
from pathlib import Path

from e2i_fix import facts
from e2i_fix._main import main
from e2i_fix.passes import _hardening

from conftest import corpus_run
from hardening_cases import corpus

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "e2i"

IDS = "no-new-privileges,cap-drop,read-only-root,localhost-ports"
KEYS = {"security_opt", "cap_drop", "cap_add", "read_only", "tmpfs", "ports"}


def test_compose_accepts_the_corpus_and_means_the_same_but_for_the_hardening_keys(tmp_path: Path) -> None:
    changed = corpus(IDS, tmp_path, KEYS, judge=True)
    assert len(changed) >= 20


def test_crlf_bom_and_missing_final_newline_survive_all_four(tmp_path: Path) -> None:
    from e2i_fix._main import main

    f = tmp_path / "compose.yaml"
    f.write_bytes(b'\xef\xbb\xbfservices:\r\n  db:\r\n    image: postgres:16\r\n    ports:\r\n      - "5432:5432"\r\n'
                  b"    security_opt:\r\n      - label:disable")
    assert main(["--apply", "--unsafe-fixes", "--select", IDS, str(tmp_path)]) == 1
    raw = f.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and not raw.endswith(b"\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert raw.replace(b"\r\n", b"\n").decode("utf-8-sig") == (
        'services:\n  db:\n    image: postgres:16\n    ports:\n      - "127.0.0.1:5432:5432"\n    security_opt:\n'
        "      - label:disable\n      - no-new-privileges:true\n    cap_drop:\n      - ALL\n    cap_add:\n"
        "      - CHOWN\n      - DAC_OVERRIDE\n      - FOWNER\n      - SETGID\n      - SETUID\n    read_only: true\n"
        "    tmpfs:\n      - /var/run/postgresql:size=64m\n      - /tmp:size=64m")
    assert main(["--apply", "--unsafe-fixes", "--select", IDS, str(tmp_path)]) == 0


USER_PASSES = "no-force-root,non-root-user,cap-drop,read-only-root"


def _services(root: Path) -> dict[tuple[str, str], list[facts.Facts]]:
    """Every service of every stack under `root`, in each variant, by (stack folder, name)."""
    from e2i_fix import engine, project

    out: dict[tuple[str, str], list[facts.Facts]] = {}
    for stack in project.discover([root]):
        if not isinstance(stack, project.Stack):
            continue
        ws = engine.Workspace(stack)
        ws.load()
        p = ws.project([])
        for name in p.services:
            out[(str(stack.folder.relative_to(root)), name)] = facts.every(p, name)
    return out


def test_one_user_decision_per_run(tmp_path: Path) -> None:
    """Over the corpus and the example stack, with every pass that decides who a service runs
    as: no service that runs as a non-root user once the run is done (a USER non-root-user
    added, a `user:` no-force-root set, or one it had) is left with root's capabilities, and no
    service that still runs as root is given less than root needs (the image table's set, or
    the root profile for an image built here)."""
    root_profile = set(_hardening.profiles()["root"])
    run, _ = corpus_run(tmp_path / "corpus", lambda *a: main(["--apply", "--unsafe-fixes", "--select", USER_PASSES, *map(str, a)]))
    example = tmp_path / "example"
    shutil.copytree(EXAMPLE, example)
    main(["--apply", "--unsafe-fixes", "--select", USER_PASSES, str(example)])
    shutil.copytree(EXAMPLE, tmp_path / "example-before")
    checked = {"non-root": 0, "root": 0}
    for before_root, after_root in ((run.before_root, run.root), (tmp_path / "example-before", example)):
        before, after = _services(before_root), _services(after_root)
        for key, variants in after.items():
            if not variants or "cap_drop" not in variants[0].config:
                continue
            old = before.get(key) or []
            if old and "cap_drop" in old[0].config:
                continue  # not this run's
            added = {str(c).upper() for c in variants[0].config.get("cap_add") or ()}
            had = {str(c).upper() for c in (old[0].config.get("cap_add") or ())} if old else set()
            file_caps = {c for f in variants for caps in f.file_caps.values() for c in caps}
            if all(not f.user.root for f in variants):
                assert not (added - had - file_caps) & root_profile, (key, added)
                checked["non-root"] += 1
            else:
                f = next(f for f in variants if f.user.root)
                table = f.knowledge.runtime("cap_add")
                want = set(table) if table is not None else root_profile if f.built else set()
                assert want <= added, (key, added, want)
                checked["root"] += 1
    assert checked["non-root"] >= 5 and checked["root"] >= 5, checked
