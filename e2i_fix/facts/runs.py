"""What a service runs, and what that does: the shell it runs and the entrypoint scripts in its
build context, whether it must start as root, the paths it writes, its mounts, the ports it
serves and the binaries that carry file capabilities. Read through `facts.Facts`."""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from e2i_fix.facts import Mount, Script

if TYPE_CHECKING:
    from e2i_fix.dockerfile import Instruction
    from e2i_fix.facts import Facts

_SHELLS = {"sh", "bash", "ash", "dash", "zsh", "busybox"}
_SCRIPT_LIMIT = 65536


class Write(NamedTuple):
    """A path the service writes at run time, with why the tool thinks so."""

    path: str
    why: str  # "its entrypoint redirects into it", "the image writes it (table)"


# --- the shell it runs ----------------------------------------------------------------------


def shell_string(words: list[str]) -> str | None:
    """The script of `sh -c SCRIPT ...` (also `/bin/bash -ec`, `bash -lc`), else None."""
    if not words or Path(words[0]).name not in _SHELLS:
        return None
    i = 1
    if Path(words[0]).name == "busybox":
        if len(words) < 2 or words[1] not in ("sh", "ash"):
            return None
        i = 2
    while i < len(words) and words[i].startswith("-") and words[i] != "-c":
        if "c" in words[i][1:] and not words[i].startswith("--"):
            return words[i + 1] if i + 1 < len(words) else None
        i += 1
    if i < len(words) and words[i] == "-c" and i + 1 < len(words):
        return words[i + 1]
    return None


def scripts(f: Facts) -> tuple[Script, ...]:
    """`sh -c` strings of the entrypoint and command, shell-form instructions, and the script
    files they name that the build context (or a bind mount) holds, one call deep."""
    out: list[Script] = []
    for words, origin in (f.entrypoint, f.command):
        if not words:
            continue
        text = shell_string(words)
        if text is not None:
            out.append(Script(text, origin or "its command"))
    seen: set[Path] = set()
    candidates = [w for w in f.argv if _looks_like_script(w)]
    if f.argv and not candidates and "/" in f.argv[0]:
        candidates.append(f.argv[0])
    i = 0
    while i < len(candidates) and len(seen) < 8:
        host = host_file(f, candidates[i])
        i += 1
        if host is None or host in seen:
            continue
        seen.add(host)
        text = _read(host)
        if text is None:
            continue
        out.append(Script(text, _shown(f, host), host))
        for m in re.finditer(r"(?:^|[\s;&|(\"'])(?:\.|source|exec|sh|bash)?\s*(/[\w./-]+\.sh|\./[\w./-]+\.sh)\b", text):
            candidates.append(m.group(1))
    # Scripts the stages copy from the context with an entrypoint-like name, named or not:
    # an image often starts them from a path its ENTRYPOINT reaches indirectly.
    for _, src, host in _copied(f):
        if host in seen or not (src.endswith(".sh") or "entrypoint" in src.lower()):
            continue
        if host.is_file():
            seen.add(host)
            text = _read(host)
            if text is not None:
                out.append(Script(text, _shown(f, host), host))
    return tuple(out)


def _looks_like_script(word: str) -> bool:
    return word.endswith(".sh") or "entrypoint" in word.lower() and "/" in word


def _read(path: Path) -> str | None:
    try:
        if path.is_file() and path.stat().st_size < _SCRIPT_LIMIT:
            return path.read_text("utf-8", "replace")
    except OSError:
        pass
    return None


def _shown(f: Facts, path: Path) -> str:
    try:
        return os.path.relpath(path, f.project.folder)
    except ValueError:
        return str(path)


def _copied(f: Facts) -> list[tuple[str, str, Path]]:
    """(container path, source as written, host path) of every COPY/ADD from the build context
    in the stage chain, directories as written."""
    ctx = f.context
    if ctx is None:
        return []
    out: list[tuple[str, str, Path]] = []
    workdir: str | None = None
    for st in f.chain:
        for ins in st.instructions:
            if ins.name == "WORKDIR" and ins.operands:
                new = f.expand(ins.operands[0], st, ins)
                workdir = new if new.startswith("/") or not workdir else posixpath.join(workdir, new)
            if ins.name not in ("COPY", "ADD") or "from" in ins.flags or ins.heredocs:
                continue
            ops = [f.expand(o, st, ins) for o in ins.operands]
            if len(ops) < 2:
                continue
            srcs, dest = ops[:-1], ops[-1]
            if not dest.startswith("/"):
                dest = posixpath.join(workdir or "/", dest)
            into = dest.endswith("/") or len(srcs) > 1
            for src in srcs:
                if "://" in src or "*" in src or "?" in src:
                    continue
                host = Path(os.path.normpath(ctx / src))
                target = posixpath.join(dest, posixpath.basename(src.rstrip("/"))) if into and src not in (".", "./") else dest
                if src in (".", "./") or host.is_dir():
                    target = dest
                out.append((posixpath.normpath(target), src, host))
    return out


