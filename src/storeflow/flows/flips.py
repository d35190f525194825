"""When a condition's truth next changes by the passing of time alone: ``next_flip``.

A segment's time-relative conditions ("no order in the last 90 days", "birthday within 7 days") flip
at instants known in advance, if nothing else happens: the membership engine stores the earliest
one as a due row. The flip is the first of the instants at which some part of the condition can
change (the candidates below) at which the condition, evaluated from the data of now, differs from
now's truth. :func:`next_flip` finds it without evaluating the whole condition at every candidate:
each leaf of the and/or/not tree steps through its own candidates to its next change (a collection
whose ``where`` reads no clock from its items sorted by time, bisected, merged lazily with their
shifted copies), and the tree is evaluated only where a leaf changes: about ``n log n`` in a
profile's history instead of ``n²``.

Candidates (``+1µs``: the first microsecond after a strict or inclusive bound):

- a comparison ``within d`` on a value ``v``: ``v`` (it enters) and ``v + d + 1µs`` (it leaves);
  ``older_than d``: ``v + d + 1µs``; ``anniversary_within``: the starts of the store days on which
  the window of days reaches or leaves an anniversary (time zone aware, DST included);
- each item ``t`` of a collection: ``t`` (an item after now starts to count); ``t + d + 1µs`` for
  ``within d`` and ``before d`` windows; ``t + p + 1µs`` for first/last seen ``within`` or
  ``older_than p``; and the candidates of ``where``'s comparisons on the item;
- purchase_overdue: the first microsecond it is overdue; rfm: ``last_order_at + cut + 1µs`` for each
  recency cut point; in_segment, identity, top and RFM frequency and monetary do not change by time.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal, localcontext
from heapq import merge
from itertools import islice
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

from storeflow.clock import utc
from storeflow.errors import ConditionError
from storeflow.flows.collections_eval import (
    MICROSECOND,
    collection_items,
    numeric_value,
    orders_summary,
    overdue_after,
    seen_holds,
    window_bounds,
)
from storeflow.flows.conditions import (
    SOURCE_ROOTS,
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    CountAggregate,
    ExistsAggregate,
    FirstSeenAggregate,
    History,
    HistoryWindow,
    LastSeenAggregate,
    Not,
    PurchaseOverdue,
    Rfm,
    SumAggregate,
    ValueAggregate,
    iter_conditions,
)
from storeflow.flows.evaluate import EvalContext, HistoryPort, ProfileData, anniversary_on, compare, evaluate
from storeflow.flows.paths import resolve
from storeflow.flows.record_schema import declared_type, read_as
from storeflow.flows.values import as_datetime

_T = TypeVar("_T")
_RELATIVE_OPS: Final = frozenset({"within", "older_than", "anniversary_within"})
_Loaded = dict[tuple[str, str | None, str | None], list[tuple[datetime, Mapping[str, Any]]]]
"""A search's items of each collection (source, event type, channel), sorted by time."""
_EXACT: Final = Context(prec=1000)
"""As collections_eval's: sums of stored amounts are never rounded."""


def next_flip(condition: Condition, ctx: EvalContext, *, horizon: timedelta) -> datetime | None:
    """The earliest instant ``t`` with ``ctx.now < t <= ctx.now + horizon`` at which ``evaluate``
    with ``now=t`` differs from its value at ``ctx.now``, assuming no new data; None if there is none.
    The profile's data is read once (``ctx.data`` / ``ctx.history`` are wrapped in a cache).

    Each leaf of the and/or/not tree works out its own next change (the first of its candidates at
    which it differs), collections over a time-independent ``where`` by bisecting their sorted item
    times; the tree is evaluated only where a leaf changes (see :class:`_Search`). The answer is the
    first candidate at which the condition differs, as checking every candidate in order would find.
    """
    now = utc(ctx.now)
    end = now + horizon
    ctx = _cached(ctx, now, end)
    try:
        return _Search(condition, ctx, end).run()
    except ConditionError:  # a node the brute force might never have evaluated: let it decide
        return _by_every_candidate(condition, ctx, end)


def _cached(ctx: EvalContext, now: datetime, end: datetime) -> EvalContext:
    source = ctx.data if ctx.data is not None else ctx.history
    if isinstance(source, ProfileData):
        data = _CachedData(source, end)
        return replace(ctx, now=now, data=data, history=data)
    if source is not None:
        return replace(ctx, now=now, history=_CachedHistory(source, end))
    return replace(ctx, now=now)


def _by_every_candidate(condition: Condition, ctx: EvalContext, end: datetime) -> datetime | None:
    """The plain search: evaluate the whole condition at every candidate, in order."""
    now = utc(ctx.now)
    current = evaluate(condition, ctx)
    for candidate in sorted({c for c in candidates(condition, ctx, end) if now < c <= end}):
        if evaluate(condition, replace(ctx, now=candidate)) != current:
            return candidate
    return None


