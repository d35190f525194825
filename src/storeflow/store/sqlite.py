"""SQLite: the embedded default. WAL journal, one writer at a time (BEGIN IMMEDIATE)."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Select, create_engine, event
from sqlalchemy.engine import Connection, Engine

from storeflow.jsonenc import dumps
from storeflow.store.sql.store import SqlStore


def _engine(url: str, begin: str) -> Engine:
    engine = create_engine(url, json_serializer=dumps, connect_args={"check_same_thread": False, "timeout": 60},
                           pool_size=8, max_overflow=8)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)

    return engine


class SqliteStore(SqlStore):
    backend = "sqlite"

    def __init__(self, url: str) -> None:
        # Writers take the lock up front (BEGIN IMMEDIATE): no deadlock from upgrading a read lock
        # later. Readers use their own pool with a deferred BEGIN and never take the write lock.
        super().__init__(_engine(url, "BEGIN IMMEDIATE"), _engine(url, "BEGIN"))

    def lock_for_claim(self, query: Select[Any]) -> Select[Any]:
        return query  # BEGIN IMMEDIATE already serializes writers
