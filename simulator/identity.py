"""Who exists: deterministic identities, the two fixture players, and username lookup.

Users 1 <= id < 100,000,000 exist (unless restricted, which the world tracks). Their names
are ``Player{id}``, except the fixture players built from recorded responses: 2 ("peppy")
and 7782553 ("Nice Aesthetics").
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from simulator.timefmt import parse_v1_date

MAX_USER_ID = 100_000_000
MODES = ("osu", "taiko", "fruits", "mania")
COUNTRIES = {
    "US": "United States",
    "DE": "Germany",
    "PL": "Poland",
    "JP": "Japan",
    "KR": "South Korea",
    "BR": "Brazil",
    "FR": "France",
    "GB": "United Kingdom",
    "CA": "Canada",
    "RU": "Russian Federation",
    "AU": "Australia",
    "RO": "Romania",
}
_JOIN_FIRST = parse_v1_date("2007-09-01 00:00:00")
_JOIN_LAST = parse_v1_date("2024-12-31 00:00:00")
_PLAYER_NAME = re.compile(r"player([1-9][0-9]*)")


@dataclass(frozen=True, slots=True)
class Identity:
    """The mode-independent part of a user."""

    user_id: int
    username: str
    country: str
    join_ts: int
    playmode: str
    is_supporter: bool

    @property
    def country_name(self) -> str:
        """English country name for v2 ``country.name``."""
        return COUNTRIES.get(self.country, self.country)


@cache
def fixture_players() -> dict[int, dict[str, Any]]:
    """Recorded players from ``simulator/data/fixture_players.json`` keyed by user id."""
    text = resources.files("simulator").joinpath("data/fixture_players.json").read_text("utf-8")
    return {p["user_id"]: p for p in json.loads(text)["players"]}


def in_range(user_id: int) -> bool:
    """True if ``user_id`` can exist at all (restrictions aside)."""
    return 1 <= user_id < MAX_USER_ID


def identity(user_id: int) -> Identity:
    """Deterministic identity of ``user_id`` (which must be in range)."""
    fixture = fixture_players().get(user_id)
    rng = random.Random(f"{user_id}:identity")
    country = rng.choice(sorted(COUNTRIES))
    join_ts = rng.randint(_JOIN_FIRST, _JOIN_LAST)
    playmode = rng.choices(MODES, weights=(70, 10, 8, 12))[0]
    supporter = rng.random() < 0.1
    if fixture is not None:
        return Identity(
            user_id=user_id,
            username=fixture["username"],
            country=fixture["country"],
            join_ts=parse_v1_date(fixture["join_date"]),
            playmode=fixture["playmode"],
            is_supporter=supporter,
        )
    return Identity(user_id, f"Player{user_id}", country, join_ts, playmode, supporter)


def resolve_username(name: str) -> int | None:
    """User id for a current username (case-insensitive, ``_`` equals space), else None."""
    wanted = name.strip().lower().replace("_", " ")
    for user_id, fixture in fixture_players().items():
        if fixture["username"].lower() == wanted:
            return user_id
    match = _PLAYER_NAME.fullmatch(wanted)
    if match is None:
        return None
    user_id = int(match.group(1))
    if not in_range(user_id) or user_id in fixture_players():
        return None
    return user_id
