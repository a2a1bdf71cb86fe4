"""Private stacks and exactly-once checks for the fault tests (tests/integration/test_faults_*).

A fault test breaks real processes: it kills workers, restarts Redis or Postgres, stalls
the upstream. It therefore runs on services of its own (`fault_stack`): its own Redis
(AOF on), its own simulator and, when it restarts Postgres, its own Postgres; workers,
the API and beat are started on demand and every process is stopped when the stack
closes, whatever the test did to it. The session-wide services other tests share are
never touched (the session Postgres is only written, under user ids of our own).

`FaultStack.assert_updated_once` is the common verdict: for each user-mode, exactly the
rows one fault-free update at the simulator's current state writes, and every accepted job
finished with the body that update stored.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
import requests
import sqlalchemy as sa

from devstack.commands import migrate_command, simulator_osu_env
from devstack.env import child_env
from devstack.procs import free_port
from devstack.services import PostgresServer, RedisServer
from osutrack import jobs
from osutrack.fields import STAT_FIELDS
from osutrack.schema import finished_updates, hiscores, stats_snapshots, tracked_users
from osutrack.settings import load_settings
from support.processes import ALL_QUEUES, ManagedProcess, start_api, start_beat, start_worker
from support.simulator import SimulatorClient, start_simulator
from worker.upstream import make_client

# User ids of the fault tests only: other integration tests count up from 1,000,001.
_user_ids = itertools.count(7_000_001)

HTTP_TIMEOUT_SECONDS = 10.0


def new_fault_user() -> int:
    """A user id no other test (in this session) updates."""
    return next(_user_ids)


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `check` until true; `AssertionError` naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(interval)


# The simulator stamps a request when its handler thread starts, some time after the
# request arrived: a few ms on an idle machine, up to about a hundred under `make test`'s
# parallel load. A stamp can only be late, so a window between two stamps can look
# narrower than the window between the sends by at most that delay; requests are counted
# over a window this much narrower than the budget's period. Locally it still catches a
# burst of 12 in a second (11 evenly spread gaps of 1/12 s span 0.83 s); the long-run
# check in `budget_overruns` catches a budget exceeded by any share over a long run.
STAMP_JITTER_SECONDS = 0.12


def budget_overruns(log: list[dict[str, Any]], limit: int, period: float) -> list[int]:
    """Indexes of requests that arrived less than `period` (less the stamp jitter) after
    the request `limit` places before them: more than `limit` in one window. Over the
    whole log, n requests need at least (n - limit) / limit periods (less the jitter,
    which only moves its ends); a log that came faster lists its last index."""
    times = sorted(entry["arrived"] for entry in log)
    width = period - STAMP_JITTER_SECONDS
    overruns = [i for i in range(limit, len(times)) if times[i] - times[i - limit] < width]
    if len(times) > limit:
        needed = (len(times) - limit) / limit * period - STAMP_JITTER_SECONDS
        if times[-1] - times[0] < needed:
            overruns.append(len(times) - 1)
    return overruns


@dataclass(frozen=True)
class ExpectedUpdate:
    """What one fault-free update of a user-mode writes at the simulator's current state."""

    snapshot: dict[str, Any] | None
    plays: list[tuple[int, float]]


@dataclass
class StoredRows:
    """The rows the database holds for one user-mode (timestamps left out)."""

    snapshots: list[dict[str, Any]]
    plays: list[tuple[int, float]]
    finished: dict[str, Any]
    tracked: int


