"""dockerignore: a new `.dockerignore` per build context, never excluding what a COPY needs;
Docker's pattern matching; new files shown from /dev/null and written once; the boundary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e2i_fix import project as proj
from e2i_fix._main import main
from e2i_fix.passes import dockerignore

from conftest import ROOT, fixture_case, layout, snapshot

ID = "dockerignore"
FIXTURES = Path(__file__).parent / "fixtures" / ID
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_fixture(tmp_path: Path, case: str) -> None:
    """`config-only`: a context of a Dockerfile and the two files it copies gets nothing;
    `tests-and-env`, `node`: what they hold and no COPY reads is left out."""
    fixture_case(FIXTURES, case, ID, tmp_path)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def patterns(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]


COMPOSE = "services:\n  app:\n    build: .\n"


@pytest.mark.parametrize(("pat", "path", "hit"), [
    (".git", ".git/HEAD", True),
    (".git", "src/.git", False),
    ("**/__pycache__", "src/a/__pycache__/x.pyc", True),
    ("**/__pycache__", "__pycache__/x.pyc", True),
    ("*.md", "README.md", True),
    ("*.md", "docs/a.md", False),
    ("**/*.md", "docs/a.md", True),
    ("/tests", "tests/test_a.py", True),
    ("docs/", "docs/a.md", True),
    ("compose*.yaml", "compose.yaml", True),
    ("**/*.py[cod]", "a/b.pyc", True),
    ("**/*.py[cod]", "a/b.py", False),
    ("src/*/x", "src/a/x", True),
    ("src/*/x", "src/a/b/x", False),
    ("?at", "cat", True),
])
def test_patterns_match_as_docker_matches_them(pat: str, path: str, hit: bool) -> None:
    assert dockerignore.excluded(path, [pat]) is hit


def test_a_later_exception_brings_a_file_back() -> None:
    assert not dockerignore.excluded(".env.example", [".env", ".env.*", "!.env.example"])
    assert dockerignore.excluded(".env.local", [".env", ".env.*", "!.env.example"])


def test_the_example_keeps_what_its_builds_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "e2i"
    shutil.copytree(ROOT / "examples" / "e2i", root)
    write(root, {".venv/bin/python": "", "src/e2i/__pycache__/a.pyc": ""})  # a developer's checkout
    assert main(["--dry-run", "--select", ID, str(root)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"--- /dev/null\n+++ {(root / '.dockerignore').as_posix()}\n@@ -0,0 +1,")
    assert not (root / ".dockerignore").exists()  # dry-run writes nothing
    assert main(["--apply", "--select", ID, str(root)]) == 1
    got = patterns(root / ".dockerignore")
    for needed in ("src/e2i/api/main.py", "src", "pyproject.toml", "uv.lock", "tests/test_health.py", "README.md"):
        assert not dockerignore.excluded(needed, got), needed  # `COPY . .` in the development stage
    for junk in (".git/config", ".venv/bin/python", "src/e2i/__pycache__/a.pyc", ".env", "docker-compose.yml"):
        assert dockerignore.excluded(junk, got), junk
    assert not dockerignore.excluded(".env.example", got)
    assert main(["--apply", "--select", ID, str(root)]) == 0  # the file is there now


def test_narrow_copies_leave_tests_and_docs_out_but_keep_the_readme(tmp_path: Path) -> None:
    write(tmp_path, {
        "compose.yaml": COMPOSE,
        "Dockerfile": "FROM python:3.12-slim\nCOPY pyproject.toml ./\nCOPY src/ ./src/\nRUN pip install .\n",
        "pyproject.toml": '[project]\nname = "x"\nreadme = "README.md"\n',
        "README.md": "x\n", "CHANGES.md": "y\n", "src/x/__init__.py": "", "tests/test_x.py": "", "docs/index.md": "",
    })
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 1
    got = patterns(tmp_path / ".dockerignore")
    assert "tests" in got and "docs" in got
    assert "*.md" not in got  # the pyproject build reads README.md
    assert not dockerignore.excluded("README.md", got) and not dockerignore.excluded("src/x/__init__.py", got)


def test_a_copy_of_a_named_file_is_never_excluded(tmp_path: Path) -> None:
    write(tmp_path, {
        "compose.yaml": COMPOSE,
        "Dockerfile": "FROM python:3.12-slim\nCOPY requirements.txt .env.defaults ./\nCOPY docs/ /srv/docs/\n",
        "requirements.txt": "", ".env.defaults": "A=1\n", "docs/a.md": "", "tests/test_a.py": "",
    })
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 1
    got = patterns(tmp_path / ".dockerignore")
    assert not dockerignore.excluded(".env.defaults", got)
    assert not dockerignore.excluded("docs/a.md", got)
    assert not dockerignore.excluded("requirements.txt", got)


@pytest.mark.parametrize(("run", "excluded"), [
    ("RUN npm ci\n", True),
    ("", False),  # the image runs on the host's node_modules
])
def test_node_modules_only_where_the_image_installs_its_own(tmp_path: Path, run: str, excluded: bool) -> None:
    write(tmp_path, {
        "compose.yaml": COMPOSE, "package.json": "{}\n", "node_modules/a/index.js": "", ".git/HEAD": "",
        "Dockerfile": f"FROM node:22-alpine\nWORKDIR /app\nCOPY . .\n{run}CMD [\"node\", \"server.js\"]\n",
    })
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 1
    assert dockerignore.excluded("node_modules/a/index.js", patterns(tmp_path / ".dockerignore")) is excluded


def test_a_git_versioned_build_keeps_git(tmp_path: Path) -> None:
    write(tmp_path, {
        "compose.yaml": COMPOSE, "Dockerfile": "FROM python:3.12\nCOPY . /src\nRUN pip install /src\n",
        "pyproject.toml": '[build-system]\nrequires = ["setuptools", "setuptools-scm"]\n', ".venv/pyvenv.cfg": "",
    })
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 1
    assert ".git" not in patterns(tmp_path / ".dockerignore")


def test_a_broad_copy_of_a_local_env_file_is_unsafe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"compose.yaml": COMPOSE, "Dockerfile": "FROM python:3.12\nCOPY . .\n", ".env": "SECRET=1\n"})
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 0
    assert ("unsafe: `COPY . .` takes the whole context, a local .env file included, which the new file leaves out"
            in capsys.readouterr().err)
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    assert dockerignore.excluded(".env", patterns(tmp_path / ".dockerignore"))


@pytest.mark.parametrize(
    ("dockerfile", "note"),
    [
        pytest.param("FROM alpine\nARG URL=https://example.com/tool.tar.gz\nADD ${URL} /opt/\n", None,
                     id="regression: an ADD of a URL through an ARG default takes nothing from the context"),
        pytest.param("FROM alpine\nARG REPO=git@github.com:example/tool.git\nADD ${REPO} /src\n", None,
                     id="a git repository through an ARG"),
        pytest.param("FROM alpine\nARG SRC\nADD ${SRC} /opt/\n",
                     "unsafe: `ADD ${SRC} /opt/` takes a source set through a variable (${SRC}), which may be anything "
                     "in the context, a local .env file included, which the new file leaves out",
                     id="a variable with no value: it may be anything"),
    ],
)
def test_the_unsafe_note_says_only_what_the_dockerfile_does(
        dockerfile: str, note: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"compose.yaml": COMPOSE, "Dockerfile": dockerfile, ".env": "SECRET=1\n", ".venv/pyvenv.cfg": ""})
    main(["--check", "--select", ID, str(tmp_path)])
    out = capsys.readouterr()
    found = [line for line in (out.out + out.err).splitlines() if f"[{ID}]" in line]
    assert len(found) == 1, found
    assert "whole context" not in found[0]
    if note is None:
        assert "; unsafe" not in found[0] and "(no fix applied)" not in found[0]
        assert main(["--apply", "--select", ID, str(tmp_path)]) == 1  # a safe fix: .env is no source
        assert dockerignore.excluded(".env", patterns(tmp_path / ".dockerignore"))
    else:
        assert note in found[0]


@pytest.mark.parametrize("existing", [".dockerignore", "Dockerfile.dockerignore"])
def test_a_context_with_an_ignore_file_gets_none(tmp_path: Path, existing: str) -> None:
    write(tmp_path, {"compose.yaml": COMPOSE, "Dockerfile": "FROM alpine\n", existing: "x\n"})
    before = snapshot(tmp_path)
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 0
    assert snapshot(tmp_path) == before


def test_a_context_outside_the_project_is_reported_never_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "elsewhere", {"Dockerfile": "FROM alpine\nCOPY app /app\n", "app": "", "tests/t.sh": ""})
    project = write(tmp_path / "project", {"compose.yaml": "services:\n  app:\n    build: ../elsewhere\n"})
    assert main(["--apply", "--select", ID, str(project)]) == 0
    assert not (tmp_path / "elsewhere" / ".dockerignore").exists()
    assert "is outside the project" in capsys.readouterr().err


def test_inside_a_git_work_tree_the_boundary_is_the_work_tree(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path, {"images/app/Dockerfile": "FROM alpine\n", "images/app/tests/run.sh": "",
                     "deploy/compose.yaml": "services:\n  app:\n    build: ../images/app\n"})
    assert main(["--apply", "--select", ID, str(tmp_path / "deploy")]) == 1
    assert (tmp_path / "images" / "app" / ".dockerignore").is_file()


def test_a_new_file_that_appears_before_the_write_is_not_overwritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"compose.yaml": COMPOSE, "Dockerfile": "FROM alpine\n", ".env": "A=1\n"})
    from e2i_fix import source

    real = source.write

    def racing(src: source.Source, data: bytes) -> None:
        if src.path.name == ".dockerignore":
            src.path.write_text("mine\n")  # someone else made it meanwhile
        real(src, data)

    monkeypatch.setattr(source, "write", racing)
    assert main(["--apply", "--select", ID, str(tmp_path)]) == 2
    assert (tmp_path / ".dockerignore").read_text() == "mine\n"
    assert "created by someone else" in capsys.readouterr().err


def test_every_corpus_context_keeps_what_its_dockerfiles_copy(tmp_path: Path) -> None:
    root = layout(tmp_path)
    main(["--apply", "--unsafe-fixes", "--select", ID, str(root)])
    made = sorted(root.rglob(".dockerignore"))
    assert made  # the corpus has local builds
    checked = 0
    for stack in (s for s in proj.discover([root]) if isinstance(s, proj.Stack)):
        from e2i_fix import engine
        from e2i_fix.config import Settings
        from e2i_fix.passes import registry

        result = engine.run(stack, [], Settings(registry()))
        assert result.before is not None
        for svc in result.before.services.values():
            b = svc.build
            if b is None or b.context is None or b.doc is None or not (b.context / ".dockerignore").is_file():
                continue
            got = patterns(b.context / ".dockerignore")
            for stage in b.doc.stages:
                for _, sources in stage.copies():
                    for s in sources:
                        norm = s.strip("/")
                        if norm and norm != "." and "$" not in norm and "*" not in norm and "://" not in norm:
                            assert not dockerignore.excluded(norm, got), (b.context, s)
                            checked += 1
    assert checked > 0
    # Idempotent: nothing left to add.
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(root)]) == 0


@pytest.mark.parametrize("files", [
    pytest.param({"Dockerfile": "FROM nginx:1.27\nCOPY nginx.conf /etc/nginx/nginx.conf\nCOPY site.conf /etc/nginx/conf.d/\n",
                  "nginx.conf": "", "site.conf": ""}, id="a Dockerfile and the two config files it copies"),
    pytest.param({"Dockerfile": "FROM python:3.12-slim\nCOPY . /app\n", "app.py": "", "requirements.txt": "",
                  "README.md": "", "tests/test_app.py": "", "docs/index.md": ""},
                 id="a broad copy takes the tests and docs too"),
    pytest.param({"Dockerfile": "FROM alpine\nCOPY run.sh /\n", "run.sh": "", ".vscode/settings.json": "",
                  "docker-compose.override.yml": "services: {}\n", "NOTES.md": ""},
                 id="editor, compose and Markdown files are not worth a file"),
])
def test_no_file_where_it_would_leave_out_nothing_worth_it(tmp_path: Path, files: dict[str, str]) -> None:
    write(tmp_path, {"compose.yaml": COMPOSE, **files})
    before = snapshot(tmp_path)
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 0
    assert snapshot(tmp_path) == before


def test_the_finding_names_what_it_leaves_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"compose.yaml": COMPOSE, "Dockerfile": "FROM node:22-alpine\nCOPY package.json ./\nRUN npm ci\n",
                     "package.json": "{}\n", "node_modules/a/index.js": "", ".git/HEAD": "", "test/a.test.js": ""})
    assert main(["--check", "--select", ID, str(tmp_path)]) == 1
    said = capsys.readouterr().out
    assert "add one that leaves out .git, node_modules, test (" in said, said


def test_env_files_are_left_out_wherever_they_are(tmp_path: Path) -> None:
    """A stack kept in `docker/` with its `.env` there: the context is the repository, and its
    `.env` patterns reach every folder (Docker matches `.env` at the context's root only); the
    example beside it stays in."""
    write(tmp_path, {
        "docker/compose.yaml": "services:\n  app:\n    build:\n      context: ..\n      dockerfile: docker/Dockerfile\n",
        "docker/Dockerfile": "FROM python:3.12-slim\nCOPY . /app\nRUN pip install /app\n",
        "docker/.env": "SECRET_KEY=x\n", "docker/.env.example": "SECRET_KEY=\n",
        "pyproject.toml": '[project]\nname = "x"\n', "x/__init__.py": "",
    })
    assert main(["--apply", "--unsafe-fixes", "--select", ID, str(tmp_path)]) == 1
    got = patterns(tmp_path / ".dockerignore")
    assert dockerignore.excluded("docker/.env", got)
    assert not dockerignore.excluded("docker/.env.example", got)
    assert not dockerignore.excluded("x/__init__.py", got) and not dockerignore.excluded("pyproject.toml", got)
