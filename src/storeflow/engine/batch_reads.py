"""Reads a worker batch answers for all its runs at once: the events history conditions ask for
(``exit_when`` is checked before every step of every run) and message suppressions.

Asked one run at a time they cost a query per step per run (60 for 10 runs of 6 steps with one
history condition in ``exit_when``) and one per message. Here the first question about an event type
loads that type's events for every profile of the batch in one query, and the first suppression
check loads the suppressions of every address of the batch's profiles in one query; later questions
are answered in memory. Nothing a run does inside the batch adds events or suppressions, so the
answers are those the database would give.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storeflow.clock import utc
from storeflow.store.base import StoreTx


@dataclass(frozen=True)
class _Loaded:
    lower: datetime | None  # None: all time
    until: datetime
    by_profile: dict[str, list[dict[str, Any]]]

    def covers(self, since: datetime | None, until: datetime) -> bool:
        return (self.lower is None or (since is not None and self.lower <= since)) and until <= self.until


class BatchHistory:
    """The flows ``HistoryPort`` for the runs of one batch.

    A window's start is either the same for every run (``within``, a date, all time: one load) or a
    run's own start or trigger time (``since: flow_start`` / ``trigger``): those load once from the
    earliest such anchor of the batch, so every run's window is inside the load."""

    def __init__(self, tx: StoreTx, rows: Iterable[dict[str, Any]]) -> None:
        self.tx = tx
        self._profiles: set[str] = set()
        self._anchors: set[datetime] = set()
        for row in rows:
            if row["profile_id"]:
                self._profiles.add(row["profile_id"])
            started = utc(row["started_at"])
            trigger_at = (row["context"] or {}).get("trigger_at")
            self._anchors.add(started)
            self._anchors.add(utc(datetime.fromisoformat(trigger_at)) if trigger_at else started)
        self._loads: dict[str, list[_Loaded]] = {}

    def events(self, profile_id: str, event_type: str, since: datetime | None,
               until: datetime) -> list[dict[str, Any]]:
        if profile_id not in self._profiles:
            return self.tx.history_events(profile_id, event_type, since, until)
        loads = self._loads.setdefault(event_type, [])
        load = next((x for x in loads if x.covers(since, until)), None)
        if load is None:
            lower = min(self._anchors) if since is not None and since in self._anchors else since
            load = _Loaded(lower, until, self.tx.history_events_of(self._profiles, event_type, lower, until))
            loads.append(load)
        return [e for e in load.by_profile.get(profile_id, ())
                if (since is None or e["occurred_at"] >= since) and e["occurred_at"] <= until]


class BatchSuppressions:
    """``suppression(channel, address)`` for the messages of one batch: the first check loads the
    suppressions of every email address and phone number of the batch's profiles in one query; an
    address from elsewhere (a step's own ``to``) is looked up alone, once."""

    def __init__(self, tx: StoreTx, profiles: Callable[[], Iterable[dict[str, Any] | None]]) -> None:
        self.tx, self._profiles = tx, profiles
        self._known: dict[tuple[str, str], str | None] | None = None

    def __call__(self, channel: str, address: str) -> str | None:
        key = (channel, address.lower())
        if self._known is None:
            wanted = {key}
            for row in self._profiles():
                for column, kind in (("email", "email"), ("phone", "sms")):
                    if row is not None and row.get(column):
                        wanted.add((kind, str(row[column]).lower()))
            found = self.tx.suppressions_of(wanted)
            self._known = {k: found.get(k) for k in wanted}
        if key not in self._known:
            self._known[key] = self.tx.suppression(channel, address)
        return self._known[key]
