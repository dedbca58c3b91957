"""missing-build-files: a `build:` whose context or Dockerfile does not exist.

## What it does
Reports, at the compose line, each service whose `build.context` folder or Dockerfile is
missing: `docker compose build` (and `up`, which builds first) stops there. Two fixes, both
unsafe, where the right one is known:
- a well-known service that ships an official image (the Feast feature server, MLflow, Opik;
  `e2i_fix/data/official_images.json`, with the vendors' documentation) has its `build:`
  replaced with that `image:`;
- a frontend (its context holds a `package.json`) gets a scaffold: a multi-stage Dockerfile
  (dependencies installed from its lock file; a `dev` stage running the Vite dev server on
  5173; the production build served by nginx, the default stage) and the `nginx.conf` it
  copies: SPA fallback to `index.html`, gzip, a `/health` location for the compose health
  check, and `/api/` proxied to the backend the frontend depends on (an `api`-role service,
  with the port it listens on). The templates are in `e2i_fix/data/scaffold/`.
A missing context without a frontend's `package.json` or a known image is reported only.

## Why
A stack whose build files are missing cannot start. The review this tool comes from found two:
a Feast image built from a Dockerfile nobody wrote (the official image does the job), and a
frontend with no Dockerfile.

## Example
Before (no `docker/Dockerfile.feast`):

    feast:
      build:
        context: .
        dockerfile: docker/Dockerfile.feast
      command: feast serve --host 0.0.0.0 --port 6566

After (with `--unsafe-fixes`):

    feast:
      image: feastdev/feature-server:0.40.1
      command: feast serve --host 0.0.0.0 --port 6566

## Fix safety
Unsafe: an official image may differ from what a missing Dockerfile was meant to build (extra
packages, a feature repository copied in), and a scaffold is a starting point to review.

## Options
None.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from e2i_fix import lazyre, render
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Build, Project, Service, ServiceDef, Variant, command_text, resolve_build, role, targets
from e2i_fix.yamldoc import MappingNode, position

ID = "missing-build-files"
SUMMARY = "a build: whose context or Dockerfile is missing, with an official image or a frontend scaffold"
SAFETY = Safety.UNSAFE
NEEDS = "build"  # reads only what services build: nothing to do on a stack that builds nothing
READS = frozenset({"build", "image", "command", "depends_on"})
DEFAULTS: dict[str, Any] = {}

_DATA = Path(__file__).resolve().parent.parent / "data"


@lru_cache(maxsize=1)
def _images() -> list[dict[str, Any]]:
    with open(_DATA / "official_images.json", encoding="utf-8") as f:
        got: list[dict[str, Any]] = json.load(f)["images"]
    return got


def _template(name: str) -> str:
    return (_DATA / "scaffold" / name).read_text(encoding="utf-8")


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    scaffolded: set[Path] = set()
    for svc in targets(project, ID, options):
        # Each way the stack is run resolves the build itself (a file run alone, its own paths):
        # the first that users run and that cannot find what it builds is reported.
        for v in project.variants():
            cfg = (project.model(v).get("services") or {}).get(svc.name)
            b = resolve_build(cfg.get("build"), project.folder, project.env) if v.likely and isinstance(cfg, dict) else None
            if b is None or b.context is None:
                continue
            where = _build_def(project, svc, v)
            if where is None:
                continue
            if not project.exists(b.context):
                what = f"its build context {_rel(project, b.context)!r} does not exist"
            elif b.dockerfile is not None and not project.exists(b.dockerfile):
                what = f"its Dockerfile {_rel(project, b.dockerfile)!r} does not exist"
            else:
                continue
            yield _fix(project, svc, where, what, scaffolded, b)
            break


def _rel(project: Project, path: Path) -> str:
    return os.path.relpath(path, project.folder)


def _build_def(project: Project, svc: Service, variant: Variant) -> ServiceDef | None:
    """The last definition that writes `build:` in `variant`: where the finding points, and
    what a fix edits."""
    read = {id(project.docs[i]) for i in project.members(variant)}
    got = None
    for d in svc.defs:
        if d.get("build") is None or id(d.doc) not in read:
            continue
        if got is None or project.after(d.doc, got.doc, variant):
            got = d
    return got


def _fix(project: Project, svc: Service, where: ServiceDef, what: str, scaffolded: set[Path], b: Build) -> Fix:
    kv = where.get("build")
    assert kv is not None
    line, col = position(kv[0])
    head = f"service {svc.name!r} cannot be built: {what}"
    image = _official(svc, b)
    if image is not None:
        edits = _replace_build(svc, where, image["image"])
        if edits is None:
            return Fix(ID, f"{head}; the official image {image['image']} would do "
                       f"(set `image:` instead of `build:` by hand)", where.doc.path, line, col,
                       safety=Safety.DISPLAY_ONLY, severe=True)
        return Fix(ID, f"{head}: use the official image {image['image']} instead of building",
                   where.doc.path, line, col, edits, SAFETY,
                   (("services", svc.name, "build"), ("services", svc.name, "image")), severe=True,
                   provenance=((f"image {image['image']}", image["source"]),))
    assert b.context is not None
    if b.dockerfile is not None and project.exists(b.context) and (b.context / "package.json").is_file():
        if b.dockerfile in scaffolded:
            return Fix(ID, f"{head} (scaffolded for another service)", where.doc.path, line, col,
                       safety=Safety.DISPLAY_ONLY, severe=True)
        scaffolded.add(b.dockerfile)
        files = _scaffold(project, svc, b.context, b.dockerfile)
        names = " and ".join(_rel(project, p) for p, _ in files)
        return Fix(ID, f"{head}: scaffold {names} (Vite dev stage `dev`, production served by nginx)",
                   where.doc.path, line, col, tuple(Edit(p, 0, 0, t) for p, t in files), SAFETY, severe=True)
    hint = ""
    if project.exists(b.context) and _looks_frontend(svc):
        hint = (f"; its context {_rel(project, b.context)!r} has no package.json, so no frontend scaffold "
                "(point build.context at the frontend's sources)")
    return Fix(ID, f"{head}{hint}", where.doc.path, line, col, safety=Safety.DISPLAY_ONLY, severe=True)


_FRONTEND_NAME = lazyre.compile(r"(?:^|[-_])(?:frontend|front|web|webapp|ui|client|dashboard|spa)(?:$|[-_])")
_FRONTEND_ENV = ("VITE_", "REACT_APP_", "NEXT_PUBLIC_", "VUE_APP_")


def _looks_frontend(svc: Service) -> bool:
    env = svc.config.get("environment")
    keys = env if isinstance(env, dict) else {}
    return bool(_FRONTEND_NAME.search(svc.name.lower())) or any(str(k).startswith(_FRONTEND_ENV) for k in keys)


def _official(svc: Service, b: Build) -> dict[str, Any] | None:
    if svc.image:
        return None  # `image:` with `build:` names what the build makes: not to be pulled instead
    names = {svc.name.lower(), *svc.name.lower().replace("_", "-").split("-")}
    if b is not None and b.dockerfile is not None:
        names.update(w for w in re.split(r"[._-]", b.dockerfile.name.lower()) if w != "dockerfile")
    first = command_text(svc.config).split(" ", 1)[0].rsplit("/", 1)[-1]
    for entry in _images():
        if names & set(entry["names"]) or (first and first in entry["commands"]):
            return entry
    return None


def _replace_build(svc: Service, where: ServiceDef, image: str) -> tuple[Edit, ...] | None:
    """`build: ...` (the whole entry, its block included) becomes `image: <image>`, where the
    service's own definition writes it and nothing else sets `build`."""
    if len([d for d in svc.defs if d.get("build") is not None]) != 1 or not where.editable:
        return None
    if svc.shadows(where, "build") is not None:
        return None
    doc = where.doc
    kv = doc.get(where.node, "build")
    assert kv is not None and isinstance(where.node, MappingNode)
    key, value = kv
    start = doc.line_start(key.start_mark.index)
    if doc.text[start : key.start_mark.index].strip():
        return None  # not alone on its line (a flow mapping)
    end = doc.line_after(doc.content_end(value, doc.key_end(key)))
    text = render.entry("image", image, key.start_mark.column, doc.style)
    if end == len(doc.text) and not doc.text.endswith("\n"):
        text = text.removesuffix("\n")
    return (Edit(doc.path, start, end, text),)


