"""The osu! API v2 client-credentials token, shared by every worker through Redis."""

from __future__ import annotations

import redis

from worker.upstream.errors import UpstreamAuthError, UpstreamUnavailable
from worker.upstream.http import NOT_FOUND, UpstreamHttp

TOKEN_KEY = "osutrack:osu:token"  # noqa: S105 - a Redis key name, not a secret
TOKEN_LOCK_KEY = "osutrack:osu:token:lock"  # noqa: S105 - a Redis key name
# Refresh well before expiry so a token never dies between being read and being used.
EXPIRY_MARGIN_SECONDS = 300


class TokenProvider:
    """Hands out a valid bearer token, fetching a new one at most once across the fleet.

    The token lives in Redis with a TTL shorter than its lifetime. When it is missing, one
    process takes a lock and fetches it while the others wait for it, so a fleet restart
    costs one token request, not one per process (the token endpoint has its own throttle).
    """

    def __init__(
        self, http: UpstreamHttp, redis_client: redis.Redis, client_id: str, client_secret: str
    ) -> None:
        self._http = http
        self._redis = redis_client
        self._client_id = client_id
        self._client_secret = client_secret

    def token(self) -> str:
        """A bearer token that is valid for at least a few minutes."""
        cached = self._redis.get(TOKEN_KEY)
        if cached:
            return str(cached)
        with self._redis.lock(TOKEN_LOCK_KEY, timeout=60, blocking_timeout=60):
            cached = self._redis.get(TOKEN_KEY)
            if cached:
                return str(cached)
            return self._fetch()

    def invalidate(self, stale_token: str) -> None:
        """Drop the cached token after the API refused it (unless another process already did)."""
        if self._redis.get(TOKEN_KEY) == stale_token:
            self._redis.delete(TOKEN_KEY)

    def _fetch(self) -> str:
        body = self._http.request_json(
            "POST",
            "/oauth/token",
            data={
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "grant_type": "client_credentials",
                "scope": "public",
            },
            what="OAuth token",
            endpoint="oauth_token",
        )
        if body is NOT_FOUND:
            raise UpstreamUnavailable("the osu! OAuth endpoint was not found")
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise UpstreamAuthError("the osu! OAuth endpoint sent no access token")
        token: str = body["access_token"]
        expires_in = body.get("expires_in")
        lifetime = int(expires_in) if isinstance(expires_in, int | float) else 3600
        self._redis.set(TOKEN_KEY, token, ex=max(lifetime - EXPIRY_MARGIN_SECONDS, 30))
        return token
