"""A stored value as the Python evaluator sees it, in SQL: its *facets*, and comparisons over them.

``storeflow.flows.evaluate`` compares a value by its run-time type: a number, a text, a true/false, a
date-time object, a list or a mapping. A stored value may be any of several (free data: any JSON
type; a declared field: one type or missing), so in SQL a value is a :class:`Facets`: for each type
it can have, the predicate that it has that type and the SQL that reads it as such. :func:`compare`
applies ``evaluate.compare``'s rules facet by facet, exactly (see docs/flows.md, "Comparison
semantics", and docs/segments.md for what SQL reads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, literal, not_, or_, select, true

from storeflow.flows.values import as_datetime, as_decimal, is_number
from storeflow.segments.sql_values import Bool, Dialect, Expr, Json, any_true, truth, when

NEGATIONS = {"ne": "eq", "not_in": "in", "not_contains": "contains"}


class UnsupportedCondition(ValueError):
    """A condition the SQL compiler cannot express exactly (see docs/segments.md)."""


@dataclass(frozen=True)
class Facets:
    """The SQL reading of one value. A facet left None never applies (the value never has that type)."""

    present: Bool
    number_is: Bool | None = None
    number_cmp: Callable[[Decimal], Expr] | None = None  # -1 / 0 / 1 against an exact decimal
    text_is: Bool | None = None
    text: Expr | None = None
    bool_is: Callable[[bool], Bool] | None = None  # the value is this true/false
    instant_is: Bool | None = None  # a date-time object (declared date-time fields)
    instant: Expr | None = None  # compared with instant_literal(an aware datetime)
    instant_literal: Callable[[datetime], Expr] | None = None
    items: Callable[[], tuple[Any, Facets]] | None = None  # a list: (table to select from, its item)
    list_is: Bool | None = None
    has_key: Callable[[str], Bool] | None = None  # a mapping having the key
    # For SUM/MIN/MAX: exact numeric (PostgreSQL), scaled integer (SQLite). Built on demand: the
    # numeric parse of free JSON is large, and only aggregates read it.
    number_value: Callable[[], Expr] | None = None
    source: Any = None  # a one-row table the facets read (Json.materialized); None: plain expressions
    first: Callable[[], Facets] | None = None  # a derived list's first item (``.0``)
    d: Dialect | None = field(default=None)


MISSING_PRESENT: Bool = false()


def missing() -> Facets:
    return Facets(present=false())


def _is_text_number(value: Any) -> bool:
    return isinstance(value, str) and as_decimal(value) is not None


def _cmp_true(cmp: Expr, op: str) -> Bool:
    return {"eq": cmp == 0, "gt": cmp > 0, "gte": cmp >= 0, "lt": cmp < 0, "lte": cmp <= 0}[op]


def numeric_text_cmp(d: Dialect, text: Expr, value: Decimal, op: str) -> Bool:
    """Text that is a decimal number (surrounding whitespace ignored) ``op`` ``value``; else false."""
    def build(valid: Bool, neg: Bool, sig: Expr, exp: Expr) -> Expr:
        return when(valid, _cmp_true(d._decimal_cmp(neg, sig, exp, value), op), false())

    return d.number(text, build)


def date_text_cmp(d: Dialect, text: Expr, at: datetime, op: str) -> Bool:
    """Date or date-time text (surrounding whitespace ignored) ``op`` the instant ``at``; else false."""
    def build(valid: Bool, instant: Expr) -> Expr:
        return when(valid, _instant_cmp(instant, op, d.instant_literal(at)), false())

    return d.date_text(text, build)


def number_order(d: Dialect, f: Facets, op: str, value: Decimal) -> Bool:
    """The value as an exact decimal (a number, or numeric text) ``op`` ``value``."""
    parts: list[Bool] = []
    if f.number_is is not None and f.number_cmp is not None:
        parts.append(when(f.number_is, _cmp_true(f.number_cmp(value), op), false()))
    if f.text_is is not None and f.text is not None:
        parts.append(when(f.text_is, numeric_text_cmp(d, f.text, value, op), false()))
    return any_true(*parts)


def instant_order(d: Dialect, f: Facets, op: str, at: datetime) -> Bool:
    """The value as an instant (a date-time, or date text) ``op`` ``at``."""
    parts: list[Bool] = []
    if f.instant_is is not None and f.instant is not None and f.instant_literal is not None:
        parts.append(and_(f.instant_is, _instant_cmp(f.instant, op, f.instant_literal(at.astimezone(UTC)))))
    if f.text_is is not None and f.text is not None:
        parts.append(when(f.text_is, date_text_cmp(d, f.text, at, op), false()))
    return any_true(*parts)


def _instant_cmp(left: Expr, op: str, right: Expr) -> Bool:
    return {"eq": left == right, "gt": left > right, "gte": left >= right, "lt": left < right,
            "lte": left <= right}[op]


def equals(d: Dialect, f: Facets, expected: Any) -> Bool:
    """``values_equal(value, expected)``."""
    if expected is None:
        return false()
    if isinstance(expected, bool):
        return f.bool_is(expected) if f.bool_is is not None else false()
    if is_number(expected):
        value = as_decimal(expected)
        return false() if value is None else number_order(d, f, "eq", value)
    if isinstance(expected, date):
        when_ = as_datetime(expected)
        return false() if when_ is None else instant_order(d, f, "eq", when_)
    if isinstance(expected, str):
        parts: list[Bool] = []
        numeric = as_decimal(expected)
        if numeric is not None and f.number_is is not None and f.number_cmp is not None:
            parts.append(when(f.number_is, f.number_cmp(numeric) == 0, false()))
        if f.text_is is not None and f.text is not None:
            parts.append(and_(f.text_is, d.text_eq(f.text, expected)))
        if f.instant_is is not None and f.instant is not None and f.instant_literal is not None:
            instant = as_datetime(expected)
            if instant is not None:
                parts.append(and_(f.instant_is, f.instant == f.instant_literal(instant)))
        return any_true(*parts)
    raise UnsupportedCondition(f"comparing with {type(expected).__name__} {expected!r} is not supported in SQL")


def order(d: Dialect, f: Facets, op: str, expected: Any) -> Bool:
    """``_order(value, expected)`` then ``op`` (gt, gte, lt, lte)."""
    if isinstance(expected, bool) or expected is None:
        return false()
    value = as_decimal(expected)
    if value is not None:
        return number_order(d, f, op, value)
    at = as_datetime(expected)
    if at is not None:
        return instant_order(d, f, op, at)
    return false()


def _in(d: Dialect, f: Facets, options: Any) -> Bool:
    scalar = any_true(*(equals(d, f, option) for option in options))
    if f.items is None or f.list_is is None:
        return scalar
    table, item = f.items()
    listed = select(literal(1)).select_from(table).where(any_true(*(equals(d, item, o) for o in options))).exists()
    return case((f.list_is, listed), else_=scalar)


def _contains(d: Dialect, f: Facets, needle: Any) -> Bool:
    parts: list[Bool] = []
    if f.text_is is not None and f.text is not None and isinstance(needle, str):
        parts.append(and_(f.text_is, d.text_contains(f.text, needle)))
    if f.has_key is not None and isinstance(needle, str):
        parts.append(f.has_key(needle))
    if f.items is not None and f.list_is is not None:
        table, item = f.items()
        parts.append(and_(f.list_is, select(literal(1)).select_from(table).where(equals(d, item, needle)).exists()))
    return any_true(*parts)


def _within(d: Dialect, f: Facets, op: str, period: timedelta, now: datetime) -> Bool:
    if op == "within":
        return and_(instant_order(d, f, "gte", now - period), instant_order(d, f, "lte", now))
    return instant_order(d, f, "lt", now - period)


def scoped(f: Facets, predicate: Bool) -> Bool:
    """``predicate`` over ``f`` read from its one-row source, if it has one."""
    if f.source is None:
        return predicate
    return select(literal(1)).select_from(f.source).where(predicate).exists()


def compare(d: Dialect, f: Facets, op: str, expected: Any, now: datetime) -> Bool:
    """``evaluate.compare(op, value, expected, now)`` as a two-valued SQL predicate."""
    return scoped(f, _compare(d, f, op, expected, now))


def _compare(d: Dialect, f: Facets, op: str, expected: Any, now: datetime) -> Bool:
    if op == "exists":
        return truth(f.present) if bool(expected) else not_(truth(f.present))
    if op in NEGATIONS:
        return not_(truth(positive(d, f, NEGATIONS[op], expected, now)))
    return truth(positive(d, f, op, expected, now))


def positive(d: Dialect, f: Facets, op: str, expected: Any, now: datetime) -> Bool:
    """The positive operators (every one but exists and the negations); may be NULL for false."""
    if op == "eq":
        return equals(d, f, expected)
    if op in ("gt", "gte", "lt", "lte"):
        return order(d, f, op, expected)
    if op == "in":
        return _in(d, f, expected)
    if op == "contains":
        return _contains(d, f, expected)
    if op == "starts_with":
        if f.text_is is None or f.text is None or not isinstance(expected, str):
            return false()
        return and_(f.text_is, d.text_starts_with(f.text, expected))
    if op in ("within", "older_than"):
        return _within(d, f, op, expected, now)
    if op == "before":
        return instant_order(d, f, "lt", expected)
    if op == "after":
        return instant_order(d, f, "gt", expected)
    raise UnsupportedCondition(f"operator {op!r} is not supported in SQL")


# --- facets of stored values ---------------------------------------------------------------------


def json_facets(j: Json, kind: str, item_kind: str | None = None) -> Facets:
    """A JSON value read through its declared kind (``any`` for free data)."""
    d = j.d
    if kind == "any":
        return Facets(
            present=j.is_present(), number_is=j.is_number(), number_cmp=j.number_cmp,
            text_is=j.is_string(), text=j.text(), bool_is=j.bool_is,
            items=lambda: _json_items(j, "any"), list_is=j.is_array(), has_key=j.has_key,
            number_value=lambda: _json_number_value(j), d=d,
        )
    if kind == "string":
        return Facets(present=j.is_string(), text_is=j.is_string(), text=j.text(), d=d)
    if kind == "boolean":
        return Facets(present=j.is_bool(), bool_is=j.bool_is, d=d)
    if kind in ("integer", "decimal", "number"):
        numeric_text = when(j.is_string(), d.is_numeric(j.text()), false())

        def cmp(value: Decimal) -> Expr:
            return case((j.is_number(), j.number_cmp(value)), (j.is_string(), d.decimal_cmp(j.text(), value)))

        return Facets(present=or_(j.is_number(), numeric_text), number_is=or_(j.is_number(), numeric_text),
                      number_cmp=cmp, number_value=lambda: _json_number_value(j), d=d)
    if kind in ("datetime", "date"):
        ok = when(j.is_string(), d.date_text(j.text(), lambda valid, _: valid), false())
        instant = when(j.is_string(), d.date_text(j.text(), when))
        return Facets(present=ok, instant_is=ok, instant=instant, instant_literal=d.instant_literal, d=d)
    if kind == "list":
        return Facets(present=j.is_array(), items=lambda: _json_items(j, item_kind or "any"), list_is=j.is_array(),
                      d=d)
    if kind == "map":
        return Facets(present=j.is_object(), has_key=j.has_key, d=d)
    return Facets(present=j.is_object(), d=d)


def _json_number_value(j: Json) -> Expr:
    """``as_decimal`` of a JSON value (a number, or numeric text) for aggregates; NULL otherwise."""
    d = j.d

    return case((j.is_number(), d.scaled(j.number_text())), (j.is_string(), d.scaled(j.text())))


def _json_items(j: Json, kind: str) -> tuple[Any, Facets]:
    table, item = j.items()
    return table, json_facets(item, kind)


def text_column(d: Dialect, column: Expr) -> Facets:
    return Facets(present=column.is_not(None), text_is=column.is_not(None), text=column, d=d)


def int_column(d: Dialect, column: Expr) -> Facets:
    def cmp(value: Decimal) -> Expr:
        return integer_cmp(column, value)

    return Facets(present=column.is_not(None), number_is=column.is_not(None), number_cmp=cmp,
                  number_value=lambda: d.scaled_integer(column), d=d)


def integer_cmp(column: Expr, value: Decimal) -> Expr:
    """-1, 0 or 1 comparing an integer column with an exact decimal (no float)."""
    floor = int(value.to_integral_value(rounding="ROUND_FLOOR"))
    if value == floor:
        return case((column > floor, 1), (column < floor, -1), else_=0)
    return case((column > floor, 1), else_=-1)


def time_column(d: Dialect, column: Expr) -> Facets:
    def lit(at: datetime) -> Expr:
        return literal(at, column.type)

    return Facets(present=column.is_not(None), instant_is=column.is_not(None), instant=column,
                  instant_literal=lit, d=d)


def bool_column(d: Dialect, column: Expr) -> Facets:
    def is_(value: bool) -> Bool:
        return column == value if value else column == False  # noqa: E712

    return Facets(present=column.is_not(None), bool_is=is_, d=d)


def constant_true() -> Bool:
    return true()


def is_column(value: Any) -> bool:
    return isinstance(value, ColumnElement)


__all__ = [
    "Facets",
    "UnsupportedCondition",
    "bool_column",
    "compare",
    "equals",
    "int_column",
    "integer_cmp",
    "json_facets",
    "missing",
    "order",
    "positive",
    "text_column",
    "time_column",
]
