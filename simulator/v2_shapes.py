"""API v2 response objects: users (full and compact) and scores in both formats.

The new score format (``x-api-version >= 20220705``) uses the solo id as ``id`` and lazer
hit-result names with zero counts omitted; the legacy format uses the legacy id (the solo id
for lazer plays, whose ``score`` is then 0) and ``count_*`` statistics.
"""

from __future__ import annotations

from typing import Any

from simulator.beatmaps import beatmap, beatmapset
from simulator.identity import MODES, Identity
from simulator.mods import bits_to_acronyms
from simulator.players import Play, PlayerState, play_accuracy
from simulator.timefmt import v2_score_date, v2_user_date

# Players on the global leaderboard, for ``global_rank_percent``.
RANKED_PLAYERS = 3_600_000


def statistics(state: PlayerState) -> dict[str, Any]:
    """``statistics`` object of a user for one mode, consistent with the v1 numbers."""
    rank = state.global_rank
    grades = state.grades
    return {
        "count_100": state.count100,
        "count_300": state.count300,
        "count_50": state.count50,
        "count_miss": state.count_miss,
        "level": {
            "current": state.level_e4 // 10_000,
            "progress": (state.level_e4 % 10_000) // 100,
        },
        "global_rank": rank,
        "global_rank_percent": None if rank is None else rank / RANKED_PLAYERS,
        "global_rank_exp": None,
        "pp": state.pp,
        "pp_exp": 0,
        "ranked_score": state.ranked_score,
        "hit_accuracy": round(state.accuracy, 4),
        "accuracy": round(state.accuracy / 100, 6),
        "play_count": state.playcount,
        "play_time": state.total_seconds,
        "total_score": state.total_score,
        "total_hits": state.total_hits,
        "maximum_combo": state.maximum_combo,
        "replays_watched_by_others": state.replays_watched,
        "is_ranked": rank is not None,
        "grade_counts": {k: grades[k] for k in ("ss", "ssh", "s", "sh", "a")},
        "country_rank": state.country_rank,
        "rank": {"country": state.country_rank},
    }


def compact_user(ident: Identity) -> dict[str, Any]:
    """UserCompact fields shared by every user object."""
    return {
        "avatar_url": f"https://a.ppy.sh/{ident.user_id}",
        "country_code": ident.country,
        "default_group": "default",
        "id": ident.user_id,
        "is_active": True,
        "is_bot": False,
        "is_deleted": False,
        "is_online": False,
        "is_supporter": ident.is_supporter,
        "last_visit": None,
        "pm_friends_only": False,
        "profile_colour": None,
        "username": ident.username,
    }


def _rank_history(state: PlayerState) -> dict[str, Any] | None:
    rank = state.global_rank
    if rank is None:
        return None
    # Older days were slightly worse: ranks drift up ~0.05% a day when nothing happens.
    data = [max(1, round(rank * (1 + 0.0005 * (89 - day)))) for day in range(90)]
    return {"mode": MODES[state.mode], "data": data}


def full_user(ident: Identity, state: PlayerState) -> dict[str, Any]:
    """UserExtended for ``GET /users/{user}/{mode}``."""
    history = _rank_history(state)
    user = compact_user(ident)
    user.update(
        {
            "country": {"code": ident.country, "name": ident.country_name},
            "join_date": v2_user_date(ident.join_ts),
            "playmode": ident.playmode,
            "previous_usernames": [],
            "statistics": statistics(state),
            "rank_highest": {
                "rank": state.rank_highest,
                "updated_at": v2_score_date(state.rank_highest_at),
            },
            "rank_history": history,
            "rankHistory": history,
            "scores_best_count": min(len(state.plays), 200),
        }
    )
    return user


def batch_user(ident: Identity, states: list[PlayerState]) -> dict[str, Any]:
    """User of ``GET /users?ids[]=``: compact plus ``statistics_rulesets`` for all modes."""
    user = compact_user(ident)
    user["statistics_rulesets"] = {MODES[s.mode]: statistics(s) for s in states}
    return user


def _score_common(state: PlayerState, play: Play, position: int) -> dict[str, Any]:
    weight = 0.95**position
    return {
        "accuracy": play_accuracy(state.mode, play),
        "max_combo": play.max_combo,
        "passed": True,
        "pp": play.pp,
        "rank": play.rank,
        "replay": play.replay,
        "user_id": state.user_id,
        "current_user_attributes": {"pin": None},
        "beatmap": beatmap(play.beatmap_id, state.mode, play.beatmap_max_combo),
        "beatmapset": beatmapset(play.beatmap_id),
        "weight": {"percentage": weight * 100, "pp": play.pp * weight},
    }


def new_format_score(state: PlayerState, play: Play, position: int) -> dict[str, Any]:
    """Score as sent with ``x-api-version >= 20220705``."""
    stats = {
        "great": play.count300,
        "ok": play.count100,
        "meh": play.count50,
        "miss": play.countmiss,
    }
    if state.mode != 0:
        stats["perfect"] = play.countgeki
        stats["good"] = play.countkatu
    mods = [{"acronym": a} for a in bits_to_acronyms(play.mods)]
    if not play.is_lazer:
        mods.append({"acronym": "CL"})
    score = _score_common(state, play, position)
    score.update(
        {
            "classic_total_score": play.legacy_score or play.total_score,
            "preserve": True,
            "processed": True,
            "ranked": True,
            "maximum_statistics": {
                "great": play.count300 + play.count100 + play.count50 + play.countmiss
            },
            "mods": mods,
            "statistics": {k: v for k, v in stats.items() if v},
            "beatmap_id": play.beatmap_id,
            "best_id": None,
            "id": play.solo_id,
            "type": "solo_score",
            "build_id": None if not play.is_lazer else 7000,
            "ended_at": v2_score_date(play.ended_at),
            "has_replay": play.replay,
            "is_perfect_combo": play.perfect,
            "legacy_perfect": play.perfect,
            "legacy_score_id": play.legacy_id or None,
            "legacy_total_score": play.legacy_score,
            "ruleset_id": state.mode,
            "started_at": None,
            "total_score": play.total_score,
        }
    )
    return score


def legacy_format_score(state: PlayerState, play: Play, position: int) -> dict[str, Any]:
    """Score as sent without ``x-api-version`` (or below 20220705)."""
    osu = state.mode == 0
    score = _score_common(state, play, position)
    score.update(
        {
            "best_id": play.legacy_id or None,
            "created_at": v2_score_date(play.ended_at),
            "id": play.tracked_id,
            "mode": MODES[state.mode],
            "mode_int": state.mode,
            "mods": bits_to_acronyms(play.mods),
            "perfect": play.perfect,
            "score": play.legacy_score,
            "statistics": {
                "count_100": play.count100,
                "count_300": play.count300,
                "count_50": play.count50,
                "count_geki": None if osu else play.countgeki,
                "count_katu": None if osu else play.countkatu,
                "count_miss": play.countmiss,
            },
            "type": f"score_best_{MODES[state.mode]}",
        }
    )
    return score
