"""When a condition's truth next changes by the passing of time alone: ``next_flip``.

A segment's time-relative conditions ("no order in the last 90 days", "birthday within 7 days") flip
at instants known in advance, if nothing else happens: the membership engine stores the earliest
one as a due row. :func:`next_flip` lists every instant at which some part of the condition can
change (the candidates below) and evaluates the condition at each, in order, from the data of now;
the first at which its truth differs from now's is the flip.

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

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from storeflow.clock import utc
from storeflow.flows.collections_eval import MICROSECOND, collection_items, orders_summary, overdue_after
from storeflow.flows.conditions import (
    SOURCE_ROOTS,
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    FirstSeenAggregate,
    History,
    LastSeenAggregate,
    Not,
    PurchaseOverdue,
    Rfm,
)
from storeflow.flows.evaluate import EvalContext, HistoryPort, ProfileData, anniversary_on, evaluate
from storeflow.flows.paths import resolve
from storeflow.flows.record_schema import declared_type, read_as
from storeflow.flows.values import as_datetime

_T = TypeVar("_T")


def next_flip(condition: Condition, ctx: EvalContext, *, horizon: timedelta) -> datetime | None:
    """The earliest instant ``t`` with ``ctx.now < t <= ctx.now + horizon`` at which ``evaluate``
    with ``now=t`` differs from its value at ``ctx.now``, assuming no new data; None if there is none.
    The profile's data is read once (``ctx.data`` / ``ctx.history`` are wrapped in a cache)."""
    now = utc(ctx.now)
    end = now + horizon
    source = ctx.data if ctx.data is not None else ctx.history
    if isinstance(source, ProfileData):
        data = _CachedData(source, end)
        ctx = replace(ctx, now=now, data=data, history=data)
    elif source is not None:
        ctx = replace(ctx, now=now, history=_CachedHistory(source, end))
    else:
        ctx = replace(ctx, now=now)
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
