"""Image references and what the tool knows about images.

One parser reads an image reference (`${REGISTRY:-docker.io}/library/postgres:${TAG:-16}`,
`bitnami/redis`, `ghcr.io/mlflow/mlflow:v2@sha256:...`) through `.env` and the defaults its
variables carry; one table (`data/images.toml`, each fact with its source) says what is known of
the image; `docker image inspect` output the user gives (`--inspect FILE`) outranks the table for
the images it describes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from e2i_fix import lazyre
from e2i_fix.records import NamedTuple

_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")
_VAR = lazyre.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}$]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


class ImageRef(NamedTuple):
    """An image reference as Compose would pull it, where the stack tells."""

    written: str  # as the file writes it
    name: str  # with every variable the stack gives a value replaced
    registry: str | None  # None: Docker Hub
    path: str  # the repository without registry or `library/`: "postgres", "bitnami/redis", "mlflow/mlflow"
    tag: str | None  # None: none written (latest), or a variable with no value here
    resolved: bool  # every variable had a value (from `.env` or its default)
    # Why the release it names is one install's, not the repository's: its tag (or the whole
    # reference) comes from a value only an untracked `.env` gives (`Values.local`).
    local: str | None = None

    @property
    def repository(self) -> str:
        """The repository as the table keys it: "postgres", "bitnami/redis", "ghcr.io/mlflow/mlflow"."""
        return f"{self.registry}/{self.path}" if self.registry else self.path

    @property
    def family(self) -> str:
        """The repository's last part: `bitnami/redis` -> "redis"."""
        return self.path.rsplit("/", 1)[-1]

    def major(self) -> int | None:
        """The tag's leading number (`16-alpine` -> 16), if it has one and it is the
        repository's (not `local`)."""
        if self.local:
            return None
        m = re.match(r"v?(\d+)", self.tag or "")
        return int(m.group(1)) if m else None

    def release(self) -> tuple[int, ...] | None:
        """The release the tag names, as numbers: `7.4-alpine` -> (7, 4), `8` -> (8,). A tag
        names the newest release under its numbers (`7` is the latest 7.x), and one with no
        number (none written, `latest`, `alpine`, `bookworm`) the newest of all: (). None where
        it is not known: a tag from a variable with no value, one only an untracked `.env` gives
        (`local`: one install's release), or a digest with no tag."""
        if self.local:
            return None
        if self.tag is None:
            if not self.resolved or "@" in self.written:
                return None
            return ()
        m = re.match(r"v?(\d+(?:\.\d+)*)", self.tag)
        return tuple(int(n) for n in m.group(1).split(".")) if m else ()


def parse(image: str | None, env: Mapping[str, str] | None = None) -> ImageRef | None:
    """`image` read as Compose reads it, its variables from `env` (the stack's `.env`) or their
    defaults; None when what names the repository is unknown (a variable with no value). Where
    `env` is a `Values` whose value for a variable of the last part of the reference (its name
    and tag) is one install's, the reference says so (`local`)."""
    if not isinstance(image, str) or not image.strip():
        return None
    written = image.strip()
    resolved = True
    name = written
    used: list[str] = []  # variables of the last part that took their value from `env`
    if "$" in name:
        env = env or {}
        holes: list[int] = []
        cut = written.rfind("/")

        def sub(m: re.Match[str]) -> str:
            nonlocal resolved
            var = m.group("name") or m.group("bare")
            value = env.get(var)
            op, arg = m.group("op"), m.group("arg") or ""
            if op in (":-", "-"):
                got = value if value is not None and (op == "-" or value) else arg
            elif op in (":+", "+"):
                got = arg if value is not None and (op == "+" or value) else ""
            else:
                got = value or ""
            if not got and value is None and op not in (":+", "+"):
                resolved = False
                holes.append(m.start())
            if value is not None and m.end() > cut:
                used.append(var)
            return got

        name = _VAR.sub(sub, name.replace("$$", "\0")).replace("\0", "$")
        if not resolved and not name.strip(":/@"):
            return None
    name = name.split("@", 1)[0]
    parts = [p for p in name.split("/") if p]
    if not parts:
        return None
    last = parts[-1]
    tag: str | None = None
    if ":" in last:
        last, tag = last.split(":", 1)
        tag = tag or None
        parts[-1] = last
    if not last:
        return None
    registry: str | None = None
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry = parts[0].lower()
        parts = parts[1:]
    if registry in _HUB:
        registry = None
    if len(parts) > 1 and parts[0] == "library":
        parts = parts[1:]
    path = "/".join(parts).lower()
    if not path or "$" in path:
        return None
    if not resolved and tag is None and written.rstrip().endswith("}"):
        tag = None  # `redis:${TAG}`: the tag is not known here
    local = None
    if used and isinstance(env, Values):
        whys = env.local
        local = "; ".join(dict.fromkeys(whys[v] for v in used if v in whys)) or None
    return ImageRef(written, name, registry, path, tag, resolved, local)


