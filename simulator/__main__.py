"""``python -m simulator``: run the osu! API simulator on 127.0.0.1."""

from __future__ import annotations

import argparse
import sys

from simulator.config import SimConfig
from simulator.server import serve
from simulator.world import StateFileError


def parse_args(argv: list[str] | None = None) -> SimConfig:
    """Command-line flags -> SimConfig."""
    defaults = SimConfig()
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--latency-ms", type=int, default=defaults.latency_ms)
    parser.add_argument(
        "--auto-advance-seconds",
        type=float,
        default=defaults.auto_advance_seconds,
        help="advance every player one step this often (0 = never)",
    )
    parser.add_argument("--client-id", type=int, default=defaults.client_id)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument("--api-key", default=defaults.api_key)
    parser.add_argument("--cache-size", type=int, default=defaults.cache_size)
    parser.add_argument(
        "--state-file",
        default=defaults.state_file,
        help="keep the world (steps, per-player changes, restrictions) in this file, so a "
        "restart goes on where it stopped (default: in memory only)",
    )
    args = parser.parse_args(argv)
    return SimConfig(
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        auto_advance_seconds=args.auto_advance_seconds,
        client_id=args.client_id,
        client_secret=args.client_secret,
        api_key=args.api_key,
        cache_size=args.cache_size,
        state_file=args.state_file,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point; exits with the reason (status 1) when the state file cannot be read."""
    try:
        serve(parse_args(argv))
    except StateFileError as exc:
        sys.exit(f"simulator: {exc}")


if __name__ == "__main__":
    main()
