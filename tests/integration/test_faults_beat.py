"""Beat started twice: periodic work still runs once per period.

Mechanism under test (celeryconfig): RedBeat's lock in Redis (`redbeat_lock_timeout`),
which keeps every beat but one idle, so starting a second beat by mistake (a rolling
deploy, a scaled service) does not double the periodic tasks. With the default
PersistentScheduler each beat keeps its own schedule and both would send every task:
about twice the executions counted here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.faults import FaultStack, fault_stack

pytestmark = pytest.mark.integration

PERIOD_SECONDS = 1
WINDOW_SECONDS = 6.0
_SUCCEEDED = re.compile(r"Task osutrack\.rebuild_bestplays\[[0-9a-f-]+\] succeeded")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[FaultStack]:
    """Everything private, Postgres included: beat's other periodic tasks (refresh
    planning, peaks) must not touch the data of the session's other tests."""
    with fault_stack(
        tmp_path,
        BESTPLAYS_REFRESH_SECONDS=str(PERIOD_SECONDS),
        REFRESH_SCHEDULE_SECONDS="3600",
        PEAKS_RECOMPUTE_SECONDS="3600",
    ) as running:
        yield running


def test_two_beats_run_the_periodic_refresh_once_per_period(stack: FaultStack) -> None:
    worker = stack.start_worker("maintenance", queues="maintenance")
    beats = [stack.start_beat("beat-1"), stack.start_beat("beat-2")]
    # Let the schedule settle (the first due run fires at once).
    time.sleep(2.0)
    before = len(_SUCCEEDED.findall(worker.output()))
    time.sleep(WINDOW_SECONDS)
    runs = len(_SUCCEEDED.findall(worker.output())) - before
    assert all(beat.is_running() for beat in beats)
    expected = WINDOW_SECONDS / PERIOD_SECONDS
    # One beat sends ~6 in 6 s; two sending would be ~12.
    assert expected - 2 <= runs <= expected + 1.5, (runs, [b.output()[-1500:] for b in beats])
