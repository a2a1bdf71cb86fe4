"""The environment of child processes and the file `make run` writes for joining processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devstack.env import child_env, read_env_file, write_env_file
from devstack.run import stack_configuration
from osutrack.settings import load_settings

STACK = {
    "DATABASE_URL": "postgresql+psycopg2://postgres:pw@127.0.0.1:54329/osutrack",
    "REDIS_URL": "redis://:pw@127.0.0.1:63799/0",
}


def test_an_empty_override_unsets_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://from-parent/x")
    monkeypatch.setenv("OSU_API_KEY", "parent-key")

    env = child_env({"DATABASE_URL": "", "OSU_API_KEY": "child-key"})

    assert "DATABASE_URL" not in env
    assert env["OSU_API_KEY"] == "child-key"
    assert os.environ["DATABASE_URL"] == "postgresql://from-parent/x"


def test_stack_env_holds_every_setting_and_loads_as_the_stack_saw_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OSU_API_BASE_URL", raising=False)
    monkeypatch.delenv("OSU_CLIENT_ID", raising=False)
    monkeypatch.setenv("RATE_LIMIT_READ", "7/minute")

    values = stack_configuration(STACK)
    env_file = tmp_path / "stack.env"
    write_env_file(env_file, values, "test")
    # What `set -a; . stack.env; set +a` gives a shell: every assignment, empty ones too.
    settings = load_settings(read_env_file(env_file))

    assert list(values)[:2] == ["DATABASE_URL", "REDIS_URL"]
    # A URL the stack did not set is written as its default, never empty (refused).
    assert values["OSU_API_BASE_URL"] == "https://osu.ppy.sh"
    assert values["OSU_CLIENT_ID"] == ""
    assert settings.database_url == STACK["DATABASE_URL"]
    assert str(settings.rate_limit_read) == "7/minute"
    assert settings.osu_api_base_url == "https://osu.ppy.sh"
