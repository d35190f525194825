"""The ingest path: validate, normalize, dedupe, resolve the profile, persist, update state,
derive events, wake runs waiting for the event, and start the runs it triggers. One transaction
per batch; each item gets its own result."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError as PydanticValidationError

from storeflow.clock import Clock
from storeflow.engine.changes import Change, order_cart_id, parse_change
from storeflow.engine.flow_stats import BatchStats, uses_stats
from storeflow.engine.flowset import FlowSet, event_too_old, start_run
from storeflow.engine.identity import apply_profile_updates, check_profile_updates, resolve_profile
from storeflow.engine.records import RecordLoader, StoreProfileData
from storeflow.errors import LostRace, NotFoundError
from storeflow.flows import EvalContext, WaitForStep, evaluate, find_step, step_at
from storeflow.model.events import PASSIVE_EVENTS, CanonicalEvent, EventIn, normalize_event
from storeflow.segments.segmentset import SegmentSet, event_keys
from storeflow.settings import Settings
from storeflow.store.base import Store, StoreTx
from storeflow.store.ports import PrefetchKeys, WriteBehind

MAX_BATCH = 1000
_ATTEMPTS = 3  # a batch that lost a race with a concurrent writer is retried; its duplicates then show
_AMOUNT_KEYS = ("total", "value", "amount", "variants", "items", "line_items")


@dataclass
class IngestResult:
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    event_id: str | None = None
    profile_id: str | None = None
    error: str | None = None
    runs_started: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status}
        for name in ("event_id", "profile_id", "error"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.runs_started:
            out["runs_started"] = self.runs_started
        return out


def _pydantic_message(exc: PydanticValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "event"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


@dataclass
class _Prepared:
    index: int
    event: CanonicalEvent
    change: Change | None
    profile_updates: dict[str, Any]


class Ingestor:
    def __init__(self, store: Store, clock: Clock, settings: Settings, flows: FlowSet,
                 on_wake: Callable[[], None] | None = None, segments: SegmentSet | None = None) -> None:
        self.store, self.clock, self.settings, self.flows = store, clock, settings, flows
        self.on_wake = on_wake
        self.segments = segments  # the live segments: which profiles to queue for re-evaluation

    def prepare(self, index: int, item: Mapping[str, Any] | EventIn, source: str) -> _Prepared | IngestResult:
        now = self.clock.now()
        try:
            ev = item if isinstance(item, EventIn) else EventIn.model_validate(item)
            canonical = normalize_event(ev, now, source, self.settings.default_phone_region,
                                        self.settings.max_future_skew_s)
            props = canonical.properties
            if props.get("currency") in (None, "") and any(k in props for k in _AMOUNT_KEYS):
                props["currency"] = self.settings.currency  # the store's currency, recorded on the event
            change = parse_change(canonical)
            updates = check_profile_updates(canonical.profile_updates)
        except PydanticValidationError as exc:
            return IngestResult(index, "rejected", error=_pydantic_message(exc))
        except ValueError as exc:
            return IngestResult(index, "rejected", error=str(exc))
        if updates and canonical.hints.empty:
            return IngestResult(index, "rejected", error="profile: profile fields need an identity "
                                "(email, phone, customer_id, anonymous_id or profile_id)")
        return _Prepared(index, canonical, change, updates)

    def _prepare_all(self, items: Sequence[Mapping[str, Any] | EventIn],
                     source: str) -> tuple[list[IngestResult | None], list[_Prepared]]:
        """Each item checked and normalised: a result already (refused, say) or prepared to apply."""
        results: list[IngestResult | None] = [None] * len(items)
        prepared: list[_Prepared] = []
        for i, item in enumerate(items):
            p = self.prepare(i, item, source)
            if isinstance(p, IngestResult):
                results[i] = p
            else:
                prepared.append(p)
        return results, prepared

    def ingest(self, items: Sequence[Mapping[str, Any] | EventIn], source: str = "api") -> list[IngestResult]:
        if len(items) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} events; this one has {len(items)}")
        results, prepared = self._prepare_all(items, source)
        woke = False
        if prepared:
            for attempt in range(1, _ATTEMPTS + 1):
                try:
                    woke = self._batch(prepared, results)
                    break
                except LostRace:
                    if attempt == _ATTEMPTS:
                        raise
        if woke and self.on_wake:
            self.on_wake()
        return [r for r in results if r is not None]

    def ingest_in(self, tx: StoreTx, items: Sequence[Mapping[str, Any] | EventIn],
                  source: str = "storeflow") -> tuple[list[IngestResult], bool]:
        """Ingest within the caller's transaction, so the events commit (or roll back) with what the
        caller writes there: e.g. ``message_sent`` with the send's outcome. Returns the results and
        whether a worker should be woken once the transaction commits. A ``LostRace`` propagates:
        the caller rolls back and retries its whole transaction."""
        results, prepared = self._prepare_all(items, source)
        woke = self._batch_in(tx, prepared, results) if prepared else False
        return [r for r in results if r is not None], woke

    def _batch(self, prepared: list[_Prepared], results: list[IngestResult | None]) -> bool:
        with self.store.transaction() as tx:
            return self._batch_in(tx, prepared, results)

    def _batch_in(self, tx: StoreTx, prepared: list[_Prepared], results: list[IngestResult | None]) -> bool:
        """The batch in one transaction, through a write-behind view: the rows every event will ask
        about are read at once, and the writes go out as one executemany per table at the end."""
        woke = False
        self.flows.refresh(tx)
        seen: set[str] = tx.existing_idempotency_keys([p.event.idempotency_key for p in prepared])
        batch = tx.write_behind()
        stats = self.flows.stats.batch(batch)  # read once, if a flow it evaluates uses rfm or top
        entry_flows = self.flows.reentry_limited()
        now = self.clock.now()

        def may_trigger(ev: CanonicalEvent) -> bool:
            flows = self.flows.for_event(tx, ev.type)
            return any(not event_too_old(defn, ev.occurred_at, now) for _, defn in flows)

        segments = self.segments
        if segments is not None:
            segments.refresh(tx)
            if not segments.ordered():
                segments = None
        queued: dict[str, set[str]] = {}  # profile id -> what changed that a live segment reads
        for i, p in enumerate(prepared):
            if i == 0 or batch.stale:
                _prefetch(batch, prepared[i:], entry_flows, may_trigger)
            result = self._one(batch, p, seen, stats)
            results[p.index] = result
            woke = woke or bool(result.runs_started) or result.status == "accepted"
            if segments is not None and result.status == "accepted" and result.profile_id:
                keys = _segment_keys(segments, batch, p, result.profile_id, now)
                if keys:
                    queued.setdefault(result.profile_id, set()).update(keys)
        if queued:  # one statement per batch; the membership engine is woken after the commit
            batch.queue_segment_changes(queued, now)
            batch.notify_after_commit("storeflow_runs")
        batch.flush()
        return woke

    def _one(self, tx: StoreTx, p: _Prepared, seen: set[str], stats: BatchStats) -> IngestResult:
        ev = p.event
        if ev.idempotency_key in seen:
            return IngestResult(p.index, "duplicate")
        now = self.clock.now()
        try:
            profile_id = resolve_profile(tx, ev.hints, now)
        except NotFoundError as exc:
            return IngestResult(p.index, "rejected", error=f"profile_id: {exc}")
        started = self._persist(tx, ev, profile_id, p.change, p.profile_updates, seen, stats)
        if started is None:
            return IngestResult(p.index, "duplicate")
        return IngestResult(p.index, "accepted", event_id=ev.id, profile_id=profile_id, runs_started=started)

    def _persist(self, tx: StoreTx, ev: CanonicalEvent, profile_id: str | None, change: Change | None,
                 updates: dict[str, Any], seen: set[str], stats: BatchStats) -> list[str] | None:
        from storeflow.engine.state import apply_change

        now = self.clock.now()
        record = ev.as_record(profile_id)
        if not tx.insert_event({**record, "idempotency_key": ev.idempotency_key}):
            return None
        seen.add(ev.idempotency_key)
        if profile_id:
            apply_profile_updates(tx, profile_id, updates, now)
            if ev.type not in PASSIVE_EVENTS:
                tx.touch_active(profile_id, ev.occurred_at)
        derived = apply_change(tx, ev, profile_id, change, now, self.settings.low_stock_threshold)
        started: list[str] = []
        if profile_id:
            self._wake_waiting(tx, record, profile_id, stats)
        started += self._trigger(tx, record, profile_id, stats)
        for d in derived:
            if d.idempotency_key in seen:
                continue
            more = self._persist(tx, d, None, None, {}, seen, stats)
            started += more or []
        return started

    def _wake_waiting(self, tx: StoreTx, event: dict[str, Any], profile_id: str, stats: BatchStats) -> None:
        now = self.clock.now()
        for wait in tx.waits_for(profile_id, event["type"]):
            if event["received_at"] < wait["since"]:
                continue
            run = tx.lock_run(wait["run_id"])
            if run is None or not run["cursor"] or run["status"] != "waiting":
                continue
            defn = self.flows.definition(tx, run["flow_id"], run["flow_version"])
            path = find_step(defn, run["cursor"])
            step = step_at(defn, path) if path is not None else None
            if isinstance(step, WaitForStep) and step.where is not None:
                ctx = EvalContext(record={"event": event}, now=now, history=StoreProfileData(tx),
                                  profile_id=profile_id, stats=stats.for_flow(defn),
                                  store_tz=self.settings.timezone)
                if not evaluate(step.where, ctx):
                    continue
            if not tx.remove_wait(run["id"]):
                continue  # a worker took the timeout first
            context = dict(run["context"] or {})
            wait_state = dict(context.get("wait") or {})
            wait_state["matched_event"] = event["id"]
            context["wait"] = wait_state
            tx.update_run(run["id"], context=context, due_at=now, updated_at=now)
            tx.notify_after_commit("storeflow_runs")

    def _trigger(self, tx: StoreTx, event: dict[str, Any], profile_id: str | None,
                 stats: BatchStats) -> list[str]:
        now = self.clock.now()
        started = []
        candidates = [(version, defn) for version, defn in self.flows.for_event(tx, event["type"])
                      if not event_too_old(defn, event["occurred_at"], now)]
        if not candidates:
            return []  # e.g. an import of history: nothing to build the record for
        record = RecordLoader(tx).build(event=event, profile_id=profile_id)
        needed = any(uses_stats(defn) for _, defn in candidates)
        ctx = EvalContext(record=record, now=now, history=StoreProfileData(tx) if profile_id else None,
                          profile_id=profile_id, trigger_at=event["occurred_at"],
                          stats=stats.get() if needed else None, store_tz=self.settings.timezone)
        for version, defn in candidates:
            trigger_filter = getattr(defn.trigger, "filter", None)
            if trigger_filter is not None and not evaluate(trigger_filter, ctx):
                continue
            run_id = start_run(tx, defn, version, profile_id, now, trigger_event=event)
            if run_id:
                started.append(run_id)
        return started


def _segment_keys(segments: SegmentSet, batch: WriteBehind, p: _Prepared, profile_id: str,
                  batch_start: datetime) -> frozenset[str]:
    """What this event changed for its profile, if a live segment reads some of it (else empty).
    A profile created by the batch, or a merge (it invalidates the batch view), may change anything."""
    profile = batch.get_profile(profile_id)
    new = batch.stale or profile is None or profile["created_at"] >= batch_start
    keys = event_keys(p.event.type, p.change, p.profile_updates, identified=bool(p.event.hints.identities()),
                      new_profile=new)
    return keys if segments.reads_any(keys) else frozenset()


def _prefetch(batch: WriteBehind, prepared: list[_Prepared], entry_flows: frozenset[str],
              may_trigger: Callable[[CanonicalEvent], bool]) -> None:
    keys = PrefetchKeys(entry_flows=entry_flows)
    for p in prepared:
        ev = p.event
        idents = ev.hints.identities()
        keys.identities += idents
        if ev.hints.profile_id:
            keys.profile_ids.append(ev.hints.profile_id)
        props = ev.properties
        for key in ("cart_id", "checkout_id"):
            if props.get(key):
                keys.cart_ids.append(str(props[key]))
        if props.get("order_id"):
            keys.order_ids.append(str(props["order_id"]))
            keys.order_identities += idents
            keys.cart_ids.append(order_cart_id(str(props["order_id"])))
        if may_trigger(ev):
            keys.trigger_identities += idents
            if props.get("product_id"):
                keys.product_ids.append(str(props["product_id"]))
    batch.prefetch(keys)
