"""healthcheck-probes: health checks that cannot work are reported, and fixed where the right
probe is known.

## What it does
Reads each service's health check in every variant of the stack (the base alone, the base with
each override: the merged `healthcheck:`, or the `HEALTHCHECK` it inherits from the Dockerfile
stage it builds) against what runs in that variant (`e2i_fix.facts`), and reports one that can
never pass:

- its tool is not in the image: `curl` in an alpine or slim image that never installs it (for a
  local build, the `apt-get`/`apk`/`dnf` installs of the stage chain count). Fixed with a tool the
  image has: busybox `wget --spider`, or Python's `urllib`;
- an HTTP path the server does not have: a Vite or webpack dev server has no `/health` (it is
  fixed to probe `/`); an nginx `/health` needs a matching `location` in the nginx config the
  image uses (a mounted or copied config, else the image's default one), reported;
- a port the service does not listen on in that variant: the port its command names (`--port`,
  `-b host:port`; a debugger's or inspector's own port, `debugpy --listen 5678`, is not the
  server's), else the port its nginx or haproxy config listens on, else the default of the
  server it runs (`uvicorn` and `gunicorn` without a port serve 8000, `flask run` 5000), else
  the image's well-known port (`data/images.toml`: Opik's backend serves 8080), else its
  `EXPOSE`, `ports` and `expose`. Fixed when exactly one port is known;
- a service that inherits an image `HEALTHCHECK` probing a port its own command does not serve:
  a Celery worker built from the API's image gets `celery -A <app> inspect ping`; another
  command gets `disable: true`.

Where every variant that uses a check has the same fault, the check is fixed where it is
written. Where only some do (a dev override runs another server), each of those gets a `test`
of its own in its own file, and the base every variant shares is left as it is; a fault of the
base alone that another variant does not have is reported.

## Why
A check that cannot pass marks a healthy container unhealthy: anything that waits for it
(`depends_on: condition: service_healthy`) never starts, and restarts on health loop forever.

## Example
Before:

    services:
      frontend:
        command: npm run dev -- --host
        ports: ["5173:5173"]
        healthcheck:
          test: ["CMD", "wget", "-q", "--spider", "http://localhost:5173/health"]

After:

    services:
      frontend:
        command: npm run dev -- --host
        ports: ["5173:5173"]
        healthcheck:
          test: ["CMD", "wget", "-q", "--spider", "http://localhost:5173/"]

## Fix safety
Unsafe: the tables of images, tools and ports are inferred from what the stack says; a fixed
check changes when the service counts as healthy. Review the new probe.

## Options
- `interval`, `timeout`, `retries`: the timings of an added Celery health check.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from e2i_fix import health
from e2i_fix.fix import Fix
from e2i_fix.project import Project, targets

ID = health.ID
SUMMARY = "health checks whose tool, path or port cannot work"
SAFETY = health.SAFETY
READS = frozenset({"healthcheck", "build", "image", "command", "entrypoint", "ports", "expose", "environment",
                   "volumes", "extends"})
DEFAULTS: dict[str, Any] = dict(health.DEFAULTS)


def run(project: Project, options: dict[str, Any]) -> Iterator[Fix]:
    for svc in targets(project, ID, options):
        yield from health.check(project, svc, options)
