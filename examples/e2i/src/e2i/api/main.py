"""HTTP entry point: `gunicorn e2i.api.main:app -k uvicorn.workers.UvicornWorker`."""

from __future__ import annotations

import os

from fastapi import FastAPI

from e2i import __version__

app = FastAPI(title="E2I Causal Analytics", version=__version__)


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness probe used by the compose and Dockerfile health checks.

    Deliberately cheap: it does not touch Redis, FalkorDB or MLflow, so a slow
    dependency does not get the API container restarted.
    """
    return {"status": "ok", "version": __version__}


@app.get("/config")
def config() -> dict[str, str | None]:
    """Which backends this instance talks to (no secrets)."""
    keys = ("REDIS_URL", "FALKORDB_URL", "MLFLOW_TRACKING_URI", "BENTOML_URL", "FEAST_URL", "OPIK_URL")
    return {key.lower(): os.environ.get(key) for key in keys}
