"""Small Falcon helpers shared by the resources: JSON bodies and JSON errors."""

from __future__ import annotations

from typing import Any

import falcon
import orjson


class JsonError(Exception):
    """Abort a request with ``status`` and the exact JSON ``body`` upstream would send."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def send_json(resp: falcon.Response, body: Any, status: int = 200) -> None:
    """Serialise ``body`` into ``resp`` as application/json."""
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(body)


def handle_json_error(
    req: falcon.Request, resp: falcon.Response, ex: JsonError, params: dict[str, Any]
) -> None:
    """Falcon error handler turning ``JsonError`` into its response."""
    send_json(resp, ex.body, ex.status)
    for name, value in ex.headers.items():
        resp.set_header(name, value)


def not_found_v2() -> JsonError:
    """The v2 answer for unknown or restricted users and unknown modes."""
    return JsonError(404, {"error": None})


def bad_request(message: str) -> JsonError:
    """A 400 with a readable message (control endpoints)."""
    return JsonError(400, {"error": message})
