"""The simulated world: every player's state, restrictions, and the operations on them.

States are materialised lazily and cached (LRU). Operations are recorded as an ordered
event log: global advances apply to everyone, per-player events (advance with forced plays,
pp rework) to one (user, mode). A state evicted from the cache is rebuilt by replaying the
log from step 0, which gives the same result because every step is seeded deterministically.
That log and the restrictions are the whole world, so with a ``state_path`` they are written
there after every change and read back at start: a restarted simulator goes on where it
stopped instead of answering older stats than a client has already stored.
All methods must be called with ``lock`` held; they are not re-entrant-safe otherwise.
"""

from __future__ import annotations

import bisect
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

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


STATE_VERSION = 1


class StateFileError(Exception):
    """The state file exists but cannot be read back as a world."""


class World:
    """Container of all mutable simulation state, guarded by ``lock``.

    With ``state_path``, the world is loaded from that file when it exists and saved to it
    after every change (``StateFileError`` when the file is unreadable: starting from step 0
    instead would rewind every player).
    """

    def __init__(self, cache_size: int = 3000, state_path: Path | None = None) -> None:
        self.lock = threading.RLock()
        self._cache_size = cache_size
        self._state_path = state_path
        self._clear()
        if state_path is not None and state_path.exists():
            self._load(state_path)

    def _clear(self) -> None:
        self._seq = 0
        self._global_seqs: list[int] = []
        self._global_steps: list[int] = []
        self._player_events: dict[Key, list[PlayerEvent]] = {}
        self._cache: OrderedDict[Key, PlayerState] = OrderedDict()
        self._restricted: set[int] = set()

    def reset(self) -> None:
        """Back to step 0 for everybody, no restrictions."""
        self._clear()
        self._save()

    @property
    def restricted(self) -> frozenset[int]:
        """Users hidden from the public API."""
        return frozenset(self._restricted)

    def restrict(self, user_id: int) -> None:
        """Hide a user from the public API; their state is kept."""
        self._restricted.add(user_id)
        self._save()

    def unrestrict(self, user_id: int) -> None:
        """Show a restricted user again."""
        self._restricted.discard(user_id)
        self._save()

    @property
    def global_steps(self) -> int:
        """Steps added to every player by global advances."""
        return sum(self._global_steps)

    def exists(self, user_id: int) -> bool:
        """True if the user can be seen by the public API right now."""
        return in_range(user_id) and user_id not in self._restricted

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
        self._save()

    def advance_player(
        self, user_id: int, mode: int, steps: int, new_top_plays: int | None
    ) -> PlayerState:
        """Advance one (user, mode); the last step adds exactly ``new_top_plays`` if given."""
        event = PlayerEvent(seq=self._next_seq(), steps=steps, new_top_plays=new_top_plays)
        self._player_events.setdefault((user_id, mode), []).append(event)
        self._save()
        return self.state(user_id, mode)

    def rework(self, user_id: int, mode: int, factor: float) -> PlayerState:
        """Multiply the pp of all plays of (user, mode) by ``factor``."""
        event = PlayerEvent(seq=self._next_seq(), factor=factor)
        self._player_events.setdefault((user_id, mode), []).append(event)
        self._save()
        return self.state(user_id, mode)

    def snapshot(self) -> dict[str, Any]:
        """The event log and restrictions as JSON-ready data (what the state file holds).

        Global advances with no per-player event between them are merged into one: the
        same steps in the same order, so every state replays the same, and the file grows
        with per-player events only, not with every auto-advance.
        """
        player_seqs = sorted(e.seq for events in self._player_events.values() for e in events)
        merged: list[list[int]] = []
        for seq, steps in zip(self._global_seqs, self._global_steps, strict=True):
            if merged and bisect.bisect_left(player_seqs, merged[-1][0]) == bisect.bisect_left(
                player_seqs, seq
            ):
                merged[-1] = [seq, merged[-1][1] + steps]
            else:
                merged.append([seq, steps])
        return {
            "version": STATE_VERSION,
            "seq": self._seq,
            "global": merged,
            "players": [
                [user_id, mode, e.seq, e.steps, e.new_top_plays, e.factor]
                for (user_id, mode), events in sorted(self._player_events.items())
                for e in events
            ],
            "restricted": sorted(self._restricted),
        }

    def _save(self) -> None:
        if self._state_path is None:
            return
        path = self._state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as out:
            out.write(orjson.dumps(self.snapshot()))
            out.flush()
            os.fsync(out.fileno())
        # A crash leaves either the old file or the new one, never half of one.
        partial.replace(path)

    def _load(self, path: Path) -> None:
        try:
            data = orjson.loads(path.read_bytes())
            if data["version"] != STATE_VERSION:
                raise ValueError(f"version {data['version']}, expected {STATE_VERSION}")
            self._seq = int(data["seq"])
            for seq, steps in data["global"]:
                self._global_seqs.append(int(seq))
                self._global_steps.append(int(steps))
            for user_id, mode, seq, steps, new_top_plays, factor in data["players"]:
                event = PlayerEvent(
                    seq=int(seq), steps=int(steps), new_top_plays=new_top_plays, factor=factor
                )
                self._player_events.setdefault((int(user_id), int(mode)), []).append(event)
            self._restricted = {int(user_id) for user_id in data["restricted"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StateFileError(f"cannot read the simulator state {path}: {exc}") from exc
