"""Dockerfiles as BuildKit reads them: offsets derived from its line ranges, stages, USER..."""

from __future__ import annotations

from pathlib import Path

import dockerfile as buildkit
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from e2i_fix import dockerfile, source
from e2i_fix.errors import InputError

from conftest import CORPUS, corpus_files


def doc_of(text: str, bom: bool = False) -> dockerfile.DockerfileDoc:
    raw = (("\ufeff" if bom else "") + text).encode()
    return dockerfile.parse(source.decode(Path("Dockerfile"), raw))


def check_offsets(doc: dockerfile.DockerfileDoc) -> None:
    """What every edit relies on: each instruction's offsets point at its keyword and the end
    of its last line, in order, with heredoc bodies after the head and ending in their
    terminator."""
    text = doc.text
    prev = 0
    for ins in doc.instructions:
        assert text[ins.start : ins.start + len(ins.name)].upper() == ins.name
        assert prev <= ins.start <= ins.head_end <= ins.end
        assert text.count("\n", 0, ins.start) + 1 >= ins.line
        assert text.count("\n", 0, ins.end) + 1 == ins.end_line
        for body in ins.bodies:
            assert ins.head_end < body.start <= body.end <= ins.end
            terminator = text[body.start : body.end].replace("\r", "").split("\n")[-1]
            assert terminator.lstrip("\t") == body.name
            assert doc.in_heredoc(body.start) and not doc.in_heredoc(ins.start)
        prev = ins.end


FRAGMENTS = st.sampled_from([
    "RUN echo a", "RUN a \\", "  b \\", "  c", "# comment", "", "   ", "  # indented comment",
    "RUN <<EOF", "RUN <<-EOF bash", "\techo hi", "EOF", "\tEOF", "COPY <<'X' /a", "X",
    "RUN cat <<A <<B", "A", "B", "USER app", "FROM x AS y", "run lower", "RUN a `", "  `",
    "ENV A=1 \\", "\\", "RUN x \\ ", "RUN --mount=type=cache,target=/c pip install x",
    "RUN <<\"Q\"", "Q", "COPY a b", "WORKDIR /app", "HEALTHCHECK CMD true",
])


@settings(max_examples=400, suppress_health_check=list(HealthCheck), deadline=None)
@given(st.lists(FRAGMENTS, max_size=12), st.booleans(), st.booleans(), st.booleans(),
       st.sampled_from(["", "# escape=`\n", "# syntax=docker/dockerfile:1\n", "# syntax=docker/dockerfile:1\n# escape=`\n"]))
def test_offsets_follow_buildkit(lines: list[str], crlf: bool, bom: bool, final_newline: bool, head: str) -> None:
    text = head + "FROM a\n" + "\n".join(lines) + ("\n" if final_newline else "")
    if crlf:
        text = text.replace("\n", "\r\n")
    try:
        commands = buildkit.parse_string(text)
    except buildkit.GoParseError:
        with pytest.raises(InputError):
            doc_of(text, bom)
        return
    doc = doc_of(text, bom)
    assert [(i.line, i.end_line) for i in doc.instructions] == [(c.start_line, c.end_line) for c in commands if c.cmd]
    check_offsets(doc)


DOCKERFILES = [c for c in corpus_files("dockerfile")]


@pytest.mark.parametrize("c", DOCKERFILES, ids=[c.id for c in DOCKERFILES])
def test_corpus_dockerfiles(c) -> None:  # type: ignore[no-untyped-def]
    s = source.read(CORPUS / c.file)
    doc = dockerfile.parse(s)
    assert doc.instructions and doc.stages
    check_offsets(doc)


def test_stages_user_workdir_installers() -> None:
    doc = doc_of(
        "# syntax=docker/dockerfile:1\n"
        "FROM python:3.12-slim AS base\n"
        "WORKDIR /app\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends curl \\\n"
        "    # keep the list short\n"
        " && pip install --no-cache-dir -r requirements.txt\n"
        "FROM base AS final\n"
        "WORKDIR src\n"
        "USER app\n"
        "RUN --mount=type=cache,target=/root/.cache/uv,sharing=locked uv sync --frozen\n"
        "EXPOSE 8000/tcp\n"
        "VOLUME /data\n"
        "COPY --chown=app pyproject.toml uv.lock ./\n"
    )
    assert doc.directives == {"syntax": "docker/dockerfile:1"} and doc.directive_lines == 1
    base, final = doc.stages
    assert final.parent is base and final.root_image == "python:3.12-slim"
    assert final.workdir == "/app/src" and final.user == "app"
    assert base.installers() == {"apt", "pip"}
    run = final.last("RUN")
    assert run is not None and run.installers() == {"uv"} and final.user_at(run) == "app"
    assert run.mounts() == [{"type": "cache", "target": "/root/.cache/uv", "sharing": "locked"}]
    assert base.instructions[1].line == 4 and base.instructions[1].end_line == 6
    assert final.exposed() == ["8000/tcp"] and final.volumes() == ["/data"]
    assert [(i.name, srcs) for i, srcs in final.copies()] == [("COPY", ["pyproject.toml", "uv.lock"])]
    assert doc.stage("FINAL") is final and doc.stage(None) is final and doc.stage("nope") is None


def test_heredoc_bodies_are_marked() -> None:
    doc = doc_of("FROM alpine\nRUN <<EOF\nset -e\npip install x\nEOF\nUSER nobody\n")
    run = doc.instructions[1]
    assert run.heredocs == ("EOF",) and run.installers() == {"pip"}
    assert doc.text[run.start:run.head_end] == "RUN <<EOF"
    assert doc.text[run.bodies[0].start:run.bodies[0].end] == "set -e\npip install x\nEOF"
    assert doc.instructions[2].line == 6


def test_rejected_by_buildkit() -> None:
    with pytest.raises(InputError, match="BuildKit"):
        doc_of("FROM a\nRUN <<EOF\nnever closed\n")


def test_crlf_and_bom_offsets() -> None:
    doc = doc_of("FROM a\r\nRUN a \\\r\n  b\r\nUSER x\r\n", bom=True)
    assert [(i.name, i.line, i.end_line) for i in doc.instructions] == [("FROM", 1, 1), ("RUN", 2, 3), ("USER", 4, 4)]
    assert doc.text[doc.instructions[1].start:doc.instructions[1].end] == "RUN a \\\r\n  b"


def test_no_fork_once_buildkit_is_loaded() -> None:
    """The parser's Go threads do not survive a fork: work is then done in this process."""
    import os

    from e2i_fix import workers

    doc_of("FROM alpine\n")  # the parser is loaded
    parent = os.getpid()
    assert workers.run(lambda i: (i, os.getpid()), [[0], [1], [2]]) == {0: (0, parent), 1: (1, parent), 2: (2, parent)}
