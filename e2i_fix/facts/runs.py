"""What a service runs, and what that does: the shell it runs and the entrypoint scripts in its
build context, whether it must start as root, the paths it writes, its mounts, the ports it
serves and the binaries that carry file capabilities. Read through `facts.Facts`.

Also what the image has that a user decision rests on: the users its stages create or rename
and the one the base image ships (`own_user`), how a user is added to it (`user_tools`),
whether a CI workflow publishes the image it builds (`published`), and what it does with sudo
(`sudo`)."""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix import lazyre, shellwords
from e2i_fix.facts import Mount, Script
from e2i_fix.records import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

    from e2i_fix.dockerfile import Instruction
    from e2i_fix.facts import Facts

_SHELLS = {"sh", "bash", "ash", "dash", "zsh", "busybox"}
_SCRIPT_LIMIT = 65536


class Write(NamedTuple):
    """A path the service writes at run time, with why the tool thinks so. `known` False: a
    write whose target is a variable the stack gives no value (`> "$CONF"`): `path` is the
    target as written, and what it writes is not known."""

    path: str
    why: str  # "its entrypoint redirects into it", "the image writes it (table)"
    known: bool = True


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
    files they name that the build context (or a bind mount) holds, followed through what they
    source or run: paths written with variables (the image's ENV, the service's environment and
    the script's own assignments, `: "${ROOT:=/docker}"` defaults included) and the folders
    they run every script of (`find "$ENTRYPOINT_D" ...`, `run-parts /docker-entrypoint.d`, `for
    f in /docker-entrypoint.d/*.sh`: a folder whose name ends in `.d`)."""
    out: list[Script] = []
    for words, origin in (f.entrypoint, f.command):
        if not words:
            continue
        text = shell_string(words)
        if text is not None:
            if origin is not None and origin.startswith("compose"):
                text = compose_text(text, f.project.env)
            out.append(Script(text, origin or "its command"))
    seen: set[Path] = set()
    candidates = [w for w in f.argv if _looks_like_script(w)]
    if f.argv and not candidates and "/" in f.argv[0]:
        candidates.append(f.argv[0])
    env = dict(f.env)
    i = 0
    while i < len(candidates) and len(seen) < _SCRIPTS:
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
        candidates += _reached(f, _code(text), env)
    # Scripts the stages copy from the context with an entrypoint-like name, named or not:
    # an image often starts them from a path its ENTRYPOINT reaches indirectly. One a RUN
    # line runs is a build step, not what the container runs.
    built_with = "\n".join(_run_text(ins) for st in f.chain for ins in st.instructions if ins.name == "RUN")
    for target, src, host in _copied(f):
        # A script by its name, or any `.sh` file copied into an `*entrypoint.d` folder that
        # the image's entrypoint runs at start (nginx's /docker-entrypoint.d, and many more).
        if host in seen or not (host.name.endswith(".sh") or "entrypoint" in host.name.lower()):
            continue
        if target.startswith("/tmp/") or re.search(
                r"(?:^|[;&|(]\s*|\b(?:sh|bash|source|\.)\s+)" + re.escape(target) + r"(?![\w.-])", built_with, re.MULTILINE):
            continue  # run by a build step (`RUN /usr/local/bin/install.sh`), not by the container
        if host.is_file():
            seen.add(host)
            text = _read(host)
            if text is not None:
                out.append(Script(text, _shown(f, host), host))
        elif host.is_dir() and "entrypoint" in host.name.lower():
            # A whole folder copied as the image's `entrypoint.d` (`COPY docker/entrypoint.d/
            # /etc/entrypoint.d/`): the entrypoint runs each of its scripts at start.
            try:
                scripts_in = sorted(p for p in host.iterdir() if p.suffix == ".sh" and p.is_file())[:50]
            except OSError:
                scripts_in = []
            for one in scripts_in:
                if one not in seen:
                    seen.add(one)
                    text = _read(one)
                    if text is not None:
                        out.append(Script(text, _shown(f, one), one))
    # Scripts the Dockerfile writes itself with a heredoc (`COPY <<EOF /docker-entrypoint.d/40-x.sh`):
    # what they run at start is as much the container's as a copied file.
    for st in f.chain:
        for ins in st.instructions:
            if ins.name not in ("COPY", "ADD") or not ins.operands:
                continue
            target = ins.operands[-1]
            if not (target.endswith(".sh") or "entrypoint" in target.lower()) or target.startswith("/tmp/"):
                continue
            for body in ins.heredoc_texts():
                out.append(Script(body, f"its Dockerfile:{ins.line} {ins.name} {target}"))
    return tuple(out)


_SCRIPTS = 24  # script files read for one service, at most
# What a script sources or runs through a path written with a variable: `source
# "${ENTRYPOINT_ROOT}/helpers.sh"`, `. "$DIR"/env.sh`, `exec "$APP_HOME/bin/start.sh"`.
_VAR_SCRIPT = lazyre.compile(r"(?:^|[\s;&|(])(?:\.|source|exec|sh|bash)\s+([\"']?\$[^\s;&|<>)`]*?\.(?:sh|envsh)[\"']?)(?=$|[\s;&|)])",
                         re.MULTILINE)
# A folder a script runs every script of: `find DIR ...`, `run-parts DIR`, `for f in DIR/*`.
_RUN_FOLDER = lazyre.compile(r"\b(?:find|run-parts)\s+(?:--?[\w-]+(?:=\S+)?\s+)*([^\s;&|<>)`]+)"
                         r"|\bin\s+([^\s;&|<>)`*]+?)/?\*(?:\.\w+)?(?=$|[\s;])", re.MULTILINE)


def _reached(f: Facts, body: str, env: dict[str, str]) -> list[str]:
    """The container paths of the scripts `body` sources or runs through variables, and of the
    scripts in the `.d` folders it runs, its variables read through `env` and its own
    assignments."""
    values = {**env, **_assignments(body, env)}
    out: list[str] = []
    for m in _VAR_SCRIPT.finditer(body):
        path = _resolve(m.group(1).strip("\"'").replace("\"", ""), values)
        if path is not None and path.startswith("/"):
            out.append(posixpath.normpath(path))
    for m in _RUN_FOLDER.finditer(body):
        word = (m.group(1) or m.group(2) or "").strip("\"'")
        folder = _resolve(word.replace("\"", ""), values) if word else None
        if folder is None or not folder.startswith("/") or not folder.rstrip("/").endswith(".d"):
            continue
        host = host_dir(f, posixpath.normpath(folder))
        if host is None:
            continue
        try:
            names = sorted(p.name for p in host.iterdir() if p.is_file() and p.suffix in (".sh", ".envsh"))
        except OSError:
            continue
        out += [posixpath.join(posixpath.normpath(folder), n) for n in names]
    return out


def _on_host(f: Facts, path: str, kind: Callable[[Path], bool]) -> Path | None:
    """The host file or folder (`kind`: `Path.is_file`, `Path.is_dir`) at the normalised
    container `path`: under a bind mount, else what the stages copy there from the build context
    (the last copy wins), or what is inside a folder they copy."""
    for m in f.mounts:
        if m.kind == "bind" and m.host is not None and (path == m.target or path.startswith(m.target.rstrip("/") + "/")):
            rel = posixpath.relpath(path, m.target)
            got = m.host if rel == "." else m.host / rel
            return got if kind(got) else None
    best: Path | None = None
    for target, _, host in _copied(f):
        if path == target and kind(host):
            best = host
        elif (path.startswith(target.rstrip("/") + "/") or target == "/") and host.is_dir():
            cand = host / posixpath.relpath(path, target)
            if kind(cand):
                best = cand
    return best


def host_dir(f: Facts, container_path: str) -> Path | None:
    """The folder of the build context (or a bind mount) that is at `container_path` in the
    container, where the stack tells: a folder the stages copy there, or one inside a folder
    they copy."""
    return _on_host(f, posixpath.normpath(container_path), Path.is_dir)


_COMPOSE_VAR = lazyre.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}$]*))?\}")


def compose_text(text: str, env: dict[str, str]) -> str:
    """A string of a compose file as the container gets it: `$$` is a `$` the shell reads, and
    `${VAR}` (or `${VAR:-default}`) takes its value from `.env` where it has one; one `.env`
    gives no value stays as written (Compose takes it from the shell that runs it, which the
    tool does not see)."""

    def sub(m: re.Match[str]) -> str:
        value = env.get(m.group("name"))
        if value:
            return value.replace("$", "\0")
        default = m.group("default")
        return default if default is not None else m.group(0)

    return _COMPOSE_VAR.sub(sub, text.replace("$$", "\0")).replace("\0", "$")


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
                if "://" in src:
                    continue
                if "*" in src or "?" in src:
                    out += [(posixpath.join(dest, h.name), src, h) for h in _glob(ctx, src)]
                    continue
                host = Path(os.path.normpath(ctx / src))
                target = posixpath.join(dest, posixpath.basename(src.rstrip("/"))) if into and src not in (".", "./") else dest
                if src in (".", "./") or host.is_dir():
                    target = dest
                out.append((posixpath.normpath(target), src, host))
    return out


def _glob(ctx: Path, pattern: str) -> list[Path]:
    """The files of the build context a COPY source pattern names (`docker-entrypoint.d/*`)."""
    if pattern.startswith("/") or ".." in pattern.split("/"):
        return []
    try:
        return sorted(p for p in ctx.glob(pattern.removeprefix("./")) if p.is_file())[:50]
    except (OSError, ValueError, NotImplementedError):
        return []


def host_file(f: Facts, container_path: str) -> Path | None:
    """The file of the build context (or a bind mount) that is at `container_path` in the
    container, where the stack tells."""
    path = container_path
    if not path.startswith("/"):
        if path.startswith("./") or "/" in path:
            path = posixpath.join(f.workdir or "/", path)
        else:
            return None  # a command found on PATH
    return _on_host(f, posixpath.normpath(path), Path.is_file)


# --- root -----------------------------------------------------------------------------------

_STEP_DOWN = lazyre.compile(
    r"(?:^|[\s;&|(`'\"])(?:exec\s+)?(?:/\S*/)?(gosu|su-exec|setpriv|runuser|s6-setuidgid|chpst|setuidgid|sudo\s+-u)\b")
# `su [options] user -c ...`, `su - user -c ...`, and `su` with its long options anywhere in its
# words (`su --preserve-environment "$user" --shell /bin/bash --command "$*"`).
_SU = lazyre.compile(r"(?:^|[\s;&|(`'\"])(?:exec\s+)?su\s+(?:-\S*\s+)*[-\w$\"{}.]+\s+(?:-\S*\s+)*-(?:c|s)\b|(?:^|[\s;&|(])su\s+-\s+\S+\s+-c\b"
                 r"|(?:^|[\s;&|(`'\"])(?:exec\s+)?su\s+(?:[^\n;&|]*?\s)?--(?:command|shell|login|preserve-environment|session-command)\b")
_SUPERVISORS = lazyre.compile(r"(?:^|[\s/\"'])(supervisord|s6-svscan|runsvdir|/init|tini\s+-s|systemd)(?![\w.-])")
_ROOT_WORK = lazyre.compile(
    r"(?:^|[\s;&|(])(chown|usermod|groupmod|useradd|adduser|addgroup|groupadd|update-ca-certificates|apt-get|apk\s+add|sysctl)\b")
_ETC_WRITE = lazyre.compile(r"(?:>>?\s*|\btee\s+(?:-a\s+)?|\bsed\s+-i\S*\s+.*?|\bcp\s+\S+\s+|\bmv\s+\S+\s+|-o\s+)(/etc/[\w./-]+)")


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
    if k.varies("step_down"):
        # Every release steps down, each with its tool: which one is not known here.
        return " or ".join(str(t) for t in k.alternatives("step_down")) or None
    # A script of the build that hands over to the base image's entrypoint keeps its step-down.
    base_tool = f.base_knowledge.runtime("step_down") if f.built else None
    if isinstance(base_tool, str) and any("docker-entrypoint" in s.text for s in f.scripts):
        return base_tool
    return None


_ETC_TOOLS = lazyre.compile(r"(?:\bcrudini\s+--(?:set|del|merge)\s+[\"']?|(?:^|[\s;&|(])(?:ln\s+-\w+\s+\S+|mkdir\s+(?:-\w+\s+)*|rm\s+(?:-\w+\s+)*"
                        r"|touch\s+|install\s+(?:-\w+\s+)*\S+\s+)[\"']?)(/etc/[\w./{},-]+)")
_REMAP = lazyre.compile(r"\b(?:usermod|groupmod)\b[^\n]*\$\{?(?:PUID|PGID|UID|GID|USER_ID|GROUP_ID|[A-Z_]*_UID|[A-Z_]*_GID)\b")


def starts_as_root(f: Facts) -> str | None:
    """Why what the service runs is built to start as root, if anything it runs says so: a
    step-down (gosu, su-exec, setpriv, `su ... -c`), a PUID/PGID remap, a supervisor that runs
    as root, a write under /etc, root's work (chown, usermod, package installs) in its command
    or entrypoint, or the table's word for its image (`root_entrypoint`)."""
    tool = f.step_down
    texts = [(s.origin, _code(s.text)) for s in f.scripts]
    for origin, body in texts:
        if _REMAP.search(body):
            why = f"{origin} remaps its user to the PUID/PGID it is given"
            return f"{why}, then steps down with {tool}" if tool else why
    if tool is not None:
        return f"its entrypoint starts as root and steps down with {tool}"
    sup = supervisor(f)
    if sup is not None:
        return f"{sup[0]} starts {sup[1]}, which runs as root"
    first = _plain_command(f.argv)
    if first is not None:
        m = _ROOT_WORK.match(first)
        if m:
            return f"its command runs {m.group(1)}, which needs root"
    for origin, body in texts:
        m = _ETC_WRITE.search(body) or _ETC_TOOLS.search(body)
        if m:
            return f"{origin} writes {m.group(m.lastindex or 1)}"
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


def pam(f: Facts) -> str | None:
    """What runs a tool that goes through PAM (su, sudo, runuser, login, sshd: the image
    table's `pam` profile), if anything the service runs does: run as root, PAM's audit record
    needs AUDIT_WRITE."""
    from e2i_fix.facts import image as images

    tools = [str(t) for t in images.section("profiles").get("pam", ())]
    others = [t for t in tools if t != "su"]
    call = re.compile(r"(?:^\s*|[;&|(`]\s*|\b(?:exec|then|do|else)\s+)(?:/\S*/)?(" + "|".join(map(re.escape, others))
                      + r")(?=$|[\s;&|)`])", re.MULTILINE) if others else None
    for origin, body in [*((s.origin, _code(s.text)) for s in f.scripts), ("its command", " ".join(f.argv))]:
        if "su" in tools and _SU.search(body):
            return f"{origin} runs su"
        m = call.search(body) if call is not None else None
        if m:
            return f"{origin} runs {m.group(1)}"
    if f.step_down in tools:
        return f"its entrypoint steps down with {f.step_down}"
    return None


def supervisor(f: Facts) -> tuple[str, str] | None:
    """What starts a process supervisor (supervisord, s6, runit, an init), and which: a
    container of several programs, each with needs of its own."""
    for origin, body in [*((s.origin, _code(s.text)) for s in f.scripts), *f.launch]:
        m = _SUPERVISORS.search(body)
        if m:
            return origin, m.group(1).strip()
    return None


def _plain_command(argv: list[str]) -> str | None:
    """The program a command runs when no shell reads it (`chown -R app /data`), past `exec`."""
    words = [w for w in argv if w != "exec"]
    if not words or shell_string(words) is not None:
        return None
    return " ".join([Path(words[0]).name, *words[1:]])


def _code(text: str) -> str:
    """A script without its comment lines."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def inherited(f: Facts) -> str | None:
    """Why what the service runs is not known here, if it is not: its build sets no ENTRYPOINT
    (or no CMD, with none from compose) of its own, so the base image's runs, and the image
    table does not know that image. Its start scripts may write anywhere in the image."""
    if not f.built or not f.chain or f.base_knowledge.known:
        return None
    base = f.base
    if base is not None and base.path == "scratch":
        return None
    if f.config.get("entrypoint") is not None:
        return None  # a compose entrypoint replaces the image's, and its CMD with it
    own = {n: any(st.last(n) is not None for st in f.chain) for n in ("ENTRYPOINT", "CMD")}
    missing = ["ENTRYPOINT"] if not own["ENTRYPOINT"] else []
    if not own["ENTRYPOINT"] and not own["CMD"] and f.config.get("command") is None:
        missing.append("CMD")
    if not missing:
        return None
    name = base.name if base is not None else f.chain[0].root_image
    return (f"its Dockerfile sets no {' or '.join(missing)} of its own: what runs comes from {name}, "
            "which the image table does not know")


# --- the users an image has -------------------------------------------------------------------

_ACCOUNT = lazyre.compile(r"\b(useradd|adduser|groupadd|addgroup|usermod|groupmod)\b([^;&|\n]*)")
# Flags of useradd/adduser/usermod/groupmod that take a value.
_VALUED = {"-g", "--gid", "-G", "--ingroup", "-u", "--uid", "-d", "--home-dir", "--home", "-s", "--shell", "-c",
           "--comment", "-h", "-k", "--groups", "-l", "--login", "-n", "--new-name", "-K", "-e", "--expiredate", "-f",
           "--inactive", "-p", "--password", "-R", "--root", "-P", "--prefix", "-Z", "--firstuid", "--lastuid"}


class Accounts(NamedTuple):
    """The users RUN lines create or rename (`usermod --login`), with their primary group where
    the line says, in the order they appear, and the groups created with a fixed gid."""

    users: dict[str, str | None]
    gids: dict[str, str]


def accounts(texts: list[str]) -> Accounts:
    """Users and groups the shell lines `texts` create, rename or change."""
    users: dict[str, str | None] = {}
    gids: dict[str, str] = {}
    renamed_groups: dict[str, str] = {}
    for text in texts:
        for m in _ACCOUNT.finditer(text.replace("\\\n", " ")):
            tool = m.group(1)
            flags, positional = _flags(m.group(2))
            if not positional:
                continue
            if tool in ("groupadd", "addgroup"):
                gid = flags.get("-g") or flags.get("--gid")
                if gid:
                    gids[gid] = positional[-1]
                continue
            if tool == "groupmod":
                new = flags.get("-n") or flags.get("--new-name")
                if new:
                    renamed_groups[positional[-1]] = new
                continue
            if tool == "usermod":
                new = flags.get("-l") or flags.get("--login")
                if new:
                    old = positional[-1]
                    users[new] = users.pop(old, None) or old
                continue
            who = positional[-1] if tool != "adduser" or "--ingroup" in flags or len(positional) == 1 else positional[0]
            # useradd: -g is the primary group (-G the others); busybox adduser: -G is the group
            # (-g its comment); Debian's adduser: --ingroup or --gid.
            group: str | None = (flags.get("-g") or flags.get("--gid") if tool == "useradd"
                                 else flags.get("--ingroup") or flags.get("--gid") or flags.get("-G"))
            if tool == "adduser" and len(positional) == 2:
                group = positional[1]  # `adduser user group` (Debian) adds to an existing group
                who = positional[0]
            users.pop(who, None)
            users[who] = gids.get(group, group) if group else None
    out = {u: (renamed_groups.get(g, g) if g else g) for u, g in users.items()}
    return Accounts(out, gids)


def _flags(args: str) -> tuple[dict[str, str], list[str]]:
    try:
        words = shellwords.split(args.replace("\\", " "))
    except ValueError:
        words = args.split()
    flags: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.startswith("-") and w != "-":
            name, eq, val = w.partition("=")
            # `-aG sudo`: a cluster of short flags whose last one takes the value.
            last = name if name.startswith("--") or len(name) == 2 else "-" + name[-1]
            if not eq and last in _VALUED:
                val = words[i + 1] if i + 1 < len(words) else ""
                i += 1
            flags[last] = val
            flags.setdefault(name, val)
        elif w.startswith(("$", "<", ">")) or w in ("2>/dev/null", "true"):
            break
        else:
            positional.append(w)
        i += 1
    return flags, positional


class OwnUser(NamedTuple):
    name: str
    group: str | None
    source: str


def own_user(f: Facts) -> OwnUser | None:
    """The non-root user the image has for its process: the last one its stages create or
    rename (`useradd`, `adduser`, `usermod --login`), else the one its base image ships (the
    table's `own_user`: node, postgres, nginx...)."""
    from e2i_fix.facts import ROOT_USERS

    texts: list[str] = []
    where: list[str] = []
    for st in f.chain:
        for ins in st.instructions:
            if ins.name == "RUN":
                texts.append(f.expand(_run_text(ins), st, ins))
                where.append(f"line {ins.line}")
    users = accounts(texts).users
    made = [u for u in users if u not in ROOT_USERS and "$" not in u]
    if made:
        name = made[-1]
        line = next((w for t, w in zip(reversed(texts), reversed(where)) if name in t), "a RUN line")
        return OwnUser(name, users[name], f"its Dockerfile makes it ({line})")
    k = f.base_knowledge if f.built else f.knowledge
    own = k.runtime("own_user")
    if isinstance(own, str):
        return OwnUser(own, own, f"the image ships it ({k.source('own_user')})")
    return None


_DEBIAN = {"python", "node", "debian", "ubuntu", "golang", "ruby", "php", "openjdk", "eclipse-temurin", "rust",
           "buildpack-deps", "perl", "elixir", "erlang", "gcc", "maven", "gradle", "pypy", "amazoncorretto"}
_DEBIAN_TAGS = lazyre.compile(r"bookworm|bullseye|buster|trixie|slim|jammy|noble|focal")
_ROOT_SERVERS = {"nginx", "httpd", "openresty", "caddy", "traefik", "haproxy"}


def user_tools(image: str | None) -> str | None:
    """How a user is added to `image`: "debian" (groupadd/useradd), "alpine" (addgroup/adduser
    -S), "distroless" (it ships `nonroot`), "scratch" (no user database); None: not known, or a
    server image whose master process is built to start as root."""
    from e2i_fix.facts import image as images

    if image is None:
        return None
    name = image.lower()
    if name == "scratch":
        return "scratch"
    if "distroless" in name:
        return "distroless"
    ref = images.parse(name)
    family = ref.family if ref is not None else ""
    tag = (ref.tag or "") if ref is not None else ""
    if family in _ROOT_SERVERS:
        return None
    if "alpine" in tag or family == "alpine":
        return "alpine"
    if family in _DEBIAN or _DEBIAN_TAGS.search(tag):
        return "debian"
    return None


# --- where the image goes ------------------------------------------------------------------------

_PUSHES = lazyre.compile(r"\bpush:\s*(?:true\b|\$\{\{)|\bdocker\s+(?:image\s+)?push\b|build-push|--push\b|bake-action"
                         r"|\bpush-image\b|docker/github-builder")
# A Dockerfile a workflow names: `file: ./docker/Dockerfile`, `dockerfile: Dockerfile.prod`, `-f x/Dockerfile`.
_NAMED_DOCKERFILE = lazyre.compile(r"(?:\b(?:file|dockerfile)\s*:\s*|\s-f\s+)[\"']?(?:\./)?([\w./-]*Dockerfile[\w.-]*)")
_WORKFLOWS = (".github/workflows", ".gitlab-ci.yml", ".circleci/config.yml", ".drone.yml", ".woodpecker")


def published(f: Facts) -> str | None:
    """Why the image the service builds also runs elsewhere, if the repository says so: the
    stack names it in a registry (`image: ghcr.io/...` beside `build:`), or a CI workflow builds
    its Dockerfile and pushes the result. Installs of a published image keep what its process
    wrote in their volumes."""
    if not f.built or f.dockerfile is None:
        return None
    img = f.image
    if img is not None and img.registry is not None and not img.registry.startswith(("localhost", "127.")):
        return f"the stack tags what it builds as {img.written}, an image in the registry {img.registry}"
    from e2i_fix.project import boundary_of

    project = f.project
    root = project.stack.boundary or boundary_of(project.folder)
    path = Path(str(f.dockerfile.path))
    try:
        rel = os.path.relpath(path, root).replace(os.sep, "/")
    except ValueError:
        return None
    if rel.startswith("../"):
        return None
    for name, text in _workflows(project, root):
        if not _PUSHES.search(text):
            continue
        if re.search(r"(?:^|[\s\"'=:])(?:\./)?" + re.escape(rel) + r"(?:$|[\s\"',])", text, re.MULTILINE):
            return f"{name} builds {rel} and pushes the image"
    return None


def source_dockerfile(f: Facts) -> tuple[Path, str] | None:
    """The Dockerfile of this repository that its CI builds and pushes as the image the service
    pulls (`librenms/librenms`, named in a workflow that pushes images), and the workflow: the
    one the workflow names, else the repository's root Dockerfile. None for an image the stack
    builds, an official image, or one no workflow here publishes."""
    from e2i_fix.project import boundary_of

    if f.built or f.image is None or "/" not in f.image.path:
        return None
    project = f.project
    root = project.stack.boundary or boundary_of(project.folder)
    for name, text in _workflows(project, root):
        if not _PUSHES.search(text) or f.image.path not in _image_paths(text):
            continue
        named = list(dict.fromkeys(root / m.group(1) for m in _NAMED_DOCKERFILE.finditer(text)))
        if len(named) > 1:
            continue  # several Dockerfiles, several images: which builds this one is not said
        for path in (*named, root / "Dockerfile"):
            if path.is_file():
                return path, name
    return None


_IMAGE_TOKEN = lazyre.compile(r"(?<![\w./:-])[\w.-]+(?::\d+)?(?:/[\w.-]+)+(?::[\w.${}-]+)?")


def _image_paths(text: str) -> set[str]:
    """The image repositories a workflow names, without their registry or tag
    (`ghcr.io/pterodactyl/panel:latest`, `docker.io/matrixdotorg/synapse` -> `pterodactyl/panel`)."""
    out: set[str] = set()
    for m in _IMAGE_TOKEN.finditer(text):
        parts = m.group(0).split("/")
        if "." in parts[0] or ":" in parts[0] or parts[0] == "localhost":
            parts = parts[1:]
        if parts and parts[0] == "library":
            parts = parts[1:]
        if len(parts) >= 2:
            out.add("/".join(parts).split(":", 1)[0])
    return out


def _workflows(project: Any, root: Path) -> list[tuple[str, str]]:
    cache: dict[Path, list[tuple[str, str]]] = project.__dict__.setdefault("_workflows", {})
    if root not in cache:
        out: list[tuple[str, str]] = []
        for entry in _WORKFLOWS:
            p = root / entry
            files = sorted(p.glob("*.y*ml")) if p.is_dir() else [p]
            for file in files:
                text = _read(file) if file.suffix in (".yml", ".yaml") else None
                if text is not None:
                    out.append((os.path.relpath(file, root).replace(os.sep, "/"), text))
        cache[root] = out
    return cache[root]


# --- sudo ----------------------------------------------------------------------------------------

_INSTALLS_SUDO = lazyre.compile(r"\b(?:apt-get|apt|apk|yum|dnf|microdnf|zypper)\b[^;&|]*\s(?:sudo|doas)(?=$|[\s;&|\"'])",
                            re.MULTILINE)
_GRANTS = lazyre.compile(r"(?:>>?|\btee\s+(?:-a\s+)?)\s*[\"']?/etc/(?:sudoers|doas\.conf)|\bNOPASSWD\b"
                     r"|\b(?:usermod\s+(?:-\w+\s+)*-a?G\s*|gpasswd\s+-a\s+\S+\s+|useradd\b[^;&|\n]*\s-G\s*)[\w,]*\b(?:sudo|wheel)\b"
                     r"|\badduser\s+[\w.-]+\s+(?:sudo|wheel)\b|\bpermit\s+(?:nopass\s+)?\w+")
_CALLS = lazyre.compile(r"(?:^|[\s;&|(`\"'/])(sudo|doas|pkexec)(?=$|[\s;&|)`\"'])", re.MULTILINE)


class Sudo(NamedTuple):
    """What the image does with sudo: where its stages install it (through ARG and ENV lists
    too), where they grant it (a sudoers entry, the sudo or wheel group), and what calls it
    (the command, the entrypoint or a script it runs). None: nothing says so."""

    installed: str | None
    granted: str | None
    called: str | None


def sudo(f: Facts) -> Sudo:
    installed = granted = called = None
    for st in f.chain:
        for ins in st.instructions:
            if ins.name == "RUN":
                text = f.expand(_run_text(ins), st, ins)
                if installed is None and _INSTALLS_SUDO.search(text):
                    installed = f"line {ins.line}"
                if granted is None:
                    m = _GRANTS.search(text)
                    if m:
                        granted = f"line {ins.line}: {m.group(0).strip()}"
            elif ins.name in ("COPY", "ADD") and granted is None and ins.operands \
                    and f.expand(ins.operands[-1], st, ins).startswith("/etc/sudoers"):
                granted = f"line {ins.line}: a file in {f.expand(ins.operands[-1], st, ins)}"
    for origin, text in [("its command", " ".join(f.argv)), *((s.origin, _code(s.text)) for s in f.scripts)]:
        m = _CALLS.search(text)
        if m:
            called = f"{origin} calls {m.group(1)}"
            break
    return Sudo(installed, granted, called)


# --- setuid and setgid helpers of packages --------------------------------------------------------

def setid_package(f: Facts) -> str | None:
    """A package the stages install whose helper is setuid or setgid and which the image's
    daemons run as another user (the image table's `setid_packages`: Postfix's postdrop...),
    with where: `postfix (line 12): Postfix's setgid postdrop ...`; else None."""
    from e2i_fix import images
    from e2i_fix.facts import image as imagedata

    if f.stage is None:
        return None
    known: dict[str, Any] = imagedata.section("setid_packages")
    for name, ins in images.packages_installed(f.stage, f.expand):
        what = known.get(name) if name != "sources" else None
        if isinstance(what, str):
            return f"its Dockerfile installs {name} (line {ins.line}): {what}"
    return None


# --- s6-overlay ----------------------------------------------------------------------------------

_INIT = lazyre.compile(r"(?:^|[\s;&|(])(?:exec\s+)?/init(?=$|[\s;&|)])", re.MULTILINE)


def s6_overlay(f: Facts) -> str | None:
    """Where the stages install s6-overlay (the image table's `s6_overlay.installs`: its release
    tarballs, its package), when what runs starts its `/init`; else None. Its /init runs the
    setuid-root `s6-overlay-suexec`, which a process started as another user must gain root
    through at execve to make /run its own."""
    from e2i_fix.facts import image as images

    pattern = images.section("s6_overlay").get("installs")
    if not isinstance(pattern, str):
        return None
    rx = re.compile(pattern)
    where = None
    for st in f.chain:
        for ins in st.instructions:
            if ins.name in ("RUN", "ADD", "COPY"):
                text = _run_text(ins) if ins.name == "RUN" else " ".join(ins.operands)
                if rx.search(f.expand(text, st, ins)):
                    where = f"line {ins.line}"
                    break
        if where is not None:
            break
    if where is None:
        return None
    if "/init" in f.argv or any(_INIT.search(_code(s.text)) for s in f.scripts):
        return f"its Dockerfile installs s6-overlay ({where}) and it runs /init"
    return None


def owns_run(f: Facts, user: str) -> bool:
    """Whether a RUN line of its stages hands /run to `user` (`chown -R user:group /run`): then
    s6-overlay's preinit needs no root to use it."""
    name = user.split(":", 1)[0]
    for st in f.chain:
        for ins in st.instructions:
            if ins.name != "RUN":
                continue
            for part in re.split(r"&&|\|\||;|\n", f.expand(_run_text(ins), st, ins)):
                words = words_of(part)
                if words and words[0] == "chown" and "/run" in words[1:] and any(
                        w.split(":", 1)[0] == name for w in words[1:] if not w.startswith("-")):
                    return True
    return False


# --- writes ---------------------------------------------------------------------------------

# A target: an absolute path, or one that starts with a variable (`"$CONF"`, `${DIR}/x.log`).
_TARGET = r"([\"']?)((?:/|\$\{?[A-Za-z_])[^\s;&|\"'<>)`]*)\1"
_REDIRECT = lazyre.compile(r"(?<![<0-9&])(?:[12]?>>?|&>>?)\s*" + _TARGET)
_TEE = lazyre.compile(r"\btee\s+(?:-a\s+)?" + _TARGET)
# Installs a container runs at start (an entrypoint's optional extension, a plugin step).
_INSTALLS = lazyre.compile(r"(?m)^[^#\n]*?\b(apt-get\s+(?:-\S+\s+)*install|apt\s+install|apk\s+add|yum\s+install|"
                           r"dnf\s+install|microdnf\s+install|make\s+install)\b")
# `find DIR ... | xargs sed -i ...` and `find DIR ... -exec sed -i ...`: the files under DIR.
_FIND_SED_I = lazyre.compile(r"\bfind\s+(/[\w./-]+)[^\n;&]*?(?:\|\s*xargs\s+(?:-\S+\s+)*|-exec\s+)sed\s+(?:-\w*\s+)*-i",
                             re.MULTILINE)
_SED_I = lazyre.compile(r"\bsed\s+(?:-\w*\s+)*-i\S*\s+[^;&|\n]*?\s(/[^\s;&|\"']+)\s*(?:$|[;&|\n])", re.MULTILINE)
_TOUCHES = lazyre.compile(r"(?:^|[\s;&|(])(?:mkdir(?:\s+-p)?|touch|rm\s+-\w*|ln\s+-\w*\s+\S+|cp\s+(?:-\w+\s+)*\S+|mv\s+\S+"
                      r"|install\s+(?:-\w+\s+)*)\s+" + _TARGET)
_CHANGES = lazyre.compile(r"(?:^|[\s;&|(])(?:chown|chmod|chgrp)\s+(?:-\w+\s+)*\S+\s+" + _TARGET)
_CONFIG_TOOLS = lazyre.compile(r"\b(?:crudini\s+--(?:set|del|merge)|augtool\s+-f|xmlstarlet\s+ed\s+-L|yq\s+(?:-i|e\s+-i)"
                           r"|jq\s+[^;&|\n]*>|ckan\s+(?:-c\s+\S+\s+)?config-tool)\s*" + _TARGET)
_FLAG_FILES = lazyre.compile(r"--(?:log-?file|logfile|logto|pid-?file|pidfile|pid|access-logfile|error-logfile|schedule)[= ]([\"']?)(/[^\s\"']+)")
_TEMPLATE_OUT = lazyre.compile(r"\b(?:gomplate\b[^;&|\n]*?(?:-o|--out)\s+|dockerize\b[^;&|\n]*?-template\s+\S+?:)(/[^\s;&|\"']+)")
_ASSIGN = lazyre.compile(r"^[ \t]*(?:export\s+|local\s+|readonly\s+|declare\s+(?:-\w+\s+)?)?([A-Za-z_][A-Za-z0-9_]*)="
                     r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s;&|]*)", re.MULTILINE)
_REF = lazyre.compile(r"\$(?:\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-=])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_NOT_FILES = ("/dev/", "/proc/", "/sys/")
_PREPARES = lazyre.compile(r"\b(mkdir|chown|chmod|install\s+-d)\b")
_SYSTEM = ("/usr/", "/etc/", "/bin/", "/sbin/", "/lib", "/dev/", "/proc/", "/sys/", "/var/lib/apt", "/var/cache/apt")


def writes(f: Facts) -> tuple[Write, ...]:
    """Paths the service writes at run time, as far as its image's facts and the shell it runs
    tell: the table's paths for the image, redirections, `tee`, `sed -i`, file tools, config
    tools (crudini, yq -i...) and template renderers in its command, entrypoint and scripts
    (targets named through variables are read through the script's own assignments and the
    service's environment; one with no value is an unknown write), log and pid file flags,
    template output folders, celery beat's schedule file, caches under $HOME, a Rails server's
    tmp/ and log/, and the folders its Dockerfile hands over for run time (RUN chown, a chmod
    that makes them writable, a mkdir where the stage runs as a non-root user). Incomplete by
    nature: a program's own writes are known only for images in the table."""
    out: dict[str, Write] = {}

    def add(path: str, why: str, known: bool = True) -> None:
        if known:
            path = posixpath.normpath(path)
            if path.startswith(_NOT_FILES) or path in ("/dev/null", "/dev/stdout", "/dev/stderr"):
                return
        if path not in out:
            out[path] = Write(path, why, known)

    k = f.knowledge
    for p in k.runtime("writes") or ():
        add(str(p), f"the {k.image.key} image writes it" if k.image is not None and k.inspected is None
            else f"the image writes it ({k.source('writes')})")
    env = dict(f.env)
    home = _home(f)
    if home:
        env.setdefault("HOME", home)
    for s in f.scripts:
        body = _code(s.text)
        values = {**env, **_assignments(body, env)}
        for rx, what in ((_REDIRECT, "redirects into it"), (_TEE, "tees into it"), (_TOUCHES, "creates or changes it"),
                         (_CHANGES, "changes its owner or mode"), (_CONFIG_TOOLS, "edits it with a config tool")):
            for m in rx.finditer(body):
                _target(add, m.group(2), values, f"{s.origin} {what}")
        for m in _TEMPLATE_OUT.finditer(body):
            add(m.group(1), f"{s.origin} renders a template into it")
        for m in _SED_I.finditer(body):
            add(m.group(1), f"{s.origin} edits it in place (sed -i)")
        for m in _FIND_SED_I.finditer(body):
            add(m.group(1), f"{s.origin} edits the files `find` lists there in place (sed -i)")
        installs = _INSTALLS.search(body)
        if installs is not None:
            # A package manager or `make install` at start writes the system's own folders.
            add("/usr", f"{s.origin} installs at start (`{installs.group(0).strip()}`)")
        for m in re.finditer(r"\benvsubst\b[^\n;&|]*>\s*" + _TARGET, body):
            _target(add, m.group(2), values, f"{s.origin} renders a template into it (envsubst)")
    words = " ".join(f.argv)
    for m in _FLAG_FILES.finditer(words):
        add(m.group(2), "its command writes it")
    for template_dir, output in (k.runtime("renders") or {}).items():
        source = _resolve(str(template_dir), env)
        if source is not None and _provides(f, source):
            image = k.image.key if k.image is not None else "the image"
            out_dir = _resolve(str(output), env)
            if out_dir is not None:
                add(out_dir, f"the {image} image renders the templates of {source} into it")
            else:
                add(str(output), f"the {image} image renders the templates of {source} into it", False)
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
    for path, how in prepared(f):
        add(path, f"its Dockerfile hands it over for run time: {how}")
    return tuple(out.values())


def _target(add: Any, word: str, values: dict[str, str], why: str) -> None:
    path = _resolve(word, values)
    if path is None:
        add(word, f"{why}, through a variable the stack gives no value", False)
    elif path.startswith("/"):
        for one in _braces(path):
            add(one, why if path == word and one == path else f"{why} through {word}")


_BRACE = lazyre.compile(r"\{([^{}$]*,[^{}$]*)\}")


def _braces(path: str) -> list[str]:
    """The paths a shell's brace expansion makes of `path`: `/custom/{a,b}` is `/custom/a` and
    `/custom/b`."""
    m = _BRACE.search(path)
    if m is None:
        return [path]
    return [got for alt in m.group(1).split(",") for got in _braces(path[:m.start()] + alt + path[m.end():])]


def _resolve(word: str, values: dict[str, str]) -> str | None:
    """`word` with its shell variables replaced (`$A`, `${A}`, `${A:-default}`); None when one
    has no value."""
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group("name") or m.group("bare")
        value = values.get(name)
        if m.group("op") and not value:
            value = _resolve(m.group("arg") or "", values)
        if value is None:
            missing = True
            return ""
        return value

    got = _REF.sub(sub, word)
    return None if missing else got


def _assignments(body: str, env: dict[str, str]) -> dict[str, str]:
    """`NAME=value` lines of a script, resolved in order (a value from a command substitution
    is not known), and the defaults it gives with `: "${NAME:=value}"` where nothing set the
    variable before."""
    out: dict[str, str] = {}
    for m in _ASSIGN.finditer(body):
        value = m.group(2)
        if value[:1] in "\"'":
            value = value[1:-1]
        if "$(" in value or "`" in value:
            out.pop(m.group(1), None)
            continue
        got = _resolve(value, {**env, **out}) if "$" in value and not value.startswith("'") else value
        if got is not None:
            out[m.group(1)] = got
    for m in _DEFAULTED.finditer(body):
        name, value = m.group(1), m.group(2).replace("\"", "").replace("'", "")
        if env.get(name) or out.get(name) or "$(" in value or "`" in value:
            continue
        got = _resolve(value, {**env, **out})
        if got is not None:
            out[name] = got
    return out


_DEFAULTED = lazyre.compile(r"^[ \t]*:\s+[\"']?\$\{([A-Za-z_][A-Za-z0-9_]*):?=(.*)\}[\"']?[ \t]*$", re.MULTILINE)


def _provides(f: Facts, path: str) -> bool:
    """Whether the service has something at `path`: a mount, or files its stages copy there."""
    under = path.rstrip("/") + "/"
    if any(m.target == path or m.target.startswith(under) for m in f.mounts):
        return True
    return any(t == path or t.startswith(under) for t, _, _ in _copied(f))


def prepared(f: Facts) -> list[tuple[str, str]]:
    """Absolute paths the Dockerfile stages hand over for run time: a RUN line chowns them or
    chmods them writable (`.` is the working folder), or, in a stage that runs as a non-root
    user, creates them. System folders are left out."""
    from e2i_fix.facts import ROOT_USERS

    stage_user = None
    for st in reversed(f.chain):
        ins = st.last("USER")
        if ins is not None:
            stage_user = f.expand(ins.args.strip(), st, None).split(":", 1)[0]
            break
    non_root = stage_user is not None and "$" not in stage_user and stage_user not in ROOT_USERS
    out: list[tuple[str, str]] = []
    for st in f.chain:
        workdir: str | None = None
        for ins in st.instructions:
            if ins.name == "WORKDIR" and ins.operands:
                new = f.expand(ins.operands[0], st, ins)
                workdir = new if new.startswith("/") or not workdir else posixpath.join(workdir, new)
            if ins.name != "RUN":
                continue
            for part in re.split(r"&&|\|\||;|\n", f.expand(_run_text(ins), st, ins)):
                m = _PREPARES.search(part)
                if not m:
                    continue
                tool = m.group(1).split()[0]
                try:
                    import shlex

                    words = shlex.split(part[m.end():], comments=True)
                except ValueError:
                    continue
                if tool == "mkdir" and not non_root:
                    continue
                if tool == "chmod" and not any(re.fullmatch(r"(?:[0-7]?[0-7][67][67]|[ugoa]*\+\w*w\w*)", w) for w in words):
                    continue
                for w in words:
                    if w.startswith("-") or "$" in w or "*" in w or ":" in w and not w.startswith("/"):
                        continue
                    if w in (".", "./") and workdir and workdir.startswith("/"):
                        out.append((workdir.rstrip("/") or "/", f"RUN {tool} at line {ins.line}"))
                    elif w.startswith("/") and w.rstrip("/") not in ("", "/usr", "/etc", "/bin", "/usr/local", "/opt", "/var", "/root", "/home") \
                            and not w.startswith(_SYSTEM):
                        out.append((w.rstrip("/"), f"RUN {tool} at line {ins.line}"))
    return list(dict.fromkeys(out))


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
    from e2i_fix.facts import _interpolate

    top = f.project.model(f.files).get("volumes") or {}
    out: list[Mount] = []
    for v in f.config.get("volumes") or ():
        if isinstance(v, str) and "$" in v:
            # `${CONFIG_PATH}:/etc/nginx/conf.d`: Compose reads it with the values `.env` (or the
            # defaults) give, a bind mount once the path is known.
            got = _interpolate(v, f.project.env)
            v = got if "$" not in got.replace("$$", "") else v
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

# A port a command says it listens on: `--port 8000`, `-p 8000`, `--bind 0.0.0.0:8000`, `-b :8000`.
PORT_FLAG = lazyre.compile(
    r"(?:--port[= ]|--http-port[= ]|(?<![\w-])-p\s+|--listen[= ](?:\S*:)?|(?:--bind|(?<![\w-])-b)[= ]?\s*(?:\S*:))(\d{2,5})\b")
# Servers and the port they listen on when no flag says otherwise.
_DEFAULT_PORTS = (
    (lazyre.compile(r"\b(?:uvicorn|hypercorn|daphne|fastapi\s+run|gunicorn)\b"), 8000, "{} listens on 8000 by default"),
    (lazyre.compile(r"\bmanage\.py\s+runserver\b(?!\s+\S*\d)"), 8000, "Django's runserver listens on 8000 by default"),
    (lazyre.compile(r"\bflask\s+run\b"), 5000, "flask run listens on 5000 by default"),
    (lazyre.compile(r"\b(?:rails\s+(?:s|server)|puma)\b"), 3000, "Rails listens on 3000 by default"),
    (lazyre.compile(r"\bnext\s+(?:start|dev)\b"), 3000, "next listens on 3000 by default"),
    (lazyre.compile(r"\bstreamlit\s+run\b"), 8501, "streamlit listens on 8501 by default"),
    (lazyre.compile(r"\bmlflow\s+(?:server|ui)\b"), 5000, "mlflow server listens on 5000 by default"),
    (lazyre.compile(r"\bjupyter\b"), 8888, "jupyter listens on 8888 by default"),
)
# Tools that take a port of their own and launch the real server after their arguments.
_WRAPPERS = lazyre.compile(r"\b(?:debugpy|ptvsd)\b(?:\s+--?[\w-]+(?:[= ]\S+)?)*?\s+(?=-m\b|\S+\.py\b)|--inspect(?:-brk)?=\S+")


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
    ports, why, _ = listening_by(f)
    return ports, why


def listening_by(f: Facts) -> tuple[set[int], str, int]:
    """`listening`, with the tier of evidence it rests on: 0 the command names the port, 1 the
    proxy config, 2 the server's default or a PORT variable, 3 the image's known port, 4
    EXPOSE with the service's ports (-1: nothing tells)."""
    tiers = _tiers(f, published=True)
    for i, tier in enumerate(tiers):
        if not tier:
            if i == 0 and "$" in _command_text(f):
                return set(), "", -1  # a port from a variable is the variable's
            continue
        return {p for p, _ in tier}, "; ".join(dict.fromkeys(why for _, why in tier)), i
    return set(), "", -1


def exposed(f: Facts) -> set[int]:
    """The ports the image says it serves: EXPOSE in the stages it builds, else the inspected
    image's ExposedPorts."""
    return {p for p, _ in _tiers(f)[4]}


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

_SETCAP = lazyre.compile(r"\bsetcap\s+(?:-\w+\s+)*['\"]?([\w,+=]+)['\"]?\s+(/\S+)")


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
        return shellwords.split(text)
    except ValueError:
        return text.split()


# --- what a folder holds ----------------------------------------------------------------------


class Keeps(NamedTuple):
    """What a service keeps in a folder, as far as the tool can tell: what a tmpfs there must
    hold. `kind`: "small" (only small files: sockets, pid and lock files, logs it can do
    without: the image table's `bounded`), "sized" (up to `size` for one request of each kind:
    nginx's temp folders and caches, read from its configuration), "large" (as large as the data
    it serves: a database's temporary folder, the table's `unbounded`), "unread" (what sizes it
    is in a configuration the tool cannot read: a size set through a variable) or "unknown"."""

    kind: str
    size: int | None  # "sized": bytes, None where nothing bounds it
    why: str


def _within(path: str, folder: str) -> bool:
    folder = folder.rstrip("/") or "/"
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def keeps(f: Facts, path: str) -> Keeps:
    """What the service keeps in the folder `path` (a tmpfs, or where it writes)."""
    from e2i_fix.facts import configs

    path = posixpath.normpath(path)
    k = f.knowledge
    name = k.image.key if k.image is not None else "its image"
    for folder, why in (k.runtime("unbounded") or {}).items():
        if _within(str(folder), path):
            return Keeps("large", None, f"{folder} is {why}")
    spools = k.runtime("spools")
    if isinstance(spools, dict) and spools:
        got = configs.nginx_spools(f, {str(a): str(b) for a, b in spools.items()})
        if isinstance(got, str):
            if any(_within(str(p), path) for p in spools.values()):
                return Keeps("unread", None, f"its nginx configuration does not tell what it keeps there: {got}")
        else:
            size, whys = configs.kept_under(got, path)
            if whys:
                return Keeps("sized", size, "; ".join(dict.fromkeys(whys)))
    for folder, why in (k.runtime("bounded") or {}).items():
        if _within(path, str(folder)):
            return Keeps("small", None, f"the {name} image keeps only {why} in {folder}")
    varies = k.varies("bounded")
    return Keeps("unknown", None, varies or "what it keeps there is not known here")


def shown_size(b: int) -> str:
    """A size in a message, rounded up: what a bound must reach (`4.1G`, `51M`)."""
    gib, mib = 1024**3, 1024**2
    if b >= gib:
        return f"{-(-b * 10 // gib) / 10:.1f}".removesuffix(".0") + "G"
    return f"{-(-b // mib)}M"


def memory_limit(f: Facts) -> int | None:
    """The service's memory limit in bytes (`deploy.resources.limits.memory`, else
    `mem_limit`), where it sets one: a tmpfs counts against it."""
    from e2i_fix import sizing

    deploy = f.config.get("deploy")
    resources = deploy.get("resources") if isinstance(deploy, dict) else None
    limits = resources.get("limits") if isinstance(resources, dict) else None
    for value in (limits.get("memory") if isinstance(limits, dict) else None, f.config.get("mem_limit")):
        got = sizing.parse_size(value)
        if got:
            return got
    return None
