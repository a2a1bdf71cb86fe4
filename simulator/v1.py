"""API v1 resources: ``/api/get_user`` and ``/api/get_user_best``."""

from __future__ import annotations

import falcon

from simulator.identity import identity, resolve_username
from simulator.responses import JsonError, send_json
from simulator.runtime import Simulator
from simulator.v1_shapes import v1_score, v1_user

V1_DEFAULT_LIMIT = 10
V1_MAX_LIMIT = 100
_BAD_KEY = {"error": "Please provide a valid API key."}


def _lookup(sim: Simulator, req: falcon.Request) -> tuple[int, int] | None:
    """(user_id, mode) for the ``u``/``type``/``m`` params, None if nobody matches."""
    if req.get_param("k") != sim.config.api_key:
        raise JsonError(401, _BAD_KEY)
    if req.context.get("empty_user"):
        return None
    mode_text = req.get_param("m") or "0"
    if mode_text not in ("0", "1", "2", "3"):
        return None
    text = (req.get_param("u") or "").strip()
    kind = req.get_param("type")
    user_id: int | None
    if kind == "id" or (kind != "string" and text.isdigit()):
        user_id = int(text) if text.isdigit() else None
    else:
        user_id = resolve_username(text)
    if user_id is None or not sim.world.exists(user_id):
        return None
    return user_id, int(mode_text)


class GetUser:
    """``[user]`` or ``[]`` (HTTP 200) for unknown and restricted users."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Serve one v1 user row."""
        found = _lookup(self._sim, req)
        if found is None:
            send_json(resp, [])
            return
        user_id, mode = found
        with self._sim.world.lock:
            body = [v1_user(identity(user_id), self._sim.world.state(user_id, mode))]
        send_json(resp, body)


class GetUserBest:
    """Best stable plays by pp; lazer plays have no legacy id and are not listed."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Serve up to ``limit`` (default 10, 1..100) v1 score rows."""
        found = _lookup(self._sim, req)
        if found is None:
            send_json(resp, [])
            return
        user_id, mode = found
        try:
            limit = int(req.get_param("limit") or V1_DEFAULT_LIMIT)
        except ValueError:
            limit = V1_DEFAULT_LIMIT
        limit = min(max(limit, 1), V1_MAX_LIMIT)
        with self._sim.world.lock:
            state = self._sim.world.state(user_id, mode)
            stable = [p for p in state.plays if not p.is_lazer][:limit]
            body = [v1_score(user_id, p) for p in stable]
        send_json(resp, body)