# --- the frontend scaffold ------------------------------------------------------------------

_LOCKS = (
    ("package-lock.json", "npm ci"),
    ("pnpm-lock.yaml", "corepack enable && pnpm install --frozen-lockfile"),
    ("yarn.lock", "yarn install --frozen-lockfile"),
)
_PORT = lazyre.compile(r"(?:--port[= ]|-b\s+\S*:|--bind[= ]\S*:|-p\s+|0\.0\.0\.0:)(\d{2,5})\b")


def _scaffold(project: Project, svc: Service, context: Path, dockerfile: Path) -> list[tuple[Path, str]]:
    manifests, install = "package.json", "npm install"
    for lock, cmd in _LOCKS:
        if (context / lock).is_file():
            manifests, install = f"package.json {lock}", cmd
            break
    dist = "dist"
    try:
        pkg = json.loads((context / "package.json").read_text(encoding="utf-8"))
        deps = {**(pkg.get("dependencies") or {}), **(pkg.get("devDependencies") or {})} if isinstance(pkg, dict) else {}
        if "react-scripts" in deps:
            dist = "build"  # Create React App builds into build/
    except (OSError, ValueError):
        pass
    conf = dockerfile.parent / "nginx.conf"
    try:
        conf_src = conf.relative_to(context).as_posix()
    except ValueError:  # the Dockerfile lives outside its context: the config goes in the context
        conf = context / "nginx.conf"
        conf_src = "nginx.conf"
    df = _fill(_template("frontend.Dockerfile"), manifests=manifests, install=install, nginx_conf=conf_src, dist=dist)
    backend = _backend(project, svc)
    if backend is not None:
        name, port = backend
        proxy = (f"\n    # API calls go to the {name} service.\n    location /api/ {{\n"
                 f"        proxy_pass http://{name}:{port};\n"
                 "        proxy_set_header Host $host;\n"
                 "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
                 "        proxy_set_header X-Forwarded-Proto $scheme;\n    }\n")
        comment = f"/api/ goes to the {name} service."
    else:
        proxy, comment = "", "no backend service was found to proxy to."
    nginx = _fill(_template("nginx.conf"), proxy=proxy, proxy_comment=comment)
    out = [(dockerfile, df)]
    if not project.exists(conf):
        out.append((conf, nginx))
    return out


