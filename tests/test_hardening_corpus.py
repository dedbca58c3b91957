"""The hardening passes together over the corpus, judged by the real Compose CLI: every variant
it accepted is still accepted, and its model changes only at the keys these passes own."""

from __future__ import annotations

from pathlib import Path

from hardening_cases import corpus

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
