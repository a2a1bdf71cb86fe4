"""How a request's query string becomes its `QueryModel`, under spectree's decorators.

Resources declare their query model with `spec.validate(query=...)`, which both documents
it and runs spectree's request validation. That validation is replaced here: requests
whose only model is a `QueryModel` are parsed by hand (`QueryModel.from_params`, the rules
of `api_shim.params`), and a broken parameter raises `ParamError`, which `api_shim.errors`
answers with the same 400 body `reject_invalid_query` writes for anything spectree still
validates. The response is not validated either way: every responder sets `resp.data` or
`resp.text` itself, which spectree leaves alone. This saves spectree's and pydantic's
work on every request while the document still comes from the same models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon
from pydantic import ValidationError
from spectree.plugins.falcon_plugin import FalconAsgiPlugin

from api_shim.models import PARAM_ERROR_TYPE, QueryModel
from api_shim.respond import send_error

GENERIC_QUERY_MESSAGE = "Invalid query parameters"


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


class QueryParsingPlugin(FalconAsgiPlugin):
    """spectree's Falcon ASGI plugin, parsing `QueryModel` queries by hand."""

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
