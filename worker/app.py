"""The Celery application (`celery -A worker worker`, `celery -A worker beat`)."""

from __future__ import annotations

from celery import Celery

app = Celery(
    "osutrack", include=["worker.tasks", "worker.heartbeat", "worker.releaser", "worker.logcontext"]
)
app.config_from_object("celeryconfig")
