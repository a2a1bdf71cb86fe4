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
    """The osu! API answered 429, or our own upstream budget had no slot in time."""

    http_status = 503


class UpstreamAuthError(UpstreamError):
    """The osu! API refused our credentials (a configuration problem for the operator)."""
