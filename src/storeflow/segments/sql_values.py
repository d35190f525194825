"""Typed access to stored values in SQL, per dialect (SQLite and PostgreSQL), for the segment compiler.

The rules are docs/flows.md's "Comparison semantics" as ``storeflow.flows.evaluate`` applies them;
this module gives the SQL pieces that read a stored value the way the Python evaluator reads it:

- JSON fragments (:class:`Json`): free data (``properties``) and JSON columns, stepped through by key
  or list position as ``storeflow.flows.paths.resolve`` does, with their JSON type;
- exact decimal comparison of numeric text (:meth:`Dialect.decimal_cmp`): the text is split into
  sign, significant digits and decimal exponent with string functions, so that no float is ever
  involved (SQLite has no decimal type) and no text can make a cast fail (PostgreSQL);
- date and date-time text (:meth:`Dialect.date_text_instant`): the ISO 8601 forms
  ``YYYY-MM-DD`` and ``YYYY-MM-DD[T ]HH:MM[:SS[.fraction]][Z|±HH:MM]`` (see docs/segments.md for
  the forms SQL reads) as a UTC instant: the canonical text ``YYYY-MM-DD HH:MM:SS.ffffff`` on SQLite
  (the format stored date-times have there), a ``timestamptz`` on PostgreSQL.

Every predicate built here may be NULL where the Python rule is false; callers wrap positive
comparisons in ``COALESCE(..., FALSE)`` (:func:`truth`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    Numeric,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

SQL_WHITESPACE: Final = " \t\n\r\x0b\x0c"
"""The whitespace numeric and date text may be surrounded with (ASCII; see docs/segments.md)."""

_PG_NUMERIC_RE: Final = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_PG_SUMMABLE_RE: Final = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?$"
"""Numeric text PostgreSQL sums as ``numeric`` (an exponent of at most 4 digits: within its range)."""
_PG_DATE_RE: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
SCALE: Final = 9
"""SQLite aggregates numbers as integers in units of 10^-SCALE (see Dialect.scaled)."""
_EXP_CLAMP: Final = 10**15
"""Exponents of numeric text beyond this are clamped (they order the same against any operand)."""

Bool = ColumnElement[bool]
Expr = ColumnElement[Any]


def cat(*parts: Any) -> Expr:
    """Text concatenation (``||``) of SQL expressions and Python strings."""
    result: Expr = parts[0] if isinstance(parts[0], ColumnElement) else literal(parts[0], Text)
    for part in parts[1:]:
        result = result.op("||", return_type=Text)(part if isinstance(part, ColumnElement) else literal(part, Text))
    return result


def when(condition: Bool, then: Any, otherwise: Any = None) -> Expr:
    """``CASE WHEN condition THEN then ELSE otherwise END``: evaluates ``then`` only when the condition
    holds (PostgreSQL may evaluate both sides of AND, and a cast of bad text fails the query)."""
    return case((condition, then), else_=otherwise)


def truth(predicate: Bool) -> Bool:
    """``COALESCE(predicate, FALSE)``: two-valued logic."""
    return func.coalesce(predicate, false())


def utc_text(when: datetime) -> str:
    """An aware instant as SQLite's stored date-time text, ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond:06d}"


@dataclass(frozen=True)
class DecimalParts:
    """A decimal as sign (-1, 0, 1), significant digits (no leading or trailing zeros) and the
    position of the decimal point relative to the first significant digit (``0.DIGITS x 10^exp``)."""

    sign: int
    digits: str
    exp: int

    @classmethod
    def of(cls, value: Decimal) -> DecimalParts:
        if not value:
            return cls(0, "", 0)
        sign, digit_tuple, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        digits = "".join(str(d) for d in digit_tuple).lstrip("0")
        stripped = digits.rstrip("0")
        exp = len(digits) + exponent
        return cls(-1 if sign else 1, stripped, exp)


