"""RunsPort on both backends: runs, step logs, statistics, waits, entries and the worker's row access."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.helpers import T0, flow_row, message_row, run_row

from storeflow.store import Store


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
