"""SegmentFlowsPort on both backends: the members backfill of include_existing segment flows."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.helpers import T0, flow_row

from storeflow.store import Store
from storeflow.store.tables import segment_members

HOUR = timedelta(hours=1)


def test_segment_backfill_starts_once_unless_restarted(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_flow(flow_row("f", trigger_kind="segment", trigger_event="segment_entered"))
        assert tx.set_segment_backfill("f", 1, T0, restart=False) is True  # none yet
        assert tx.set_segment_backfill("f", 2, T0 + HOUR, restart=False) is False  # goes on, at version 2
        (row,) = tx.claim_due_schedules(T0)
        assert (row["kind"], row["flow_version"], row["backfill_after"], row["next_fire_at"]) == ("segment", 2, "", T0)
        tx.advance_backfill("f", "p2", T0)
        tx.advance_backfill("f", None, T0)  # done
        assert tx.claim_due_schedules(T0 + 1000 * HOUR) == []
        assert tx.set_segment_backfill("f", 2, T0 + HOUR, restart=False) is False  # stays done
        assert tx.claim_due_schedules(T0 + 1000 * HOUR) == []
        assert tx.set_segment_backfill("f", 3, T0 + HOUR, restart=True) is True  # e.g. another segment
        (row,) = tx.claim_due_schedules(T0 + HOUR)
        assert (row["flow_version"], row["backfill_after"]) == (3, "")


def test_segment_members_after_pages_by_profile_id(store: Store) -> None:
    with store.transaction() as tx:
        for pid in ("p1", "p2", "p3", "p4"):
            tx.create_profile(pid, T0)
        tx.merge_profiles("p1", "p4", T0)  # p4 is merged: never listed
    with store.transaction() as tx:
        conn = tx.conn  # type: ignore[attr-defined]  # members are written by the membership engine
        conn.execute(segment_members.insert(), [
            {"segment_id": "vip", "profile_id": pid, "entered_at": T0 + i * HOUR}
            for i, pid in enumerate(("p3", "p1", "p2", "p4"))])
        conn.execute(segment_members.insert(), [{"segment_id": "other", "profile_id": "p1", "entered_at": T0}])
    with store.read() as tx:
        assert tx.segment_members_after("vip", "", 2) == [{"profile_id": "p1", "entered_at": T0 + HOUR},
                                                          {"profile_id": "p2", "entered_at": T0 + 2 * HOUR}]
        assert tx.segment_members_after("vip", "p2", 2) == [{"profile_id": "p3", "entered_at": T0}]
        assert tx.segment_members_after("vip", "p3", 2) == []
        assert tx.segment_members_after("nobody", "", 2) == []
