"""Storage: named domain operations (ports) over SQLAlchemy Core, on SQLite or PostgreSQL.

    store = open_store("sqlite:///storeflow.db")   # or postgresql+psycopg://...
    store.migrate()
    with store.transaction() as tx:                 # tx: StoreTx
        tx.insert_event(...)

``storeflow.store.ports`` declares the operations, one Protocol per domain: profiles, events,
commerce (products, stock, orders, carts), flows, runs, outbox, messages, keys, batch reads and
writes, dates, and the transaction itself (savepoints, ping, notifications, the write-behind view).
``StoreTx`` combines them: a transaction offers every port. Code outside ``storeflow.store`` types
against ``StoreTx`` or a narrower port, never against the SQL implementation in
``storeflow.store.sql`` (``SqlTx``), which mypy checks against every port. The contract suite in
``tests/contract`` runs each port's operations on both backends.
"""

from storeflow.store.base import Store, StoreTx
from storeflow.store.factory import open_store

__all__ = ["Store", "StoreTx", "open_store"]
