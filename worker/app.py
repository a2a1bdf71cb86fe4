"""The Celery application (`celery -A worker worker`, `celery -A worker beat`)."""

from __future__ import annotations

from celery import Celery

# Register the start-up check of `celery -A worker worker` and the build of each pool
# process's runtime: both must be connected before the worker starts, which is earlier
# than the `include` modules are imported.
import worker.runtime
import worker.startup  # noqa: F401

app = Celery(
    "osutrack", include=["worker.tasks", "worker.heartbeat", "worker.releaser", "worker.logcontext"]
)
app.config_from_object("celeryconfig")
