"""Determinism, advancing, forced new plays, pp reworks, restrictions, reset."""

from __future__ import annotations

from falcon.testing import TestClient
from sim_helpers import truth, v1_user, v2_best

from simulator.app import create_app
from simulator.config import SimConfig

USER = 31338


def test_state_is_deterministic_across_instances(client: TestClient) -> None:
    other = TestClient(create_app(SimConfig()))
    assert truth(client, USER, 1) == truth(other, USER, 1)
    client.simulate_post(f"/_sim/users/{USER}/advance", params={"mode": "1", "steps": "3"})
    other.simulate_post("/_sim/advance", params={"steps": "3"})
    assert truth(client, USER, 1) == truth(other, USER, 1)


def test_stats_do_not_change_without_a_step(client: TestClient) -> None:
    first = v1_user(client, str(USER))
    assert v1_user(client, str(USER)) == first
    assert truth(client, USER)["step"] == 0


def test_advance_grows_stats_and_dates_new_plays(client: TestClient) -> None:
    before = truth(client, USER)
    after = client.simulate_post(f"/_sim/users/{USER}/advance", params={"steps": "5"}).json
    assert after["step"] == 5
    for key in ("playcount", "count300", "total_score", "ranked_score", "total_seconds_played"):
        assert after["stats"][key] > before["stats"][key]
    assert after["stats"]["level"] > before["stats"]["level"]
    assert after["stats"]["pp_rank"] != before["stats"]["pp_rank"]
    old_ids = {p["score_id"] for p in before["top_plays"]}
    new = [p for p in after["top_plays"] if p["score_id"] not in old_ids]
    assert all(p["date"] > "2026-01-01" for p in new)


def test_forced_new_top_plays(client: TestClient, auth: dict[str, str]) -> None:
    before = truth(client, USER)
    after = client.simulate_post(
        f"/_sim/users/{USER}/advance", params={"mode": "0", "new_top_plays": "3"}
    ).json
    old_ids = {p["score_id"] for p in before["top_plays"]}
    new = [p for p in after["top_plays"] if p["score_id"] not in old_ids]
    assert len(new) == 3
    floor = before["top_plays"][-1]["pp"]
    assert all(p["pp"] > floor for p in new)
    assert after["stats"]["pp_raw"] > before["stats"]["pp_raw"]
    assert all(p["date"] == "2026-01-02" or p["date"].startswith("2026-01-01 2") for p in new)
    listed = {s["id"] for s in v2_best(client, auth, USER, "osu", new=False)}
    assert {p["score_id"] for p in new} <= listed
    again = client.simulate_post(f"/_sim/users/{USER}/advance", params={"new_top_plays": "0"})
    assert {p["score_id"] for p in again.json["top_plays"]} == {
        p["score_id"] for p in after["top_plays"]
    }


def test_global_advance_applies_to_everyone(client: TestClient) -> None:
    before = truth(client, 77, 3)
    assert client.simulate_post("/_sim/advance", params={"steps": "2"}).status_code == 200
    after = truth(client, 77, 3)
    assert after["step"] == before["step"] + 2
    assert after["stats"]["playcount"] > before["stats"]["playcount"]


def test_pp_rework_keeps_ids(client: TestClient) -> None:
    before = truth(client, USER)
    after = client.simulate_post(
        f"/_sim/users/{USER}/pp_rework", params={"mode": "0", "factor": "1.05"}
    ).json
    assert [p["score_id"] for p in after["top_plays"]] == [
        p["score_id"] for p in before["top_plays"]
    ]
    for old, new in zip(before["top_plays"], after["top_plays"], strict=True):
        assert abs(new["pp"] - round(old["pp"] * 1.05, 3)) < 1e-9
        assert new["score"] == old["score"]
    assert after["stats"]["pp_raw"] > before["stats"]["pp_raw"]
    assert after["step"] == before["step"]


def test_restrict_and_reset(client: TestClient, auth: dict[str, str]) -> None:
    client.simulate_post(f"/_sim/users/{USER}/restrict")
    assert v1_user(client, str(USER)) == []
    assert client.simulate_get(f"/api/v2/users/{USER}", headers=auth).status_code == 404
    assert truth(client, USER)["exists"] is False
    client.simulate_post(f"/_sim/users/{USER}/unrestrict")
    assert len(v1_user(client, str(USER))) == 1
    start = truth(client, USER)
    client.simulate_post(f"/_sim/users/{USER}/restrict")
    client.simulate_post(f"/_sim/users/{USER}/advance", params={"steps": "2"})
    client.simulate_post("/_sim/advance")
    client.simulate_post("/_sim/reset")
    assert truth(client, USER) == start
    assert client.simulate_get(f"/api/v2/users/{USER}", headers=auth).status_code == 200


def test_control_validation(client: TestClient) -> None:
    assert client.simulate_get(f"/_sim/users/{USER}/7").status_code == 400
    assert (
        client.simulate_post(f"/_sim/users/{USER}/advance", params={"steps": "0"}).status_code
        == 400
    )
    assert client.simulate_post("/_sim/users/100000000/advance").status_code == 404
    bad_factor = client.simulate_post(f"/_sim/users/{USER}/pp_rework", params={"factor": "-1"})
    assert bad_factor.status_code == 400
    assert truth(client, 100_000_000)["exists"] is False