def _fill(text: str, **values: str) -> str:
    for k, v in values.items():
        text = text.replace("{" + k + "}", v)
    return text


def _backend(project: Project, svc: Service) -> tuple[str, int] | None:
    """The service the frontend's API calls go to: one it depends on with the `api` role (else
    the only one it depends on), and the port it listens on."""
    deps = svc.config.get("depends_on")
    names = [n for n in (deps or {}) if n in project.services]
    apis = [n for n in names if role(project.services[n]) == "api"]
    pick = apis[0] if apis else names[0] if len(names) == 1 else None
    if pick is None:
        return None
    return pick, _port(project.services[pick])


def _port(svc: Service) -> int:
    m = _PORT.search(command_text(svc.config))
    if m:
        return int(m.group(1))
    expose = svc.config.get("expose")
    if isinstance(expose, list) and expose and str(expose[0]).split("/")[0].isdigit():
        return int(str(expose[0]).split("/")[0])
    ports = svc.config.get("ports")
    for p in ports if isinstance(ports, list) else ():
        target = str(p.get("target") if isinstance(p, dict) else str(p).rsplit(":", 1)[-1].split("/")[0])
        if target.isdigit():
            return int(target)
    stage = svc.build.stage if svc.build else None
    exposed = stage.last("EXPOSE") if stage else None
    if exposed is not None and exposed.operands and exposed.operands[0].split("/")[0].isdigit():
        return int(exposed.operands[0].split("/")[0])
    return 8000
