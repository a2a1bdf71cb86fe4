"""How a /bestplays window is split between the per-month top lists and exact queries.

Pure functions, no I/O. The months of a window (calendar months, UTC, by score_time) fall
in three kinds of part:

- a month fully inside the window whose list is built: its list's first rows are that
  month's answer (`MonthsPlan.full_months`);
- a month partly inside the window whose list is built: the list rows inside the window
  are that part's best plays, exact down to the list's last row (`list_parts`);
- anything else (a month without a list yet, or a part the lists turned out not to be
  enough for): the plays inside it, from hiscores (`exact_parts`).

The answer is the top `limit` of the union, in /bestplays order. A list that does not hold
every play of its month is only exact down to its last row (its cut-off); `checks` are those
cut-offs, and `answer_is_exact` says whether an answer computed this way can be trusted:
either the answer has `limit` rows that all rank before every cut-off (so no play below a
cut-off can belong), or there is no cut-off to worry about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from api_shim.params import DateWindow

# The last instant of a window part (windows are inclusive, at microsecond resolution).
TICK = timedelta(microseconds=1)

# A play's place in /bestplays order: pp descending, then score time (whole microseconds
# since 1970), then score id.
SortKey = tuple[float, int, int]


def sort_key(pp: float, score_micros: int, score_id: int) -> SortKey:
    """Smaller ranks first."""
    return (-pp, score_micros, score_id)


@dataclass(frozen=True)
class MonthList:
    """One built month list: its row count, its capacity, and its last row's sort key."""

    row_count: int
    list_size: int
    cutoff: SortKey | None

    @property
    def complete(self) -> bool:
        """The list holds every play of its month (as of its build)."""
        return self.row_count < self.list_size


@dataclass(frozen=True)
class MonthsPlan:
    """The parts of one window and the cut-offs its answer must rank before."""

    full_months: tuple[datetime, ...] = ()
    list_parts: tuple[tuple[datetime, datetime, datetime], ...] = ()
    exact_parts: tuple[tuple[datetime, datetime], ...] = ()
    checks: tuple[SortKey, ...] = field(default=())
    # Months wholly inside the window whose list is not built yet (a first build still
    # running): the caller answers such a window with one statement on hiscores instead,
    # whose pp walk is far cheaper than ranking each of those months.
    unbuilt_months: int = 0

    def exact_span(self) -> timedelta:
        """How much score time the exact parts cover (what makes a statement heavy)."""
        return sum((hi - lo for lo, hi in self.exact_parts), timedelta())


def month_start(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def next_month(month: datetime) -> datetime:
    if month.month == 12:
        return month.replace(year=month.year + 1, month=1)
    return month.replace(month=month.month + 1)


def plan_window(
    window: DateWindow,
    limit: int,
    span: tuple[datetime, datetime],
    lists: dict[datetime, MonthList],
    exact_edges: bool = False,
) -> MonthsPlan:
    """Split `window` over the months of `span` (first and last month holding plays).

    `exact_edges` answers every part that would need a cut-off check from hiscores
    instead: the second try when the first answer could not be trusted.
    """
    first, last = span
    month = first if window.start is None else max(first, month_start(window.start))
    stop = last if window.end is None else min(last, month_start(window.end))
    full: list[datetime] = []
    listed: list[tuple[datetime, datetime, datetime]] = []
    exact: list[tuple[datetime, datetime]] = []
    checks: list[SortKey] = []
    unbuilt = 0
    while month <= stop:
        following = next_month(month)
        lo = month if window.start is None else max(month, window.start)
        hi = following - TICK if window.end is None else min(following - TICK, window.end)
        whole = lo == month and hi == following - TICK
        built = lists.get(month)
        if built is None:
            exact.append((lo, hi))
            unbuilt += whole
        elif whole and (built.complete or built.row_count >= limit):
            full.append(month)
        elif built.complete:
            listed.append((month, lo, hi))
        elif exact_edges or built.cutoff is None:
            exact.append((lo, hi))
        else:
            listed.append((month, lo, hi))
            checks.append(built.cutoff)
        month = following
    return MonthsPlan(tuple(full), tuple(listed), tuple(exact), tuple(checks), unbuilt)


def answer_is_exact(plan: MonthsPlan, count: int, last: SortKey | None, limit: int) -> bool:
    """Whether the top `limit` computed from `plan` (`count` rows, the last one's sort key
    `last`) is the true top `limit` of the window: every play a list left out ranks after
    its cut-off, so it cannot belong when `limit` answers rank no later than every
    cut-off."""
    if not plan.checks:
        return True
    if count < limit or last is None:
        return False
    return all(last <= cutoff for cutoff in plan.checks)
