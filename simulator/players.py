"""Player state per (user, mode): generation at step 0, advancing, pp reworks.

Everything is derived from ``random.Random`` instances seeded with strings naming the user,
mode and step, so the same sequence of operations always yields the same player. The total
pp is the weighted top-100 sum (0.95^i) plus a per-player bonus fixed at step 0, and the
global rank follows pp: ``rank0 * exp(-(pp - pp0) / 1200)``, slowly drifting upwards with
steps because other players improve too.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass, field

from simulator.identity import identity
from simulator.timefmt import BASE_NOW, now_at

TOP_SIZE = 100
# v2 scores/best can page down to 200; plays below that can never be seen again.
KEEP_PLAYS = 200
# Disjoint id ranges (all below 2**53 so JSON clients keep them exact): recorded stable ids
# are below 1e10, generated legacy ids live in [1e10, 4.1e14), solo ids in [5e15, 5.5e15).
LEGACY_ID_BASE = 10_000_000_000
SOLO_ID_BASE = 5_000_000_000_000_000
IDS_PER_PLAYER = 1_000_000
WEIGHTS = [0.95**i for i in range(TOP_SIZE)]
UNRANKED_MODE = 2

_MOD_CHOICES = (0, 8, 16, 64, 72, 24, 576, 584, 16416, 1024, 1, 256)
_MOD_WEIGHTS = (30, 18, 10, 14, 10, 6, 3, 3, 2, 1, 2, 1)


def float32(value: float) -> float:
    """``value`` rounded to single precision, as v1 reports accuracy (96.79685974121094)."""
    return float(struct.unpack("f", struct.pack("f", value))[0])


def is_unranked(user_id: int, mode: int) -> bool:
    """Users whose id ends in 9 are inactive (unranked) in fruits only."""
    return mode == UNRANKED_MODE and user_id % 10 == 9


def play_accuracy(mode: int, play: Play) -> float:
    """Accuracy 0-1 of a play with the formula of its ruleset."""
    c300, c100, c50, miss = play.count300, play.count100, play.count50, play.countmiss
    if mode == 1:
        total = c300 + c100 + miss
        return (c300 + 0.5 * c100) / total if total else 1.0
    if mode == 2:
        total = c300 + c100 + c50 + play.countkatu + miss
        return (c300 + c100 + c50) / total if total else 1.0
    if mode == 3:
        geki, katu = play.countgeki, play.countkatu
        total = geki + c300 + katu + c100 + c50 + miss
        hit = 300 * (geki + c300) + 200 * katu + 100 * c100 + 50 * c50
        return hit / (300 * total) if total else 1.0
    total = c300 + c100 + c50 + miss
    return (300 * c300 + 100 * c100 + 50 * c50) / (300 * total) if total else 1.0


@dataclass(slots=True)
class Play:
    """One best-score candidate; ``legacy_id`` 0 means the play was set on lazer."""

    index: int
    legacy_id: int
    solo_id: int
    beatmap_id: int
    legacy_score: int
    total_score: int
    pp: float
    mods: int
    rank: str
    ended_at: int
    max_combo: int
    beatmap_max_combo: int
    count300: int
    count100: int
    count50: int
    countmiss: int
    countgeki: int
    countkatu: int
    perfect: bool
    replay: bool

    @property
    def is_lazer(self) -> bool:
        """True for plays without a stable (legacy) score."""
        return self.legacy_id == 0

    @property
    def tracked_id(self) -> int:
        """The id osu!track keys on: the legacy id when there is one, else the solo id."""
        return self.legacy_id or self.solo_id

    @property
    def tracked_score(self) -> int:
        """Legacy total when there is one, else the standardised total."""
        return self.legacy_score or self.total_score


@dataclass(slots=True)
class PlayerState:
    """Everything the APIs report for one (user, mode) at one step."""

    user_id: int
    mode: int
    step: int
    plays: list[Play]
    next_index: int
    playcount: int
    count300: int
    count100: int
    count50: int
    count_miss: int
    ranked_score: int
    total_score: int
    total_seconds: int
    level_e4: int
    accuracy: float
    grades: dict[str, int]
    maximum_combo: int
    replays_watched: int
    bonus_pp: float
    ranked: bool
    rank0: int = 0
    country_rank0: int = 0
    pp0: float = 0.0
    rank_highest: int = 0
    rank_highest_at: int = 0
    applied_seq: int = field(default=0)

    @property
    def pp(self) -> float:
        """Total pp (2 dp); 0 for an unranked player."""
        if not self.ranked:
            return 0.0
        return round(self.weighted_pp() + self.bonus_pp, 2)

    def weighted_pp(self) -> float:
        """Sum of the top-100 play pp weighted by 0.95^position (plays must be sorted)."""
        return sum(p.pp * w for p, w in zip(self.plays, WEIGHTS, strict=False))

    def _live_rank(self, base: int) -> int:
        drift = 1 + 0.0005 * self.step
        return max(1, round(base * math.exp(-(self.pp - self.pp0) / 1200) * drift))

    @property
    def global_rank(self) -> int | None:
        """v2 ``global_rank``: None when unranked."""
        return self._live_rank(self.rank0) if self.ranked else None

    @property
    def country_rank(self) -> int | None:
        """v2 ``country_rank``: None when unranked."""
        return self._live_rank(self.country_rank0) if self.ranked else None

    @property
    def v1_rank(self) -> int:
        """v1 ``pp_rank``: an unranked player keeps the stale step-0 rank (real quirk)."""
        return self._live_rank(self.rank0) if self.ranked else self.rank0

    @property
    def v1_country_rank(self) -> int:
        """v1 ``pp_country_rank``, stale like ``v1_rank`` when unranked."""
        return self._live_rank(self.country_rank0) if self.ranked else self.country_rank0

    @property
    def total_hits(self) -> int:
        """count300 + count100 + count50."""
        return self.count300 + self.count100 + self.count50

    @property
    def now(self) -> int:
        """The simulated time of this step."""
        return now_at(self.step)

    def top(self, n: int = TOP_SIZE) -> list[Play]:
        """The ``n`` best plays by pp."""
        return self.plays[:n]

    def sort_plays(self) -> None:
        """Order by pp desc (index breaks ties) and forget plays that can never be shown."""
        self.plays.sort(key=lambda p: (-p.pp, p.index))
        del self.plays[KEEP_PLAYS:]

    def calibrate(self) -> None:
        """Pin pp0 to the current pp so the rank formula starts exactly at rank0."""
        self.pp0 = self.pp


def _grade(mode: int, play: Play) -> str:
    acc = play_accuracy(mode, play)
    silver = bool(play.mods & (8 | 1024))
    if acc >= 1.0:
        return "XH" if silver else "X"
    if acc >= 0.93 and play.countmiss == 0:
        return "SH" if silver else "S"
    if acc >= 0.9:
        return "A"
    return "B" if acc >= 0.8 else "C"


GRADE_COUNTER = {"XH": "ssh", "X": "ss", "SH": "sh", "S": "s", "A": "a"}


def make_play(
    rng: random.Random, user_id: int, mode: int, index: int, pp: float, ended_at: int
) -> Play:
    """A generated play; about 10% are lazer plays (no legacy id, no legacy score)."""
    key = user_id * 4 + mode
    lazer = rng.random() < 0.1
    objects = rng.randint(150, 2000)
    miss = 0 if rng.random() < 0.6 else rng.randint(1, 8)
    c100 = int(objects * rng.uniform(0.0, 0.06))
    c50 = 0 if mode == 1 else int(objects * rng.uniform(0.0, 0.01))
    c300 = max(objects - miss - c100 - c50, 0)
    perfect = miss == 0 and rng.random() < 0.5
    beatmap_max_combo = objects + rng.randint(0, objects // 2)
    max_combo = (
        beatmap_max_combo if perfect else rng.randint(beatmap_max_combo // 4, beatmap_max_combo - 1)
    )
    mods = rng.choices(_MOD_CHOICES, weights=_MOD_WEIGHTS)[0]
    play = Play(
        index=index,
        legacy_id=0 if lazer else LEGACY_ID_BASE + key * IDS_PER_PLAYER + index,
        solo_id=SOLO_ID_BASE + key * IDS_PER_PLAYER + index,
        beatmap_id=rng.randint(75, 5_000_000),
        legacy_score=0,
        total_score=0,
        pp=round(pp, 3),
        mods=mods,
        rank="",
        ended_at=ended_at,
        max_combo=max_combo,
        beatmap_max_combo=beatmap_max_combo,
        count300=c300,
        count100=c100,
        count50=c50,
        countmiss=miss,
        countgeki=int(c300 * rng.uniform(0.1, 0.3)),
        countkatu=int(c100 * rng.uniform(0.3, 0.8)),
        perfect=perfect,
        replay=rng.random() < 0.3,
    )
    acc = play_accuracy(mode, play)
    combo_ratio = max_combo / beatmap_max_combo
    play.total_score = int(1_000_000 * (0.3 * combo_ratio + 0.7 * acc**10))
    if not lazer:
        play.legacy_score = int(beatmap_max_combo**2 * rng.uniform(15.0, 40.0) * combo_ratio)
    play.rank = _grade(mode, play)
    return play


def _fresh_beatmap(rng: random.Random, taken: set[int]) -> int:
    while True:
        beatmap_id = rng.randint(75, 5_000_000)
        if beatmap_id not in taken:
            return beatmap_id


def generate(user_id: int, mode: int) -> PlayerState:
    """Step-0 state of a generated player: 100-150 plays over the years before BASE_NOW."""
    rng = random.Random(f"{user_id}:{mode}:initial")
    join_ts = identity(user_id).join_ts
    skill = rng.random()
    count = rng.randint(100, 150)
    top_pp = 30 + 1100 * skill**4
    pps = sorted(
        (
            top_pp * (0.35 + 0.65 * (1 - i / count) ** 1.3) * rng.uniform(0.97, 1.03)
            for i in range(count)
        ),
        reverse=True,
    )
    plays: list[Play] = []
    taken: set[int] = set()
    for index, pp in enumerate(pps):
        play = make_play(
            rng, user_id, mode, index, pp, rng.randint(join_ts + 86_400, BASE_NOW - 3600)
        )
        play.beatmap_id = (
            _fresh_beatmap(rng, taken) if play.beatmap_id in taken else play.beatmap_id
        )
        taken.add(play.beatmap_id)
        plays.append(play)
    playcount = 200 + int(skill**1.2 * 80_000 * rng.uniform(0.5, 1.5))
    total_hits = int(playcount * rng.uniform(150, 450))
    count100 = int(total_hits * rng.uniform(0.03, 0.15))
    count50 = 0 if mode == 1 else int(total_hits * rng.uniform(0.002, 0.02))
    ranked_score = playcount * rng.randint(40_000, 250_000)
    grade_a = int(playcount * rng.uniform(0.01, 0.05))
    grade_s = int(grade_a * rng.uniform(0.5, 2.0))
    grade_ss = int(grade_s * rng.uniform(0.02, 0.2))
    state = PlayerState(
        user_id=user_id,
        mode=mode,
        step=0,
        plays=plays,
        next_index=count,
        playcount=playcount,
        count300=total_hits - count100 - count50,
        count100=count100,
        count50=count50,
        count_miss=int(total_hits * rng.uniform(0.005, 0.05)),
        ranked_score=ranked_score,
        total_score=int(ranked_score * rng.uniform(2.0, 8.0)),
        total_seconds=playcount * rng.randint(60, 160),
        level_e4=min(int(10 + 95 * (playcount / 80_000) ** 0.5), 110) * 10_000
        + rng.randint(0, 9999),
        accuracy=float32(min(88 + 11 * skill + rng.uniform(-2.0, 0.7), 99.9)),
        grades={
            "ss": grade_ss,
            "ssh": int(grade_ss * rng.uniform(0.0, 0.5)),
            "s": grade_s,
            "sh": int(grade_s * rng.uniform(0.0, 0.5)),
            "a": grade_a,
        },
        maximum_combo=max(p.max_combo for p in plays) + rng.randint(0, 500),
        replays_watched=rng.randint(0, int(10 + skill * 5000)),
        bonus_pp=rng.uniform(120.0, 416.6),
        ranked=not is_unranked(user_id, mode),
    )
    state.sort_plays()
    # Rank from a pp that counts even for unranked players, so their stale rank is plausible.
    state.ranked = True
    state.rank0 = max(1, int(2_500_000 * math.exp(-state.pp / 1100) * rng.uniform(0.8, 1.2)))
    state.country_rank0 = max(1, state.rank0 // rng.randint(8, 60))
    state.calibrate()
    state.ranked = not is_unranked(user_id, mode)
    state.rank_highest = max(1, int(state.rank0 * rng.uniform(0.3, 1.0)))
    state.rank_highest_at = rng.randint(join_ts, BASE_NOW)
    return state


def add_top_plays(state: PlayerState, rng: random.Random, count: int) -> list[Play]:
    """Add ``count`` plays that each beat the current 100th play, dated at the state's now."""
    added: list[Play] = []
    taken = {p.beatmap_id for p in state.plays}
    for _ in range(count):
        top = state.plays[0].pp if state.plays else 100.0
        floor = state.plays[TOP_SIZE - 1].pp if len(state.plays) >= TOP_SIZE else 0.0
        # Skewed towards the bottom of the top 100: new personal bests are rarely huge.
        pp = floor + 0.01 + (max(top * 1.03, floor + 1.0) - floor) * rng.random() ** 2
        play = make_play(
            rng, state.user_id, state.mode, state.next_index, pp, state.now - rng.randint(60, 3600)
        )
        play.beatmap_id = (
            _fresh_beatmap(rng, taken) if play.beatmap_id in taken else play.beatmap_id
        )
        play.pp = max(play.pp, round(floor + 0.001, 3))
        taken.add(play.beatmap_id)
        state.next_index += 1
        state.plays.append(play)
        state.sort_plays()
        state.maximum_combo = max(state.maximum_combo, play.max_combo)
        counter = GRADE_COUNTER.get(play.rank)
        if counter is not None:
            state.grades[counter] += 1
        added.append(play)
    return added