def candidates(condition: Condition, ctx: EvalContext, end: datetime) -> Iterator[datetime]:
    """Every instant up to ``end`` at which a part of ``condition`` may change its truth (a superset:
    :func:`next_flip` checks each). Instants before ``ctx.now`` may be among them."""
    if isinstance(condition, AllOf | AnyOf):
        for child in condition.conditions:
            yield from candidates(child, ctx, end)
    elif isinstance(condition, Not):
        yield from candidates(condition.condition, ctx, end)
    elif isinstance(condition, Comparison):
        yield from _comparison_candidates(condition, ctx, end)
    elif isinstance(condition, History):
        yield from _collection_candidates(condition, ctx, end)
    elif isinstance(condition, PurchaseOverdue):
        after = overdue_after(condition, ctx)
        if after is not None:
            yield after + MICROSECOND
    elif isinstance(condition, Rfm):
        last = orders_summary(ctx)[2]
        if ctx.stats is not None and last is not None and any(d == "recency" for d, _ in condition.scores):
            for cut in ctx.stats.recency:
                yield last + cut + MICROSECOND


def _comparison_candidates(node: Comparison, ctx: EvalContext, end: datetime) -> Iterator[datetime]:
    if node.op not in ("within", "older_than", "anniversary_within"):
        return
    path = node.path
    when = as_datetime(read_as(declared_type(path.root, path.segments), resolve(ctx.record, path)))
    if when is None:
        return
    if node.op == "within":
        yield when
    if node.op in ("within", "older_than"):
        yield when + node.value + MICROSECOND
        return
    yield from anniversary_candidates(when.date(), node.value, utc(ctx.now), end, ctx.store_tz)


def _collection_candidates(node: History, ctx: EvalContext, end: datetime) -> Iterator[datetime]:
    window, agg = node.window, node.aggregate
    shifts: list[timedelta] = []
    if window.within is not None:
        shifts.append(window.within)
    if isinstance(window.before, timedelta):
        shifts.append(window.before)
    if isinstance(agg, FirstSeenAggregate | LastSeenAggregate) and agg.period is not None:
        shifts.append(agg.period)
    root = SOURCE_ROOTS[node.source]
    for at, item in collection_items(node, ctx, None, end):
        yield at
        for shift in shifts:
            yield at + shift + MICROSECOND
        if node.where is not None:
            yield from candidates(node.where, replace(ctx, record={root: item}), end)


def anniversary_candidates(day: date, period: timedelta, now: datetime, end: datetime, tz: str) -> Iterator[datetime]:
    """The starts of the store days on which ``anniversary_within: period`` of ``day`` changes:
    the day the window first reaches an anniversary (``period.days - 1`` days before it) and the day
    after the anniversary, for the anniversaries near ``now .. end``."""
    zone = ZoneInfo(tz)
    first = now.astimezone(zone).date()
    last = end.astimezone(zone).date()
    reach = timedelta(days=max(period.days - 1, 0))
    for year in range(first.year - 1, (last + reach).year + 2):
        anniversary = anniversary_on(year, day)
        for start in (anniversary - reach, anniversary + timedelta(days=1)):
            if first <= start <= last:
                yield from day_starts(start, zone)


def day_starts(day: date, zone: ZoneInfo) -> Iterator[datetime]:
    """The instants (UTC) of local midnight starting ``day``: both readings when a clock change
    makes midnight ambiguous or skipped (the true start is one of them)."""
    for fold in (0, 1):
        yield datetime.combine(day, time(0), tzinfo=zone).replace(fold=fold).astimezone(UTC)


class _Leaf:
    """A node below the and/or/not tree: its value at an instant and its next change, the first of
    its candidates (:func:`candidates`) at which it differs (remembered while it stays the answer)."""

    def __init__(self, node: Condition, ctx: EvalContext, end: datetime) -> None:
        self.node, self.ctx, self.end = node, ctx, end
        self._instants: list[datetime] | None = None
        self._memo: tuple[datetime, datetime | None] | None = None
        self._last: tuple[datetime, bool] | None = None

    def value(self, at: datetime) -> bool:
        """The node's truth at ``at`` (the last one asked is remembered)."""
        if self._last is None or self._last[0] != at:
            self._last = (at, self.compute(at))
        return self._last[1]

    def compute(self, at: datetime) -> bool:
        return evaluate(self.node, replace(self.ctx, now=at))

    def following(self, after: datetime) -> Iterator[datetime]:
        """The node's candidates after ``after`` (up to the end), in order, each once."""
        if self._instants is None:
            now = self.ctx.now
            self._instants = sorted({c for c in candidates(self.node, self.ctx, self.end) if now < c <= self.end})
        return islice(self._instants, bisect_right(self._instants, after), None)

    def next_change(self, after: datetime) -> datetime | None:
        """The first candidate after ``after`` at which the node's truth differs from it at ``after``."""
        memo = self._memo
        if memo is not None and memo[0] <= after and (memo[1] is None or after < memo[1]):
            return memo[1]
        found, base = None, None
        for at in self.following(after):
            if base is None:
                base = self.value(after)
            if self.compute(at) != base:
                found = at
                break
        self._memo = (after, found)
        return found


