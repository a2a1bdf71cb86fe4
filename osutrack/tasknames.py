"""Celery task names and queue names: the contract between the shim, beat and the workers.

Producers send tasks by these names (the shim never imports worker code), and a name is
never changed while messages carrying it may still be queued. Kombu keeps each queue as a
Redis list of the same name.
"""

from __future__ import annotations

UPDATE_USER = "osutrack.update_user"
SCHEDULE_REFRESH = "osutrack.schedule_refresh"
REFRESH_USERS = "osutrack.refresh_users"
REBUILD_BESTPLAYS = "osutrack.rebuild_bestplays"
# The rebuild's former name, still registered so messages queued by an older beat run.
# Remove it in the release after the one that introduced REBUILD_BESTPLAYS.
REBUILD_BESTPLAYS_FORMER = "osutrack.refresh_bestplays"
RECOMPUTE_PEAKS = "osutrack.recompute_peaks"

# Interactive updates, the scheduled refresh, and beat's table maintenance each have a
# queue, so a refresh backlog never delays a user who pressed "update". Update jobs wait
# for their turn in WAITING_QUEUE (or RETRY_QUEUE) before `osutrack.queue` releases them
# to UPDATE_QUEUE.
UPDATE_QUEUE = "updates"
WAITING_QUEUE = "updates.waiting"
RETRY_QUEUE = "updates.retry"
REFRESH_QUEUE = "refresh"
MAINTENANCE_QUEUE = "maintenance"

# Where each task goes when its sender names no queue.
TASK_ROUTES = {
    UPDATE_USER: {"queue": UPDATE_QUEUE},
    SCHEDULE_REFRESH: {"queue": MAINTENANCE_QUEUE},
    REFRESH_USERS: {"queue": REFRESH_QUEUE},
    REBUILD_BESTPLAYS: {"queue": MAINTENANCE_QUEUE},
    REBUILD_BESTPLAYS_FORMER: {"queue": MAINTENANCE_QUEUE},
    RECOMPUTE_PEAKS: {"queue": MAINTENANCE_QUEUE},
}
