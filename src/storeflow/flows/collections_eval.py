"""Evaluating the collection conditions (history, orders, carts, messages) and the profile conditions
(in_segment, identity, purchase_overdue, rfm, top) of conditions.py, for one profile.

The rules, which the SQL compiler (storeflow.segments.sql) follows exactly, are docs/segments.md's
"The condition language". In short:

- An item's time is its ``occurred_at`` (events), ``placed_at`` (orders), ``last_activity_at``
  (carts) or ``created_at`` (messages). An item without a time, or with a time after ``now``,
  never counts.
- Windows: ``within d``: ``now - d <= t <= now``; ``since S``: ``S <= t <= now`` (``first_order``:
  S is the profile's ``first_order_at``; without one nothing counts); ``before B``: ``t < B``;
  ``before d``: ``t < now - d``; ``between [a, b]``: ``a <= t <= b``; no window: ``t <= now``.
- ``sum``, ``min``, ``max``, ``avg`` read ``of`` through its declared type (free data: a number, or
  text that is a decimal number); items without such a value are left out. The sum of nothing is
  0; min, max and avg of nothing are missing (every operator false but ``ne``). ``avg op v`` is
  decided without division: ``sum op v * n`` over the ``n`` items with a value.
- ``first_seen`` / ``last_seen`` take the earliest / latest time of the matching items; never seen:
  ``older_than`` and ``before`` are true, ``within`` and ``after`` false.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Context, Decimal, localcontext
from fractions import Fraction
from typing import Any, Final

from storeflow.clock import utc
from storeflow.errors import ConditionError, Problem
from storeflow.flows.conditions import (
    SOURCE_ROOTS,
    CountAggregate,
    ExistsAggregate,
    FirstSeenAggregate,
    HasIdentity,
    History,
    InSegment,
    LastSeenAggregate,
    PurchaseOverdue,
    Rfm,
    SumAggregate,
    TopPercent,
    ValueAggregate,
)
from storeflow.flows.evaluate import EvalContext, HistoryPort, ProfileData, compare, evaluate, history_since
from storeflow.flows.paths import FieldPath, resolve
from storeflow.flows.record_schema import declared_type, read_as
from storeflow.flows.segment_stats import recency_score, top_cut, value_score
from storeflow.flows.values import as_datetime, as_decimal

ITEM_TIME: Final[dict[str, str]] = {
    "events": "occurred_at",
    "orders": "placed_at",
    "carts": "last_activity_at",
    "messages": "created_at",
}
"""The field of each collection's items that places them in time."""
MICROSECOND: Final = timedelta(microseconds=1)
_EXACT: Final = Context(prec=1000)
"""Enough digits for any sum of stored amounts and document numbers (at most 40 characters each)."""


def _fail(path: str, message: str, hint: str | None = None) -> ConditionError:
    return ConditionError([Problem(path=path, message=message, hint=hint)])


def profile_data(ctx: EvalContext, what: str) -> tuple[ProfileData, str]:
    """The context's ProfileData (``data``, else ``history`` when it is one) and profile id."""
    data = ctx.data
    if data is None and isinstance(ctx.history, ProfileData):
        data = ctx.history
    if data is None or ctx.profile_id is None:
        raise _fail(what, f"cannot evaluate a {what} condition without a profile and its data",
                    "pass EvalContext(data=..., profile_id=...)")  # fmt: skip
    return data, ctx.profile_id


def collection_items(
    node: History, ctx: EvalContext, since: datetime | None = None, until: datetime | None = None
) -> list[tuple[datetime, Mapping[str, Any]]]:
    """The items of the node's collection that have a time, as ``(time, item)``: every one (the
    next-flip search looks at items outside the window too), or, for events, those read from the
    history port with ``since <= time <= until`` (``until`` None: ``now``)."""
    if node.source == "events":
        port: HistoryPort | None = ctx.data if ctx.data is not None else ctx.history
        if port is None or ctx.profile_id is None:
            raise _fail("history", f'cannot evaluate a history condition on "{node.event}" without a profile '
                        "and its history", "history conditions work in flows that run for a profile")  # fmt: skip
        end = utc(ctx.now) if until is None else until
        items: Sequence[Mapping[str, Any]] = port.events(ctx.profile_id, node.event or "", since, end)
    else:
        data, profile_id = profile_data(ctx, node.source)
        if node.source == "orders":
            items = data.orders(profile_id)
        elif node.source == "carts":
            items = data.carts(profile_id)
        else:
            items = data.messages(profile_id, node.channel)
    key = ITEM_TIME[node.source]
    timed = ((as_datetime(item.get(key)), item) for item in items)
    return [(t, item) for t, item in timed if t is not None]


