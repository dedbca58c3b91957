"""What the hardening passes share: the image table, what a service runs, which services they
may touch, and the one place that adds a key to a service."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

from e2i_fix import conventions, yamledit
from e2i_fix.facts import image as imagedata
from e2i_fix.dockerfile import Stage
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, Service, command_text, resolve_build
from e2i_fix.render import Flow
from e2i_fix.yamldoc import MappingNode, ScalarNode, SequenceNode, effective_entry, position


class Image(NamedTuple):
    """What the image table (`data/images.toml`) says of how an image runs; None: not known."""

    name: str
    user: str | None
    step_down: str | None
    cap_add: tuple[str, ...] | None
    volumes: tuple[str, ...]
    writes: tuple[str, ...] | None
    read_only: bool | None
    internal: bool | None
    sources: tuple[str, ...]
    notes: str | None
    gains: str | None


def _image(entry: imagedata.Entry) -> Image:
    caps = entry.get("cap_add")
    writes = entry.get("writes")
    return Image(entry.key, entry.get("user"), entry.get("step_down"), None if caps is None else tuple(caps),
                 tuple(entry.get("volumes") or ()), None if writes is None else tuple(writes), entry.get("read_only"),
                 entry.get("internal"), tuple(entry.get("sources") or ()), entry.get("notes"), entry.get("gains"))


_IMAGES: dict[str, Image] = {}


def profiles() -> dict[str, tuple[str, ...]]:
    """The capability sets of the image table: `root` (what a root process of an unknown image
    keeps) and Docker's `default`."""
    return {k: tuple(v) for k, v in imagedata.section("profiles").items()}


def repository(image: str | None) -> str | None:
    """`docker.io/library/postgres:16@sha256:...` -> `postgres`; `ghcr.io/a/b:1` -> `ghcr.io/a/b`."""
    ref = imagedata.parse(image)
    return ref.repository if ref is not None and ref.resolved else None


def known(image: str | None, env: dict[str, str] | None = None) -> Image | None:
    """The image table's entry for the image itself (a family's entry says nothing of how
    another packaging runs)."""
    k = imagedata.knowledge(imagedata.parse(image, env))
    if k.image is None:
        return None
    got = _IMAGES.get(k.image.key)
    if got is None:
        got = _IMAGES[k.image.key] = _image(k.image)
    return got


# --- what a service runs ----------------------------------------------------------------------


class Runs(NamedTuple):
    """What a service runs, as far as the stack tells: the image it is (a table entry), or the
    Dockerfile stages it builds to (one per variant: the base alone, with each override), each
    with its build context."""

    image: Image | None
    stages: tuple[Stage, ...]
    contexts: tuple[Path | None, ...]
    built: bool  # `build:` in some variant
    unreadable: bool  # a variant builds from a Dockerfile that cannot be read


def runs(project: Project, svc: Service) -> Runs:
    """Worked out once per service and index: every hardening pass asks."""
    known_runs = svc.__dict__
    if "_runs" not in known_runs:
        known_runs["_runs"] = _runs(project, svc)
    got: Runs = known_runs["_runs"]
    return got


def _runs(project: Project, svc: Service) -> Runs:
    stages: list[Stage] = []
    contexts: list[Path | None] = []
    built = unreadable = False
    # The variants an edit of the service's home reaches: a file run alone without it is not changed.
    for files in project.reaching(svc.home.doc) if svc.home is not None else project.variants():
        cfg = (project.model(files).get("services") or {}).get(svc.name)
        if not isinstance(cfg, dict) or cfg.get("build") is None:
            continue
        built = True
        b = resolve_build(cfg.get("build"), project.folder)
        doc = project.dockerfiles.get(b.dockerfile) if b is not None and b.dockerfile is not None else None
        stage = doc.stage(b.target) if doc is not None and b is not None else None
        if stage is None:
            unreadable = True
        elif stage not in stages:
            stages.append(stage)
            contexts.append(b.context if b is not None else None)
    img = known(svc.image, project.env) if not built else None
    if built and not unreadable and stages:
        # A stage chain that only adds files to a known image runs that image's entrypoint.
        bases = {known(s.root_image, project.env) for s in stages}
        if len(bases) == 1 and all(_chain_last(s, "ENTRYPOINT") is None and _chain_last(s, "USER") is None
                                   for s in stages):
            img = bases.pop()
    return Runs(img, tuple(stages), tuple(contexts), built, unreadable)


