"""HTTP to the osu! API: timeouts, Retry-After, failures by kind, and the shared budget."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
import redis
import requests

from osutrack import metrics, upstream_status
from worker.upstream.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from worker.upstream.limiter import UpstreamLimiter, current_priority

log = logging.getLogger(__name__)

USER_AGENT = "osutrack-api (+https://github.com/osutrack-api)"


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

    Every request takes a slot from the shared `UpstreamLimiter` first. A 200 whose body is
    not JSON is a failure too, never an empty answer.
    """

    def __init__(
        self,
        base_url: str,
        limiter: UpstreamLimiter,
        redis_client: redis.Redis,
        *,
        timeout_seconds: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._limiter = limiter
        self._redis = redis_client
        # Connect fast or not at all; the read timeout bounds a slow answer.
        self._timeout = (min(3.05, timeout_seconds), timeout_seconds)
        # Whether this process may have to clear a recorded credentials failure: every
        # process starts unsure, so a fixed configuration clears the record at once.
        self._auth_failure_seen = True
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

        One attempt: a failure is raised as an `UpstreamError` at once, and the job (or the
        refresh batch) that asked is retried later, from the queue, without holding a
        worker process while it waits (`errors.is_transient` says which failures are worth
        it). `what` names the call in errors and logs ("user", "best scores") and
        `endpoint` in metrics ("v2_user"); URLs are never logged because v1 carries the API
        key in its query string. A 429 pauses every worker process for its Retry-After.
        """
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
            raise UpstreamUnavailable(f"the osu! API timed out ({what})") from None
        except requests.RequestException:
            metrics.record_upstream(self._redis, endpoint, "connection_error")
            raise UpstreamUnavailable(f"the osu! API could not be reached ({what})") from None
        metrics.record_upstream(self._redis, endpoint, str(response.status_code))
        outcome = self._interpret(response, what)
        if isinstance(outcome, UpstreamRateLimited) and outcome.retry_after:
            # The budget is per host, not per process: everyone waits it out.
            self._limiter.pause_all(outcome.retry_after)
        if isinstance(outcome, UpstreamAuthError):
            log.error(
                "OSU CREDENTIALS REFUSED: %s; check OSU_CLIENT_ID/OSU_CLIENT_SECRET or OSU_API_KEY",
                outcome,
            )
            upstream_status.record_auth_failure(self._redis, str(outcome))
            self._auth_failure_seen = True
        if isinstance(outcome, UpstreamError):
            log.warning("upstream %s failed: %s", what, outcome)
            raise outcome
        if self._auth_failure_seen:
            upstream_status.clear_auth_failure(self._redis)
            self._auth_failure_seen = False
        return outcome

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
            return UpstreamRejected(f"the osu! API answered {status} ({what})")
        try:
            # orjson: a best-scores answer is ~130 kB, which the stdlib parses 5x slower.
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return UpstreamUnavailable(f"the osu! API sent a malformed body ({what})")
