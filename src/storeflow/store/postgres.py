"""PostgreSQL: many API and worker processes. Claims use FOR UPDATE SKIP LOCKED; wake-ups use NOTIFY."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from sqlalchemy import Select, create_engine, text
from sqlalchemy.engine import Connection

from storeflow.errors import StorageError
from storeflow.jsonenc import dumps
from storeflow.store.sql.store import SqlStore


class PostgresStore(SqlStore):
    backend = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        engine = create_engine(url, json_serializer=dumps, pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=True)
        super().__init__(engine)
        self._url = url

    def lock_for_claim(self, query: Select[Any]) -> Select[Any]:
        return query.with_for_update(skip_locked=True, of=query.selected_columns[0].table)

    def send_notify(self, conn: Connection, channel: str) -> None:
        conn.execute(text("SELECT pg_notify(:c, '')"), {"c": channel})

    def migration_lock(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(7412093)"))

    def listen(self, channel: str, timeout: float = 1.0) -> Iterator[bool]:
        """Yield True per notification, False per idle timeout. Runs until the consumer stops."""
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'LISTEN "{channel}"')
                while True:
                    got = False
                    for _ in conn.notifies(timeout=timeout, stop_after=1):
                        got = True
                    yield got
        except psycopg.Error as exc:
            raise StorageError(f"LISTEN on {channel} failed: {exc}") from exc
