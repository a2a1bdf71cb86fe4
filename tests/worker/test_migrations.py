"""The migrations build exactly the schema the code queries."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from osutrack.schema import metadata


def test_migrated_database_matches_the_declared_tables(db_engine: sa.Engine) -> None:
    with db_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []
