"""The sketch of a /bestplays month list, shared by beat (which writes it) and the shim.

Each built list keeps the pp of its plays at these ranks (`bestplays_month_lists.sketch_pp`,
NULL past the list's end): a play at rank r guarantees r plays of its month at or above
its pp, which bounds how far a window's merge reads each list. About 1.5x apart, so the
rows a month contributes are overestimated by at most about half. Migration 0007 holds a
frozen copy.
"""

from __future__ import annotations

SKETCH_POSITIONS: tuple[int, ...] = (
    *(1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700),
    *(1000, 1500, 2000, 3000, 5000, 7000, 10000),
)
