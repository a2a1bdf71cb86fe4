"""Deterministic stand-ins for the ``beatmap`` / ``beatmapset`` objects nested in v2 scores.

Results are cached and shared between responses: callers must not mutate them.
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache
from typing import Any

from simulator.identity import MODES

_WORDS = ("Blue", "Night", "Drive", "Zero", "Echo", "Star", "Rain", "Fire", "Code", "Dream")
_VERSIONS = ("Easy", "Normal", "Hard", "Insane", "Expert", "Extra")


@lru_cache(maxsize=65_536)
def beatmap(beatmap_id: int, mode: int, max_combo: int) -> dict[str, Any]:
    """v2 ``beatmap`` object for a play on ``beatmap_id``."""
    rng = random.Random(f"beatmap:{beatmap_id}")
    length = rng.randint(60, 400)
    return {
        "beatmapset_id": beatmap_id // 3 + 1,
        "difficulty_rating": round(rng.uniform(1.5, 8.5), 5),
        "id": beatmap_id,
        "mode": MODES[mode],
        "status": "ranked",
        "total_length": length,
        "user_id": rng.randint(2, 30_000_000),
        "version": rng.choice(_VERSIONS),
        "accuracy": rng.randint(4, 10),
        "ar": rng.randint(5, 10),
        "bpm": rng.randint(100, 240),
        "convert": False,
        "cs": rng.randint(2, 6),
        "drain": rng.randint(3, 8),
        "hit_length": length - rng.randint(0, 20),
        "is_scoreable": True,
        "mode_int": mode,
        "ranked": 1,
        "url": f"https://osu.ppy.sh/beatmaps/{beatmap_id}",
        "checksum": hashlib.md5(str(beatmap_id).encode(), usedforsecurity=False).hexdigest(),
        "max_combo": max_combo,
    }


@lru_cache(maxsize=65_536)
def beatmapset(beatmap_id: int) -> dict[str, Any]:
    """v2 ``beatmapset`` object of the set containing ``beatmap_id``."""
    set_id = beatmap_id // 3 + 1
    rng = random.Random(f"beatmapset:{set_id}")
    title = " ".join(rng.choice(_WORDS) for _ in range(2))
    artist = rng.choice(_WORDS) + " Project"
    return {
        "artist": artist,
        "artist_unicode": artist,
        "creator": f"Mapper{rng.randint(1, 99_999)}",
        "id": set_id,
        "nsfw": False,
        "status": "ranked",
        "title": title,
        "title_unicode": title,
        "user_id": rng.randint(2, 30_000_000),
        "video": False,
    }
