"""The simulated world: every player's state, restrictions, and the operations on them.

States are materialised lazily and cached (LRU). Operations are recorded as an ordered
event log: global advances apply to everyone, per-player events (advance with forced plays,
pp rework) to one (user, mode). A state evicted from the cache is rebuilt by replaying the
log from step 0, which gives the same result because every step is seeded deterministically.
All methods must be called with ``lock`` held; they are not re-entrant-safe otherwise.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from dataclasses import dataclass

from simulator.fixture_state import fixture_state, has_fixture
from simulator.identity import in_range
from simulator.players import PlayerState, advance, generate, pp_rework

Key = tuple[int, int]


@dataclass(frozen=True, slots=True)
class PlayerEvent:
    """One per-player operation: an advance of ``steps`` or a pp rework by ``factor``."""

    seq: int
    steps: int = 0
    new_top_plays: int | None = None
    factor: float | None = None


class World:
    """Container of all mutable simulation state, guarded by ``lock``."""

    def __init__(self, cache_size: int = 3000) -> None:
        self.lock = threading.RLock()
        self._cache_size = cache_size
        self.reset()

    def reset(self) -> None:
        """Back to step 0 for everybody, no restrictions."""
        self._seq = 0
        self._global_seqs: list[int] = []
        self._global_steps: list[int] = []
        self._player_events: dict[Key, list[PlayerEvent]] = {}
        self._cache: OrderedDict[Key, PlayerState] = OrderedDict()
        self.restricted: set[int] = set()

    @property
    def global_steps(self) -> int:
        """Steps added to every player by global advances."""
        return sum(self._global_steps)

    def exists(self, user_id: int) -> bool:
        """True if the user can be seen by the public API right now."""
        return in_range(user_id) and user_id not in self.restricted

    def state(self, user_id: int, mode: int) -> PlayerState:
        """Current state of (user_id, mode); user_id must be in range."""
        key = (user_id, mode)
        state = self._cache.pop(key, None)
        if state is None:
            state = (
                fixture_state(user_id) if has_fixture(user_id, mode) else generate(user_id, mode)
            )
        if state.applied_seq < self._seq:
            self._catch_up(key, state)
        self._cache[key] = state
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return state

    def _catch_up(self, key: Key, state: PlayerState) -> None:
        start = bisect.bisect_right(self._global_seqs, state.applied_seq)
        pending: list[PlayerEvent] = [
            PlayerEvent(seq=seq, steps=steps)
            for seq, steps in zip(
                self._global_seqs[start:], self._global_steps[start:], strict=True
            )
        ]
        pending += [e for e in self._player_events.get(key, []) if e.seq > state.applied_seq]
        pending.sort(key=lambda e: e.seq)
        for event in pending:
            if event.factor is not None:
                pp_rework(state, event.factor)
            for step in range(event.steps):
                forced = event.new_top_plays if step == event.steps - 1 else None
                advance(state, forced)
        state.applied_seq = self._seq

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def advance_all(self, steps: int) -> None:
        """Advance every player by ``steps`` (applied lazily on next access)."""
        self._global_seqs.append(self._next_seq())
        self._global_steps.append(steps)

    def advance_player(
        self, user_id: int, mode: int, steps: int, new_top_plays: int | None
    ) -> PlayerState:
        """Advance one (user, mode); the last step adds exactly ``new_top_plays`` if given."""
        event = PlayerEvent(seq=self._next_seq(), steps=steps, new_top_plays=new_top_plays)
        self._player_events.setdefault((user_id, mode), []).append(event)
        return self.state(user_id, mode)

    def rework(self, user_id: int, mode: int, factor: float) -> PlayerState:
        """Multiply the pp of all plays of (user, mode) by ``factor``."""
        event = PlayerEvent(seq=self._next_seq(), factor=factor)
        self._player_events.setdefault((user_id, mode), []).append(event)
        return self.state(user_id, mode)