class Values(dict[str, str]):
    """The values `.env` gives the stack's variables (`Project.env`), and which are one
    install's. A `.env` that git does not track (the file an install copies from `.env.example`
    and edits, which `.gitignore` keeps out) gives values that are not the repository's: a fact
    that rests on one (the release an image's tag names) is not known for the repository, and a
    fix must hold whatever the value is. A tracked `.env`, a default written in the compose
    file (`${TAG:-7}`), or a folder git does not manage give the repository's values."""

    def __init__(self, values: Mapping[str, str] | None = None, path: Path | None = None) -> None:
        super().__init__(values or {})
        self.path = path  # the file they come from
        self._local: dict[str, str] | None = None

    @property
    def local(self) -> dict[str, str]:
        """Why each value is one install's, by variable (empty where the file is the
        repository's): `DOCKER_REDIS_VERSION, '7.2' only in .env, a file git ignores`. Asked of
        git once per run, when a fact first rests on one of the values."""
        if self._local is None:
            how = _untracked(self.path) if self.path is not None else None
            name = self.path.name if self.path is not None else ".env"
            self._local = {} if how is None else {k: f"{k}, {v!r} only in {name}, {how}" for k, v in self.items()}
        return self._local


def _untracked(path: Path) -> str | None:
    """How git sees `path` where it does not track it ("a file git ignores", "a file git does
    not track"); None where it does, or where no git work tree holds it (or git is missing)."""
    import subprocess

    def git(*args: str) -> int:
        try:
            return subprocess.run(["git", "-C", str(path.parent), *args, "--", path.name], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20).returncode
        except (OSError, subprocess.SubprocessError):
            return 128

    if git("ls-files", "--error-unmatch") != 1:
        return None  # tracked (0), or not a git work tree (128)
    return "a file git ignores" if git("check-ignore", "-q") == 0 else "a file git does not track"


# --- the table ------------------------------------------------------------------------------

_RUNTIME = ("user", "own_user", "step_down", "root_entrypoint", "cap_add", "file_caps", "volumes", "writes",
            "renders", "read_only", "internal", "internal_ports", "gains", "other_user_gains", "notes", "sources", "bounded", "unbounded", "spools",
            "versions")
_SOFTWARE = ("probe", "probe_min_major", "probe_unless_password", "probe_source", "probe_start_period", "probe_start_source", "port", "port_source", "cpus",
             "memory", "documented", "heap_factor", "limits_source", "limits_images", "settings", "settings_source",
             "unsized", "watermark_factor", "watermark_source")


