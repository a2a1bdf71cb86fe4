"""The internal model of what the osu! API says about a player, whichever version said it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from osutrack.fields import PlayerStats

log = logging.getLogger(__name__)

MODE_NAMES_V2 = ("osu", "taiko", "fruits", "mania")


@dataclass(frozen=True)
class Player:
    """A player as found upstream in one mode."""

    user_id: int
    username: str
    stats: PlayerStats


@dataclass(frozen=True)
class TopPlay:
    """One of a player's top plays, in the shape of an osu! API v1 `get_user_best` row.

    `score_id` is the id osu!track keys plays by: v1 `score_id`; v2 `legacy_score_id` when
    above 0, else the v2 `id`.
    """

    score_id: int
    beatmap_id: int
    score: int
    maxcombo: int
    count50: int
    count100: int
    count300: int
    countmiss: int
    countkatu: int
    countgeki: int
    perfect: bool
    enabled_mods: int
    user_id: int
    score_time: datetime
    rank: str
    pp: float
    replay_available: bool


def only_players_plays(user_id: int, plays: list[TopPlay]) -> list[TopPlay]:
    """Drop plays that claim to belong to someone else: never file them under this player."""
    kept = [play for play in plays if play.user_id == user_id]
    if len(kept) != len(plays):
        log.warning("dropped %d top plays of other users for %d", len(plays) - len(kept), user_id)
    return kept
