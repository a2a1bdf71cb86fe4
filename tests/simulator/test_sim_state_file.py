"""`--state-file`: a restarted simulator process goes on from the world it left.

Real `python -m simulator` processes: each change the control API can make is applied,
the process is stopped, and a new one on the same file must report the same truth for
every player touched, and for one never touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from falcon.testing import TestClient
from support.processes import ManagedProcess

from devstack.commands import simulator_command
from devstack.env import child_env
from devstack.procs import free_port, port_open
from simulator.app import create_app
from simulator.config import SimConfig

# Marked here, not found from fixtures: the module runs and restarts the simulator process.
pytestmark = pytest.mark.integration

ADVANCED, REWORKED, RESTRICTED, UNTOUCHED = 31338, 31339, 31340, 31341
# Every kind of change, with global steps both next to each other and between others.
OPERATIONS: list[tuple[str, dict[str, str]]] = [
    ("/advance", {"steps": "2"}),
    ("/advance", {"steps": "1"}),
    (f"/users/{ADVANCED}/advance", {"mode": "1", "steps": "3", "new_top_plays": "2"}),
    ("/advance", {"steps": "2"}),
    (f"/users/{REWORKED}/pp_rework", {"mode": "0", "factor": "1.07"}),
    (f"/users/{RESTRICTED}/restrict", {}),
    ("/advance", {"steps": "1"}),
]


class Sim:
    """One simulator process on `state_file`, with the control calls the tests use."""

    def __init__(self, state_file: Path, log: Path) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.process = ManagedProcess(
            "simulator",
            simulator_command("127.0.0.1", port, "--state-file", str(state_file)),
            child_env(),
            log,
        )
        self.http = requests.Session()

    def start(self) -> Sim:
        port = int(self.base.rsplit(":", 1)[1])
        self.process.start(lambda _proc: port_open("127.0.0.1", port))
        return self

    def stop(self) -> None:
        self.http.close()
        assert self.process.stop() == 0

    def post(self, path: str, **params: Any) -> Any:
        response = self.http.post(f"{self.base}/_sim{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def truth(self, user: int, mode: int) -> Any:
        response = self.http.get(f"{self.base}/_sim/users/{user}/{mode}", timeout=30)
        response.raise_for_status()
        return response.json()

    def world(self) -> dict[tuple[int, int], Any]:
        return {
            (user, mode): self.truth(user, mode)
            for user in (ADVANCED, REWORKED, RESTRICTED, UNTOUCHED)
            for mode in (0, 1)
        }


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / "world.json"


@pytest.fixture
def start(tmp_path: Path, state_file: Path) -> Iterator[Any]:
    started: list[Sim] = []

    def start_one() -> Sim:
        sim = Sim(state_file, tmp_path / f"sim-{len(started)}.log")
        started.append(sim)
        return sim.start()

    yield start_one
    for sim in started:
        sim.process.stop()


def test_a_restart_keeps_every_change(start: Any, state_file: Path) -> None:
    first = start()
    for path, params in OPERATIONS:
        first.post(path, **params)
    before = first.world()
    first.stop()

    second = start()
    assert second.world() == before
    assert before[(UNTOUCHED, 0)]["step"] == 6
    assert before[(ADVANCED, 1)]["step"] == 9
    assert before[(RESTRICTED, 0)]["restricted"] is True
    # It goes on from there exactly as a simulator that was never restarted.
    assert second.post("/advance", steps=1) == {"global_steps": 7}
    never_restarted = TestClient(create_app(SimConfig()))
    for path, params in [*OPERATIONS, ("/advance", {"steps": "1"})]:
        assert never_restarted.simulate_post(f"/_sim{path}", params=params).status_code == 200
    for user, mode in before:
        expected = never_restarted.simulate_get(f"/_sim/users/{user}/{mode}").json
        assert second.truth(user, mode) == expected, (user, mode)
    second.stop()


def test_runs_of_global_steps_are_stored_as_one(start: Any, state_file: Path) -> None:
    sim = start()
    for _ in range(5):
        sim.post("/advance", steps=1)
    sim.post(f"/users/{ADVANCED}/advance", mode=0, steps=1)
    for _ in range(3):
        sim.post("/advance", steps=2)
    sim.stop()
    stored = json.loads(state_file.read_text())
    assert [steps for _seq, steps in stored["global"]] == [5, 6]
    assert len(stored["players"]) == 1


def test_reset_empties_the_stored_world(start: Any) -> None:
    first = start()
    first.post("/advance", steps=4)
    first.post(f"/users/{RESTRICTED}/restrict")
    first.post("/reset")
    first.stop()
    second = start()
    truth = second.truth(RESTRICTED, 0)
    assert (truth["step"], truth["restricted"]) == (0, False)
    second.stop()


def test_an_unreadable_state_file_stops_the_simulator(tmp_path: Path, state_file: Path) -> None:
    state_file.parent.mkdir(parents=True)
    state_file.write_text('{"version": 1, "seq": ')
    sim = Sim(state_file, tmp_path / "broken.log")
    sim.process.start()
    assert sim.process.wait(timeout=60) == 1
    assert f"cannot read the simulator state {state_file}" in sim.process.output()
