"""osu! API v2: client credentials, `users/{id}/{mode}` and `users/{id}/scores/best`."""

from __future__ import annotations

from typing import Any

from osutrack.fields import UNRANKED, PlayerStats
from worker.upstream.errors import UpstreamAuthError
from worker.upstream.http import NOT_FOUND, UpstreamHttp
from worker.upstream.models import MODE_NAMES_V2, Player, TopPlay, only_players_plays
from worker.upstream.mods import mods_bitmask
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
from worker.upstream.token import TokenProvider

# The score format osu!track's own bridge asks for: `legacy_score_id`, `ended_at` and
# acronym mods (any version >= 20220705 gives the new format).
API_VERSION_HEADER = "20240923"
# The users endpoint takes at most 50 ids per request.
BATCH_MAX_IDS = 50


def stats_from_v2(statistics: Any) -> PlayerStats:
    """Map v2 `statistics` to osu!track's snapshot fields (as osu!track's bridge does).

    `pp_rank` is `global_rank`, 0 when null (unranked); `level` is `current + progress/100`;
    `accuracy` is the percentage `hit_accuracy`; SS and S counts include their silver kinds.
    """
    level = field(statistics, "level")
    grades = field(statistics, "grade_counts")
    rank = statistics.get("global_rank")
    return PlayerStats(
        # Hit counts arrived in v2 statistics only in 2023; older answers lack them.
        count300=as_int(statistics.get("count_300"), "count_300", default=0),
        count100=as_int(statistics.get("count_100"), "count_100", default=0),
        count50=as_int(statistics.get("count_50"), "count_50", default=0),
        playcount=as_int(field(statistics, "play_count"), "play_count"),
        ranked_score=as_int(field(statistics, "ranked_score"), "ranked_score"),
        total_score=as_int(field(statistics, "total_score"), "total_score"),
        pp_rank=0 if rank is None else as_int(rank, "global_rank"),
        level=as_int(field(level, "current"), "level.current")
        + as_float(field(level, "progress"), "level.progress", maximum=100.0) / 100,
        pp_raw=as_float(field(statistics, "pp"), "pp", maximum=MAX_PP),
        accuracy=as_float(field(statistics, "hit_accuracy"), "hit_accuracy", maximum=100.0),
        count_rank_ss=as_int(field(grades, "ss"), "ss", default=0)
        + as_int(field(grades, "ssh"), "ssh", default=0),
        count_rank_s=as_int(field(grades, "s"), "s", default=0)
        + as_int(field(grades, "sh"), "sh", default=0),
        count_rank_a=as_int(field(grades, "a"), "a", default=0),
    )


def play_from_v2(score: Any) -> TopPlay:
    """Map a v2 score (new format) to the v1 `get_user_best` shape osu!track reports.

    The play's id is `legacy_score_id` when above 0 (a stable score, same id as v1), else
    the v2 `id`; its score is `legacy_total_score` when above 0, else `total_score`.
    """
    legacy_id = as_int(score.get("legacy_score_id"), "legacy_score_id", default=0, maximum=MAX_ID)
    legacy_total = as_int(score.get("legacy_total_score"), "legacy_total_score", default=0)
    statistics = field(score, "statistics")
    if not isinstance(statistics, dict):
        raise MalformedUpstream("the osu! API sent invalid score statistics")
    mods = field(score, "mods")
    if not isinstance(mods, list):
        raise MalformedUpstream("the osu! API sent invalid mods")
    acronyms = [
        as_text(field(mod, "acronym"), "mod") if isinstance(mod, dict) else as_text(mod, "mod")
        for mod in mods
    ]
    beatmap_id = score.get("beatmap_id")
    if beatmap_id is None:
        beatmap_id = field(field(score, "beatmap"), "id")
    pp = score.get("pp")

    def count(name: str) -> int:
        # Lazer omits hit results whose count is zero.
        return as_int(statistics.get(name), name, default=0)

    return TopPlay(
        score_id=legacy_id if legacy_id > 0 else as_id(field(score, "id"), "id"),
        beatmap_id=as_int(beatmap_id, "beatmap_id", maximum=MAX_ID),
        score=legacy_total
        if legacy_total > 0
        else as_int(field(score, "total_score"), "total_score"),
        maxcombo=as_int(field(score, "max_combo"), "max_combo"),
        count50=count("meh"),
        count100=count("ok"),
        count300=count("great"),
        countmiss=count("miss"),
        countkatu=count("good"),
        countgeki=count("perfect"),
        perfect=bool(score.get("is_perfect_combo", False)),
        enabled_mods=mods_bitmask(acronyms),
        user_id=as_id(field(score, "user_id"), "user_id"),
        score_time=as_time(field(score, "ended_at"), "ended_at"),
        rank=as_text(field(score, "rank"), "rank", max_length=4),
        pp=0.0 if pp is None else as_float(pp, "pp", maximum=MAX_PP),
        replay_available=bool(score.get("has_replay", False)),
    )


