"""The worker's batch: the rows its runs read, loaded with a few queries per batch, and what its runs
change, written set-based (one executemany per kind of write) when the batch ends.

Runs advance one after another against this in-memory state, so a later step, or a later run of
the same profile, sees an earlier one's tag. Each run's changes are journaled: a run that fails is
undone in memory (its tags, properties, messages, waits and step log vanish) while the others keep
theirs, as with a savepoint per run, but without the statements.

What runs do to profiles, orders and products (tags, properties, product statuses) is recorded as
replayable patches in a ``RowChanges`` (``storeflow.store.row_changes``), the same mechanism
ingest's batch view writes through. ``flush`` locks those rows in the canonical order (profiles,
orders, carts, products; ids sorted, FOR UPDATE on PostgreSQL), re-reads the columns the patches
touch, replays the patches on them and writes them with one executemany per set of columns, so a
change another transaction committed meanwhile is kept, never overwritten with an older copy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from storeflow.engine.batch_reads import BatchHistory, BatchSuppressions
from storeflow.engine.effects import (
    AddWait,
    Effect,
    ProductStatus,
    RemoveWait,
    Send,
    SetProperty,
    Tag,
    outbox_row,
    tagged,
    with_property,
)
from storeflow.engine.messaging import Messaging
from storeflow.engine.records import (
    StoreProfileData,
    cart_record,
    event_record,
    order_product_ids,
    order_record,
    product_record,
    profile_record,
)
from storeflow.engine.runner import Outcome, RunState, StepLog
from storeflow.errors import PermanentActionError
from storeflow.flows import HistoryPort
from storeflow.flows.segment_stats import SegmentStats
from storeflow.jsonenc import dumps
from storeflow.settings import Settings
from storeflow.signing import Signer
from storeflow.store.base import StoreTx
from storeflow.store.row_changes import Increment, Patch, RowChanges, SetColumns, SetKeys, Tags

# The columns an effect can change, by kind of row.
FIELDS: dict[str, tuple[str, ...]] = {"profile": ("tags", "properties"), "order": ("tags",),
                                      "product": ("tags", "status")}
_LOADERS: dict[str, Callable[[StoreTx, str], dict[str, Any] | None]] = {
    "event": lambda tx, i: tx.get_event(i),
    "profile": lambda tx, i: tx.get_profile(i),
    "order": lambda tx, i: tx.get_order(i),
    "cart": lambda tx, i: tx.get_cart(i),
    "product": lambda tx, i: tx.get_product(i),
}
_CART_KEYS = ("checkout_id", "cart_id")
Key = tuple[str, str]  # (kind, id)


@dataclass
class Writes:
    """What runs wrote, in order: step-log rows, run updates, event waits (run id -> the wait, or
    None to remove it) and outbox rows."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    waits: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    sends: list[dict[str, Any]] = field(default_factory=list)

    def merge(self, other: Writes) -> None:
        self.steps += other.steps
        self.runs += other.runs
        self.waits.update(other.waits)
        self.sends += other.sends


