"""The environment handed to child processes.

`osutrack.settings.load_settings()` is the only reader of configuration; this module is the
only other place that touches `os.environ`, and only to copy it: children (workers, the API,
the simulator, migrations) need PATH, HOME, locale and the operator's own settings, with a
few values (DATABASE_URL, REDIS_URL, OSU_*) replaced by the ones the dev stack chose.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def child_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of this process's environment with `overrides` applied on top.

    The copy is a plain dict, so callers can add to it without changing this process.
    PYTHONUNBUFFERED is set so that children's output reaches the prefixed log as it is
    written instead of when their stdio buffer fills.
    """
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides or {})
    return env
