"""Cost of building one per-player body, before and after issue 14, on a seeded database.

For random users, times each way of answering /stats_history, /hiscores and /peak on one
connection: the rows fetched and serialized in Python (rows -> dicts -> orjson, as before
issue 14) and the body built by Postgres (`api_shim.player_bodies`), plus the read-version
lookup that answers a 304. Reports the median wall time and the API process's CPU time per
call (`time.process_time`: what a request costs the serving process, whatever Postgres
spends), so the figures hold on a loaded machine better than a load test's.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable

import orjson

from api_shim import player_bodies
from api_shim.read_connections import Reader


def _rows_body(reader: Reader, read: player_bodies.PlayerRead, params: tuple[object, ...]) -> bytes:
    rows = reader.fetch(read.rows, params)
    if read is player_bodies.PEAK:
        return orjson.dumps([dict(zip(read.keys, rows[0], strict=True))] if rows else [])
    return orjson.dumps([dict(zip(read.keys, row, strict=True)) for row in rows])


def _time(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls) * 1e6, statistics.mean(cpus) * 1e6


def _ways(
    reader: Reader,
    read: player_bodies.PlayerRead,
    rng: random.Random,
    users: int,
    tail: tuple[str, ...],
) -> dict[str, Callable[[], object]]:
    def params() -> tuple[object, ...]:
        return (rng.randint(1, users), 0, *tail)

    def before() -> object:
        return _rows_body(reader, read, params())

    def after() -> object:
        return player_bodies.cached_body(read, reader, params(), None)

    def not_modified() -> object:
        return player_bodies.cached_body(read, reader, params(), "*")

    return {
        "rows -> orjson (before)": before,
        "body from Postgres (after)": after,
        "304: version lookup only": not_modified,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args(argv)
    reader = Reader(args.database_url, 10_000)
    rng = random.Random(14)
    everything = ("-infinity", "infinity")
    print("| endpoint | way | median wall (us) | API CPU per call (us) |")
    print("|---|---|---:|---:|")
    for read in (player_bodies.STATS_HISTORY, player_bodies.HISCORES, player_bodies.PEAK):
        tail = () if read is player_bodies.PEAK else everything
        for way, call in _ways(reader, read, rng, args.users, tail).items():
            _time(call, 100)
            wall, cpu = _time(call, args.repeat)
            print(f"| /{read.name} | {way} | {wall:,.0f} | {cpu:,.0f} |")
    reader.discard()
    return 0


if __name__ == "__main__":
    sys.exit(main())
