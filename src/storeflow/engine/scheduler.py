"""Schedule and date-property triggers.

A cron flow fires one profile-less run per tick (in its time zone). A date-property flow is swept
hourly: each profile whose date (e.g. birthday), shifted by the offset, is today in the profile's
own time zone, and whose local time has reached ``at``, gets one run per year (or once). A missed
tick fires once, not once per missed tick.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from storeflow.clock import Clock
from storeflow.engine.flowset import FlowSet, start_run
from storeflow.flows import DateTrigger, FlowDefinition, ScheduleTrigger
from storeflow.flows.paths import resolve
from storeflow.store.base import Store, StoreTx

SWEEP_EVERY = timedelta(hours=1)
_PAGE = 2000


def next_cron(expr: str, after: datetime, tz: ZoneInfo) -> datetime:
    local = after.astimezone(tz)
    nxt: datetime = croniter(expr, local).get_next(datetime)
    return nxt.astimezone(after.tzinfo)


def schedule_for(defn: FlowDefinition, now: datetime, store_tz: ZoneInfo) -> tuple[str, datetime] | None:
    trigger = defn.trigger
    if isinstance(trigger, ScheduleTrigger):
        tz = ZoneInfo(trigger.timezone) if trigger.timezone else store_tz
        return "cron", next_cron(trigger.schedule, now, tz)
    if isinstance(trigger, DateTrigger):
        return "date", now
    return None


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _occurrence(base: date, year: int) -> date:
    try:
        return base.replace(year=year)
    except ValueError:  # 29 February in a non-leap year
        return date(year, 2, 28)


def date_due(trigger: DateTrigger, value: Any, local_now: datetime) -> str | None:
    """The dedupe key for today's occurrence if it is due now, else None."""
    base = _as_date(value)
    if base is None:
        return None
    today = local_now.date()
    if local_now.time() < trigger.at:
        return None
    if trigger.repeat == "once":
        return "once" if base + trigger.offset == today else None
    for year in (today.year - 1, today.year, today.year + 1):
        if _occurrence(base, year) + trigger.offset == today:
            return str(year)
    return None


class Scheduler:
    def __init__(self, store: Store, clock: Clock, flows: FlowSet, store_tz: ZoneInfo) -> None:
        self.store, self.clock, self.flows, self.store_tz = store, clock, flows, store_tz

    def tick(self) -> int:
        """Fire every due schedule; returns the number of runs started."""
        now = self.clock.now()
        started = 0
        with self.store.transaction() as tx:
            for sched in tx.claim_due_schedules(now):
                defn = self.flows.definition(tx, sched["flow_id"], int(sched["flow_version"]))
                version = int(sched["flow_version"])
                if isinstance(defn.trigger, ScheduleTrigger):
                    fire_key = f"cron:{defn.id}:{sched['next_fire_at'].isoformat()}"
                    if start_run(tx, defn, version, None, now, dedupe_key=fire_key):
                        started += 1
                    tz = ZoneInfo(defn.trigger.timezone) if defn.trigger.timezone else self.store_tz
                    tx.fire_schedule(defn.id, now, next_cron(defn.trigger.schedule, now, tz))
                elif isinstance(defn.trigger, DateTrigger):
                    started += self._sweep(tx, defn, version, now)
                    tx.fire_schedule(defn.id, now, now + SWEEP_EVERY)
        return started

    def _sweep(self, tx: StoreTx, defn: FlowDefinition, version: int, now: datetime) -> int:
        trigger = defn.trigger
        assert isinstance(trigger, DateTrigger)
        started, after = 0, ""
        while True:
            page = tx.profiles_page(after, _PAGE)
            if not page:
                return started
            for row in page:
                record = {"profile": {"properties": row["properties"] or {}, "timezone": row["timezone"]}}
                value = resolve(record, trigger.date)
                if value is None:
                    continue
                tz = ZoneInfo(row["timezone"]) if row["timezone"] else self.store_tz
                key = date_due(trigger, value, now.astimezone(tz))
                if key is not None and start_run(tx, defn, version, row["id"], now,
                                                 dedupe_key=f"date:{defn.id}:{row['id']}:{key}"):
                    started += 1
            after = page[-1]["id"]

    def next_at(self) -> datetime | None:
        with self.store.read() as tx:
            return tx.next_schedule_at()
