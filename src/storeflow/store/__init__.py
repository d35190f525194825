"""Storage: a port of named domain operations over SQLAlchemy Core, on SQLite or PostgreSQL.

    store = open_store("sqlite:///storeflow.db")   # or postgresql+psycopg://...
    store.migrate()
    with store.transaction() as tx:
        tx.insert_event(...)
"""

from storeflow.store.base import Store, StoreTx
from storeflow.store.factory import open_store

__all__ = ["Store", "StoreTx", "open_store"]
