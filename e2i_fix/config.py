"""Settings: command-line flags over `.e2i-fix.toml` / `[tool.e2i-fix]` in `pyproject.toml`.

The file is found by walking up from the stack's folder (or named with `--config`). Unknown
keys are an error, and each pass's table is checked against the options the pass declares.
Every value remembers where it came from, for `--show-config`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix.errors import InputError
from e2i_fix.fix import Fix, Safety

if TYPE_CHECKING:
    from e2i_fix.passes import Pass

_TOP_KEYS = {"select", "ignore", "unsafe-fixes", "per-service-ignore", "exclude", "per-file-ignores", "placement",
             "roles"}
DEFAULT = "default"
# Where a key several services need goes: their shared service template, or each service.
PLACEMENTS = ("template", "per-service")


class Settings:
    def __init__(self, passes: dict[str, Pass], select: set[str] | None = None, ignore: set[str] | None = None,
                 unsafe: bool = False) -> None:
        self.passes = passes
        self.select = select  # None: all
        self.ignore: set[str] = set() if ignore is None else ignore
        self.unsafe = unsafe
        self.pass_options: dict[str, dict[str, Any]] = {}
        self.flag_options: dict[str, dict[str, Any]] = {}  # pass options from the command line: they win
        self.per_service_ignore: dict[str, set[str]] = {}
        self.placement = PLACEMENTS[0]
        # Glob patterns, each with the folder it is relative to (the config file's).
        self.exclude: list[tuple[Path, str]] = []
        self.per_file_ignores: list[tuple[Path, str, set[str]]] = []
        # `[roles]`: (folder the glob is relative to, glob, role), in the file's order.
        self.roles: list[tuple[Path, str, str]] = []
        self.origin: dict[str, str] = {}  # key: where its value came from (a flag, a file)
        self.source: Path | None = None  # the configuration file read, if any

    def excluded(self, path: Path) -> bool:
        return any(matches(path, base, pattern) for base, pattern in self.exclude)

    def file_ignored(self, path: Path, pass_id: str) -> bool:
        """Whether `exclude` or `per-file-ignores` keeps `pass_id` out of `path`."""
        if self.excluded(path):
            return True
        return any((pass_id in ids or "all" in ids) and matches(path, base, pattern)
                   for base, pattern, ids in self.per_file_ignores)

    def selected(self, pass_id: str) -> bool:
        # `all` names every pass, in a file as on the command line.
        return ((self.select is None or pass_id in self.select or "all" in self.select)
                and pass_id not in self.ignore and "all" not in self.ignore)

    def allows(self, fix: Fix) -> bool:
        return fix.safety >= (Safety.UNSAFE if self.unsafe else Safety.SAFE)

    def options(self, pass_id: str) -> dict[str, Any]:
        p = self.passes[pass_id]
        out = dict(p.DEFAULTS)
        out.update(self.pass_options.get(pass_id, {}))
        out.update(self.flag_options.get(pass_id, {}))
        out["_unsafe"] = self.unsafe
        out["_ignored_services"] = {s for s, ids in self.per_service_ignore.items() if pass_id in ids or "all" in ids}
        out["_placement"] = self.placement
        return out

    def check_ids(self, ids: set[str], where: str) -> None:
        unknown = sorted(ids - set(self.passes) - {"all"})
        if unknown:
            raise InputError(f"{where}: unknown pass id {', '.join(unknown)} (see --list-passes)")


Found = dict[Path, "tuple[Path, dict[str, Any]] | None"]


def find_config(start: Path, seen: Found | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The nearest `.e2i-fix.toml`, or `pyproject.toml` with a `[tool.e2i-fix]` table.
    With `seen` (one per run), each folder is looked at once: sibling stacks share parents."""
    return _find(start.resolve(), {} if seen is None else seen)


