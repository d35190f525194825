"""FlowsPort on both backends: flows, versions, the revision counter and cron schedules."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.helpers import T0, flow_row

from storeflow.store import Store


def test_flows_versions_and_revision(store: Store) -> None:
    with store.read() as tx:
        before = tx.flows_revision()
    with store.transaction() as tx:
        tx.insert_flow(flow_row("b", status="paused"))
        tx.insert_flow(flow_row("a"))
        tx.insert_flow_version("a", 1, "d1", {"id": "a", "steps": []}, T0)
        tx.insert_flow_version("a", 2, "d2", {"id": "a", "steps": [{"id": "s1"}]}, T0)
        tx.update_flow("a", current_version=2, name="Welcome")
        tx.set_flow_layout("a", 2, {"s1": {"x": 1, "y": 2}})
        tx.set_flow_layout("a", 9, {"s1": {"x": 0, "y": 0}})  # no such version: nothing happens
    with store.read() as tx:
        assert tx.flows_revision() == before + 3  # every insert and update moves it on
        flow = tx.get_flow("a")
        assert flow is not None and (flow["name"], flow["current_version"]) == ("Welcome", 2)
        assert tx.get_flow("nope") is None
        assert [f["id"] for f in tx.list_flows()] == ["a", "b"]
        assert [(f["id"], f["current_version"]) for f in tx.live_flows()] == [("a", 2)]
        assert [(v["version"], v["digest"]) for v in tx.flow_versions_of("a")] == [(1, "d1"), (2, "d2")]
        v2 = tx.get_flow_version("a", 2)
        assert v2 is not None and v2["definition"]["layout"] == {"s1": {"x": 1, "y": 2}}
        assert v2["digest"] == "d2"  # the layout is not part of the version
        assert tx.get_flow_version("a", 3) is None
    with store.transaction() as tx:
        tx.bump_flow_revision()
        assert tx.flows_revision() == before + 4


def test_cron_schedules_claim_fire_and_drop(store: Store) -> None:
    hour = timedelta(hours=1)
    with store.transaction() as tx:
        tx.insert_flow(flow_row("a", trigger_kind="cron"))
        tx.insert_flow(flow_row("b", trigger_kind="cron"))
        tx.set_schedule("a", 1, "cron", T0)
        tx.set_schedule("b", 1, "cron", T0 + hour)
        tx.set_schedule("b", 2, "cron", T0 + 2 * hour)  # replaces
    with store.transaction() as tx:
        assert tx.next_schedule_at() == T0
        due = tx.claim_due_schedules(T0 + hour)
        assert [(s["flow_id"], s["flow_version"]) for s in due] == [("a", 1)]
        tx.fire_schedule("a", T0, T0 + 3 * hour)
    with store.transaction() as tx:
        assert tx.next_schedule_at() == T0 + 2 * hour
        assert [s["flow_id"] for s in tx.claim_due_schedules(T0 + 10 * hour, limit=1)] == ["b"]
        tx.drop_schedule("b")
        assert [s["flow_id"] for s in tx.claim_due_schedules(T0 + 10 * hour)] == ["a"]
        assert tx.claim_due_schedules(T0 + 10 * hour)[0]["last_fired_at"] == T0
