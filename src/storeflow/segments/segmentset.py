"""The live segments, cached like the live flows (``storeflow.engine.flowset``), with the index of
what each one reads.

Every segment condition reads a known set of *keys*:

- ``profile:<field>``: a profile field (``profile:properties``, ``profile:consent``,
  ``profile:last_active_at``, ...; a bare ``profile`` path reads them all);
- ``identities``: the profile's identities (``{identity: customer_id}``; also profile email/phone);
- ``event:<type>``: the profile's events of one type (a ``history`` node);
- ``orders``, ``carts``, ``messages``: those collections (``orders`` also for ``purchase_overdue``,
  ``rfm``, ``top`` and ``since: first_order``);
- ``segment:<id>``: membership of another segment (``in_segment``).

An ingested event changes a set of keys too (:func:`event_keys`). Ingest queues the profile for
the membership engine only when a live segment reads one of them, so an event no segment cares
about costs a set intersection. ``ANY`` stands for "everything may have changed" (a new profile, a
merge): the profile is queued while any segment is live.

Segments are kept in dependency order: a segment comes after the segments it tests with
``in_segment``, so one pass over them sees each referenced membership already updated.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from storeflow.engine.changes import CartChange, Change, ConsentChange, OrderChange
from storeflow.flows.conditions import (
    Comparison,
    Condition,
    FirstSeenAggregate,
    HasIdentity,
    History,
    InSegment,
    LastSeenAggregate,
    PurchaseOverdue,
    Rfm,
    TopPercent,
    iter_conditions,
)
from storeflow.model.events import MESSAGE_EVENTS, PASSIVE_EVENTS
from storeflow.store.ports import StoreTx

ANY = "*"
"""The key of a change that may touch anything a segment reads."""
ORDER_KEYS = frozenset({"orders", "carts", "profile:orders_count", "profile:total_spent", "profile:first_order_at",
                        "profile:last_order_at"})
"""What an order event changes: the order, the cart it converts, the profile's order summary."""
_PROFILE_FIELDS = ("id", "email", "phone", "locale", "timezone", "tags", "properties", "orders_count", "total_spent",
                   "first_order_at", "last_order_at", "last_active_at", "created_at", "consent")
_TIME_OPS = frozenset({"within", "older_than", "anniversary_within"})
_IDENTITY_KEYS = frozenset({"identities", "profile:email", "profile:phone"})


@dataclass(frozen=True)
class LiveSegment:
    """One live segment at its current version, with what its condition reads."""

    id: str
    name: str
    version: int
    condition: Condition
    reads: frozenset[str]
    depends_on: frozenset[str]  # the segments it tests with in_segment
    time_relative: bool  # its truth can flip with time alone: it keeps due rows
    horizon: timedelta  # how far ahead to look for a flip: twice its longest duration and a day
    uses_stats: bool  # rfm / top: it reads the store's segment statistics


def condition_reads(condition: Condition) -> frozenset[str]:
    """The keys a condition reads (see the module docstring)."""
    keys: set[str] = set()
    for node in iter_conditions(condition):
        if isinstance(node, Comparison):
            keys |= _path_keys(node.path.root, node.path.segments)
        elif isinstance(node, History):
            if node.source == "events":
                keys.add(f"event:{node.event}" if node.event else ANY)
            else:
                keys.add(node.source)
            if node.window.since == "first_order":
                keys |= {"orders", "profile:first_order_at"}
        elif isinstance(node, InSegment):
            keys.add(f"segment:{node.segment}")
        elif isinstance(node, HasIdentity):
            keys.add("identities")
        elif isinstance(node, PurchaseOverdue | Rfm | TopPercent):
            keys |= ORDER_KEYS
    return frozenset(keys)


def _path_keys(root: str, segments: tuple[str, ...]) -> set[str]:
    if root != "profile":
        return set()  # a collection's own record (inside a history node's where)
    if not segments:
        return {f"profile:{name}" for name in _PROFILE_FIELDS}
    if segments[0] not in _PROFILE_FIELDS:
        return {"profile:properties"}  # profile.tier is short for profile.properties.tier
    return {f"profile:{segments[0]}"}


def is_time_relative(condition: Condition) -> bool:
    """Whether the condition's truth can change with the clock alone (a relative window or
    comparison, purchase rhythm, RFM recency)."""
    for node in iter_conditions(condition):
        if isinstance(node, Comparison) and node.op in _TIME_OPS:
            return True
        if isinstance(node, History):
            window = node.window
            if window.within is not None or isinstance(window.before, timedelta):
                return True
            if isinstance(node.aggregate, FirstSeenAggregate | LastSeenAggregate) and node.aggregate.period is not None:
                return True
        if isinstance(node, PurchaseOverdue | Rfm):
            return True
    return False


def longest_duration(condition: Condition) -> timedelta:
    """The longest duration the condition names (windows, periods, comparison operands)."""
    found = [timedelta(0)]
    for node in iter_conditions(condition):
        if isinstance(node, Comparison) and isinstance(node.value, timedelta):
            found.append(node.value)
        elif isinstance(node, History):
            found += [d for d in (node.window.within, node.window.before) if isinstance(d, timedelta)]
            period = getattr(node.aggregate, "period", None)
            if isinstance(period, timedelta):
                found.append(period)
        elif isinstance(node, PurchaseOverdue):
            found.append(node.default)
    return max(found)