def window_bounds(node: History, ctx: EvalContext) -> tuple[datetime | None, datetime] | None:
    """``(lower, upper)``: an item at ``t`` is in the window when ``lower <= t <= upper`` (None: no
    lower bound); ``before``'s strict bound is returned as ``upper`` one microsecond earlier (times
    are whole microseconds). None: nothing is in the window (``since: first_order`` without one)."""
    now = utc(ctx.now)
    window = node.window
    if window.before is not None:
        end = utc(window.before) if isinstance(window.before, datetime) else now - window.before
        return None, min(end - MICROSECOND, now)
    if window.between is not None:
        return utc(window.between[0]), min(utc(window.between[1]), now)
    if window.since == "first_order":
        profile = ctx.record.get("profile")
        first = as_datetime(profile.get("first_order_at")) if isinstance(profile, Mapping) else None
        return None if first is None else (first, now)
    return history_since(node, ctx), now


def matching_items(node: History, ctx: EvalContext) -> list[tuple[datetime, Mapping[str, Any]]]:
    """The items in the node's window that its ``where`` accepts, as ``(time, item)``."""
    bounds = window_bounds(node, ctx)
    if bounds is None:
        return []
    lower, upper = bounds
    items = collection_items(node, ctx, lower)
    inside = [(t, item) for t, item in items if (lower is None or lower <= t) and t <= upper]
    if node.where is None:
        return inside
    where, root = node.where, SOURCE_ROOTS[node.source]
    return [(t, item) for t, item in inside if evaluate(where, replace(ctx, record={root: item}, history=None))]


def numeric_value(of: FieldPath, item: Mapping[str, Any]) -> Decimal | None:
    """The ``of`` field of an item as an exact decimal, or None (missing or not a number)."""
    return as_decimal(read_as(declared_type(of.root, of.segments), resolve({of.root: item}, of)))


def evaluate_collection(node: History, ctx: EvalContext) -> bool:
    """The aggregate of the node's matching items, compared."""
    now = utc(ctx.now)
    matching = matching_items(node, ctx)
    agg = node.aggregate
    if isinstance(agg, ExistsAggregate):
        return bool(matching) is agg.value
    if isinstance(agg, CountAggregate):
        return compare(agg.op, len(matching), agg.value, now)
    if isinstance(agg, SumAggregate | ValueAggregate):
        values = [v for v in (numeric_value(agg.of, item) for _, item in matching) if v is not None]
        if isinstance(agg, ValueAggregate) and not values:
            return compare(agg.op, None, agg.value, now)
        if isinstance(agg, ValueAggregate) and agg.kind in ("min", "max"):
            return compare(agg.op, min(values) if agg.kind == "min" else max(values), agg.value, now)
        with localcontext(_EXACT):  # sums and products of the document's numbers are never rounded
            total = sum(values, Decimal(0))
            if isinstance(agg, SumAggregate):
                return compare(agg.op, total, agg.value, now)
            return compare(agg.op, total, agg.value * len(values), now)  # avg, without division
    times = [t for t, _ in matching]
    if not times:
        return agg.op in ("older_than", "before")
    return seen_holds(agg, min(times) if agg.kind == "first_seen" else max(times), now)


def seen_holds(agg: FirstSeenAggregate | LastSeenAggregate, seen: datetime, now: datetime) -> bool:
    """Whether a first/last seen instant ``seen`` compares as ``agg`` asks, at ``now``."""
    if agg.op == "within":
        return agg.period is not None and now - agg.period <= seen <= now
    if agg.op == "older_than":
        return agg.period is not None and seen < now - agg.period
    if agg.op == "before":
        return agg.at is not None and seen < utc(agg.at)
    return agg.at is not None and seen > utc(agg.at)


# --- profile conditions ----------------------------------------------------------------------


def _profile(ctx: EvalContext) -> Mapping[str, Any]:
    profile = ctx.record.get("profile")
    return profile if isinstance(profile, Mapping) else {}