def host_file(f: Facts, container_path: str) -> Path | None:
    """The file of the build context (or a bind mount) that is at `container_path` in the
    container, where the stack tells."""
    path = container_path
    if not path.startswith("/"):
        if path.startswith("./") or "/" in path:
            path = posixpath.join(f.workdir or "/", path)
        else:
            return None  # a command found on PATH
    path = posixpath.normpath(path)
    for m in f.mounts:
        if m.kind == "bind" and m.host is not None and (path == m.target or path.startswith(m.target.rstrip("/") + "/")):
            rel = posixpath.relpath(path, m.target)
            got = m.host if rel == "." else m.host / rel
            return got if got.is_file() else None
    best: Path | None = None
    for target, _, host in _copied(f):
        if path == target and host.is_file():
            best = host
        elif path.startswith(target.rstrip("/") + "/") and host.is_dir():
            cand = host / posixpath.relpath(path, target)
            if cand.is_file():
                best = cand
    return best


# --- root -----------------------------------------------------------------------------------

_STEP_DOWN = re.compile(
    r"(?:^|[\s;&|(`'\"])(?:exec\s+)?(?:/\S*/)?(gosu|su-exec|setpriv|runuser|s6-setuidgid|chpst|setuidgid|sudo\s+-u)\b")
_SU = re.compile(r"(?:^|[\s;&|(`'\"])(?:exec\s+)?su\s+(?:-\S*\s+)*[-\w$\"{}.]+\s+(?:-\S*\s+)*-(?:c|s)\b|(?:^|[\s;&|(])su\s+-\s+\S+\s+-c\b")
_SUPERVISORS = re.compile(r"(?:^|[\s/\"'])(supervisord|s6-svscan|runsvdir|/init|tini\s+-s|systemd)\b")
_ROOT_WORK = re.compile(
    r"(?:^|[\s;&|(])(chown|usermod|groupmod|useradd|adduser|addgroup|groupadd|update-ca-certificates|apt-get|apk\s+add|sysctl)\b")
_ETC_WRITE = re.compile(r"(?:>>?\s*|\btee\s+(?:-a\s+)?|\bsed\s+-i\S*\s+.*?|\bcp\s+\S+\s+|\bmv\s+\S+\s+|-o\s+)(/etc/[\w./-]+)")


def step_down(f: Facts) -> str | None:
    for s in f.scripts:
        body = _code(s.text)
        m = _STEP_DOWN.search(body)
        if m:
            return m.group(1).split()[0]
        if _SU.search(body):
            return "su"
    words = " ".join(f.argv)
    m = _STEP_DOWN.search(words)
    if m:
        return m.group(1).split()[0]
    k = f.knowledge
    tool = k.runtime("step_down")
    if isinstance(tool, str):
        return tool
    # A script of the build that hands over to the base image's entrypoint keeps its step-down.
    base_tool = f.base_knowledge.runtime("step_down") if f.built else None
    if isinstance(base_tool, str) and any("docker-entrypoint" in s.text for s in f.scripts):
        return base_tool
    return None


def starts_as_root(f: Facts) -> str | None:
    tool = f.step_down
    if tool is not None:
        return f"its entrypoint starts as root and steps down with {tool}"
    texts = [(s.origin, _code(s.text)) for s in f.scripts]
    words = " ".join(f.argv)
    for origin, body in [*texts, ("its command", words)]:
        m = _SUPERVISORS.search(body)
        if m:
            return f"{origin} starts {m.group(1).strip()}, which runs as root"
    for origin, body in texts:
        m = _ETC_WRITE.search(body)
        if m:
            return f"{origin} writes {m.group(1)}"
        m = _ROOT_WORK.search(body)
        if m:
            return f"{origin} runs {m.group(1)}, which needs root"
    for k in (f.knowledge, f.base_knowledge if f.built and f.runs_image is None else None):
        if k is None:
            continue
        why = k.runtime("root_entrypoint")
        if isinstance(why, str) and (k is f.knowledge or not f.argv or f.runs_image is not None):
            return why
    return None


