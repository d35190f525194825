"""The storage port. ``Store`` opens transactions; ``StoreTx`` carries the named domain operations.

One transaction is one unit of work: an ingest batch, or a worker's batch of steps with the
messages and store actions they produce (the outbox). Nothing is half-written: a crash before
commit leaves the database as it was.

The operations are declared per domain as ports in ``storeflow.store.ports`` (profiles, events,
commerce, flows, runs, outbox, messages, keys, batch reads and writes, dates, the transaction
itself); ``StoreTx`` combines them. ``storeflow.store.sql`` implements them once for both backends,
which differ only in small dialect hooks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from storeflow.store.ports import StoreTx

__all__ = ["Store", "StoreTx", "later"]


class Store(Protocol):
    """A database storeflow can run on."""

    backend: str  # "sqlite" | "postgresql"

    def transaction(self) -> AbstractContextManager[StoreTx]:
        """A read-write transaction; commits on success, rolls back on any exception."""
        ...

    def read(self) -> AbstractContextManager[StoreTx]:
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
