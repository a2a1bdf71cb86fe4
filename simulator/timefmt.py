"""Simulated clock and the date formats of the two API versions.

The simulated "now" of a player at step ``n`` is ``BASE_NOW + n days``; it never follows the
wall clock, so every response is reproducible.
"""

from __future__ import annotations

from datetime import UTC, datetime

BASE_NOW = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
DAY = 86_400


def now_at(step: int) -> int:
    """Unix time of the simulated "now" at ``step``."""
    return BASE_NOW + step * DAY


def v1_date(ts: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` in UTC without zone, as API v1 writes dates."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def v2_score_date(ts: int) -> str:
    """ISO-8601 with ``Z``, as v2 writes score timestamps."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def v2_user_date(ts: int) -> str:
    """ISO-8601 with ``+00:00``, as v2 writes user timestamps such as ``join_date``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_v1_date(text: str) -> int:
    """Unix time of a v1 ``YYYY-MM-DD HH:MM:SS`` UTC date."""
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp())


def format_number(value: float) -> str:
    """Shortest decimal text for ``value`` without a trailing ``.0`` (``"67.5349"``, ``"0"``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text