@dataclass(frozen=True)
class Dialect:
    """The SQL of one dialect (``sqlite`` or ``postgresql``)."""

    name: str

    @property
    def pg(self) -> bool:
        return self.name == "postgresql"

    # -- text ---------------------------------------------------------------------------------------
    def strpos(self, haystack: Expr, needle: Expr) -> Expr:
        """1-based position of ``needle`` in ``haystack`` (0: absent), by code points."""
        return func.strpos(haystack, needle) if self.pg else func.instr(haystack, needle)

    def text_eq(self, a: Expr, b: Any) -> Bool:
        """Exact text equality (byte-wise on PostgreSQL whatever the database collation)."""
        right = b if isinstance(b, ColumnElement) else literal(b, Text)
        result: Bool = (a.collate("C") if self.pg else a) == right
        return result

    def text_contains(self, haystack: Expr, needle: str) -> Bool:
        return self.strpos(haystack, literal(needle, Text)) > 0

    def text_starts_with(self, text: Expr, prefix: str) -> Bool:
        return self.text_eq(func.substr(text, 1, len(prefix)), literal(prefix, Text))

    def digits_gt(self, a: Expr, b: str) -> Bool:
        return (a.collate("C") if self.pg else a) > literal(b, Text)

    def digits_lt(self, a: Expr, b: str) -> Bool:
        return (a.collate("C") if self.pg else a) < literal(b, Text)

    def chain(self, exprs: list[Expr], stages: list[Callable[[list[Expr]], list[Expr]]],
              result: Callable[[list[Expr]], Expr]) -> Expr:
        """A scalar subquery computing ``result`` from ``exprs`` through ``stages``, each stage's values
        held in a one-row table joined after the previous one: every reference a parse makes to a
        value names a column, so the SQL stays small and shallow (SQLite's parser has a fixed depth)."""
        table, columns = self._row(exprs)
        query_from: Any = table
        for stage in stages:
            nxt, columns = self._row(stage(columns))
            query_from = query_from.join(nxt, true())
        return select(result(columns)).select_from(query_from).scalar_subquery()

    def _row(self, exprs: list[Expr]) -> tuple[Any, list[Expr]]:
        if self.pg:
            row = func.jsonb_array_elements(func.jsonb_build_array(func.jsonb_build_array(*exprs))).table_valued(
                "value")
            value = type_coerce(row.c.value, JSONB)
            return row, [value.op("->>", return_type=Text)(literal(i, Integer)) for i in range(len(exprs))]
        row = func.json_each(func.json_array(func.json_array(*exprs))).table_valued("value")
        return row, [type_coerce(func.json_extract(row.c.value, f"$[{i}]"), Text) for i in range(len(exprs))]

    def trim_ws(self, text: Expr) -> Expr:
        return func.trim(text, literal(SQL_WHITESPACE, Text)) if not self.pg else func.btrim(
            text, literal(SQL_WHITESPACE, Text))

    # -- numeric text -------------------------------------------------------------------------------
    def number(self, text: Expr, build: Callable[[Bool, Bool, Expr, Expr], Expr]) -> Expr:
        """``build(valid, negative, digits, exponent)`` for ``text`` read as a decimal number
        (``[+-]digits[.digits][e[+-]digits]``, surrounding whitespace ignored): the value is
        ``-? 0.DIGITS x 10^exponent`` (DIGITS without leading or trailing zeros, '' for zero)."""
        d = self

        def stage1(c: list[Expr]) -> list[Expr]:
            t = c[0]
            body = func.lower(func.ltrim(t, "+-"))
            if d.pg:
                ok = case((t.op("~", return_type=Boolean)(literal(_PG_NUMERIC_RE, Text)), 1), else_=0)
            else:
                ok = case((and_(t != "", func.length(t) - func.length(func.ltrim(t, "+-")) <= 1), 1), else_=0)
            e_at = d.strpos(cat(body, "e"), literal("e"))
            return [ok, case((func.substr(t, 1, 1) == "-", 1), else_=0), func.substr(body, 1, e_at - 1),
                    func.substr(body, e_at + 1), case((e_at <= func.length(body), 1), else_=0)]

        def stage2(c: list[Expr]) -> list[Expr]:
            ok, neg, mant, expo, has_e = d._int(c[0]), d._int(c[1]), c[2], c[3], d._int(c[4])
            expo_body = func.ltrim(expo, "+-")
            expo_digits = func.ltrim(expo_body, "0")
            valid: Bool
            digits_only: Bool
            if d.pg:
                valid = ok == 1
                digits_only = not_(expo_body.op("~", return_type=Boolean)(literal("[^0-9]", Text)))
            else:
                glob = d._glob
                valid = and_(
                    ok == 1, not_(glob(mant, "*[^0-9.]*")), glob(mant, "*[0-9]*"),
                    func.length(mant) - func.length(func.replace(mant, ".", "")) <= 1,
                    or_(has_e == 0, and_(func.length(expo) - func.length(expo_body) <= 1, expo_body != "",
                                         not_(glob(expo_body, "*[^0-9]*")))),
                )
                digits_only = not_(glob(expo_body, "*[^0-9]*"))
            expo_value = case(
                (has_e == 0, literal(0, BigInteger)), (expo_digits == "", literal(0, BigInteger)),
                (not_(and_(func.length(expo) - func.length(expo_body) <= 1, digits_only)), literal(0, BigInteger)),
                (func.length(expo_digits) > 15, case((func.substr(expo, 1, 1) == "-", literal(-_EXP_CLAMP, BigInteger)),
                                                     else_=literal(_EXP_CLAMP, BigInteger))),
                else_=cast(expo, BigInteger),
            )
            return [case((valid, 1), else_=0), neg, func.replace(mant, ".", ""),
                    d.strpos(cat(mant, "."), literal(".")) - 1, expo_value]

        def stage3(c: list[Expr]) -> list[Expr]:
            valid, neg, digits, int_len, expo_value = c[0], c[1], c[2], d._int(c[3]), d._int(c[4])
            leading = func.length(digits) - func.length(func.ltrim(digits, "0"))
            return [valid, neg, func.rtrim(func.ltrim(digits, "0"), "0"), int_len - leading + expo_value]

        def result(c: list[Expr]) -> Expr:
            return build(d._int(c[0]) == 1, d._int(c[1]) == 1, c[2], d._int(c[3]))

        return self.chain([self.trim_ws(text)], [stage1, stage2, stage3], result)

    def _int(self, column: Expr) -> Expr:
        return cast(column, BigInteger) if self.pg else type_coerce(column, BigInteger)

    def _glob(self, value: Expr, pattern: str) -> Bool:
        return value.op("GLOB", return_type=Boolean)(literal(pattern, Text))

    def decimal_cmp(self, text: Expr, value: Decimal) -> Expr:
        """-1, 0 or 1 comparing numeric text with ``value`` exactly (NULL when not numeric)."""
        return self.number(text, lambda valid, neg, sig, exp: when(valid, self._decimal_cmp(neg, sig, exp, value)))

    def is_numeric(self, text: Expr) -> Expr:
        return self.number(text, lambda valid, neg, sig, exp: valid)

    def _decimal_cmp(self, neg: Bool, sig: Expr, exp: Expr, value: Decimal) -> Expr:
        c = DecimalParts.of(value)
        magnitude = case(
            (exp > c.exp, 1), (exp < c.exp, -1),
            (self.digits_gt(sig, c.digits), 1), (self.digits_lt(sig, c.digits), -1),
            else_=0,
        )
        if c.sign == 0:
            return case((sig == "", 0), (neg, -1), else_=1)
        if c.sign > 0:
            return case((sig == "", -1), (neg, -1), else_=magnitude)
        return case((sig == "", 1), (not_(neg), 1), else_=-magnitude)

    # -- aggregates ---------------------------------------------------------------------------------
    def scaled(self, text: Expr) -> Expr:
        """Valid numeric text as an aggregable exact number: ``numeric`` on PostgreSQL; on SQLite the
        integer ``value * 10^SCALE`` (exact for values below 10^9 with at most SCALE decimals)."""
        if self.pg:
            trimmed = self.trim_ws(text)
            return when(trimmed.op("~", return_type=Boolean)(literal(_PG_SUMMABLE_RE, Text)), cast(trimmed, Numeric))

        def scaled(valid: Bool, neg: Bool, sig: Expr, exp: Expr) -> Expr:
            shift = exp + SCALE - func.length(sig)
            magnitude = case(
                (sig == "", literal(0, BigInteger)),
                (shift >= 0, cast(cat(sig, func.substr("0" * 40, 1, shift)), BigInteger)),
                else_=cast(func.substr(sig, 1, func.length(sig) + shift), BigInteger),
            )
            return when(valid, case((neg, -magnitude), else_=magnitude))

        return self.number(text, scaled)

    def scaled_integer(self, column: Expr) -> Expr:
        """An integer column as :meth:`scaled` reads numbers."""
        return cast(column, Numeric) if self.pg else column * 10**SCALE

    def scaled_operand(self, value: Decimal) -> Decimal:
        """An operand in the unit of :meth:`scaled`."""
        return value if self.pg else value.scaleb(SCALE)

    # -- JSON ---------------------------------------------------------------------------------------
    def json_doc(self, column: Expr) -> Json:
        return Json(self, column if self.pg else func.json(type_coerce(column, Text), type_=Text))

    # -- dates --------------------------------------------------------------------------------------
    def date_text(self, text: Expr, build: Callable[[Bool, Expr], Expr]) -> Expr:
        """``build(valid, instant)`` for ``text`` (surrounding whitespace ignored): whether it is a valid
        date or date-time of the forms SQL reads, and its UTC instant (canonical text on SQLite,
        timestamptz on PostgreSQL; read it only where valid)."""
        def split(columns: list[Expr]) -> list[Expr]:
            t = columns[0]
            n = func.length(t)
            tz = case((and_(n > 16, func.substr(t, n, 1) == "Z"), literal("Z")),
                      (and_(n >= 22, func.substr(t, n - 5, 1).in_(["+", "-"])), func.substr(t, n - 5, 6)),
                      else_=literal(""))
            time = case((n > 10, func.substr(t, 12, n - 11 - func.length(tz))), else_=literal(""))
            return [t, func.substr(t, 11, 1), time, tz]

        def parts(columns: list[Expr]) -> Expr:
            t, sep, time, tz = columns
            return build(self._date_valid(t, sep, time, tz), self._date_instant(t, time, tz))

        return self.chain([self.trim_ws(text)], [split], parts)

    def _date_valid(self, t: Expr, sep: Expr, time: Expr, tz: Expr) -> Bool:
        def glob(value: Expr, pattern: str) -> Bool:
            return value.op("GLOB", return_type=Boolean)(pattern)

        shape: Bool
        if self.pg:
            shape = t.op("~", return_type=Boolean)(literal(_PG_DATE_RE, Text))
        else:
            shape = and_(
                glob(t, "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"),
                or_(func.length(t) == 10, and_(
                    sep.in_(["T", "t", " "]),
                    or_(glob(time, "[0-9][0-9]:[0-9][0-9]"), glob(time, "[0-9][0-9]:[0-9][0-9]:[0-9][0-9]"),
                        and_(glob(time, "[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9]*"),
                             not_(glob(func.substr(time, 10), "*[^0-9]*")))),
                    or_(tz.in_(["", "Z"]), glob(tz, "[+-][0-9][0-9]:[0-9][0-9]")),
                )),
            )
        year = cast(func.substr(t, 1, 4), Integer)
        month = cast(func.substr(t, 6, 2), Integer)
        day = cast(func.substr(t, 9, 2), Integer)
        leap = and_(year % 4 == 0, or_(year % 100 != 0, year % 400 == 0))
        month_days = case((month.in_([1, 3, 5, 7, 8, 10, 12]), 31), (month.in_([4, 6, 9, 11]), 30),
                          (leap, 29), else_=28)
        clock_ok = and_(
            cast(func.substr(time, 1, 2), Integer) <= 23, cast(func.substr(time, 4, 2), Integer) <= 59,
            case((func.length(time) >= 8, cast(func.substr(time, 7, 2), Integer)), else_=0) <= 59,
            when(tz.in_(["", "Z"]), true(), and_(cast(func.substr(tz, 2, 2), Integer) <= 23,
                                                 cast(func.substr(tz, 5, 2), Integer) <= 59)),
        )
        valid = and_(year >= 1, month >= 1, month <= 12, day >= 1, day <= month_days,
                     when(func.length(t) == 10, true(), clock_ok))
        return when(shape, valid, false())

    def _date_instant(self, t: Expr, time: Expr, tz: Expr) -> Expr:
        clock = case((time == "", literal("00:00")), else_=func.substr(time, 1, 5))
        seconds = case((func.length(time) >= 8, func.substr(time, 7, 2)), else_=literal("00"))
        fraction = case((func.length(time) >= 10, func.substr(cat(func.substr(time, 10), "000000"), 1, 6)),
                        else_=literal("000000"))
        offset = case((tz.in_(["", "Z"]), literal("+00:00")), else_=tz)
        stamp = cat(func.substr(t, 1, 10), " ", clock, ":", seconds)
        if self.pg:
            return cast(cat(stamp, ".", fraction, offset), _timestamptz())
        return cat(func.datetime(cat(stamp, offset)), ".", fraction)

    def instant_literal(self, when: datetime) -> Expr:
        """An aware instant comparable with :meth:`date_text_instant`."""
        if self.pg:
            return literal(when.astimezone(UTC), _timestamptz())
        return literal(utc_text(when), Text)