class _Collection(_Leaf):
    """A collection whose ``where`` reads no clock: its matching items are fixed, sorted by time,
    and at an instant its window holds a range of them (found by bisection); the aggregate of a
    range is read off prefix sums. The same rules as collections_eval.evaluate_collection."""

    def __init__(self, node: History, ctx: EvalContext, end: datetime, loaded: _Loaded) -> None:
        super().__init__(node, ctx, end)
        self.history = node
        self.bounds = window_bounds(node, ctx)  # raises as evaluating would; fixed but for within/before
        self.upper = _fixed_upper(node.window)
        key = (node.source, node.event, node.channel)
        if key not in loaded:
            loaded[key] = sorted(collection_items(node, ctx, None, end), key=lambda pair: pair[0])
        items = loaded[key]
        if node.where is not None:
            where, root = node.where, SOURCE_ROOTS[node.source]
            items = [(t, item) for t, item in items if evaluate(where, replace(ctx, record={root: item}, history=None))]
        self.times = [t for t, _ in items]
        agg = node.aggregate
        self.values: list[Decimal | None] = []
        self.sums, self.counts = [Decimal(0)], [0]
        if isinstance(agg, SumAggregate | ValueAggregate):
            self.values = [numeric_value(agg.of, item) for _, item in items]
            with localcontext(_EXACT):
                for v in self.values:
                    self.sums.append(self.sums[-1] + (v if v is not None else 0))
                    self.counts.append(self.counts[-1] + (v is not None))

    def following(self, after: datetime) -> Iterator[datetime]:
        """The item times and the times shifted by the window's and the aggregate's periods (+1µs),
        after ``after``: sorted streams merged lazily, so a search reads only as far as it goes."""
        window, agg = self.history.window, self.history.aggregate
        shifts = [timedelta(0)] + [MICROSECOND + d for d in (window.within, window.before) if isinstance(d, timedelta)]
        if isinstance(agg, FirstSeenAggregate | LastSeenAggregate) and agg.period is not None:
            shifts.append(agg.period + MICROSECOND)
        streams = [_shifted(self.times, bisect_right(self.times, after - shift), shift) for shift in shifts]
        previous = None
        for at in merge(*streams):
            if at > self.end:
                return
            if at != previous:
                yield at
                previous = at

    def compute(self, at: datetime) -> bool:
        window, bounds = self.history.window, self.bounds
        if window.within is not None:
            bounds = (at - window.within, at)
        elif isinstance(window.before, timedelta):
            bounds = (None, min(at - window.before - MICROSECOND, at))
        elif bounds is not None:
            bounds = (bounds[0], at if self.upper is None else min(self.upper, at))
        i = j = 0
        if bounds is not None:
            lower, upper = bounds
            i = 0 if lower is None else bisect_left(self.times, lower)
            j = max(i, bisect_right(self.times, upper))
        return self._aggregate(i, j, utc(at))

    def _aggregate(self, i: int, j: int, now: datetime) -> bool:
        agg = self.history.aggregate
        if isinstance(agg, ExistsAggregate):
            return (j > i) is agg.value
        if isinstance(agg, CountAggregate):
            return compare(agg.op, j - i, agg.value, now)
        if isinstance(agg, ValueAggregate) and agg.kind in ("min", "max"):
            present = [v for v in self.values[i:j] if v is not None]
            extreme = (min(present) if agg.kind == "min" else max(present)) if present else None
            return compare(agg.op, extreme, agg.value, now)
        if isinstance(agg, SumAggregate | ValueAggregate):
            count = self.counts[j] - self.counts[i]
            if isinstance(agg, ValueAggregate) and count == 0:
                return compare(agg.op, None, agg.value, now)
            with localcontext(_EXACT):
                total = self.sums[j] - self.sums[i]
                expected = agg.value if isinstance(agg, SumAggregate) else agg.value * count
                return compare(agg.op, total, expected, now)
        if j == i:
            return agg.op in ("older_than", "before")
        return seen_holds(agg, self.times[i] if agg.kind == "first_seen" else self.times[j - 1], now)


