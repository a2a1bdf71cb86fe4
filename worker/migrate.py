"""Apply the database migrations: `python -m worker.migrate` (reads DATABASE_URL)."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from osutrack.settings import settings_for

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An alembic configuration for `database_url`, without an ini file on disk."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at `database_url` to `revision` (the newest by default)."""
    command.upgrade(alembic_config(database_url), revision)


def main() -> int:
    settings = settings_for("migrate")
    upgrade(settings.database_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
