"""The `Prefer` request header of RFC 7240, as POST /update honours it.

`respond-async` asks for 202 with the job at once; `wait=N` caps the wait (seconds). What
was honoured goes back in `Preference-Applied`. Preferences are hints: one that is not
understood, or malformed, is ignored rather than refused (RFC 7240, section 2).
"""

from __future__ import annotations

from dataclasses import dataclass

RESPOND_ASYNC = "respond-async"
WAIT = "wait"
# RFC 7240's delta-seconds; longer digit runs are not a number anyone means.
MAX_WAIT_DIGITS = 9


@dataclass(frozen=True)
class Preferences:
    """What a request's `Prefer` header asks of POST /update."""

    respond_async: bool = False
    wait: int | None = None


def parse_prefer(header: str | None) -> Preferences:
    """Read `Prefer` (several headers arrive joined by commas); the first `wait` counts."""
    if not header:
        return Preferences()
    respond_async = False
    wait: int | None = None
    for preference in header.split(","):
        # Parameters after ";" qualify a preference; neither of ours takes any.
        token, _, value = preference.split(";", 1)[0].partition("=")
        name = token.strip().lower()
        value = value.strip().strip('"')
        if name == RESPOND_ASYNC and not value:
            respond_async = True
        elif (
            name == WAIT
            and wait is None
            and value.isascii()
            and value.isdigit()
            and len(value) <= MAX_WAIT_DIGITS
        ):
            wait = int(value)
    return Preferences(respond_async, wait)


@dataclass(frozen=True)
class WaitChoice:
    """How long POST /update waits, and the `Preference-Applied` value (empty: none)."""

    seconds: float
    applied: str


def choose_wait(
    preferences: Preferences, wait_param: float | None, default: float, maximum: float
) -> WaitChoice:
    """The wait: the `wait` parameter when given, else `Prefer: wait`, else none at all
    for `respond-async`, else `default`. A `Prefer: wait` above `maximum` is honoured as
    `maximum` (and says so)."""
    applied = []
    if preferences.respond_async:
        applied.append(RESPOND_ASYNC)
    if wait_param is not None:
        seconds = wait_param
    elif preferences.wait is not None:
        seconds = float(min(preferences.wait, maximum))
        applied.append(f"{WAIT}={seconds:g}")
    elif preferences.respond_async:
        seconds = 0.0
    else:
        seconds = default
    return WaitChoice(seconds, ", ".join(applied))
