"""Suppressions: `# e2i-fix: ignore[ID]` on the line above, `# e2i-fix: skip-file`, and the
report of a suppression that suppresses nothing. A small Dockerfile pass stands in for real ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from e2i_fix import _main, suppress
from e2i_fix.config import Settings
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.passes import logging, unused_suppression
from e2i_fix.project import Project


def _cache_mounts(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    """Every RUN without a mount gets a cache mount (reported at the instruction)."""
    for path, doc in sorted(project.dockerfiles.items()):
        if doc is None:
            continue
        for ins in doc.instructions:
            if ins.name == "RUN" and "--mount" not in ins.args:
                yield Fix("mounts", "RUN without a cache mount", path, ins.line, 1,
                          (Edit(path, ins.start + 4, ins.start + 4, "--mount=type=cache,target=/root/.cache "),))


MOUNTS = SimpleNamespace(ID="mounts", SUMMARY="cache mounts", DEFAULTS={}, SAFETY=Safety.SAFE, run=_cache_mounts,
                         READS=frozenset({"build"}), __doc__="mounts: test.\n")
PASSES: dict[str, Any] = {"mounts": MOUNTS, "logging": logging, "unused-suppression": unused_suppression}
COMPOSE = "services:\n  app:\n    build: .\n    logging:\n      driver: local\n"
DOCKERFILE = (
    "FROM python:3.12\n"
    "# e2i-fix: ignore[mounts]\n"
    "RUN pip install \\\n"
    "    requests\n"
    "COPY . /app\n"
    "RUN pip install -e /app\n"
)


def stack(tmp_path: Path, dockerfile: str = DOCKERFILE, compose: str = COMPOSE) -> Path:
    (tmp_path / "compose.yaml").write_text(compose)
    (tmp_path / "Dockerfile").write_text(dockerfile)
    return tmp_path


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str = "check", **kw: Any) -> tuple[int, list[str]]:
    code = _main._run([tmp_path], mode, Settings(PASSES, **kw), "text", use_config=False)
    return code, [line for line in capsys.readouterr().out.splitlines()]


def test_ignore_on_the_line_above_an_instruction(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack(tmp_path)
    code, lines = check(tmp_path, capsys)
    assert code == 1
    assert lines == [f"{tmp_path / 'Dockerfile'}:6:1: [mounts] RUN without a cache mount"]
    assert _main._run([tmp_path], "apply", Settings(PASSES), "text", use_config=False) == 1
    assert (tmp_path / "Dockerfile").read_text() == DOCKERFILE.replace(
        "RUN pip install -e", "RUN --mount=type=cache,target=/root/.cache pip install -e")


def test_skip_file_keeps_every_fix_out_of_that_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack(tmp_path, "# e2i-fix: skip-file\n" + DOCKERFILE.replace("# e2i-fix: ignore[mounts]\n", ""),
          "# e2i-fix: skip-file\nservices:\n  app:\n    build: .\n")
    code, lines = check(tmp_path, capsys)
    assert (code, lines) == (0, [])


def test_a_suppression_that_suppresses_nothing_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = DOCKERFILE.replace("COPY . /app\n", "# e2i-fix: ignore[mounts, nope]\nCOPY . /app\n")
    stack(tmp_path, text, "services:\n  app:\n    build: .\n    # e2i-fix: ignore\n    logging:\n      driver: local\n")
    code, lines = check(tmp_path, capsys)
    df, compose = tmp_path / "Dockerfile", tmp_path / "compose.yaml"
    assert code == 1
    assert lines == [
        f"{df}:7:1: [mounts] RUN without a cache mount",
        f"{df}:5:1: [unused-suppression] `# e2i-fix: ignore[mounts, nope]`: unknown pass id nope (no fix applied)",
        f"{df}:5:1: [unused-suppression] `# e2i-fix: ignore[mounts, nope]`: nothing to suppress for mounts (no fix applied)",
        f"{compose}:4:5: [unused-suppression] `# e2i-fix: ignore` suppresses nothing (no fix applied)",
    ]
    # Not selected, not reported; and a pass that did not run is not judged.
    assert all("unused-suppression" not in line for line in check(tmp_path, capsys, ignore={"unused-suppression"})[1])
    lines = check(tmp_path, capsys, select={"logging", "unused-suppression"})[1]
    assert not any("nothing to suppress for mounts" in line for line in lines)


def test_an_unused_skip_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack(tmp_path, "# e2i-fix: skip-file\nFROM scratch\nCOPY x /x\n")
    code, lines = check(tmp_path, capsys)
    assert code == 1
    assert lines == [f"{tmp_path / 'Dockerfile'}:1:1: [unused-suppression] `# e2i-fix: skip-file` suppresses nothing (no fix applied)"]


def test_ignore_above_a_compose_service_covers_its_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "services:\n  # e2i-fix: ignore[logging]\n  web:\n    image: nginx\n  db:\n    image: postgres\n"
    (tmp_path / "compose.yaml").write_text(text)
    code, lines = check(tmp_path, capsys)
    assert code == 1
    assert [line.split(": ", 1)[1] for line in lines] == ["[logging] service 'db' has no log rotation: add `logging: *default-logging`"]


@pytest.mark.parametrize(("text", "expected"), [
    ("# e2i-fix: ignore[a]\nRUN x \\\n  y \\\n  z\nRUN w\n", [(1, frozenset({"a"}), 2, 4)]),
    ("# e2i-fix: ignore\n\n# why\nweb:\n  image: x\n\n  ports: []\ndb:\n", [(1, None, 4, 7)]),
    ("  # e2i-fix: ignore[a,b]\r\n  web:\r\n    image: x\r\n  db: {}\r\n", [(1, frozenset({"a", "b"}), 2, 3)]),
    ("x: 1  # e2i-fix: ignore[a]\n", []),  # a trailing comment is the per-service opt-out, not this
    ("#e2i-fix:skip-file\nRUN x\n", [(1, frozenset(), 0, 0)]),
    ("# e2i-fix: ignore[a]\n", [(1, frozenset({"a"}), 0, 0)]),  # nothing below it
])
def test_what_a_comment_covers(text: str, expected: list[tuple[int, frozenset[str] | None, int, int]]) -> None:
    assert [(c.line, c.ids, c.first, c.last) for c in suppress.comments(text)] == expected


def test_an_error_finding_is_never_suppressed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad option value is an error of the run: a skip-file does not hide it."""
    (tmp_path / "compose.yaml").write_text("# e2i-fix: skip-file\nservices:\n  web:\n    image: nginx\n")
    from e2i_fix.passes import tmpfs_size

    settings = Settings({**PASSES, "tmpfs-size": tmpfs_size})
    settings.pass_options["tmpfs-size"] = {"size": "ten megabytes"}
    code = _main._run([tmp_path], "check", settings, "text", use_config=False)
    err = capsys.readouterr().err
    assert code == 2 and "[tmpfs-size] option size = 'ten megabytes' is not a size" in err
