"""The environment handed to child processes.

`osutrack.settings.load_settings()` is the only reader of configuration; this module is the
only other place that touches `os.environ`, and only to copy it: children (workers, the API,
the simulator, migrations) need PATH, HOME, locale and the operator's own settings, with a
few values (DATABASE_URL, REDIS_URL, OSU_*) replaced by the ones the dev stack chose. It
also writes and reads the file through which `make run` hands those values to processes
started from other shells (`make worker`, psql, celery, worker.admin).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path


def child_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of this process's environment with `overrides` applied on top.

    An empty override removes the variable: the settings read an unset variable as its
    default, and refuse a URL that is set but empty. The copy is a plain dict, so callers
    can add to it without changing this process. PYTHONUNBUFFERED is set so that children's
    output reaches the prefixed log as it is written instead of when their stdio buffer
    fills.
    """
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in (overrides or {}).items():
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    return env


def write_env_file(path: Path, values: Mapping[str, str], header: str) -> None:
    """Write `values` as shell assignments (`set -a; . FILE; set +a` loads them), mode 0600.

    The file holds passwords, so it is created private rather than restricted afterwards.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"{name}={shlex.quote(value)}" for name, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    path.chmod(0o600)


def read_env_file(path: Path) -> dict[str, str]:
    """The assignments of a file written by `write_env_file` (comments skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, quoted = line.partition("=")
        if line.startswith("#") or not sep:
            continue
        words = shlex.split(quoted)
        values[name.strip()] = words[0] if words else ""
    return values
