"""RunsPort on both backends: runs, step logs, statistics, waits, entries and the worker's row access."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.contract.helpers import T0, event_row, flow_row, message_row, run_row

from storeflow.store import Store, open_store


def _step(run_id: str, seq: int, key: str, status: str = "ok") -> dict[str, object]:
    return {"run_id": run_id, "seq": seq, "step_key": key, "step_path": f"steps[{seq}]", "kind": "wait",
            "status": status, "at": T0, "detail": {}}


def test_runs_list_count_update_and_lock(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_flow(flow_row("f"))
        tx.insert_flow(flow_row("g"))
        tx.create_run(run_row("r1", started_at=T0))
        tx.create_run(run_row("r2", profile_id="q", started_at=T0 + timedelta(seconds=1)))
        tx.create_run(run_row("r3", flow_id="g", started_at=T0 + timedelta(seconds=2)))
        tx.update_run("r1", status="completed", due_at=None)
    with store.transaction() as tx:
        locked = tx.lock_run("r1")
        assert locked is not None and locked["status"] == "completed"
        assert tx.lock_run("nope") is None
        run = tx.get_run("r2")
        assert run is not None and run["profile_id"] == "q"
        assert [r["id"] for r in tx.list_runs()] == ["r3", "r2", "r1"]
        assert [r["id"] for r in tx.list_runs(flow_id="f", status="active")] == ["r2"]
        assert [r["id"] for r in tx.list_runs(profile_id="p", limit=1, offset=1)] == ["r1"]
        assert tx.run_counts() == {"active": 2, "completed": 1}
        assert tx.run_counts("f") == {"active": 1, "completed": 1}
        assert tx.run_counts_by_flow(["f", "g", "h"]) == {"f": {"active": 1, "completed": 1}, "g": {"active": 1},
                                                          "h": {}}


def test_step_log_and_per_step_statistics(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_flow(flow_row("f"))
        tx.create_run(run_row("r1"))
        tx.create_run(run_row("r2", status="waiting", cursor="s2"))
        tx.append_steps([_step("r1", 0, "s1"), _step("r1", 1, "s2", "failed"), _step("r2", 0, "s1")])
        tx.enqueue(message_row("m1", run_id="r1", flow_id="f", step_key="s2"))
    with store.read() as tx:
        assert [(s["seq"], s["step_key"]) for s in tx.run_steps_of("r1")] == [(0, "s1"), (1, "s2")]
        stats = tx.step_stats("f")
    assert stats["s1"]["runs"] == 2 and stats["s1"]["log"] == {"ok": 2}
    assert stats["s2"]["log"] == {"failed": 1} and stats["s2"]["waiting"] == 1
    assert stats["s2"]["messages"] == {"pending": 1}


def test_waits_and_entries(store: Store) -> None:
    later = T0 + timedelta(hours=1)
    with store.transaction() as tx:
        tx.add_wait("r1", "p", "order_paid", T0)
        tx.add_wait("r2", "p", "order_paid", T0)
        tx.add_wait("r2", "p", "cart_updated", later)  # one wait per run: replaced
        assert [w["run_id"] for w in tx.waits_for("p", "order_paid")] == ["r1"]
        assert tx.remove_wait("r1") is True
        assert tx.remove_wait("r1") is False
        assert tx.waits_for("p", "order_paid") == []
        assert [w["since"] for w in tx.waits_for("p", "cart_updated")] == [later]
        assert tx.flow_entry("f", "p") is None
        tx.record_entry("f", "p", T0)
        tx.record_entry("f", "p", later)
        entry = tx.flow_entry("f", "p")
    assert entry is not None and (entry["entries"], entry["last_entered_at"]) == (2, later)


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
        tx.insert_event(event_row("k1", properties={"a": 1}))
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
        assert tx.rows_by_id("profile", ["p3", "p1"], lock=True, columns=()) == {}  # locked, nothing read
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
