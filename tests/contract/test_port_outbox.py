"""OutboxPort on both backends (enqueue, claims, leases and batch outcomes are in test_store_contract.py)."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.helpers import T0, message_row

from storeflow.store import Store, open_store
from storeflow.store.ports import finished

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
        tx.record_attempts([_attempt("m1", 1, "sent"), _attempt("m2", 1, "transient_failure"),
                            _attempt("m2", 2, "transient_failure")])
        tx.finish_messages([finished("m1", T0, status="sent", provider_id="prov-1")])
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


def test_outbox_never_holds_a_message_twice_and_leases_expire(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    row = {"id": "m1", "run_id": "r", "step_key": "s", "channel": "webhook", "idempotency_key": "r:s",
           "payload": {}, "status": "pending", "attempts": 0, "next_attempt_at": T0, "created_at": T0,
           "updated_at": T0}
    with store.transaction() as tx:
        assert tx.enqueue(row) is True
        assert tx.enqueue({**row, "id": "m2"}) is False
    with store.transaction() as tx:
        claimed = tx.claim_outbox(T0, 10, timedelta(seconds=30))
        assert [m["id"] for m in claimed] == ["m1"]
        assert claimed[0]["attempts"] == 1
    with store.transaction() as tx:  # leased: not claimable until the lease runs out
        assert tx.claim_outbox(T0 + timedelta(seconds=10), 10, timedelta(seconds=30)) == []
        again = tx.claim_outbox(T0 + timedelta(seconds=31), 10, timedelta(seconds=30))
        assert [m["attempts"] for m in again] == [2]
    store.close()


def test_enqueue_many_skips_keys_that_exist(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()

    def row(i: int, key: str, **extra: object) -> dict[str, object]:
        return {"id": f"m{i}", "run_id": "r", "step_key": key, "channel": "email", "idempotency_key": f"r:{key}",
                "payload": {"to": f"c{i}@example.com"}, "status": "pending", "attempts": 0, "next_attempt_at": T0,
                "created_at": T0, "updated_at": T0, **extra}

    with store.transaction() as tx:
        assert tx.enqueue(row(0, "a")) is True
    with store.transaction() as tx:  # "a" exists; "b" twice in one call; rows with other columns too
        tx.enqueue_many([row(1, "a"), row(2, "b"), row(3, "b"), row(4, "c", segments=2)])
        tx.enqueue_many([])
    with store.read() as tx:
        got = {m["idempotency_key"]: (m["id"], m["payload"], m["segments"]) for m in tx.messages_of_run("r")}
    assert got == {"r:a": ("m0", {"to": "c0@example.com"}, None), "r:b": ("m2", {"to": "c2@example.com"}, None),
                   "r:c": ("m4", {"to": "c4@example.com"}, 2)}
    store.close()


def test_leases_renew_by_compare_and_set_and_outcomes_record_in_batches(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    lease = timedelta(seconds=30)
    with store.transaction() as tx:
        for i in range(3):
            tx.enqueue({"id": f"m{i}", "run_id": "r", "step_key": f"s{i}", "channel": "email",
                        "idempotency_key": f"r:s{i}", "payload": {}, "status": "pending", "attempts": 0,
                        "next_attempt_at": T0, "created_at": T0, "updated_at": T0})
    with store.transaction() as tx:
        claimed = tx.claim_outbox(T0, 10, lease)
    assert sorted(m["id"] for m in claimed) == ["m0", "m1", "m2"]
    held = claimed[0]["held_lease"]
    until = T0 + timedelta(seconds=40)
    with store.transaction() as tx:  # m2 held with a lease this worker no longer holds: not renewed
        renewed = tx.renew_leases([("m0", held), ("m1", held), ("m2", held - timedelta(seconds=1))], until)
        assert renewed == {"m0", "m1"}
        assert tx.renew_leases([("m0", held)], until) == set()  # already renewed: the old lease is gone
        assert tx.renew_lease("m1", until, until + lease) is True
    done = T0 + timedelta(seconds=1)
    attempt = {"started_at": T0, "duration_ms": 1.5, "response_status": 250, "response_body": None}
    with store.transaction() as tx:
        tx.update_message("m1", provider_id="<old@x>")
        tx.record_attempts([{**attempt, "outbox_id": m, "attempt": 1, "status": s, "detail": d}
                            for m, s, d in (("m0", "sent", "ok"), ("m1", "transient_failure", "busy"))])
        tx.finish_messages([finished("m0", done, status="sent", provider_id="<p0@x>"),
                            finished("m1", done, status="pending", error="busy",
                                     next_attempt_at=done + lease)])
    with store.read() as tx:
        m0, m1, m2 = (tx.get_message(f"m{i}") for i in range(3))
        attempts = tx.attempts_of("m0") + tx.attempts_of("m1")
    assert m0 is not None and m1 is not None and m2 is not None
    assert (m0["status"], m0["provider_id"], m0["sent_at"], m0["lease_until"]) == ("sent", "<p0@x>", done, None)
    assert (m1["status"], m1["provider_id"], m1["sent_at"], m1["last_error"]) == ("pending", "<old@x>", None, "busy")
    assert m1["next_attempt_at"] == done + lease and m1["lease_until"] is None
    assert (m2["status"], m2["lease_until"]) == ("sending", held)
    assert [(a["outbox_id"], a["status"]) for a in attempts] == [("m0", "sent"), ("m1", "transient_failure")]
    store.close()