def _find(folder: Path, seen: Found) -> tuple[Path, dict[str, Any]] | None:
    if folder in seen:
        return seen[folder]
    found: tuple[Path, dict[str, Any]] | None = None
    own = folder / ".e2i-fix.toml"
    py = folder / "pyproject.toml"
    if own.is_file():
        found = own, _load(own)
    elif py.is_file() and (data := _tool_table(py)) is not None:
        found = py, data
    elif folder.parent != folder:
        found = _find(folder.parent, seen)
    seen[folder] = found
    return found


def _tool_table(path: Path) -> dict[str, Any] | None:
    """`[tool.e2i-fix]` of a pyproject.toml; most have none, and are not parsed to learn that."""
    raw = _read(path)
    if b"e2i-fix" not in raw:
        return None
    data: dict[str, Any] | None = _parse(raw).get("tool", {}).get("e2i-fix")
    return data


def _load(path: Path) -> dict[str, Any]:
    return _parse(_read(path))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read config: {e}") from None


def _parse(raw: bytes) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"cannot read config: {e}") from None


def matches(path: Path, base: Path, pattern: str) -> bool:
    """A glob of `exclude` / `per-file-ignores`: a pattern without `/` matches a file name
    anywhere (`Dockerfile.*`); one with `/` matches the path relative to `base`, `*` crossing
    folders (`legacy/*`, `**/compose.ci.yaml`)."""
    from fnmatch import fnmatchcase

    if "/" not in pattern:
        return fnmatchcase(path.name, pattern)
    try:
        rel = Path(os.path.abspath(path)).relative_to(base).as_posix()
    except ValueError:
        return False
    pattern = pattern.removeprefix("./")
    return fnmatchcase(rel, pattern) or (pattern.startswith("**/") and fnmatchcase(rel, pattern[3:]))


def load(path: Path) -> tuple[Path, dict[str, Any]]:
    """A file named with `--config`: a pyproject.toml's `[tool.e2i-fix]`, or a whole TOML file."""
    if not path.is_file():
        raise InputError(f"--config {path}: no such file")
    path = path.resolve()
    if path.name == "pyproject.toml":
        data: dict[str, Any] | None = _parse(_read(path)).get("tool", {}).get("e2i-fix")
        if data is None:
            raise InputError(f"{path}: no [tool.e2i-fix] table")
        return path, data
    return path, _load(path)


def apply_file(settings: Settings, path: Path, data: dict[str, Any]) -> Settings:
    """Settings with a config file's values under the command line's (flags win)."""
    s = Settings(settings.passes, settings.select, set(settings.ignore), settings.unsafe)
    s.placement = settings.placement
    s.origin = dict(settings.origin)
    s.source = path
    base = path.parent
    s.flag_options = settings.flag_options
    for key, value in data.items():
        if key in _TOP_KEYS or key in settings.passes:
            s.origin.setdefault(key, str(path))
        if key in settings.passes:
            if not isinstance(value, dict):
                raise InputError(f"{path}: [{key}] must be a table")
            allowed = set(settings.passes[key].DEFAULTS)
            bad = sorted(set(value) - allowed)
            if bad:
                raise InputError(f"{path}: unknown option {', '.join(bad)} for {key} (allowed: {', '.join(sorted(allowed)) or 'none'})")
            s.pass_options[key] = value
        elif key == "exclude":
            s.exclude = [(base, p) for p in _globs(value, path, key)]
        elif key == "per-file-ignores":
            if not isinstance(value, dict):
                raise InputError(f"{path}: per-file-ignores must be a table of \"glob\" = [pass ids]")
            for pattern, ids in value.items():
                idset = set(_ids(ids, path, f"per-file-ignores.{pattern}"))
                s.check_ids(idset, str(path))
                s.per_file_ignores.append((base, _globs([pattern], path, key)[0], idset))
        elif key == "select":
            ids = set(_ids(value, path, key))
            s.check_ids(ids, str(path))
            if settings.select is None:
                s.select = ids
        elif key == "ignore":
            ids = set(_ids(value, path, key))
            s.check_ids(ids, str(path))
            s.ignore |= ids
            if "ignore" in settings.origin:
                s.origin["ignore"] = f"{settings.origin['ignore']} and {path}"
        elif key == "unsafe-fixes":
            s.unsafe = settings.unsafe or bool(value)
        elif key == "roles":
            from e2i_fix.fileroles import ROLES

            if not isinstance(value, dict):
                raise InputError(f"{path}: roles must be a table of role = [globs]")
            for role, globs in value.items():
                if role not in ROLES:
                    raise InputError(f"{path}: unknown role {role!r} in roles (allowed: {', '.join(ROLES)})")
                s.roles += [(base, g, role) for g in _globs(globs, path, f"roles.{role}")]
        elif key == "placement":
            if value not in PLACEMENTS:
                raise InputError(f"{path}: placement must be one of {', '.join(map(repr, PLACEMENTS))}")
            s.placement = value
        elif key == "per-service-ignore":
            if not isinstance(value, dict):
                raise InputError(f"{path}: per-service-ignore must be a table of service = [pass ids]")
            for svc, ids in value.items():
                idset = set(_ids(ids, path, f"per-service-ignore.{svc}"))
                s.check_ids(idset, str(path))
                s.per_service_ignore[svc] = idset
        else:
            raise InputError(f"{path}: unknown key {key!r} (allowed: {', '.join(sorted(_TOP_KEYS | set(settings.passes)))})")
    return s


