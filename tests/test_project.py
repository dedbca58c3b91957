"""The Project index: stacks found on disk, services merged across files, builds followed into
Dockerfile stages."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2i_fix import dockerfile, project, source
from e2i_fix.engine import Workspace


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def index(root: Path, *names: str) -> project.Project:
    stack = project.Stack(root, [root / n for n in names])
    ws = Workspace(stack)
    ws.load()
    return ws.project([])


def test_discover_groups_by_folder(tmp_path: Path) -> None:
    write(tmp_path, {
        "compose.yaml": "services: {}\n",
        "compose.override.yaml": "services: {}\n",
        "docker-compose.prod.yml": "services: {}\n",
        "notes.yml": "a: 1\n",
        "sub/docker-compose.yml": "services: {}\n",
        "node_modules/x/compose.yaml": "services: {}\n",
        ".hidden/compose.yaml": "services: {}\n",
    })
    stacks = [s for s in project.discover([tmp_path]) if isinstance(s, project.Stack)]
    assert [[p.name for p in s.compose] for s in stacks] == [
        ["compose.yaml", "compose.override.yaml", "docker-compose.prod.yml"],
        ["docker-compose.yml"],
    ]


def test_services_merge_across_files_and_extends(tmp_path: Path) -> None:
    write(tmp_path, {
        "compose.yaml": (
            "x-common: &common\n  restart: always\n  environment: [A=1]\n"
            "services:\n"
            "  base:\n    <<: *common\n    image: python:3.12\n"
            "  child:\n    extends: base\n    environment:\n      B: '2'\n"
        ),
        "compose.override.yaml": "services:\n  base:\n    environment:\n      - C=3\n    depends_on: [child]\n",
    })
    p = index(tmp_path, "compose.yaml", "compose.override.yaml")
    base = p.services["base"]
    assert [d.doc.path.name for d in base.defs] == ["compose.yaml", "compose.override.yaml"]
    assert base.config["restart"] == "always"
    assert base.config["environment"] == {"A": "1", "C": "3"}
    assert base.config["depends_on"] == {"child": {"condition": "service_started", "required": True}}
    child = p.services["child"]
    assert child.config["image"] == "python:3.12"
    assert child.config["environment"] == {"A": "1", "B": "2"}
    assert base.home is not None and base.home.doc.path.name == "compose.yaml"
    assert p.sharers(base.home.node) == ["base"]


def test_anchored_service_is_shared(tmp_path: Path) -> None:
    write(tmp_path, {"compose.yaml": "services:\n  a: &a\n    image: x\n  b:\n    <<: *a\n  c: *a\n"})
    p = index(tmp_path, "compose.yaml")
    a = p.services["a"]
    assert a.home is not None
    assert sorted(p.sharers(a.home.node)) == ["a", "b", "c"]
    assert p.services["c"].home is None  # an alias is not a place to add keys


DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG PY=3.12
FROM python:${PY}-slim AS base
RUN useradd -m app
USER app
HEALTHCHECK CMD curl -f http://localhost/ || exit 1

FROM base AS dev
RUN pip install \\
    # a comment inside a continuation
    debugpy
COPY --chown=app requirements.txt pyproject.toml ./

FROM base AS prod
USER root
HEALTHCHECK NONE
COPY ["uv.lock", "/app/"]
COPY --from=dev /x /y
RUN <<EOF
echo hi
EOF
CMD ["gunicorn"]
"""


