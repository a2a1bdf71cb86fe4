"""Shared fixtures: an in-process simulator and a valid bearer token."""

from __future__ import annotations

import pytest
from falcon.testing import TestClient

from simulator.app import create_app
from simulator.config import SimConfig

API_KEY = SimConfig().api_key


@pytest.fixture
def client() -> TestClient:
    """A fresh simulator app wrapped in Falcon's test client."""
    return TestClient(create_app(SimConfig()))


@pytest.fixture
def auth(client: TestClient) -> dict[str, str]:
    """Authorization header with a token issued by the simulator under test."""
    result = client.simulate_post(
        "/oauth/token",
        params={},
        body="client_id=1&client_secret=simulator-secret&grant_type=client_credentials&scope=public",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert result.status_code == 200
    return {"Authorization": f"Bearer {result.json['access_token']}"}
