"""The spectree instance: OpenAPI document at /openapi.json, docs page at /docs.

The page and the Swagger UI files it loads are served by `api_shim.docs_assets`.

Resources decorate their responders with `spec.validate(...)`; `register(app)` must run
after every route is added, because the document is generated from the routes then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon
import orjson
from pydantic import ValidationError
from spectree import SpecTree
from spectree.plugins.falcon_plugin import FalconAsgiPlugin

from api_shim.docs_assets import add_docs_routes
from api_shim.models import PARAM_ERROR_TYPE, ErrorBody, QueryModel
from api_shim.respond import send_error

OPENAPI_PATH = "/openapi.json"
GENERIC_QUERY_MESSAGE = "Invalid query parameters"

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


def reject_invalid_query(
    req: falcon.Request,
    resp: falcon.Response,
    error: Exception | None,
    _instance: Any,
    _adapter: Any,
) -> None:
    """spectree's before hook: replace its 422 error list with our 400 `{"error": ...}`."""
    if error is None:
        return
    message = GENERIC_QUERY_MESSAGE
    if isinstance(error, ValidationError):
        first = error.errors(include_url=False)[0]
        if first["type"] == PARAM_ERROR_TYPE:
            message = first["msg"]
    send_error(resp, 400, message)


class _OpenApiResource:
    def __init__(self, document: dict[str, Any]) -> None:
        self._body = orjson.dumps(document)

    async def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._body


class _RootPathsPlugin(FalconAsgiPlugin):
    """Serve the document and page at /openapi.json and /docs instead of /apidoc/...

    Requests whose only model is a `QueryModel` skip spectree's validation: the query is
    parsed by hand (`QueryModel.from_params`), and a broken parameter raises `ParamError`,
    which `api_shim.errors` answers with the same 400 body the before hook would write.
    The response is not validated either way: every responder sets `resp.data` or
    `resp.text` itself, which spectree leaves alone. This saves spectree's and pydantic's
    work on every request while the document still comes from the same models.
    """

    def register_route(self, app: Any) -> None:
        app.add_route(OPENAPI_PATH, _OpenApiResource(self.spectree.spec))
        add_docs_routes(app, OPENAPI_PATH)

    async def validate(
        self,
        func: Callable[..., Any],
        query: Any,
        json: Any,
        form: Any,
        headers: Any,
        cookies: Any,
        resp: Any,
        before: Any,
        after: Any,
        validation_error_status: int,
        skip_validation: bool,
        force_resp_serialize: bool,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        by_hand = (
            isinstance(query, type)
            and issubclass(query, QueryModel)
            and json is None
            and form is None
            and headers is None
            and cookies is None
        )
        if not by_hand:
            return await super().validate(
                func,
                query,
                json,
                form,
                headers,
                cookies,
                resp,
                before,
                after,
                validation_error_status,
                skip_validation,
                force_resp_serialize,
                *args,
                **kwargs,
            )
        # Falcon responders are called as (resource, req, resp).
        req = args[1]
        req.context.query = query.from_params(req.params)
        return await func(*args, **kwargs)


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
