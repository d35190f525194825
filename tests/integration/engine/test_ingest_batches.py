"""Ingest reads a batch's rows at once and writes them behind (``store/sql/write_behind.py``).

The same events must leave the same state whatever the batch size: one event per batch reads
everything from the database, a thousand per batch reads it from the batch's cache. The events
mix everything that touches cached rows within one batch: new and returning shoppers, an anonymous
visitor who identifies (a merge), carts that grow and convert, orders placed, refunded and
cancelled, product and stock updates that derive events, consent changes, and re-entry rules.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from benchmarks.workload import commerce_events
from sqlalchemy import create_engine, text
from tests.integration.engine.helpers import apply

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.errors import LostRace
from storeflow.store.sql.write_behind import PrefetchKeys, WriteBehindTx

FLOWS = (
    """
id: cart-once
name: Cart once
trigger: {event: checkout_started, filter: {field: cart.value, gt: 10}}
reentry: once
steps: [{action: tag, tags: [carted]}]
""",
    """
id: viewer-daily
name: Viewer daily
trigger: {event: product_viewed, filter: {field: product.stock, gte: 0}}
reentry: {every: 1d}
steps: [{action: note, text: viewed}]
""",
    """
id: buyer-always
name: Buyer always
trigger: {event: order_placed, filter: {field: profile.orders_count, gte: 1}}
reentry: always
steps: [{wait: 1h}]
""",
    """
