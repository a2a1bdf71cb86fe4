"""The spectree instance: OpenAPI document at /openapi.json, docs page at /docs.

The page and the Swagger UI files it loads are served by `api_shim.docs_assets`.

Resources decorate their responders with `spec.validate(...)`; `register(app)` must run
after every route is added, because the document is generated from the routes then. How
the decorated requests are parsed is `api_shim.query_parsing`'s part.
"""

from __future__ import annotations

from typing import Any

import falcon
import orjson
from spectree import SpecTree

from api_shim.docs_assets import add_docs_routes
from api_shim.models import ErrorBody
from api_shim.query_parsing import QueryParsingPlugin, reject_invalid_query
from api_shim.ratelimit import UNLIMITED

OPENAPI_PATH = "/openapi.json"

RATE_LIMIT_HEADERS = (
    "Every answer of a limited endpoint carries `RateLimit-Limit` (requests allowed per "
    "window), `RateLimit-Remaining` (requests left) and `RateLimit-Reset` (seconds until "
    "the window lets another request through)."
)
# The 429 of the endpoints with a per-client budget, as a spectree response entry.
TOO_MANY_REQUESTS = (
    ErrorBody,
    "Too many requests from this client (RATE_LIMIT_UPDATE for POST /update, "
    "RATE_LIMIT_READ shared by the read endpoints); `Retry-After` gives the seconds to "
    "wait. " + RATE_LIMIT_HEADERS,
)


class _OpenApiResource:
    rate_limit = UNLIMITED

    def __init__(self, document: dict[str, Any]) -> None:
        self._body = orjson.dumps(document)

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


class _RootPathsPlugin(QueryParsingPlugin):
    """Serve the document and page at /openapi.json and /docs instead of /apidoc/..."""

    def register_route(self, app: Any) -> None:
        app.add_route(OPENAPI_PATH, _OpenApiResource(self.spectree.spec))
        add_docs_routes(app, OPENAPI_PATH)


spec = SpecTree(
    backend=_RootPathsPlugin,
    title="osu!track API",
    description=(
        'A compatible rebuild of the osu!track API. Errors are JSON `{"error": ...}`; '
        "a 503 carries Retry-After. POST /update and the read endpoints are limited per "
        "client IP (a 429 with Retry-After when exceeded); the operations endpoints are "
        "not. " + RATE_LIMIT_HEADERS
    ),
    version="1.0.0",
    # Only decorated responders are documented (not these two routes, nor HEAD aliases).
    mode="strict",
    annotations=False,
    validation_error_status=400,
    validation_error_model=ErrorBody,
    before=reject_invalid_query,
    naming_strategy=lambda model: model.__name__,
)
