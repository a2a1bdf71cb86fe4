"""How a window is split between month lists and exact parts (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime

from api_shim.params import DateWindow
from api_shim.windows import TICK, MonthList, MonthsPlan, answer_is_exact, plan_window


def _m(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


SPAN = (_m(2020, 1), _m(2020, 12))
FULL = MonthList(row_count=100, list_size=100, cutoff=(-50.0, 0, 7))
COMPLETE = MonthList(row_count=40, list_size=100, cutoff=(-5.0, 0, 9))


def test_whole_months_come_from_lists_and_edges_from_lists_with_a_check() -> None:
    lists = {_m(2020, n): FULL for n in range(1, 13)}
    window = DateWindow(datetime(2020, 2, 10, tzinfo=UTC), datetime(2020, 5, 3, tzinfo=UTC))
    plan = plan_window(window, 100, SPAN, lists)
    assert plan.full_months == (_m(2020, 3), _m(2020, 4))
    assert plan.list_parts == (
        (_m(2020, 2), window.start, _m(2020, 3) - TICK),
        (_m(2020, 5), _m(2020, 5), window.end),
    )
    assert plan.checks == (FULL.cutoff, FULL.cutoff)
    assert plan.exact_parts == ()
    exact = plan_window(window, 100, SPAN, lists, exact_edges=True)
    assert exact.full_months == plan.full_months
    assert exact.exact_parts == ((window.start, _m(2020, 3) - TICK), (_m(2020, 5), window.end))
    assert exact.checks == ()


def test_short_lists_complete_months_unbuilt_months_and_the_span() -> None:
    lists = {_m(2020, 3): FULL, _m(2020, 4): COMPLETE}
    # A whole month with a list shorter than the limit needs the check; a complete month
    # never does; months outside the span of plays are skipped.
    plan = plan_window(DateWindow(_m(2019, 6), _m(2020, 5) - TICK), 500, SPAN, lists)
    assert plan.full_months == (_m(2020, 4),)
    assert plan.list_parts == ((_m(2020, 3), _m(2020, 3), _m(2020, 4) - TICK),)
    assert plan.checks == (FULL.cutoff,)
    assert plan.exact_parts == (
        (_m(2020, 1), _m(2020, 2) - TICK),
        (_m(2020, 2), _m(2020, 3) - TICK),
    )
    assert plan.unbuilt_months == 2
    # Inside one unbuilt month: an exact part, not an unbuilt whole month.
    inside = DateWindow(datetime(2020, 7, 2, tzinfo=UTC), datetime(2020, 7, 9, tzinfo=UTC))
    plan = plan_window(inside, 10, SPAN, lists)
    assert plan.exact_parts == ((inside.start, inside.end),)
    assert plan.unbuilt_months == 0


def test_an_answer_is_exact_when_it_ranks_before_every_cut_off() -> None:
    plan = MonthsPlan(checks=((-50.0, 10, 1), (-40.0, 10, 1)))
    assert answer_is_exact(plan, 10, (-60.0, 0, 0), 10)
    assert answer_is_exact(plan, 10, (-50.0, 10, 1), 10)
    assert not answer_is_exact(plan, 10, (-50.0, 10, 2), 10)
    assert not answer_is_exact(plan, 9, (-60.0, 0, 0), 10)
    assert answer_is_exact(MonthsPlan(), 0, None, 10)