def test_build_follows_into_the_target_stage(tmp_path: Path) -> None:
    write(tmp_path, {
        "compose.yaml": (
            "services:\n"
            "  dev:\n    build: {context: ., dockerfile: docker/Dockerfile, target: dev}\n"
            "  prod:\n    build:\n      context: .\n      dockerfile: docker/Dockerfile\n"
            "  missing:\n    build: ./nowhere\n"
            "  remote:\n    build: https://github.com/x/y.git\n"
        ),
        "docker/Dockerfile": DOCKERFILE,
    })
    p = index(tmp_path, "compose.yaml")
    dev = p.services["dev"].build
    assert dev is not None and dev.stage is not None
    assert dev.stage.name == "dev" and dev.stage.parent is not None and dev.stage.parent.name == "base"
    assert dev.stage.user == "app"  # inherited from base
    assert dev.stage.healthcheck is not None
    assert dev.stage.root_image == "python:${PY}-slim"
    assert [srcs for _, srcs in dev.stage.copies()] == [["requirements.txt", "pyproject.toml"]]
    assert p.services["dev"].has_healthcheck
    prod = p.services["prod"]
    assert prod.build is not None and prod.build.stage is not None and prod.build.stage.name == "prod"
    assert prod.build.stage.user == "root"
    assert prod.build.stage.healthcheck is None and not prod.has_healthcheck  # HEALTHCHECK NONE
    assert [srcs for _, srcs in prod.build.stage.copies()] == [["uv.lock"]]  # --from and heredocs skipped
    missing = p.services["missing"].build
    assert missing is not None and missing.dockerfile == tmp_path / "nowhere" / "Dockerfile" and missing.doc is None
    remote = p.services["remote"].build
    assert remote is not None and remote.context is None


def test_dockerfile_positions_are_exact(tmp_path: Path) -> None:
    doc = dockerfile.parse(source.decode(tmp_path / "Dockerfile", DOCKERFILE.replace("\n", "\r\n").encode()))
    assert doc.directives == {"syntax": "docker/dockerfile:1"}
    for ins in doc.instructions:
        assert doc.text[ins.start :].upper().startswith(ins.name)
        assert doc.text[ins.end : ins.end + 2] in ("\r\n", "")
    run = [i for i in doc.instructions if i.name == "RUN"]
    assert run[1].args == "pip install debugpy"
    assert run[2].heredocs == ("EOF",)
    assert doc.text[run[2].start : run[2].end].endswith("EOF")


@pytest.mark.parametrize(
    ("config", "name", "expected"),
    [
        ({"command": "celery -A app worker -l info"}, "tasks", "worker"),
        ({"command": ["rq", "worker"]}, "q", "worker"),
        ({"command": "celery -A app flower"}, "flower", None),
        ({"command": "gunicorn app:app -k uvicorn.workers.UvicornWorker"}, "x", "api"),
        ({"entrypoint": ["uvicorn"], "command": ["main:app"]}, "x", "api"),
        ({"image": "nginx"}, "backend", "api"),
        ({"image": "nginx"}, "web", None),
        ({"image": "busybox"}, "email-worker", "worker"),
    ],
)
def test_role(config: dict[str, object], name: str, expected: str | None) -> None:
    assert project.role(project.Service(name, [], config)) == expected


@pytest.mark.parametrize(
    ("image", "family"),
    [
        ("redis:7-alpine", "redis"),
        ("docker.io/library/postgres:16@sha256:abc", "postgres"),
        ("ghcr.io/mlflow/mlflow:v2.16.2", "mlflow"),
        ("localhost:5000/team/api", "api"),
        (None, None),
    ],
)
def test_image_family(image: str | None, family: str | None) -> None:
    assert project.image_family(image) == family


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"s": {"a": {"x": 1}}}, {"s": {"a": {"x": 1}}}, []),
        ({"s": {"a": {"x": 1}}}, {"s": {"a": {"x": True}}}, [("s", "a", "x")]),  # equal under ==
        ({"s": {"a": {"x": 1}}}, {"s": {"a": {"x": 1.0}}}, [("s", "a", "x")]),
        ({"s": {"a": {"x": 1, "y": 2}}}, {"s": {"a": {"y": 2, "x": 1}}}, []),  # key order is no change
        ({"s": {"a": {"x": [1]}}}, {"s": {"a": {"x": [1, 2]}}}, [("s", "a", "x")]),
        ({"s": {"a": {}}}, {"s": {"a": {}, "b": {}}}, [("s", "b")]),
    ],
)
def test_model_differences_are_strict_about_types(old: dict[str, object], new: dict[str, object],
                                                  expected: list[tuple[str, ...]]) -> None:
    from e2i_fix import model

    assert sorted(model.differences(old, new)) == expected
