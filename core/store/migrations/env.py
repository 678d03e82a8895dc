"""Alembic environment: runs on the connection that `core.store.migrate` hands it."""

from alembic import context

from core.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
