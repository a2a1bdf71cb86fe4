"""The scripted walk: update, let the player play, update again, read every endpoint.

Expected values come from the simulator's ground truth, never from constants.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from conftest import SIMULATOR_API_KEY, Stack
from sqlalchemy.orm import Session
from support.simulator import SimulatorClient

from osutrack.fields import DIFF_FIELD_ORDER
from worker.bestplays import rebuild_bestplays, rebuild_month_lists

INT_FIELDS = (
    "playcount",
    "pp_rank",
    "total_score",
    "ranked_score",
    "count300",
    "count50",
    "count100",
    "count_rank_a",
)
ORDER = ["username", "mode", *DIFF_FIELD_ORDER, "levelup", "first", "exists", "newhs"]
NEWHS_KEYS = [
    "beatmap_id",
    "score_id",
    "score",
    "maxcombo",
    "count50",
    "count100",
    "count300",
    "countmiss",
    "countkatu",
    "countgeki",
    "perfect",
    "enabled_mods",
    "user_id",
    "date",
    "rank",
    "pp",
    "replay_available",
    "ranking",
]


def _stats(truth: dict[str, Any]) -> dict[str, float]:
    stats = truth["stats"]
    return {
        **{name: stats[name] for name in INT_FIELDS if name != "pp_rank"},
        "pp_rank": stats["global_rank"] or 0,
        "pp_raw": stats["pp_raw"],
        "accuracy": stats["accuracy"],
        "level": stats["level"],
        "count_rank_ss": stats["count_rank_ss"] + stats["count_rank_ssh"],
        "count_rank_s": stats["count_rank_s"] + stats["count_rank_sh"],
    }


def _visible_plays(
    stack: Stack, simulator: SimulatorClient, truth: dict[str, Any]
) -> list[dict[str, Any]]:
    """The top plays the flavour's upstream lists, best first, as {score_id, pp}."""
    if stack.flavour == "v2":
        return truth["top_plays"]
    # v1 lists only stable plays (those with a legacy score id), so its top 100 reaches
    # further down than v2's: ask the simulated v1 endpoint itself.
    rows = requests.get(
        f"{simulator.base_url}/api/get_user_best",
        params={"k": SIMULATOR_API_KEY, "u": truth["user_id"], "m": 0, "limit": 100, "type": "id"},
        timeout=10,
    ).json()
    return [{"score_id": int(row["score_id"]), "pp": float(row["pp"])} for row in rows]


def _assert_diff(body: dict[str, Any], before: dict[str, float] | None, after: dict[str, float]):
    for name, value in after.items():
        expected = value - (before[name] if before else 0)
        # v2 rounds level progress and accuracy; both flavours agree to these precisions.
        tolerance = {"level": 0.011, "accuracy": 1e-4, "pp_raw": 1e-6}.get(name, 0)
        assert body[name] == pytest.approx(expected, abs=tolerance), name


