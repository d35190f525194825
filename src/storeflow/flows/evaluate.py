"""Evaluating conditions on records.

The rules are docs/flows.md's "Comparison semantics", in short: a value is read through its declared
type (record_schema.py), so money is an exact Decimal and a date-time an aware UTC instant; a missing
value (None, or one that does not fit its type) makes every comparison false except ``exists: false``
and the negations ``ne``, ``not_in``, ``not_contains``, which are exactly ``not`` of eq, in, contains.
Free values (``any``: properties) compare by their own type: numbers (and numeric text against a
number, always for gt/gte/lt/lte) as exact decimals, dates and date-times as instants, text exactly.
Values of types that cannot be compared make the comparison false. History conditions ask a
:class:`HistoryPort` for the profile's past events; the collection and profile conditions of segments
(orders, carts, messages, in_segment, identity, purchase_overdue, rfm, top) a :class:`ProfileData`
(collections_eval.py; the exact rules are docs/segments.md's "The condition language").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from storeflow.clock import utc
from storeflow.errors import ConditionError, Problem
from storeflow.flows.conditions import AllOf, AnyOf, Comparison, Condition, History, Not
from storeflow.flows.paths import resolve
from storeflow.flows.record_schema import declared_type, read_as
from storeflow.flows.segment_stats import SegmentStats
from storeflow.flows.values import as_datetime, as_decimal, is_number

_NEGATIONS: Final = frozenset({"ne", "not_in", "not_contains"})
"""The operators that are the negation of another (eq, in, contains): true on a missing value."""


class HistoryPort(Protocol):
    def events(
        self, profile_id: str, event_type: str, since: datetime | None, until: datetime
    ) -> Sequence[Mapping[str, Any]]:
        """The profile's events of ``event_type`` with ``since <= occurred_at <= until`` (no lower
        bound when ``since`` is None), as dicts with keys id, type, occurred_at (datetime), properties."""
        ...


@runtime_checkable
class ProfileData(HistoryPort, Protocol):
    """What the collection and profile conditions of segments read about one profile. Every method
    answers the profile's whole data; the evaluator picks the items by time (an item after
    ``now`` never counts, so a condition can be evaluated "as of" an instant)."""

    def orders(self, profile_id: str) -> Sequence[Mapping[str, Any]]:
        """Every order of the profile as ``order`` records (engine.records.order_record, with the
        derived fields categories and product_tags read from the products)."""
        ...

    def carts(self, profile_id: str) -> Sequence[Mapping[str, Any]]:
        """Every cart of the profile as ``cart`` records."""
        ...

    def messages(self, profile_id: str, channel: str | None) -> Sequence[Mapping[str, Any]]:
        """The messages sent to the profile (on ``channel``; every channel for None) as ``message`` records."""
        ...

    def identity_kinds(self, profile_id: str) -> frozenset[str]:
        """The kinds of the profile's identities (email, phone, customer_id, ...)."""
        ...

    def segments_of(self, profile_id: str) -> frozenset[str]:
        """The segments the profile is a current member of."""
        ...


@dataclass(frozen=True)
class EvalContext:
    record: Mapping[str, Any]
    """Root name -> record dict or None: event, profile, order, cart, product, run."""
    now: datetime
    history: HistoryPort | None = None
    profile_id: str | None = None
    flow_started_at: datetime | None = None
    trigger_at: datetime | None = None
    data: ProfileData | None = None
    """The profile's collections, identities and memberships; None: ``history`` when it is a
    ProfileData too, else collection and profile conditions cannot be evaluated (ConditionError)."""
    stats: SegmentStats | None = None
    """The store's segment statistics; None: every rfm and top condition is false."""
    store_tz: str = "UTC"
    """The store's time zone (IANA name): ``anniversary_within`` counts days in it."""


def evaluate(condition: Condition, ctx: EvalContext) -> bool:
    """True when ``condition`` holds for ``ctx``. Raises ConditionError when it cannot be evaluated
    (a history condition without a history port or profile, or without the anchor of its ``since``;
    a collection or profile condition without profile data)."""
    if isinstance(condition, Comparison):
        path = condition.path
        actual = read_as(declared_type(path.root, path.segments), resolve(ctx.record, path))
        return compare(condition.op, actual, condition.value, utc(ctx.now), ctx.store_tz)
    if isinstance(condition, AllOf):
        return all(evaluate(child, ctx) for child in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(evaluate(child, ctx) for child in condition.conditions)
    if isinstance(condition, Not):
        return not evaluate(condition.condition, ctx)
    from storeflow.flows import collections_eval  # it imports this module

    if isinstance(condition, History):
        return collections_eval.evaluate_collection(condition, ctx)
    return collections_eval.evaluate_profile_node(condition, ctx)


def compare(op: str, actual: Any, expected: Any, now: datetime, store_tz: str = "UTC") -> bool:
    """Apply one comparison operator: ``actual`` comes from the record, ``expected`` from the flow.
    ``store_tz`` is the time zone ``anniversary_within`` counts days in."""
    if op == "exists":
        return (actual is not None) is bool(expected)
    if actual is None:
        return op in _NEGATIONS
    if op == "eq":
        return values_equal(actual, expected)
    if op == "ne":
        return not values_equal(actual, expected)
    if op in ("gt", "gte", "lt", "lte"):
        order = _order(actual, expected)
        if order is None:
            return False
        return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]
    if op == "in":
        return _in(actual, expected)
    if op == "not_in":
        return not _in(actual, expected)
    if op == "contains":
        return _contains(actual, expected)
    if op == "not_contains":
        return not _contains(actual, expected)
    if op == "starts_with":
        return isinstance(actual, str) and isinstance(expected, str) and actual.startswith(expected)
    return _compare_time(op, actual, expected, now, store_tz)


