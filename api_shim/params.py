"""Query-parameter rules shared by every endpoint: pure functions, no I/O.

Each parser takes the raw value Falcon parsed from the query string (`None` when absent, a
`str` when given once, a `list[str]` when repeated) and returns the typed value or raises
`ParamError` carrying the exact client-facing message. Endpoints call them in the order the
original API checked its parameters (user, then mode, then the rest), so the first broken
parameter names the error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

RawParam = str | list[str] | None

MAX_USER_ID = 9223372036854775807
MAX_LIMIT = 10000
DEFAULT_LIMIT = 100
MAX_USERNAME_LENGTH = 64

USER_MESSAGE = (
    "Invalid or missing `user` param; must be a valid osu! user ID (default) or username "
    "(if `userMode` is set to `username`)"
)
MODE_MESSAGE = (
    "Invalid or missing `mode` param; must be a valid osu! game mode; "
    "0=osu!, 1=taiko, 2=ctb, 3=mania"
)
LIMIT_MESSAGE = (
    "Invalid `limit` param; must be a non-zero integer greater than 0 and less than or "
    "equal to 10000"
)
USER_MODE_MESSAGE = "Invalid `userMode` param; must be `id` or `username`"
RANGE_MESSAGE = "Invalid date range: `from` is after `to`"

# ASCII digits only: `\d` would also accept other scripts' digits, which int() converts.
_DIGITS = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# An instant must carry at least hours and minutes, so that compact forms such as
# `20200101` (which fromisoformat also reads) are not mistaken for a start-of-day bound.
_INSTANT_PREFIX = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")
_END_OF_DAY = time(23, 59, 59, 999999)

USER_MODE_ID = "id"
USER_MODE_USERNAME = "username"


class ParamError(ValueError):
    """A query parameter breaks its rule; `str(error)` is the message for the client."""


@dataclass(frozen=True)
class DateWindow:
    """An inclusive UTC time range; a `None` end is unbounded."""

    start: datetime | None = None
    end: datetime | None = None


def date_message(name: str) -> str:
    return f"Invalid `{name}` param; must be a date like 2020-01-01 or an ISO 8601 instant"


def wait_message(maximum: float) -> str:
    return f"Invalid `wait` param; must be a number of seconds from 0 to {maximum:g}"


def _single(raw: RawParam) -> str | None:
    """The value of a parameter given at most once; None when absent or repeated."""
    return raw if isinstance(raw, str) else None


def _bounded_int(text: str, maximum: int) -> int | None:
    """`text` as an int in 1..maximum, or None; never converts absurdly long digit runs."""
    if not _DIGITS.fullmatch(text):
        return None
    significant = text.lstrip("0")
    if not significant or len(significant) > len(str(maximum)):
        return None
    value = int(significant)
    return value if value <= maximum else None


def parse_user_id(raw: RawParam) -> int:
    """`user` as an osu! user id: one value of ASCII digits in 1..2^63-1 (whitespace ok)."""
    text = _single(raw)
    value = None if text is None else _bounded_int(text.strip(), MAX_USER_ID)
    if value is None:
        raise ParamError(USER_MESSAGE)
    return value


def parse_username(raw: RawParam) -> str:
    """`user` as a username (`userMode=username`): one value of 1-64 printable characters.

    Control characters are refused: no osu! name has them, and a NUL cannot even be sent
    to Postgres as a parameter.
    """
    text = _single(raw)
    name = None if text is None else text.strip()
    if not name or len(name) > MAX_USERNAME_LENGTH or not name.isprintable():
        raise ParamError(USER_MESSAGE)
    return name


def parse_mode(raw: RawParam, default: int | None = None) -> int:
    """`mode`: exactly one of `0`..`3`; `default` (when given) applies only if absent."""
    if raw is None and default is not None:
        return default
    text = _single(raw)
    if text is None or text not in ("0", "1", "2", "3"):
        raise ParamError(MODE_MESSAGE)
    return int(text)


def parse_user_mode(raw: RawParam) -> str:
    """`userMode`: absent or `id` selects ids, `username` selects names."""
    if raw is None:
        return USER_MODE_ID
    if raw in (USER_MODE_ID, USER_MODE_USERNAME):
        return str(raw)
    raise ParamError(USER_MODE_MESSAGE)


def parse_row_limit(raw: RawParam) -> int:
    """`limit` for /bestplays: 100 when absent, else an integer in 1..10000."""
    if raw is None:
        return DEFAULT_LIMIT
    text = _single(raw)
    value = None if text is None else _bounded_int(text.strip(), MAX_LIMIT)
    if value is None:
        raise ParamError(LIMIT_MESSAGE)
    return value


def parse_wait(raw: RawParam, default: float, maximum: float) -> float:
    """`wait` for POST /update: seconds as a plain decimal in 0..maximum."""
    if raw is None:
        return default
    text = _single(raw)
    text = None if text is None else text.strip()
    if text is None or not _DECIMAL.fullmatch(text) or len(text) > 32:
        raise ParamError(wait_message(maximum))
    value = float(text)
    if value > maximum:
        raise ParamError(wait_message(maximum))
    return value


def parse_bound(raw: RawParam, name: str, *, end_of_day: bool) -> datetime | None:
    """`from`/`to`: a UTC date or an ISO 8601 instant; None when absent.

    A date alone means the start of that UTC day, or with `end_of_day` its last
    microsecond, so `to=2020-01-08` includes everything on January 8. An instant without
    a zone is UTC. The result is always an aware UTC datetime.
    """
    if raw is None:
        return None
    text = _single(raw)
    text = None if text is None else text.strip()
    try:
        if text is None:
            raise ValueError(name)
        if _DATE_ONLY.fullmatch(text):
            day = date.fromisoformat(text)
            return datetime.combine(day, _END_OF_DAY if end_of_day else time(), UTC)
        if not _INSTANT_PREFIX.match(text):
            raise ValueError(text)
        if text[-1] in "Zz":
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    # OverflowError: converting an offset near year 1 or 9999 to UTC leaves the range.
    except (ValueError, OverflowError):
        raise ParamError(date_message(name)) from None


def parse_window(raw_from: RawParam, raw_to: RawParam) -> DateWindow:
    """`from` and `to` together, at the precision times are printed; `from` later than
    `to` is an error.

    Stored times keep microseconds but are printed at whole seconds, so a row is in the
    window when its printed time is: `from` is rounded up to a whole second and `to` is
    stretched to the end of its second. `from=to=<a printed time>` then finds that row,
    and `from=...:01.500Z` leaves out a row printed `...:01.000Z`. Moving the bounds rather
    than truncating the column keeps the range scans on the time indexes.
    """
    start = parse_bound(raw_from, "from", end_of_day=False)
    end = parse_bound(raw_to, "to", end_of_day=True)
    if start is not None and end is not None and start > end:
        raise ParamError(RANGE_MESSAGE)
    return DateWindow(_up_to_whole_second(start), _to_end_of_second(end))


def _up_to_whole_second(moment: datetime | None) -> datetime | None:
    if moment is None or moment.microsecond == 0:
        return moment
    try:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    except OverflowError:
        # No second follows the last one of year 9999; its last microsecond is the closest.
        return moment.replace(microsecond=999999)


def _to_end_of_second(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(microsecond=999999)
