"""Shared helpers for the SQL operation mixins."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import DBAPIError, IntegrityError

from storeflow.jsonenc import dumps
from storeflow.store.tables import UTCDateTime

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

    def bulk_insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows (each with the same keys) in one round: on SQLite one executemany of values
        encoded here, on PostgreSQL one COPY; the stored values are those SQLAlchemy would store (a
        test compares them). A unique violation raises IntegrityError, as a plain INSERT would."""
        if not rows:
            return
        columns = list(rows[0])
        dialect = self.conn.dialect.name
        if dialect not in ("sqlite", "postgresql") or any(len(r) != len(columns) for r in rows):
            self.conn.execute(table.insert(), rows)
            return
        encoders = [(name, _encoder(table.c[name], dialect)) for name in columns]
        params = [tuple(row[name] if enc is None else enc(row[name]) for name, enc in encoders) for row in rows]
        if dialect == "sqlite":
            sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            self.conn.exec_driver_sql(sql, params)
            return
        import psycopg

        sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(sql) as copy:
                for values in params:
                    copy.write_row(values)
        except psycopg.IntegrityError as exc:
            raise IntegrityError(sql, None, exc) from exc
        except psycopg.Error as exc:
            raise DBAPIError(sql, None, exc) from exc  # as any other statement's error
        finally:
            cursor.close()

    def notify_after_commit(self, channel: str) -> None:
        if channel not in self._notify:
            self._notify.add(channel)
            self.store.send_notify(self.conn, channel)


def _encoder(column: Column[Any], dialect: str) -> Callable[[Any], Any] | None:
    """What SQLAlchemy's bind processing makes of a value of this column, minus its per-value
    machinery: aware datetimes to UTC (naive UTC text on SQLite), JSON documents to text."""
    if isinstance(column.type, UTCDateTime):
        def encode_datetime(value: datetime | None) -> datetime | str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError(f"naive datetime given to storage for {column}; use aware UTC datetimes")
            utc_value = value.astimezone(UTC)
            return utc_value.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else utc_value
        return encode_datetime
    if isinstance(column.type, JSON):
        return dumps
    return None


def as_dict(row: RowMapping | None) -> dict[str, Any] | None:
    return None if row is None else dict(row)
