"""Bad input over real HTTP: every endpoint's parameters, fuzzed against a running granian.

The properties, for any query a client can send: the API never answers 5xx (no backing
service is down here), every refusal is a 4xx JSON `{"error": ...}` naming a documented
rule, and a refused POST /update leaves nothing behind (no row, no job, no queued
message). Unit tests (tests/api_shim) pin the exact rules; these tests throw what a
careless or hostile client would at the real server, where granian's HTTP parsing, the
WSGI decoding and the database all take part.

granian answers a few malformed requests itself, before the app runs; those answers have
an empty body and are accepted as long as they are 4xx (see test_raw_bytes).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import redis
import requests
import sqlalchemy as sa
from fuzz_support import (
    EVERY_PATH,
    FIRST_FUZZ_USER,
    FUZZ_SETTINGS,
    HTTP_TIMEOUT_SECONDS,
    JOB_PATH,
    READ_ENDPOINTS,
    assert_ok_or_param_refusal,
    assert_param_refusal,
    assert_raw_refusal_or_json,
    census,
    error_message,
    raw_request,
)
from hypothesis import given
from hypothesis import strategies as st
from support.processes import ManagedProcess

from api_shim import params

pytestmark = pytest.mark.integration

USER_PATHS = ("/stats_history", "/hiscores", "/peak")
NOT_UTF8 = "Query string is not valid UTF-8"
USER_REFUSALS = (params.USER_MESSAGE, NOT_UTF8)
# The methods each route answers; the other routes have no HEAD responder.
ALLOWED_METHODS = {
    "/update": {"POST"},
    JOB_PATH: {"GET", "HEAD"},
    "/health": {"GET", "HEAD"},
    **{path: {"GET", "HEAD"} for path in READ_ENDPOINTS},
}
WINDOW_PATHS = ("/stats_history", "/hiscores", "/bestplays")
# The fixed part each read needs besides the fuzzed parameter.
BASE_QUERY = {
    "/stats_history": "user=9000001&mode=0",
    "/hiscores": "user=9000001&mode=0",
    "/peak": "user=9000001&mode=0",
    "/bestplays": "mode=0",
}


@pytest.fixture(scope="module")
def http(api_url: str) -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _q(value: str) -> str:
    """`value` percent-encoded whole, so `&`, `=` and `#` inside it stay inside it.

    A lone surrogate (hypothesis makes them) goes out as the bytes a careless encoder
    would send, which are not UTF-8: the app must refuse those as such.
    """
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def _get(http: requests.Session, api_url: str, path: str, query: str) -> requests.Response:
    # requests keeps an already-encoded query as it is (it only quotes unsafe characters).
    return http.get(f"{api_url}{path}?{query}", timeout=HTTP_TIMEOUT_SECONDS)


def _post(http: requests.Session, api_url: str, query: str) -> requests.Response:
    return http.post(f"{api_url}/update?{query}", timeout=HTTP_TIMEOUT_SECONDS)


# --- strategies -----------------------------------------------------------------------

# Ways to spell a number that are not a plain decimal id, and plain decimals out of range.
ODD_USER_SPELLINGS = (
    "",
    " ",
    "0",
    "-0",
    "+9000001",
    "9000001.0",
    "9_000_001",
    "0x89ad41",
    "9e6",
    "1e3",
    "NaN",
    "Infinity",
    "-Infinity",
    "9223372036854775808",
    "99999999999999999999999999999999999999",
    "9" * 4000,  # long, yet under the 4096-byte query cap
    "\uff19\uff10",  # full-width digits: int() would accept them
    "\u0669\u0660",  # Arabic-Indic digits, likewise
    "9000001\x00",
    "9000001\n",
    "[9000001]",
    "user",
)
odd_users = st.one_of(
    st.sampled_from(ODD_USER_SPELLINGS),
    st.integers(max_value=0).map(str),
    st.integers(min_value=params.MAX_USER_ID + 1, max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=0, max_value=2**70).map(hex),
    st.builds("{}e{}".format, st.integers(-9, 9), st.integers(-400, 400)),
    st.text(max_size=30),
)

# Date spellings around and beyond what a datetime can hold, and instants with offsets
# that push them outside years 1..9999 once converted to UTC.
ODD_BOUNDS = (
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "99999-01-01",
    "-0001-01-01",
    "2020-02-30",
    "2020-13-01",
    "20200101",
    "2020-W01-1",
    "2020-001",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00",
    "9999-12-31T23:59:59.999999-14:00",
    "9999-12-31T23:59:59.999999+14:00",
    "9999-12-31T23:59:59.999999Z",
    "2020-01-01T00:00:00+24:00",
    "2020-01-01T00:00:00+23:59:59.999999",
    "2020-01-01T25:00",
    "2020-01-01T00:00:00.1234567890123",
    "2020-01-01 00:00",
    "2020-01-01t00:00z",
    "1e3",
    "now",
    "",
)
bounds = st.one_of(
    st.sampled_from(ODD_BOUNDS),
    st.dates().map(lambda day: day.isoformat()),
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda moment: moment.isoformat()),
    st.integers(min_value=0, max_value=99999).map(lambda year: f"{year:04d}-06-15"),
    st.text(max_size=40),
)


# --- user ids -------------------------------------------------------------------------


@FUZZ_SETTINGS
@given(value=odd_users, path=st.sampled_from(USER_PATHS))
def test_odd_user_ids_are_refused_or_read(
    http: requests.Session, api_url: str, value: str, path: str
) -> None:
    """Any `user` spelling is answered 200 (a valid id) or 400 naming `user`, never 5xx."""
    response = _get(http, api_url, path, f"user={_q(value)}&mode=0")
    assert_ok_or_param_refusal(response)
    if response.status_code != 200:
        assert error_message(response) in USER_REFUSALS


@FUZZ_SETTINGS
@given(
    user=st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([0, 1, params.MAX_USER_ID, params.MAX_USER_ID + 1]),
    )
)
def test_decimal_user_ids_follow_the_documented_range(
    http: requests.Session, api_url: str, user: int
) -> None:
    """A plain decimal id is read exactly when it is within 1..2^63-1 (the bigint range)."""
    response = _get(http, api_url, "/peak", f"user={user}&mode=0")
    if 1 <= user <= params.MAX_USER_ID:
        assert response.status_code == 200, response.text
        assert len(response.json()) == 1
    else:
        assert assert_param_refusal(response) == params.USER_MESSAGE


@FUZZ_SETTINGS
@given(value=odd_users)
def test_odd_user_ids_never_start_an_update(
    http: requests.Session, api_url: str, value: str
) -> None:
    """POST /update with any `user` and an invalid `wait` (checked last) is always a 400.

    The bad `wait` guarantees refusal even when `user` happens to be valid, so no job is
    ever created for someone else's user id; test_refused_updates_write_nothing checks
    that such refusals leave nothing behind.
    """
    response = _post(http, api_url, f"user={_q(value)}&mode=0&wait=-1")
    assert_param_refusal(response)


# --- usernames ------------------------------------------------------------------------


@FUZZ_SETTINGS
@given(
    # NUL is left to test_username_with_nul_is_refused: Postgres cannot hold it in text.
    name=st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=80)
)
def test_any_username_is_found_missing_or_refused(
    http: requests.Session, api_url: str, name: str
) -> None:
    response = _get(http, api_url, "/hiscores", f"user={_q(name)}&userMode=username&mode=0")
    if response.status_code == 200:
        assert isinstance(response.json(), list)
    elif response.status_code == 404:
        assert error_message(response) == "User not found"
    else:
        assert assert_param_refusal(response) in USER_REFUSALS


def test_username_with_nul_is_refused(http: requests.Session, api_url: str) -> None:
    response = _get(http, api_url, "/hiscores", "user=a%00b&userMode=username&mode=0")
    assert response.status_code < 500, response.text
    error_message(response)


# --- dates and ranges -----------------------------------------------------------------


@FUZZ_SETTINGS
@given(path=st.sampled_from(WINDOW_PATHS), start=st.none() | bounds, end=st.none() | bounds)
def test_any_window_is_read_or_refused(
    http: requests.Session, api_url: str, path: str, start: str | None, end: str | None
) -> None:
    """`from`/`to` of any spelling: 200, or 400 naming `from`, `to` or the range."""
    query = BASE_QUERY[path]
    if start is not None:
        query += f"&from={_q(start)}"
    if end is not None:
        query += f"&to={_q(end)}"
    response = _get(http, api_url, path, query)
    assert_ok_or_param_refusal(response)


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("from=0000-01-01", params.date_message("from")),
        ("to=10000-01-01", params.date_message("to")),
        ("from=3000-01-01&to=2000-01-01", params.RANGE_MESSAGE),
        ("from=9999-12-31&to=0001-01-01", params.RANGE_MESSAGE),
        ("from=2020-01-02&to=2020-01-01T23:59:59Z", params.RANGE_MESSAGE),
        ("from=9999-12-31T23:59:59-14:00", params.date_message("from")),
        ("to=0001-01-01T00:00:00+14:00", params.date_message("to")),
        ("from=0001-01-01&to=9999-12-31", None),
        ("from=9999-12-31T23:59:59.999999Z", None),
        ("from=2100-01-01", None),
    ],
)
@pytest.mark.parametrize("path", WINDOW_PATHS)
def test_absurd_dates(
    http: requests.Session, api_url: str, path: str, window: str, message: str | None
) -> None:
    """Years 0 and 10000, far futures, reversed ranges, offsets that leave years 1..9999."""
    response = _get(http, api_url, path, f"{BASE_QUERY[path]}&{window}")
    if message is None:
        assert response.status_code == 200, response.text
        assert isinstance(response.json(), list)
    else:
        assert assert_param_refusal(response) == message


# --- limit ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "accepted"),
    [
        ("1", True),
        ("10000", True),
        ("0010", True),
        (" 5 ", True),
        ("0", False),
        ("10001", False),
        ("-1", False),
        ("1e3", False),
        ("1000.0", False),
        ("0x10", False),
        ("+5", False),
        ("", False),
        ("99999999999999999999999999", False),
    ],
)
def test_limit_edges(http: requests.Session, api_url: str, limit: str, accepted: bool) -> None:
    response = _get(http, api_url, "/bestplays", f"mode=0&limit={_q(limit)}")
    if accepted:
        assert response.status_code == 200, response.text
        assert len(response.json()) <= int(limit)
    else:
        assert assert_param_refusal(response) == params.LIMIT_MESSAGE


@FUZZ_SETTINGS
@given(limit=st.integers(min_value=-(10**6), max_value=10**6) | st.text(max_size=12))
def test_any_limit_is_read_or_refused(
    http: requests.Session, api_url: str, limit: int | str
) -> None:
    response = _get(http, api_url, "/bestplays", f"mode=1&limit={_q(str(limit))}")
    assert_ok_or_param_refusal(response)
    if isinstance(limit, int):
        assert (response.status_code == 200) == (1 <= limit <= params.MAX_LIMIT)


# --- repeated and unknown parameters ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        ("/peak", "user=9000001&user=9000002&mode=0", params.USER_MESSAGE),
        ("/peak", "user=9000001&user=9000001&mode=0", params.USER_MESSAGE),
        ("/peak", "user=9000001&mode=0&mode=0", params.MODE_MESSAGE),
        ("/stats_history", "user=9000001&mode=0&from=2020-01-01&from=2020-01-01", None),
        ("/bestplays", "mode=0&limit=5&limit=6", params.LIMIT_MESSAGE),
        ("/hiscores", "user=9000001&userMode=id&userMode=username", params.USER_MODE_MESSAGE),
        ("/hiscores", "user[]=9000001&mode=0", params.USER_MESSAGE),
        ("/hiscores", "user=9000001&mode=0&nonsense=1&u=2&m=3&__proto__=x", ""),
        ("/peak", "user=9000001&mode=0&user%00=1&=&&&", ""),
        ("/bestplays", "mode=0&" + "&".join(f"p{i}=x" for i in range(400)), ""),
    ],
)
def test_repeated_and_unknown_parameters(
    http: requests.Session, api_url: str, path: str, query: str, message: str | None
) -> None:
    """A repeated parameter is refused (which one would win?); unknown ones are ignored.

    `message` None means the repeat is refused under the rule of the repeated date (its
    message names `from`); "" means the request must succeed.
    """
    response = _get(http, api_url, path, query)
    if message == "":
        assert response.status_code == 200, response.text
    elif message is None:
        assert assert_param_refusal(response) == params.date_message("from")
    else:
        assert assert_param_refusal(response) == message


# --- size -----------------------------------------------------------------------------


def test_query_string_over_the_cap_is_a_json_400(http: requests.Session, api_url: str) -> None:
    """5 kB: past the app's 4096-byte cap, well within what granian reads."""
    for path in (*READ_ENDPOINTS, JOB_PATH):
        response = _get(http, api_url, path, "user=9000001&mode=0&pad=" + "a" * 5000)
        assert error_message(response) == "Query string too long"
    response = _post(http, api_url, "user=9000001&mode=0&pad=" + "a" * 5000)
    assert error_message(response) == "Query string too long"


