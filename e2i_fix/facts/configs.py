"""The configuration files a service reads: the files it bind-mounts and the files its stages
copy from the build context, by what reads them (nginx, caddy, haproxy, postgresql, redis,
rabbitmq), and what they say: the upstreams a proxy passes requests to, the server settings a
database, a cache or a broker sizes itself with. Read for decisions, never edited."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix import lazyre
from e2i_fix.records import NamedTuple

if TYPE_CHECKING:
    from e2i_fix.facts import Facts

_MAX = 512 * 1024
_MAX_FILES = 50


class ConfigFile(NamedTuple):
    kind: str  # "nginx", "caddy", "haproxy", "postgresql", "redis", "rabbitmq"
    target: str  # where the container reads it
    host: Path  # the file in the project
    text: str


class Upstream(NamedTuple):
    """A place a proxy passes requests to."""

    host: str  # a service name, alias or outside host; "" when a variable names it
    port: int | None
    where: str  # the file it is written in, relative to the stack's folder


def kind_of(target: str, name: str) -> str | None:
    """What reads a file at container path `target` (its project file named `name`)."""
    t = target.lower()
    n = name.lower()
    if "nginx" in t or t.startswith("/etc/nginx") or n.endswith(".conf.template") and "nginx" in t:
        return "nginx"
    if n == "caddyfile" or "caddy" in t:
        return "caddy"
    if n.startswith("haproxy") or "haproxy" in t:
        return "haproxy"
    if n in ("postgresql.conf", "postgresql.auto.conf") or "postgres" in t and n.endswith(".conf"):
        return "postgresql"
    if n.startswith("redis") and n.endswith(".conf") or "redis" in t and n.endswith(".conf"):
        return "redis"
    if "rabbitmq" in t and n.endswith(".conf") and not n.endswith("-env.conf"):
        return "rabbitmq"
    if n.endswith(".conf") and ("/conf.d" in t or "sites-" in t) and "nginx" in (t + n):
        return "nginx"
    return None


def files(f: Facts) -> tuple[ConfigFile, ...]:
    """The configuration files the service's container reads, bind mounts first. Only files of
    the project are read (inside the boundary a run writes in: the repository, or the folder):
    a bind of an absolute host path (`/tmp:/tmp`, `/etc/nginx:/etc/nginx`) names the machine
    that runs the stack, not a file the stack's authors wrote, and what this machine holds
    there must not decide a fix."""
    from e2i_fix.facts import runs

    pairs: list[tuple[str, Path]] = []
    for m in f.mounts:
        if m.kind == "bind" and m.host is not None:
            pairs.append((m.target, m.host))
    for target, _, host in runs._copied(f):
        pairs.append((target, host))
    if not pairs:
        return ()
    reads = _reads(f.project)
    out: list[ConfigFile] = []
    seen: set[Path] = set()
    for target, host in pairs:
        for t, p in _expand(target, host, reads):
            if p in seen:
                continue
            kind = kind_of(t, p.name)
            if kind is None and _is_nginx_site(p, target):
                kind = "nginx"
            if kind is None:
                continue
            seen.add(p)
            text = _text(p, reads)
            if text is not None:
                out.append(ConfigFile(kind, t, p, text))
    return tuple(out)


class _Reads:
    """What the run read of the project's files for context, kept with the stack for the whole
    run: every variant, round and verification run asks again, and none of it changes (a run
    writes compose files, Dockerfiles and `.dockerignore` files only)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip(os.sep) + os.sep
        self.trees: dict[Path, list[tuple[str, Path]]] = {}
        self.texts: dict[Path, str | None] = {}


def _reads(project: Any) -> _Reads:
    stack = project.stack
    got: _Reads | None = stack.__dict__.get("_config_reads")
    if got is None:
        from e2i_fix.project import boundary_of

        root = stack.boundary or boundary_of(project.folder)
        got = stack.__dict__["_config_reads"] = _Reads(os.path.realpath(root))
    return got


