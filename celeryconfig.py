"""Celery settings for the workers, beat and the shim's task producer.

Values that operators set come from `osutrack.settings`; the rest are fixed here with the
reason for each. See README's operations section for the queues.
"""

from __future__ import annotations

from osutrack import tasknames
from osutrack.settings import load_settings_or_exit

# Read when Celery first looks at its configuration, as the worker or beat starts.
_settings = load_settings_or_exit("celery")

broker_url = _settings.redis_url
broker_connection_retry_on_startup = True
# A message taken by a worker that then died (even its main process, which cannot hand it
# back) is redelivered by another worker once it has been unacknowledged this long. Redis'
# default of one hour would leave such a job stuck for an hour; every acks-late task here
# ends (hard time limit) well within it, so a running task is never redelivered.
VISIBILITY_TIMEOUT_SECONDS = 60
broker_transport_options = {
    "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
    # Kombu looks for such abandoned messages every interval x throttle seconds (10 x 10
    # by default): scan every 10 s, so a lost job is back within about 70 s, not 100+.
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}

# Only ids and primitives cross the broker, and JSON enforces it.
task_serializer = "json"
accept_content = ["json"]
# Results go to Redis job hashes written by the task itself (osutrack.jobs), never to a
# Celery result backend: the shim must not call AsyncResult.get() from server threads.
task_ignore_result = True
result_backend = None

# Updates are idempotent (the job id is written in the update's own transaction), so a
# message is acknowledged only after the task ran, and a worker that dies mid-job hands
# the message back instead of losing it.
task_acks_late = True
task_reject_on_worker_lost = True
# One message at a time per process: updates wait on the upstream, and a prefetched
# message would sit behind a slow one instead of going to an idle worker.
worker_prefetch_multiplier = 1
# The global upstream limiter lives in Redis; Celery's per-process limits would only add
# a second, wrong, budget.
worker_disable_rate_limits = True
worker_max_tasks_per_child = 1000
worker_hijack_root_logger = False
worker_cancel_long_running_tasks_on_connection_loss = True
# SIGTERM is a warm shutdown: running jobs finish (each is bounded by its time limit) and
# queued ones stay queued. On SIGQUIT/SIGINT (or SIGTERM with REMAP_SIGTERM=SIGQUIT),
# running jobs get this many seconds, then their acks-late messages go back to Redis at
# once instead of waiting out the visibility timeout.
worker_soft_shutdown_timeout = 10.0
worker_enable_soft_shutdown_on_idle = True

task_default_queue = tasknames.UPDATE_QUEUE
task_routes = tasknames.TASK_ROUTES

timezone = "UTC"
enable_utc = True

# Beat: one scheduler however many are started (RedBeat holds a lock in Redis), and every
# periodic task expires before its next run so a stalled queue cannot pile up copies.
beat_scheduler = "worker.beat:RetryingRedBeatScheduler"
redbeat_redis_url = _settings.redis_url
redbeat_key_prefix = "osutrack:redbeat:"
redbeat_lock_timeout = 60
beat_max_loop_interval = 5
beat_schedule = {
    "rebuild-bestplays": {
        "task": tasknames.REBUILD_BESTPLAYS,
        "schedule": float(_settings.bestplays_refresh_seconds),
        "options": {"expires": max(_settings.bestplays_refresh_seconds * 0.9, 1.0)},
    },
    "schedule-refresh": {
        "task": tasknames.SCHEDULE_REFRESH,
        "schedule": float(_settings.refresh_schedule_seconds),
        "options": {"expires": max(_settings.refresh_schedule_seconds * 0.9, 1.0)},
    },
    "recompute-peaks": {
        "task": tasknames.RECOMPUTE_PEAKS,
        "schedule": float(_settings.peaks_recompute_seconds),
        "options": {"expires": max(_settings.peaks_recompute_seconds * 0.9, 1.0)},
    },
}