def _globs(value: Any, path: Path, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(f"{path}: {key} must be a list of glob patterns")
    return value


def show(settings: Settings, folder: Path, files: list[str] | None = None) -> str:
    """The resolved configuration for the stacks in `folder`, as TOML, each value with where it
    came from; `files` are comment lines that follow `roles` (the stacks' files, their roles
    and variants)."""
    from e2i_fix.fileroles import ROLES

    files = files or []
    src = settings.source
    out = [f"# e2i-fix configuration for {folder}", f"# file: {src if src else 'none found'}"]

    def row(key: str, value: Any, origin: str | None = None) -> None:
        out.append(f"{key} = {_toml(value)}  # {origin or settings.origin.get(key, DEFAULT)}")

    row("select", sorted(settings.select) if settings.select is not None else ["all"])
    row("ignore", sorted(settings.ignore))
    row("unsafe-fixes", settings.unsafe)
    row("exclude", [p for _, p in settings.exclude])
    row("per-file-ignores", {p: sorted(ids) for _, p, ids in settings.per_file_ignores})
    row("per-service-ignore", {k: sorted(v) for k, v in settings.per_service_ignore.items()})
    row("placement", settings.placement)
    roles: dict[str, list[str]] = {}
    for _, pattern, role in settings.roles:
        roles.setdefault(role, []).append(pattern)
    row("roles", roles)
    out += files
    for pid, p in settings.passes.items():
        out.append("")
        state = "" if settings.selected(pid) else "  # not selected"
        out.append(f"[{pid}]{state}")
        served = getattr(p, "ROLES", None)
        out.append(f"# serves: {', '.join(r for r in ROLES if served is None or r in served)}")
        given = settings.pass_options.get(pid, {})
        for opt, default in p.DEFAULTS.items():
            if opt in given:
                row(_key(opt), given[opt], settings.origin.get(pid, DEFAULT))
            elif default is not None:
                row(_key(opt), default, DEFAULT)
            else:
                out.append(f"# {_key(opt)}: not set (the pass's built-in choice)  # {DEFAULT}")
    return "\n".join(out) + "\n"


def _key(key: str) -> str:
    import re

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml(key)


def _toml(value: Any) -> str:
    """A TOML value, inline (what `--show-config` prints)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return "[" + ", ".join(_toml(v) for v in items) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def _ids(value: Any, path: Path, key: str) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{path}: {key} must be a list of pass ids")
    return value