def _is_nginx_site(p: Path, target: str) -> bool:
    return p.name.endswith((".conf", ".conf.template", ".template")) and "nginx" in (str(p) + target).lower()


def _text(p: Path, reads: _Reads) -> str | None:
    if p not in reads.texts:
        try:
            reads.texts[p] = None if p.stat().st_size > _MAX else p.read_text("utf-8", "replace")
        except OSError:
            reads.texts[p] = None
    return reads.texts[p]


def _expand(target: str, host: Path, reads: _Reads) -> list[tuple[str, Path]]:
    """The files a mount or copy of `host` at `target` brings: the file itself, or the first
    `_MAX_FILES` configuration files of a folder, in path order."""
    tree = reads.trees.get(host)
    if tree is None:
        tree = reads.trees[host] = _tree(host, reads.root)
    return [(target if rel == "" else posixpath.join(target, rel), p) for rel, p in tree]


def in_project(f: Facts, path: Path) -> bool:
    """Whether `path` (followed through symlinks) is a file or folder of the project."""
    return (os.path.realpath(path) + os.sep).startswith(_reads(f.project).root)


def _tree(host: Path, root: str) -> list[tuple[str, Path]]:
    if not (os.path.realpath(host) + os.sep).startswith(root):
        return []  # outside the project
    try:
        if host.is_file():
            return [("", host)]
        if host.is_dir():
            got: list[tuple[str, Path]] = []
            for rel in _walk(str(host), ""):
                if len(got) >= _MAX_FILES:
                    break
                name = rel.rpartition("/")[2]
                dot = name.rfind(".")
                suffix = name[dot:] if 0 < dot < len(name) - 1 else ""
                if suffix in (".conf", ".cfg", ".template") or name == "Caddyfile":
                    p = host / rel
                    if p.is_file():
                        got.append((rel, p))
            return got
    except OSError:
        pass
    return []