class Entry:
    """One entry of `data/images.toml` (or of an inspect file); a field is None when not known.

    An entry's fields describe the image's newest release; its `versions` list says what holds
    only `from` a release on or `upto` one (`upto = "7"`: every 7.x and before). `at(release)`
    is the entry for one release; for a release that is not known, a field the versions change
    is not known either (`varies` names them)."""

    __slots__ = ("key", "fields", "varies", "origin", "_at")

    def __init__(self, key: str, fields: dict[str, Any], varies: tuple[str, ...] = (),
                 origin: Entry | None = None) -> None:
        self.key = key
        self.fields = fields
        self.varies = varies  # fields left out because they depend on a release not known here
        self.origin = origin  # the entry of every release this one was read from
        self._at: dict[tuple[int, ...] | None, Entry] = {}

    def get(self, field: str) -> Any:
        return self.fields.get(field)

    def at(self, release: tuple[int, ...] | None) -> Entry:
        """The entry for `release` (`ImageRef.release`: () the newest, None not known)."""
        rules = self.fields.get("versions")
        if not rules:
            return self
        if release not in self._at:
            fields = {k: v for k, v in self.fields.items() if k != "versions"}
            varies: tuple[str, ...] = ()
            if release is None:
                varies = tuple(sorted({k for r in rules for k in r if k not in _BOUNDS}))
                for k in varies:
                    fields.pop(k, None)
            else:
                for rule in rules:
                    if _holds(rule, release):
                        fields.update({k: v for k, v in rule.items() if k not in _BOUNDS})
            self._at[release] = Entry(self.key, fields, varies, self)
        return self._at[release]

    def alternatives(self, field: str) -> list[Any]:
        """The values `field` takes across the entry's releases, newest first."""
        if self.origin is not None:
            return self.origin.alternatives(field)
        out = [self.fields.get(field)] + [r.get(field, self.fields.get(field)) for r in self.fields.get("versions") or ()]
        return [v for i, v in enumerate(out) if v is not None and v not in out[:i]]

    def __repr__(self) -> str:
        return f"Entry({self.key!r})"


_BOUNDS = ("from", "upto", "note")


def _numbers(text: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in str(text).split("."))


def _holds(rule: dict[str, Any], release: tuple[int, ...]) -> bool:
    """Whether a `versions` rule holds for `release`: () is the newest release of all, and a
    release given by fewer numbers than a bound is the newest under them (`7` is past `7.2`)."""
    big = 1 << 30
    low, high = rule.get("from"), rule.get("upto")
    if low is not None and release:
        bound = _numbers(low)
        if tuple(release[i] if i < len(release) else big for i in range(len(bound))) < bound:
            return False
    if high is not None:
        bound = _numbers(high)
        if not release or tuple(release[i] if i < len(release) else big for i in range(len(bound))) > bound:
            return False
    return True


class Table(NamedTuple):
    exact: dict[str, Entry]  # by repository: the key and its `images`
    family: dict[str, Entry]  # by family: the last part of each repository, and `family`
    sections: dict[str, Any]  # the other tables: profiles, tools, flavours, packages, dev_servers


_TABLE: list[Table] = []
DATA = Path(__file__).resolve().parent.parent / "data" / "images.toml"


def table() -> Table:
    """The image table, read on first use."""
    if not _TABLE:
        from e2i_fix import datafiles

        raw = datafiles.load(DATA.name)
        exact: dict[str, Entry] = {}
        family: dict[str, Entry] = {}
        for key, fields in raw.get("images", {}).items():
            e = Entry(key, fields)
            for n in (key, *fields.get("images", ())):
                exact[n] = e
            for n in (key, *fields.get("images", ())):
                family.setdefault(n.rsplit("/", 1)[-1], e)
            for n in fields.get("family", ()):
                family.setdefault(n, e)
        # A family named by an entry's own key wins over one another entry claims.
        for key, e in list(exact.items()):
            if "/" not in key and key == e.key:
                family[key] = e
        _TABLE.append(Table(exact, family, {k: v for k, v in raw.items() if k != "images"}))
    return _TABLE[0]


