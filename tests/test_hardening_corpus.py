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