def _walk(folder: str, prefix: str) -> Iterator[str]:
    """Everything under `folder`, as paths relative to it, in the order of the sorted paths
    (each entry, then what a folder holds, names in order); symlinked folders are not entered.
    Lazy: a caller that has enough stops the walk."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except PermissionError:
        return
    for e in entries:
        rel = prefix + e.name
        yield rel
        try:
            into = e.is_dir(follow_symlinks=False)
        except OSError:
            into = False
        if into:
            yield from _walk(e.path, rel + "/")


# --- proxies --------------------------------------------------------------------------------

_COMMENT = lazyre.compile(r"(?m)(?:^|(?<=\s))#[^\n]*")
_NGINX_PASS = lazyre.compile(r"\b(?:proxy|fastcgi|uwsgi|scgi|grpc)_pass\s+(\"[^\"]*\"|'[^']*'|[^\s;]+)")
_NGINX_SET = lazyre.compile(r"\bset\s+\$(\w+)\s+(\"[^\"]*\"|'[^']*'|[^\s;]+)")
_UPSTREAM = lazyre.compile(r"\bupstream\s+([\w.-]+)\s*\{([^}]*)\}")
_SERVER = lazyre.compile(r"\bserver\s+(\"[^\"]*\"|'[^']*'|[^\s;]+)")
_CADDY = lazyre.compile(r"\breverse_proxy\s+(?:[/*][^\s{]*\s+)?([^{\n]+)")
_HAPROXY = lazyre.compile(r"^\s*server\s+\S+\s+(\S+)", re.MULTILINE)


# Where a proxy image reads its configuration: a folder or file mounted there is its config.
_PROXY_CONFIG = lazyre.compile(
    r"/etc/nginx(?:/(?:conf\.d|sites-enabled|sites-available|templates|http\.d|stream\.d))?/?"
    r"|/etc/nginx/[^/]+\.conf(?:\.template)?|/etc/nginx/(?:conf\.d|templates)/[^/]+"
    r"|/etc/caddy(?:/Caddyfile)?/?|/config/caddy/?"
    r"|(?:/usr/local)?/etc/haproxy(?:/haproxy\.cfg)?/?")


def unread_proxy_config(f: Facts) -> str | None:
    """Why the proxy configuration the service mounts is not known here, if it is not: a host
    path the stack does not resolve or that does not exist, a volume (another service or a
    setup step fills it), or a folder the repository holds with no configuration file in it
    (a setup script writes it before the first `up`). Then its upstreams, its spools and
    what it serves are not known, however complete what else it reads looks."""
    read = {c.host for c in f.configs}
    for m in f.mounts:
        if m.kind not in ("bind", "volume") or not _PROXY_CONFIG.fullmatch(m.target.rstrip("/") or "/"):
            continue
        if m.kind == "volume":
            return f"its proxy configuration at {m.target} is the volume {m.source or '(anonymous)'}, which the tool cannot read"
        if m.host is None or not m.host.exists():
            return f"its proxy configuration is mounted from {m.source or m.host}, which the tool cannot read here"
        if m.host.is_dir() and not any(h == m.host or m.host in h.parents for h in read):
            if not in_project(f, m.host):
                return f"its proxy configuration is mounted from {m.host}, outside the project"
            return (f"its proxy configuration is mounted from {_shown(m.host, f.project.folder)}/, which holds no "
                    "configuration file in the repository (something writes it at setup)")
    return None


def upstreams(f: Facts) -> list[Upstream]:
    """Where the proxies of this service pass requests to (nginx `proxy_pass` and its kin,
    `upstream` blocks, `set $var` targets; caddy `reverse_proxy`; haproxy `server` lines),
    quoted or not. A host written as a variable nginx or the entrypoint fills in is kept with
    the host empty, so a caller knows a target is not known."""
    out: list[Upstream] = []
    folder = f.project.folder
    for c in f.configs:
        where = _shown(c.host, folder)
        text = _COMMENT.sub("", c.text)
        if c.kind == "nginx":
            found = nginx_targets(text)
        elif c.kind == "caddy":
            found = [t for m in _CADDY.finditer(text) for t in m.group(1).split()]
        elif c.kind == "haproxy":
            found = _HAPROXY.findall(text)
        else:
            continue
        for target in found:
            host, port = split_target(_filled(target, f.env, c))
            out.append(Upstream(host, port, where))
    return out


_TEMPLATE_VAR = lazyre.compile(r"\$\{(\w+)\}|\{\$(\w+)\}|\{env\.(\w+)\}")


def _filled(target: str, env: dict[str, str], c: ConfigFile) -> str:
    """`target` with the variables the container's environment fills in replaced: `${VAR}` in
    a template the nginx image renders with envsubst, `{$VAR}` and `{env.VAR}` in a Caddyfile.
    A variable with no known value stays (its host is then not known)."""
    if c.kind == "nginx" and not c.host.name.endswith(".template"):
        return target

    def sub(m: re.Match[str]) -> str:
        value = env.get(m.group(1) or m.group(2) or m.group(3))
        return value if value and "$" not in value else m.group(0)

    return _TEMPLATE_VAR.sub(sub, target)


def nginx_targets(text: str) -> list[str]:
    """The targets an nginx configuration passes requests to, as written (quotes removed;
    upstream names expanded to their servers; `set $x http://...` followed)."""
    text = _COMMENT.sub("", text)
    upstreams = {m.group(1): [_unquote(s) for s in _SERVER.findall(m.group(2))] for m in _UPSTREAM.finditer(text)}
    sets = {m.group(1): _unquote(m.group(2)) for m in _NGINX_SET.finditer(text)}
    out: list[str] = []
    for raw in _NGINX_PASS.findall(text):
        target = _unquote(raw)
        for name, value in sets.items():
            target = target.replace("${" + name + "}", value).replace("$" + name, value)
        host, _ = split_target(target)
        out += upstreams.get(host, [target])
    for servers in upstreams.values():
        out += servers
    return list(dict.fromkeys(out))


def split_target(target: str) -> tuple[str, int | None]:
    """`http://api:8000/x` -> ("api", 8000); `unix:/x` -> ("", None); a variable -> ("", None)."""
    rest = _unquote(target).split("://", 1)[-1].split("@", 1)[-1]
    if rest.startswith("unix:"):
        return "", None
    m = re.match(r"\[?([A-Za-z0-9_.${}-]+)\]?(?::(\d+))?", rest)
    if not m:
        return "", None
    host = m.group(1)
    if "$" in host or "{" in host:
        return "", int(m.group(2)) if m.group(2) else None
    return host, int(m.group(2)) if m.group(2) else None


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return s


def _shown(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


# --- what a web server answers ---------------------------------------------------------------

_LISTEN = lazyre.compile(r"(?m)^\s*listen\s+([^;\s]+)[^;]*;")
_BIND = lazyre.compile(r"(?m)^\s*bind\s+([^\s]+)")
_LOCATION = lazyre.compile(r"\blocation\s+(=|\^~|~\*?)?\s*([^\s{]+)\s*\{")


def listens(f: Facts) -> list[tuple[int, str]]:
    """The ports the nginx (`listen`) and haproxy (`bind`) configuration of the service listens
    on, each with the file that says so. Nothing when a listen address is a variable the
    entrypoint fills in (`listen ${PORT};`): then the config does not tell."""
    out: list[tuple[int, str]] = []
    for c in f.configs:
        if c.kind == "nginx":
            found = _LISTEN.findall(_COMMENT.sub("", c.text))
        elif c.kind == "haproxy":
            found = _BIND.findall(_COMMENT.sub("", c.text))
        else:
            continue
        where = _shown(c.host, f.project.folder)
        for addr in found:
            addr = _unquote(addr)
            if "$" in addr:
                return []
            if addr.startswith("unix:"):
                continue
            port = addr.rsplit(":", 1)[-1]
            if port.isdigit():
                out.append((int(port), f"its config {where} listens on {port}"))
    return list(dict.fromkeys(out))


def nginx(f: Facts) -> list[ConfigFile]:
    """The nginx configuration files the service reads."""
    return [c for c in f.configs if c.kind == "nginx"]


def answers(text: str, path: str) -> bool:
    """Whether an nginx configuration has a `location` that answers `path`: an exact or prefix
    match, a regex that matches, or a catch-all `/` that proxies or falls back to a file."""
    text = _COMMENT.sub("", text)
    for m in _LOCATION.finditer(text):
        kind, loc = m.group(1), m.group(2)
        if kind in ("~", "~*"):
            try:
                if re.search(loc, path, re.IGNORECASE if kind == "~*" else 0):
                    return True
            except re.error:
                continue
        elif kind == "=":
            if loc == path:
                return True
        elif loc != "/" and path.startswith(loc):
            return True
        elif loc == "/" and re.search(r"proxy_pass|return\s+200|try_files[^;]*(?:index\.html|@)", text[m.end():m.end() + 2000]):
            return True
    return False


# --- server settings ------------------------------------------------------------------------


def settings(f: Facts, kind: str, target: str | None = None) -> dict[str, str]:
    """`name = value` settings of the service's `kind` config files (postgresql.conf, redis.conf,
    rabbitmq.conf), later files over earlier ones; names lower case. `target`: only the file the
    container reads at that path (`postgres -c config_file=...`)."""
    out: dict[str, str] = {}
    for c in f.configs:
        if c.kind == kind and (target is None or c.target == target):
            out.update(parse_settings(c.text, kind))
    return out


def parse_settings(text: str, kind: str) -> dict[str, str]:
    """The settings of one file: `name = value` (postgresql.conf, rabbitmq.conf's sysctl format)
    or `name value` (redis.conf)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if kind in ("postgresql", "rabbitmq"):
            m = re.match(r"([A-Za-z_.]+)\s*=?\s*(.+)$", line)
        else:
            m = re.match(r"([A-Za-z_-]+)\s+(.+)$", line)
        if m:
            out[m.group(1).lower()] = m.group(2).strip().strip("'\"")
    return out


# --- what nginx keeps on disk ---------------------------------------------------------------

_NGINX_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# The modules that pass requests on and spool what comes back to disk: the directive that
# passes, and the prefix of its buffering, temp path and size directives.
_PASSERS = {"proxy_pass": "proxy", "fastcgi_pass": "fastcgi", "uwsgi_pass": "uwsgi", "scgi_pass": "scgi"}
_CACHES = {"proxy_cache_path", "fastcgi_cache_path", "uwsgi_cache_path", "scgi_cache_path"}


class Spool(NamedTuple):
    """What nginx writes to disk on its own: request bodies (`client`), responses of the servers
    it passes requests to (`proxy`, `fastcgi`, `uwsgi`, `scgi`), a cache (`cache`)."""

    kind: str
    path: str  # the folder it keeps them in
    size: int | None  # the most it keeps there for one request (a cache: in all); None: no bound
    why: str  # what says so


class _Node(NamedTuple):
    name: str
    args: tuple[str, ...]
    children: tuple[_Node, ...] | None  # a block's directives; None for a simple directive


def nginx_size(word: str) -> int | None:
    """Bytes of an nginx size (`512M`, `1g`, `8k`, `1024`); None when it cannot be read."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", word.strip())
    return int(m.group(1)) * _NGINX_UNITS[m.group(2).lower()] if m else None


def _tokens(text: str) -> list[str]:
    """nginx's words, quoted strings unquoted, with `{`, `}` and `;` as words of their own."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch in "{};":
            out.append(ch)
            i += 1
        elif ch in "'\"":
            end = text.find(ch, i + 1)
            end = n if end < 0 else end
            out.append(text[i + 1 : end])
            i = end + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};":
                if text.startswith("${", j) and text.find("}", j) > 0:
                    j = text.find("}", j)  # `${var}`: its braces are not a block's
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _parse(tokens: list[str], at: int = 0) -> tuple[tuple[_Node, ...], int]:
    nodes: list[_Node] = []
    words: list[str] = []
    i = at
    while i < len(tokens):
        t = tokens[i]
        i += 1
        if t == ";":
            if words:
                nodes.append(_Node(words[0], tuple(words[1:]), None))
            words = []
        elif t == "{":
            children, i = _parse(tokens, i)
            nodes.append(_Node(words[0] if words else "", tuple(words[1:]), children))
            words = []
        elif t == "}":
            return tuple(nodes), i
        else:
            words.append(t)
    return tuple(nodes), i


