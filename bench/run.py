#!/usr/bin/env python3
"""Time e2i-fix the way a user runs it: whole processes, paired and repeated.

    pip install -e '.[bench]' && python bench/run.py

Every command is a fresh process timed with `time.perf_counter()` around `subprocess.run`.
The commands of one group run interleaved, once each per repetition (in a rotated order, so no
command always runs first or last), each on a fresh copy of its input (a peer may write).
Ratios are paired: each repetition gives one ratio, and the table shows their median and range.
Wall-clock time is what the targets judge; the process's CPU time (user + system) is shown beside
it because it moves less when something else is using the machine.
The result is markdown on stdout (progress goes to stderr), ending with PASS/FAIL per target;
the exit code is 0 only when every target was measured and passed.

Groups:
- corpus: every stack of ../shared/corpus in its original layout; `e2i-fix --dry-run` over the
  root (as a user runs it: the stacks shared out among one process per CPU) and the same with
  `--jobs 1` (one process), `compose-lint fix` (one process, every compose file), `dclint
  --fix-dry-run` (if npm can install it), and a parse-only floor: one Python process that reads
  every compose file and composes it with libyaml. A pure-Python composer (ruamel.yaml) is shown
  for reference when it is installed.
- synthetic: one generated stack of 10, 100 and 1,000 services, to show how the cost grows.
- startup: `e2i-fix --version` against `python -c pass` and `python -c "import click"`, and one
  small file named alone (the pre-commit case).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
BIN = Path(sys.executable).parent  # the venv's bin dir: run the tools installed beside this Python
PY = sys.executable
# Children may write bytecode even where this shell forbids it: an installed tool runs from its
# cached bytecode, and compiling the package on every run would be measured instead of the tool.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

# Names folder discovery picks up (README, "Usage"); other compose files are named explicitly.
BASE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")

# The floor: read and compose every file named on the command line, nothing else.
FLOOR = """\
import sys, yaml
for p in sys.argv[1:]:
    with open(p, encoding="utf-8-sig") as f:
        yaml.compose(f.read(), Loader=yaml.CSafeLoader)
"""

# The same with ruamel.yaml's round-trip composer (pure Python): what a round-trip tool pays.
RUAMEL = """\
import sys
from ruamel.yaml import YAML
y = YAML(typ="rt")
for p in sys.argv[1:]:
    with open(p, encoding="utf-8-sig") as f:
        y.compose(f.read())
