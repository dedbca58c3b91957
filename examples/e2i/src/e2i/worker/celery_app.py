"""Celery application: `celery -A e2i.worker.celery_app worker`."""

from __future__ import annotations

import os

from celery import Celery

celery_app = Celery(
    "e2i",
    broker=os.environ.get("CELERY_BROKER_URL", "redis://localhost:6379/1"),
    backend=os.environ.get("CELERY_RESULT_BACKEND", "redis://localhost:6379/2"),
)
celery_app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    worker_prefetch_multiplier=1,  # estimation tasks are long; don't hoard them
    result_expires=60 * 60 * 24,
)


@celery_app.task(name="e2i.ping")
def ping() -> str:
    return "pong"
