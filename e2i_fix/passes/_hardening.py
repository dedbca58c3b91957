"""What the hardening passes share: which services they may touch, and the one place that adds
a key to a service. What a service runs, who it runs as and what it writes are the facts layer's
(`e2i_fix.facts`), read once for every pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from e2i_fix import conventions, yamledit
from e2i_fix.facts import image as imagedata
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, Service
from e2i_fix.render import Flow
from e2i_fix.yamldoc import MappingNode, SequenceNode, effective_entry, position


def profiles() -> dict[str, tuple[str, ...]]:
    """The capability sets of the image table: `root` (what a root process of an unknown image
    keeps) and Docker's `default`."""
    return {k: tuple(v) for k, v in imagedata.section("profiles").items()}


# --- who may be touched -----------------------------------------------------------------------


def blocked(svc: Service) -> str | None:
    """Why no hardening pass touches this service, if one applies."""
    if svc.config.get("privileged") is True:
        return "it runs privileged"
    mode = svc.config.get("network_mode")
    if isinstance(mode, str) and mode.strip() == "host":
        return "it uses the host's network"
    return None


def set_elsewhere(svc: Service, key: str) -> Path | None:
    """A file other than the service's home that sets `key` for it: an override's value is the
    user's word for that file, and a key added to the base would contradict it."""
    home = svc.home
    for d in svc.defs:
        if d is home:
            continue
        if effective_entry(d.node, key) is not None:
            return Path(d.doc.path)
    return None


def users_of(project: Project, svc: Service) -> list[str]:
    """The services an edit of `svc`'s own mapping reaches: those that share or merge it, and
    those that extend one of them."""
    home = svc.home
    if home is None:
        return [svc.name]
    names = project.sharers(home.node) or [svc.name]
    return project.with_extenders(names)


# --- edits ------------------------------------------------------------------------------------


def where(svc: Service) -> tuple[Path, int, int]:
    d = svc.home or next((d for d in svc.defs if not d.doc.readonly), svc.defs[0])
    line, col = position(d.key)
    return Path(d.doc.path), line, col


def where_doc(svc: Service) -> Any:
    """The file a new key of the service goes into."""
    d = svc.home or next((d for d in svc.defs if not d.doc.readonly), svc.defs[0])
    return d.doc


def finding(pass_id: str, svc: Service, message: str, provenance: tuple[tuple[str, str], ...] = ()) -> Fix:
    path, line, col = where(svc)
    return Fix(pass_id, message, path, line, col, safety=Safety.DISPLAY_ONLY, provenance=provenance)


def add_key(project: Project, svc: Service, key: str, value: Any) -> tuple[list[Edit], list[tuple[str, ...]]] | None:
    """The edit that gives `svc` a new key, and the model paths it changes. The one place a
    hardening pass adds a key to a service."""
    home = svc.home
    if home is None or not isinstance(home.node, MappingNode) or svc.shadows(home, key) is not None:
        return None
    if yamledit.commented_key(home.doc, home.node, key) is not None:
        return None  # uncommenting the project's own `# key:` would define it twice
    edit = yamledit.append_entry(home.doc, home.node, key, value, home.key.end_mark.index)
    if edit is None:
        return None
    return [edit], [("services", s, key) for s in users_of(project, svc)]


