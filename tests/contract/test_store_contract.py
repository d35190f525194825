"""The storage contract across ports: schema, transactions and datetimes behave the same on SQLite and
PostgreSQL. Each port's operations have their own file, tests/contract/test_port_*.py."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from tests.contract.helpers import event_row

from storeflow.store import open_store
from storeflow.store.tables import metadata

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_migrations_produce_the_models_schema(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    store.migrate()  # idempotent
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    store.close()
    assert diff == []


def test_transaction_rolls_back_on_error(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    try:
        with store.transaction() as tx:
            tx.insert_event(event_row("k1"))
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with store.transaction() as tx:
        assert tx.count_events() == 0
    store.close()


def test_datetimes_round_trip_as_aware_utc(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    when = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    with store.transaction() as tx:
        tx.insert_event(event_row("k", occurred_at=when, properties={"total": "10.50"}))
    with store.transaction() as tx:
        row = tx.get_event("evt_k")
    assert row is not None
    assert row["occurred_at"] == when
    assert row["occurred_at"].tzinfo is not None
    assert row["properties"] == {"total": "10.50"}
    store.close()


def test_a_read_does_not_wait_for_an_open_writer(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    with store.transaction() as writer:
        writer.insert_event(event_row("k1"))
        with store.read() as reader:  # a writer holds the lock: the read still answers at once
            assert reader.count_events() == 0  # and sees only committed data
    with store.read() as reader:
        assert reader.count_events() == 1
    store.close()


