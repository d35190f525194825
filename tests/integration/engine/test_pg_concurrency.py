"""Concurrent writers on PostgreSQL: two processes (two Storeflow instances, two connections) on one
database, interleaved deterministically.

Each test opens one side's transaction, lets the other side commit at a chosen point inside it (a
hook on the write-behind flush, the moment ingest writes what it computed), then lets the first
finish. SQLite serializes writers (BEGIN IMMEDIATE), so these interleavings cannot happen there;
the flow-cache test runs on both backends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from tests.integration.engine.helpers import apply, profile_of

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.settings import Settings
from storeflow.store.sql.write_behind import WriteBehindTx

COUNTER = """
id: counter
name: Counter
trigger: {event: product_viewed}
steps:
  - action: set_property
    property: visits
    increment: 1
"""


@pytest.fixture
def two(pg_url: str, clock: VirtualClock) -> Iterator[tuple[Storeflow, Storeflow]]:
    """Two Storeflow instances (as two API or worker processes) on one PostgreSQL database."""
    first = Storeflow(Settings(database_url=pg_url), clock=clock)
    second = Storeflow(Settings(database_url=pg_url), clock=clock)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


@pytest.fixture
def before_flush(monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[], object]], list[str]]:
    """``before_flush(action)``: the next write-behind flush (ingest about to write its batch) first
    runs ``action``, which commits in another connection; later flushes (the action's own, the
    retried batch's) run as they are."""
    original = WriteBehindTx.flush

    def arm(action: Callable[[], object]) -> list[str]:
        fired: list[str] = []
        lock = threading.Lock()

        def flush(self: WriteBehindTx) -> None:
            with lock:
                first = not fired
                fired.append("flush")
            if first:
                action()
            original(self)

        monkeypatch.setattr(WriteBehindTx, "flush", flush)
        return fired

    return arm


def test_ingest_keeps_a_property_the_worker_set_after_ingest_read_the_profile(
        two: tuple[Storeflow, Storeflow], before_flush: Callable[[Callable[[], object]], list[str]]) -> None:
    api, worker = two
    apply(api, COUNTER)
    api.identify({"email": "ana@example.com"})
    api.ingest([{"type": "product_viewed", "email": "ana@example.com", "properties": {"product_id": "p1"}}])
    # The identify below reads Ana's profile (no visits yet); before it writes, the worker runs the
    # counter flow in its own transaction and commits visits: 1.
    fired = before_flush(worker.drain)
    result = api.identify({"email": "ana@example.com", "profile": {"first_name": "Ana"}})
    assert result.status == "accepted"
    assert fired, "the worker did not run inside the ingest transaction"
    assert profile_of(api, "ana@example.com")["properties"] == {"visits": 1, "first_name": "Ana"}


def test_ingest_sql_merge_keeps_other_keys_on_both_backends(sf: Storeflow) -> None:
    """The same rule outside the batch view: ``merge_properties`` sets only the keys given."""
    sf.identify({"email": "bo@example.com", "profile": {"first_name": "Bo", "city": "Recife"}})
    pid = profile_of(sf, "bo@example.com")["id"]
    with sf.store.transaction() as tx:
        tx.merge_properties(pid, {"city": "Natal", "plan": "gold"}, sf.clock.now())
    assert profile_of(sf, "bo@example.com")["properties"] == {"first_name": "Bo", "city": "Natal", "plan": "gold"}


@pytest.mark.parametrize(("first", "second"), [("order_placed", "order_paid"), ("order_paid", "order_placed")])
def test_two_processes_storing_one_new_order_both_succeed(
        two: tuple[Storeflow, Storeflow], before_flush: Callable[[Callable[[], object]], list[str]],
        clock: VirtualClock, first: str, second: str) -> None:
    api1, api2 = two
    api1.identify({"email": "ana@example.com"})
    at = clock.now() - timedelta(minutes=1)
    events = {
        "order_placed": {"type": "order_placed", "email": "ana@example.com", "occurred_at": at.isoformat(),
                         "properties": {"order_id": "o1", "total": "99.90", "currency": "BRL"}},
        "order_paid": {"type": "order_paid", "email": "ana@example.com", "occurred_at": clock.now().isoformat(),
                       "properties": {"order_id": "o1", "currency": "BRL"}},
    }
    other: list[str] = []
    fired = before_flush(lambda: other.extend(r.status for r in api2.ingest([events[second]])))
    results = api1.ingest([events[first]])  # the other process inserts order o1 before this one writes it
    assert fired and other == ["accepted"]
    assert [r.status for r in results] == ["accepted"]
    ana = profile_of(api1, "ana@example.com")
    assert [(o["id"], o["financial_status"], o["total_minor"]) for o in ana["orders"]] == [("o1", "paid", 9990)]
    assert ana["orders_count"] == 1


def test_two_processes_storing_one_new_cart_both_succeed(
        two: tuple[Storeflow, Storeflow], before_flush: Callable[[Callable[[], object]], list[str]]) -> None:
    api1, api2 = two
    api1.identify({"email": "ana@example.com"})

    def added(sku: str) -> dict[str, Any]:
        return {"type": "product_added_to_cart", "email": "ana@example.com",
                "properties": {"cart_id": "c1", "product_id": sku, "sku": sku, "quantity": 1, "price": "10",
                               "currency": "BRL"}}

    other: list[str] = []
    fired = before_flush(lambda: other.extend(r.status for r in api2.ingest([added("B")])))
    results = api1.ingest([added("A")])
    assert fired and other == ["accepted"]
    assert [r.status for r in results] == ["accepted"]
    with api1.store.read() as tx:
        carts = tx.conn.execute(text("SELECT id FROM carts")).scalars().all()
    assert carts == ["c1"]


def test_a_flow_paused_by_a_host_whose_clock_is_behind_stops_starting_runs_everywhere(
        make_sf: Callable[..., Storeflow], db_url: str, clock: VirtualClock) -> None:
    """The flow cache compares a revision counter, not the flows' latest ``updated_at``: a pause
    stamped before the newest change (another host's clock an hour behind) is seen by every process."""
    engine: Storeflow = make_sf()  # serves ingest, with its flow cache warm
    apply(engine, COUNTER)
    clock.advance(timedelta(minutes=5))
    apply(engine, COUNTER.replace("id: counter", "id: other").replace("product_viewed", "page_viewed"))
    viewed = {"type": "product_viewed", "email": "ana@example.com", "properties": {"product_id": "p1"}}
    assert engine.ingest([{**viewed, "id": "v1"}])[0].runs_started
    engine.drain()
    behind = Storeflow(Settings(database_url=db_url), clock=VirtualClock(clock.now() - timedelta(hours=1)))
    try:
        behind.flows.set_status("counter", "paused")
        with behind.store.read() as tx:
            stamps = {f["id"]: f["updated_at"] for f in tx.list_flows()}
        assert stamps["counter"] < stamps["other"]  # the pause is not the newest stamp
    finally:
        behind.close()
    assert engine.ingest([{**viewed, "id": "v2"}])[0].runs_started == []


def test_two_batches_storing_two_new_orders_of_one_profile_both_count(
        two: tuple[Storeflow, Storeflow], before_flush: Callable[[Callable[[], object]], list[str]]) -> None:
    """Each batch knows only its own new order; the profile's order summary is recomputed from the
    orders table under the profile's lock at flush, so the order the other batch committed counts."""
    api1, api2 = two
    api1.identify({"email": "ana@example.com"})

    def placed(order_id: str, total: str) -> dict[str, Any]:
        return {"type": "order_placed", "email": "ana@example.com",
                "properties": {"order_id": order_id, "total": total, "currency": "BRL"}}

    other: list[str] = []
    fired = before_flush(lambda: other.extend(r.status for r in api2.ingest([placed("o2", "10.00")])))
    results = api1.ingest([placed("o1", "5.50")])  # read Ana with no orders; o2 commits before it writes
    assert fired and other == ["accepted"]
    assert [r.status for r in results] == ["accepted"]
    ana = profile_of(api1, "ana@example.com")
    assert sorted(o["id"] for o in ana["orders"]) == ["o1", "o2"]
    assert (ana["orders_count"], ana["total_spent"]) == (2, {"BRL": "15.50"})


def _blocked(sf: Storeflow, backend_pid: int) -> bool:
    """Whether that PostgreSQL backend waits for a lock another session holds."""
    with sf.store.engine.connect() as conn:  # type: ignore[attr-defined]
        return bool(conn.execute(text("SELECT cardinality(pg_blocking_pids(:pid)) > 0"),
                                 {"pid": backend_pid}).scalar_one())


def test_a_merge_keeps_what_another_transaction_committed_to_the_survivor_meanwhile(
        two: tuple[Storeflow, Storeflow], clock: VirtualClock) -> None:
    """The other transaction holds the survivor's row (a worker's ``set_property``) while the merge
    starts; the merge waits for it, then reads both profiles under its own lock, so the key the
    other transaction committed is merged, not overwritten with the copy read before."""
    first, second = two
    now = clock.now()
    with first.store.transaction() as tx:
        tx.create_profile("keep", now, properties={"a": 1})
        tx.create_profile("gone", now, properties={"b": 2})
    holding, release = threading.Event(), threading.Event()
    merge_pid: list[int] = []
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with second.store.transaction() as tx:
                tx.merge_properties("keep", {"visits": 1}, now)  # locks the row until commit
                holding.set()
                assert release.wait(60), "the test never released the other transaction"
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
            holding.set()

    def merge() -> None:
        try:
            with first.store.transaction() as tx:
                merge_pid.append(tx.conn.execute(text("SELECT pg_backend_pid()")).scalar_one())  # type: ignore[attr-defined]
                tx.merge_profiles("keep", "gone", now)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    holder = threading.Thread(target=other)
    holder.start()
    assert holding.wait(30) and not errors
    merger = threading.Thread(target=merge)
    merger.start()
    deadline = time.monotonic() + 30
    while not (merge_pid and _blocked(first, merge_pid[0])):  # the merge reached the other's lock
        assert merger.is_alive() and time.monotonic() < deadline, "the merge never waited for the lock"
        time.sleep(0.01)
    release.set()
    holder.join(30)
    merger.join(30)
    assert not errors and not holder.is_alive() and not merger.is_alive()
    with first.store.read() as tx:
        kept = tx.get_profile("gone")
    assert kept is not None and kept["id"] == "keep"
    assert kept["properties"] == {"a": 1, "b": 2, "visits": 1}
