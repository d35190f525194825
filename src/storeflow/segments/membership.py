"""The membership engine: keeps every live segment's members current, incrementally.

One :meth:`SegmentEngine.tick` does, in order (docs/segments.md, "How membership stays current"):

1. **Full computations.** A live segment whose ``computed_version`` is below its current version
   (new or edited) is computed in full once, in one transaction holding the segment's row, a page
   of profile ids at a time (memory stays flat): the SQL evaluator's members of the page are diffed
   with the current members of the page, entries and exits are recorded with ``by = "compute"``
   and **no** ``segment_entered`` / ``segment_exited`` events: existing members of a new or edited
   segment do not fire entry triggers (flows ask for them with ``include_existing``).
2. **Queued changes.** Ingest queued, in its own transaction, each profile an event changed in a
   way some live segment reads, with what changed (``storeflow.segments.segmentset``). The engine
   claims a batch of them (SKIP LOCKED on PostgreSQL) and evaluates, in dependency order, each
   computed live segment for the profiles whose changes it reads (SQL restricted to their ids: one
   statement per segment and batch); it writes entries and exits with their log rows and ingests
   ``segment_entered`` / ``segment_exited`` (reason ``event``) in the same transaction, so flows
   trigger on them. A membership change marks ``segment:<id>`` changed for the profile, so the
   segments testing it with ``in_segment`` follow in the same pass.
3. **Time.** A time-relative segment keeps one ``segment_due`` row per evaluated profile: the next
   instant its truth flips if nothing else happens (``storeflow.flows.flips.next_flip``). Due rows
   are claimed through their index and exactly those pairs are re-evaluated (reason ``time``, with
   their in_segment dependants), and their next flips computed. After an event the pairs evaluated
   are made due *now*, so their flips are computed by this step right after, without holding up the
   events (and a crash in between loses no flip).

A membership change found by a full computation queues the profile again when another segment
tests this one with ``in_segment``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storeflow.clock import Clock
from storeflow.engine.ingest import Ingestor
from storeflow.flows.segment_stats import SegmentStats
from storeflow.segments.lifecycle import is_lifecycle_segment, write_lifecycle_stages
from storeflow.segments.segmentset import ANY, LiveSegment, SegmentSet
from storeflow.store.base import Store, StoreTx

log = logging.getLogger("storeflow.segments")

COMPUTE_PAGE = 5000
"""Profile ids per page of a full computation."""
DRAIN_BATCH = 500
"""Queued profiles evaluated per transaction."""
DRAIN_BATCHES_PER_TICK = 20
DUE_BATCH = 100
"""Due flips claimed per transaction."""
HORIZON = timedelta(days=400)
"""How far ahead a flip is looked for (more than a year: anniversaries)."""
STATS_KEY = "segment_stats"
COMPUTE_RETRY = timedelta(minutes=1)
CLAIM_LEASE = timedelta(minutes=1)
"""How long claimed queue and due rows stay with one engine: a crash makes them claimable after it."""
"""How long a failed full computation waits before it is tried again."""
_EVENTS_PER_INGEST = 1000


def _rows(segment_id: str, profile_ids: Iterable[str], at: datetime, by: str) -> list[dict[str, Any]]:
    return [{"segment_id": segment_id, "profile_id": pid, "at": at, "by": by} for pid in sorted(profile_ids)]


class SegmentEngine:
    """Keeps segment membership current; ticked by the worker loop next to the scheduler."""

    def __init__(self, store: Store, clock: Clock, segments: SegmentSet, ingestor: Ingestor, store_tz: ZoneInfo, *,
                 on_wake: Callable[[], None] | None = None, horizon: timedelta = HORIZON) -> None:
        self.store, self.clock, self.segments, self.ingestor = store, clock, segments, ingestor
        self.store_tz, self.on_wake, self.horizon = store_tz, on_wake, horizon
        self.compute_page = COMPUTE_PAGE
        self.pending = False  # the last tick left work (more queued changes, a computation held elsewhere)
        self._stats_text: str | None = None
        self._stats: SegmentStats | None = None
        self._retry_at: dict[tuple[str, int], datetime] = {}  # full computations that failed

    # -- the tick ---------------------------------------------------------------------------------
    def tick(self) -> int:
        """Compute new and edited segments, drain the queued profiles, re-evaluate the due flips;
        returns the number of membership changes."""
        now = self.clock.now()
        self.pending = False
        with self.store.read() as tx:
            self.segments.refresh(tx)
            states = {str(s["id"]): s for s in tx.segment_states()}
            self._load_stats(tx)
        if not self.segments.ordered():
            return 0
        woke = False
        changes = 0
        self._retry_at = {k: t for k, t in self._retry_at.items()
                          if (s := states.get(k[0])) is not None and s["computed_version"] != k[1]}
        for seg in self.segments.ordered():
            state = states.get(seg.id)
            if state is not None and state["computed_version"] != seg.version \
                    and self._retry_at.get((seg.id, seg.version), now) <= now:
                try:
                    changes += self._compute(seg, now)
                except Exception:  # rolled back; tried again later, the other segments go on
                    log.exception("segment %s v%d: the full computation failed; retried in %s", seg.id,
                                  seg.version, COMPUTE_RETRY)
                    self._retry_at[(seg.id, seg.version)] = now + COMPUTE_RETRY
        n, w = self._drain()
        changes, woke = changes + n, woke or w
        n, w = self._due(now)
        changes, woke = changes + n, woke or w
        if woke and self.on_wake is not None:
            self.on_wake()
        return changes

    def next_at(self) -> datetime | None:
        """When the engine next has something to do: now (queued profiles, a segment to compute,
        work left over), else the earliest due flip."""
        with self.store.read() as tx:
            self.segments.refresh(tx)
            if not self.segments.ordered():
                return None
            now = self.clock.now()
            if self.pending or tx.has_segment_changes(now) or self._uncomputed(tx, now):
                return now
            retries = [t for t in self._retry_at.values() if t > now]
            times = [t for t in (tx.next_segment_due_at(), *retries) if t is not None]
            return min(times) if times else None

    def _uncomputed(self, tx: StoreTx, now: datetime) -> bool:
        """Whether a live segment waits for its full computation (not one that failed recently)."""
        versions = {s.id: s.version for s in self.segments.ordered()}
        return any((sid := str(s["id"])) in versions and s["computed_version"] != versions[sid]
                   and self._retry_at.get((sid, versions[sid]), now) <= now for s in tx.segment_states())

    def _load_stats(self, tx: StoreTx) -> None:
        """Read the segment statistics (parsed again only when they changed). A change of them
        resets the computed_version of the segments using rfm or top (segments/stats.py), so
        those are computed in full again."""
        text = tx.meta_value(STATS_KEY)
        if text != self._stats_text:
            self._stats_text = text
            self._stats = SegmentStats.from_json(json.loads(text)) if text else None

    # -- 1. full computations -----------------------------------------------------------------------
    def _compute(self, seg: LiveSegment, now: datetime) -> int:
        """Compute one segment in full; the membership changes recorded (no events)."""
        changes = 0
        dependants = self.segments.dependants([seg.id])
        with self.store.transaction() as tx:
            state = tx.lock_segment_for_compute(seg.id)
            if state is None:
                self.pending = True  # another engine is computing it (or it is gone): next tick
                return 0
            if int(state["current_version"]) != seg.version:
                self.segments.invalidate()  # edited meanwhile: the next tick computes the new version
                self.pending = True
                return 0
            if state["computed_version"] == seg.version:
                return 0  # another engine computed it meanwhile
            after = ""
            while page := tx.profile_id_page(after, self.compute_page):
                upto = page[-1]
                should = tx.segment_member_ids(seg.condition, now=now, store_tz=self.store_tz, stats=self._stats,
                                               after=after, upto=upto)
                current = tx.members_in_range(seg.id, after, upto)
                entered = tx.enter_segment(_rows(seg.id, should - current, now, "compute"))
                exited = tx.exit_segment(_rows(seg.id, current - should, now, "compute"))
                changes += len(entered) + len(exited)
                self._write_stages(tx, entered + exited, now)
                if seg.time_relative:
                    self._set_flips(tx, seg, page, now)
                if dependants and (entered or exited):
                    tx.queue_segment_changes({p: {f"segment:{seg.id}"} for _, p in entered + exited}, now)
                after = upto
            tx.mark_segment_computed(seg.id, seg.version, now)
        log.info("segment %s v%d computed in full: %d membership changes", seg.id, seg.version, changes)
        return changes

    # -- 2. queued changes ---------------------------------------------------------------------------
    def _drain(self) -> tuple[int, bool]:
        changes, woke = 0, False
        for _ in range(DRAIN_BATCHES_PER_TICK):
            claim_at = self.clock.now()
            until = claim_at + CLAIM_LEASE
            with self.store.transaction() as tx:  # short: ingest queueing these profiles again never waits
                claimed = tx.claim_segment_changes(DRAIN_BATCH, claim_at, until)
            if not claimed:
                return changes, woke
            with self.store.transaction() as tx:
                tx.lock_profiles_for_membership(claimed)
                # The instant is taken after the claim: an event committed before it occurred before it.
                n, w = self._evaluate(tx, {pid: set(keys) for pid, keys in claimed.items()}, self.clock.now(),
                                      "event")
                tx.finish_segment_changes(claimed, until)
                changes, woke = changes + n, woke or w
            if len(claimed) < DRAIN_BATCH:
                return changes, woke
        self.pending = True
        return changes, woke

    def _computed(self, tx: StoreTx) -> list[LiveSegment]:
        """The live segments computed at their current version, in dependency order. On PostgreSQL
        their rows are held FOR SHARE: a full computation under way is waited for, so a change it
        has not seen is evaluated here against its result."""
        states = {str(s["id"]): s for s in tx.segment_states(lock=True)}
        return [seg for seg in self.segments.ordered()
                if (state := states.get(seg.id)) is not None and state["status"] != "deleted"
                and state["computed_version"] == seg.version]

    def _evaluate(self, tx: StoreTx, changes: dict[str, set[str]], now: datetime, reason: str) -> tuple[int, bool]:
        """Evaluate the computed segments, in dependency order, for the profiles of ``changes``
        whose changed keys the segment reads (a due flip's key ``due:<segment>`` names its
        segment); record and emit the entries and exits. A membership change adds the key
        ``segment:<id>`` to the profile's, so the segments testing it with in_segment follow."""
        ids = sorted(changes)
        current = tx.memberships_of(ids)
        tx.exit_segment([{"segment_id": s, "profile_id": p, "at": now, "by": reason}
                         for s, p in tx.merged_members(ids)])  # merged profiles are never members
        changed: list[tuple[LiveSegment, str, bool]] = []
        for seg in self._computed(tx):
            wanted = [pid for pid in ids if _affected(seg, changes[pid])]
            if not wanted:
                continue
            try:
                with tx.savepoint():
                    should = tx.segment_member_ids(seg.condition, now=now, store_tz=self.store_tz,
                                                   stats=self._stats, profile_ids=wanted)
            except Exception:  # one broken segment must not hold up the others (nor the worker)
                log.exception("segment %s v%d: evaluating %d profiles failed; their membership is left as it was",
                              seg.id, seg.version, len(wanted))
                continue
            were = {pid for pid in wanted if seg.id in current.get(pid, ())}
            entered = tx.enter_segment(_rows(seg.id, should - were, now, reason))
            exited = tx.exit_segment(_rows(seg.id, were - should, now, reason))
            for _, pid in entered + exited:
                changes[pid].add(f"segment:{seg.id}")
            changed += [(seg, pid, True) for _, pid in entered] + [(seg, pid, False) for _, pid in exited]
            if seg.time_relative and reason == "time":
                self._set_flips(tx, seg, wanted, now)
            elif seg.time_relative:
                # The next flips are computed by the due path, right after this transaction: the
                # events of this one are not kept waiting for them, and a crash in between leaves
                # these rows due now, so no flip is lost.
                tx.set_segment_due([{"segment_id": seg.id, "profile_id": pid, "due_at": now} for pid in wanted])
        self._write_stages(tx, [(seg.id, pid) for seg, pid, _ in changed], now)
        return len(changed), self._emit(tx, changed, now, reason)

    def _write_stages(self, tx: StoreTx, pairs: Iterable[tuple[str, str]], now: datetime) -> None:
        """The lifecycle stage property of the profiles whose lifecycle segments changed
        (segments/lifecycle.py); the profiles it changed are queued for the segments reading
        profile properties."""
        staged = write_lifecycle_stages(tx, {pid for sid, pid in pairs if is_lifecycle_segment(sid)}, now)
        if staged and self.segments.reads_any(["profile:properties"]):
            tx.queue_segment_changes({pid: {"profile:properties"} for pid in staged}, now)

    def _emit(self, tx: StoreTx, changed: list[tuple[LiveSegment, str, bool]], now: datetime, reason: str) -> bool:
        """Ingest segment_entered / segment_exited for each change, in this transaction."""
        items: list[dict[str, Any]] = []
        for seg, pid, entered in changed:
            direction = "entered" if entered else "exited"
            items.append({
                "type": f"segment_{direction}", "profile_id": pid, "occurred_at": now,
                "id": f"segment:{seg.id}:{pid}:{direction}:{now.isoformat()}",
                "properties": {"segment_id": seg.id, "segment_name": seg.name, "segment_version": seg.version,
                               "reason": reason},
            })
        woke = False
        for i in range(0, len(items), _EVENTS_PER_INGEST):
            results, w = self.ingestor.ingest_in(tx, items[i:i + _EVENTS_PER_INGEST], "storeflow")
            woke = woke or w
            for result in results:
                if result.status == "rejected":  # pragma: no cover - the items are built above
                    log.error("segment event refused: %s", result.error)
        return woke

    # -- 3. time ------------------------------------------------------------------------------------
    def _set_flips(self, tx: StoreTx, seg: LiveSegment, ids: Iterable[str], now: datetime) -> None:
        """One due row per profile: the next instant the segment's truth flips for it, if any."""
        from storeflow.engine.records import profile_record
        from storeflow.flows.evaluate import EvalContext
        from storeflow.flows.flips import next_flip
        from storeflow.segments.page_data import PageProfileData

        wanted = sorted(set(ids))
        horizon = max(self.horizon, seg.horizon)
        data = PageProfileData(tx, wanted, now + horizon)
        profiles = tx.rows_by_id("profile", wanted)
        rows: list[dict[str, Any]] = []
        gone: list[tuple[str, str]] = []
        for pid in wanted:
            profile = profiles.get(pid)
            if profile is None or profile["merged_into"] is not None:
                gone.append((seg.id, pid))  # merged profiles are never members
                continue
            ctx = EvalContext(record={"profile": profile_record(profile)}, now=now, profile_id=pid, data=data,
                              stats=self._stats, store_tz=self.store_tz.key)
            flip = next_flip(seg.condition, ctx, horizon=horizon)
            if flip is None:
                gone.append((seg.id, pid))
            else:
                rows.append({"segment_id": seg.id, "profile_id": pid, "due_at": flip})
        tx.delete_segment_due(gone)
        tx.set_segment_due(rows)

    def _due(self, now: datetime) -> tuple[int, bool]:
        changes, woke = 0, False
        while True:
            until = now + CLAIM_LEASE
            with self.store.transaction() as tx:
                due = tx.claim_due_segment_flips(now, DUE_BATCH, until)
            if not due:
                return changes, woke
            keys: dict[str, set[str]] = defaultdict(set)
            for row in due:
                keys[str(row["profile_id"])].add(f"due:{row['segment_id']}")
            with self.store.transaction() as tx:
                tx.lock_profiles_for_membership(keys)
                n, w = self._evaluate(tx, keys, now, "time")
                tx.finish_segment_due([(r["segment_id"], r["profile_id"]) for r in due], until)
                changes, woke = changes + n, woke or w
                events_wait = tx.has_segment_changes(self.clock.now())
            if events_wait:
                self.pending = True  # queued events go first: the next tick comes back here
                return changes, woke
            if len(due) < DUE_BATCH:
                return changes, woke


def _affected(seg: LiveSegment, keys: set[str]) -> bool:
    """Whether a profile with these changed keys must be evaluated for this segment."""
    return ANY in keys or ANY in seg.reads or f"due:{seg.id}" in keys or not seg.reads.isdisjoint(keys)
