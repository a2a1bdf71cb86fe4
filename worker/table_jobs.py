"""Beat's table maintenance on the workers: the bestplays rebuild and the peaks repair.

Each takes a Redis lock without waiting, so a slow run is never joined by the next one.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from worker.bestplays import MODES, rebuild_bestplays, rebuild_month_lists
from worker.db import session_scope
from worker.peaks import recompute_changed_peaks
from worker.runtime import runtime

log = logging.getLogger(__name__)


def rebuild_all_bestplays() -> None:
    """Rebuild every mode's bestplays table and its changed month lists (one transaction
    per mode, so readers see a mode's table, lists and stamp move together)."""
    rt = runtime()
    # One rebuild at a time even if beat fires again while a slow one runs.
    with rt.redis.lock("osutrack:lock:bestplays", timeout=300, blocking_timeout=0) as held:
        if not held:
            return
        size = rt.settings.bestplays_table_size
        for mode in MODES:
            with session_scope(rt.engine) as session:
                now = datetime.now(UTC)
                months = rebuild_month_lists(session, mode, size, now)
                rebuild_bestplays(session, mode, size, now)
            if months.months:
                log.info("mode %d: rebuilt %d month lists", mode, months.months)


def repair_peaks() -> None:
    """Rebuild the peaks of the user-modes updated since the last run."""
    rt = runtime()
    with rt.redis.lock("osutrack:lock:peaks", timeout=1800, blocking_timeout=0) as held:
        if not held:
            return
        with session_scope(rt.engine) as session:
            recompute_changed_peaks(session)