def _code(text: str) -> str:
    """A script without its comment lines."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


# --- writes ---------------------------------------------------------------------------------

_REDIRECT = re.compile(r"(?<![<0-9&])(?:[12]?>>?|&>>?)\s*([\"']?)(/[^\s;&|\"'<>)]+)\1")
_TEE = re.compile(r"\btee\s+(?:-a\s+)?([\"']?)(/[^\s;&|\"']+)")
_SED_I = re.compile(r"\bsed\s+(?:-\w*\s+)*-i\S*\s+[^;&|\n]*?\s(/[^\s;&|\"']+)\s*(?:$|[;&|\n])", re.MULTILINE)
_TOUCHES = re.compile(r"(?:^|[\s;&|(])(?:mkdir(?:\s+-p)?|touch|rm\s+-\w*|ln\s+-\w*\s+\S+|cp\s+(?:-\w+\s+)*\S+|mv\s+\S+)\s+([\"']?)(/[^\s;&|\"']+)")
_FLAG_FILES = re.compile(r"--(?:log-?file|pid-?file|pid|access-logfile|error-logfile|schedule)[= ]([\"']?)(/[^\s\"']+)")
_TEMPLATE_OUT = re.compile(r"\b(?:gomplate\b[^;&|\n]*?(?:-o|--out)\s+|dockerize\b[^;&|\n]*?-template\s+\S+?:)(/[^\s;&|\"']+)")
_NOT_FILES = ("/dev/", "/proc/", "/sys/")


def writes(f: Facts) -> tuple[Write, ...]:
    """Paths the service writes at run time, as far as its image's facts and the shell it runs
    tell. Incomplete by nature: a program's own writes are known only for images in the table."""
    out: dict[str, str] = {}

    def add(path: str, why: str) -> None:
        path = posixpath.normpath(path)
        if not path.startswith(_NOT_FILES) and path not in ("/dev/null", "/dev/stdout", "/dev/stderr"):
            out.setdefault(path, why)

    k = f.knowledge
    for p in k.runtime("writes") or ():
        add(str(p), f"the image writes it ({k.source('writes')})")
    for s in f.scripts:
        body = _code(s.text)
        for rx, what in ((_REDIRECT, "redirects into it"), (_TEE, "tees into it"), (_TOUCHES, "creates or changes it"),
                         (_TEMPLATE_OUT, "renders a template into it")):
            for m in rx.finditer(body):
                add(m.group(m.lastindex or 1), f"{s.origin} {what}")
        for m in _SED_I.finditer(body):
            add(m.group(1), f"{s.origin} edits it in place (sed -i)")
        for m in re.finditer(r"\benvsubst\b[^\n;&|]*>\s*(/[^\s;&|\"']+)", body):
            add(m.group(1), f"{s.origin} renders a template into it (envsubst)")
    words = " ".join(f.argv)
    for m in _FLAG_FILES.finditer(words):
        add(m.group(2), "its command writes it")
    home = _home(f)
    cmd = " ".join([words, *(s.text for s in f.scripts)])
    if re.search(r"\bcelery\b.*\bbeat\b", cmd) and not re.search(r"(?:-s|--schedule)[= ]", cmd):
        add(posixpath.join(f.workdir or "/", "celerybeat-schedule"), "celery beat keeps its schedule file in the working folder")
    if home and re.search(r"(?:^|[\s;&|(/])(?:npm|npx|yarn|pnpm|corepack)\s", cmd):
        add(posixpath.join(home, ".npm") if "npm" in cmd or "npx" in cmd else posixpath.join(home, ".cache"),
            "npm, yarn, pnpm and corepack keep caches and logs under $HOME")
    if home and re.search(r"(?:^|[\s;&|(/])(?:pip3?|uv)\s+(?:install|sync|pip\s+install)\b", cmd):
        add(posixpath.join(home, ".cache"), "a package install at run time writes its cache under $HOME")
    if re.search(r"\b(?:rails\s+(?:s|server)|puma|unicorn)\b", cmd) and f.workdir:
        for sub in ("tmp", "log"):
            add(posixpath.join(f.workdir, sub), "a Rails server writes tmp/ and log/ in its app folder")
    return tuple(Write(p, why) for p, why in out.items())


