"""The retry schedule after transient upstream failures (`worker.retry.next_retry_at`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.retry import MAX_RETRY_DELAY_SECONDS, next_retry_at

NOW = 1_000_000.0


@given(
    attempt=st.integers(min_value=0, max_value=60),
    backoff=st.floats(min_value=0.01, max_value=10),
    horizon=st.floats(min_value=0.001, max_value=3600),
)
def test_the_next_attempt_lies_within_the_backoff_and_never_past_the_horizon(
    attempt: int, backoff: float, horizon: float
) -> None:
    retry_at = next_retry_at(NOW, attempt, backoff, None, NOW + horizon)
    assert retry_at is not None
    ceiling = min(backoff * 2**attempt, MAX_RETRY_DELAY_SECONDS)
    # Equal jitter: at least half the exponential delay, at most all of it...
    assert retry_at >= min(NOW + ceiling / 2, NOW + horizon)
    assert retry_at <= NOW + ceiling
    # ...and the last attempt is made when the horizon ends, not after.
    assert retry_at <= NOW + horizon


def test_delays_grow_exponentially_up_to_the_cap() -> None:
    far = NOW + 10_000
    lows = []
    for attempt in range(8):
        retry_at = next_retry_at(NOW, attempt, 0.5, None, far)
        assert retry_at is not None
        lows.append(retry_at - NOW)
    # Each delay's lower half-bound doubles: 0.25, 0.5, 1, ... until half the cap.
    for attempt, delay in enumerate(lows):
        assert delay >= min(0.5 * 2**attempt, MAX_RETRY_DELAY_SECONDS) / 2


def test_jitter_spreads_jobs_that_failed_together() -> None:
    moments = {next_retry_at(NOW, 3, 0.5, None, NOW + 120) for _ in range(50)}
    assert len(moments) > 40


def test_no_attempt_once_the_horizon_is_over() -> None:
    assert next_retry_at(NOW, 0, 0.5, None, NOW) is None
    assert next_retry_at(NOW, 5, 0.5, None, NOW - 1) is None


def test_retry_after_is_honoured_or_ends_the_job_when_it_reaches_past_the_horizon() -> None:
    retry_at = next_retry_at(NOW, 0, 0.05, 7, NOW + 60)
    assert retry_at == pytest.approx(NOW + 7)
    assert next_retry_at(NOW, 0, 0.05, 1800, NOW + 120) is None