@dataclass
class FaultStack:
    """Services of one fault test; processes it starts are stopped by `close()`."""

    root: Path
    database_url: str
    redis_server: RedisServer
    simulator: SimulatorClient
    postgres: PostgresServer | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[ManagedProcess] = field(default_factory=list)
    api_url: str | None = None
    _engine: sa.Engine | None = None
    _redis: redis.Redis | None = None
    http: requests.Session = field(default_factory=requests.Session)

    # --- processes -------------------------------------------------------------------

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of a worker/API/beat of this stack, plus `overrides`."""
        base = {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_server.url,
            **simulator_osu_env(self.simulator.base_url),
            "OSU_API_VERSION": "v2",
            "OSU_API_RATE_LIMIT": "off",
            "RATE_LIMIT_UPDATE": "off",
            "RATE_LIMIT_READ": "off",
            "OSU_API_RETRY_BACKOFF_SECONDS": "0.05",
            # Transient upstream failures are retried this long: the faults tests need a job to
            # give up within seconds, not the default two minutes.
            "OSU_API_RETRY_HORIZON_SECONDS": "2",
            "LOG_LEVEL": "INFO",
        }
        return child_env(base | self.extra_env | overrides)

    def start_worker(
        self, name: str, *, concurrency: int = 1, queues: str = "updates", **env: str
    ) -> ManagedProcess:
        """A Celery worker node of this stack, ready to consume; its log is `name`.log."""
        worker = start_worker(
            self.env(**env),
            queues=queues,
            concurrency=concurrency,
            hostname=f"{name}-{uuid.uuid4().hex[:6]}@%h",
            log_path=self.root / f"{name}.log",
        )
        self.processes.append(worker)
        return worker

    def start_all_queues_worker(self, name: str, **env: str) -> ManagedProcess:
        """A worker on every queue (beat's periodic tasks go to `maintenance`)."""
        return self.start_worker(name, queues=ALL_QUEUES, **env)

    def start_api(self, **env: str) -> str:
        """granian serving the shim for this stack; returns (and remembers) its URL."""
        port = free_port()
        api = start_api(self.env(**env), port, log_path=self.root / "api.log")
        self.processes.append(api)
        self.api_url = f"http://127.0.0.1:{port}"
        return self.api_url

    def start_beat(self, name: str, **env: str) -> ManagedProcess:
        """A `celery beat` (RedBeat) on this stack's Redis."""
        beat = start_beat(self.env(**env), log_path=self.root / f"{name}.log")
        self.processes.append(beat)
        return beat

    def close(self) -> None:
        """Stop every process this stack started (newest first), then the clients."""
        for process in reversed(self.processes):
            process.stop(timeout=5.0)
        self.processes.clear()
        self.http.close()
        if self._engine is not None:
            self._engine.dispose()
        if self._redis is not None:
            self._redis.close()

    # --- clients ---------------------------------------------------------------------

    @property
    def engine(self) -> sa.Engine:
        """A small engine on the stack's database (pre-ping: Postgres may be restarted)."""
        if self._engine is None:
            self._engine = sa.create_engine(
                self.database_url, pool_pre_ping=True, connect_args={"connect_timeout": 5}
            )
        return self._engine

    @property
    def redis(self) -> redis.Redis:
        """A text-mode client of the stack's Redis with bounded socket timeouts."""
        if self._redis is None:
            self._redis = redis.Redis.from_url(
                self.redis_server.url,
                decode_responses=True,
                socket_connect_timeout=2,
                socket_timeout=5,
            )
        return self._redis

    def set_latency(self, ms: int) -> None:
        """Delay every upstream answer of the simulator by `ms` milliseconds."""
        self.simulator.session.put(
            f"{self.simulator.base_url}/_sim/latency", params={"ms": ms}, timeout=5
        ).raise_for_status()

    def upstream_requests(self, user: int, endpoint: str) -> int:
        """How many `endpoint` ("v2_user", "v2_best") requests for `user` osu! served."""
        return sum(
            1
            for entry in self.simulator.requests_log()
            if entry["endpoint"] == endpoint and f"/users/{user}/" in entry["path"]
        )

    # --- the API ---------------------------------------------------------------------

    def post_update(self, user: int, mode: int = 0, wait: float = 0) -> requests.Response:
        """POST /update?wait=`wait` with a client timeout a little above the wait."""
        assert self.api_url is not None, "start_api() first"
        return self.http.post(
            f"{self.api_url}/update",
            params={"user": user, "mode": mode, "wait": wait},
            timeout=wait + HTTP_TIMEOUT_SECONDS,
        )

    def accept_update(self, user: int, mode: int = 0) -> str:
        """POST /update?wait=0, which must be accepted (202); returns the job id."""
        response = self.post_update(user, mode)
        assert response.status_code == 202, (response.status_code, response.text)
        job_id: str = response.json()["job_id"]
        assert response.headers["Location"] == f"/jobs/{job_id}"
        return job_id

    def get(self, path: str, **params: object) -> requests.Response:
        """GET an API path with a bounded client timeout."""
        assert self.api_url is not None, "start_api() first"
        return self.http.get(f"{self.api_url}{path}", params=params, timeout=HTTP_TIMEOUT_SECONDS)

    def poll_job(self, job_id: str, timeout: float) -> dict[str, Any]:
        """GET /jobs/{id} until the job is finished or failed; its last body."""
        body: dict[str, Any] = {}

        def ended() -> bool:
            nonlocal body
            body = self.get(f"/jobs/{job_id}").json()
            return body["status"] in jobs.TERMINAL_STATUSES

        wait_for(ended, timeout, f"job {job_id} ends", interval=0.2)
        return body

    # --- job state and data ----------------------------------------------------------

    def job(self, job_id: str) -> jobs.JobState | None:
        """The job's state in Redis."""
        return jobs.read_job(self.redis, job_id)

    def wait_job_status(self, job_id: str, statuses: Sequence[str], timeout: float) -> None:
        """Wait until the job's status (in Redis) is one of `statuses`."""

        def reached() -> bool:
            state = self.job(job_id)
            return state is not None and state.status in statuses

        wait_for(reached, timeout, f"job {job_id} reaches {statuses}")

    def wait_terminal(self, job_id: str, timeout: float) -> jobs.JobState:
        """Wait until the job finished or failed; its final state."""
        self.wait_job_status(job_id, tuple(jobs.TERMINAL_STATUSES), timeout)
        state = self.job(job_id)
        assert state is not None
        return state

    def finished_job_ids(self, job_ids: Sequence[str]) -> set[str]:
        """Which of `job_ids` have their idempotency row committed."""
        with self.engine.connect() as connection:
            return set(
                connection.scalars(
                    sa.select(finished_updates.c.job_id).where(
                        finished_updates.c.job_id.in_(list(job_ids))
                    )
                )
            )

    def stored(self, user: int, mode: int) -> StoredRows:
        """Every row the update tables hold for (user, mode), timestamps left out."""
        with self.engine.connect() as connection:
            snapshots = [
                {name: row._mapping[name] for name in STAT_FIELDS}
                for row in connection.execute(
                    sa.select(stats_snapshots).where(
                        stats_snapshots.c.user_id == user, stats_snapshots.c.mode == mode
                    )
                )
            ]
            plays = sorted(
                (int(row.score_id), float(row.pp))
                for row in connection.execute(
                    sa.select(hiscores.c.score_id, hiscores.c.pp).where(
                        hiscores.c.user_id == user, hiscores.c.mode == mode
                    )
                )
            )
            finished = {
                row.job_id: row.result
                for row in connection.execute(
                    sa.select(finished_updates.c.job_id, finished_updates.c.result).where(
                        finished_updates.c.user_id == user, finished_updates.c.mode == mode
                    )
                )
            }
            tracked = connection.scalar(
                sa.select(sa.func.count()).where(tracked_users.c.user_id == user)
            )
        return StoredRows(snapshots, plays, finished, int(tracked or 0))

    def expected(self, user: int, mode: int) -> ExpectedUpdate:
        """Fetch (user, mode) now, fault-free, the way a worker does; what it would store.

        Uses the worker's own client and mapping against this stack's simulator, so the
        reference is "one update at this simulator state", not a second reading of the
        simulator's internals. Call it with no fault pending.
        """
        settings = load_settings(self.env())
        client = make_client(settings, self.redis)
        player = client.fetch_player(user, mode)
        assert player is not None, f"user {user} unknown to the simulator"
        plays = client.fetch_top_plays(user, mode)
        snapshot = asdict(player.stats) if player.stats.is_ranked else None
        return ExpectedUpdate(snapshot, sorted((p.score_id, float(p.pp)) for p in plays))

    def assert_updated_once(self, user: int, mode: int, job_ids: Sequence[str]) -> None:
        """The data of exactly one fault-free first update, and every job finished once.

        Per user-mode: one snapshot equal to the upstream stats, the hiscores equal to the
        upstream top plays (no duplicates, none missing), one tracked user, one idempotency
        row per accepted job, and each job published as finished with the body its own
        transaction stored.
        """
        expected = self.expected(user, mode)
        rows = self.stored(user, mode)
        want = [expected.snapshot] if expected.snapshot else []
        assert rows.snapshots == want, f"{len(rows.snapshots)} snapshots, expected {len(want)}"
        assert rows.plays == expected.plays, f"{len(rows.plays)} plays, {len(expected.plays)}"
        assert rows.tracked == 1
        assert set(rows.finished) == set(job_ids)
        for job_id in job_ids:
            state = self.job(job_id)
            assert state is not None, f"job {job_id} state vanished"
            assert state.status == jobs.FINISHED, (job_id, state)
            assert state.result == rows.finished[job_id], (
                f"published {state.result} but stored {rows.finished[job_id]}"
            )
        assert [body["first"] for body in rows.finished.values()].count(True) == 1


@contextlib.contextmanager
def fault_stack(root: Path, *, database_url: str | None = None, **env: str) -> Iterator[FaultStack]:
    """Start a private Redis (AOF) and simulator, and Postgres unless `database_url` is given.

    Without `database_url` a private Postgres is started and migrated (for tests that stop
    it). Everything started here, and every process started through the stack, is stopped
    on exit, in reverse order, even if the test failed half-way.
    """
    with contextlib.ExitStack() as cleanup:
        postgres = None
        if database_url is None:
            postgres = PostgresServer(root / "postgres", free_port(), fsync=False)
            cleanup.callback(postgres.stop)
            postgres.start()
            database_url = postgres.url
            migrate = ManagedProcess(
                "migrate",
                migrate_command(),
                child_env({"DATABASE_URL": database_url}),
                root / "migrate.log",
            )
            migrate.start()
            assert migrate.wait(timeout=120) == 0, migrate.output()
            migrate.stop()
        redis_server = RedisServer(root / "redis", free_port(), appendonly=True)
        cleanup.callback(redis_server.stop)
        redis_server.start()
        running = start_simulator(child_env(), root / "simulator.log")
        cleanup.callback(running.process.stop)
        simulator = SimulatorClient(running.base_url)
        cleanup.callback(simulator.session.close)
        stack = FaultStack(
            root=root,
            database_url=database_url,
            redis_server=redis_server,
            simulator=simulator,
            postgres=postgres,
            extra_env=dict(env),
        )
        cleanup.callback(stack.close)
        yield stack


def pool_children(worker: ManagedProcess) -> list[psutil.Process]:
    """The prefork pool processes of a worker node (its main process's children)."""
    return psutil.Process(worker.pid).children(recursive=True)


def worker_log_mentions(worker: ManagedProcess, text: str) -> bool:
    """True when the worker's log contains `text` (a job id, a task name...)."""
    return text in worker.output()