def nginx_spools(f: Facts, defaults: dict[str, str]) -> list[Spool] | str:
    """Where the service's nginx spools to disk and the most it keeps there for one request,
    read from the nginx configuration it mounts or copies (the image's defaults where it has
    none): request bodies up to `client_max_body_size` (default 1m) in `client_body_temp_path`;
    for each `proxy_pass` (and `fastcgi_pass`, `uwsgi_pass`, `scgi_pass`) with buffering on,
    responses up to `proxy_max_temp_file_size` (default 1024m) in `proxy_temp_path`; each
    `proxy_cache_path` up to its `max_size`. Settings are inherited from the enclosing blocks,
    a conf.d file's top level being the `http` block of nginx.conf. `defaults`: the compiled-in
    temp folders by kind (the image table's `spools`). A string: why it is not known (a size set
    through a variable)."""
    for m in f.mounts:
        # A configuration from a path the stack does not resolve, or from a volume another
        # service fills: what it says is not known here.
        if m.kind in ("bind", "volume") and m.target.startswith("/etc/nginx") and (m.host is None or not m.host.exists()):
            return f"its nginx configuration is mounted from {m.source or 'a volume'}, which the tool cannot read here"
    unread = unread_proxy_config(f)
    if unread is not None:
        return unread
    files = nginx(f)
    roots: list[tuple[str, tuple[_Node, ...]]] = []
    http_level: dict[str, tuple[str, ...]] = {}
    for c in files:
        text = c.text if not c.host.name.endswith(".template") else _TEMPLATE_VAR.sub(
            lambda m: f.env.get(m.group(1) or m.group(2) or m.group(3)) or m.group(0), c.text)
        nodes, _ = _parse(_tokens(text))
        http = [n.children or () for n in nodes if n.name == "http" and n.children is not None]
        if not http and not any(n.name in ("events", "stream") for n in nodes):
            http = [nodes]  # a file nginx.conf includes in its http block (conf.d, a template)
        where = _shown(c.host, f.project.folder)
        for block in http:
            roots.append((where, block))
            http_level.update((n.name, n.args) for n in block if n.children is None)
    out: list[Spool] = []

    def value(chain: list[tuple[_Node, ...]], name: str) -> tuple[str, ...] | None:
        for nodes in reversed(chain):
            for n in reversed(nodes):
                if n.name == name and n.children is None:
                    return n.args
        return http_level.get(name)

    def size_of(args: tuple[str, ...] | None, default: str, name: str, where: str) -> tuple[int | None, str] | str:
        word = args[0] if args else default
        if "$" in word:
            return f"{name} is set through a variable in {where}"
        got = nginx_size(word)
        if got is None:
            return f"{name} {word} in {where} cannot be read"
        said = f"{name} {word} in {where}" if args else f"{name} {default}, nginx's default"
        return (None if got == 0 else got), said

    def walk(where: str, chain: list[tuple[_Node, ...]]) -> str | None:
        nodes = chain[-1]
        body = size_of(value(chain, "client_max_body_size"), "1m", "client_max_body_size", where)
        if isinstance(body, str):
            return body
        temp = value(chain, "client_body_temp_path")
        out.append(Spool("client", temp[0] if temp else defaults.get("client", ""), body[0], body[1]))
        for n in nodes:
            kind = _PASSERS.get(n.name)
            if kind is not None and n.children is None:
                buffering = value(chain, f"{kind}_buffering")
                if buffering and buffering[0] == "off":
                    continue
                got = size_of(value(chain, f"{kind}_max_temp_file_size"), "1024m", f"{kind}_max_temp_file_size", where)
                if isinstance(got, str):
                    return got
                if got[0] is None and value(chain, f"{kind}_max_temp_file_size"):
                    continue  # 0: responses are not written to temp files
                temp = value(chain, f"{kind}_temp_path")
                out.append(Spool(kind, temp[0] if temp else defaults.get(kind, ""), got[0], got[1]))
            elif n.name in _CACHES and n.args:
                m = next((a for a in n.args if a.startswith("max_size=")), None)
                cache = size_of((m.split("=", 1)[1],), "", "max_size", where) if m else (None, "")
                if isinstance(cache, str):
                    return cache
                out.append(Spool("cache", n.args[0], cache[0], f"{n.name} {n.args[0]} {m} in {where}" if m
                                 else f"{n.name} {n.args[0]} in {where} has no max_size"))
            elif n.children is not None and n.name in ("server", "location", "if", "limit_except"):
                why = walk(where, [*chain, n.children])
                if why:
                    return why
        return None

    if not roots:
        # The image's own configuration: a static site, bodies of nginx's default size.
        return [Spool("client", defaults.get("client", ""), 1024**2, "client_max_body_size 1m, nginx's default")]
    for where, nodes in roots:
        why = walk(where, [nodes])
        if why:
            return why
    return out


def kept_under(spools: list[Spool], path: str) -> tuple[int | None, list[str]]:
    """What the spools under `path` may take at once for one request of each kind, every cache
    full (None: no bound), and what says so."""
    under = path.rstrip("/") + "/"
    most: dict[str, Spool] = {}
    caches: list[Spool] = []
    for s in spools:
        if not s.path or not (s.path == path or s.path.startswith(under)):
            continue
        if s.kind == "cache":
            caches.append(s)
        else:
            had = most.get(s.kind)
            if had is None or had.size is not None and (s.size is None or s.size > had.size):
                most[s.kind] = s
    picked = [*most.values(), *caches]
    if any(s.size is None for s in picked):
        return None, [s.why for s in picked if s.size is None]
    return sum(s.size or 0 for s in picked), [s.why for s in picked]
