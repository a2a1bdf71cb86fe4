"""Simulator settings (command-line flags of ``python -m simulator``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Where to listen and which credentials the fake upstream accepts."""

    host: str = "127.0.0.1"
    port: int = 8090
    latency_ms: int = 0
    auto_advance_seconds: float = 0.0
    client_id: int = 1
    client_secret: str = "simulator-secret"  # noqa: S105 - a fixed test credential
    api_key: str = "0123456789abcdef0123456789abcdef01234567"
    # Materialised (user, mode) states kept in memory; evicted ones are recomputed.
    cache_size: int = 3000
    # Where the world is kept across restarts; None keeps it in memory only.
    state_file: str | None = None