def chain(stage: Stage) -> list[Stage]:
    """`stage` and the stages it builds FROM, base first."""
    out: list[Stage] = []
    cur: Stage | None = stage
    while cur is not None and cur not in out:
        out.append(cur)
        cur = cur.parent
    return out[::-1]


def _chain_last(stage: Stage, name: str) -> Any:
    for s in reversed(chain(stage)):
        ins = s.last(name)
        if ins is not None:
            return ins
    return None


_ROOT = {"root", "0", "0:0", "root:root", "0:root", "root:0"}


def is_root(user: str | None) -> bool:
    """Root, or not known not to be (a `${UID}` may be 0)."""
    if user is None or "$" in user:
        return True
    return user.strip().strip("'\"") in _ROOT or user.split(":", 1)[0].strip() in ("root", "0")


def users(svc: Service, r: Runs) -> list[str | None]:
    """Who the service's first process runs as, once per way it can run (None: root, or the
    base image's default, which nothing here knows)."""
    own = svc.config.get("user")
    if isinstance(own, (str, int)) and not isinstance(own, bool):
        return [str(own)]
    if r.stages:
        return [s.user if s.user is not None else (r.image.user if r.image else None) for s in r.stages]
    return [r.image.user if r.image else None]


def command_words(svc: Service, r: Runs) -> str:
    """The service's command and entrypoint, with those of the stages it builds."""
    parts = [command_text(svc.config)]
    for s in r.stages:
        for name in ("ENTRYPOINT", "CMD"):
            ins = _chain_last(s, name)
            if ins is not None:
                parts.append(" ".join(ins.operands))
    return " ".join(parts)


def run_lines(r: Runs) -> list[str]:
    return [ins.args for s in r.stages for st in chain(s) for ins in st.instructions if ins.name == "RUN"]


def scripts(r: Runs) -> str:
    """The shell scripts the stages copy from the build context (entrypoints, mostly), read for
    what they run. Small files only: a script is a few kilobytes."""
    out: list[str] = []
    for s, context in zip(r.stages, r.contexts):
        if context is None:
            continue
        for st in chain(s):
            for _, srcs in st.copies():
                for src in srcs:
                    if not (src.endswith(".sh") or "entrypoint" in src.lower()):
                        continue
                    p = context / src
                    try:
                        if p.is_file() and p.stat().st_size < 65536:
                            out.append(p.read_text("utf-8", "replace"))
                    except OSError:
                        continue
    return "\n".join(out)


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


def port_numbers(svc: Service, r: Runs) -> list[int]:
    """The container ports the service listens on, as far as its ports and EXPOSE say."""
    out: list[int] = []
    for p in svc.config.get("ports") or ():
        target = p.get("target") if isinstance(p, dict) else str(p).rsplit(":", 1)[-1].split("/", 1)[0]
        for piece in str(target).split("-"):
            if piece.isdigit():
                out.append(int(piece))
    for s in r.stages:
        for st in chain(s):
            for ins in st.instructions:
                if ins.name == "EXPOSE":
                    out += [int(m) for m in re.findall(r"(?<![\w$])(\d+)(?:/\w+)?", ins.args)]
    return out


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
    kv = home.doc.get(home.node, key)
    if kv is None:
        if effective_entry(home.node, key) is not None:
            return None  # from a merge key: an own list would replace it
        return add_key(project, svc, key, ways.items(home.doc, items))
    k, seq = kv
    doc = home.doc
    if not isinstance(seq, SequenceNode) or doc.is_alias(seq, doc.key_end(k)):
        return None
    styled = ways.items(doc, items)
    edit = append_items(home.doc, seq, doc.key_end(k), list(styled.items if isinstance(styled, Flow) else styled))
    if edit is None:
        return None
    return [edit], [("services", s, key) for s in users_of(project, svc)]


def append_items(doc: Any, seq: SequenceNode, after: int, items: list[Any]) -> Edit | None:
    """Items added at the end of a block or flow sequence, in its own style."""
    from e2i_fix.render import scalar

    text = doc.text
    if seq.flow_style:
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
    if any(isinstance(i, MappingNode) for i in seq.value) and not all(isinstance(i, ScalarNode) for i in seq.value):
        return None
    end = doc.content_end(seq, after)
    pos = yamledit.past_trailing_comments(doc, doc.line_after(end), column)
    lines = "".join(f"{' ' * column}- {scalar(i, doc.style)}\n" for i in items)
    if pos == len(text) and not text.endswith("\n"):
        return Edit(doc.path, pos, pos, "\n" + lines.removesuffix("\n"))
    return Edit(doc.path, pos, pos, lines)


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
