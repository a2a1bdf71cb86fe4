"""API v1 response objects: every value a JSON string, as the real legacy API sends them."""

from __future__ import annotations

from simulator.identity import Identity
from simulator.players import Play, PlayerState
from simulator.timefmt import format_number, v1_date


def v1_level(state: PlayerState) -> str:
    """Level with up to 4 decimals (``"67.5349"``)."""
    return format_number(state.level_e4 / 10_000)


def v1_user(ident: Identity, state: PlayerState) -> dict[str, object]:
    """One ``get_user`` row; an unranked player has pp_raw "0" but a stale non-zero rank."""
    grades = state.grades
    return {
        "user_id": str(ident.user_id),
        "username": ident.username,
        "join_date": v1_date(ident.join_ts),
        "count300": str(state.count300),
        "count100": str(state.count100),
        "count50": str(state.count50),
        "playcount": str(state.playcount),
        "ranked_score": str(state.ranked_score),
        "total_score": str(state.total_score),
        "pp_rank": str(state.v1_rank),
        "level": v1_level(state),
        "pp_raw": format_number(state.pp),
        "accuracy": repr(state.accuracy),
        "count_rank_ss": str(grades["ss"]),
        "count_rank_ssh": str(grades["ssh"]),
        "count_rank_s": str(grades["s"]),
        "count_rank_sh": str(grades["sh"]),
        "count_rank_a": str(grades["a"]),
        "country": ident.country,
        "total_seconds_played": str(state.total_seconds),
        "pp_country_rank": str(state.v1_country_rank),
        "events": [],
    }


def v1_score(user_id: int, play: Play) -> dict[str, str]:
    """One ``get_user_best`` row (stable plays only: ``score_id`` is the legacy id)."""
    return {
        "beatmap_id": str(play.beatmap_id),
        "score_id": str(play.legacy_id),
        "score": str(play.legacy_score),
        "maxcombo": str(play.max_combo),
        "count50": str(play.count50),
        "count100": str(play.count100),
        "count300": str(play.count300),
        "countmiss": str(play.countmiss),
        "countkatu": str(play.countkatu),
        "countgeki": str(play.countgeki),
        "perfect": "1" if play.perfect else "0",
        "enabled_mods": str(play.mods),
        "user_id": str(user_id),
        "date": v1_date(play.ended_at),
        "rank": play.rank,
        "pp": format_number(play.pp),
        "replay_available": "1" if play.replay else "0",
    }