id: restock
name: Restock
trigger: {event: stock_restored}
steps: [{action: note, text: back}]
""",
)


def _events(clock: VirtualClock) -> list[dict[str, Any]]:
    now = clock.now()
    at = (lambda minutes: (now - timedelta(minutes=minutes)).isoformat())  # noqa: E731
    events = commerce_events(240, profiles=30, now=now, seed=5)
    events += [
        {"type": "product_viewed", "id": "anon-1", "anonymous_id": "anon-A", "occurred_at": at(9),
         "properties": {"product_id": "p1"}},
        {"type": "product_added_to_cart", "id": "anon-2", "anonymous_id": "anon-A", "occurred_at": at(8),
         "properties": {"cart_id": "anon-cart", "product_id": "p1", "variant_id": "v1", "quantity": 2,
                        "price": "15.00", "currency": "USD"}},
        {"type": "identified", "id": "anon-3", "anonymous_id": "anon-A", "email": "shopper3@example.com",
         "occurred_at": at(7), "profile": {"first_name": "Tri", "locale": "pt_BR"}},
        {"type": "checkout_started", "id": "anon-4", "email": "shopper3@example.com", "occurred_at": at(6),
         "properties": {"checkout_id": "anon-cart", "value": "30.00", "currency": "USD"}},
        {"type": "order_placed", "id": "anon-5", "email": "shopper3@example.com", "occurred_at": at(5),
         "properties": {"order_id": "anon-order", "checkout_id": "anon-cart", "total": "30.00", "currency": "USD"}},
        {"type": "order_refunded", "id": "anon-6", "email": "shopper3@example.com", "occurred_at": at(4),
         "properties": {"order_id": "anon-order", "amount": "10.00", "currency": "USD"}},
        {"type": "order_cancelled", "id": "o-cancel", "email": "shopper4@example.com", "occurred_at": at(4),
         "properties": {"order_id": "o-c4-1"}},
        {"type": "product_updated", "id": "prod-1", "occurred_at": at(3),
         "properties": {"product_id": "p2", "title": "Mug", "currency": "USD",
                        "variants": [{"variant_id": "v2", "sku": "MUG", "price": "9.00", "quantity": 0}]}},
        {"type": "inventory_changed", "id": "stock-1", "occurred_at": at(2),
         "properties": {"variant_id": "v2", "quantity": 5}},
        {"type": "product_viewed", "id": "view-mug", "email": "shopper5@example.com", "occurred_at": at(1),
         "properties": {"product_id": "p2"}},
        {"type": "subscribed", "id": "consent-1", "email": "shopper6@example.com", "occurred_at": at(1),
         "properties": {"channel": "email"}},
        {"type": "product_viewed", "id": "bad", "email": "not-an-email", "properties": {}},
    ]
    return events


def _state(sf: Storeflow) -> dict[str, Any]:
    """Everything ingest wrote, with random ids replaced by the emails/keys they stand for."""
    with sf.store.transaction() as tx:
        q = lambda sql: [dict(r._mapping) for r in tx.conn.execute(text(sql))]  # noqa: E731
        who = {r["id"]: r["email"] or r["id"] for r in q("SELECT id, email FROM profiles")}
        merged = {r["id"]: r["merged_into"] for r in q("SELECT id, merged_into FROM profiles")}

        def person(pid: str | None) -> str | None:
            while merged.get(pid):
                pid = merged[pid]
            return None if pid is None else who.get(pid, pid)

        profiles = sorted(
            (person(r["id"]), r["locale"], str(r["properties"]), r["orders_count"], str(r["total_spent"]),
             str(r["last_active_at"])[:19], r["consent_email"], str(r["first_order_at"])[:19])
            for r in q("SELECT * FROM profiles WHERE merged_into IS NULL"))
        identities = sorted((r["kind"], r["value"], person(r["profile_id"])) for r in q("SELECT * FROM identities"))
        carts = sorted((r["id"], person(r["profile_id"]), r["kind"], r["value_minor"], str(r["items"]),
                        r["order_id"], r["converted_at"] is not None) for r in q("SELECT * FROM carts"))
        orders = sorted((r["id"], person(r["profile_id"]), r["status"], r["total_minor"], r["refunded_minor"])
                        for r in q("SELECT * FROM orders"))
        events = sorted((r["type"], r["idempotency_key"], person(r["profile_id"])) for r in q("SELECT * FROM events"))
        runs = sorted((r["flow_id"], person(r["profile_id"]), r["status"], r["active_key"] is not None)
                      for r in q("SELECT * FROM runs"))
        entries = sorted((r["flow_id"], person(r["profile_id"]), r["entries"]) for r in q("SELECT * FROM flow_entries"))
        stock = sorted((r["variant_id"], r["quantity"]) for r in q("SELECT * FROM stock_levels"))
    return {"profiles": profiles, "identities": identities, "carts": carts, "orders": orders, "events": events,
            "runs": runs, "entries": entries, "stock": stock}


def _ingest(make_sf: Any, clock: VirtualClock, batch: int) -> tuple[dict[str, Any], list[str]]:
    sf: Storeflow = make_sf()
    for flow in FLOWS:
        apply(sf, flow)
    events = _events(clock)
    statuses = []
    for i in range(0, len(events), batch):
        statuses += [r.status for r in sf.ingest(events[i:i + batch])]
    state = _state(sf)
    with sf.store.transaction() as tx:
        tx.conn.execute(text("DELETE FROM events"))  # the next ingest starts from an empty store
        for table in ("profiles", "identities", "carts", "orders", "runs", "flow_entries", "stock_levels",
                      "variants", "products", "run_waits"):
            tx.conn.execute(text(f"DELETE FROM {table}"))
    return state, statuses


def test_one_batch_leaves_the_state_that_one_event_per_batch_leaves(make_sf: Any, clock: VirtualClock) -> None:
    one_by_one, statuses_1 = _ingest(make_sf, clock, batch=1)
    all_at_once, statuses_n = _ingest(make_sf, clock, batch=1000)
    assert statuses_1 == statuses_n
    assert statuses_n.count("rejected") == 1 and statuses_n.count("accepted") == len(statuses_n) - 1
    for part in one_by_one:
        assert all_at_once[part] == one_by_one[part], part
    # the mix really exercised the cache: a merge, conversions, a refund, derived stock events, re-entry
    assert ("anonymous", "anon-A", "shopper3@example.com") in all_at_once["identities"]
    assert any(c[0] == "anon-cart" and c[5] == "anon-order" and c[6] for c in all_at_once["carts"])
    assert any(o[0] == "anon-order" and o[4] == 1000 for o in all_at_once["orders"])
    assert any(e[0] == "stock_restored" for e in all_at_once["events"])
    assert {r[0] for r in all_at_once["runs"]} == {"cart-once", "viewer-daily", "buyer-always", "restock"}
    assert {e[0] for e in all_at_once["entries"]} == {"cart-once", "viewer-daily", "buyer-always"}


def test_operations_the_view_does_not_answer_see_the_pending_writes(sf: Storeflow) -> None:
    with sf.store.transaction() as tx:
        view = tx.write_behind()
        view.prefetch(PrefetchKeys(identities=[("email", "w@example.com")]))
        view.create_profile("prof_w", sf.clock.now(), email="w@example.com")
        view.add_identities("prof_w", [("email", "w@example.com")], sf.clock.now())
        view.insert_event({"id": "evt_w", "type": "customer_updated", "occurred_at": sf.clock.now(),
                           "received_at": sf.clock.now(), "source": "api", "profile_id": "prof_w",
                           "properties": {}, "idempotency_key": "k:w"})
        assert view.count_events() == 1  # not answered from the cache: flushed first, then counted
        assert view.count_profiles() == 1
        assert view.stale  # and the cache was forgotten, to be read again


@pytest.fixture
def racing_event(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Makes the next ingest batch lose a race: right after its idempotency check, another
    connection stores one of its events and commits (real PostgreSQL, real concurrency)."""
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
                           if pg_url.startswith("postgresql://") else pg_url)
    original = WriteBehindTx.prefetch
    fired: list[str] = []
    lock = threading.Lock()

    def prefetch(self: WriteBehindTx, keys: PrefetchKeys) -> None:
        with lock:
            if not fired:
                fired.append("raced")
                with engine.begin() as conn:
                    conn.execute(text(
                        "INSERT INTO events (id, type, profile_id, occurred_at, received_at, source, "
                        "idempotency_key, properties) VALUES ('evt_rival', 'customer_updated', NULL, now(), now(), "
                        "'api', 'api:race-2', '{}')"))
        original(self, keys)

    monkeypatch.setattr(WriteBehindTx, "prefetch", prefetch)
    yield fired
    engine.dispose()


