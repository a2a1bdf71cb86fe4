"""Restarting `make run` does not rewind the simulated players.

Runs `python -m devstack.run` (what `make run` runs) for real, twice on one data dir:
private Postgres and Redis, migrations, the simulator, workers, beat and the API. peppy is
updated, simulated time moves on, the stack is stopped and started again, and the updates
after the restart must show peppy where the database last saw him, then moving forward.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.processes import ManagedProcess

from devstack.env import child_env
from devstack.procs import free_port
from osutrack.fields import DIFF_FIELD_ORDER

pytestmark = pytest.mark.integration

PEPPY = 2
# Every field of the /update diff that is a stat (all but username, mode and the flags).
STAT_KEYS = DIFF_FIELD_ORDER
# Fresh Postgres cluster, migrations and five children on a shared 2-core machine.
START_TIMEOUT_SECONDS = 240.0


class MakeRun:
    """`python -m devstack.run` on its own ports and data dir, started and stopped at will."""

    def __init__(self, data_dir: Path, logs: Path) -> None:
        self.api_port, simulator_port = free_port(), free_port()
        self.env = child_env(
            {
                "OSUTRACK_DATA_DIR": str(data_dir),
                "PORT": str(self.api_port),
                "SIMULATOR_PORT": str(simulator_port),
                "OSUTRACK_PG_PORT": str(free_port()),
                "OSUTRACK_REDIS_PORT": str(free_port()),
                "DATABASE_URL": "",
                "REDIS_URL": "",
                "OSU_CLIENT_ID": "",
                "OSU_CLIENT_SECRET": "",
                "OSU_API_KEY": "",
                "OSU_API_BASE_URL": "",
                "WORKER_CONCURRENCY": "1",
                "RATE_LIMIT_UPDATE": "off",
                "RATE_LIMIT_READ": "off",
            }
        )
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.simulator = f"http://127.0.0.1:{simulator_port}"
        self.logs = logs
        self.runs = 0
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        self.runs += 1
        self.process = ManagedProcess(
            "make-run",
            [sys.executable, "-m", "devstack.run"],
            self.env,
            self.logs / f"make-run-{self.runs}.log",
        )
        self.process.start(
            lambda proc: "osutrack-api is ready" in proc.output(), timeout=START_TIMEOUT_SECONDS
        )

    def stop(self) -> int | None:
        """Ctrl-C's SIGTERM twin; devstack stops every child and exits."""
        assert self.process is not None
        return self.process.stop(timeout=60)

    def update(self) -> dict[str, Any]:
        response = requests.post(
            f"{self.api}/update", params={"user": PEPPY, "mode": 0, "wait": 60}, timeout=90
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def truth(self) -> dict[str, Any]:
        response = requests.get(f"{self.simulator}/_sim/users/{PEPPY}/0", timeout=30)
        response.raise_for_status()
        stats: dict[str, Any] = response.json()["stats"]
        return stats

    def advance_everyone(self, steps: int) -> None:
        """What `--auto-advance-seconds` does every 300 s, now."""
        response = requests.post(
            f"{self.simulator}/_sim/advance", params={"steps": steps}, timeout=30
        )
        response.raise_for_status()


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[MakeRun]:
    stack = MakeRun(tmp_path / "data", tmp_path)
    yield stack
    if stack.process is not None and stack.process.is_running():
        stack.stop()
    print(f"make run logs: {tmp_path}")


def _stats(truth: dict[str, Any]) -> dict[str, float]:
    """The simulator's truth as the worker stores it from v2 (level aside: v2 rounds its
    progress, so it is only checked for direction)."""
    return {
        "playcount": truth["playcount"],
        "pp_rank": truth["global_rank"],
        "pp_raw": truth["pp_raw"],
        "accuracy": truth["accuracy"],
        "total_score": truth["total_score"],
        "ranked_score": truth["ranked_score"],
        "count300": truth["count300"],
        "count50": truth["count50"],
        "count100": truth["count100"],
        "count_rank_a": truth["count_rank_a"],
        "count_rank_s": truth["count_rank_s"] + truth["count_rank_sh"],
        "count_rank_ss": truth["count_rank_ss"] + truth["count_rank_ssh"],
    }


def _assert_diff(body: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> None:
    old, new = _stats(before), _stats(after)
    for key, value in new.items():
        assert body[key] == pytest.approx(value - old[key], abs=1e-3), key
    assert body["level"] >= 0


def test_a_restarted_make_run_goes_on_from_what_the_database_holds(make_run: MakeRun) -> None:
    make_run.start()
    assert make_run.update()["first"] is True
    seen = make_run.truth()
    make_run.advance_everyone(3)
    moved = make_run.truth()
    assert moved["playcount"] > seen["playcount"]
    _assert_diff(make_run.update(), seen, moved)
    assert make_run.stop() == 0

    make_run.start()
    # Nothing happened to peppy while the stack was down: no change at all.
    body = make_run.update()
    assert body["first"] is False
    assert all(body[key] == 0 for key in STAT_KEYS), body
    assert (body["levelup"], body["newhs"]) == (False, [])
    assert make_run.truth() == moved
    make_run.advance_everyone(1)
    later = make_run.truth()
    body = make_run.update()
    _assert_diff(body, moved, later)
    assert body["playcount"] > 0
    assert body["total_score"] > 0
    assert make_run.stop() == 0
