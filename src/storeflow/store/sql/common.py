"""Shared helpers for the SQL operation mixins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

if TYPE_CHECKING:
    from storeflow.store.sql.store import SqlStore


class TxBase:
    conn: Connection
    store: SqlStore

    def __init__(self, conn: Connection, store: SqlStore) -> None:
        self.conn = conn
        self.store = store
        self._notify: set[str] = set()

    def upsert(self, table: Table) -> Any:
        """An INSERT with ON CONFLICT support for this dialect."""
        if self.conn.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def notify_after_commit(self, channel: str) -> None:
        if channel not in self._notify:
            self._notify.add(channel)
            self.store.send_notify(self.conn, channel)


def as_dict(row: RowMapping | None) -> dict[str, Any] | None:
    return None if row is None else dict(row)
