"""Timestamps as the original osu!track API prints them."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_z(moment: datetime | None) -> str | None:
    """`2021-02-04T23:24:42.000Z`: UTC, whole seconds, as osu!track's MySQL DATETIMEs were.

    Stored times keep microseconds (two updates in one second stay distinct and ordered);
    only the printed form drops them, matching the original byte for byte. `from`/`to`
    compare at this precision too (`api_shim.params.parse_window`).
    """
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def v1_date(moment: datetime) -> str:
    """`2010-04-22 08:25:22`: the osu! API v1 date format (UTC, no zone)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