class V2Client:
    """Fetches players and top plays through osu! API v2."""

    def __init__(self, http: UpstreamHttp, tokens: TokenProvider) -> None:
        self._http = http
        self._tokens = tokens

    def _get(self, path: str, params: Any, what: str, endpoint: str) -> Any:
        token = self._tokens.token()
        headers = {"Authorization": f"Bearer {token}", "x-api-version": API_VERSION_HEADER}
        try:
            return self._http.request_json(
                "GET", path, params=params, headers=headers, what=what, endpoint=endpoint
            )
        except UpstreamAuthError:
            # The token may have been revoked or expired early: fetch a new one once.
            self._tokens.invalidate(token)
            headers["Authorization"] = f"Bearer {self._tokens.token()}"
            return self._http.request_json(
                "GET", path, params=params, headers=headers, what=what, endpoint=endpoint
            )

    def fetch_player(self, user_id: int, mode: int) -> Player | None:
        """The player in `mode`, or None when osu! says the user does not exist."""
        body = self._get(f"/api/v2/users/{user_id}/{MODE_NAMES_V2[mode]}", None, "user", "v2_user")
        if body is NOT_FOUND:
            return None
        found_id = as_id(field(body, "id"), "id")
        if found_id != user_id:
            raise MalformedUpstream("the osu! API answered with a different user")
        return Player(
            user_id=found_id,
            username=as_text(field(body, "username"), "username"),
            stats=stats_from_v2(field(body, "statistics")),
        )

    def fetch_top_plays(self, user_id: int, mode: int) -> list[TopPlay] | None:
        """The player's top 100 plays by pp, best first; None if the user is not found."""
        body = self._get(
            f"/api/v2/users/{user_id}/scores/best",
            {"mode": MODE_NAMES_V2[mode], "limit": 100, "offset": 0},
            "best scores",
            "v2_best",
        )
        if body is NOT_FOUND:
            return None
        if not isinstance(body, list):
            raise MalformedUpstream("the osu! API sent best scores that are not a list")
        return only_players_plays(user_id, [play_from_v2(score) for score in body])

    def fetch_players_batch(self, user_ids: list[int]) -> dict[int, dict[int, Player]]:
        """Every mode's stats of up to 50 players in ONE request: {user_id: {mode: Player}}.

        Users osu! does not know (or restricted ones) are absent from the answer.
        """
        if len(user_ids) > BATCH_MAX_IDS:
            raise ValueError(f"at most {BATCH_MAX_IDS} users per batch")
        body = self._get(
            "/api/v2/users", [("ids[]", user_id) for user_id in user_ids], "users", "v2_users_batch"
        )
        users = [] if body is NOT_FOUND else field(body, "users")
        if not isinstance(users, list):
            raise MalformedUpstream("the osu! API sent a user batch that is not a list")
        wanted = set(user_ids)
        found: dict[int, dict[int, Player]] = {}
        for user in users:
            user_id = as_id(field(user, "id"), "id")
            if user_id not in wanted:
                raise MalformedUpstream("the osu! API answered with a user not asked for")
            username = as_text(field(user, "username"), "username")
            rulesets = field(user, "statistics_rulesets")
            if not isinstance(rulesets, dict):
                raise MalformedUpstream("the osu! API sent invalid statistics_rulesets")
            found[user_id] = {
                mode: Player(user_id, username, stats_from_v2(rulesets[name]))
                for mode, name in enumerate(MODE_NAMES_V2)
                # A mode the player never played has no statistics at all: unranked.
                if rulesets.get(name) is not None
            }
        return found

    def fetch_players(
        self, user_modes: list[tuple[int, int]]
    ) -> dict[tuple[int, int], Player | None]:
        """Each user-mode's player from one batch request for up to 50 players."""
        found = self.fetch_players_batch(sorted({user_id for user_id, _ in user_modes}))
        players: dict[tuple[int, int], Player | None] = {}
        for user_id, mode in user_modes:
            modes = found.get(user_id)
            if modes is None:
                players[(user_id, mode)] = None
            else:
                # Known user with no statistics in this mode: unranked there.
                username = next(iter(modes.values())).username if modes else ""
                players[(user_id, mode)] = modes.get(mode) or Player(user_id, username, UNRANKED)
        return players
