"""The live flows, indexed by trigger, with immutable versions cached; and starting runs."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

from storeflow.engine.flow_stats import StatsCache
from storeflow.flows import EventTrigger, FlowDefinition, SegmentTrigger, first_path, parse_flow, step_key
from storeflow.model.events import new_id
from storeflow.store.base import StoreTx


class FlowSet:
    """Thread-safe cache. ``refresh`` costs one small query and reloads only when flows changed: it
    compares the store's flow revision, a counter every flow change bumps in its own transaction."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._defs: dict[tuple[str, int], FlowDefinition] = {}
        self._revision: int | None = None
        self._by_event: dict[str, list[tuple[str, int]]] = {}
        self._defs_by_event: dict[str, list[tuple[int, FlowDefinition]]] = {}
        self._live: list[tuple[str, int]] = []
        self._limited: frozenset[str] = frozenset()
        self._members_flows: list[tuple[str, int, str]] = []
        self.stats = StatsCache()
        """The segment statistics the flows' rfm and top conditions read (``stats.batch(tx)``)."""

    def definition(self, tx: StoreTx, flow_id: str, version: int) -> FlowDefinition:
        key = (flow_id, version)
        with self._lock:
            cached = self._defs.get(key)
        if cached is not None:
            return cached
        row = tx.get_flow_version(flow_id, version)
        if row is None:
            raise KeyError(f"flow {flow_id} version {version} is not stored")
        defn = parse_flow(row["definition"], source=f"{flow_id}@v{version}")
        with self._lock:
            self._defs[key] = defn
        return defn

    def refresh(self, tx: StoreTx) -> None:
        revision = tx.flows_revision()
        with self._lock:
            if revision == self._revision:
                return
        live = tx.live_flows()
        by_event: dict[str, list[tuple[str, int]]] = {}
        keys = []
        for row in live:
            key = (row["id"], int(row["current_version"]))
            keys.append(key)
            if row["trigger_kind"] in ("event", "segment") and row["trigger_event"]:  # segment: its filter
                by_event.setdefault(row["trigger_event"], []).append(key)
        limited = frozenset(key[0] for key in keys if self.definition(tx, *key).reentry.mode != "always")
        members_flows = [(key[0], key[1], trigger.segment) for key in keys
                         if isinstance(trigger := self.definition(tx, *key).trigger, SegmentTrigger)
                         and trigger.include_existing]
        defs_by_event = {etype: [(key[1], self.definition(tx, *key)) for key in flow_keys]
                         for etype, flow_keys in by_event.items()}
        with self._lock:
            self._by_event, self._live, self._revision, self._limited = by_event, keys, revision, limited
            self._defs_by_event = defs_by_event
            self._members_flows = members_flows

    def for_event(self, tx: StoreTx, event_type: str) -> list[tuple[int, FlowDefinition]]:
        """(version, definition) of each live flow triggered by this event type (as of ``refresh``)."""
        with self._lock:
            return self._defs_by_event.get(event_type, [])

    def members_flows(self) -> list[tuple[str, int, str]]:
        """(flow id, version, segment id) of each live flow starting runs for a segment's current
        members (``include_existing``), as of ``refresh``."""
        with self._lock:
            return self._members_flows

    def reentry_limited(self) -> frozenset[str]:
        """Ids of the live flows whose re-entry rule reads the profile's past entries (once, every)."""
        with self._lock:
            return self._limited

    def invalidate(self) -> None:
        with self._lock:
            self._revision = None


# The first step's cursor per definition (keyed by id, holding the definition so the id stays its own).
_FIRST_CURSOR: dict[int, tuple[FlowDefinition, str]] = {}


def start_run(tx: StoreTx, defn: FlowDefinition, version: int, profile_id: str | None, now: datetime, *,
              trigger_event: dict[str, Any] | None = None, dedupe_key: str | None = None) -> str | None:
    """Create a run at the first step, due now; None when re-entry rules or an active run forbid it."""
    if profile_id is not None and defn.reentry.mode != "always":
        entry = tx.flow_entry(defn.id, profile_id)
        if entry is not None:
            if defn.reentry.mode == "once":
                return None
            if defn.reentry.mode == "every" and defn.reentry.period is not None \
                    and entry["last_entered_at"] + defn.reentry.period > now:
                return None
    run_id = new_id("run")
    trigger_at = trigger_event["occurred_at"] if trigger_event else now
    cursor = _FIRST_CURSOR.get(id(defn))
    if cursor is None or cursor[0] is not defn:
        cursor = _FIRST_CURSOR[id(defn)] = (defn, step_key(defn, first_path(defn)))
    created = tx.create_run({
        "id": run_id,
        "flow_id": defn.id,
        "flow_version": version,
        "profile_id": profile_id,
        "status": "active",
        "cursor": cursor[1],
        "due_at": now,
        "active_key": f"{defn.id}:{profile_id}" if profile_id else None,
        "dedupe_key": dedupe_key,
        "trigger_event_id": trigger_event["id"] if trigger_event else None,
        "context": {"trigger_at": trigger_at.isoformat(), "seq": 0},
        "attempts": 0,
        "started_at": now,
        "updated_at": now,
    })
    if not created:
        return None
    if profile_id is not None:
        tx.record_entry(defn.id, profile_id, now)
    return run_id


def event_too_old(defn: FlowDefinition, occurred_at: datetime, now: datetime) -> bool:
    trigger = defn.trigger
    if not isinstance(trigger, EventTrigger):
        return False
    max_age = trigger.max_age or timedelta(days=1)
    return occurred_at < now - max_age
