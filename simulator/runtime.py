"""The simulator's mutable runtime: world, faults, latency, request log and issued tokens."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

from simulator.config import SimConfig
from simulator.faults import FaultQueue
from simulator.requestlog import RequestLog
from simulator.world import World


class TokenStore:
    """Bearer tokens issued by ``/oauth/token``; they never expire inside the simulator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: set[str] = set()

    def issue(self) -> str:
        """A new random token."""
        token = secrets.token_urlsafe(48)
        with self._lock:
            self._tokens.add(token)
        return token

    def valid(self, authorization: str | None) -> bool:
        """True for an ``Authorization: Bearer <issued token>`` header value."""
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        with self._lock:
            return token.strip() in self._tokens


class Simulator:
    """Everything the resources share. ``reset`` keeps issued tokens valid on purpose, so
    clients holding a token do not start failing after a test resets the world."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        state_path = None if config.state_file is None else Path(config.state_file)
        self.world = World(cache_size=config.cache_size, state_path=state_path)
        self.faults = FaultQueue()
        self.log = RequestLog()
        self.tokens = TokenStore()
        self.latency_ms = config.latency_ms

    def reset(self) -> None:
        """Steps, restrictions, faults, latency and the request log back to start."""
        with self.world.lock:
            self.world.reset()
        self.faults.clear()
        self.log.clear()
        self.latency_ms = self.config.latency_ms
