"""Which Postgres server answers a read: a healthy streaming replica, else the primary.

With DATABASE_REPLICA_URLS set, every API process checks each replica about once a second
on a thread of its own: whether it answers, whether it is still a standby, and how far
behind the primary it is. The lag is measured on this process's clock only: each check
notes the primary's flushed WAL position, and a replica's lag is the time since the
primary was last seen at a position the replica has replayed (so clocks of other machines
never enter it, and it is an upper bound with the check's resolution). A replica that does
not answer, is no standby, or lags more than REPLICA_MAX_LAG_SECONDS is skipped until a
check finds it healthy again; a read that finds its replica broken runs on the primary.

Each process reads from one of the healthy replicas (its pid picks which), so the API
processes spread over them and one process never flips between replicas at different
points of replay. A read of one player goes to the primary while that player's last update
is past the replica's replayed position (`osutrack.write_marks`): a client that saw its
update finish reads it back, whichever process answers. Writes, job state, /health and
/metrics never come here: they use the primary (`api_shim.db`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import redis

from api_shim.read_connections import Prepared, Reader, libpq_dsn
from osutrack import write_marks
from osutrack.settings import Settings

log = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 1.0
# A check that cannot connect or answer within this is a replica that is down.
CHECK_TIMEOUT_SECONDS = 2
LAG_HISTORY_SECONDS = 3600.0
REDIS_TIMEOUT_SECONDS = 1.0

_PRIMARY_POSITION = "SELECT pg_current_wal_flush_lsn()::text"
_REPLICA_POSITION = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text"

Gauges = dict[str, tuple[str, float]]


@dataclass(frozen=True)
class ReplicaStatus:
    """What the last check found: whether reads go there, its lag in seconds (NaN when it
    could not be measured) and the WAL position it had replayed."""

    serving: bool = False
    lag_seconds: float = math.nan
    replayed: int = 0


def replica_lag(
    samples: Sequence[tuple[float, int]], replayed: int, now: float
) -> tuple[float, bool]:
    """How far behind a replica that has replayed up to `replayed` is, from `samples` of
    (monotonic time, primary's flushed position), oldest first.

    Returns (seconds, bounded): with `bounded`, the replica holds everything the primary
    had at a sampled moment and `seconds` is the time since the latest such moment; else
    it is behind every sample and `seconds` is only a lower bound (the oldest sample's age,
    e.g. for a replica that was behind when this process started).
    """
    # The primary's position only grows: the latest sample the replica has is the answer.
    for moment, position in reversed(samples):
        if position <= replayed:
            return max(0.0, now - moment), True
    if not samples:
        return math.nan, False
    return max(0.0, now - samples[0][0]), False


class ReplicaReader(Reader):
    """A `Reader` on a replica that runs a statement on the primary instead when the
    replica's connection fails or replay cancels the statement (a conflict with recovery)."""

    def __init__(
        self, url: str, statement_timeout_ms: int, primary: Reader, on_failure: Callable[[], None]
    ) -> None:
        super().__init__(url, statement_timeout_ms)
        self._primary = primary
        self._on_failure = on_failure

    def fetch(self, sql: str | Prepared, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            return super().fetch(sql, args)
        except psycopg2.errors.QueryCanceled:
            # Its own statement timeout: the primary would take as long.
            raise
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            self._on_failure()
        except psycopg2.errors.SerializationFailure:
            pass
        return self._primary.fetch(sql, args)


class _Probe:
    """The checker's own connection to one server, reopened after any failure."""

    def __init__(self, url: str) -> None:
        self._dsn = libpq_dsn(url)
        self._conn: psycopg2.extensions.connection | None = None

    def row(self, sql: str) -> tuple[Any, ...]:
        try:
            if self._conn is None:
                self._conn = psycopg2.connect(
                    self._dsn,
                    connect_timeout=CHECK_TIMEOUT_SECONDS,
                    options=f"-c statement_timeout={CHECK_TIMEOUT_SECONDS * 1000}",
                    application_name="osutrack-replica-check",
                )
                self._conn.autocommit = True
            with self._conn.cursor() as cursor:
                cursor.execute(sql)
                row = cursor.fetchone()
        except psycopg2.Error:
            self.close()
            raise
        if row is None:
            raise psycopg2.InterfaceError("no row")
        return row

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Replica:
    def __init__(self, index: int, url: str, statement_timeout_ms: int, primary: Reader) -> None:
        self.index = index
        self.url = url
        self.reader = ReplicaReader(url, statement_timeout_ms, primary, self._failed)
        self.status = ReplicaStatus()
        self.probe = _Probe(url)

    def _failed(self) -> None:
        status = self.status
        if status.serving:
            log.warning("replica %d failed a read: skipped until it checks healthy", self.index)
            self.status = ReplicaStatus(False, math.nan, status.replayed)


class ReadRouting:
    """Hands each read the `Reader` of the server that should answer it."""

    def __init__(self, settings: Settings, primary: Reader) -> None:
        self.primary = primary
        self._settings = settings
        self._max_lag = settings.replica_max_lag_seconds
        self._replicas = tuple(
            _Replica(index, url, settings.statement_timeout_ms, primary)
            for index, url in enumerate(settings.database_replica_urls)
        )
        self._lock = threading.Lock()
        self._checking = False
        self._redis: redis.Redis | None = None
        # (monotonic time, primary's flushed position), kept as long as a lag can matter.
        self._samples: deque[tuple[float, int]] = deque()
        self._primary_probe = _Probe(settings.database_url)

    def reader_for(self, user_id: int | None = None) -> Reader:
        """The reader of a read, of one player's data when `user_id` is given."""
        if not self._replicas:
            return self.primary
        self._ensure_checking()
        serving = [replica for replica in self._replicas if replica.status.serving]
        if not serving:
            return self.primary
        replica = serving[os.getpid() % len(serving)]
        if user_id is not None:
            try:
                written = write_marks.written_up_to(self._redis_client(), user_id)
            except redis.RedisError:
                # Whether the player was just updated cannot be told: the primary knows.
                return self.primary
            if written is not None and written > replica.status.replayed:
                return self.primary
        return replica.reader

    def gauges(self) -> Gauges:
        """Lag and use of each replica as this process last checked them, for /metrics.
        Labelled by position in DATABASE_REPLICA_URLS, never by address."""
        gauges: Gauges = {}
        if self._replicas:
            self._ensure_checking()
        for replica in self._replicas:
            status = replica.status
            label = f'{{replica="{replica.index}"}}'
            gauges[f"osutrack_replica_lag_seconds{label}"] = (
                "Seconds a read replica is behind the primary, as this API process last "
                "measured it (an upper bound; NaN when it could not be reached).",
                status.lag_seconds,
            )
            gauges[f"osutrack_replica_serving{label}"] = (
                "1 when this API process sends reads to the replica, 0 while it skips it "
                "(unreachable, not a standby, or behind by more than REPLICA_MAX_LAG_SECONDS).",
                1.0 if status.serving else 0.0,
            )
        return gauges

    def _redis_client(self) -> redis.Redis:
        client = self._redis
        if client is None:
            client = redis.Redis.from_url(
                self._settings.redis_url,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._redis = client
        return client

    def _ensure_checking(self) -> None:
        """Start the checker on first use (this object belongs to one API process: it is
        built with the process's resources, after granian forks)."""
        if self._checking:
            return
        with self._lock:
            if self._checking:
                return
            threading.Thread(target=self._check_forever, name="replica-check", daemon=True).start()
            self._checking = True

    def _check_forever(self) -> None:
        while True:
            try:
                self.check()
            except Exception:
                log.exception("replica check failed")
            time.sleep(CHECK_INTERVAL_SECONDS)

    def check(self) -> None:
        """Measure every replica once and decide which serve reads."""
        started = time.monotonic()
        try:
            position = self._primary_probe.row(_PRIMARY_POSITION)[0]
        except psycopg2.Error as err:
            log.warning("replica check: the primary did not answer: %s", type(err).__name__)
        else:
            self._samples.append((started, write_marks.parse_lsn(position)))
        # Kept for an hour (or the bound, if longer), so /metrics shows how far behind a
        # lagging replica is up to then; beyond, its lag reads as the oldest sample's age.
        keep_after = started - max(LAG_HISTORY_SECONDS, self._max_lag + CHECK_INTERVAL_SECONDS)
        while len(self._samples) > 1 and self._samples[0][0] < keep_after:
            self._samples.popleft()
        for replica in self._replicas:
            self._check_replica(replica)

    def _check_replica(self, replica: _Replica) -> None:
        before = replica.status
        try:
            in_recovery, replayed_text = replica.probe.row(_REPLICA_POSITION)
        except psycopg2.Error as err:
            status = ReplicaStatus(False, math.nan, before.replayed)
            reason = f"unreachable ({type(err).__name__})"
        else:
            if not in_recovery or replayed_text is None:
                status = ReplicaStatus(False, math.nan, before.replayed)
                reason = "not a standby"
            else:
                replayed = write_marks.parse_lsn(replayed_text)
                lag, bounded = replica_lag(self._samples, replayed, time.monotonic())
                serving = bounded and lag <= self._max_lag
                status = ReplicaStatus(serving, lag, replayed)
                reason = f"behind by at least {lag:.1f} s"
        replica.status = status
        if before.serving and not status.serving:
            log.warning("replica %d skipped: %s", replica.index, reason)
        elif status.serving and not before.serving:
            log.info("replica %d serves reads (lag %.1f s)", replica.index, status.lag_seconds)
