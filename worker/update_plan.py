"""What one update of a player in one mode should write and answer: pure, no I/O.

`plan_update` turns the state read under the update's lock, the fetched player and the
fetched top plays into an `UpdatePlan`; `worker.update_store` reads that state and writes
the plan in one transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from osutrack.fields import DIFF_FIELD_ORDER, PlayerStats
from worker.hiscores import new_hiscores, newhs_item
from worker.schedule import Intervals, Schedule, next_schedule
from worker.stats import leveled_up, stats_diff
from worker.upstream.models import Player, TopPlay


@dataclass(frozen=True)
class StoredSnapshot:
    """A stored snapshot row: its id and its stats."""

    snapshot_id: int
    stats: PlayerStats


@dataclass(frozen=True)
class LockedState:
    """What an update reads under its lock, before it decides anything.

    `finished_body`: the stored body when this job already committed. `newest`: the
    newest two snapshots (newest first, fewer when there are fewer).
    """

    finished_body: dict[str, Any] | None
    known_score_ids: frozenset[int]
    last_changed_at: datetime | None
    newest: tuple[StoredSnapshot, ...]

    @property
    def previous(self) -> PlayerStats | None:
        """The stats of the newest stored snapshot, if any."""
        return self.newest[0].stats if self.newest else None


class SnapshotAction(enum.Enum):
    """What happens to the snapshot series."""

    INSERT = "insert"
    # The newest row's time moves to now instead of adding a third equal row.
    EXTEND_PLATEAU = "extend_plateau"
    # Unranked: nothing is stored.
    NONE = "none"


@dataclass(frozen=True)
class NewPlay:
    """A top play not recorded before, with its 0-based place in the top list by pp."""

    ranking: int
    play: TopPlay


@dataclass(frozen=True)
class PeakCandidate:
    """The rank and accuracy an update folds into the user's peaks (held at `at`)."""

    global_rank: int
    accuracy: float
    at: datetime


@dataclass(frozen=True)
class UpdatePlan:
    """Everything one update writes, and the /update body it answers.

    `stats` is what the snapshot action stores (the fetched stats); `plateau_snapshot_id`
    is the row whose time moves with EXTEND_PLATEAU. `plays_to_store` are the fetched
    plays that are stored or refreshed (all but those on beatmap 0).
    """

    user_id: int
    mode: int
    username: str
    now: datetime
    job_id: str | None
    snapshot: SnapshotAction
    stats: PlayerStats
    plateau_snapshot_id: int | None
    diff: Mapping[str, int | float]
    new_plays: tuple[NewPlay, ...]
    plays_to_store: tuple[TopPlay, ...]
    peak: PeakCandidate | None
    schedule: Schedule
    body: Mapping[str, Any]


def snapshot_action(
    newest: tuple[StoredSnapshot, ...], current: PlayerStats
) -> tuple[SnapshotAction, int | None]:
    """The action storing `current` takes, and the snapshot id a plateau extends.

    Plateau compaction as osu!track: when the newest two rows and `current` are all equal,
    the newest row's time moves forward instead of adding a row, so an unchanged stretch
    is kept as exactly two rows (first seen, last seen). Unranked stats (`pp_rank` 0) are
    not stored at all.
    """
    if not current.is_ranked:
        return SnapshotAction.NONE, None
    if len(newest) == 2 and all(snapshot.stats == current for snapshot in newest):
        return SnapshotAction.EXTEND_PLATEAU, newest[0].snapshot_id
    return SnapshotAction.INSERT, None


def plan_update(
    state: LockedState,
    player: Player,
    mode: int,
    top_plays: list[TopPlay] | None,
    *,
    job_id: str | None,
    now: datetime,
    intervals: Intervals,
) -> UpdatePlan:
    """The plan of one update of `player` in `mode` at `now`, given what the lock read.

    `top_plays` None means they were not fetched because the stats did not change (the
    scheduled refresh): no play can be new then. Unranked stats store nothing, and the
    diff is zero against the stats as they stand (all zeros after an earlier snapshot),
    as osu!track does.
    """
    previous = state.previous
    action, plateau_id = snapshot_action(state.newest, player.stats)
    if action is SnapshotAction.NONE:
        current = previous or player.stats
        diff: dict[str, int | float] = dict.fromkeys(DIFF_FIELD_ORDER, 0)
        peak = None
    else:
        current = player.stats
        diff = stats_diff(previous, current)
        peak = PeakCandidate(current.pp_rank, current.accuracy, now)
    new_plays: tuple[NewPlay, ...] = ()
    plays_to_store: tuple[TopPlay, ...] = ()
    if top_plays is not None:
        new_plays = tuple(
            NewPlay(ranking, play)
            for ranking, play in new_hiscores(state.known_score_ids, top_plays)
        )
        plays_to_store = tuple(play for play in top_plays if play.beatmap_id != 0)
    schedule = next_schedule(
        now,
        changed=previous != player.stats,
        known_last_changed=state.last_changed_at,
        intervals=intervals,
    )
    body: dict[str, Any] = {
        "username": player.username,
        "mode": mode,
        **diff,
        "levelup": leveled_up(previous, current),
        "first": previous is None,
        "exists": True,
        "newhs": [newhs_item(new.play, new.ranking) for new in new_plays],
    }
    return UpdatePlan(
        user_id=player.user_id,
        mode=mode,
        username=player.username,
        now=now,
        job_id=job_id,
        snapshot=action,
        stats=player.stats,
        plateau_snapshot_id=plateau_id,
        diff=diff,
        new_plays=new_plays,
        plays_to_store=plays_to_store,
        peak=peak,
        schedule=schedule,
        body=body,
    )


def missing_user_body(mode: int) -> dict[str, Any]:
    """The body for a user osu! does not know: `exists` false, everything else empty."""
    return {
        "username": "",
        "mode": mode,
        **dict.fromkeys(DIFF_FIELD_ORDER, 0),
        "levelup": False,
        "first": False,
        "exists": False,
        "newhs": [],
    }
