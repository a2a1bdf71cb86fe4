"""Defensive reading of upstream JSON: hostile or broken values are refused, not stored."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from worker.upstream.errors import UpstreamUnavailable

# Larger than any real osu! counter (total scores reach about 1e11) yet far below BIGINT's
# range, so an absurd value is refused instead of overflowing a column.
MAX_COUNTER = 10**15
MAX_PP = 100_000.0
# Ids are not counters: any positive BIGINT is a valid id.
MAX_ID = 2**63 - 1


class MalformedUpstream(UpstreamUnavailable):
    """The osu! API sent data that does not have the shape or range it must have."""


def field(obj: Any, name: str) -> Any:
    """`obj[name]` of a JSON object, refusing a body that is not an object or lacks it."""
    # Fast path first: this runs about 2,000 times per update (100 plays).
    if type(obj) is dict and name in obj:
        return obj[name]
    if not isinstance(obj, dict) or name not in obj:
        raise MalformedUpstream(f"the osu! API sent a body without `{name}`")
    return obj[name]


def as_id(value: Any, name: str) -> int:
    """A positive id that fits a BIGINT column."""
    number = as_int(value, name, maximum=MAX_ID)
    if number == 0:
        raise MalformedUpstream(f"the osu! API sent a zero `{name}`")
    return number


def as_int(value: Any, name: str, *, default: int | None = None, maximum: int = MAX_COUNTER) -> int:
    """A non-negative integer from a JSON number or decimal string (v1 sends strings)."""
    # Fast path for what a JSON parser gives for a valid field (bool is a subclass of int,
    # so `type(...) is int` already refuses it); everything else takes the full checks.
    if type(value) is int and 0 <= value <= maximum:
        return value
    if value is None and default is not None:
        return default
    if isinstance(value, bool):
        raise MalformedUpstream(f"the osu! API sent a non-number `{name}`")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise MalformedUpstream(f"the osu! API sent a non-integer `{name}`")
    if not 0 <= number <= maximum:
        raise MalformedUpstream(f"the osu! API sent an out-of-range `{name}`")
    return number


def as_float(value: Any, name: str, *, maximum: float = float(MAX_COUNTER)) -> float:
    """A finite non-negative float from a JSON number or numeric string."""
    if isinstance(value, bool):
        raise MalformedUpstream(f"the osu! API sent a non-number `{name}`")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MalformedUpstream(f"the osu! API sent a non-number `{name}`") from None
    if not math.isfinite(number) or not 0.0 <= number <= maximum:
        raise MalformedUpstream(f"the osu! API sent an out-of-range `{name}`")
    return number


def as_text(value: Any, name: str, *, max_length: int = 64) -> str:
    """A short, non-empty string (usernames, rank letters)."""
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise MalformedUpstream(f"the osu! API sent an invalid `{name}`")
    return value


def as_time(value: Any, name: str) -> datetime:
    """An aware UTC datetime from v2 ISO 8601 (`Z` or `+00:00`) or v1 `YYYY-MM-DD HH:MM:SS`.

    v1 dates carry no zone and have been UTC since 2018-09-27 (shared notes, osu-api 1.6).
    """
    if not isinstance(value, str):
        raise MalformedUpstream(f"the osu! API sent an invalid `{name}`")
    text = value.strip()
    try:
        if "T" in text:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        else:
            moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise MalformedUpstream(f"the osu! API sent an invalid `{name}`") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
