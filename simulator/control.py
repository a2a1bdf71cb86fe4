"""Control API under ``/_sim/`` (no auth): ground truth, time travel, restrictions, faults.

Tests compute expected results from ``GET /_sim/users/{id}/{mode}`` instead of hard-coding
numbers. Every route answers JSON; invalid parameters give 400 ``{"error": ...}``.
"""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from simulator.faults import parse_fault
from simulator.identity import MODES, identity, in_range
from simulator.mods import bits_to_acronyms
from simulator.players import TOP_SIZE, Play, PlayerState
from simulator.responses import JsonError, bad_request, send_json
from simulator.runtime import Simulator
from simulator.timefmt import v1_date, v2_score_date


def _mode(value: str | int | None) -> int:
    try:
        mode = int(value if value is not None else 0)
    except ValueError:
        raise bad_request("mode must be 0, 1, 2 or 3") from None
    if not 0 <= mode < len(MODES):
        raise bad_request("mode must be 0, 1, 2 or 3")
    return mode


def _known(user_id: int) -> None:
    if not in_range(user_id):
        raise JsonError(404, {"error": f"user {user_id} can never exist"})


def _int(req: falcon.Request, name: str, default: int | None, minimum: int) -> int | None:
    text = req.get_param(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if value < minimum:
        raise bad_request(f"{name} must be >= {minimum}")
    return value


def truth_play(play: Play) -> dict[str, Any]:
    """One top play as ``GET /_sim/users`` reports it."""
    return {
        "score_id": play.tracked_id,
        "legacy_score_id": play.legacy_id,
        "solo_id": play.solo_id,
        "beatmap_id": play.beatmap_id,
        "score": play.tracked_score,
        "legacy_total_score": play.legacy_score,
        "total_score": play.total_score,
        "pp": play.pp,
        "enabled_mods": play.mods,
        "mods": bits_to_acronyms(play.mods),
        "rank": play.rank,
        "date": v1_date(play.ended_at),
        "ended_at": v2_score_date(play.ended_at),
        "max_combo": play.max_combo,
        "count300": play.count300,
        "count100": play.count100,
        "count50": play.count50,
        "countmiss": play.countmiss,
        "countgeki": play.countgeki,
        "countkatu": play.countkatu,
        "perfect": play.perfect,
        "replay": play.replay,
        "is_lazer": play.is_lazer,
    }


def truth_stats(state: PlayerState) -> dict[str, Any]:
    """The v1-shaped numbers as JSON numbers, plus the v2-only ones."""
    grades = state.grades
    return {
        "count300": state.count300,
        "count100": state.count100,
        "count50": state.count50,
        "count_miss": state.count_miss,
        "playcount": state.playcount,
        "ranked_score": state.ranked_score,
        "total_score": state.total_score,
        "pp_rank": state.v1_rank,
        "global_rank": state.global_rank,
        "level": state.level_e4 / 10_000,
        "pp_raw": state.pp,
        "accuracy": state.accuracy,
        "count_rank_ss": grades["ss"],
        "count_rank_ssh": grades["ssh"],
        "count_rank_s": grades["s"],
        "count_rank_sh": grades["sh"],
        "count_rank_a": grades["a"],
        "total_seconds_played": state.total_seconds,
        "pp_country_rank": state.v1_country_rank,
        "country_rank": state.country_rank,
        "maximum_combo": state.maximum_combo,
        "replays_watched_by_others": state.replays_watched,
    }


def truth(sim: Simulator, user_id: int, mode: int) -> dict[str, Any]:
    """Ground truth of (user, mode); caller holds the world lock."""
    if not in_range(user_id):
        return {
            "user_id": user_id,
            "username": None,
            "mode": mode,
            "step": None,
            "exists": False,
            "restricted": False,
            "ranked": False,
            "stats": None,
            "top_plays": [],
        }
    state = sim.world.state(user_id, mode)
    return {
        "user_id": user_id,
        "username": identity(user_id).username,
        "mode": mode,
        "step": state.step,
        "exists": sim.world.exists(user_id),
        "restricted": user_id in sim.world.restricted,
        "ranked": state.ranked,
        "stats": truth_stats(state),
        "top_plays": [truth_play(p) for p in state.top(TOP_SIZE)],
    }


class UserTruth:
    """``GET /_sim/users/{id}/{mode}``."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int, mode: int) -> None:
        """The truth for one (user, mode)."""
        mode = _mode(mode)
        with self._sim.world.lock:
            send_json(resp, truth(self._sim, user_id, mode))


class AdvanceUser:
    """``POST /_sim/users/{id}/advance?mode=0&steps=1&new_top_plays=N``."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        """Advance one (user, mode); the last step adds exactly N new top-100 plays if given."""
        _known(user_id)
        mode = _mode(req.get_param("mode"))
        steps = _int(req, "steps", 1, 1) or 1
        forced = _int(req, "new_top_plays", None, 0)
        with self._sim.world.lock:
            self._sim.world.advance_player(user_id, mode, steps, forced)
            send_json(resp, truth(self._sim, user_id, mode))


class AdvanceAll:
    """``POST /_sim/advance?steps=1``."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Advance every player lazily."""
        steps = _int(req, "steps", 1, 1) or 1
        with self._sim.world.lock:
            self._sim.world.advance_all(steps)
            send_json(resp, {"global_steps": self._sim.world.global_steps})


class Restriction:
    """``POST /_sim/users/{id}/restrict`` and ``/unrestrict``."""

    def __init__(self, sim: Simulator, restricted: bool) -> None:
        self._sim = sim
        self._restricted = restricted

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        """Hide or show a user in the public API (their state is kept)."""
        _known(user_id)
        with self._sim.world.lock:
            if self._restricted:
                self._sim.world.restrict(user_id)
            else:
                self._sim.world.unrestrict(user_id)
            send_json(resp, {"user_id": user_id, "restricted": self._restricted})


class PpRework:
    """``POST /_sim/users/{id}/pp_rework?mode=0&factor=1.05``."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_post(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        """Multiply the pp of every play; score ids stay."""
        _known(user_id)
        mode = _mode(req.get_param("mode"))
        try:
            factor = float(req.get_param("factor") or "")
        except ValueError:
            raise bad_request("factor must be a positive number") from None
        if not factor > 0:
            raise bad_request("factor must be a positive number")
        with self._sim.world.lock:
            self._sim.world.rework(user_id, mode, factor)
            send_json(resp, truth(self._sim, user_id, mode))


class Faults:
    """``POST``/``GET``/``DELETE /_sim/faults``."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Queue one fault described by the JSON body."""
        try:
            spec = orjson.loads(req.bounded_stream.read() or b"null")
        except orjson.JSONDecodeError:
            raise bad_request("body must be JSON") from None
        fault = parse_fault(spec)
        self._sim.faults.add(fault)
        send_json(resp, {"queued": fault.describe(), "pending": self._sim.faults.pending()}, 201)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List pending faults."""
        send_json(resp, {"pending": self._sim.faults.pending()})

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Drop every pending fault."""
        self._sim.faults.clear()
        send_json(resp, {"pending": []})


class Latency:
    """``PUT /_sim/latency?ms=100`` (``GET`` shows the current value)."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_put(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Set the latency added to every upstream request."""
        self._sim.latency_ms = _int(req, "ms", 0, 0) or 0
        send_json(resp, {"latency_ms": self._sim.latency_ms})

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Current latency."""
        send_json(resp, {"latency_ms": self._sim.latency_ms})


class Requests:
    """``GET``/``DELETE /_sim/requests``."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The upstream request log, oldest first."""
        send_json(resp, {"requests": self._sim.log.entries()})

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Clear the log and the counters of ``/_sim/stats``."""
        self._sim.log.clear()
        send_json(resp, {"requests": []})


class Stats:
    """``GET /_sim/stats``."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Request counts by endpoint and status, plus the current step offset."""
        body = self._sim.log.stats()
        with self._sim.world.lock:
            body["global_steps"] = self._sim.world.global_steps
        body["latency_ms"] = self._sim.latency_ms
        send_json(resp, body)


class Reset:
    """``POST /_sim/reset``."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Everything back to start (issued tokens stay valid)."""
        self._sim.reset()
        send_json(resp, {"reset": True})
