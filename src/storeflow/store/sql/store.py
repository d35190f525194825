"""SqlStore: engine, transactions, migrations. Backends subclass it with a few dialect hooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from storeflow.errors import LostRace, MigrationError, StorageError
from storeflow.store import tables
from storeflow.store.ports import StoreTx
from storeflow.store.sql.tx import SqlTx

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


# PostgreSQL's deadlock_detected and serialization_failure: the transaction lost to another and retrying
# it is the documented remedy.
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})


class SqlStore:
    backend = "sql"

    def __init__(self, engine: Engine, read_engine: Engine | None = None) -> None:
        self.engine = engine
        self.read_engine = read_engine or engine

    # -- dialect hooks -------------------------------------------------------------------------
    def lock_for_claim(self, query: Select[Any]) -> Select[Any]:
        return query

    def send_notify(self, conn: Connection, channel: str) -> None:
        """Wake listeners in other processes after commit (PostgreSQL NOTIFY); no-op elsewhere."""

    def migration_lock(self, conn: Connection) -> None:
        """Serialize concurrent migrations (PostgreSQL advisory lock); no-op elsewhere."""

    def listen(self, channel: str, timeout: float = 1.0) -> Iterator[bool] | None:
        return None

    # -- transactions --------------------------------------------------------------------------
    # Typed as the port: mypy checks here that SqlTx offers every operation of every port.
    @contextmanager
    def transaction(self) -> Iterator[StoreTx]:
        try:
            with self.engine.begin() as conn:
                yield SqlTx(conn, self)
        except SQLAlchemyError as exc:
            if getattr(getattr(exc, "orig", None), "sqlstate", None) in _RETRY_SQLSTATES:
                raise LostRace(f"the database gave up this transaction for another: {exc.__class__.__name__}: "
                               f"{getattr(exc, 'orig', exc)}; it rolled back and is safe to retry") from exc
            raise StorageError(f"database error: {exc.__class__.__name__}: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[StoreTx]:
        """A read-only transaction. On SQLite it takes no write lock (WAL readers run beside the
        writer), so API reads never queue behind a busy worker. Writing through it is a bug."""
        try:
            with self.read_engine.begin() as conn:
                yield SqlTx(conn, self)
        except SQLAlchemyError as exc:
            raise StorageError(f"database error: {exc.__class__.__name__}: {exc}") from exc

    def migrate(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        try:
            with self.engine.begin() as conn:
                self.migration_lock(conn)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise MigrationError(f"could not migrate the database: {exc}") from exc

    def wipe(self) -> None:
        with self.engine.begin() as conn:
            for table in reversed(tables.metadata.sorted_tables):
                if table is not tables.flow_revision:  # counts on: flow caches must see the flows go
                    conn.execute(table.delete())
            SqlTx(conn, self).bump_flow_revision()

    def close(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
