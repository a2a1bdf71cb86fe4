"""The app through Falcon's test client, with Postgres and Redis unreachable.

Every URL points at a closed port, so these tests need no services: validation must answer
before anything is connected, and a valid request must fail fast with a 503.
"""

from __future__ import annotations

import re
import time

import pytest
from falcon import testing

from api_shim import params
from api_shim.app import create_app
from osutrack.settings import Settings

CLOSED_SETTINGS = Settings(
    database_url="postgresql+psycopg2://x@127.0.0.1:9/x",
    redis_url="redis://127.0.0.1:9/0",
)
DATE_FROM = params.date_message("from")
DATE_TO = params.date_message("to")
WAIT = "Invalid `wait` param; must be a number of seconds from 0 to 60"
READ_PATHS = ["/stats_history", "/hiscores", "/peak", "/bestplays", "/health"]


@pytest.fixture(scope="module")
def client() -> testing.TestClient:
    return testing.TestClient(create_app(CLOSED_SETTINGS))


def _error(result: testing.Result) -> str:
    assert result.headers["content-type"] == "application/json"
    body = result.json
    assert list(body) == ["error"]
    return str(body["error"])


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", params.USER_MESSAGE),
        ("mode=0", params.USER_MESSAGE),
        ("user=abc&mode=x", params.USER_MESSAGE),
        ("user=1&user=2&mode=0", params.USER_MESSAGE),
        ("user=0x10&mode=0", params.USER_MESSAGE),
        ("user=1e3&mode=0", params.USER_MESSAGE),
        ("user=12.5&mode=0", params.USER_MESSAGE),
        ("user=-1&mode=0", params.USER_MESSAGE),
        ("user=0&mode=0", params.USER_MESSAGE),
        ("user=99999999999999999999&mode=0", params.USER_MESSAGE),
        ("user=%ff&mode=0", "Query string is not valid UTF-8"),
        ("user=1", params.MODE_MESSAGE),
        ("user=1&mode=4", params.MODE_MESSAGE),
        ("user=1&mode=0&mode=1", params.MODE_MESSAGE),
        ("user=1&mode=0&from=2020-02-30", DATE_FROM),
        ("user=1&mode=0&from=2020-01-01&from=2020-01-02", DATE_FROM),
        ("user=1&mode=0&to=0000-01-01", DATE_TO),
        ("user=1&mode=0&from=2020-01-02&to=2020-01-01", params.RANGE_MESSAGE),
    ],
)
def test_stats_history_bad_params(client: testing.TestClient, query: str, message: str) -> None:
    result = client.simulate_get("/stats_history", query_string=query)
    assert result.status_code == 400
    assert _error(result) == message


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("user=x&mode=0", params.USER_MESSAGE),
        ("user=1&mode=9", params.MODE_MESSAGE),
        ("mode=9", params.USER_MESSAGE),
    ],
)
def test_peak_bad_params(client: testing.TestClient, query: str, message: str) -> None:
    result = client.simulate_get("/peak", query_string=query)
    assert result.status_code == 400
    assert _error(result) == message


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("user=x", params.USER_MESSAGE),
        ("user=1&mode=7", params.MODE_MESSAGE),
        ("user=1&mode=", params.MODE_MESSAGE),
        ("user=1&to=later", DATE_TO),
        ("user=1&userMode=name", params.USER_MODE_MESSAGE),
        ("user=1&userMode=id&userMode=id", params.USER_MODE_MESSAGE),
        ("user=abc&userMode=nope", params.USER_MESSAGE),
        ("user=%20%20&userMode=username", params.USER_MESSAGE),
        ("user=" + "x" * 65 + "&userMode=username", params.USER_MESSAGE),
        ("user=abc&userMode=username&mode=5", params.MODE_MESSAGE),
    ],
)
def test_hiscores_bad_params(client: testing.TestClient, query: str, message: str) -> None:
    result = client.simulate_get("/hiscores", query_string=query)
    assert result.status_code == 400
    assert _error(result) == message


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", params.MODE_MESSAGE),
        ("mode=4&limit=0", params.MODE_MESSAGE),
        ("mode=0&limit=0", params.LIMIT_MESSAGE),
        ("mode=0&limit=10001", params.LIMIT_MESSAGE),
        ("mode=0&limit=1e1", params.LIMIT_MESSAGE),
        ("mode=0&limit=", params.LIMIT_MESSAGE),
        ("mode=0&limit=0&from=bad", params.LIMIT_MESSAGE),
        ("mode=0&from=bad", DATE_FROM),
        ("mode=0&from=2021-01-01&to=2020-01-01", params.RANGE_MESSAGE),
    ],
)
def test_bestplays_bad_params(client: testing.TestClient, query: str, message: str) -> None:
    result = client.simulate_get("/bestplays", query_string=query)
    assert result.status_code == 400
    assert _error(result) == message


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("mode=0", params.USER_MESSAGE),
        ("user=1&mode=0x1", params.MODE_MESSAGE),
        ("user=x&mode=x&wait=x", params.USER_MESSAGE),
        ("user=1&mode=0&wait=61", WAIT),
        ("user=1&mode=0&wait=-1", WAIT),
        ("user=1&mode=0&wait=soon", WAIT),
        ("user=1&mode=0&wait=1&wait=2", WAIT),
    ],
)
def test_update_bad_params(client: testing.TestClient, query: str, message: str) -> None:
    result = client.simulate_post("/update", query_string=query)
    assert result.status_code == 400
    assert _error(result) == message
    assert "access-control-allow-origin" not in result.headers


