"""Failures talking to the osu! API, each with the status the shim answers for it."""

from __future__ import annotations


class UpstreamError(Exception):
    """The osu! API could not give an answer we can trust.

    Never means "the user does not exist": a failure is reported as a failed job with
    `http_status` (502 or 503), so a transient outage is never recorded as a missing user.
    The message is safe to show to clients: it never contains a key or token.
    """

    http_status = 502

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamUnavailable(UpstreamError):
    """Timeouts, connection errors, 5xx answers or bodies that are not what was asked for."""


class UpstreamRateLimited(UpstreamError):
    """The osu! API answered 429: it may answer once its Retry-After has passed."""

    http_status = 503


class BudgetExhausted(UpstreamRateLimited):
    """Our own upstream budget had no slot in time. Not a failure of osu!: an update job
    that meets it goes back to its place in the queue."""


class UpstreamAuthError(UpstreamError):
    """The osu! API refused our credentials (a configuration problem for the operator):
    retrying cannot change the answer."""


class UpstreamRejected(UpstreamError):
    """The osu! API refused the request itself (a 4xx other than 401, 403, 404 and 429):
    retrying the same request cannot change the answer."""


def is_transient(error: UpstreamError) -> bool:
    """True when the same request may well succeed a moment later (timeouts, connection
    errors, 5xx, malformed bodies, 429, no budget slot yet)."""
    return isinstance(error, UpstreamUnavailable | UpstreamRateLimited)