class Batch:
    def __init__(self, tx: StoreTx, now: datetime, rows: list[dict[str, Any]]) -> None:
        self.tx, self.now = tx, now
        self._rows: dict[str, dict[str, dict[str, Any] | None]] = {kind: {} for kind in _LOADERS}
        self._open_carts: dict[str, dict[str, Any] | None] = {}  # profile id -> latest open cart
        self.changes = RowChanges()  # what runs did to each changed row, in order
        self._versions: dict[Key, int] = {}  # bumped on every change: derived records rebuild
        self._derived: dict[Key, tuple[int, dict[str, Any]]] = {}
        self._product_parts: dict[str, dict[str, Any]] = {}  # product id -> record (variants, stock)
        self.writes = Writes()
        self._run: Writes | None = None
        self._journal: dict[Key, tuple[dict[str, Any], dict[str, Any], int]] = {}  # row, saved fields, ops
        # exit_when and history conditions (a query per event type), the collections, in_segment
        self.history = StoreProfileData(tx, BatchHistory(tx, rows))
        self.suppressed = BatchSuppressions(tx, self._rows["profile"].values)
        if rows:
            self._preload(rows)

    # -- loading ---------------------------------------------------------------------------------
    def _preload(self, rows: list[dict[str, Any]]) -> None:
        """Everything the runs' records read, a query per kind of row for the whole batch."""
        tx = self.tx
        event_ids = {r["trigger_event_id"] for r in rows if r["trigger_event_id"]}
        self._fill("event", event_ids, tx.rows_by_id("event", event_ids) if event_ids else {})
        profile_ids = {r["profile_id"] for r in rows if r["profile_id"]}
        self._fill("profile", profile_ids, tx.profiles_by_id(profile_ids) if profile_ids else {})
        wanted: dict[str, set[str]] = {"order": set(), "cart": set(), "product": set()}
        for r in rows:
            props = self._props(r["trigger_event_id"])
            if props.get("order_id"):
                wanted["order"].add(str(props["order_id"]))
            if props.get("product_id"):
                wanted["product"].add(str(props["product_id"]))
            wanted["cart"].update(str(props[k]) for k in _CART_KEYS if props.get(k))
        for kind, ids in wanted.items():
            self._fill(kind, ids, tx.rows_by_id(kind, ids) if ids else {})
        open_for: set[str] = set()
        for r in rows:
            profile = self._rows["profile"].get(r["profile_id"]) if r["profile_id"] else None
            props = self._props(r["trigger_event_id"])
            if profile is not None and not any(self._rows["cart"].get(str(props[k]))
                                               for k in _CART_KEYS if props.get(k)):
                open_for.add(profile["id"])
        if open_for:
            found = tx.open_carts_of(open_for)
            self._open_carts.update({pid: found.get(pid) for pid in open_for})

    def _fill(self, kind: str, ids: Iterable[str], found: dict[str, dict[str, Any]]) -> None:
        cache = self._rows[kind]
        for i in ids:
            cache[i] = found.get(i)
        for row in found.values():
            cache.setdefault(row["id"], row)  # a merged profile's survivor, under its own id too

    def _props(self, event_id: str | None) -> dict[str, Any]:
        event = self._rows["event"].get(event_id) if event_id else None
        return (event or {}).get("properties") or {}

    def get(self, kind: str, row_id: str) -> dict[str, Any] | None:
        """A row of the batch: preloaded, else loaded now and kept. One dict per row, so a change is
        seen by every run that reads it."""
        cache = self._rows[kind]
        if row_id in cache:
            return cache[row_id]
        row = _LOADERS[kind](self.tx, row_id)
        if row is not None and cache.get(row["id"]) is not None:
            row = cache[row["id"]]  # a merged profile's id: the survivor is already here
        cache[row_id] = row
        if row is not None:
            cache.setdefault(row["id"], row)
        return row

    def _open_cart(self, profile_id: str) -> dict[str, Any] | None:
        if profile_id not in self._open_carts:
            self._open_carts[profile_id] = self.tx.latest_open_cart(profile_id)
        return self._open_carts[profile_id]

    # -- records ---------------------------------------------------------------------------------
    def rows_of(self, event: dict[str, Any] | None, profile_id: str | None) -> dict[str, dict[str, Any] | None]:
        """The rows a run's record is made of, found as ``RecordLoader.build`` finds them."""
        props: dict[str, Any] = (event or {}).get("properties") or {}
        profile = self.get("profile", profile_id) if profile_id else None
        order = self.get("order", str(props["order_id"])) if props.get("order_id") else None
        cart = None
        for key in _CART_KEYS:
            if props.get(key):
                cart = self.get("cart", str(props[key]))
                if cart:
                    break
        if cart is None and profile is not None:
            cart = self._open_cart(profile["id"])
        product = self.get("product", str(props["product_id"])) if props.get("product_id") else None
        return {"event": event, "profile": profile, "order": order, "cart": cart, "product": product}

    def record(self, rows: dict[str, dict[str, Any] | None], run: dict[str, Any],
               previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """The record a run's conditions and templates read. Given the ``previous`` record of the
        same rows, only the parts an effect can change are made again."""
        event, profile, order, cart, product = (rows["event"], rows["profile"], rows["order"], rows["cart"],
                                                rows["product"])
        return {
            "event": (previous["event"] if previous is not None
                      else self._record_of("event", event, event_record) if event else None),
            "profile": self._record_of("profile", profile, profile_record) if profile else None,
            "order": self._record_of("order", order, self._order_record) if order else None,
            "cart": (previous["cart"] if previous is not None
                     else self._record_of("cart", cart, cart_record) if cart else None),
            "product": self._product_record(product) if product else None,
            "run": run,
        }

    def _order_record(self, row: dict[str, Any]) -> dict[str, Any]:
        """The order's record with the products it bought (its categories and product tags)."""
        found = {pid: self.get("product", pid) for pid in order_product_ids(row)}
        return order_record(row, {pid: product for pid, product in found.items() if product is not None})

    def _record_of(self, kind: str, row: dict[str, Any],
                   build: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """The record of a row, built once; after a change only the changed fields are new."""
        key = (kind, row["id"])
        version = self._versions.get(key, 0)
        cached = self._derived.get(key)
        if cached is None:
            rec = build(row)
        elif cached[0] != version:
            rec = {**cached[1], **{f: _copy(row[f]) for f in FIELDS[kind]}}
        else:
            return cached[1]
        self._derived[key] = (version, rec)
        return rec

    def _product_record(self, row: dict[str, Any]) -> dict[str, Any]:
        parts = self._product_parts.get(row["id"])
        if parts is None:
            parts = self._product_parts[row["id"]] = product_record(self.tx, row)
        return {**parts, "status": row["status"], "tags": list(row["tags"] or [])}

    # -- a run's changes -------------------------------------------------------------------------
    def begin_run(self) -> None:
        self._run, self._journal = Writes(), {}

    def end_run(self, ok: bool) -> None:
        """Keep the run's changes, or undo them all."""
        if self._run is not None and ok:
            self.writes.merge(self._run)
        if not ok:
            for key, (row, saved, count) in self._journal.items():
                row.update(saved)
                self.changes.truncate(*key, count)
                self._versions[key] = self._versions.get(key, 0) + 1
        self._run, self._journal = None, {}

    @property
    def _writes(self) -> Writes:
        return self._run if self._run is not None else self.writes

    def apply(self, effects: list[Effect]) -> None:
        for eff in effects:
            if isinstance(eff, Tag):
                row = self._existing(eff.target, eff.target_id, "does not exist")
                self._change(eff.target, row, Tags(eff.add, eff.remove), tags=tagged(row["tags"], eff))
            elif isinstance(eff, SetProperty):
                row = self._existing("profile", eff.profile_id, "no longer exists")
                props = with_property(row["properties"], eff)
                props[eff.name] = _as_stored(props[eff.name])
                patch: Patch = (SetKeys({eff.name: eff.value}) if eff.increment is None
                                else Increment(eff.name, eff.increment))
                self._change("profile", row, patch, properties=props)
            elif isinstance(eff, ProductStatus):
                row = self._existing("product", eff.product_id, "does not exist")
                self._change("product", row, SetColumns({"status": eff.status}), status=eff.status)
            elif isinstance(eff, Send):
                self._writes.sends.append(outbox_row(eff, self.now))
            elif isinstance(eff, AddWait):
                self._writes.waits[eff.run_id] = {"run_id": eff.run_id, "profile_id": eff.profile_id,
                                                  "event_type": eff.event_type, "since": eff.since}
            elif isinstance(eff, RemoveWait):
                self._writes.waits[eff.run_id] = None

    def _existing(self, kind: str, row_id: str, missing: str) -> dict[str, Any]:
        row = self.get(kind, row_id)
        if row is None:
            raise PermanentActionError(f"{kind} {row_id} {missing}")
        return row

    def _change(self, kind: str, row: dict[str, Any], patch: Patch, **values: Any) -> None:
        key = (kind, row["id"])
        if self._run is not None and key not in self._journal:
            self._journal[key] = (row, {f: row[f] for f in FIELDS[kind]}, self.changes.count(*key))
        row.update(values)
        self.changes.add(kind, row["id"], patch)
        self._versions[key] = self._versions.get(key, 0) + 1

    def save(self, outcome: Outcome, seq: int) -> None:
        """The run's step log and new state."""
        run, writes = outcome.run, self._writes
        for entry in outcome.logs:
            seq += 1
            writes.steps.append(log_row(run.id, seq, entry, self.now))
        run.context["seq"] = seq
        finished = run.status in ("completed", "exited", "failed")
        writes.runs.append({"id": run.id, "status": run.status, "cursor": run.cursor, "due_at": run.due_at,
                            "context": run.context, "exit_reason": run.exit_reason, "ended_at": run.ended_at,
                            "updated_at": self.now, "attempts": 0, "last_error": None,
                            **({"active_key": None} if finished else {})})

    def fail(self, row: dict[str, Any], seq: int, reason: str, *, permanent: bool) -> None:
        """The run failed: a last step-log entry with the reason, its wait gone, the run ended."""
        context = dict(row["context"] or {})
        context["seq"] = seq + 1
        cursor = row["cursor"] or ""
        writes = self._writes
        writes.steps.append(log_row(row["id"], seq + 1, StepLog(cursor, cursor, "error", "failed",
                                                                {"why": reason, "permanent": permanent}), self.now))
        writes.waits[row["id"]] = None
        writes.runs.append({"id": row["id"], "status": "failed", "due_at": None, "active_key": None,
                            "ended_at": self.now, "updated_at": self.now, "last_error": reason, "context": context})

    def retry(self, run_id: str, attempts: int, due_at: datetime, error: str) -> None:
        self._writes.runs.append({"id": run_id, "attempts": attempts, "due_at": due_at, "updated_at": self.now,
                                  "last_error": error})

    # -- writing ---------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write the batch: changed rows (replayed on their locked current state), waits, messages,
        the step log and the runs; a few statements in all."""
        tx, writes = self.tx, self.writes
        locked = self.changes.lock(tx, verify=True)
        if locked.missing:
            kind, row_id = locked.missing[0]
            raise PermanentActionError(f"{kind} {row_id} no longer exists")
        self.changes.write(tx, locked, stamp=self.now)
        if writes.waits:
            tx.replace_waits(writes.waits, [w for w in writes.waits.values() if w is not None])
        tx.enqueue_many(writes.sends)
        tx.append_steps(writes.steps)
        if writes.runs:
            tx.update_runs(writes.runs)


def _copy(value: Any) -> Any:
    """A field of a record as its builder copies it: tags a list, properties a dict."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _as_stored(value: Any) -> Any:
    """The value as it reads back from the database (a JSON document)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.loads(dumps(value))


def log_row(run_id: str, seq: int, entry: StepLog, now: datetime) -> dict[str, Any]:
    return {"run_id": run_id, "seq": seq, "step_key": entry.step_key, "step_path": entry.step_path,
            "kind": entry.kind, "status": entry.status, "at": now, "detail": entry.detail}


class RunEnv:
    """The StepEnv of one run in a batch: records from the batch, effects into it."""

    def __init__(self, batch: Batch, run: RunState, trigger: dict[str, Any] | None, store_tz: ZoneInfo,
                 messaging: tuple[Settings, Signer] | None = None, stats: SegmentStats | None = None) -> None:
        self.batch, self.run, self.trigger, self.now, self.store_tz = batch, run, trigger, batch.now, store_tz
        self.stats = stats
        self.messaging = Messaging(messaging[0], messaging[1], batch.suppressed) if messaging else None
        self.history: HistoryPort = batch.history
        self._record: dict[str, Any] | None = None  # None: (re)build at the next read
        self._last: dict[str, Any] | None = None
        self._rows: dict[str, dict[str, Any] | None] | None = None

    def record(self) -> dict[str, Any]:
        if self._record is None:
            run = self.run
            info = {"id": run.id, "flow_id": run.flow_id, "started_at": run.started_at,
                    "variants": dict(run.context.get("variants", {}))}
            if self._rows is None:
                self._rows = self.batch.rows_of(self.trigger, run.profile_id)
            self._record = self._last = self.batch.record(self._rows, info, self._last)
        return self._record

    def apply(self, effects: list[Effect]) -> None:
        self.batch.apply(effects)
        if any(isinstance(e, Tag | SetProperty | ProductStatus) for e in effects):
            self._record = None  # a profile, order or product changed; sends and waits change none