def _compare_time(op: str, actual: Any, expected: Any, now: datetime, store_tz: str) -> bool:
    when = as_datetime(actual)
    if when is None:
        return False
    if op == "anniversary_within":
        return anniversary_within(when.date(), expected, store_today(now, store_tz))
    if op == "within":
        return bool(now - expected <= when <= now)
    if op == "older_than":
        return bool(when < now - expected)
    if op == "before":
        return bool(when < expected)
    if op == "after":
        return bool(when > expected)
    raise ValueError(f"unknown operator {op!r}")


def values_equal(a: Any, b: Any) -> bool:
    """Equality with the comparison rules (exact decimals, aware date-times, bools only equal bools)."""
    if a is None or b is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) or is_number(b):
        da, db = as_decimal(a), as_decimal(b)
        return da is not None and db is not None and da == db
    if isinstance(a, date) or isinstance(b, date):
        ta, tb = as_datetime(a), as_datetime(b)
        return ta is not None and tb is not None and ta == tb
    return bool(a == b)


def _order(a: Any, b: Any) -> int | None:
    """-1, 0 or 1 comparing a with b; None when they cannot be ordered."""
    if isinstance(a, bool) or isinstance(b, bool):
        return None
    da, db = as_decimal(a), as_decimal(b)
    if da is not None and db is not None:
        return (da > db) - (da < db)
    ta, tb = as_datetime(a), as_datetime(b)
    if ta is not None and tb is not None:
        return (ta > tb) - (ta < tb)
    return None


def _in(actual: Any, options: Any) -> bool:
    if isinstance(actual, list | tuple):
        return any(_in(item, options) for item in actual)
    return any(values_equal(actual, option) for option in options)


def _contains(actual: Any, needle: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(needle, str) and needle in actual
    if isinstance(actual, Mapping):
        return needle in actual
    if isinstance(actual, list | tuple):
        return any(values_equal(item, needle) for item in actual)
    return False


# --- anniversaries --------------------------------------------------------------------------


def store_today(now: datetime, store_tz: str) -> date:
    """The date of ``now`` in the store's time zone."""
    return utc(now).astimezone(ZoneInfo(store_tz)).date()


def anniversary_on(year: int, day: date) -> date:
    """The anniversary of ``day`` (its month and day) in ``year``; 29 February is 28 February in
    a year that is not a leap year."""
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 2, 28)


def anniversary_within(day: date, period: timedelta, today: date) -> bool:
    """Whether an anniversary of ``day`` falls on one of the ``period.days`` days starting ``today``
    (today .. today + days - 1; ``1d`` is today only, ``7d`` today and the next 6 days)."""
    days = period.days
    if days < 1:
        return False
    last = today + timedelta(days=days - 1)
    return any(today <= anniversary_on(year, day) <= last for year in range(today.year, last.year + 1))


# --- history ---------------------------------------------------------------------------------


def _fail(message: str, hint: str | None = None) -> ConditionError:
    return ConditionError([Problem(path="history", message=message, hint=hint)])


def history_since(node: History, ctx: EvalContext) -> datetime | None:
    """The start of the history window of ``node`` in ``ctx`` (None = all time, or a start that
    depends on the profile: ``first_order``)."""
    window = node.window
    if window.within is not None:
        return utc(ctx.now) - window.within
    if window.since == "flow_start":
        if ctx.flow_started_at is None:
            raise _fail("since: flow_start needs the time the run started", "pass flow_started_at")
        return utc(ctx.flow_started_at)
    if window.since == "trigger":
        if ctx.trigger_at is None:
            raise _fail("since: trigger needs the time of the trigger", "pass trigger_at")
        return utc(ctx.trigger_at)
    if isinstance(window.since, datetime):
        return utc(window.since)
    if window.between is not None:
        return utc(window.between[0])
    return None


__all__ = [
    "EvalContext",
    "HistoryPort",
    "ProfileData",
    "anniversary_on",
    "anniversary_within",
    "compare",
    "evaluate",
    "history_since",
    "store_today",
    "values_equal",
]