def _timestamptz() -> Any:
    from sqlalchemy import DateTime

    return DateTime(timezone=True)


@dataclass(frozen=True)
class Json:
    """A JSON fragment in SQL: JSON text on SQLite, jsonb on PostgreSQL; NULL when absent."""

    d: Dialect
    expr: Expr

    def key(self, key: str) -> Json:
        if self.d.pg:
            return Json(self.d, self.expr.op("->", return_type=JSONB)(literal(key, Text)))
        if '"' in key or "\\" in key:
            # SQLite's JSON path cannot quote these: look the key up among the object's entries.
            from sqlalchemy import select

            each = func.json_each(self.expr).table_valued("key", "fullkey")
            return Json(self.d, select(self.expr.op("->", return_type=Text)(each.c.fullkey))
                        .where(each.c.key == key).where(self.type_name() == "object")
                        .scalar_subquery())
        return Json(self.d, self.expr.op("->", return_type=Text)(literal(f'$."{key}"', Text)))

    def index(self, position: int) -> Json:
        if self.d.pg:
            return Json(self.d, self.expr.op("->", return_type=JSONB)(literal(position, Integer)))
        path = f"$[{position}]" if position >= 0 else f"$[#{position}]"
        return Json(self.d, self.expr.op("->", return_type=Text)(literal(path, Text)))

    def step(self, segment: str) -> Json:
        """One step of a path as ``resolve`` takes it: a key of an object, or a position in a list
        when the segment is a whole number."""
        try:
            position = int(segment)
        except ValueError:
            return self.key(segment)
        return Json(self.d, func.coalesce(self.key(segment).expr, self.index(position).expr))

    # -- type ---------------------------------------------------------------------------------------
    def type_name(self) -> Expr:
        return func.jsonb_typeof(self.expr) if self.d.pg else func.json_type(self.expr)

    def is_present(self) -> Bool:
        """Neither absent nor JSON null."""
        return and_(self.expr.is_not(None), self.type_name() != "null")

    def is_number(self) -> Bool:
        return self.type_name() == "number" if self.d.pg else self.type_name().in_(["integer", "real"])

    def is_string(self) -> Bool:
        return self.type_name() == ("string" if self.d.pg else "text")

    def is_bool(self) -> Bool:
        return self.type_name() == "boolean" if self.d.pg else self.type_name().in_(["true", "false"])

    def is_array(self) -> Bool:
        return self.type_name() == "array"

    def is_object(self) -> Bool:
        return self.type_name() == "object"

    # -- values -------------------------------------------------------------------------------------
    def text(self) -> Expr:
        """The SQL text of a JSON string (meaningless for other types)."""
        if self.d.pg:
            return self.expr.op("#>>", return_type=Text)(cast(literal("{}", Text), ARRAY(Text)))
        return type_coerce(func.json_extract(self.expr, "$"), Text)

    def materialized(self) -> tuple[Any, Json]:
        """``(table, fragment)``: a one-row table holding this fragment, so that the many references a
        comparison makes to it name a column instead of repeating the path (a JSON null when absent)."""
        if self.d.pg:
            row = func.jsonb_array_elements(func.jsonb_build_array(self.expr)).table_valued("value")
            return row, Json(self.d, type_coerce(row.c.value, JSONB))
        each = func.json_each(func.json_array(self.expr)).table_valued("json")
        return each, Json(self.d, each.c.json.op("->", return_type=Text)(literal("$[0]", Text)))

    def bool_is(self, value: bool) -> Bool:
        if self.d.pg:
            return when(self.is_bool(), cast(self.expr, Boolean) == value, false())
        return self.type_name() == ("true" if value else "false")

    def number_text(self) -> Expr:
        """The JSON number as numeric text (SQLite keeps the number's text)."""
        if self.d.pg:
            return cast(cast(self.expr, Numeric), Text)
        return self.expr

    def number_cmp(self, value: Decimal) -> Expr:
        """-1, 0 or 1 comparing this JSON number with ``value`` exactly."""
        if self.d.pg:
            number = cast(self.expr, Numeric)
            operand = literal(value, Numeric)
            return case((number > operand, 1), (number < operand, -1), else_=0)
        return self.d.decimal_cmp(self.expr, value)

    def has_key(self, key: str) -> Bool:
        """An object with the key ``key`` (any value, null included)."""
        if self.d.pg:
            return and_(self.is_object(), self.expr.op("?", return_type=Boolean)(literal(key, Text)))
        return and_(self.is_object(), self.key(key).expr.is_not(None))

    def items(self) -> tuple[Any, Json]:
        """``(table, item)`` to select from: the items of this array (no rows when not an array)."""
        if self.d.pg:
            source = case((self.is_array(), self.expr), else_=literal([], JSONB))
            elements = func.jsonb_array_elements(source).table_valued("value")
            return elements, Json(self.d, type_coerce(elements.c.value, JSONB))
        source = case((self.is_array(), self.expr), else_=literal("[]", Text))
        each = func.json_each(source).table_valued("fullkey", "json")
        return each, Json(self.d, each.c.json.op("->", return_type=Text)(each.c.fullkey))

    def ordered_items(self) -> tuple[Any, Json, Expr]:
        """``(table, item, position)``: :meth:`items` with each item's position in the array."""
        if self.d.pg:
            source = case((self.is_array(), self.expr), else_=literal([], JSONB))
            elements = func.jsonb_array_elements(source).table_valued(
                "value", with_ordinality="position").render_derived()
            return elements, Json(self.d, type_coerce(elements.c.value, JSONB)), elements.c.position
        source = case((self.is_array(), self.expr), else_=literal("[]", Text))
        each = func.json_each(source).table_valued("fullkey", "json", "key")
        return each, Json(self.d, each.c.json.op("->", return_type=Text)(each.c.fullkey)), each.c.key


def any_true(*predicates: Bool) -> Bool:
    return or_(*predicates) if predicates else false()


def all_true(*predicates: Bool) -> Bool:
    return and_(*predicates) if predicates else true()


__all__ = [
    "SQL_WHITESPACE",
    "Bool",
    "DecimalParts",
    "Dialect",
    "Expr",
    "Json",
    "all_true",
    "any_true",
    "truth",
    "utc_text",
]