@pytest.mark.integration
def test_walk(
    stack: Stack,
    simulator: SimulatorClient,
    db_engine: sa.Engine,
    new_user_id: Callable[[], int],
) -> None:
    user = new_user_id()
    truth1 = simulator.truth(user, 0)

    first = stack.post_update(user, 0)
    assert first.status_code == 200, first.text
    body = first.json()
    assert list(body) == ORDER
    assert body["username"] == truth1["username"]
    assert (body["mode"], body["first"], body["exists"], body["levelup"]) == (0, True, True, False)
    _assert_diff(body, None, _stats(truth1))
    plays1 = _visible_plays(stack, simulator, truth1)
    assert [item["score_id"] for item in body["newhs"]] == [str(p["score_id"]) for p in plays1]
    assert [item["ranking"] for item in body["newhs"]] == list(range(len(plays1)))
    assert all(list(item) == NEWHS_KEYS for item in body["newhs"])

    truth2 = simulator.advance(user, 0, new_top_plays=2)
    second = stack.post_update(user, 0).json()
    assert (second["first"], second["exists"]) == (False, True)
    _assert_diff(second, _stats(truth1), _stats(truth2))
    assert second["levelup"] == (int(truth1["stats"]["level"]) != int(truth2["stats"]["level"]))
    plays2 = _visible_plays(stack, simulator, truth2)
    known = {p["score_id"] for p in plays1}
    expected_new = [(i, p) for i, p in enumerate(plays2) if p["score_id"] not in known]
    assert [(item["ranking"], item["score_id"]) for item in second["newhs"]] == [
        (i, str(p["score_id"])) for i, p in expected_new
    ]
    if stack.flavour == "v2":
        assert len(expected_new) == 2
    assert float(second["newhs"][0]["pp"]) == pytest.approx(expected_new[0][1]["pp"])

    # Unchanged twice more: a zero diff, and the stretch is kept as first and last seen.
    third = stack.post_update(user, 0).json()
    assert third["newhs"] == []
    assert all(third[name] == 0 for name in ORDER[2:15])
    stack.post_update(user, 0)
    history = stack.get("/stats_history", user=user, mode=0).json()
    assert len(history) == 3
    assert [row["playcount"] for row in history] == [
        truth1["stats"]["playcount"],
        truth2["stats"]["playcount"],
        truth2["stats"]["playcount"],
    ]
    assert history[0]["ranked_score"] == str(truth1["stats"]["ranked_score"])
    assert history[-1]["total_score"] == str(truth2["stats"]["total_score"])
    assert all(row["timestamp"].endswith(".000Z") for row in history)
    assert history[0]["timestamp"] <= history[1]["timestamp"] <= history[2]["timestamp"]

    hiscores = stack.get("/hiscores", user=user, mode=0).json()
    assert len(hiscores) == len(known | {p["score_id"] for p in plays2})
    times = [row["score_time"] for row in hiscores]
    assert times == sorted(times)
    assert {round(row["pp"], 3) for row in hiscores} >= {round(p["pp"], 3) for p in plays2}

    by_name = stack.get(
        "/hiscores", user=truth1["username"].upper(), mode=0, userMode="username"
    ).json()
    assert by_name == hiscores

    peak = stack.get("/peak", user=user, mode=0).json()
    ranks = [_stats(t)["pp_rank"] for t in (truth1, truth2)]
    assert peak[0]["best_global_rank"] == min(ranks)
    best_rank_time = history[0]["timestamp"] if ranks[0] < ranks[1] else history[2]["timestamp"]
    assert peak[0]["best_rank_timestamp"] == best_rank_time

    # Beat rebuilds the bestplays table and its month lists on its own schedule (tested in
    # test_beat); here the rebuild runs at once so the walk sees its own plays.
    with Session(db_engine) as session, session.begin():
        rebuild_month_lists(session, 0, 10_000, datetime.now(UTC))
        rebuild_bestplays(session, 0, 10_000, datetime.now(UTC))
    best = stack.get("/bestplays", mode=0, limit=10000).json()
    pps = [row["pp"] for row in best]
    assert pps == sorted(pps, reverse=True)
    # Every play of ours above the table's cut is in it (the test database fills up with
    # other tests' players, so the lowest of ours may fall below the top 10000).
    cut = pps[-1] if len(best) == 10000 else float("-inf")
    ours = {(row["beatmap_id"], row["score"]) for row in best if row["user"] == user}
    expected = {(row["beatmap_id"], row["score"]) for row in hiscores if row["pp"] > cut}
    assert expected <= ours
    # However full the table, a window of the second our best play was set in holds it.
    top = max(hiscores, key=lambda row: row["pp"])
    moment = top["score_time"].removesuffix(".000Z") + "Z"
    window = stack.get("/bestplays", mode=0, limit=10000, **{"from": moment, "to": moment})
    assert (user, top["beatmap_id"], top["score"]) in {
        (row["user"], row["beatmap_id"], row["score"]) for row in window.json()
    }