def test_unknown_params_are_ignored(client: testing.TestClient) -> None:
    result = client.simulate_get("/peak", query_string="user=1&mode=0&foo=bar&user[]=x")
    assert result.status_code == 503


def test_long_query_string_is_400(client: testing.TestClient) -> None:
    result = client.simulate_get("/peak", query_string="user=1&mode=0&pad=" + "a" * 10000)
    assert result.status_code == 400
    assert _error(result) == "Query string too long"


def test_get_update_is_405_with_allow(client: testing.TestClient) -> None:
    for method in ("GET", "PUT", "DELETE"):
        result = client.simulate_request(method, "/update", query_string="user=1&mode=0")
        assert result.status_code == 405
        assert result.headers["allow"] == "POST"
        assert "use POST" in _error(result)


def test_post_on_read_endpoint_is_405(client: testing.TestClient) -> None:
    result = client.simulate_post("/peak", query_string="user=1&mode=0")
    assert result.status_code == 405
    assert result.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/", "/nope", "/update/extra", "/jobs", "/openapi"])
def test_unknown_route_is_404_json(client: testing.TestClient, path: str) -> None:
    result = client.simulate_get(path)
    assert result.status_code == 404
    assert _error(result).startswith("Not found")


@pytest.mark.parametrize("job_id", ["abc", "%ff", "00000000-0000-0000-0000-00000000000Z"])
def test_malformed_job_id_is_404_without_redis(client: testing.TestClient, job_id: str) -> None:
    result = client.simulate_get(f"/jobs/{job_id}")
    assert result.status_code == 404
    assert result.json == {"error": "Job not found"}


def test_cors_on_reads_only(client: testing.TestClient) -> None:
    read = client.simulate_get("/peak", query_string="user=x")
    assert read.headers["access-control-allow-origin"] == "*"
    head = client.simulate_head("/peak", query_string="user=x")
    assert head.status_code == 400
    assert head.headers["access-control-allow-origin"] == "*"
    post = client.simulate_post("/update", query_string="user=x")
    assert "access-control-allow-origin" not in post.headers


@pytest.mark.parametrize("path", [*READ_PATHS, "/jobs/00000000-0000-0000-0000-000000000000"])
def test_preflight_for_reads(client: testing.TestClient, path: str) -> None:
    result = client.simulate_options(
        path,
        headers={
            "Origin": "https://example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-requested-with",
        },
    )
    assert result.status_code == 200
    assert result.headers["access-control-allow-origin"] == "*"
    assert "GET" in result.headers["access-control-allow-methods"]
    assert result.headers["access-control-allow-headers"] == "x-requested-with"