def _home(f: Facts) -> str | None:
    env = f.env.get("HOME")
    if env and "$" not in env:
        return env
    user = f.user.name
    if user is None:
        return None
    name = user.split(":", 1)[0]
    return "/root" if name in ("root", "0") else f"/home/{name}" if not name.isdigit() else None


# --- mounts ---------------------------------------------------------------------------------


def mounts(f: Facts) -> tuple[Mount, ...]:
    from e2i_fix import model

    top = f.project.model(f.files).get("volumes") or {}
    out: list[Mount] = []
    for v in f.config.get("volumes") or ():
        long = model.long_volume(v)
        if not isinstance(long, dict) or not isinstance(long.get("target"), str):
            continue
        kind = str(long.get("type") or "volume")
        src = long.get("source")
        src = str(src) if src is not None else None
        host = None
        if kind == "bind" and src and "$" not in src:
            host = Path(os.path.normpath(f.project.folder / os.path.expanduser(src)))
        size = None
        if kind == "tmpfs" and isinstance(long.get("tmpfs"), dict):
            size = str(long["tmpfs"].get("size")) if long["tmpfs"].get("size") is not None else None
        external = False
        if kind == "volume" and src and isinstance(top, dict):
            spec = top.get(src)
            external = isinstance(spec, dict) and bool(spec.get("external"))
        out.append(Mount(kind, src, long["target"], bool(long.get("read_only")), host, size, external))
    tmpfs = f.config.get("tmpfs")
    for t in tmpfs if isinstance(tmpfs, list) else [tmpfs] if isinstance(tmpfs, str) else ():
        path, _, opts = str(t).partition(":")
        m = re.search(r"(?:^|,)size=([^,]+)", opts)
        out.append(Mount("tmpfs", None, path, False, None, m.group(1) if m else None))
    return tuple(out)


# --- ports ----------------------------------------------------------------------------------

PORT_FLAG = re.compile(
    r"(?:--port[= ]|--http-port[= ]|(?<![\w-])-p\s+|--listen[= ](?:\S*:)?|(?:--bind|(?<![\w-])-b)[= ]?\s*(?:\S*:))(\d{2,5})\b")
# Servers and the port they listen on when no flag says otherwise.
_DEFAULT_PORTS = (
    (re.compile(r"\b(?:uvicorn|hypercorn|daphne|fastapi\s+run|gunicorn)\b"), 8000, "{} listens on 8000 by default"),
    (re.compile(r"\bmanage\.py\s+runserver\b(?!\s+\S*\d)"), 8000, "Django's runserver listens on 8000 by default"),
    (re.compile(r"\bflask\s+run\b"), 5000, "flask run listens on 5000 by default"),
    (re.compile(r"\b(?:rails\s+(?:s|server)|puma)\b"), 3000, "Rails listens on 3000 by default"),
    (re.compile(r"\bnext\s+(?:start|dev)\b"), 3000, "next listens on 3000 by default"),
    (re.compile(r"\bstreamlit\s+run\b"), 8501, "streamlit listens on 8501 by default"),
    (re.compile(r"\bmlflow\s+(?:server|ui)\b"), 5000, "mlflow server listens on 5000 by default"),
    (re.compile(r"\bjupyter\b"), 8888, "jupyter listens on 8888 by default"),
)
# Tools that take a port of their own and launch the real server after their arguments.
_WRAPPERS = re.compile(r"\b(?:debugpy|ptvsd)\b(?:\s+--?[\w-]+(?:[= ]\S+)?)*?\s+(?=-m\b|\S+\.py\b)|--inspect(?:-brk)?=\S+")


def ports(f: Facts) -> list[tuple[int, str]]:
    """Every port the service may serve, most certain first, each with why."""
    out: dict[int, str] = {}
    for tier in _tiers(f):
        for port, why in tier:
            out.setdefault(port, why)
    return list(out.items())


def listening(f: Facts) -> tuple[set[int], str]:
    """The ports the service listens on by the strongest evidence there is, and that evidence
    (empty when nothing tells, or a variable in its command moves them): the ports its command
    names (a debugger's or inspector's own port left out), else what its proxy config listens
    on, else the default port of the server it runs (uvicorn, gunicorn: 8000), else the image's
    known port (unless a `*PORT*` variable of the service moves it), else the Dockerfile's
    EXPOSE with the service's `ports` and `expose`."""
    tiers = _tiers(f, published=True)
    for i, tier in enumerate(tiers):
        if not tier:
            if i == 0 and "$" in _command_text(f):
                return set(), ""  # a port from a variable is the variable's
            continue
        return {p for p, _ in tier}, "; ".join(dict.fromkeys(why for _, why in tier))
    return set(), ""


