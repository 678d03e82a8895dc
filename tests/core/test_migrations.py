"""The hand-written migrations build exactly the tables the code defines, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import flows  # noqa: F401  (defines the flows' tables on core's metadata)
from core.store import Store
from core.store.tables import metadata


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated(request, tmp_path):
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'hub.db'}")
        store.migrate()
    else:
        store = Store(request.getfixturevalue("postgres_database"))  # migrated by the fixture
    yield store
    store.dispose()


def test_the_migrations_match_the_table_definitions(migrated):
    with migrated.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert differences == []