"""


# --- the synthetic stack ---------------------------------------------------------------------

# One group of ten services, the shape of a typical application stack. Each role names the
# roles (earlier in the group) it depends on.
_ROLES: list[tuple[str, list[str]]] = [
    ("db", []),
    ("cache", []),
    ("migrate", ["db"]),
    ("api", ["db", "cache", "migrate"]),
    ("worker", ["db", "cache"]),
    ("scheduler", ["cache", "worker"]),
    ("search", []),
    ("web", ["api"]),
    ("proxy", ["web", "api"]),
    ("mailer", ["cache"]),
]


def _service(role: str, g: int, i: int, deps: list[str]) -> list[str]:
    """The lines of one service (indent 2 under `services:`), as people write them."""
    name = f"{role}-{g}"
    port = 20000 + i
    lines: list[str] = []
    if role == "db":
        lines += [f"  # Primary database of group {g}.",
                  f"  {name}:",
                  "    image: postgres:16-alpine",
                  "    restart: unless-stopped",
                  "    environment:",
                  "      - POSTGRES_USER=app",
                  "      - POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-change-me}",
                  f"      - POSTGRES_DB=app_{g}",
                  "    volumes:",
                  f"      - {name}-data:/var/lib/postgresql/data",
                  "    ports:",
                  f'      - "{port}:5432"',
                  "    healthcheck:",
                  '      test: ["CMD-SHELL", "pg_isready -U app"]',
                  "      interval: 10s",
                  "      timeout: 5s",
                  "      retries: 5"]
    elif role == "cache":
        lines += [f"  {name}:",
                  "    image: redis:7.2-bookworm  # pinned: later releases changed licence",
                  "    command: redis-server --appendonly yes --maxmemory 256mb",
                  "    ports:",
                  f'      - "{port}:6379"',
                  "    healthcheck:",
                  '      test: ["CMD", "redis-cli", "ping"]',
                  "      interval: 5s",
                  "      retries: 10"]
    elif role == "migrate":
        lines += ["  # One-shot job: applies the schema, then exits.",
                  f"  {name}:",
                  "    image: ghcr.io/example/app:1.4.2",
                  '    command: ["python", "-m", "app.migrate"]',
                  "    environment:",
                  f"      - DATABASE_URL=postgresql://app:${{POSTGRES_PASSWORD:-change-me}}@db-{g}:5432/app_{g}",
                  '    restart: "no"']
    elif role in ("api", "worker", "scheduler", "mailer"):
        cmd = {
            "api": "gunicorn app.wsgi:application --bind 0.0.0.0:8000 --workers 4",
            "worker": "celery -A app worker --loglevel=info --concurrency=4",
            "scheduler": "celery -A app beat --loglevel=info",
            "mailer": "python -m app.mailer",
        }[role]
        lines += [f"  {name}:",
                  "    image: ghcr.io/example/app:1.4.2",
                  f"    command: {cmd}",
                  "    environment:",
                  f"      - DATABASE_URL=postgresql://app:${{POSTGRES_PASSWORD:-change-me}}@db-{g}:5432/app_{g}",
                  f"      - REDIS_URL=redis://cache-{g}:6379/0",
                  "      - LOG_LEVEL=${LOG_LEVEL:-info}",
                  f"      - SERVICE_NAME={name}",
                  "      # Feature flags are read once at start-up.",
                  "      - FEATURE_SEARCH=true"]
        if role == "api":
            lines += ["    ports:",
                      f'      - "{port}:8000"',
                      "    healthcheck:",
                      '      test: ["CMD", "curl", "-fsS", "http://localhost:8000/health"]',
                      "      interval: 15s",
                      "      timeout: 3s",
                      "      retries: 3",
                      "      start_period: 20s"]
        if role == "worker":
            lines += ["    tmpfs:",
                      "      - /tmp"]
    elif role == "search":
        lines += [f"  {name}:",
                  "    image: docker.elastic.co/elasticsearch/elasticsearch:8.14.1",
                  "    environment:",
                  "      - discovery.type=single-node",
                  "      - xpack.security.enabled=false",
                  '      - "ES_JAVA_OPTS=-Xms512m -Xmx512m"',
                  "    ports:",
                  f'      - "{port}:9200"']
    elif role == "web":
        lines += [f"  {name}:",
                  "    image: node:20-alpine",
                  '    command: ["npm", "run", "dev", "--", "--host"]',
                  "    working_dir: /app",
                  "    environment:",
                  f"      - VITE_API_URL=http://localhost:{port - 4}",
                  "    ports:",
                  f'      - "{port}:5173"']
    elif role == "proxy":
        lines += ["  # Public entry point.",
                  f"  {name}:",
                  "    image: nginx:1.27-alpine",
                  "    ports:",
                  f'      - "{port}:80"']
    if deps:
        # Half the groups use the short form, half the long form with conditions.
        if g % 2 == 0:
            lines += ["    depends_on:", *(f"      - {d}" for d in deps)]
        else:
            lines += ["    depends_on:"]
            for d in deps:
                lines += [f"      {d}:", "        condition: service_started"]
    return lines


def synthetic_stack(n: int) -> str:
    """A compose file of `n` services: groups of ten (database, cache, migration job, API,
    workers, search, frontend, proxy...), each depending only on earlier services of its group,
    with list-form environments, ports, health checks on some and comments. Deterministic."""
    out = [f"# A synthetic stack of {n} services (bench/run.py).", "", "services:"]
    volumes: list[str] = []
    for i in range(n):
        g, r = divmod(i, len(_ROLES))
        role, needs = _ROLES[r]
        members = {_ROLES[j][0] for j in range(len(_ROLES)) if g * len(_ROLES) + j < n}
        deps = [f"{d}-{g}" for d in needs if d in members]
        out += _service(role, g, i, deps)
        out.append("")
        if role == "db":
            volumes.append(f"{role}-{g}-data")
    if volumes:
        out += ["volumes:", *(f"  {v}:" for v in volumes)]
    return "\n".join(out).rstrip("\n") + "\n"


# --- running ---------------------------------------------------------------------------------


@dataclass
class Command:
    label: str
    argv: list[str]
    prepare: Callable[[Path], Path]  # fresh input under a scratch dir -> the cwd to run in
    ok_codes: tuple[int, ...] = (0, 1)
    times: list[float] = field(default_factory=list)  # wall-clock seconds
    cpu: list[float] = field(default_factory=list)  # user + system seconds of the process
    exit_code: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run_once(cmd: Command, scratch: Path) -> None:
    cwd = cmd.prepare(scratch)  # not timed
    c0 = _cpu()
    t0 = time.perf_counter()
    p = subprocess.run(cmd.argv, cwd=cwd, env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    cmd.times.append(time.perf_counter() - t0)
    # CPU time of the finished child (and of what it waited for): less sensitive to a busy machine.
    cmd.cpu.append(_cpu() - c0)
    cmd.exit_code = p.returncode


def run_group(name: str, cmds: list[Command], reps: int, scratch: Path) -> list[Command]:
    """A warm-up run of each command (it also checks that the command works), then `reps`
    repetitions, each running every command once, in an order rotated by one each time."""
    live = []
    for c in cmds:
        cwd = c.prepare(scratch / "warmup")
        p = subprocess.run(c.argv, cwd=cwd, env=ENV, stdin=subprocess.DEVNULL, capture_output=True, check=False)
        shutil.rmtree(scratch / "warmup", ignore_errors=True)
        c.exit_code = p.returncode
        if p.returncode not in c.ok_codes:
            err = p.stderr.decode(errors="replace").strip().splitlines()
            print(f"  {c.label}: exit {p.returncode}, left out: {err[-1] if err else '(no message)'}", file=sys.stderr)
            continue
        live.append(c)
    for rep in range(reps):
        print(f"  {name}: repetition {rep + 1}/{reps}", file=sys.stderr)
        k = rep % len(live) if live else 0
        for c in live[k:] + live[:k]:
            d = scratch / f"rep{rep}"
            _run_once(c, d)
            shutil.rmtree(d, ignore_errors=True)
    return live


def paired(a: Command, b: Command, cpu: bool = False) -> list[float]:
    xs, ys = (a.cpu, b.cpu) if cpu else (a.times, b.times)
    return [x / y for x, y in zip(xs, ys)]


def ms(t: float) -> str:
    return f"{t * 1000:,.0f}" if t >= 0.1 else f"{t * 1000:,.1f}"


def spread(ts: Sequence[float]) -> str:
    return f"{ms(min(ts))}–{ms(max(ts))}"


def ratio(rs: Sequence[float]) -> str:
    return f"{statistics.median(rs):.2f}× ({min(rs):.2f}–{max(rs):.2f})"


# --- inputs ----------------------------------------------------------------------------------


@dataclass
class CorpusEntry:
    file: str
    repo: str
    path: str
    kind: str

    @property
    def dest(self) -> str:
        return f"{self.repo.replace('/', '__')}/{self.path}"


def read_manifest(corpus: Path) -> list[CorpusEntry]:
    with open(corpus / "MANIFEST.tsv", newline="", encoding="utf-8") as f:
        return [CorpusEntry(r["file"], r["repo"], r["path"], r["kind"]) for r in csv.DictReader(f, delimiter="\t")]


def layout(corpus: Path, entries: list[CorpusEntry], dest: Path) -> Path:
    """The corpus in its original layout: one folder per repository, every kept file."""
    for e in entries:
        out = dest / e.dest
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus / e.file, out)
    return dest


def discovered(rel: str) -> bool:
    """Whether a folder walk finds this compose file by its name (base or override name)."""
    name = rel.rsplit("/", 1)[-1]
    if name in BASE_NAMES:
        return True
    stem, _, ext = name.rpartition(".")
    return ext in ("yml", "yaml") and stem.startswith(("compose.", "docker-compose."))


def copier(src: Path) -> Callable[[Path], Path]:
    def prepare(scratch: Path) -> Path:
        dest = scratch / "in"
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest, symlinks=True)
        return dest
    return prepare


def install_dclint(where: Path) -> Path | None:
    npm = shutil.which("npm")
    if npm is None:
        print("  dclint: npm not found, skipped", file=sys.stderr)
        return None
    try:
        p = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(where), "dclint"],
                           capture_output=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        print("  dclint: npm install timed out, skipped", file=sys.stderr)
        return None
    exe = where / "node_modules" / ".bin" / "dclint"
    if p.returncode != 0 or not exe.exists():
        print(f"  dclint: npm install failed (exit {p.returncode}), skipped", file=sys.stderr)
        return None
    return exe


def version(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (p.stdout.strip() or p.stderr.strip()).splitlines()[-1] if (p.stdout or p.stderr) else "?"


def importable(module: str) -> bool:
    return subprocess.run([PY, "-c", f"import {module}"], capture_output=True, check=False).returncode == 0


# --- the report ------------------------------------------------------------------------------


@dataclass
class Target:
    what: str
    measured: str
    limit: str
    ok: bool | None  # None: could not be measured
    cpu: str = ""  # the same measure in CPU time, for a machine that was busy


def table(title: str, cmds: list[Command], base: Callable[[Command], Command | None], base_name: str) -> list[str]:
    """One row per command; the last column is its paired ratio to its baseline."""
    head = ["", f"### {title}", "",
            f"| command | exit | median ms | min–max ms | CPU ms | ÷ {base_name} (paired: median, range) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    rows = []
    for c in cmds:
        b = base(c)
        r = "–" if b is None else ("1" if b is c else ratio(paired(c, b)))
        rows.append(f"| {c.label} | {c.exit_code} | {ms(c.median)} | {spread(c.times)} | {ms(statistics.median(c.cpu))} | {r} |")
    return head + rows


def machine(extra: dict[str, str]) -> list[str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [(f"- machine: {platform.system()} {platform.release()} {platform.machine()}, "
              f"{usable} usable CPUs (nproc), {cpu or 'CPU model unknown'}"),
             f"- Python: {platform.python_version()} ({sys.executable})"]
    lines += [f"- {k}: {v}" for k, v in extra.items()]
    return lines


@dataclass
class Tools:
    e2i: Path
    lint: Path | None  # compose-lint
    dclint: Path | None
    ruamel: bool
    floor: Path  # the parse-only script
    ruamel_script: Path


def bench_corpus(tools: Tools, corpus: Path, reps: int, tmp: Path) -> tuple[list[str], list[Target]]:
    entries = read_manifest(corpus)
    pristine = layout(corpus, entries, tmp / "corpus")
    files = [e.dest for e in entries if e.kind == "compose"]
    # Folder discovery finds the usual names; the others are named on the same command line.
    extra = [f for f in files if not discovered(f)]
    prep = copier(pristine)
    e2i = Command("e2i-fix --dry-run ROOT" + (f" + {len(extra)} files" if extra else ""),
                  [str(tools.e2i), "--dry-run", ".", *extra], prep)
    # The default shares the stacks out among one process per CPU; one process alone is shown too.
    e2i_one = Command("e2i-fix --dry-run --jobs 1 ROOT" + (f" + {len(extra)} files" if extra else ""),
                      [str(tools.e2i), "--dry-run", "--jobs", "1", ".", *extra], prep)
    cmds = [e2i, e2i_one]
    lint = None
    if tools.lint:
        lint = Command("compose-lint fix FILES", [str(tools.lint), "fix", *files], prep)
        cmds.append(lint)
    if tools.dclint:
        cmds.append(Command("dclint --fix-dry-run FILES", [str(tools.dclint), "--fix-dry-run", *files], prep))
    if tools.ruamel:
        cmds.append(Command("ruamel.yaml round-trip compose (pure Python)", [PY, str(tools.ruamel_script), *files], prep, ok_codes=(0,)))
    floor = Command("parse-only floor (libyaml)", [PY, str(tools.floor), *files], prep, ok_codes=(0,))
    cmds.append(floor)
    print(f"corpus: {len(files)} compose files, {len(entries)} files in all", file=sys.stderr)
    live = run_group("corpus", cmds, reps, tmp / "run")
    repos = len({e.repo for e in entries})
    out = table(f"Corpus: {len(files)} compose files of {repos} repositories ({len(entries)} files with "
                "their Dockerfiles and env files)", live, lambda c: floor if floor in live else None, "parse-only floor")
    targets = []
    what = "corpus: e2i-fix ÷ compose-lint fix"
    if e2i in live and lint in live and lint is not None:
        rs = paired(e2i, lint)
        targets.append(Target(what, ratio(rs), "≤ 0.2×", statistics.median(rs) <= 0.2, ratio(paired(e2i, lint, cpu=True))))
    else:
        targets.append(Target(what, "not measured", "≤ 0.2×", None))
    what = "corpus: e2i-fix ÷ parse-only floor"
    if e2i in live and floor in live:
        rs = paired(e2i, floor)
        targets.append(Target(what, ratio(rs), "≤ 3×", statistics.median(rs) <= 3, ratio(paired(e2i, floor, cpu=True))))
    else:
        targets.append(Target(what, "not measured", "≤ 3×", None))
    return out, targets


def bench_synthetic(tools: Tools, sizes: list[int], reps: int, tmp: Path) -> tuple[list[str], list[Target]]:
    cmds: list[Command] = []
    rows: dict[str, dict[int, Command]] = {"e2i-fix --dry-run": {}, "compose-lint fix": {}, "parse-only floor": {}}
    for n in sizes:
        d = tmp / f"synthetic-{n}"
        d.mkdir()
        (d / "compose.yaml").write_text(synthetic_stack(n), encoding="utf-8")
        prep = copier(d)
        rows["e2i-fix --dry-run"][n] = Command(f"e2i-fix --dry-run ({n:,} services)", [str(tools.e2i), "--dry-run", "."], prep)
        if tools.lint:
            rows["compose-lint fix"][n] = Command(f"compose-lint fix ({n:,} services)", [str(tools.lint), "fix", "compose.yaml"], prep)
        rows["parse-only floor"][n] = Command(f"parse-only floor ({n:,} services)", [PY, str(tools.floor), "compose.yaml"],
                                              prep, ok_codes=(0,))
        cmds += [r[n] for r in rows.values() if n in r]
    live = run_group("synthetic", cmds, reps, tmp / "run")
    size_of = {id(c): n for r in rows.values() for n, c in r.items()}

    def floor_of(c: Command) -> Command | None:
        f = rows["parse-only floor"][size_of[id(c)]]
        return f if f in live else None

    out = table("Synthetic stacks (one compose.yaml)", live, floor_of, "parse-only floor of the same size")
    if len(sizes) > 1:
        # How each tool grows from one size to the next (paired, per repetition).
        steps = list(itertools.pairwise(sizes))
        out += ["", "| time(larger) ÷ time(smaller) | " + " | ".join(f"{a:,} → {b:,} services" for a, b in steps) + " |",
                "| --- |" + " ---: |" * len(steps)]
        for label, r in rows.items():
            cells = [ratio(paired(r[b], r[a])) if a in r and b in r and r[a] in live and r[b] in live else "–"
                     for a, b in steps]
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    e2i = rows["e2i-fix --dry-run"]
    targets = []
    if 1000 in e2i and e2i[1000] in live:
        t = e2i[1000].median
        targets.append(Target("1,000 services: e2i-fix", f"{ms(t)} ms (max {ms(max(e2i[1000].times))})", "< 1,000 ms", t < 1,
                              f"{ms(statistics.median(e2i[1000].cpu))} ms"))
    if 100 in e2i and 1000 in e2i and e2i[100] in live and e2i[1000] in live:
        rs = paired(e2i[1000], e2i[100])
        targets.append(Target("growth: e2i-fix time(1,000) ÷ time(100)", ratio(rs), "≤ 10×", statistics.median(rs) <= 10,
                              ratio(paired(e2i[1000], e2i[100], cpu=True))))
    return out, targets


def bench_startup(tools: Tools, reps: int, tmp: Path) -> tuple[list[str], list[Target]]:
    small = tmp / "small"
    small.mkdir()
    (small / "compose.yaml").write_text(synthetic_stack(3), encoding="utf-8")
    prep = copier(small)
    empty = tmp / "empty"
    empty.mkdir()
    none = copier(empty)
    py_pass = Command("python -c pass", [PY, "-c", "pass"], none, ok_codes=(0,))
    py_click = Command('python -c "import click"', [PY, "-c", "import click"], none, ok_codes=(0,))
    ver = Command("e2i-fix --version", [str(tools.e2i), "--version"], none, ok_codes=(0,))
    named = Command("e2i-fix --dry-run compose.yaml (3 services)", [str(tools.e2i), "--dry-run", "compose.yaml"], prep)
    small_floor = Command("parse-only floor compose.yaml (3 services)", [PY, str(tools.floor), "compose.yaml"], prep,
                          ok_codes=(0,))
    cmds = [py_pass, py_click, ver, named, small_floor]
    if tools.lint:
        cmds.append(Command("compose-lint fix compose.yaml (3 services)", [str(tools.lint), "fix", "compose.yaml"], prep))
    live = run_group("startup", cmds, reps, tmp / "run")
    out = table("Start-up, and one small file named alone (the pre-commit case)", live,
                lambda c: py_click if py_click in live else None, '`python -c "import click"`')
    targets = []
    if ver in live and py_click in live:
        rs = paired(ver, py_click)
        targets.append(Target('e2i-fix --version ÷ python -c "import click"', ratio(rs), "≤ 1.5×", statistics.median(rs) <= 1.5,
                              ratio(paired(ver, py_click, cpu=True))))
    what = "one small file named alone ÷ parse-only floor on it"
    if named in live and small_floor in live:
        rs = paired(named, small_floor)
        out += ["", f"One small file named alone ÷ the parse-only floor on the same file (paired): {ratio(rs)}; "
                    f"in CPU time {ratio(paired(named, small_floor, cpu=True))}."]
        targets.append(Target(what, ratio(rs), "≤ 2×", statistics.median(rs) <= 2, ratio(paired(named, small_floor, cpu=True))))
    else:
        targets.append(Target(what, "not measured", "≤ 2×", None))
    return out, targets


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=11, help="repetitions of each group (default 11)")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the shared corpus folder")
    ap.add_argument("--sizes", default="10,100,1000", help="synthetic stack sizes (default 10,100,1000)")
    ap.add_argument("--no-dclint", action="store_true", help="do not install and time dclint")
    ap.add_argument("--only", default="corpus,synthetic,startup", help="groups to run, comma-separated")
    args = ap.parse_args(argv)
    if args.reps < 1:
        ap.error("--reps must be at least 1")
    groups = {g.strip() for g in args.only.split(",")}
    sizes = sorted({int(s) for s in args.sizes.split(",")})

    e2i = BIN / "e2i-fix"
    if not e2i.exists():
        print(f"e2i-fix is not installed beside {PY}: run `pip install -e '.[bench]'` with this Python", file=sys.stderr)
        return 2
    lint: Path | None = BIN / "compose-lint"
    if lint is not None and not lint.exists():
        print("compose-lint is not installed beside this Python (`pip install -e '.[bench]'`): its rows are left out", file=sys.stderr)
        lint = None
    listed = subprocess.run([str(e2i), "--list-passes"], capture_output=True, text=True, check=False).stdout
    ids = [line.split()[0] for line in listed.splitlines() if line.strip()]  # the default run: every pass
    versions = {"e2i-fix": version([str(e2i), "--version"]) + (f" with every pass ({len(ids)}: {', '.join(ids)})" if ids else ""),
                "PyYAML": version([PY, "-c", "import yaml; print(yaml.__version__, 'with libyaml' if yaml.__with_libyaml__ else 'WITHOUT libyaml')"]),
                "click": version([PY, "-c", "import importlib.metadata as m; print(m.version('click'))"])}
    if lint:
        versions["compose-lint"] = version([str(lint), "--version"])
    ruamel = importable("ruamel.yaml")
    if ruamel:
        versions["ruamel.yaml"] = version([PY, "-c", "import ruamel.yaml; print(ruamel.yaml.__version__)"])

    out: list[str] = []
    targets: list[Target] = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="e2i-bench-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "floor.py").write_text(FLOOR)
        (tmp / "ruamel_compose.py").write_text(RUAMEL)
        dclint = None
        if "corpus" in groups and not args.no_dclint:
            dclint = install_dclint(tmp / "npm")
            if dclint is not None:
                versions["dclint"] = version([str(dclint), "--version"])
        tools = Tools(e2i, lint, dclint, ruamel, tmp / "floor.py", tmp / "ruamel_compose.py")
        if "corpus" in groups:
            if (args.corpus / "MANIFEST.tsv").is_file():
                o, t = bench_corpus(tools, args.corpus, args.reps, tmp)
                out += o
                targets += t
            else:
                print(f"corpus: {args.corpus / 'MANIFEST.tsv'} is missing, group left out", file=sys.stderr)
        if "synthetic" in groups:
            o, t = bench_synthetic(tools, sizes, args.reps, tmp)
            out += o
            targets += t
        if "startup" in groups:
            o, t = bench_startup(tools, args.reps, tmp)
            out += o
            targets += t

    print("## e2i-fix benchmark")
    print()
    print("\n".join(machine(versions)))
    print(f"- {args.reps} repetitions; in each, every command of a group runs once (rotated order), "
          "on a fresh copy of its input; wall-clock time of the whole process")
    print(f"- load average (1 min) before / after: {load0:.2f} / {os.getloadavg()[0]:.2f}")
    print("\n".join(out))
    print()
    print("### Targets")
    print()
    print("| target | measured (wall-clock) | limit | result | the same in CPU time |")
    print("| --- | --- | --- | --- | --- |")
    for tg in targets:
        res = "n/a" if tg.ok is None else ("PASS" if tg.ok else "FAIL")
        print(f"| {tg.what} | {tg.measured} | {tg.limit} | {res} | {tg.cpu} |")
    return 0 if all(tg.ok is True for tg in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
