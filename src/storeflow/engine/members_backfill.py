"""``include_existing`` segment flows: a run for each current member of the segment.

A live segment flow with ``include_existing: true`` has a schedules row of kind "segment" (set when
the flow goes live, or a new version turns it on or names another segment: see
``FlowService._sync_schedule``). The scheduler claims it when due and calls :func:`backfill_page`:
once the segment is computed, one page of its members (by profile id) starts runs, and the page's
runs and the position reached commit together, so a crash repeats the page whole or not at all. A
member whose current stay in the segment already started a run of the flow (by its
``segment_entered`` event, or an earlier backfill) starts none: one run per entry. The row keeps the
segment's ``computed_at`` the backfill covered (``last_fired_at``); when the membership engine
computes the segment in full again (an edited segment, new statistics for rfm / top), whose new
members get no ``segment_entered`` event, :func:`restart_recomputed` starts the backfill again, so
they start their runs too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from storeflow.engine.flowset import FlowSet, start_run
from storeflow.flows import FlowDefinition, SegmentTrigger
from storeflow.store.base import Store, StoreTx

WAIT_FOR_COMPUTE: Final = timedelta(seconds=1)
"""How long a backfill waits before looking again at a segment still being computed."""


def backfill_page(tx: StoreTx, defn: FlowDefinition, version: int, schedule: dict[str, Any], now: datetime,
                  page_size: int) -> tuple[int, bool]:
    """One page of the flow's members backfill: (runs started, whether more is to do)."""
    trigger = defn.trigger
    assert isinstance(trigger, SegmentTrigger)
    after = schedule.get("backfill_after") or ""
    segment = tx.get_segment(trigger.segment)
    if segment is None or segment["status"] == "deleted":
        tx.advance_backfill(defn.id, None, now)
        return 0, False
    if segment["computed_version"] != segment["current_version"]:
        # Its members are being computed (the membership engine ticks in the same loop): look again soon.
        tx.postpone_segment_backfill(defn.id, now + WAIT_FOR_COMPUTE)
        return 0, False
    if not after:
        tx.fire_schedule(defn.id, segment["computed_at"], now)  # the computation this backfill covers
    page = tx.segment_members_page(trigger.segment, after or None, page_size)
    entries = tx.entries_of_profiles([m["profile_id"] for m in page], [defn.id])
    started = 0
    for member in page:
        pid, entered_at = member["profile_id"], member["entered_at"]
        entry = entries.get((defn.id, pid))
        if entry is not None and entry["last_entered_at"] >= entered_at:
            continue
        dedupe = f"segment:{defn.id}:{pid}:{entered_at.isoformat()}"
        started += start_run(tx, defn, version, pid, now, dedupe_key=dedupe) is not None
    more = len(page) == page_size
    tx.advance_backfill(defn.id, page[-1]["profile_id"] if more else None, now)
    return started, more


def restart_recomputed(store: Store, flows: FlowSet, now: datetime) -> int:
    """Start the backfill again for each live include_existing flow whose segment was computed in
    full since its last backfill began; how many were started. One read (the flows' revision)
    without such flows; a write transaction only when one is to start again."""
    with store.read() as tx:
        flows.refresh(tx)
        wanted = flows.members_flows()
        if not wanted:
            return 0
        rows = {row["flow_id"]: row for row in tx.segment_backfills()}
        segments = {row["id"]: row for row in tx.list_segments()}
    due: list[tuple[str, int]] = []
    for flow_id, version, segment_id in wanted:
        row, segment = rows.get(flow_id), segments.get(segment_id)
        if row is None or row["backfill_after"] is not None or segment is None:
            continue  # paused, under way, or the segment is gone
        at = segment["computed_at"]
        if segment["computed_version"] == segment["current_version"] and at is not None \
                and (row["last_fired_at"] is None or at > row["last_fired_at"]):
            due.append((flow_id, version))
    if not due:
        return 0
    with store.transaction() as tx:
        return sum(tx.set_segment_backfill(flow_id, version, now, restart=True) for flow_id, version in due)


__all__ = ["backfill_page", "restart_recomputed"]
