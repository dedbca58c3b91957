"""What is known about images for health checks: the probe that proves one ready, the port it
serves, the probe tools a base image carries, and the health check a service has in each variant
of its stack.

The facts are in the one image table (`data/images.toml`, with their sources), read through
`e2i_fix.facts.image`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from e2i_fix import lazyre
from e2i_fix.facts import image as imagedata
from e2i_fix.facts.runs import PORT_FLAG  # a port a command says it listens on
from e2i_fix.project import command_text, resolve_build
from e2i_fix.records import NamedTuple

if TYPE_CHECKING:
    from e2i_fix.dockerfile import Stage
    from e2i_fix.project import Project, Variant

ROOT_USERS = frozenset({"root", "0", "root:root", "0:0", "root:0", "0:root"})


def section(name: str) -> Any:
    """One of the image table's other tables: tools, flavours, packages, dev_servers."""
    return imagedata.section(name)


class Probe(NamedTuple):
    test: list[str]
    source: str
    # The table knows the image itself (its key or `images`), not only its software: an image
    # built on it (`ghcr.io/immich-app/postgres`) may ship a HEALTHCHECK of its own, which a
    # probe in the compose file would replace.
    exact: bool = True
    family: str = ""  # the table entry the probe comes from
    # The start period it gets where the image's first start is long (`probe_start_period`), and why.
    start_period: str | None = None
    start_source: str = ""


_PASSWORD = lazyre.compile(r"pass", re.IGNORECASE)


def known_probe(image: str | None, config: dict[str, Any] | None = None,
                env: dict[str, str] | None = None) -> Probe | None:
    """The known-good health check test of an image, where its family is known (and its tag,
    for a probe that only some versions ship; and, for a client that would need it, no
    password is configured)."""
    ref = imagedata.parse(image, env)
    k = imagedata.knowledge(ref)
    test_raw = k.soft("probe")
    if ref is None or not isinstance(test_raw, list):
        return None
    floor = k.soft("probe_min_major")
    if floor is not None:
        major = ref.major()
        if major is None and (ref.local or ref.tag is None and not ref.resolved):
            return None  # a variable tag (or one install's value of it): which version runs is not known here
        if major is not None and major < int(floor):
            return None
    if k.soft("probe_unless_password") and config is not None:
        env_cfg = config.get("environment")
        said = " ".join(map(str, env_cfg)) if isinstance(env_cfg, dict) else ""
        import json

        if _PASSWORD.search(said + " " + json.dumps(config.get("command"))):
            return None  # `ping` without the password answers NOAUTH
    test = [str(x) for x in test_raw]
    port = k.soft("port")
    if config is not None and port is not None:
        ports = {m.group(1) for m in PORT_FLAG.finditer(command_text(config))}
        if len(ports) == 1 and f":{port}" in " ".join(test):
            test = [x.replace(f":{port}", f":{next(iter(ports))}") for x in test]
    owner = next(e for e in k.software if e.get("probe") is not None)
    start = owner.get("probe_start_period")
    return Probe(test, str(k.soft("probe_source")), k.image is not None and k.image.get("probe") is not None, owner.key,
                 str(start) if start else None, str(owner.get("probe_start_source") or ""))


def known_port(image: str | None, env: dict[str, str] | None = None) -> tuple[int, str] | None:
    k = imagedata.knowledge(imagedata.parse(image, env))
    port = k.soft("port")
    if not isinstance(port, int):
        return None
    return port, str(k.soft("port_source"))


def image_tools(image: str | None, env: dict[str, str] | None = None) -> set[str] | None:
    """The probe tools an image has, or None where it is not known."""
    ref = imagedata.parse(image, env)
    if image is None or ref is None or not ref.resolved:
        return None
    if imagedata.knowledge(ref).soft("probe") is not None:
        # A known service image: its own client, and nothing else is claimed.
        return None
    family = ref.family
    flavour = section("flavours").get(family)
    if flavour is None:
        if "distroless" in ref.repository or ref.path == "scratch":
            return set()
        return None
    tag = (ref.tag or "").lower()
    if "alpine" in tag:
        kind = "alpine"
    elif "slim" in tag:
        kind = "slim"
    elif family == "busybox":
        kind = "busybox"
    else:
        kind = flavour["default"]
    return set(section("tools")[kind]) | set(flavour["runtime"])


