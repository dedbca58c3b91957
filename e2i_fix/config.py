"""Settings: command-line flags over `.e2i-fix.toml` / `[tool.e2i-fix]` in `pyproject.toml`.

The file is found by walking up from the stack's folder. Unknown keys are an error, and each
pass's table is checked against the options the pass declares.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix.errors import InputError
from e2i_fix.fix import Fix, Safety

if TYPE_CHECKING:
    from e2i_fix.passes import Pass

_TOP_KEYS = {"select", "ignore", "unsafe-fixes", "per-service-ignore", "placement"}
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
        self.per_service_ignore: dict[str, set[str]] = {}
        self.placement = PLACEMENTS[0]

    def selected(self, pass_id: str) -> bool:
        return (self.select is None or pass_id in self.select) and pass_id not in self.ignore

    def allows(self, fix: Fix) -> bool:
        return fix.safety >= (Safety.UNSAFE if self.unsafe else Safety.SAFE)

    def options(self, pass_id: str) -> dict[str, Any]:
        p = self.passes[pass_id]
        out = dict(p.DEFAULTS)
        out.update(self.pass_options.get(pass_id, {}))
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


def apply_file(settings: Settings, path: Path, data: dict[str, Any]) -> Settings:
    """Settings with a config file's values under the command line's (flags win)."""
    s = Settings(settings.passes, settings.select, set(settings.ignore), settings.unsafe)
    s.placement = settings.placement
    for key, value in data.items():
        if key in settings.passes:
            if not isinstance(value, dict):
                raise InputError(f"{path}: [{key}] must be a table")
            allowed = set(settings.passes[key].DEFAULTS)
            bad = sorted(set(value) - allowed)
            if bad:
                raise InputError(f"{path}: unknown option {', '.join(bad)} for {key} (allowed: {', '.join(sorted(allowed)) or 'none'})")
            s.pass_options[key] = value
        elif key == "select":
            ids = set(_ids(value, path, key))
            s.check_ids(ids, str(path))
            if settings.select is None:
                s.select = ids
        elif key == "ignore":
            ids = set(_ids(value, path, key))
            s.check_ids(ids, str(path))
            s.ignore |= ids
        elif key == "unsafe-fixes":
            s.unsafe = settings.unsafe or bool(value)
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


def _ids(value: Any, path: Path, key: str) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{path}: {key} must be a list of pass ids")
    return value
