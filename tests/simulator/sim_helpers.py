"""Small request helpers for the simulator tests."""

from __future__ import annotations

from typing import Any

from falcon.testing import TestClient

API_KEY = "0123456789abcdef0123456789abcdef01234567"
NEW_FORMAT = {"x-api-version": "20240923"}


def truth(client: TestClient, user_id: int, mode: int = 0) -> dict[str, Any]:
    """Ground truth from the control API."""
    result = client.simulate_get(f"/_sim/users/{user_id}/{mode}")
    assert result.status_code == 200
    return result.json


def v1_user(client: TestClient, user: str, mode: int = 0, **params: str) -> Any:
    """``/api/get_user`` JSON."""
    query = {"k": API_KEY, "u": user, "m": str(mode), **params}
    return client.simulate_get("/api/get_user", params=query).json


def v1_best(client: TestClient, user_id: int, mode: int = 0, limit: int = 100) -> Any:
    """``/api/get_user_best`` JSON."""
    query = {"k": API_KEY, "u": str(user_id), "m": str(mode), "limit": str(limit), "type": "id"}
    return client.simulate_get("/api/get_user_best", params=query).json


def v2_best(
    client: TestClient, auth: dict[str, str], user_id: int, mode: str, *, new: bool, **params: Any
) -> Any:
    """``/api/v2/users/{id}/scores/best`` JSON in the new or legacy score format."""
    headers = {**auth, **(NEW_FORMAT if new else {})}
    query = {"mode": mode, "limit": "100", **{k: str(v) for k, v in params.items()}}
    result = client.simulate_get(
        f"/api/v2/users/{user_id}/scores/best", params=query, headers=headers
    )
    assert result.status_code == 200
    return result.json
