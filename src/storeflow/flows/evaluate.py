"""Evaluating conditions on records.

The rules are docs/flows.md's "Comparison semantics", in short: a value is read through its declared
type (record_schema.py), so money is an exact Decimal and a date-time an aware UTC instant; a missing
value (None, or one that does not fit its type) makes every comparison false except ``exists: false``
and the negations ``ne``, ``not_in``, ``not_contains``, which are exactly ``not`` of eq, in, contains.
Free values (``any``: properties) compare by their own type: numbers (and numeric text against a
number, always for gt/gte/lt/lte) as exact decimals, dates and date-times as instants, text exactly.
Values of types that cannot be compared make the comparison false. History conditions ask a
:class:`HistoryPort` for the profile's past events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, Protocol

from storeflow.clock import utc
from storeflow.errors import ConditionError, Problem
from storeflow.flows.conditions import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    CountAggregate,
    ExistsAggregate,
    History,
    LastSeenAggregate,
    Not,
    SumAggregate,
)
from storeflow.flows.paths import resolve
from storeflow.flows.record_schema import declared_type, read_as
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


@dataclass(frozen=True)
class EvalContext:
    record: Mapping[str, Any]
    """Root name -> record dict or None: event, profile, order, cart, product, run."""
    now: datetime
    history: HistoryPort | None = None
    profile_id: str | None = None
    flow_started_at: datetime | None = None
    trigger_at: datetime | None = None


def evaluate(condition: Condition, ctx: EvalContext) -> bool:
    """True when ``condition`` holds for ``ctx``. Raises ConditionError when it cannot be evaluated
    (a history condition without a history port or profile, or without the anchor of its ``since``)."""
    if isinstance(condition, Comparison):
        path = condition.path
        actual = read_as(declared_type(path.root, path.segments), resolve(ctx.record, path))
        return compare(condition.op, actual, condition.value, utc(ctx.now))
    if isinstance(condition, AllOf):
        return all(evaluate(child, ctx) for child in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(evaluate(child, ctx) for child in condition.conditions)
    if isinstance(condition, Not):
        return not evaluate(condition.condition, ctx)
    return _evaluate_history(condition, ctx)


def compare(op: str, actual: Any, expected: Any, now: datetime) -> bool:
    """Apply one comparison operator: ``actual`` comes from the record, ``expected`` from the flow."""
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
    return _compare_time(op, actual, expected, now)


def _compare_time(op: str, actual: Any, expected: Any, now: datetime) -> bool:
    when = as_datetime(actual)
    if when is None:
        return False
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


# --- history ---------------------------------------------------------------------------------


def _fail(message: str, hint: str | None = None) -> ConditionError:
    return ConditionError([Problem(path="history", message=message, hint=hint)])


def history_since(node: History, ctx: EvalContext) -> datetime | None:
    """The start of the history window of ``node`` in ``ctx`` (None = all time)."""
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
    return None


def _evaluate_history(node: History, ctx: EvalContext) -> bool:
    if ctx.history is None or ctx.profile_id is None:
        raise _fail(
            f'cannot evaluate a history condition on "{node.event}" without a profile and its history',
            "history conditions work in flows that run for a profile",
        )
    now = utc(ctx.now)
    events = ctx.history.events(ctx.profile_id, node.event, history_since(node, ctx), now)
    if node.where is not None:
        where = node.where
        events = [event for event in events if evaluate(where, _historic_context(ctx, event))]
    agg = node.aggregate
    if isinstance(agg, ExistsAggregate):
        return bool(events) is agg.value
    if isinstance(agg, CountAggregate):
        return compare(agg.op, len(events), agg.value, now)
    if isinstance(agg, SumAggregate):
        total = Decimal(0)
        for event in events:
            amount = as_decimal(resolve({"event": event}, agg.of))
            if amount is not None:
                total += amount
        return compare(agg.op, total, agg.value, now)
    return _last_seen(agg, events, now)


def _historic_context(ctx: EvalContext, event: Mapping[str, Any]) -> EvalContext:
    return replace(ctx, record={"event": event}, history=None)


def _last_seen(agg: LastSeenAggregate, events: Sequence[Mapping[str, Any]], now: datetime) -> bool:
    times = [t for t in (as_datetime(event.get("occurred_at")) for event in events) if t is not None]
    if not times:
        return agg.op == "older_than"
    latest = max(times)
    cutoff = now - agg.period
    return latest >= cutoff if agg.op == "within" else latest < cutoff


__all__ = ["EvalContext", "HistoryPort", "compare", "evaluate", "history_since", "values_equal"]
