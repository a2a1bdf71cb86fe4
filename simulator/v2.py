"""API v2 resources: user, best scores and the batch users lookup (bearer token required)."""

from __future__ import annotations

import falcon

from simulator.identity import MODES, identity, resolve_username
from simulator.responses import JsonError, not_found_v2, send_json
from simulator.runtime import Simulator
from simulator.v2_shapes import batch_user, full_user, legacy_format_score, new_format_score

NEW_SCORE_FORMAT_VERSION = 20220705
BEST_DEFAULT_LIMIT = 5
BEST_MAX_LIMIT = 100
BEST_MAX_TOTAL = 200
BATCH_MAX_IDS = 50


def _authorize(sim: Simulator, req: falcon.Request) -> None:
    if not sim.tokens.valid(req.get_header("Authorization")):
        raise JsonError(401, {"authentication": "basic"})


def _resolve_user(sim: Simulator, req: falcon.Request, text: str) -> int:
    """User id for ``{user}`` (id or ``@name``); 404 when unknown, restricted or faulted."""
    if text.startswith("@"):
        user_id = resolve_username(text[1:])
    elif text.isdigit():
        user_id = int(text)
    else:
        user_id = resolve_username(text)
    if user_id is None or not sim.world.exists(user_id) or req.context.get("empty_user"):
        raise not_found_v2()
    return user_id


def _mode(text: str | None, user_id: int) -> int:
    if text is None:
        return MODES.index(identity(user_id).playmode)
    if text not in MODES:
        raise not_found_v2()
    return MODES.index(text)


def _int_param(req: falcon.Request, name: str, default: int) -> int:
    try:
        return int(req.get_param(name) or default)
    except ValueError:
        return default


def _wants_new_format(req: falcon.Request) -> bool:
    try:
        return int(req.get_header("x-api-version") or 0) >= NEW_SCORE_FORMAT_VERSION
    except ValueError:
        return False


class User:
    """``GET /api/v2/users/{user}/{mode?}``."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, user: str, mode: str | None = None
    ) -> None:
        """UserExtended for the user's ``mode`` (default: their playmode)."""
        _authorize(self._sim, req)
        user_id = _resolve_user(self._sim, req, user)
        mode_int = _mode(mode, user_id)
        with self._sim.world.lock:
            body = full_user(identity(user_id), self._sim.world.state(user_id, mode_int))
        send_json(resp, body)


class BestScores:
    """``GET /api/v2/users/{user}/scores/best?mode=&limit=&offset=``."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_get(self, req: falcon.Request, resp: falcon.Response, user: str) -> None:
        """Best plays by pp desc, cut from the first 200, in the requested score format."""
        _authorize(self._sim, req)
        user_id = _resolve_user(self._sim, req, user)
        mode_int = _mode(req.get_param("mode"), user_id)
        limit = min(max(_int_param(req, "limit", BEST_DEFAULT_LIMIT), 1), BEST_MAX_LIMIT)
        offset = max(_int_param(req, "offset", 0), 0)
        render = new_format_score if _wants_new_format(req) else legacy_format_score
        with self._sim.world.lock:
            state = self._sim.world.state(user_id, mode_int)
            window = state.plays[:BEST_MAX_TOTAL][offset : offset + limit]
            body = [render(state, play, offset + i) for i, play in enumerate(window)]
        send_json(resp, body)


class Users:
    """``GET /api/v2/users?ids[]=...``: up to 50 users with statistics for every mode."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Existing users in request order; unknown ids are left out."""
        _authorize(self._sim, req)
        raw = (req.get_param_as_list("ids[]") or []) + (req.get_param_as_list("ids") or [])
        if len(raw) > BATCH_MAX_IDS:
            raise JsonError(422, {"error": f"Too many ids; at most {BATCH_MAX_IDS} allowed."})
        if req.context.get("empty_user"):
            send_json(resp, {"users": []})
            return
        ids = list(dict.fromkeys(int(x) for x in raw if x.isdigit()))
        users = []
        with self._sim.world.lock:
            for user_id in ids:
                if self._sim.world.exists(user_id):
                    states = [self._sim.world.state(user_id, m) for m in range(len(MODES))]
                    users.append(batch_user(identity(user_id), states))
        send_json(resp, {"users": users})