class Knowledge(NamedTuple):
    """What is known of one image: how it runs (only from an entry for the image itself) and
    the software it runs (from its entry, else its family's)."""

    image: Entry | None
    software: tuple[Entry, ...]
    inspected: Entry | None = None  # `docker image inspect` output given by the user
    local: str | None = None  # why the release is one install's (`ImageRef.local`)

    def runtime(self, field: str) -> Any:
        if self.inspected is not None and self.inspected.get(field) is not None:
            return self.inspected.get(field)
        return self.image.get(field) if self.image is not None else None

    def varies(self, field: str) -> str | None:
        """Why a runtime fact of the image is not known here though the table has it: it
        depends on the image's release, and the tag does not tell which runs."""
        if self.image is None or field not in self.image.varies or (
                self.inspected is not None and self.inspected.get(field) is not None):
            return None
        if self.local:
            return (f"what the {self.image.key} image does here depends on its release, and its tag comes from "
                    f"{self.local} (one install's value, not the repository's: the fix must hold for any)")
        return f"what the {self.image.key} image does here depends on its release, which its tag does not tell"

    def alternatives(self, field: str) -> list[Any]:
        """What a runtime fact is in each release of the image (one value where it does not vary)."""
        got = self.runtime(field)
        if got is not None:
            return [got]
        return self.image.alternatives(field) if self.image is not None and field in self.image.varies else []

    def soft(self, field: str) -> Any:
        for e in self.software:
            v = e.get(field)
            if v is not None:
                return v
        return None

    def source(self, field: str) -> str:
        """Where a runtime fact comes from, for messages and provenance."""
        if self.inspected is not None and self.inspected.get(field) is not None:
            return f"docker image inspect of {self.inspected.key} ({self.inspected.get('sources')[0]})"
        if self.image is not None:
            return f"{self.image.key} (built-in table: {'; '.join(self.image.get('sources') or ())})"
        return "not known"

    @property
    def known(self) -> bool:
        return self.image is not None or self.inspected is not None


NOTHING = Knowledge(None, ())


def knowledge(ref: ImageRef | None) -> Knowledge:
    """The table's facts for `ref` (and the inspect file's, where the user gave one)."""
    if ref is None:
        return NOTHING
    t = table()
    image = t.exact.get(ref.repository) or t.exact.get(ref.path)
    if image is not None:
        # What holds only for some releases is read for the release the tag names; an image
        # matched through its family has releases of its own, so the family's base entry counts.
        image = image.at(ref.release())
    software: list[Entry] = [image] if image is not None else []
    fam = t.family.get(ref.family)
    if fam is not None and (image is None or fam.key != image.key):
        software.append(fam)
        # An alias family points at the entry that runs the same software.
    return Knowledge(image, tuple(software), _INSPECTED.get(ref.repository) or _INSPECTED.get(ref.path), ref.local)


def section(name: str) -> Any:
    return table().sections.get(name, {})


# --- docker image inspect -------------------------------------------------------------------

_INSPECTED: dict[str, Entry] = {}


def read_inspect(path: str) -> dict[str, Entry]:
    """The images of a `docker image inspect IMAGE...` file, by repository. What they say (User,
    Entrypoint, Cmd, Env, ExposedPorts, Healthcheck, Volumes, WorkingDir) outranks the table for
    those images. Raises InputError when the file is not such output."""
    import json

    from e2i_fix.errors import InputError

    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the inspect file: {e}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"not JSON ({e.msg}): expected `docker image inspect` output", e.lineno, e.colno) from None
    items = data if isinstance(data, list) else [data]
    out: dict[str, Entry] = {}
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("Config"), dict):
            raise InputError(f"entry {n + 1} has no Config: expected `docker image inspect` output", 1, 1)
        cfg = item["Config"]
        tags = [t for t in item.get("RepoTags") or () if isinstance(t, str)]
        tags += [d.split("@", 1)[0] for d in item.get("RepoDigests") or () if isinstance(d, str)]
        user = cfg.get("User") or ""
        fields: dict[str, Any] = {
            "user": user or "root",
            "entrypoint": cfg.get("Entrypoint"),
            "cmd": cfg.get("Cmd"),
            "env": dict(e.split("=", 1) for e in cfg.get("Env") or () if isinstance(e, str) and "=" in e),
            "ports": sorted(int(p.split("/", 1)[0]) for p in (cfg.get("ExposedPorts") or {}) if p.split("/", 1)[0].isdigit()),
            "healthcheck": cfg.get("Healthcheck"),
            "volumes": sorted(cfg.get("Volumes") or {}),
            "workdir": cfg.get("WorkingDir") or None,
            "sources": [f"{path}, entry {n + 1}"],
        }
        for tag in tags:
            ref = parse(tag)
            if ref is not None:
                out[ref.repository] = Entry(ref.repository, fields)
    return out


def use_inspect(entries: dict[str, Entry]) -> None:
    """Make these inspected images outrank the table for the rest of the run."""
    _INSPECTED.clear()
    _INSPECTED.update(entries)
