"""Writing JSON bodies: errors and every response but the read bodies (`api_shim.http_cache`)."""

from __future__ import annotations

from typing import Any

import falcon
import orjson

RETRY_AFTER_SECONDS = 5


def send_json(resp: falcon.Response, body: Any, status: int = 200) -> None:
    """Serialize `body` with orjson (dict key order is kept) as the response."""
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.media = None
    resp.data = orjson.dumps(body)


def send_error(
    resp: falcon.Response,
    status: int,
    message: str,
    *,
    retry_after: int | None = None,
    **extra: Any,
) -> None:
    """Answer `{"error": message, **extra}` with `status` and an optional Retry-After."""
    if retry_after is not None:
        resp.set_header("Retry-After", str(retry_after))
    send_json(resp, {"error": message, **extra}, status)
