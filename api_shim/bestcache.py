"""Per-process caches behind GET /bestplays, valid until beat's next rebuild of the table.

The `bestplays` table changes only when beat rebuilds it, and every rebuild writes a new
`bestplays_refreshes.refreshed_at`. So each process keeps, per mode, the table's rows
as serialized by Postgres (`TableCopy`), and answers any request the table covers by joining the
first `limit` serialized rows inside the window: no query beyond the one-row stamp lookup.
Windows the table does not cover are answered from the per-month top lists, with exact
parts from hiscores where the lists cannot tell (`api_shim.windows`); those bodies are kept
in a bounded LRU (`BodyCache`) keyed by the rebuild they were computed after (beat rebuilds
the table and the changed month lists in one transaction), so a new play shows up in them
within the same refresh period as in the table itself (README).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api_shim.params import DateWindow


def json_array(pieces: Sequence[bytes]) -> bytes:
    """`[a,b,...]` from already serialized JSON values."""
    return b"[" + b",".join(pieces) + b"]"


@dataclass(frozen=True)
class TableCopy:
    """One mode's precomputed table as of the rebuild at `refreshed_at`.

    `pieces[i]` is the JSON of the play at position i+1 and `times[i]` its score time.
    `complete` means the table holds every hiscore of the mode (fewer rows than its size).
    """

    refreshed_at: datetime
    complete: bool
    times: tuple[datetime, ...]
    pieces: tuple[bytes, ...]

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]]) -> TableCopy:
        """Rows of `queries.BESTPLAYS_TABLE` (at least one: the refresh row): refreshed_at,
        row_count, table_size, then each play's score time and JSON text."""
        refreshed_at, row_count, table_size = rows[0][0], rows[0][1], rows[0][2]
        plays = [row for row in rows if row[3] is not None]
        return cls(
            refreshed_at=refreshed_at,
            complete=row_count < table_size,
            times=tuple(row[3] for row in plays),
            pieces=tuple(row[4].encode() for row in plays),
        )

    def answer(self, window: DateWindow, limit: int) -> bytes | None:
        """The body for `window` and `limit`, or None when the table cannot tell.

        The table holds the mode's top plays in answer order, so its first `limit` rows
        inside the window are the answer when it holds every hiscore or has `limit` rows
        inside the window; with fewer, a play below the table's cut-off might belong.
        """
        if window.start is None and window.end is None:
            if limit <= len(self.pieces) or self.complete:
                return json_array(self.pieces[:limit])
            return None
        start, end = window.start, window.end
        chosen = [
            piece
            for moment, piece in zip(self.times, self.pieces, strict=True)
            if (start is None or moment >= start) and (end is None or moment <= end)
        ]
        if len(chosen) >= limit or self.complete:
            return json_array(chosen[:limit])
        return None


class BodyCache:
    """A thread-safe LRU of response bodies bounded by entry count and total bytes."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        """Keep `body` unless it alone exceeds the byte bound; evict the least recent."""
        if len(body) > self._max_bytes:
            return
        with self._lock:
            old = self._bodies.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._bodies[key] = body
            self._bytes += len(body)
            while len(self._bodies) > self._max_entries or self._bytes > self._max_bytes:
                _, evicted = self._bodies.popitem(last=False)
                self._bytes -= len(evicted)

    def __len__(self) -> int:
        return len(self._bodies)
