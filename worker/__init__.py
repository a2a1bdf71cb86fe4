"""Celery workers: fetch osu! stats, compute diffs and new hiscores, write Postgres."""

from __future__ import annotations

from worker.app import app

__all__ = ["app"]