def orders_summary(ctx: EvalContext) -> tuple[int, datetime | None, datetime | None, Mapping[str, Any]]:
    """The profile record's ``(orders_count, first_order_at, last_order_at, total_spent)``: what
    purchase_overdue, rfm and top read (orders that are not cancelled; spend net of refunds)."""
    profile = _profile(ctx)
    count = as_decimal(profile.get("orders_count"))
    spent = profile.get("total_spent")
    return (
        int(count) if count is not None and count == count.to_integral_value() else 0,
        as_datetime(profile.get("first_order_at")),
        as_datetime(profile.get("last_order_at")),
        spent if isinstance(spent, Mapping) else {},
    )


def _overdue_terms(node: PurchaseOverdue, ctx: EvalContext) -> tuple[datetime, int, int] | None:
    """``(last_order_at, a, b)``: overdue exactly when ``elapsed * b > a``, ``elapsed`` being ``now -
    last_order_at`` in whole microseconds; None when the profile has no order (never overdue)."""
    count, first, last = orders_summary(ctx)[:3]
    if count < 1 or last is None:
        return None
    if count == 1:
        return last, node.default // MICROSECOND, 1
    if first is None:
        return None
    factor = Fraction(node.factor)  # exact: factor * span / (count - 1) as the fraction a / b
    return last, factor.numerator * ((last - first) // MICROSECOND), factor.denominator * (count - 1)


def overdue_after(node: PurchaseOverdue, ctx: EvalContext) -> datetime | None:
    """The last instant at which the profile's next order is not overdue (it is overdue at every
    instant after it); None when the profile has no order. Overdue, with ``n >= 2`` orders:
    ``(now - last) * (n - 1) > factor * (last - first)``; with one: ``now - last > default``; both in
    whole microseconds, with exact rational arithmetic."""
    terms = _overdue_terms(node, ctx)
    if terms is None:
        return None
    last, a, b = terms
    return last + timedelta(microseconds=a // b)


def _overdue(node: PurchaseOverdue, ctx: EvalContext) -> bool:
    terms = _overdue_terms(node, ctx)
    if terms is None:
        return False
    last, a, b = terms
    return ((utc(ctx.now) - last) // MICROSECOND) * b > a


def rfm_scores(ctx: EvalContext) -> dict[str, int] | None:
    """The profile's recency, frequency and monetary scores by the context's statistics; None
    without statistics or without an order."""
    stats = ctx.stats
    count, _, last, spent = orders_summary(ctx)
    if stats is None or count < 1 or last is None:
        return None
    monetary = as_decimal(spent.get(stats.currency)) or Decimal(0)
    return {
        "recency": recency_score(utc(ctx.now) - last, stats),
        "frequency": value_score(count, stats.frequency),
        "monetary": value_score(monetary, stats.monetary),
    }


def _top(node: TopPercent, ctx: EvalContext) -> bool:
    stats = ctx.stats
    count, _, _, spent = orders_summary(ctx)
    if stats is None or count < 1:
        return False
    cut = top_cut(stats, node.metric, node.percent)
    if cut is None:
        return False
    value = (as_decimal(spent.get(stats.currency)) or Decimal(0)) if node.metric == "monetary" else count
    return value >= cut


def evaluate_profile_node(node: InSegment | HasIdentity | PurchaseOverdue | Rfm | TopPercent, ctx: EvalContext) -> bool:
    """in_segment, identity, purchase_overdue, rfm or top for the context's profile."""
    now = utc(ctx.now)
    if isinstance(node, InSegment):
        data, profile_id = profile_data(ctx, "in_segment")
        return node.segment in data.segments_of(profile_id)
    if isinstance(node, HasIdentity):
        data, profile_id = profile_data(ctx, "identity")
        return node.identity in data.identity_kinds(profile_id)
    if isinstance(node, PurchaseOverdue):
        return _overdue(node, ctx)
    if isinstance(node, Rfm):
        scores = rfm_scores(ctx)
        return scores is not None and all(
            compare(score.op, scores[dimension], score.value, now) for dimension, score in node.scores
        )
    return _top(node, ctx)


__all__ = [
    "ITEM_TIME",
    "collection_items",
    "evaluate_collection",
    "evaluate_profile_node",
    "matching_items",
    "numeric_value",
    "orders_summary",
    "overdue_after",
    "profile_data",
    "rfm_scores",
    "window_bounds",
]