def _shifted(times: list[datetime], start: int, shift: timedelta) -> Iterator[datetime]:
    for at in islice(times, start, None):
        yield at + shift


def _fixed_upper(window: HistoryWindow) -> datetime | None:
    """The window's upper bound when it does not move with now (before an instant, between), as
    collections_eval.window_bounds has it; None: now."""
    if isinstance(window.before, datetime):
        return utc(window.before) - MICROSECOND
    return utc(window.between[1]) if window.between is not None else None


def _time_free(condition: Condition) -> bool:
    """Whether a ``where`` reads no clock: comparisons with fixed operands under all/any/not."""
    return all(
        isinstance(node, AllOf | AnyOf | Not) or (isinstance(node, Comparison) and node.op not in _RELATIVE_OPS)
        for node in iter_conditions(condition)
    )


class _Search:
    """The next flip from the leaves' next changes: the condition can change only where a leaf
    does, so from ``now`` it steps to the earliest next change of any leaf and evaluates the tree
    there (short-circuiting as ``evaluate`` does), until the truth differs or no leaf changes."""

    def __init__(self, condition: Condition, ctx: EvalContext, end: datetime) -> None:
        self.condition, self.ctx, self.end = condition, ctx, end
        self.leaves: dict[int, _Leaf] = {}
        self.loaded: _Loaded = {}
        self._collect(condition)

    def _collect(self, node: Condition) -> None:
        if isinstance(node, AllOf | AnyOf):
            for child in node.conditions:
                self._collect(child)
        elif isinstance(node, Not):
            self._collect(node.condition)
        elif isinstance(node, History) and (node.where is None or _time_free(node.where)):
            self.leaves[id(node)] = _Collection(node, self.ctx, self.end, self.loaded)
        else:
            self.leaves[id(node)] = _Leaf(node, self.ctx, self.end)

    def value(self, node: Condition, at: datetime) -> bool:
        if isinstance(node, AllOf):
            return all(self.value(child, at) for child in node.conditions)
        if isinstance(node, AnyOf):
            return any(self.value(child, at) for child in node.conditions)
        if isinstance(node, Not):
            return not self.value(node.condition, at)
        return self.leaves[id(node)].value(at)

    def run(self) -> datetime | None:
        at = utc(self.ctx.now)
        current = self.value(self.condition, at)
        while True:
            changes = [c for c in (leaf.next_change(at) for leaf in self.leaves.values()) if c is not None]
            if not changes:
                return None
            at = min(changes)
            if self.value(self.condition, at) != current:
                return at


class _CachedHistory:
    """A history port's events read once per type for a next-flip search (up to ``end``)."""

    def __init__(self, port: HistoryPort, end: datetime) -> None:
        self.port, self.end = port, end
        self._memo: dict[tuple[Any, ...], Any] = {}

    def _once(self, key: tuple[Any, ...], load: Callable[[], _T]) -> _T:
        if key not in self._memo:
            self._memo[key] = load()
        found: _T = self._memo[key]
        return found

    def events(
        self, profile_id: str, event_type: str, since: datetime | None, until: datetime
    ) -> Sequence[Mapping[str, Any]]:
        loaded = self._once(("events", profile_id, event_type),
                            lambda: self.port.events(profile_id, event_type, None, self.end))  # fmt: skip
        return [e for e in loaded if _between(as_datetime(e.get("occurred_at")), since, until)]


class _CachedData(_CachedHistory):
    """A ProfileData read once for a next-flip search."""

    def __init__(self, port: ProfileData, end: datetime) -> None:
        super().__init__(port, end)
        self.data = port

    def orders(self, profile_id: str) -> Sequence[Mapping[str, Any]]:
        return self._once(("orders", profile_id), lambda: self.data.orders(profile_id))

    def carts(self, profile_id: str) -> Sequence[Mapping[str, Any]]:
        return self._once(("carts", profile_id), lambda: self.data.carts(profile_id))

    def messages(self, profile_id: str, channel: str | None) -> Sequence[Mapping[str, Any]]:
        return self._once(("messages", profile_id, channel), lambda: self.data.messages(profile_id, channel))

    def identity_kinds(self, profile_id: str) -> frozenset[str]:
        return self._once(("identities", profile_id), lambda: self.data.identity_kinds(profile_id))

    def segments_of(self, profile_id: str) -> frozenset[str]:
        return self._once(("segments", profile_id), lambda: self.data.segments_of(profile_id))


def _between(at: datetime | None, since: datetime | None, until: datetime) -> bool:
    return at is not None and (since is None or since <= at) and at <= until


__all__ = ["anniversary_candidates", "candidates", "day_starts", "next_flip"]