def advance(state: PlayerState, new_top_plays: int | None = None) -> None:
    """Move ``state`` one step forward; ``new_top_plays`` forces that many new top plays."""
    state.step += 1
    rng = random.Random(f"{state.user_id}:{state.mode}:advance:{state.step}")
    played = rng.randint(1, 25)
    hits = int(played * rng.uniform(150, 450))
    share100 = state.count100 / max(state.total_hits, 1)
    share50 = state.count50 / max(state.total_hits, 1)
    add100 = int(hits * share100 * rng.uniform(0.8, 1.2))
    add50 = int(hits * share50 * rng.uniform(0.8, 1.2))
    state.count100 += add100
    state.count50 += add50
    state.count300 += max(hits - add100 - add50, 0)
    state.count_miss += int(hits * rng.uniform(0.0, 0.03))
    state.playcount += played
    ranked_gain = played * rng.randint(20_000, 250_000)
    state.ranked_score += ranked_gain
    state.total_score += int(ranked_gain * rng.uniform(1.5, 4.0))
    state.total_seconds += played * rng.randint(60, 160)
    # Usually a fraction of a level; the integer part goes up every few steps.
    state.level_e4 += rng.randint(30, 3500)
    state.accuracy = float32(min(max(state.accuracy + rng.uniform(-0.03, 0.03), 50.0), 99.99))
    state.grades["a"] += rng.randint(0, 2)
    state.grades["s"] += rng.randint(0, 1)
    state.replays_watched += rng.randint(0, 3)
    default = rng.choices((0, 1, 2), weights=(55, 33, 12))[0]
    count = default if new_top_plays is None else new_top_plays
    play_rng = random.Random(f"{state.user_id}:{state.mode}:plays:{state.step}")
    add_top_plays(state, play_rng, count)
    rank = state.global_rank
    if rank is not None and rank < state.rank_highest:
        state.rank_highest = rank
        state.rank_highest_at = state.now


def pp_rework(state: PlayerState, factor: float) -> None:
    """Multiply the pp of every play by ``factor``; ids and scores stay as they are."""
    for play in state.plays:
        play.pp = round(play.pp * factor, 3)
    state.sort_plays()
