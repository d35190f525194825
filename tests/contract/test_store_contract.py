"""The storage contract: the same operations behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storeflow.store import open_store
from storeflow.store.sql.outbox_ops import finished
from storeflow.store.tables import metadata

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _event(key: str, **kw: object) -> dict[str, object]:
    row: dict[str, object] = {"id": f"evt_{key}", "type": "order_placed", "profile_id": None, "occurred_at": T0,
                              "received_at": T0, "source": "api", "idempotency_key": key, "properties": {}}
    row.update(kw)
    return row


def test_migrations_produce_the_models_schema(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    store.migrate()  # idempotent
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    store.close()
    assert diff == []


def test_event_insert_is_idempotent(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    with store.transaction() as tx:
        assert tx.insert_event(_event("k1")) is True
        assert tx.insert_event(_event("k1", id="evt_other")) is False
        assert tx.existing_idempotency_keys(["k1", "k2"]) == {"k1"}
    with store.transaction() as tx:
        assert tx.count_events() == 1
    store.close()


def test_transaction_rolls_back_on_error(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    try:
        with store.transaction() as tx:
            tx.insert_event(_event("k1"))
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
        tx.insert_event(_event("k", occurred_at=when, properties={"total": "10.50"}))
    with store.transaction() as tx:
        row = tx.get_event("evt_k")
    assert row is not None
    assert row["occurred_at"] == when
    assert row["occurred_at"].tzinfo is not None
    assert row["properties"] == {"total": "10.50"}
    store.close()


def test_active_key_allows_one_active_run_per_flow_and_profile(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    with store.transaction() as tx:
        tx.insert_flow({"id": "f", "name": "F", "status": "live", "current_version": 1, "trigger_kind": "event",
                        "trigger_event": "x", "created_at": T0, "updated_at": T0})

        def run(rid: str, due: datetime | None) -> dict[str, object]:
            return {"id": rid, "flow_id": "f", "flow_version": 1, "profile_id": "p", "status": "active",
                    "cursor": "steps[0]", "due_at": due, "active_key": "f:p", "context": {}, "attempts": 0,
                    "started_at": T0, "updated_at": T0}

        assert tx.create_run(run("r1", T0)) is True
        assert tx.create_run(run("r2", T0)) is False
    with store.transaction() as tx:
        due = tx.claim_due_runs(T0 + timedelta(seconds=1), 10)
        assert [r["id"] for r in due] == ["r1"]
        assert tx.claim_due_runs(T0 - timedelta(seconds=1), 10) == []
    store.close()


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

def test_product_updates_ignore_older_source_times(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    with store.transaction() as tx:
        assert tx.upsert_product("p1", T0, T0 + timedelta(hours=2), title="New")
        assert not tx.upsert_product("p1", T0, T0 + timedelta(hours=1), title="Old")
        product = tx.get_product("p1")
    assert product is not None
    assert product["title"] == "New"
    store.close()


def test_a_read_does_not_wait_for_an_open_writer(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    with store.transaction() as writer:
        writer.insert_event(_event("k1"))
        with store.read() as reader:  # a writer holds the lock: the read still answers at once
            assert reader.count_events() == 0  # and sees only committed data
    with store.read() as reader:
        assert reader.count_events() == 1
    store.close()


def _cart(cid: str, profile_id: str, at: datetime, converted: bool = False) -> dict[str, object]:
    return {"id": cid, "profile_id": profile_id, "kind": "checkout", "currency": "USD", "value_minor": 100,
            "items": [], "checkout_url": None, "last_activity_at": at, "converted_at": at if converted else None,
            "order_id": None, "created_at": at}


def test_batch_reads_many_rows_at_once_and_follow_merges(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    with store.transaction() as tx:
        for pid in ("p1", "p2", "p3"):
            tx.create_profile(pid, T0, properties={"n": pid}, tags=[pid])
        tx.merge_profiles("p1", "p2", T0)  # p2 now redirects to p1
        tx.insert_event(_event("k1", properties={"a": 1}))
        tx.insert_cart(_cart("c-old", "p1", T0))
        tx.insert_cart(_cart("c-new", "p1", T0 + timedelta(hours=1)))
        tx.insert_cart(_cart("c-done", "p1", T0 + timedelta(hours=2), converted=True))
        tx.insert_cart(_cart("c3", "p3", T0))
    with store.transaction() as tx:
        events = tx.rows_by_id("event", ["evt_k1", "evt_missing"])
        assert list(events) == ["evt_k1"] and events["evt_k1"]["properties"] == {"a": 1}
        assert events["evt_k1"]["occurred_at"] == T0
        tags = tx.rows_by_id("profile", ["p3", "p1"], lock=True, columns=["tags"])
        assert tags == {"p1": {"id": "p1", "tags": ["p1", "p2"]}, "p3": {"id": "p3", "tags": ["p3"]}}
        profiles = tx.profiles_by_id(["p1", "p2", "p3", "nobody"])
        assert set(profiles) == {"p1", "p2", "p3"}
        assert profiles["p2"] is profiles["p1"]  # one row for the survivor, whichever id asked
        assert profiles["p1"]["properties"] == {"n": "p1"} and profiles["p3"]["merged_into"] is None
        carts = tx.open_carts_of(["p1", "p3", "nobody"])
        assert {pid: cart["id"] for pid, cart in carts.items()} == {"p1": "c-new", "p3": "c3"}
        assert carts["p1"] == tx.latest_open_cart("p1")
    store.close()


def test_batch_writes_update_many_rows_and_replace_waits(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    later = T0 + timedelta(hours=1)
    with store.transaction() as tx:
        for rid in ("r1", "r2", "r3"):
            tx.create_run({"id": rid, "flow_id": "f", "flow_version": 1, "profile_id": "p", "status": "active",
                           "cursor": "steps[0]", "due_at": T0, "active_key": f"f:{rid}", "context": {"seq": 0},
                           "attempts": 0, "started_at": T0, "updated_at": T0})
        tx.add_wait("r1", "p", "order_placed", T0)
        tx.add_wait("r2", "p", "order_placed", T0)
    with store.transaction() as tx:
        tx.update_runs([
            {"id": "r1", "status": "waiting", "due_at": later, "context": {"seq": 3, "wait": {"kind": "wait"}},
             "updated_at": later},
            {"id": "r2", "status": "completed", "due_at": None, "active_key": None, "context": {"seq": 5},
             "updated_at": later},
            {"id": "r3", "attempts": 2, "last_error": "boom", "updated_at": later},
        ])
        tx.replace_waits(["r1"], [{"run_id": "r3", "profile_id": "p", "event_type": "x", "since": later}])
    with store.transaction() as tx:
        r1, r2, r3 = (tx.get_run(rid) for rid in ("r1", "r2", "r3"))
        assert r1 is not None and r2 is not None and r3 is not None
        assert (r1["status"], r1["due_at"], r1["context"], r1["active_key"]) == (
            "waiting", later, {"seq": 3, "wait": {"kind": "wait"}}, "f:r1")
        assert (r2["status"], r2["due_at"], r2["active_key"], r2["context"]) == ("completed", None, None, {"seq": 5})
        assert (r3["status"], r3["attempts"], r3["last_error"], r3["due_at"]) == ("active", 2, "boom", T0)
        assert [w["run_id"] for w in tx.waits_for("p", "order_placed")] == ["r2"]  # r1's removed, r2's kept
        assert [(w["run_id"], w["since"]) for w in tx.waits_for("p", "x")] == [("r3", later)]
        tx.update_rows("profile", [])  # nothing to do is fine
    at = datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))  # 09:00:00.123456 UTC
    with store.transaction() as tx:
        tx.append_steps([{"run_id": "r1", "seq": i, "step_key": f"s{i}", "step_path": f"steps[{i}]", "kind": "if",
                          "status": "done", "at": at, "detail": {"n": i, "why": "it's \"quoted\"\ttabbed é"}}
                         for i in (1, 2)])
    with store.transaction() as tx:
        logged = tx.run_steps_of("r1")
    assert [(s["seq"], s["step_key"], s["at"], s["detail"]) for s in logged] == [
        (i, f"s{i}", T0 + timedelta(microseconds=123456), {"n": i, "why": "it's \"quoted\"\ttabbed é"})
        for i in (1, 2)]
    assert logged[0]["at"].tzinfo is not None
    store.close()


def test_next_due_at_is_the_earliest_due_run_of_a_live_flow(db_url: str) -> None:
    store = open_store(db_url)
    store.migrate()
    with store.transaction() as tx:
        assert tx.next_due_at() is None
        for fid, status in (("live", "live"), ("paused", "paused")):
            tx.insert_flow({"id": fid, "name": fid, "status": status, "current_version": 1, "trigger_kind": "event",
                            "trigger_event": "x", "created_at": T0, "updated_at": T0})
        for rid, fid, due in (("r1", "paused", T0), ("r2", "live", T0 + timedelta(hours=2)),
                              ("r3", "live", T0 + timedelta(hours=1)), ("r4", "live", None)):
            tx.create_run({"id": rid, "flow_id": fid, "flow_version": 1, "profile_id": None, "status": "waiting",
                           "cursor": "steps[0]", "due_at": due, "active_key": None, "context": {}, "attempts": 0,
                           "started_at": T0, "updated_at": T0})
    with store.transaction() as tx:
        assert tx.next_due_at() == T0 + timedelta(hours=1)  # the paused flow's earlier run does not count
    store.close()


def test_every_read_follows_a_chain_of_merges_to_the_survivor(db_url: str) -> None:
    """p1 was merged into p2, then p2 into p3: the single read, the batch read and the ingest
    cache (write-behind) all answer p1 and p2 with p3, and a missing id with nothing."""
    store = open_store(db_url)
    store.migrate()
    with store.transaction() as tx:
        for pid in ("p1", "p2", "p3"):
            tx.create_profile(pid, T0, properties={"n": pid})
        tx.merge_profiles("p2", "p1", T0)
        tx.merge_profiles("p3", "p2", T0)
    with store.transaction() as tx:
        assert [tx.resolve_profile_id(p) for p in ("p1", "p2", "p3", "nobody")] == ["p3", "p3", "p3", None]
        assert [(tx.get_profile(p) or {}).get("id") for p in ("p1", "p2", "nobody")] == ["p3", "p3", None]
        found = tx.profiles_by_id(["p1", "p2", "p3", "nobody"])
        assert {asked: row["id"] for asked, row in found.items()} == {"p1": "p3", "p2": "p3", "p3": "p3"}
        cached = tx.write_behind()
        assert [cached.resolve_profile_id(p) for p in ("p1", "p2", "p3", "nobody")] == ["p3", "p3", "p3", None]
        assert [(cached.get_profile(p) or {}).get("id") for p in ("p1", "nobody")] == ["p3", None]
    store.close()