def test_no_preflight_for_update(client: testing.TestClient) -> None:
    result = client.simulate_options(
        "/update",
        headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in result.headers
    assert "access-control-allow-methods" not in result.headers


def test_no_preflight_for_post_on_reads(client: testing.TestClient) -> None:
    result = client.simulate_options(
        "/peak",
        headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in result.headers


def _assert_fast_503(result: testing.Result, started: float, message: str) -> None:
    assert time.monotonic() - started < 5
    assert result.status_code == 503
    assert result.headers["retry-after"] == "5"
    assert _error(result) == message


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/stats_history", "user=1&mode=0&from=2020-01-01&to=2021-01-01"),
        ("/hiscores", "user=1"),
        ("/hiscores", "user=Cookiezi&userMode=username&mode=0"),
        ("/peak", "user=1&mode=3"),
        ("/bestplays", "mode=0"),
        ("/bestplays", "mode=1&limit=10000&from=2020-01-01"),
    ],
)
def test_valid_read_with_database_down_is_503(
    client: testing.TestClient, path: str, query: str
) -> None:
    started = time.monotonic()
    result = client.simulate_get(path, query_string=query)
    _assert_fast_503(result, started, "database unavailable")
    assert result.headers["access-control-allow-origin"] == "*"


def test_update_with_redis_down_is_503(client: testing.TestClient) -> None:
    started = time.monotonic()
    result = client.simulate_post("/update", query_string="user=1&mode=0&wait=1")
    _assert_fast_503(result, started, "redis unavailable")


def test_job_with_redis_down_is_503(client: testing.TestClient) -> None:
    started = time.monotonic()
    result = client.simulate_get("/jobs/00000000-0000-0000-0000-000000000000")
    _assert_fast_503(result, started, "redis unavailable")


def test_health_names_what_is_down(client: testing.TestClient) -> None:
    started = time.monotonic()
    result = client.simulate_get("/health")
    assert time.monotonic() - started < 10
    assert result.status_code == 503
    assert result.json == {
        "status": "down",
        "postgres": "down",
        "redis": "down",
        "workers": 0,
        "osu_api": "unknown",
        "error": "down: postgres, redis, workers",
    }


def test_openapi_describes_every_endpoint(client: testing.TestClient) -> None:
    result = client.simulate_get("/openapi.json")
    assert result.status_code == 200
    document = result.json
    paths = document["paths"]
    assert set(paths) == {
        "/update",
        "/jobs/{job_id}",
        "/stats_history",
        "/hiscores",
        "/peak",
        "/bestplays",
        "/health",
        "/ping",
        "/metrics",
    }
    assert set(paths["/update"]) == {"post"}
    expected_params = {
        "/update": {"user", "mode", "wait"},
        "/stats_history": {"user", "mode", "from", "to"},
        "/hiscores": {"user", "mode", "from", "to", "userMode"},
        "/peak": {"user", "mode"},
        "/bestplays": {"mode", "from", "to", "limit"},
        "/jobs/{job_id}": {"job_id"},
    }
    for path, names in expected_params.items():
        (operation,) = paths[path].values()
        assert {param["name"] for param in operation["parameters"]} == names, path
    assert {"200", "202", "400", "502", "503"} <= set(paths["/update"]["post"]["responses"])
    assert {"200", "400", "503"} <= set(paths["/bestplays"]["get"]["responses"])
    assert {"200", "404"} <= set(paths["/jobs/{job_id}"]["get"]["responses"])
    limited = ["/update", "/jobs/{job_id}", "/stats_history", "/hiscores", "/peak", "/bestplays"]
    for path in limited:
        (operation,) = paths[path].values()
        assert "Retry-After" in operation["responses"]["429"]["description"], path
        assert "RateLimit-Remaining" in operation["responses"]["429"]["description"], path
    for path in ("/health", "/ping", "/metrics"):
        assert "429" not in paths[path]["get"]["responses"], path


def test_docs_page(client: testing.TestClient) -> None:
    result = client.simulate_get("/docs")
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in result.text
    # Every file the page loads is served here, none from elsewhere.
    links = re.findall(r'(?:src|href)="([^"]+)"', result.text)
    assert links
    assert all(link.startswith("/docs/assets/") for link in links), links
    for link in links:
        asset = client.simulate_get(link)
        assert asset.status_code == 200, link
        assert asset.headers["cache-control"] == "public, max-age=86400"
        assert len(asset.content) > 0
    assert (
        client.simulate_get("/docs/assets/swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )


@pytest.mark.parametrize("name", ["index.html", "core.py", "..%2F__init__.py", "LICENSE"])
def test_docs_assets_serve_only_the_page_files(client: testing.TestClient, name: str) -> None:
    assert client.simulate_get(f"/docs/assets/{name}").status_code == 404


def test_ping_answers_without_any_backing_service(client: testing.TestClient) -> None:
    result = client.simulate_get("/ping")
    assert result.status_code == 200
    assert result.json == {"status": "alive"}
