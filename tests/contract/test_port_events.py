"""EventsPort on both backends."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.helpers import T0, event_row

from storeflow.store import Store, open_store


def test_history_and_timeline(store: Store) -> None:
    t = [T0 + timedelta(minutes=i) for i in range(4)]
    with store.transaction() as tx:
        tx.insert_event(event_row("a", profile_id="p", type="viewed", occurred_at=t[0]))
        tx.insert_event(event_row("b", profile_id="p", type="viewed", occurred_at=t[2]))
        tx.insert_event(event_row("c", profile_id="p", type="bought", occurred_at=t[1]))
        tx.insert_event(event_row("d", profile_id="q", type="viewed", occurred_at=t[3]))
    with store.read() as tx:
        assert [e["id"] for e in tx.history_events("p", "viewed", None, t[3])] == ["evt_a", "evt_b"]
        assert [e["id"] for e in tx.history_events("p", "viewed", t[1], t[3])] == ["evt_b"]
        assert [e["id"] for e in tx.history_events("p", "viewed", None, t[1])] == ["evt_a"]
        many = tx.history_events_of(["p", "q", "r"], "viewed", None, t[3])
        assert {k: [e["id"] for e in v] for k, v in many.items()} == {"p": ["evt_a", "evt_b"], "q": ["evt_d"]}
        assert [e["id"] for e in tx.timeline("p")] == ["evt_b", "evt_c", "evt_a"]
        assert [e["id"] for e in tx.timeline("p", limit=1)] == ["evt_b"]
        assert tx.count_events() == 4


def test_event_insert_is_idempotent(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    with store.transaction() as tx:
        assert tx.insert_event(event_row("k1")) is True
        assert tx.insert_event(event_row("k1", id="evt_other")) is False
        assert tx.existing_idempotency_keys(["k1", "k2"]) == {"k1"}
    with store.transaction() as tx:
        assert tx.count_events() == 1
    store.close()
