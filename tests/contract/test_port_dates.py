"""DatesPort on both backends: date flows' backfill, the queue of changed profiles, fire times."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import create_engine, text
from tests.contract.helpers import T0, flow_row

from storeflow.store import Store, open_store
from storeflow.store.sql.dates_ops import BACKFILLED

HOUR = timedelta(hours=1)


def test_date_schedule_and_backfill(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_flow(flow_row("d", trigger_kind="date", trigger_event=None))
        tx.insert_flow(flow_row("paused", trigger_kind="date", trigger_event=None, status="paused"))
        assert tx.set_date_schedule("d", 1, T0) is True
        assert tx.set_date_schedule("d", 1, T0) is False  # this version's backfill is under way
        assert tx.live_date_flows() == [("d", 1)]
    with store.transaction() as tx:
        (row,) = tx.claim_due_schedules(T0)
        assert (row["kind"], row["backfill_after"]) == ("date", "")
        tx.advance_backfill("d", "p5", T0 + HOUR)
        (row,) = tx.claim_due_schedules(T0 + HOUR)
        assert (row["backfill_after"], row["next_fire_at"]) == ("p5", T0 + HOUR)
        tx.advance_backfill("d", None, T0 + HOUR)
        assert tx.claim_due_schedules(T0 + 1000 * HOUR) == []
        assert tx.next_schedule_at() == BACKFILLED


def _with_a_date_flow(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_flow(flow_row("d", trigger_kind="date", trigger_event=None))
        tx.set_date_schedule("d", 1, T0)


def test_profile_changes_queue(store: Store) -> None:
    _with_a_date_flow(store)
    with store.transaction() as tx:
        assert tx.has_profile_changes() is False
        tx.create_profile("p2", T0, properties={"birthday": "1990-05-01"})
        tx.create_profile("p1", T0, timezone="Europe/Berlin")
        tx.create_profile("p3", T0)  # no dates to follow: not queued
        assert tx.has_profile_changes() is True
        assert tx.claim_profile_changes(1) == ["p1"]
        assert tx.claim_profile_changes(10) == ["p2"]
        assert tx.has_profile_changes() is False


def test_fire_times_claimed_updated_and_deleted(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_flow(flow_row("d", trigger_kind="date", trigger_event=None))
        tx.insert_flow(flow_row("off", trigger_kind="date", trigger_event=None, status="paused"))
        tx.set_date_fires([{"flow_id": "d", "profile_id": "p", "next_fire_at": T0 + HOUR, "occurrence_key": "2026"},
                           {"flow_id": "d", "profile_id": "q", "next_fire_at": T0, "occurrence_key": "2026"},
                           {"flow_id": "off", "profile_id": "p", "next_fire_at": T0, "occurrence_key": "2026"}])
    with store.transaction() as tx:
        assert tx.next_date_fire_at() == T0  # of a live flow
        due = tx.claim_due_date_fires(T0 + HOUR, 10)
        assert [(r["flow_id"], r["profile_id"]) for r in due] == [("d", "q"), ("d", "p")]
        assert tx.claim_due_date_fires(T0 + HOUR, 1)[0]["profile_id"] == "q"
        tx.update_date_fires([{"flow_id": "d", "profile_id": "q", "next_fire_at": T0 + 9000 * HOUR,
                               "occurrence_key": "2027", "last_occurrence": "2026", "last_outcome": "fired",
                               "last_at": T0}])
        assert tx.last_occurrences(["p", "q"]) == {("d", "q"): "2026"}
        assert [r["flow_id"] for r in tx.date_fires_of("p")] == ["d", "off"]
        tx.delete_date_fires([("d", "p"), ("off", "p")])
        assert tx.date_fires_of("p") == []
        assert tx.next_date_fire_at() == T0 + 9000 * HOUR


def test_nothing_is_queued_while_no_date_flow_exists(store: Store) -> None:
    """A store without date flows pays no queued row per profile change (the worker's flush would
    otherwise queue every profile it sets a property on)."""
    with store.transaction() as tx:
        tx.create_profile("p1", T0, properties={"birthday": "1990-05-01"})
        tx.update_rows("profile", [{"id": "p1", "properties": {"visits": 1}}])
        assert tx.has_profile_changes() is False
    _with_a_date_flow(store)
    with store.transaction() as tx:
        tx.update_rows("profile", [{"id": "p1", "properties": {"visits": 2}}])
        assert tx.has_profile_changes() is True


def test_a_date_flow_goes_live_only_after_transactions_told_there_was_none(pg_url: str) -> None:
    """PostgreSQL: a transaction told "no date flow" (and so queueing nothing) keeps a date flow from
    going live until it commits, so the backfill that follows reads what it wrote."""
    store = open_store(pg_url)
    store.migrate()
    try:
        with store.transaction() as tx:
            tx.insert_flow(flow_row("d", trigger_kind="date", trigger_event=None))
            tx.create_profile("p1", T0)
        live = threading.Event()

        def go_live() -> None:
            with store.transaction() as other:
                other.set_date_schedule("d", 1, T0)
            live.set()

        with store.transaction() as tx:
            tx.update_rows("profile", [{"id": "p1", "properties": {"birthday": "1990-05-01"}}])
            assert tx.has_profile_changes() is False  # no date flow: not queued
            thread = threading.Thread(target=go_live)
            thread.start()
            admin = create_engine(pg_url)
            try:
                deadline = time.monotonic() + 30
                while not _waiting_for_advisory_lock(admin):  # observed: the other one is blocked
                    assert time.monotonic() < deadline, "set_date_schedule never waited"
                    assert not live.is_set(), "the date flow went live while this transaction was open"
                    time.sleep(0.01)
            finally:
                admin.dispose()
            assert not live.is_set()
        thread.join(30)
        assert live.is_set()
    finally:
        store.close()


def _waiting_for_advisory_lock(engine: Any) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar())
