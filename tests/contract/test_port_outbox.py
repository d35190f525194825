"""OutboxPort on both backends (enqueue, claims, leases and batch outcomes are in test_store_contract.py)."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.helpers import T0, message_row

from storeflow.store import Store
from storeflow.store.sql.outbox_ops import finished

LEASE = timedelta(seconds=30)


def _attempt(message_id: str, n: int, status: str) -> dict[str, object]:
    return {"outbox_id": message_id, "attempt": n, "status": status, "detail": status, "started_at": T0,
            "duration_ms": 2.0, "response_status": None, "response_body": None}


def test_single_outcomes_attempts_and_counts(store: Store) -> None:
    with store.transaction() as tx:
        tx.enqueue(message_row("m1"))
        tx.enqueue(message_row("m2", next_attempt_at=T0 + timedelta(minutes=5)))
        assert tx.next_outbox_at() == T0
    with store.transaction() as tx:
        assert [m["id"] for m in tx.claim_outbox(T0, 10, LEASE)] == ["m1"]
        tx.record_attempt(_attempt("m1", 1, "sent"))
        tx.record_attempt(_attempt("m2", 1, "transient_failure"))
        tx.record_attempt(_attempt("m2", 2, "transient_failure"))
        tx.finish_message("m1", T0, status="sent", provider_id="prov-1")
    with store.read() as tx:
        m1 = tx.get_message("m1")
        assert m1 is not None and (m1["status"], m1["provider_id"], m1["sent_at"]) == ("sent", "prov-1", T0)
        assert tx.outbox_counts() == {"sent": 1, "pending": 1}
        assert tx.next_outbox_at() == T0 + timedelta(minutes=5)
        by_message = tx.attempts_of_messages(["m1", "m2", "m3"])
        assert {k: [a["attempt"] for a in v] for k, v in by_message.items()} == {"m1": [1], "m2": [1, 2]}


def test_held_outcomes_and_pending_message_sent_events(store: Store) -> None:
    with store.transaction() as tx:
        tx.enqueue_many([message_row("m1"), message_row("m2")])
    with store.transaction() as tx:
        claimed = {m["id"]: m["held_lease"] for m in tx.claim_outbox(T0, 10, LEASE)}
    with store.transaction() as tx:
        assert tx.finish_held_message(finished("m1", T0, status="sent"), claimed["m1"], event_pending=True)
        # a lease this worker no longer holds: another worker's outcome, not recorded
        assert not tx.finish_held_message(finished("m2", T0, status="sent"), claimed["m2"] - timedelta(seconds=1))
    with store.transaction() as tx:
        assert [m["id"] for m in tx.messages_with_pending_events(10)] == ["m1"]
        tx.clear_pending_events(["m1"])
    with store.read() as tx:
        assert tx.messages_with_pending_events(10) == []
        m1, m2 = tx.get_message("m1"), tx.get_message("m2")
    assert m1 is not None and m2 is not None
    assert (m1["status"], m2["status"]) == ("sent", "sending")