@pytest.mark.parametrize(("size", "status"), [(70_000, 414), (1_000_000, 431)])
def test_huge_query_string_is_refused_by_granian(
    http: requests.Session, api_url: str, size: int, status: int
) -> None:
    """70 kB and 1 MB queries never reach the app: granian answers 414 / 431, empty body."""
    for method, path in (("GET", "/peak"), ("POST", "/update")):
        try:
            response = http.request(
                method,
                f"{api_url}{path}?user=9000001&mode=0&pad=" + "a" * size,
                timeout=HTTP_TIMEOUT_SECONDS,
            )
        except requests.ConnectionError:
            # A server may also close the connection while the client is still sending.
            continue
        assert response.status_code == status, response.status_code
        assert response.content == b""


def test_huge_header_is_not_a_server_error(http: requests.Session, api_url: str) -> None:
    """A 100 kB header: granian passes it on (it is ignored), or refuses it; never a 5xx."""
    try:
        response = http.get(
            f"{api_url}/peak?user=9000001&mode=0",
            headers={"X-Padding": "a" * 100_000},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
    except requests.ConnectionError:
        return
    assert response.status_code < 500, response.status_code


# --- methods --------------------------------------------------------------------------


WRONG_METHODS = [
    (path, method)
    for path in EVERY_PATH
    for method in ("PUT", "DELETE", "PATCH", "POST", "GET", "HEAD")
    if method not in ALLOWED_METHODS.get(path, {"GET"})
]


@pytest.mark.parametrize(("path", "method"), WRONG_METHODS)
def test_wrong_methods_are_json_405(
    http: requests.Session, api_url: str, path: str, method: str
) -> None:
    allowed = ALLOWED_METHODS.get(path, {"GET"})
    response = http.request(
        method, f"{api_url}{path}?user=9000001&mode=0", timeout=HTTP_TIMEOUT_SECONDS
    )
    assert response.status_code == 405, (response.status_code, response.text)
    if method != "HEAD":  # a HEAD answer has no body to read the error from
        assert "is not allowed" in error_message(response)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == allowed


@pytest.mark.parametrize("path", EVERY_PATH)
def test_options_is_answered_on_every_path(http: requests.Session, api_url: str, path: str) -> None:
    response = http.options(f"{api_url}{path}", timeout=HTTP_TIMEOUT_SECONDS)
    assert response.status_code in (200, 204), (response.status_code, response.text)


@pytest.mark.parametrize("method", [b"TRACE", b"CONNECT", b"PROPFIND", b"FOO", b"get"])
def test_unusual_methods_are_refused(api_url: str, method: bytes) -> None:
    answer = raw_request(api_url, method + b" /peak?user=9000001&mode=0 HTTP/1.1")
    assert_raw_refusal_or_json(answer)
    assert answer.status >= 400


# --- bytes that are not UTF-8 ---------------------------------------------------------

# Who answers each raw request line, as observed with the pinned granian: "granian" is
# its own 400 with an empty body (it refuses bytes outside ASCII, a raw NUL and a bad
# HTTP version before the app runs); "app" is a JSON answer of the shim with that status.
RAW_REQUESTS = [
    (b"GET /peak?user=\xff&mode=0 HTTP/1.1", "granian", 400),
    (b"GET /peak?user=%ff&mode=0 HTTP/1.1", "app", 400),
    (b"GET /peak?user=9000001&mode=0&x=\xc3\x28 HTTP/1.1", "granian", 400),
    (b"GET /hiscores?user=\xc3\x28&userMode=username HTTP/1.1", "granian", 400),
    (b"GET /hiscores?user=%ed%a0%80&userMode=username HTTP/1.1", "app", 400),
    (b"GET /hiscores?user=\xed\xa0\x80&userMode=username HTTP/1.1", "granian", 400),
    (b"GET /hiscores?user=%c0%80&userMode=username HTTP/1.1", "app", 400),
    (b"GET /stats_history?user=9000001&mode=0&from=2020\xff-01-01 HTTP/1.1", "granian", 400),
    (b"GET /pe\xffak?user=9000001&mode=0 HTTP/1.1", "granian", 400),
    (b"GET /jobs/\xff\xfe HTTP/1.1", "granian", 400),
    (b"GET /jobs/%ff%fe HTTP/1.1", "app", 404),
    (b"GET /jobs/..%2f..%2fetc%2fpasswd HTTP/1.1", "app", 404),
    (b"GET /peak?user=9000001%00&mode=0 HTTP/1.1", "app", 400),
    (b"GET /peak?user=9000001&mode=0\x00 HTTP/1.1", "granian", 400),
    (b"GET /peak?user=9000001&mode=0%zz HTTP/1.1", "app", 400),
    (b"GET /peak?%%%%%%%% HTTP/1.1", "app", 400),
    # Absolute form, which HTTP/1.1 servers must accept: the host part is ignored.
    (b"GET http://example.com/peak?user=9000001&mode=0 HTTP/1.1", "app", 200),
    (b"GET * HTTP/1.1", "app", 404),
    (b"GET /peak?user=9000001&mode=0 HTTP/9.9", "granian", 400),
    (b"GET /peak?user=9000001&mode=0", "granian", 400),
    (b"POST /update?user=\xff&mode=0 HTTP/1.1", "granian", 400),
    (b"POST /update?user=9000001&mode=\xff0 HTTP/1.1", "granian", 400),
    (b"POST /update?user=%ff&mode=0 HTTP/1.1", "app", 400),
]


@pytest.mark.parametrize(("request_line", "answered_by", "status"), RAW_REQUESTS, ids=repr)
def test_raw_bytes(api_url: str, request_line: bytes, answered_by: str, status: int) -> None:
    """Raw non-UTF-8 and malformed request lines: never 5xx, and each answered as documented.

    Percent-encoded bytes that are not UTF-8 reach the app, which refuses them as such
    ("Query string is not valid UTF-8"); raw ones never get that far.
    """
    extra = b"Content-Length: 0\r\n" if request_line.startswith(b"POST") else b""
    answer = raw_request(api_url, request_line, extra)
    assert_raw_refusal_or_json(answer)
    assert answer.status == status, (answer.status, answer.body[:200])
    if answered_by == "granian":
        assert answer.body == b""
    else:
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.json() is not None


@pytest.mark.parametrize(
    "header",
    [
        b"X-Forwarded-For: \xff\xfe\r\n",
        b"Origin: http://\xff.example\r\n",
        b"Access-Control-Request-Method: \xff\r\n",
        b"Content-Type: application/json; charset=\xff\r\n",
    ],
    ids=repr,
)
def test_raw_header_bytes(api_url: str, header: bytes) -> None:
    for line in (b"GET /peak?user=9000001&mode=0 HTTP/1.1", b"OPTIONS /peak HTTP/1.1"):
        assert_raw_refusal_or_json(raw_request(api_url, line, header))


# --- refused updates leave nothing behind ----------------------------------------------

_DECIMAL_WAIT = re.compile(r"\s*[0-9]+(\.[0-9]+)?\s*")


def _valid_user() -> st.SearchStrategy[str]:
    return st.integers(FIRST_FUZZ_USER, FIRST_FUZZ_USER + 999).map(str)


def _refused_update_queries() -> st.SearchStrategy[str]:
    """Queries of POST /update that break exactly one rule, so each must be refused."""
    mode = st.sampled_from("0123")
    bad_user = st.one_of(
        # Spellings with whitespace around digits ("9000001\n") are valid ids.
        st.sampled_from([text for text in ODD_USER_SPELLINGS if not text.strip().isdigit()]),
        st.integers(max_value=0).map(str),
        st.integers(min_value=params.MAX_USER_ID + 1).map(str),
        st.text(max_size=20).filter(lambda text: not text.strip().isdigit()),
    )
    bad_mode = st.text(max_size=5).filter(lambda text: text not in ("0", "1", "2", "3"))
    bad_wait = st.one_of(
        st.sampled_from(["-1", "-0", "60.0001", "61", "1e1", "nan", "inf", "0x1", ".5", "5.", ""]),
        st.floats(min_value=60.0001, allow_infinity=True).map(str),
        st.text(max_size=10).filter(lambda text: not _DECIMAL_WAIT.fullmatch(text)),
    )
    return st.one_of(
        st.builds("user={}&mode={}&wait=0".format, bad_user.map(_q), mode),
        st.builds("user={}&mode={}&wait=0".format, _valid_user(), bad_mode.map(_q)),
        st.builds("user={}&mode={}&wait={}".format, _valid_user(), mode, bad_wait.map(_q)),
        st.builds("user={0}&user={0}&mode={1}&wait=0".format, _valid_user(), mode),
        st.builds("user={}&mode={}&mode={}&wait=0".format, _valid_user(), mode, mode),
        st.builds("user={}&mode={}&wait=0&wait=0".format, _valid_user(), mode),
        st.builds("user={}&mode={}&wait=0&pad=%ff".format, _valid_user(), mode),
        st.builds("user={}&mode={}&wait=0&pad={}".format, _valid_user(), mode, st.just("a" * 4100)),
    )


def _settled_census(engine: sa.Engine, client: redis.Redis) -> object:
    """The census once two reads a moment apart agree (earlier tests' jobs may still run)."""
    previous = census(engine, client)
    for _ in range(40):
        time.sleep(0.25)
        current = census(engine, client)
        if current == previous:
            return current
        previous = current
    pytest.fail(f"the database and Redis did not settle: {previous}")


def test_refused_updates_write_nothing(
    http: requests.Session,
    api_url: str,
    worker_process: ManagedProcess,
    db_engine: sa.Engine,
    redis_url: str,
) -> None:
    """A batch of refused POST /update: same rows, job keys and queue before and after.

    A worker runs, so a refused request that still enqueued a job would show as rows too.
    """
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    before = _settled_census(db_engine, client)

    @FUZZ_SETTINGS
    @given(query=_refused_update_queries())
    def refused(query: str) -> None:
        response = _post(http, api_url, query)
        assert response.status_code == 400, repr(query)
        assert_param_refusal(response)

    refused()
    for line in (b"POST /update?user=9000001&mode=0&x=\xff HTTP/1.1",):
        assert raw_request(api_url, line, b"Content-Length: 0\r\n").status == 400
    # Long enough for the worker to have stored an update a refused request had queued.
    time.sleep(1.0)
    after = _settled_census(db_engine, client)
    client.close()
    assert after == before
