"""The update plan, without services: recorded osu! API answers in, plan out."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.recorded import needs_recordings, recorded

from osutrack.fields import DIFF_FIELD_ORDER, STATS, PlayerStats
from osutrack.settings import parse_refresh_intervals
from worker.hiscores import newhs_item
from worker.schedule import check_interval
from worker.update_plan import (
    LockedState,
    NewPlay,
    PeakCandidate,
    SnapshotAction,
    StoredSnapshot,
    UpdatePlan,
    missing_user_body,
    plan_update,
    snapshot_action,
)
from worker.upstream.models import Player, TopPlay
from worker.upstream.v1 import play_from_v1, stats_from_v1
from worker.upstream.v2 import play_from_v2, stats_from_v2

INTERVALS = parse_refresh_intervals("1d=1h,7d=6h,*=7d")
NOW = datetime(2026, 7, 1, 12, tzinfo=UTC)
EARLIER = NOW - timedelta(days=3)
EMPTY = LockedState(None, frozenset(), None, ())
BODY_KEYS = ["username", "mode", *DIFF_FIELD_ORDER, "levelup", "first", "exists", "newhs"]


def _v1_player(name: str) -> Player:
    raw = recorded(name)[0]
    return Player(int(raw["user_id"]), raw["username"], stats_from_v1(raw))


def _v1_plays(name: str) -> list[TopPlay]:
    return [play_from_v1(row) for row in recorded(name)]


def _state(
    *newest: PlayerStats,
    known: frozenset[int] = frozenset(),
    last_changed_at: datetime | None = None,
) -> LockedState:
    snapshots = tuple(StoredSnapshot(100 - index, stats) for index, stats in enumerate(newest))
    return LockedState(None, known, last_changed_at, snapshots)


def _plan(
    state: LockedState,
    player: Player,
    plays: list[TopPlay] | None = None,
    *,
    job_id: str | None = None,
    now: datetime = NOW,
) -> UpdatePlan:
    return plan_update(state, player, 0, plays, job_id=job_id, now=now, intervals=INTERVALS)


@pytest.fixture
def peppy() -> Player:
    return _v1_player("v1_get_user_peppy_osu_2026-07_aiosu.json")


@pytest.fixture
def peppy_plays() -> list[TopPlay]:
    return _v1_plays("v1_get_user_best_peppy_osu_limit10_2026-07_aiosu.json")


# --- a first update ------------------------------------------------------------------------


@needs_recordings
def test_first_update_inserts_and_reports_everything(
    peppy: Player, peppy_plays: list[TopPlay]
) -> None:
    plan = _plan(EMPTY, peppy, peppy_plays, job_id="job-1")
    assert plan.snapshot is SnapshotAction.INSERT
    assert plan.stats == peppy.stats
    assert plan.plateau_snapshot_id is None
    assert plan.diff == {name: getattr(peppy.stats, name) for name in DIFF_FIELD_ORDER}
    assert plan.peak == PeakCandidate(peppy.stats.pp_rank, peppy.stats.accuracy, NOW)
    assert plan.schedule.last_changed_at == NOW
    assert plan.schedule.next_check_at == NOW + check_interval(timedelta(0), INTERVALS)
    assert plan.job_id == "job-1"
    assert (plan.user_id, plan.mode, plan.username, plan.now) == (2, 0, "peppy", NOW)
    by_pp = sorted(peppy_plays, key=lambda play: play.pp, reverse=True)
    assert plan.new_plays == tuple(NewPlay(rank, play) for rank, play in enumerate(by_pp))
    assert plan.plays_to_store == tuple(peppy_plays)
    body = plan.body
    assert list(body) == BODY_KEYS
    assert (body["username"], body["mode"], body["exists"]) == ("peppy", 0, True)
    assert body["first"] is True
    assert body["levelup"] is False
    assert body["newhs"] == [newhs_item(play, rank) for rank, play in enumerate(by_pp)]
    # Stored as the job's result: JSON as it stands.
    assert orjson.loads(orjson.dumps(body)) == body


@needs_recordings
def test_the_recorded_top_lists_keep_their_v1_rows_as_newhs(peppy: Player) -> None:
    name = "v1_get_user_best_user28694940_osu_limit10_2022_aiosu.json"
    rows = recorded(name)
    plan = _plan(EMPTY, peppy, _v1_plays(name))
    # The recording is best first, so each row comes back as is, with its place.
    assert [dict(item) for item in plan.body["newhs"]] == [
        {**row, "ranking": ranking} for ranking, row in enumerate(rows)
    ]


@needs_recordings
def test_v2_recordings_plan_like_v1(peppy: Player) -> None:
    statistics = recorded("v2_user_peppy_default-mode_2026-07_aiosu.json")["statistics"]
    v2 = Player(2, "peppy", stats_from_v2(statistics))
    score = recorded("v2_score_4220635589_new-format-x-api-version-20220705_2026-07_aiosu.json")
    plays = [play_from_v2(score)]
    plan = _plan(EMPTY, v2, plays)
    assert plan.snapshot is SnapshotAction.INSERT
    assert [new.ranking for new in plan.new_plays] == list(range(len(plays)))
    # Same day, both versions: the counts that v2 does not round agree.
    v1_plan = _plan(EMPTY, peppy)
    for name in ("playcount", "pp_rank", "ranked_score", "count300", "count_rank_a"):
        assert plan.diff[name] == v1_plan.diff[name], name


# --- the plateau ---------------------------------------------------------------------------


@needs_recordings
def test_a_third_equal_snapshot_extends_the_plateau(peppy: Player) -> None:
    stats = peppy.stats
    plan = _plan(_state(stats, stats, last_changed_at=EARLIER), peppy)
    assert plan.snapshot is SnapshotAction.EXTEND_PLATEAU
    assert plan.plateau_snapshot_id == 100
    assert plan.diff == dict.fromkeys(DIFF_FIELD_ORDER, 0)
    # The latest time the peak was held moves too.
    assert plan.peak == PeakCandidate(stats.pp_rank, stats.accuracy, NOW)
    # Unchanged: the stored time of the last change stays, and the interval follows it.
    assert plan.schedule.last_changed_at == EARLIER
    assert plan.schedule.next_check_at == NOW + check_interval(NOW - EARLIER, INTERVALS)
    assert plan.body["first"] is False


@needs_recordings
def test_the_second_equal_snapshot_is_inserted(peppy: Player) -> None:
    plan = _plan(_state(peppy.stats), peppy)
    assert plan.snapshot is SnapshotAction.INSERT
    assert plan.plateau_snapshot_id is None


@needs_recordings
def test_a_plateau_needs_both_newest_rows_equal(peppy: Player) -> None:
    older = replace(peppy.stats, playcount=peppy.stats.playcount - 1)
    assert _plan(_state(peppy.stats, older), peppy).snapshot is SnapshotAction.INSERT
    assert _plan(_state(older, peppy.stats), peppy).snapshot is SnapshotAction.INSERT


@needs_recordings
def test_a_change_after_a_plateau_inserts_with_its_diff(peppy: Player) -> None:
    before = replace(
        peppy.stats,
        playcount=peppy.stats.playcount - 3,
        pp_rank=peppy.stats.pp_rank + 10,
        level=peppy.stats.level - 1,
    )
    plan = _plan(_state(before, before, last_changed_at=EARLIER), peppy)
    assert plan.snapshot is SnapshotAction.INSERT
    assert plan.diff["playcount"] == 3
    # A better rank is a smaller number: the diff is negative.
    assert plan.diff["pp_rank"] == -10
    assert plan.body["levelup"] is True
    assert plan.schedule.last_changed_at == NOW


# --- unranked ------------------------------------------------------------------------------


@needs_recordings
def test_unranked_stores_nothing_and_reports_a_zero_diff(peppy: Player) -> None:
    inactive = _v1_player("v1_get_user_peppy_osu_2023-08_inactive-pp0_aiosu.json")
    assert not inactive.stats.is_ranked
    plan = _plan(_state(peppy.stats, last_changed_at=EARLIER), inactive)
    assert plan.snapshot is SnapshotAction.NONE
    assert plan.peak is None
    assert plan.diff == dict.fromkeys(DIFF_FIELD_ORDER, 0)
    assert plan.body["first"] is False
    assert plan.body["levelup"] is False
    # The stats differ from the stored ones: a change for the schedule.
    assert plan.schedule.last_changed_at == NOW


@needs_recordings
def test_unranked_first_update_is_first_and_stores_nothing() -> None:
    statistics = recorded("v2_user_niceaesth_fruits_unranked_2022-09_aiosu.json")["statistics"]
    unranked = Player(7, "n", stats_from_v2(statistics))
    plan = _plan(EMPTY, unranked, [])
    assert plan.snapshot is SnapshotAction.NONE
    assert plan.body["first"] is True
    assert plan.diff == dict.fromkeys(DIFF_FIELD_ORDER, 0)


# --- top plays -----------------------------------------------------------------------------


@needs_recordings
def test_known_plays_are_not_new_but_keep_their_place(
    peppy: Player, peppy_plays: list[TopPlay]
) -> None:
    by_pp = sorted(peppy_plays, key=lambda play: play.pp, reverse=True)
    known = frozenset(play.score_id for play in by_pp if play is not by_pp[3])
    plan = _plan(_state(peppy.stats, known=known), peppy, peppy_plays)
    assert plan.new_plays == (NewPlay(3, by_pp[3]),)
    assert [item["ranking"] for item in plan.body["newhs"]] == [3]
    # Every play is stored again (a pp rework updates its pp).
    assert plan.plays_to_store == tuple(peppy_plays)


@needs_recordings
def test_plays_on_beatmap_zero_are_neither_new_nor_stored(
    peppy: Player, peppy_plays: list[TopPlay]
) -> None:
    zeroed = [replace(peppy_plays[0], beatmap_id=0), *peppy_plays[1:]]
    plan = _plan(EMPTY, peppy, zeroed)
    assert zeroed[0] not in plan.plays_to_store
    assert all(new.play is not zeroed[0] for new in plan.new_plays)
    # Its place still counts.
    assert plan.new_plays[0].ranking == 1


@needs_recordings
def test_plays_not_fetched_are_neither_new_nor_stored(peppy: Player) -> None:
    plan = _plan(_state(peppy.stats), peppy, None)
    assert plan.new_plays == ()
    assert plan.plays_to_store == ()
    assert plan.body["newhs"] == []


@needs_recordings
def test_the_plan_is_frozen(peppy: Player) -> None:
    plan = _plan(EMPTY, peppy)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.snapshot = SnapshotAction.NONE  # type: ignore[misc]


def test_missing_user_body_is_empty_in_body_order() -> None:
    body = missing_user_body(2)
    assert list(body) == BODY_KEYS
    assert body["mode"] == 2
    assert body["exists"] is False
    assert all(body[name] == 0 for name in DIFF_FIELD_ORDER)


# --- properties ----------------------------------------------------------------------------

BASE = PlayerStats(1000, 100, 10, 50, 5_000_000, 20_000_000, 8000, 99.5, 4000.0, 98.5, 3, 40, 60)


def _stats_values() -> st.SearchStrategy[PlayerStats]:
    """Stats from a few values each, so runs of equal stats (and unranked ones) are common."""
    small = {
        stat.name: st.sampled_from([stat.kind(0), stat.kind(1), stat.kind(2)])
        if stat.name != "pp_rank"
        else st.sampled_from([0, 5, 9])
        for stat in STATS
    }
    return st.builds(PlayerStats, **small)


def _runs() -> st.SearchStrategy[list[PlayerStats]]:
    """A sequence of fetched stats: a few distinct ones, each repeated a few times."""
    return st.lists(
        st.tuples(st.sampled_from([BASE, replace(BASE, playcount=51), replace(BASE, pp_rank=0)]),
                  st.integers(1, 4)),
        max_size=6,
    ).map(lambda runs: [stats for stats, times in runs for _ in range(times)])  # fmt: skip


def _apply(series: list[tuple[int, PlayerStats, datetime]], plan: UpdatePlan) -> None:
    """What the store does to the snapshot series, in memory (oldest first)."""
    if plan.snapshot is SnapshotAction.INSERT:
        series.append((len(series) + 1, plan.stats, plan.now))
    elif plan.snapshot is SnapshotAction.EXTEND_PLATEAU:
        snapshot_id, stats, _ = series[-1]
        assert snapshot_id == plan.plateau_snapshot_id
        series[-1] = (snapshot_id, stats, plan.now)


def _locked(series: list[tuple[int, PlayerStats, datetime]]) -> LockedState:
    newest = tuple(StoredSnapshot(i, stats) for i, stats, _ in reversed(series[-2:]))
    return LockedState(None, frozenset(), None, newest)


@given(_runs())
def test_every_run_of_equal_stats_is_kept_as_first_and_last_seen(
    fetched: list[PlayerStats],
) -> None:
    series: list[tuple[int, PlayerStats, datetime]] = []
    for hour, stats in enumerate(fetched):
        _apply(
            series, _plan(_locked(series), Player(1, "p", stats), now=NOW + timedelta(hours=hour))
        )
    ranked = [(hour, stats) for hour, stats in enumerate(fetched) if stats.is_ranked]
    # Expected: each maximal run of equal ranked stats (unranked ones skipped) as its first
    # sighting and, when seen more than once, its last.
    expected: list[tuple[PlayerStats, datetime]] = []
    run_start = 0
    for index, (hour, stats) in enumerate(ranked):
        ends_run = index + 1 == len(ranked) or ranked[index + 1][1] != stats
        if not ends_run:
            continue
        first_hour = ranked[run_start][0]
        expected.append((stats, NOW + timedelta(hours=first_hour)))
        if hour != first_hour:
            expected.append((stats, NOW + timedelta(hours=hour)))
        run_start = index + 1
    assert [(stats, at) for _, stats, at in series] == expected


@given(_stats_values(), st.one_of(st.none(), _stats_values()))
def test_the_diff_is_new_minus_newest_stored_in_body_order(
    current: PlayerStats, stored: PlayerStats | None
) -> None:
    state = _state() if stored is None else _state(stored)
    plan = _plan(state, Player(1, "p", current))
    assert list(plan.body) == BODY_KEYS
    assert plan.body["first"] is (stored is None)
    if not current.is_ranked:
        assert plan.snapshot is SnapshotAction.NONE
        assert all(plan.body[name] == 0 for name in DIFF_FIELD_ORDER)
        return
    base = stored or PlayerStats(0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0, 0, 0)
    for name in DIFF_FIELD_ORDER:
        assert plan.body[name] == getattr(current, name) - getattr(base, name)
    assert plan.peak == PeakCandidate(current.pp_rank, current.accuracy, NOW)


@given(_stats_values(), _stats_values(), st.none() | st.just(EARLIER))
def test_the_schedule_moves_the_last_change_only_when_the_stats_changed(
    current: PlayerStats, stored: PlayerStats, known_change: datetime | None
) -> None:
    plan = _plan(_state(stored, last_changed_at=known_change), Player(1, "p", current))
    last_changed = NOW if current != stored or known_change is None else known_change
    assert plan.schedule.last_changed_at == last_changed
    assert plan.schedule.next_check_at == NOW + check_interval(NOW - last_changed, INTERVALS)


@given(st.lists(st.tuples(st.integers(1, 50), st.floats(0, 1000), st.integers(0, 3)), max_size=12),
       st.frozensets(st.integers(1, 50)))  # fmt: skip
def test_new_plays_are_the_unknown_ones_ranked_by_pp(
    drawn: list[tuple[int, float, int]], known: frozenset[int]
) -> None:
    template = _template_play()
    # One play per score id, as in a top list.
    unique = {score_id: (pp, beatmap_id) for score_id, pp, beatmap_id in drawn}
    plays = [
        replace(template, score_id=score_id, pp=pp, beatmap_id=beatmap_id)
        for score_id, (pp, beatmap_id) in unique.items()
    ]
    plan = _plan(_state(BASE, known=known), Player(1, "p", BASE), plays)
    by_pp = sorted(plays, key=lambda play: play.pp, reverse=True)
    assert plan.new_plays == tuple(
        NewPlay(rank, play)
        for rank, play in enumerate(by_pp)
        if play.beatmap_id != 0 and play.score_id not in known
    )
    assert plan.plays_to_store == tuple(play for play in plays if play.beatmap_id != 0)


def test_snapshot_action_of_no_snapshot_and_of_one() -> None:
    assert snapshot_action((), BASE) == (SnapshotAction.INSERT, None)
    assert snapshot_action((StoredSnapshot(4, BASE),), BASE) == (SnapshotAction.INSERT, None)
    unranked = replace(BASE, pp_rank=0)
    both = (StoredSnapshot(4, unranked), StoredSnapshot(3, unranked))
    assert snapshot_action(both, unranked) == (SnapshotAction.NONE, None)


def _template_play() -> TopPlay:
    return TopPlay(1, 1, 1_000_000, 500, 0, 1, 300, 0, 0, 0, False, 0, 1, NOW, "A", 100.0, False)
