"""Step-0 states of the fixture players (osu! mode), built from recorded responses.

Stats are the recorded v1 ``get_user`` numbers; the top plays are the recorded best scores,
padded with generated plays below the weakest recorded one. The bonus pp is chosen so the
total equals the recorded ``pp_raw``, and the rank formula starts at the recorded rank.
Other modes of these users are generated like anybody else's.
"""

from __future__ import annotations

import random
from typing import Any

from simulator.identity import fixture_players, identity
from simulator.players import (
    IDS_PER_PLAYER,
    SOLO_ID_BASE,
    Play,
    PlayerState,
    make_play,
)
from simulator.timefmt import BASE_NOW, parse_v1_date

FIXTURE_MODE = 0


def has_fixture(user_id: int, mode: int) -> bool:
    """True if (user_id, mode) starts from recorded data."""
    return mode == FIXTURE_MODE and user_id in fixture_players()


def _recorded_play(user_id: int, index: int, row: dict[str, str]) -> Play:
    max_combo = int(row["maxcombo"])
    return Play(
        index=index,
        legacy_id=int(row["score_id"]),
        solo_id=SOLO_ID_BASE + user_id * 4 * IDS_PER_PLAYER + index,
        beatmap_id=int(row["beatmap_id"]),
        legacy_score=int(row["score"]),
        total_score=0,
        pp=float(row["pp"]),
        mods=int(row["enabled_mods"]),
        rank=row["rank"],
        ended_at=parse_v1_date(row["date"]),
        max_combo=max_combo,
        beatmap_max_combo=max_combo if row["perfect"] == "1" else max_combo + 1 + index,
        count300=int(row["count300"]),
        count100=int(row["count100"]),
        count50=int(row["count50"]),
        countmiss=int(row["countmiss"]),
        countgeki=int(row["countgeki"]),
        countkatu=int(row["countkatu"]),
        perfect=row["perfect"] == "1",
        replay=row["replay_available"] == "1",
    )


def fixture_state(user_id: int) -> PlayerState:
    """Step-0 osu! state of a fixture player."""
    record: dict[str, Any] = fixture_players()[user_id]
    stats: dict[str, str] = record["v1_stats"]
    extra: dict[str, Any] = record["v2_extra"]
    rng = random.Random(f"{user_id}:{FIXTURE_MODE}:fixture")
    plays = [_recorded_play(user_id, i, row) for i, row in enumerate(record["plays"])]
    for play in plays:
        # Recorded plays are stable plays: the standardised total is not recorded.
        play.total_score = 700_000 + (play.legacy_score % 300_000)
    join_ts = identity(user_id).join_ts
    weakest = min(p.pp for p in plays)
    taken = {p.beatmap_id for p in plays}
    total = rng.randint(110, 150)
    padding = total - len(plays)
    for k in range(padding):
        pp = weakest * (0.995 - 0.55 * ((k + 1) / padding) ** 0.9)
        play = make_play(rng, user_id, FIXTURE_MODE, len(plays), pp, rng.randint(join_ts, BASE_NOW))
        while play.beatmap_id in taken:
            play.beatmap_id = rng.randint(75, 5_000_000)
        taken.add(play.beatmap_id)
        plays.append(play)
    total_hits = int(stats["count300"]) + int(stats["count100"]) + int(stats["count50"])
    rank_highest = extra.get("rank_highest") or {}
    state = PlayerState(
        user_id=user_id,
        mode=FIXTURE_MODE,
        step=0,
        plays=plays,
        next_index=len(plays),
        playcount=int(stats["playcount"]),
        count300=int(stats["count300"]),
        count100=int(stats["count100"]),
        count50=int(stats["count50"]),
        count_miss=extra["count_miss"] if extra["count_miss"] is not None else total_hits // 40,
        ranked_score=int(stats["ranked_score"]),
        total_score=int(stats["total_score"]),
        total_seconds=int(stats["total_seconds_played"]),
        level_e4=round(float(stats["level"]) * 10_000),
        accuracy=float(stats["accuracy"]),
        grades={
            "ss": int(stats["count_rank_ss"]),
            "ssh": int(stats["count_rank_ssh"]),
            "s": int(stats["count_rank_s"]),
            "sh": int(stats["count_rank_sh"]),
            "a": int(stats["count_rank_a"]),
        },
        maximum_combo=extra["maximum_combo"],
        replays_watched=extra["replays_watched_by_others"],
        bonus_pp=0.0,
        ranked=float(stats["pp_raw"]) > 0,
        rank0=int(stats["pp_rank"]),
        country_rank0=int(stats["pp_country_rank"]),
    )
    state.sort_plays()
    state.bonus_pp = float(stats["pp_raw"]) - state.weighted_pp()
    state.calibrate()
    state.rank_highest = int(rank_highest.get("rank", state.rank0))
    state.rank_highest_at = BASE_NOW
    return state
