"""osu! API v1 (legacy): `get_user` and `get_user_best`, every number a string."""

from __future__ import annotations

from typing import Any

from osutrack.fields import PlayerStats
from worker.upstream.http import NOT_FOUND, UpstreamHttp
from worker.upstream.models import Player, TopPlay, only_players_plays
from worker.upstream.parsing import (
    MAX_ID,
    MAX_PP,
    MalformedUpstream,
    as_float,
    as_id,
    as_int,
    as_text,
    as_time,
    field,
)

STAT_KEYS_V1 = (
    "count300",
    "count100",
    "count50",
    "playcount",
    "ranked_score",
    "total_score",
    "pp_rank",
    "level",
    "pp_raw",
    "accuracy",
    "count_rank_ss",
    "count_rank_ssh",
    "count_rank_s",
    "count_rank_sh",
    "count_rank_a",
)


def stats_from_v1(user: Any) -> PlayerStats:
    """Map a v1 `get_user` object to snapshot fields.

    A player who never played the mode has every stat null, and an inactive one has
    `pp_raw` "0" while `pp_rank` keeps a stale value (shared notes, osu-api 4.2): both are
    unranked here (`pp_rank` 0), as v2's null `global_rank` is.
    """
    if any(user.get(key) is None for key in STAT_KEYS_V1):
        return PlayerStats(0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0, 0, 0)
    pp_raw = as_float(field(user, "pp_raw"), "pp_raw", maximum=MAX_PP)
    return PlayerStats(
        count300=as_int(user["count300"], "count300"),
        count100=as_int(user["count100"], "count100"),
        count50=as_int(user["count50"], "count50"),
        playcount=as_int(user["playcount"], "playcount"),
        ranked_score=as_int(user["ranked_score"], "ranked_score"),
        total_score=as_int(user["total_score"], "total_score"),
        pp_rank=as_int(user["pp_rank"], "pp_rank") if pp_raw > 0 else 0,
        level=as_float(user["level"], "level", maximum=1000.0),
        pp_raw=pp_raw,
        accuracy=as_float(user["accuracy"], "accuracy", maximum=100.0),
        count_rank_ss=as_int(user["count_rank_ss"], "count_rank_ss")
        + as_int(user["count_rank_ssh"], "count_rank_ssh"),
        count_rank_s=as_int(user["count_rank_s"], "count_rank_s")
        + as_int(user["count_rank_sh"], "count_rank_sh"),
        count_rank_a=as_int(user["count_rank_a"], "count_rank_a"),
    )


def play_from_v1(row: Any) -> TopPlay:
    """Map a v1 `get_user_best` row (all strings) to a `TopPlay`."""
    return TopPlay(
        score_id=as_id(field(row, "score_id"), "score_id"),
        beatmap_id=as_int(field(row, "beatmap_id"), "beatmap_id", maximum=MAX_ID),
        score=as_int(field(row, "score"), "score"),
        maxcombo=as_int(field(row, "maxcombo"), "maxcombo"),
        count50=as_int(field(row, "count50"), "count50"),
        count100=as_int(field(row, "count100"), "count100"),
        count300=as_int(field(row, "count300"), "count300"),
        countmiss=as_int(field(row, "countmiss"), "countmiss"),
        countkatu=as_int(field(row, "countkatu"), "countkatu"),
        countgeki=as_int(field(row, "countgeki"), "countgeki"),
        perfect=as_int(field(row, "perfect"), "perfect") == 1,
        enabled_mods=as_int(field(row, "enabled_mods"), "enabled_mods"),
        user_id=as_id(field(row, "user_id"), "user_id"),
        score_time=as_time(field(row, "date"), "date"),
        rank=as_text(field(row, "rank"), "rank", max_length=4),
        pp=as_float(field(row, "pp"), "pp", maximum=MAX_PP) if row.get("pp") is not None else 0.0,
        replay_available=as_int(row.get("replay_available"), "replay_available", default=0) == 1,
    )


class V1Client:
    """Fetches players and top plays through osu! API v1 with an API key."""

    def __init__(self, http: UpstreamHttp, api_key: str) -> None:
        self._http = http
        self._api_key = api_key

    def _get(self, endpoint: str, user_id: int, mode: int, what: str, **extra: Any) -> Any:
        # `type=id` always: automatic detection mistakes all-digit usernames for ids.
        params = {"k": self._api_key, "u": user_id, "m": mode, "type": "id", **extra}
        body = self._http.request_json(
            "GET", f"/api/{endpoint}", params=params, what=what, endpoint=f"v1_{endpoint}"
        )
        if body is NOT_FOUND:
            raise MalformedUpstream(f"the osu! API v1 endpoint {endpoint} was not found")
        return body

    def fetch_player(self, user_id: int, mode: int) -> Player | None:
        """The player in `mode`, or None when v1 answers `[]` (unknown or restricted)."""
        body = self._get("get_user", user_id, mode, "user")
        # v1 once answered null instead of [] for unknown users; both mean "no such user".
        if body is None or body == []:
            return None
        if not isinstance(body, list) or len(body) != 1:
            raise MalformedUpstream("the osu! API v1 sent an unexpected user list")
        user = body[0]
        found_id = as_id(field(user, "user_id"), "user_id")
        if found_id != user_id:
            raise MalformedUpstream("the osu! API answered with a different user")
        return Player(
            user_id=found_id,
            username=as_text(field(user, "username"), "username"),
            stats=stats_from_v1(user),
        )

    def fetch_top_plays(self, user_id: int, mode: int) -> list[TopPlay] | None:
        """The player's top 100 plays by pp, best first (v1 cannot tell a restricted user
        from one without plays: both are an empty list)."""
        body = self._get("get_user_best", user_id, mode, "best scores", limit=100)
        if body is None:
            return []
        if not isinstance(body, list):
            raise MalformedUpstream("the osu! API v1 sent best scores that are not a list")
        return only_players_plays(user_id, [play_from_v1(row) for row in body])

    def fetch_players(
        self, user_modes: list[tuple[int, int]]
    ) -> dict[tuple[int, int], Player | None]:
        """Each user-mode's player; v1 has no batch endpoint: one request per user-mode."""
        return {(user_id, mode): self.fetch_player(user_id, mode) for user_id, mode in user_modes}
