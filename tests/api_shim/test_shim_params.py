"""Unit tests of the query-parameter rules (no services)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api_shim import params
from api_shim.params import ParamError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1),
        ("12", 12),
        (" 12 ", 12),
        ("\t7\n", 7),
        ("007", 7),
        ("9223372036854775807", 9223372036854775807),
    ],
)
def test_user_id_accepted(raw: str, expected: int) -> None:
    assert params.parse_user_id(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "  ",
        "0",
        "000",
        "-1",
        "+1",
        "12.5",
        "12.0",
        "1e3",
        "0x10",
        "abc",
        "1 2",
        "9223372036854775808",
        "9" * 5000,
        "\u0661\u0662",  # Arabic-Indic digits: int() would accept them
        "12\n3",
        ["1", "2"],
    ],
)
def test_user_id_rejected(raw: params.RawParam) -> None:
    with pytest.raises(ParamError) as caught:
        params.parse_user_id(raw)
    assert str(caught.value) == params.USER_MESSAGE


def test_username() -> None:
    assert params.parse_username("  Cookiezi ") == "Cookiezi"
    assert params.parse_username("x" * 64) == "x" * 64
    for raw in (None, "", "   ", "x" * 65, ["a", "b"]):
        with pytest.raises(ParamError, match="Invalid or missing `user` param"):
            params.parse_username(raw)


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("1", 1), ("2", 2), ("3", 3)])
def test_mode_accepted(raw: str, expected: int) -> None:
    assert params.parse_mode(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "4", "-1", " 1", "1.0", "01", "osu", ["0", "1"]])
def test_mode_rejected(raw: params.RawParam) -> None:
    with pytest.raises(ParamError) as caught:
        params.parse_mode(raw)
    assert str(caught.value) == params.MODE_MESSAGE


def test_mode_default_applies_only_when_absent() -> None:
    assert params.parse_mode(None, default=0) == 0
    assert params.parse_mode("2", default=0) == 2
    with pytest.raises(ParamError):
        params.parse_mode("9", default=0)
    with pytest.raises(ParamError):
        params.parse_mode("", default=0)


def test_user_mode() -> None:
    assert params.parse_user_mode(None) == "id"
    assert params.parse_user_mode("id") == "id"
    assert params.parse_user_mode("username") == "username"
    for raw in ("", "name", "ID", ["id", "id"]):
        with pytest.raises(ParamError) as caught:
            params.parse_user_mode(raw)
        assert str(caught.value) == params.USER_MODE_MESSAGE


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, 100), ("1", 1), ("10000", 10000), (" 50 ", 50), ("0050", 50)]
)
def test_limit_accepted(raw: params.RawParam, expected: int) -> None:
    assert params.parse_row_limit(raw) == expected


@pytest.mark.parametrize(
    "raw", ["", "0", "-5", "10001", "1e1", "0x10", "5.0", "12.5", "abc", "9" * 5000, ["1", "2"]]
)
def test_limit_rejected(raw: params.RawParam) -> None:
    with pytest.raises(ParamError) as caught:
        params.parse_row_limit(raw)
    assert str(caught.value) == params.LIMIT_MESSAGE


def test_wait() -> None:
    assert params.parse_wait(None, 20.0, 60.0) == 20.0
    assert params.parse_wait("0", 20.0, 60.0) == 0.0
    assert params.parse_wait("2.5", 20.0, 60.0) == 2.5
    assert params.parse_wait("60", 20.0, 60.0) == 60.0
    for raw in ("", "-1", "60.5", "1e1", "nan", "inf", "abc", ["1", "2"]):
        with pytest.raises(ParamError) as caught:
            params.parse_wait(raw, 20.0, 60.0)
        assert str(caught.value) == "Invalid `wait` param; must be a number of seconds from 0 to 60"
    with pytest.raises(ParamError, match=r"from 0 to 7\.5$"):
        params.parse_wait("8", 1.0, 7.5)


def test_date_only_from_is_start_of_day_and_to_is_end_of_day() -> None:
    window = params.parse_window("2020-01-01", "2020-01-08")
    assert window.start == datetime(2020, 1, 1, tzinfo=UTC)
    assert window.end == datetime(2020, 1, 8, 23, 59, 59, 999999, tzinfo=UTC)


def test_same_day_window_is_valid() -> None:
    window = params.parse_window("2020-01-08", "2020-01-08")
    assert window.start is not None
    assert window.end is not None
    assert window.start < window.end


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2020-01-08T23:59:59Z", datetime(2020, 1, 8, 23, 59, 59, tzinfo=UTC)),
        ("2020-01-08T23:59:59z", datetime(2020, 1, 8, 23, 59, 59, tzinfo=UTC)),
        ("2020-01-08T23:59:59.250Z", datetime(2020, 1, 8, 23, 59, 59, 250000, tzinfo=UTC)),
        ("2020-01-08T10:00", datetime(2020, 1, 8, 10, 0, tzinfo=UTC)),
        ("2020-01-08 10:00:00", datetime(2020, 1, 8, 10, 0, tzinfo=UTC)),
        ("2020-01-08T10:00:00+02:00", datetime(2020, 1, 8, 8, 0, tzinfo=UTC)),
        (" 2020-01-08T10:00:00Z ", datetime(2020, 1, 8, 10, 0, tzinfo=UTC)),
    ],
)
def test_instants(raw: str, expected: datetime) -> None:
    # An instant is taken as is for `to`: only a bare date stretches to the end of day.
    assert params.parse_bound(raw, "to", end_of_day=True) == expected
    assert params.parse_bound(raw, "from", end_of_day=False) == expected


def test_window_is_compared_at_the_printed_precision() -> None:
    # A printed time as both bounds covers its whole second.
    window = params.parse_window("2026-12-03T15:07:01.000Z", "2026-12-03T15:07:01Z")
    assert window.start == datetime(2026, 12, 3, 15, 7, 1, tzinfo=UTC)
    assert window.end == datetime(2026, 12, 3, 15, 7, 1, 999999, tzinfo=UTC)
    # A fraction moves `from` up to the next printed second and `to` to the end of its own.
    window = params.parse_window("2026-12-03T15:07:01.500Z", "2026-12-03T15:07:02.250Z")
    assert window.start == datetime(2026, 12, 3, 15, 7, 2, tzinfo=UTC)
    assert window.end == datetime(2026, 12, 3, 15, 7, 2, 999999, tzinfo=UTC)
    assert params.parse_window("9999-12-31T23:59:59.5Z", None).start == datetime(
        9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC
    )


def test_absent_bounds_are_unbounded() -> None:
    assert params.parse_window(None, None) == params.DateWindow(None, None)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "yesterday",
        "2020-13-01",
        "2020-02-30",
        "2020-1-1",
        "20200101",
        "0000-01-01",
        "10000-01-01",
        "2020-01-01T25:00:00Z",
        "2020-01-01T10",
        "2020-01-01T10:00:00 01:00",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2020-01-01x",
        ["2020-01-01", "2020-01-02"],
    ],
)
def test_bad_dates(raw: params.RawParam) -> None:
    for name, end_of_day in (("from", False), ("to", True)):
        with pytest.raises(ParamError) as caught:
            params.parse_bound(raw, name, end_of_day=end_of_day)
        assert str(caught.value) == (
            f"Invalid `{name}` param; must be a date like 2020-01-01 or an ISO 8601 instant"
        )


def test_extreme_years_are_accepted() -> None:
    assert params.parse_bound("0001-01-01", "from", end_of_day=False) == datetime(
        1, 1, 1, tzinfo=UTC
    )
    assert params.parse_bound("9999-12-31", "to", end_of_day=True) == datetime(
        9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC
    )


def test_from_after_to() -> None:
    with pytest.raises(ParamError) as caught:
        params.parse_window("2020-01-02", "2020-01-01")
    assert str(caught.value) == params.RANGE_MESSAGE
    with pytest.raises(ParamError, match="Invalid date range"):
        params.parse_window("2020-01-01T12:00:00Z", "2020-01-01T11:59:59Z")


def test_from_checked_before_to_and_range() -> None:
    with pytest.raises(ParamError, match="`from`"):
        params.parse_window("bad", "bad")
    with pytest.raises(ParamError, match="`to`"):
        params.parse_window("2020-01-01", "bad")
