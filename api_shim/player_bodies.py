"""The bodies of the per-player reads (/stats_history, /hiscores, /peak), built by Postgres.

One statement answers the player's read version and the whole JSON body
(`queries.json_body`), which passes through as bytes: no Python per row. A body holding a
float that Postgres prints unlike the original (`js_json.SHORTEST_RANGE`) is printed again
from its rows in Python. With an If-None-Match, the version alone is read first: when the
client holds the answer, no body is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from api_shim import http_cache, js_json, queries
from api_shim.read_connections import Prepared, Reader


@dataclass(frozen=True)
class PlayerRead:
    """The statements of one per-player read, and its body when nothing is stored."""

    name: str
    version: Prepared
    body: Prepared
    rows: Prepared
    keys: tuple[str, ...]
    empty: bytes = b"[]"


def cached_body(
    read: PlayerRead,
    reader: Reader,
    params: Sequence[Any],
    if_none_match: str | None,
) -> http_cache.CachedBody:
    """The answer of `read` for `params` (user id and mode first, then the rest).

    A client sending a tag that no longer matches pays the version lookup and then the
    body statement (which reads the version again, with the body it names). A body
    printed in Python is read by a second statement: a write between the two can label
    the newer rows with the older version, which only costs that client a 200 later.
    """
    user_id, mode = params[0], params[1]
    if if_none_match:
        version = reader.fetch(read.version, (user_id, mode))[0][0]
        validator = _validator(read, version, params)
        if http_cache.matches(if_none_match, validator.etag):
            return http_cache.CachedBody(validator, None)
    version, body, needs_python = reader.fetch(read.body, params)[0]
    if needs_python:
        printed = js_json.dumps_rows(read.keys, reader.fetch(read.rows, params))
    else:
        printed = body.encode()
    if printed == b"[]":
        printed = read.empty
    return http_cache.CachedBody(_validator(read, version, params), printed)


def _validator(read: PlayerRead, version: int, params: Sequence[Any]) -> http_cache.Validator:
    return http_cache.Validator(http_cache.etag(version, read.name, *params), http_cache.PER_PLAYER)


STATS_HISTORY = PlayerRead(
    "stats_history",
    queries.STATS_HISTORY_VERSION,
    queries.STATS_HISTORY_BODY,
    queries.STATS_HISTORY,
    queries.SNAPSHOT_KEYS,
)
HISCORES = PlayerRead(
    "hiscores",
    queries.USER_HISCORES_VERSION,
    queries.USER_HISCORES_BODY,
    queries.USER_HISCORES,
    queries.HISCORE_KEYS,
)
# /peak is always a one-element array, with nulls when nothing is recorded.
NO_PEAK = dict.fromkeys(queries.PEAK_KEYS)
PEAK = PlayerRead(
    "peak",
    queries.PEAK_VERSION,
    queries.PEAK_BODY,
    queries.PEAK,
    queries.PEAK_KEYS,
    empty=orjson.dumps([NO_PEAK]),
)
