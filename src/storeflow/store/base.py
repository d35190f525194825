"""The storage port. ``Store`` opens transactions; ``StoreTx`` carries the named domain operations.

One transaction is one unit of work: an ingest batch, or a worker's batch of steps with the
messages and store actions they produce (the outbox). Nothing is half-written: a crash before
commit leaves the database as it was.

The operations themselves are grouped by domain in ``storeflow.store.sql`` (profiles, events,
commerce, flows, runs, outbox, keys); both backends share them and differ only in the small
dialect hooks declared here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from storeflow.store.sql.tx import SqlTx

StoreTx = SqlTx


class Store(Protocol):
    """A database storeflow can run on."""

    backend: str  # "sqlite" | "postgresql"

    def transaction(self) -> AbstractContextManager[SqlTx]:
        """A read-write transaction; commits on success, rolls back on any exception."""
        ...

    def read(self) -> AbstractContextManager[SqlTx]:
        """A read-only transaction: never blocks behind writers on SQLite."""
        ...

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        ...

    def listen(self, channel: str, timeout: float = 1.0) -> Iterator[bool] | None:
        """Yield True per notification on ``channel``, False per idle timeout (PostgreSQL);
        None where the backend has no notifications."""
        ...

    def close(self) -> None: ...

    def wipe(self) -> None:
        """Delete every row (tests and demos only)."""
        ...


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
