"""SegmentFlowsPort on both backends: the members backfill of include_existing segment flows."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.helpers import T0, flow_row

from storeflow.store import Store

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


def test_segment_backfills_listed_and_postponed(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_flow(flow_row("f", trigger_kind="segment", trigger_event="segment_entered"))
        tx.insert_flow(flow_row("d", trigger_kind="date", trigger_event=None))
        tx.set_date_schedule("d", 1, T0)
        assert tx.segment_backfills() == []
        tx.set_segment_backfill("f", 1, T0, restart=False)
        assert tx.segment_backfills() == [{"flow_id": "f", "flow_version": 1, "next_fire_at": T0, "backfill_after": "",
                                           "last_fired_at": None}]
        tx.postpone_segment_backfill("f", T0 + HOUR)
        tx.postpone_segment_backfill("d", T0 + HOUR)  # not a segment backfill: left alone
        assert [r["flow_id"] for r in tx.claim_due_schedules(T0)] == ["d"]
        tx.fire_schedule("f", T0 - HOUR, T0 + HOUR)  # the computation the backfill covers
        tx.advance_backfill("f", None, T0)
        (row,) = tx.segment_backfills()
        assert (row["backfill_after"], row["last_fired_at"]) == (None, T0 - HOUR)