def test_a_batch_that_loses_a_race_is_retried_and_sees_the_rival_row(
        pg_url: str, racing_event: list[str], clock: VirtualClock) -> None:
    from storeflow.settings import Settings

    sf = Storeflow(Settings(database_url=pg_url), clock=clock)
    try:
        batch = [{"type": "customer_updated", "id": f"race-{i}", "email": f"r{i}@example.com"} for i in range(4)]
        results = sf.ingest(batch)
        assert racing_event == ["raced"]
        assert [r.status for r in results] == ["accepted", "accepted", "duplicate", "accepted"]
        with sf.store.transaction() as tx:
            keys = [r[0] for r in tx.conn.execute(text("SELECT idempotency_key FROM events ORDER BY 1"))]
        assert keys == ["api:race-0", "api:race-1", "api:race-2", "api:race-3"]
    finally:
        sf.close()


def test_lost_race_is_a_storage_error_that_names_the_row() -> None:
    from storeflow.errors import StorageError

    assert issubclass(LostRace, StorageError)


def test_warm_up_loads_the_live_flows_before_the_first_event(make_sf: Any) -> None:
    first: Storeflow = make_sf()
    apply(first, FLOWS[0])  # cart-once: re-entry once
    fresh: Storeflow = make_sf()  # another process, say: its flow cache starts empty
    assert fresh.flowset.reentry_limited() == frozenset()
    fresh.warm_up()
    assert fresh.flowset.reentry_limited() == frozenset({"cart-once"})


def test_bulk_inserts_store_what_sqlalchemy_stores(db_url: str, clock: VirtualClock) -> None:
    from datetime import UTC, datetime, timezone

    from storeflow.settings import Settings
    from storeflow.store.tables import events, runs

    sf = Storeflow(Settings(database_url=db_url), clock=clock)
    try:
        at = datetime(2026, 3, 2, 16, 5, 7, 120, tzinfo=timezone(timedelta(hours=7)))  # Jakarta time
        event = {"type": "order_placed", "profile_id": None, "occurred_at": at, "received_at": clock.now(),
                 "source": "api", "properties": {"total": "10.50", "items": [{"sku": "Ã", "q": 2}], "none": None}}
        run = {"flow_id": "f", "flow_version": 1, "profile_id": "p", "status": "active", "cursor": "0",
               "due_at": datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "active_key": None, "dedupe_key": None,
               "trigger_event_id": None, "context": {"seq": 0}, "attempts": 0, "last_error": None,
               "exit_reason": None, "started_at": at, "updated_at": at, "ended_at": None}
        with sf.store.transaction() as tx:
            tx.bulk_insert(events, [{"id": "fast", "idempotency_key": "k1", **event}])
            tx.conn.execute(events.insert(), [{"id": "slow", "idempotency_key": "k2", **event}])
            tx.bulk_insert(runs, [{"id": "fast", **run}])
            tx.conn.execute(runs.insert(), [{"id": "slow", **run}])
            for table in ("events", "runs"):
                rows = {r[0]: r[1:] for r in tx.conn.exec_driver_sql(f"SELECT * FROM {table}")}
                fast, slow = rows["fast"], rows["slow"]
                if table == "events":  # the idempotency keys differ on purpose
                    fast, slow = fast[:5] + fast[6:], slow[:5] + slow[6:]
                assert fast == slow, table
            assert tx.get_event("fast") == {**tx.get_event("slow"), "id": "fast", "idempotency_key": "k1"}  # type: ignore[dict-item]
    finally:
        sf.close()


def test_a_deadlock_on_postgresql_is_a_lost_race_to_retry(pg_url: str) -> None:
    from storeflow.store import open_store

    store = open_store(pg_url)
    store.migrate()
    with store.transaction() as tx:
        for pid in ("a", "b"):
            tx.create_profile(pid, T_DEADLOCK)
    barrier = threading.Barrier(2, timeout=30)
    outcomes: list[str] = []

    def update(first: str, second: str) -> None:
        try:
            with store.transaction() as tx:
                tx.update_profile(first, T_DEADLOCK, locale="pt_BR")
                barrier.wait()
                tx.update_profile(second, T_DEADLOCK, locale="id_ID")
            outcomes.append("committed")
        except LostRace as exc:
            outcomes.append("lost" if "safe to retry" in str(exc) else f"lost without a hint: {exc}")

    threads = [threading.Thread(target=update, args=pair) for pair in (("a", "b"), ("b", "a"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    store.close()
    assert sorted(outcomes) == ["committed", "lost"]


T_DEADLOCK = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
