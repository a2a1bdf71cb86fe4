"""A thin client for the osu! API simulator's control endpoints.

The simulator (`python -m simulator`) serves the osu! v1/v2 API to the workers and, under
`/_sim/`, lets tests move simulated players forward, read the ground truth, inject faults
and see what the workers requested (simulator/control.py is the reference for paths and
bodies; this module only spells them once for the tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devstack.commands import simulator_command
from devstack.procs import free_port, port_open
from support.processes import ManagedProcess

CONTROL_PREFIX = "/_sim"
TIMEOUT_SECONDS = 10.0


@dataclass
class SimulatorClient:
    """Control client for a simulator at `base_url` (also the workers' OSU_API_BASE_URL)."""

    base_url: str
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(
            method, f"{self.base_url}{CONTROL_PREFIX}{path}", timeout=TIMEOUT_SECONDS, **kwargs
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def advance(
        self,
        user: int,
        mode: int,
        steps: int = 1,
        new_top_plays: int | None = None,
    ) -> Any:
        """Let `user` play `steps` steps in `mode`; the last adds exactly `new_top_plays`
        new top-100 plays when given. Returns the new ground truth."""
        params: dict[str, int] = {"mode": mode, "steps": steps}
        if new_top_plays is not None:
            params["new_top_plays"] = new_top_plays
        return self._call("POST", f"/users/{user}/advance", params=params)

    def truth(self, user: int, mode: int) -> Any:
        """The simulator's current true stats and top plays of `user` in `mode`."""
        return self._call("GET", f"/users/{user}/{mode}")

    def add_fault(self, **fault: Any) -> Any:
        """Queue one fault; the keyword arguments are the JSON body `/_sim/faults` takes."""
        return self._call("POST", "/faults", json=fault)

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._call("DELETE", "/faults")

    def requests_log(self) -> list[dict[str, Any]]:
        """The upstream requests the simulator has served, oldest first."""
        log: list[dict[str, Any]] = self._call("GET", "/requests")["requests"]
        return log

    def reset(self) -> None:
        """Players, faults and the request log back to their start state."""
        self._call("POST", "/reset")


@dataclass
class RunningSimulator:
    """A simulator process and the base URL it serves."""

    process: ManagedProcess
    base_url: str


def start_simulator(env: Mapping[str, str], log_path: Path) -> RunningSimulator:
    """Start `python -m simulator` on a free port; ready once the port accepts connections."""
    port = free_port()
    process = ManagedProcess("simulator", simulator_command("127.0.0.1", port), env, log_path)
    process.start(lambda _proc: port_open("127.0.0.1", port))
    return RunningSimulator(process, f"http://127.0.0.1:{port}")
