"""Credentials, bearer tokens, API keys, and the request log."""

from __future__ import annotations

from falcon.testing import TestClient
from sim_helpers import API_KEY

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_oauth_errors(client: TestClient) -> None:
    wrong = client.simulate_post(
        "/oauth/token",
        body="client_id=1&client_secret=nope&grant_type=client_credentials&scope=public",
        headers=FORM,
    )
    assert wrong.status_code == 401
    assert wrong.json == {
        "error": "invalid_client",
        "error_description": "Client authentication failed",
        "message": "Client authentication failed",
    }
    token = client.simulate_post(
        "/oauth/token",
        json={
            "client_id": 1,
            "client_secret": "simulator-secret",
            "grant_type": "client_credentials",
            "scope": "public",
        },
    ).json
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 86400


def test_v2_needs_an_issued_bearer_token(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer made-up"}, {"Authorization": "Basic eA=="}):
        result = client.simulate_get("/api/v2/users/2", headers=headers)
        assert result.status_code == 401
        assert result.json == {"authentication": "basic"}
    assert client.simulate_get("/api/v2/users", params={"ids[]": "2"}).status_code == 401


def test_v1_key(client: TestClient) -> None:
    for params in ({"u": "2"}, {"u": "2", "k": "wrong"}):
        result = client.simulate_get("/api/get_user", params=params)
        assert result.status_code == 401
        assert result.json == {"error": "Please provide a valid API key."}
    assert client.simulate_get("/api/get_user_best", params={"u": "2"}).status_code == 401


def test_request_log_and_stats(client: TestClient, auth: dict[str, str]) -> None:
    client.simulate_delete("/_sim/requests")
    client.simulate_get("/api/v2/users/3/osu", headers=auth)
    client.simulate_get("/api/v2/users/3/scores/best", headers=auth)
    client.simulate_get("/api/v2/users", params={"ids[]": "3"}, headers=auth)
    client.simulate_get("/api/get_user", params={"k": API_KEY, "u": "3"})
    client.simulate_get("/api/get_user_best", params={"k": API_KEY, "u": "3"})
    client.simulate_get("/api/v2/users/100000005", headers=auth)
    client.simulate_get("/_sim/users/3/0")
    log = client.simulate_get("/_sim/requests").json["requests"]
    assert [e["endpoint"] for e in log] == [
        "v2_user",
        "v2_best",
        "v2_users_batch",
        "v1_get_user",
        "v1_get_user_best",
        "v2_user",
    ]
    assert log[-1]["status"] == 404
    assert all(set(e) == {"t", "arrived", "method", "path", "status", "endpoint"} for e in log)
    assert all(e["arrived"] <= e["t"] for e in log)
    assert API_KEY not in str(log)
    assert auth["Authorization"].split()[1] not in str(log)
    stats = client.simulate_get("/_sim/stats").json
    assert stats["by_endpoint"]["v2_user"] == {"200": 1, "404": 1}
    assert stats["total"] == 6
    client.simulate_delete("/_sim/requests")
    assert client.simulate_get("/_sim/requests").json == {"requests": []}