def command_ports(f: Facts) -> set[int]:
    """The ports what runs serves by its own word: those its command names, else its server's
    default (an image's EXPOSE says nothing of a command the service gives it)."""
    tiers = _tiers(f)
    return {p for p, _ in tiers[0] or tiers[2]}


def _command_text(f: Facts) -> str:
    text = _WRAPPERS.sub(" ", " ".join(f.argv))
    for s in f.scripts:
        if s.path is None:
            text += " " + _WRAPPERS.sub(" ", s.text)
    return text


def _tiers(f: Facts, published: bool = False) -> list[list[tuple[int, str]]]:
    """The port evidence, strongest first: the command, the proxy config, the server's default,
    the image's known port, EXPOSE (and, with `published`, the service's ports and expose)."""
    from e2i_fix.facts import configs

    text = _command_text(f)
    cmd = f"its command `{' '.join(f.argv)}`" if f.argv else "its command"
    named = [(int(m.group(1)), cmd) for m in PORT_FLAG.finditer(text)]
    m = re.search(r"\brunserver\s+(?:\S*:)?(\d{2,5})\b", text)
    if m:
        named.append((int(m.group(1)), cmd))
    config = [(p, why) for p, why in configs.listens(f)]
    default: list[tuple[int, str]] = []
    if not named:
        port_env = f.env.get("PORT")
        if port_env and port_env.isdigit() and re.search(r"\b(?:gunicorn|node|npm|next|rails|puma)\b", text):
            default.append((int(port_env), "its PORT variable"))
        for rx, port, why in _DEFAULT_PORTS:
            hit = rx.search(text)
            if hit:
                default.append((port, why.format(hit.group(0))))
                break
    image: list[tuple[int, str]] = []
    known = f.knowledge.soft("port")
    env = f.config.get("environment")
    moved = isinstance(env, dict) and any("PORT" in str(k).upper() for k in env)
    if isinstance(known, int) and not moved:
        image.append((known, f"the image's port ({f.knowledge.soft('port_source')})"))
    exposed: list[tuple[int, str]] = []
    for st in f.chain:
        for ins in st.instructions:
            if ins.name == "EXPOSE":
                for w in ins.operands:
                    w = f.expand(w, st, ins).split("/", 1)[0]
                    if w.isdigit():
                        exposed.append((int(w), "EXPOSE in its Dockerfile"))
    if not f.chain and f.knowledge.inspected is not None:
        for p in f.knowledge.inspected.get("ports") or ():
            exposed.append((int(p), "ExposedPorts of the inspected image"))
    if published and exposed:
        # Published ports alone prove nothing (a server may listen on an admin port it does
        # not publish); with what the image is meant to serve, they count.
        exposed += [(p, "its ports and expose") for p in container_ports(f.config)]
    return [named, config, default, image, exposed]


def container_ports(config: dict[str, object]) -> list[int]:
    """The container side of a service's `ports` and `expose`."""
    out: list[int] = []
    for key in ("ports", "expose"):
        items = config.get(key)
        for p in items if isinstance(items, list) else []:
            if isinstance(p, dict):
                t = p.get("target")
                if isinstance(t, int):
                    out.append(t)
                elif isinstance(t, str) and t.isdigit():
                    out.append(int(t))
                continue
            last = str(p).split("/", 1)[0].rsplit(":", 1)[-1]
            if last.isdigit():
                out.append(int(last))
    return out


# --- file capabilities ----------------------------------------------------------------------

_SETCAP = re.compile(r"\bsetcap\s+(?:-\w+\s+)*['\"]?([\w,+=]+)['\"]?\s+(/\S+)")


def file_caps(f: Facts) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for k in (f.knowledge, f.base_knowledge):
        for binary, caps in (k.runtime("file_caps") or {}).items():
            out[str(binary)] = tuple(str(c) for c in caps)
    for st in f.chain:
        for ins in st.instructions:
            if ins.name != "RUN":
                continue
            for m in _SETCAP.finditer(_run_text(ins)):
                caps = re.findall(r"cap_([a-z_]+)", m.group(1).lower())
                if caps:
                    out[m.group(2).strip("'\";")] = tuple(c.upper() for c in caps)
    return out


def _run_text(ins: Instruction) -> str:
    return " ".join([ins.command, *ins.heredoc_texts()])


def words_of(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()