_INSTALL = lazyre.compile(r"\b(?:apt-get|apt|apk|yum|dnf|microdnf|zypper)\b[^;&|]*?\b(?:install|add)\b([^;&|]*)")


def packages_installed(stage: Stage, expand: Callable[[str, Stage, Any], str] | None = None) -> Iterator[tuple[str, Any]]:
    """The packages the RUN instructions of a stage (and the stages it builds FROM) install with
    a distribution's package manager, heredocs included, each with its instruction; `expand`
    reads the ARG and ENV values a RUN names its packages through (`apk add ${INSTALL_PKGS}`)."""
    s: Stage | None = stage
    while s is not None:
        for ins in s.instructions:
            if ins.name != "RUN":
                continue
            text = " ".join([ins.args, *ins.heredoc_texts()])
            if expand is not None and "$" in text:
                text = expand(text, s, ins)
            for m in _INSTALL.finditer(text):
                for word in m.group(1).split():
                    yield re.split(r"[=<>]", word.strip("\"'"), maxsplit=1)[0], ins
        s = s.parent


def installed(stage: Stage, expand: Callable[[str, Stage, Any], str] | None = None) -> set[str]:
    """Probe tools the packages a stage (and the stages it builds FROM) installs bring."""
    packages = section("packages")
    return {tool for pkg, _ in packages_installed(stage, expand) for tool in packages.get(pkg, ())}


def stage_tools(stage: Stage, expand: Callable[[str, Stage, Any], str] | None = None) -> set[str] | None:
    base = image_tools(stage.root_image)
    if base is None:
        return None
    return base | installed(stage, expand)


# --- health checks in each variant ---------------------------------------------------------


class Health(NamedTuple):
    """A service's health check in one variant: where it comes from and its test."""

    source: str  # "compose" or "dockerfile"
    test: Any


def _disabled(hc: dict[str, Any]) -> bool:
    test = hc.get("test")
    return hc.get("disable") is True or test == ["NONE"] or test == "NONE"


def health(project: Project, files: tuple[int, ...], name: str) -> Health | None:
    """The health check `name` has when Compose runs the files `files` (indexes into
    `project.docs`): the merged `healthcheck:`, else the HEALTHCHECK of the stage it builds,
    else the Healthcheck of its image where the user's `docker image inspect` output gives it."""
    from e2i_fix import facts

    f = facts.of(project, name, files)
    if f is None:
        return None
    hc = f.config.get("healthcheck")
    if isinstance(hc, dict):
        if _disabled(hc):
            return None
        if hc.get("test") is not None:
            return Health("compose", hc["test"])
    if f.built:
        ins = f.stage.healthcheck if f.stage is not None else None
        return Health("dockerfile", ins.args) if ins is not None else None
    inspected = f.knowledge.inspected
    got = inspected.get("healthcheck") if inspected is not None else None
    test = got.get("Test") if isinstance(got, dict) else None
    if isinstance(test, list) and test and test != ["NONE"]:
        return Health("image", test)
    return None


def built_stage(project: Project, config: dict[str, Any]) -> Stage | None:
    build = resolve_build(config.get("build"), project.folder, project.env)
    if build is None or build.dockerfile is None:
        return None
    doc = project.dockerfiles.get(build.dockerfile)
    return doc.stage(build.target) if doc else None


def variants(project: Project) -> list[Variant]:
    return project.variants()


def owners(project: Project) -> dict[int, int]:
    """Each file of the stack and the base or override file that makes Compose read it: itself,
    or, for an included file, the file that includes it (transitively)."""
    cache: dict[int, int] | None = project.__dict__.get("_owners")
    if cache is not None:
        return cache
    refs = project.refs
    roles = project.roles
    parent: dict[int, int] = {}
    for i, lst in refs.items():
        for ref, idx in lst:
            if ref.kind == "include":
                for j in idx:
                    parent.setdefault(j, i)
    out: dict[int, int] = {}
    for k in range(len(project.docs)):
        seen = {k}
        top = k
        while roles[top] not in ("base", "override") and top in parent and parent[top] not in seen:
            top = parent[top]
            seen.add(top)
        out[k] = top
    project.__dict__["_owners"] = out
    return out


def variant_names(project: Project, files: tuple[int, ...]) -> str:
    return " + ".join(Path(project.docs[i].path).name for i in files)
