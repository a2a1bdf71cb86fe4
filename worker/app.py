"""The Celery application (`celery -A worker worker`, `celery -A worker beat`)."""

from __future__ import annotations

from celery import Celery

# Registers the start-up check of `celery -A worker worker` (it must exist before the
# worker starts, which is earlier than the `include` modules are imported).
import worker.startup  # noqa: F401

app = Celery(
    "osutrack", include=["worker.tasks", "worker.heartbeat", "worker.releaser", "worker.logcontext"]
)
app.config_from_object("celeryconfig")
