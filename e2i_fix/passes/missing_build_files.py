"""missing-build-files: a `build:` whose context or Dockerfile does not exist.

## What it does
Reports, at the compose line, a service whose `build.context` folder or Dockerfile is not there
(`docker compose build` and `up` fail on it). Two fixes are offered, both unsafe:

- a well-known service with an official image (the Feast feature server, MLflow:
  `e2i_fix/data/official_images.toml`, with sources) has its `build:` replaced by that `image:`;
- a frontend (a `package.json` in the context, or a service named like `frontend`/`web`/`ui`
  with Vite settings or port 5173) gets a scaffolded multi-stage Dockerfile: a Node + Vite
  `dev` stage, a `build` stage, and the production build served by nginx (the last stage, which
  a `build:` without `target` builds), with an `nginx.conf` beside it: the SPA fallback to
  `index.html`, API calls (`/api/`) proxied to the backend service it finds (what the frontend
  `depends_on`, else the `api` role), gzip, and a `/health` location on the port the compose
  file publishes, which its health check can use.

New files never replace existing ones, and are written only inside the project.

## Why
A stack that cannot build cannot start; the review found two such services in the example.

## Example
Before:

    feast:
      build:
        context: .
        dockerfile: docker/Dockerfile.feast

After (`--unsafe-fixes`):

    feast:
      image: feastdev/feature-server:0.40.1

## Fix safety
Unsafe: an official image runs the upstream software, not whatever the missing Dockerfile would
have added; a scaffold is a starting point to review (its `package.json` location, the API
prefix, the port).

## Options
None.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from e2i_fix import buildctx, render
from e2i_fix.fix import Edit, Fix, Safety
from e2i_fix.project import Project, Service, role, targets
from e2i_fix.yamldoc import MappingNode, Node, ScalarNode

ID = "missing-build-files"
SUMMARY = "a build context or Dockerfile that does not exist (official image or scaffold, unsafe)"
SAFETY = Safety.UNSAFE
DEFAULTS: dict[str, Any] = {}

_FRONTEND_NAMES = re.compile(r"(?:^|[-_])(?:frontend|web|ui|dashboard|client|app-ui|spa)(?:$|[-_])")


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    images = buildctx.table("official_images.toml")
    for svc in targets(project, ID, options):
        b = svc.build
        if b is None or b.context is None:
            continue
        home = svc.home
        place = _where(svc)
        if place is None:
            continue
        doc, key, value = place
        ctx_node = doc.get(value, "context") if isinstance(value, MappingNode) else None
        df_node = doc.get(value, "dockerfile") if isinstance(value, MappingNode) else None
        if not b.context.is_dir():
            at = (ctx_node[1] if ctx_node else value).start_mark
            what = f"build context `{os.path.relpath(b.context, project.folder)}` does not exist"
        elif b.dockerfile is not None and not buildctx.exists(project, b.dockerfile):
            at = (df_node[1] if df_node else key).start_mark
            what = f"Dockerfile `{os.path.relpath(b.dockerfile, project.folder)}` does not exist"
        else:
            continue
        message = f"service {svc.name!r}: {what}"
        official = _official(svc, images)
        if official is not None and home is not None and home.doc is doc:
            spec = images[official]
            edit = _replace_build(doc, key, value, spec["image"])
            yield Fix(ID, f"{message}: use the official {spec['what']} image `{spec['image']}` instead of building",
                      doc.path, at.line + 1, at.column + 1, edits=(edit,), safety=Safety.UNSAFE,
                      changes=(("services", svc.name, "build"), ("services", svc.name, "image")), severe=True,
                      provenance=((spec["image"], spec["source"]),))
            continue
        if b.context.is_dir() and b.dockerfile is not None and _is_frontend(svc, b.context):
            yield _scaffold(project, svc, b.context, b.dockerfile, message, doc.path, at.line + 1, at.column + 1)
            continue
        yield Fix(ID, message, doc.path, at.line + 1, at.column + 1, safety=Safety.DISPLAY_ONLY, severe=True)


def _where(svc: Service) -> tuple[Any, ScalarNode, Node] | None:
    """The definition that writes the service's `build:` (the last one that does)."""
    for d in reversed(svc.defs):
        got = d.get("build")
        if got is not None:
            return d.doc, got[0], got[1]
    return None


