"""The osu! API client: v1 or v2 behind one interface (`OsuClient`)."""

from __future__ import annotations

from typing import Protocol

import redis

from osutrack.settings import Settings
from worker.upstream.http import UpstreamHttp
from worker.upstream.limiter import UpstreamLimiter
from worker.upstream.models import Player, TopPlay
from worker.upstream.token import TokenProvider
from worker.upstream.v1 import V1Client
from worker.upstream.v2 import V2Client


class OsuClient(Protocol):
    """What the update logic needs from the osu! API."""

    def fetch_player(self, user_id: int, mode: int) -> Player | None:
        """The player in `mode`, or None if osu! says the user does not exist."""
        ...

    def fetch_top_plays(self, user_id: int, mode: int) -> list[TopPlay] | None:
        """The player's top plays by pp, best first (at most 100); None if osu! says the
        user does not exist (restricted since the player was fetched)."""
        ...

    def fetch_players(
        self, user_modes: list[tuple[int, int]]
    ) -> dict[tuple[int, int], Player | None]:
        """Each (user_id, mode)'s player, or None for a user osu! does not know, in as few
        requests as the API version allows."""
        ...


def make_client(settings: Settings, redis_client: redis.Redis) -> OsuClient:
    """The client the settings ask for, sharing the fleet's request budget and token."""
    limiter = UpstreamLimiter(
        redis_client,
        settings.effective_rate_limit,
        refresh_share=settings.refresh_budget_share,
        max_wait_seconds=settings.osu_api_slot_wait_seconds,
    )
    http = UpstreamHttp(
        settings.osu_api_base_url,
        limiter,
        redis_client,
        timeout_seconds=settings.osu_api_timeout_seconds,
    )
    if settings.effective_api_version == "v1":
        return V1Client(http, settings.osu_api_key)
    tokens = TokenProvider(http, redis_client, settings.osu_client_id, settings.osu_client_secret)
    return V2Client(http, tokens)


__all__ = ["OsuClient", "Player", "TopPlay", "make_client"]
