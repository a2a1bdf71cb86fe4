"""Fault injection: status codes, bodies, headers, count semantics, path filters."""

from __future__ import annotations

from typing import Any

from falcon.testing import TestClient
from sim_helpers import API_KEY


def _fault(client: TestClient, **spec: Any) -> None:
    assert client.simulate_post("/_sim/faults", json=spec).status_code == 201


def _user(client: TestClient, auth: dict[str, str], user: int = 10) -> Any:
    return client.simulate_get(f"/api/v2/users/{user}/osu", headers=auth)


def test_429_json_with_retry_after(client: TestClient, auth: dict[str, str]) -> None:
    _fault(client, kind="http_429", retry_after=30)
    result = _user(client, auth)
    assert result.status_code == 429
    assert result.json == {"error": "Too Many Attempts."}
    assert result.headers["Retry-After"] == "30"
    assert _user(client, auth).status_code == 200


def test_429_edge_without_retry_after(client: TestClient, auth: dict[str, str]) -> None:
    _fault(client, kind="http_429", body="edge")
    result = _user(client, auth)
    assert result.status_code == 429
    assert result.text == "error code: 1015"
    assert result.headers["Content-Type"].startswith("text/plain")
    assert "Retry-After" not in result.headers


def test_5xx_garbage_truncated(client: TestClient, auth: dict[str, str]) -> None:
    for kind in ("http_500", "http_502", "http_503", "http_504"):
        _fault(client, kind=kind)
        assert _user(client, auth).status_code == int(kind[-3:])
    _fault(client, kind="garbage")
    garbage = _user(client, auth)
    assert garbage.status_code == 200
    assert garbage.headers["Content-Type"].startswith("text/html")
    full = _user(client, auth).content
    _fault(client, kind="truncated")
    cut = _user(client, auth)
    assert cut.status_code == 200
    assert cut.content == full[: len(full) // 2]


def test_empty_user(client: TestClient, auth: dict[str, str]) -> None:
    _fault(client, kind="empty_user", count=3)
    missing = _user(client, auth)
    assert missing.status_code == 404
    assert missing.json == {"error": None}
    query = {"k": API_KEY, "u": "10", "type": "id"}
    assert client.simulate_get("/api/get_user", params=query).json == []
    assert client.simulate_get("/api/get_user_best", params=query).json == []
    assert len(client.simulate_get("/api/get_user", params=query).json) == 1


def test_count_until_cleared_and_prefix(client: TestClient, auth: dict[str, str]) -> None:
    _fault(client, kind="http_503", count=-1, path_prefix="/api/get_user")
    for _ in range(3):
        assert (
            client.simulate_get("/api/get_user", params={"k": API_KEY, "u": "1"}).status_code == 503
        )
    assert _user(client, auth).status_code == 200
    assert client.simulate_get("/_sim/faults").json["pending"][0]["count"] == -1
    assert client.simulate_delete("/_sim/faults").status_code == 200
    assert client.simulate_get("/api/get_user", params={"k": API_KEY, "u": "1"}).status_code == 200


def test_faults_skip_token_endpoint_unless_asked(client: TestClient) -> None:
    body = "client_id=1&client_secret=simulator-secret&grant_type=client_credentials&scope=public"
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    _fault(client, kind="http_500")
    assert client.simulate_post("/oauth/token", body=body, headers=headers).status_code == 200
    client.simulate_delete("/_sim/faults")
    _fault(client, kind="http_502", path_prefix="/oauth/token")
    assert client.simulate_post("/oauth/token", body=body, headers=headers).status_code == 502


def test_fault_order_and_validation(client: TestClient, auth: dict[str, str]) -> None:
    _fault(client, kind="http_500", count=2)
    _fault(client, kind="http_502")
    statuses = [_user(client, auth).status_code for _ in range(4)]
    assert statuses == [500, 500, 502, 200]
    assert client.simulate_post("/_sim/faults", json={"kind": "nope"}).status_code == 400
    assert (
        client.simulate_post("/_sim/faults", json={"kind": "slow", "count": 0}).status_code == 400
    )


def test_slow_and_latency(client: TestClient, auth: dict[str, str]) -> None:
    _fault(client, kind="slow", delay_ms=50)
    assert _user(client, auth).status_code == 200
    assert client.simulate_put("/_sim/latency", params={"ms": "20"}).json == {"latency_ms": 20}
    assert _user(client, auth).status_code == 200