def _official(svc: Service, images: dict[str, Any]) -> str | None:
    b = svc.build
    names = [svc.name.lower(), (b.dockerfile.name.lower() if b and b.dockerfile else "")]
    for key, spec in images.items():
        for word in spec["match"]:
            if any(re.search(rf"(?:^|[^a-z]){re.escape(word)}(?:$|[^a-z])", n) for n in names):
                return key
    return None


def _replace_build(doc: Any, key: ScalarNode, value: Node, image: str) -> Edit:
    start = doc.line_start(key.start_mark.index)
    end = doc.line_after(doc.content_end(value, key.end_mark.index))
    return Edit(doc.path, start, end, render.entry("image", image, key.start_mark.column, doc.style))


def _is_frontend(svc: Service, context: Path) -> bool:
    if (context / "package.json").is_file():
        return True
    env = svc.config.get("environment")
    vite = isinstance(env, dict) and any(str(k).startswith("VITE_") for k in env)
    return bool(_FRONTEND_NAMES.search(svc.name.lower())) and (vite or "5173" in str(svc.config.get("ports")))


def _container_port(svc: Service, default: int) -> int:
    ports = svc.config.get("ports")
    if isinstance(ports, list):
        for p in ports:
            target = str(p.get("target") if isinstance(p, dict) else str(p).rsplit(":", 1)[-1].split("/")[0])
            if target.isdigit():
                return int(target)
    expose = svc.config.get("expose")
    if isinstance(expose, list) and expose and str(expose[0]).split("/")[0].isdigit():
        return int(str(expose[0]).split("/")[0])
    return default


def _backend(project: Project, svc: Service) -> Service | None:
    deps = svc.config.get("depends_on")
    names = list(deps) if isinstance(deps, (dict, list)) else []
    services = project.services
    for n in names:
        other = services.get(str(n))
        if other is not None and role(other) == "api":
            return other
    return next((s for s in services.values() if s is not svc and role(s) == "api"), None)


def _scaffold(project: Project, svc: Service, context: Path, dockerfile: Path, message: str,
              where: Path, line: int, col: int) -> Fix:
    data = buildctx.table("frontend_scaffold.toml")
    port = _container_port(svc, 80)
    backend = _backend(project, svc)
    app = "." if (context / "package.json").is_file() else svc.name
    conf_rel = os.path.relpath(dockerfile.parent / "nginx.conf", context).replace(os.sep, "/")
    hc = svc.config.get("healthcheck")
    curl = "curl" in str(hc.get("test")) if isinstance(hc, dict) else False
    app_dir = "" if app == "." else app.rstrip("/") + "/"
    dockerfile_text = data["dockerfile"].format(
        app=app_dir, port=port, nginx_conf=conf_rel, node=data["node"], nginx=data["nginx"],
        curl="RUN apk add --no-cache curl\n" if curl else "")
    if backend is not None:
        bport = _container_port(backend, 8000)
        proxy = data["proxy"].format(service=backend.name, port=bport)
    else:
        proxy = ""
    conf_text = data["nginx_conf"].format(port=port, proxy=proxy)
    conf = dockerfile.parent / "nginx.conf"
    edits = [Edit(dockerfile, 0, 0, dockerfile_text)]
    if not buildctx.exists(project, conf):
        edits.append(Edit(conf, 0, 0, conf_text))
    hint = "" if app == "." else f" (it expects the app's package.json in `{app}/`)"
    return Fix(ID, f"{message}: scaffold a Node + Vite dev stage and an nginx production stage with nginx.conf{hint}",
               where, line, col, edits=tuple(edits), safety=Safety.UNSAFE, severe=True,
               provenance=(("scaffold", "e2i_fix/data/frontend_scaffold.toml"),))
