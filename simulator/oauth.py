"""``POST /oauth/token``: the client-credentials grant of osu! API v2."""

from __future__ import annotations

from urllib.parse import parse_qs

import falcon
import orjson

from simulator.responses import JsonError, send_json
from simulator.runtime import Simulator

TOKEN_LIFETIME = 86_400
_INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": "Client authentication failed",
    "message": "Client authentication failed",
}


def _form(req: falcon.Request) -> dict[str, str]:
    raw = req.bounded_stream.read()
    if req.content_type and req.content_type.startswith(falcon.MEDIA_JSON):
        try:
            data = orjson.loads(raw or b"{}")
        except orjson.JSONDecodeError:
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


class OAuthToken:
    """Issues bearer tokens for the configured client id and secret."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Token for valid credentials; 401 ``invalid_client`` otherwise."""
        form = _form(req)
        config = self._sim.config
        if (
            form.get("client_id") != str(config.client_id)
            or form.get("client_secret") != config.client_secret
        ):
            raise JsonError(401, _INVALID_CLIENT)
        if form.get("grant_type") != "client_credentials":
            raise JsonError(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "The authorization grant type is not supported.",
                    "message": "The authorization grant type is not supported.",
                },
            )
        if "public" not in form.get("scope", "").split():
            raise JsonError(
                400,
                {
                    "error": "invalid_scope",
                    "error_description": "The requested scope is invalid.",
                    "message": "The requested scope is invalid.",
                },
            )
        send_json(
            resp,
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "access_token": self._sim.tokens.issue(),
            },
        )