def extend_list(project: Project, svc: Service, key: str, items: list[Any]) -> tuple[list[Edit], list[tuple[str, ...]]] | None:
    """`items` added to the service's own `key` list, or the key added with them, written as
    the stack writes its lists (`conventions`: quotes, one line or one item per line)."""
    home = svc.home
    if home is None or not isinstance(home.node, MappingNode) or svc.shadows(home, key) is not None:
        return None  # a later file resets or replaces the key: the edit would be lost there
    ways = conventions.read(project)
    plain = all(isinstance(i, str) for i in items)  # mappings (a long-syntax volume) keep their form

    def style(values: list[Any]) -> list[Any] | Flow:
        return ways.items(home.doc, values) if plain else values

    kv = home.doc.get(home.node, key)
    if kv is None:
        if effective_entry(home.node, key) is not None:
            return None  # from a merge key: an own list would replace it
        return add_key(project, svc, key, style(items))
    k, seq = kv
    doc = home.doc
    if not isinstance(seq, SequenceNode) or doc.is_alias(seq, doc.key_end(k)):
        return None
    styled = style(items)
    edit = append_items(home.doc, seq, doc.key_end(k), list(styled.items if isinstance(styled, Flow) else styled))
    if edit is None:
        return None
    return [edit], [("services", s, key) for s in users_of(project, svc)]


def append_items(doc: Any, seq: SequenceNode, after: int, items: list[Any]) -> Edit | None:
    """Items added at the end of a block or flow sequence, in its own style."""
    from e2i_fix.render import scalar

    from collections.abc import Mapping

    text = doc.text
    if seq.flow_style:
        if any(isinstance(i, Mapping) for i in items):
            return None  # a mapping in a flow list would not be the file's style
        close = seq.end_mark.index - 1
        if text[close] != "]":
            return None
        rendered = ", ".join(scalar(i, doc.style) for i in items)
        if not seq.value:
            opened = text.find("[", seq.start_mark.index)
            return Edit(doc.path, close, close, rendered) if not text[opened + 1 : close].strip() else None
        last = seq.value[-1]
        end = last.end_mark.index
        gap = text[end:close]
        if not gap.strip():
            return Edit(doc.path, end, end, ", " + rendered)
        if gap.strip() == ",":
            at = end + gap.index(",") + 1
            return Edit(doc.path, at, at, " " + rendered)
        return None
    if not seq.value:
        return None
    first = seq.value[0]
    dash = text.rfind("-", 0, first.start_mark.index)
    column = dash - doc.line_start(dash)
    if any(isinstance(i, MappingNode) for i in seq.value) and not all(isinstance(i, Mapping) for i in items):
        return None
    end = doc.content_end(seq, after)
    pos = yamledit.past_trailing_comments(doc, doc.line_after(end), column)
    lines = "".join(_item(i, column, doc.style) for i in items)
    if pos == len(text) and not text.endswith("\n"):
        return Edit(doc.path, pos, pos, "\n" + lines.removesuffix("\n"))
    return Edit(doc.path, pos, pos, lines)


def _item(item: Any, column: int, style: Any) -> str:
    """One block sequence item with its dash at `column`: a scalar, or a mapping."""
    from collections.abc import Mapping

    from e2i_fix.render import block, scalar

    if isinstance(item, Mapping) and item:
        body = block(item, column + 2, style)
        return f"{' ' * column}- {body[column + 2:]}"
    return f"{' ' * column}- {scalar(item, style)}\n"


class Reach:
    """The services a pass has given a key in this run, through their own mapping or one they
    share: a service that merges or extends one of them inherits the key and needs no copy."""

    def __init__(self, project: Project, allowed: list[Service]) -> None:
        self.project = project
        self.allowed = {s.name for s in allowed}
        self.given: set[str] = set()

    def inherits(self, svc: Service) -> bool:
        return svc.name in self.given

    def held(self, svc: Service, same: Any) -> str | None:
        """Why an edit of `svc`'s mapping must not be made: another service it reaches is not
        this pass's to change, or needs something else (`same(other)` is False)."""
        services = self.project.services
        for name in users_of(self.project, svc):
            if name == svc.name:
                continue
            other = services.get(name)
            if other is None or name not in self.allowed or blocked(other):
                return f"its mapping is shared with {name!r}, which this pass leaves alone"
            if not same(other):
                return f"its mapping is shared with {name!r}, which needs something else"
        return None

    def give(self, svc: Service) -> None:
        self.given.update(users_of(self.project, svc))
