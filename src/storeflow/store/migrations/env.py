"""Alembic environment: runs on the connection storeflow hands it (see SqlStore.migrate)."""

from __future__ import annotations

from alembic import context

from storeflow.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("storeflow migrations run through `storeflow init` or SqlStore.migrate()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  compare_type=True)
context.run_migrations()
