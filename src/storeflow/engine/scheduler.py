"""Schedule and date-property triggers: when they fire is computed by ``storeflow.flows.timing``;
this module claims what is due and starts the runs.

A cron flow fires one profile-less run per local wall-clock occurrence of its schedule (in its time
zone); a missed tick fires once, not once per missed tick.

A date flow (e.g. a birthday) keeps each profile's next fire time in ``date_trigger_fires``. The
times are filled in for every profile when the flow goes live or gets a new version (a page of
profiles per tick), and recomputed for the profiles whose properties, time zone or merge state
changed (queued by the store in the transaction that changed them). Due rows are claimed through
their index, a run is started, and the row moves on to the next occurrence. An occurrence missed by
less than the grace (a worker that was down) still fires; an older one is skipped, logged and recorded
on its row.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storeflow.clock import Clock
from storeflow.engine.flowset import FlowSet, start_run
from storeflow.engine.members_backfill import backfill_page, restart_recomputed
from storeflow.flows import DateTrigger, FlowDefinition, ScheduleTrigger, SegmentTrigger
from storeflow.flows.paths import resolve
from storeflow.flows.timing import first_date_fire, next_date_fire, next_schedule_time, schedule_occurrence
from storeflow.store.base import Store, StoreTx

log = logging.getLogger("storeflow.scheduler")

DEFAULT_GRACE = timedelta(days=1)
_BACKFILL_PAGE = 2000
_CHANGES_PAGE = 500
_CHANGES_PAGES_PER_TICK = 20
_CLAIM = 200


def schedule_for(defn: FlowDefinition, now: datetime, store_tz: ZoneInfo) -> tuple[str, datetime] | None:
    """What the ``schedules`` row of a live flow holds: ("cron", its next fire), ("date", now: the
    backfill of its fire times starts at once) or ("segment", now: the runs of the segment's current
    members, for ``include_existing``); None for event-triggered flows."""
    trigger = defn.trigger
    if isinstance(trigger, ScheduleTrigger):
        return "cron", next_schedule_time(trigger, now, store_tz=store_tz.key)
    if isinstance(trigger, DateTrigger):
        return "date", now
    if isinstance(trigger, SegmentTrigger) and trigger.include_existing:
        return "segment", now
    return None


def _date_of(trigger: DateTrigger, profile: dict[str, Any]) -> Any:
    record = {"profile": {"properties": profile.get("properties") or {}, "timezone": profile.get("timezone")}}
    return resolve(record, trigger.date)


class Scheduler:
    def __init__(self, store: Store, clock: Clock, flows: FlowSet, store_tz: ZoneInfo, *,
                 grace: timedelta = DEFAULT_GRACE) -> None:
        self.store, self.clock, self.flows, self.store_tz = store, clock, flows, store_tz
        self.grace = grace
        self.backfill_page = _BACKFILL_PAGE  # profiles per backfill transaction (one page per tick)
        self.backfilling = False  # whether the last tick left backfill pages or queued changes to do
        self._tz = store_tz.key

    def tick(self) -> int:
        """Fire every due schedule and date occurrence; returns the number of runs started."""
        now = self.clock.now()
        restart_recomputed(self.store, self.flows, now)  # include_existing flows whose segment was computed again
        started = self._schedules(now)
        self._changes(now)
        return started + self._date_fires(now)

    # -- cron schedules and date-flow backfills ----------------------------------------------------
    def _schedules(self, now: datetime) -> int:
        started = 0
        self.backfilling = False
        with self.store.transaction() as tx:
            for sched in tx.claim_due_schedules(now):
                version = int(sched["flow_version"])
                defn = self.flows.definition(tx, sched["flow_id"], version)
                trigger = defn.trigger
                if isinstance(trigger, ScheduleTrigger) and sched["kind"] == "cron":
                    occurrence = schedule_occurrence(trigger, sched["next_fire_at"], store_tz=self._tz)
                    if start_run(tx, defn, version, None, now, dedupe_key=f"cron:{defn.id}:{occurrence}"):
                        started += 1
                    tx.fire_schedule(defn.id, now, next_schedule_time(trigger, now, store_tz=self._tz))
                elif isinstance(trigger, DateTrigger) and sched["kind"] == "date":
                    self._backfill(tx, defn, sched.get("backfill_after"), now)
                elif isinstance(trigger, SegmentTrigger) and sched["kind"] == "segment":
                    runs, more = backfill_page(tx, defn, version, sched, now, self.backfill_page)
                    started += runs
                    self.backfilling = self.backfilling or more
                else:  # pragma: no cover - _sync_schedule keeps kind and trigger together
                    tx.drop_schedule(defn.id)
        return started

    def _backfill(self, tx: StoreTx, defn: FlowDefinition, after: str | None, now: datetime) -> None:
        """Compute the fire times of one page of profiles (by id, after ``after``)."""
        page = tx.profiles_page(after or "", self.backfill_page)
        self._recompute(tx, [(defn.id, defn)], page, now)
        done = len(page) < self.backfill_page
        tx.advance_backfill(defn.id, None if done else page[-1]["id"], now)
        self.backfilling = self.backfilling or not done

    def _recompute(self, tx: StoreTx, date_flows: list[tuple[str, FlowDefinition]],
                   profiles: list[dict[str, Any]], now: datetime) -> None:
        """Set or remove the fire rows of these profiles in these flows from their current data. An
        occurrence already handled (fired or skipped) earlier today is not taken again."""
        rows: list[dict[str, Any]] = []
        gone: list[tuple[str, str]] = []
        handled = tx.last_occurrences(p["id"] for p in profiles)
        for profile in profiles:
            for flow_id, defn in date_flows:
                trigger = defn.trigger
                assert isinstance(trigger, DateTrigger)
                fire = None
                if profile.get("merged_into") is None:
                    value, tz = _date_of(trigger, profile), profile.get("timezone")
                    fire = first_date_fire(trigger, value, now, profile_tz=tz, store_tz=self._tz)
                    if fire is not None and fire[1] == handled.get((flow_id, profile["id"])):
                        fire = next_date_fire(trigger, value, fire[0], profile_tz=tz, store_tz=self._tz)
                if fire is None:
                    gone.append((flow_id, profile["id"]))
                else:
                    rows.append({"flow_id": flow_id, "profile_id": profile["id"], "next_fire_at": fire[0],
                                 "occurrence_key": fire[1]})
        tx.delete_date_fires(gone)
        tx.set_date_fires(rows)

    # -- profiles whose dates may have changed ---------------------------------------------------
    def _changes(self, now: datetime) -> None:
        for _ in range(_CHANGES_PAGES_PER_TICK):
            with self.store.transaction() as tx:
                ids = tx.claim_profile_changes(_CHANGES_PAGE)
                if not ids:
                    return
                date_flows = [(flow_id, self.flows.definition(tx, flow_id, version))
                              for flow_id, version in tx.live_date_flows()]
                if date_flows:
                    found = tx.rows_by_id("profile", ids, columns=["timezone", "properties", "merged_into"])
                    missing = [{"id": pid, "merged_into": pid} for pid in ids if pid not in found]
                    self._recompute(tx, date_flows, [*found.values(), *missing], now)
            if len(ids) < _CHANGES_PAGE:
                return
        self.backfilling = True  # more queued changes: the next tick goes on with them

    # -- due date occurrences -----------------------------------------------------------------------
    def _date_fires(self, now: datetime) -> int:
        started = 0
        while True:
            with self.store.transaction() as tx:
                due = tx.claim_due_date_fires(now, _CLAIM)
                if not due:
                    return started
                versions = dict(tx.live_date_flows())
                found = tx.rows_by_id("profile", {r["profile_id"] for r in due},
                                      columns=["timezone", "properties", "merged_into"])
                updates: list[dict[str, Any]] = []
                gone: list[tuple[str, str]] = []
                for row in due:
                    version = versions[row["flow_id"]]
                    defn = self.flows.definition(tx, row["flow_id"], version)
                    outcome = self._fire(tx, defn, version, row, found.get(row["profile_id"]), now)
                    if outcome is None:
                        gone.append((row["flow_id"], row["profile_id"]))
                    else:
                        updates.append(outcome)
                        started += outcome.get("last_outcome") == "started"
                tx.delete_date_fires(gone)
                tx.update_date_fires(updates)
            if len(due) < _CLAIM:
                return started

    def _fire(self, tx: StoreTx, defn: FlowDefinition, version: int, row: dict[str, Any],
              profile: dict[str, Any] | None, now: datetime) -> dict[str, Any] | None:
        """Start the run of a due row's occurrence (or skip it, past the grace); the row's new
        values, None when it fires no more."""
        trigger = defn.trigger
        assert isinstance(trigger, DateTrigger)
        if profile is None or profile["merged_into"] is not None:
            return None
        value, tz = _date_of(trigger, profile), profile["timezone"]
        due_at, key = row["next_fire_at"], row["occurrence_key"]
        expected = next_date_fire(trigger, value, due_at - timedelta(microseconds=1), profile_tz=tz,
                                  store_tz=self._tz)
        if expected != (due_at, key):
            # The profile or the flow changed since the row was computed (its recomputation is
            # queued or under way): take the current data's time instead of firing a stale one.
            fresh = first_date_fire(trigger, value, now, profile_tz=tz, store_tz=self._tz)
            if fresh is None:
                return None
            return {"flow_id": row["flow_id"], "profile_id": row["profile_id"], "next_fire_at": fresh[0],
                    "occurrence_key": fresh[1]}
        if now - due_at > self.grace:
            outcome = "skipped"
            log.warning("date flow %s: skipped the %s occurrence for profile %s, due at %s: more than %s late "
                        "(setting date_trigger_grace_s)", defn.id, key, row["profile_id"], due_at.isoformat(),
                        self.grace)
        else:
            dedupe = f"date:{defn.id}:{row['profile_id']}:{key}"
            run_id = start_run(tx, defn, version, row["profile_id"], now, dedupe_key=dedupe)
            outcome = "started" if run_id else "not_started"  # re-entry rules, an active run, or done
        following = next_date_fire(trigger, value, due_at, profile_tz=tz, store_tz=self._tz)
        if following is None:
            return None
        return {"flow_id": row["flow_id"], "profile_id": row["profile_id"], "next_fire_at": following[0],
                "occurrence_key": following[1], "last_occurrence": key, "last_outcome": outcome, "last_at": now}

    def next_at(self) -> datetime | None:
        """When the scheduler next has something to do: a cron fire, a backfill page, a queued
        profile change (now), or a profile's date occurrence."""
        with self.store.read() as tx:
            times = [tx.next_schedule_at(), tx.next_date_fire_at()]
            if tx.has_profile_changes():
                times.append(self.clock.now())
        present = [t for t in times if t is not None]
        return min(present) if present else None