def event_keys(event_type: str, change: Change | None, updates: Mapping[str, Any], *, identified: bool,
               new_profile: bool) -> frozenset[str]:
    """What an ingested event changed for its profile: its type, the profile fields it updated,
    last_active_at (non-passive events), orders/carts/consent (from its parsed change), messages
    (message events), identities (it carried some), or ``ANY`` (a profile created by it)."""
    if new_profile:
        return frozenset({ANY})
    keys = {f"event:{event_type}"}
    keys.update(f"profile:{'consent' if column.startswith('consent_') else column}" for column in updates)
    if event_type not in PASSIVE_EVENTS:
        keys.add("profile:last_active_at")
    if event_type in MESSAGE_EVENTS:
        keys.add("messages")
    if isinstance(change, OrderChange):
        keys |= ORDER_KEYS
    elif isinstance(change, CartChange):
        keys.add("carts")
    elif isinstance(change, ConsentChange):
        keys.add("profile:consent")
    if identified:
        keys |= _IDENTITY_KEYS
    return frozenset(keys)


def dependency_order(segments: Iterable[LiveSegment]) -> list[LiveSegment]:
    """The segments so that each comes after the live segments it references (by id otherwise).
    A cycle (refused when segments are saved) is broken by id order."""
    by_id = {s.id: s for s in sorted(segments, key=lambda s: s.id)}
    ordered: list[LiveSegment] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(seg: LiveSegment) -> None:
        if state.get(seg.id):
            return
        state[seg.id] = 1
        for dep in sorted(seg.depends_on):
            if dep in by_id and not state.get(dep):
                visit(by_id[dep])
        state[seg.id] = 2
        ordered.append(seg)

    for seg in by_id.values():
        visit(seg)
    return ordered


def live_segment(segment_id: str, name: str, version: int, condition: Condition) -> LiveSegment:
    """A LiveSegment with its reads worked out from its condition."""
    reads = condition_reads(condition)
    return LiveSegment(
        id=segment_id, name=name, version=version, condition=condition, reads=reads,
        depends_on=frozenset(k.removeprefix("segment:") for k in reads if k.startswith("segment:")),
        time_relative=is_time_relative(condition), horizon=2 * longest_duration(condition) + timedelta(days=1),
        uses_stats=any(isinstance(n, Rfm | TopPercent) for n in iter_conditions(condition)))


class SegmentSet:
    """Thread-safe cache of the live segments. ``refresh`` costs one small query (the segments
    revision, bumped by every segment change) and reloads only when segments changed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._parsed: dict[tuple[str, int], LiveSegment] = {}
        self._ordered: list[LiveSegment] = []
        self._by_id: dict[str, LiveSegment] = {}
        self._reads: frozenset[str] = frozenset()
        self._dependants: dict[str, frozenset[str]] = {}
        self._every_event = False  # a segment reads the profile's events of every type

    def refresh(self, tx: StoreTx) -> None:
        """Reload the live segments if the segments revision moved since the last look."""
        revision = tx.segments_revision()
        with self._lock:
            if revision == self._revision:
                return
        from storeflow.segments.definition import load_segment

        found: list[LiveSegment] = []
        for state in tx.segment_states():
            if state["status"] == "deleted":
                continue
            key = (str(state["id"]), int(state["current_version"]))
            with self._lock:
                seg = self._parsed.get(key)
            if seg is None:
                row = tx.get_segment_version(*key)
                if row is None:
                    continue
                defn = load_segment(row["definition"], source=f"{key[0]}@v{key[1]}")
                seg = live_segment(key[0], defn.name, key[1], defn.condition)
            found.append(seg)
        ordered = dependency_order(found)
        dependants: dict[str, set[str]] = {}
        for seg in ordered:
            for dep in seg.depends_on:
                dependants.setdefault(dep, set()).add(seg.id)
        reads = frozenset(k for seg in ordered for k in seg.reads)
        with self._lock:
            self._parsed.update({(s.id, s.version): s for s in ordered})
            self._ordered, self._by_id, self._revision = ordered, {s.id: s for s in ordered}, revision
            self._every_event = ANY in reads
            self._reads = reads | ({ANY} if ordered else frozenset())
            self._dependants = {k: frozenset(v) for k, v in dependants.items()}

    def ordered(self) -> list[LiveSegment]:
        """The live segments in dependency order (as of ``refresh``)."""
        with self._lock:
            return self._ordered

    def get(self, segment_id: str) -> LiveSegment | None:
        """A live segment by id (as of ``refresh``)."""
        with self._lock:
            return self._by_id.get(segment_id)

    def reads_any(self, keys: Iterable[str]) -> bool:
        """Whether some live segment reads one of these keys (``ANY``: whether any segment is live)."""
        with self._lock:
            reads = self._reads
        if ANY in reads and self._every_event:
            return any(True for _ in keys)
        return any(k in reads for k in keys)

    def dependants(self, segment_ids: Iterable[str]) -> frozenset[str]:
        """The live segments that test one of these with in_segment, directly or through others."""
        with self._lock:
            direct = self._dependants
        found: set[str] = set()
        todo = list(segment_ids)
        while todo:
            for dep in direct.get(todo.pop(), ()):
                if dep not in found:
                    found.add(dep)
                    todo.append(dep)
        return frozenset(found)

    def invalidate(self) -> None:
        """Forget the revision: the next ``refresh`` reloads."""
        with self._lock:
            self._revision = None
