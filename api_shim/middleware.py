"""Request guards and CORS headers that apply to every route."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

import falcon
import falcon.asgi
import falcon.request

from api_shim.errors import ApiError

MAX_QUERY_STRING_LENGTH = 4096
READ_METHODS = frozenset({"GET", "HEAD"})


class Request(falcon.asgi.Request):
    """Falcon's ASGI request, with the query string as a WSGI server shows it.

    PEP 3333 hands the raw bytes over as latin-1 text, and every answer of the shim was
    defined on that view: `QueryStringGuard` checks that those bytes decode as UTF-8, and
    the parameters are parsed from the same text. Falcon's ASGI request decodes the bytes
    as UTF-8 instead, which would let raw UTF-8 through as other text than before (and
    fail on bytes that are not UTF-8), so the bytes are passed on in their latin-1 view.
    """

    def __init__(
        self,
        scope: dict[str, Any],
        receive: Any,
        first_event: Any = None,
        options: falcon.request.RequestOptions | None = None,
    ) -> None:
        raw: bytes = scope.get("query_string", b"")
        if not raw.isascii():
            scope = {**scope, "query_string": raw.decode("latin-1").encode()}
        super().__init__(scope, receive, first_event=first_event, options=options)


class QueryStringGuard:
    """Reject query strings no endpoint needs before anything parses them.

    Falcon decodes invalid UTF-8 leniently (to U+FFFD), which would make a garbled
    username look like a real one; refusing it keeps every such request a clear 400.
    """

    async def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = req.query_string
        if not query:
            return
        if len(query) > MAX_QUERY_STRING_LENGTH:
            raise ApiError(400, "Query string too long")
        if query.isascii() and "%" not in query:
            # Plain ASCII with no escapes decodes to itself: the usual request skips the
            # decoding below.
            return
        try:
            # The raw bytes as latin-1 text (PEP 3333), as `Request` passes them on.
            unquote_to_bytes(query.encode("latin-1")).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            raise ApiError(400, "Query string is not valid UTF-8") from None


class ReadOnlyCors:
    """`Access-Control-Allow-Origin: *` for reads, and preflights of reads, only.

    The read endpoints serve public data to any page; POST /update is left without CORS
    headers so browsers cannot trigger updates from third-party pages.
    """

    async def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        if req.method in READ_METHODS:
            resp.set_header("Access-Control-Allow-Origin", "*")
            return
        if req.method != "OPTIONS" or resource is None:
            return
        allowed = {method.strip() for method in (resp.get_header("Allow") or "").split(",")}
        requested = (req.get_header("Access-Control-Request-Method") or "GET").upper()
        if "GET" not in allowed or requested not in READ_METHODS:
            return
        resp.set_header("Access-Control-Allow-Origin", "*")
        resp.set_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        requested_headers = req.get_header("Access-Control-Request-Headers")
        if requested_headers:
            resp.set_header("Access-Control-Allow-Headers", requested_headers)
        resp.set_header("Access-Control-Max-Age", "86400")
