"""HTTP to the osu! API: timeouts, retries with backoff, Retry-After, and the shared budget."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from typing import Any

import orjson
import redis
import requests

from osutrack import metrics
from worker.upstream.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from worker.upstream.limiter import UpstreamLimiter, current_priority

log = logging.getLogger(__name__)

USER_AGENT = "osutrack-api (+https://github.com/osutrack-api)"
# Statuses worth another try: the answer may differ a moment later.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# A Retry-After longer than this is not waited out inside a job: the job fails with 503
# and its Retry-After instead (the edge limiter's lockout is about 30 minutes).
MAX_INLINE_RETRY_AFTER_SECONDS = 10.0


class NotFound:
    """Sentinel answer: the API said 404 (v2's "user does not exist or is restricted")."""


NOT_FOUND = NotFound()


def _retry_after_seconds(response: requests.Response) -> int | None:
    raw = response.headers.get("Retry-After", "").strip()
    if raw.isdigit():
        return int(raw)
    return None


class UpstreamHttp:
    """Sends GET/POST requests to the osu! API and returns parsed JSON.

    Every attempt takes a slot from the shared `UpstreamLimiter` first. Timeouts, connection
    errors, 429 and 5xx are retried with exponential backoff and jitter (honouring
    Retry-After) up to `max_attempts`; then an `UpstreamError` is raised. A 200 whose body
    is not JSON is a failure too, never an empty answer.
    """

    def __init__(
        self,
        base_url: str,
        limiter: UpstreamLimiter,
        redis_client: redis.Redis,
        *,
        timeout_seconds: float,
        max_attempts: int,
        backoff_seconds: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._limiter = limiter
        self._redis = redis_client
        # Connect fast or not at all; the read timeout bounds a slow answer.
        self._timeout = (min(3.05, timeout_seconds), timeout_seconds)
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        self._session.headers["Accept"] = "application/json"
        # requests reads the proxy and CA bundle settings from the environment on every
        # request (about a millisecond of CPU each: it walks os.environ). They cannot change
        # while the process runs, so they are resolved once for the API's host and the
        # per-request lookup is turned off (which also skips .netrc: every request carries
        # its own credentials).
        resolved = self._session.merge_environment_settings(self.base_url, {}, None, None, None)
        self._session.trust_env = False
        self._session.proxies.update(resolved["proxies"])
        self._session.verify = resolved["verify"]
        if resolved["cert"] is not None:
            self._session.cert = resolved["cert"]

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        what: str,
        endpoint: str,
    ) -> Any:
        """The decoded JSON body, or `NOT_FOUND` for a 404.

        `what` names the call in errors and logs ("user", "best scores") and `endpoint` in
        metrics ("v2_user"); URLs are never logged because v1 carries the API key in its
        query string. A 429 pauses every worker process for its Retry-After.
        """
        last_error: UpstreamError | None = None
        for attempt in range(1, self._max_attempts + 1):
            slot = self._limiter.acquire(current_priority())
            try:
                slot.sent()
                response = self._session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=self._timeout,
                )
            except requests.Timeout:
                metrics.record_upstream(self._redis, endpoint, "timeout")
                last_error = UpstreamUnavailable(f"the osu! API timed out ({what})")
            except requests.RequestException:
                metrics.record_upstream(self._redis, endpoint, "connection_error")
                last_error = UpstreamUnavailable(f"the osu! API could not be reached ({what})")
            else:
                metrics.record_upstream(self._redis, endpoint, str(response.status_code))
                outcome = self._interpret(response, what)
                if isinstance(outcome, UpstreamRateLimited) and outcome.retry_after:
                    # The budget is per host, not per process: everyone waits it out.
                    self._limiter.pause_all(outcome.retry_after)
                if not isinstance(outcome, UpstreamError):
                    return outcome
                last_error = outcome
                if response.status_code not in TRANSIENT_STATUSES and not isinstance(
                    outcome, UpstreamUnavailable
                ):
                    raise outcome
            log.warning(
                "upstream %s failed (attempt %d/%d): %s",
                what,
                attempt,
                self._max_attempts,
                last_error,
            )
            if attempt == self._max_attempts:
                break
            delay = self._backoff * 2 ** (attempt - 1) + random.uniform(0, self._backoff)
            if last_error.retry_after is not None:
                if last_error.retry_after > MAX_INLINE_RETRY_AFTER_SECONDS:
                    raise last_error
                delay = max(delay, float(last_error.retry_after))
            time.sleep(delay)
        assert last_error is not None
        raise last_error

    def _interpret(self, response: requests.Response, what: str) -> Any:
        status = response.status_code
        if status == 404:
            return NOT_FOUND
        if status == 429:
            return UpstreamRateLimited(
                f"the osu! API is rate limiting us ({what})",
                retry_after=_retry_after_seconds(response) or 60,
            )
        if status in (401, 403):
            return UpstreamAuthError(f"the osu! API refused our credentials ({what})")
        if status >= 500:
            return UpstreamUnavailable(f"the osu! API answered {status} ({what})")
        if status != 200:
            return UpstreamUnavailable(f"the osu! API answered {status} ({what})")
        try:
            # orjson: a best-scores answer is ~130 kB, which the stdlib parses 5x slower.
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return UpstreamUnavailable(f"the osu! API sent a malformed body ({what})")
