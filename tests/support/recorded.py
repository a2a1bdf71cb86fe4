"""Access to the recorded osu! API responses in the shared fixtures folder.

The recordings are third-party data kept beside the checkout (`../shared/fixtures/osu-api`,
see its SOURCES.md), not in this repository; CI always has them. Without them the tests
that need them are skipped with this reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "osu-api"

needs_recordings = pytest.mark.skipif(
    not FIXTURES_DIR.is_dir(), reason=f"recorded osu! API responses not found at {FIXTURES_DIR}"
)


def recorded(name: str) -> Any:
    """The decoded body of one recorded response."""
    return json.loads((FIXTURES_DIR / name).read_text(encoding="utf-8"))
