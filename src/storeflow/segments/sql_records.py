"""The records a condition reads (``storeflow.engine.records``), as SQL over their stored rows.

A :class:`Binding` gives the :class:`Facets` of a path under its root, the way
``storeflow.flows.paths.resolve`` walks the record dict and ``record_schema.read_as`` reads the value:
the profile (a ``profiles`` row; ``profile.x`` is ``properties.x`` unless ``x`` is a key of the
record), and inside collections an event, order, cart or message row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final, Protocol

from sqlalchemy import BigInteger, Boolean, ColumnElement, Text, and_, case, cast, false, func, literal, select, true
from sqlalchemy.sql import FromClause

from storeflow.flows.record_schema import declared_type
from storeflow.model.money import _iso_exponents
from storeflow.segments.sql_facets import (
    Facets,
    int_column,
    integer_cmp,
    json_facets,
    missing,
    text_column,
    time_column,
)
from storeflow.segments.sql_values import Dialect, Expr, Json, when
from storeflow.store.tables import products


class Binding(Protocol):
    def facets(self, d: Dialect, segments: Sequence[str]) -> Facets | None:
        """The value at ``root.segments`` (None: missing)."""
        ...


Scope = Mapping[str, Binding]


def _json_path(d: Dialect, root: str, column: Expr, declared: Sequence[str], steps: Sequence[str]) -> Facets:
    """A JSON column stepped through ``steps``; read through the declared type of ``root.declared``."""
    j = d.json_doc(column)
    for step in steps:
        j = j.step(step)
    ftype = declared_type(root, tuple(declared))
    item = ftype.item.kind if ftype.item is not None else None
    source, fragment = j.materialized()
    read = json_facets(fragment, ftype.kind, item)
    def number_value() -> Expr:  # aggregates read the value itself, not the materialized fragment
        whole = json_facets(j, ftype.kind, item).number_value
        return whole() if whole is not None else literal(None, BigInteger)

    return replace(read, source=source, number_value=number_value if read.number_value is not None else None)


@dataclass(frozen=True)
class RowBinding:
    """A record built from one table row: text, integer, date-time, JSON and derived fields."""

    root: str
    table: FromClause
    text: frozenset[str] = frozenset()
    integers: frozenset[str] = frozenset()
    times: frozenset[str] = frozenset()
    json: frozenset[str] = frozenset()
    derived: Mapping[str, Callable[[Dialect, FromClause], Facets]] | None = None
    objects: Mapping[str, Mapping[str, str]] | None = None  # key -> sub-key -> text column
    shorthand: str | None = None  # the free map unknown first keys fall back to

    def facets(self, d: Dialect, segments: Sequence[str]) -> Facets | None:
        if not segments:
            return Facets(present=true())
        first, rest = segments[0], segments[1:]
        c = self.table.c
        if first in self.json:
            return _json_path(d, self.root, c[first], segments, rest)
        if self.derived is not None and first in self.derived:
            whole = self.derived[first](d, self.table)
            return whole if not rest else _derived_steps(d, whole, rest, self.root, segments)
        if self.objects is not None and first in self.objects:
            keys = self.objects[first]
            if not rest:
                return Facets(present=true())
            if len(rest) == 1 and rest[0] in keys:
                return text_column(d, c[keys[rest[0]]])
            return None
        if first in self.text:
            return text_column(d, c[first]) if not rest else None
        if first in self.integers:
            return int_column(d, c[first]) if not rest else None
        if first in self.times:
            return time_column(d, c[first]) if not rest else None
        if self.shorthand is not None:
            return _json_path(d, self.root, c[self.shorthand], segments, segments)
        return None


def _derived_steps(d: Dialect, whole: Facets, rest: Sequence[str], root: str,
                   segments: Sequence[str]) -> Facets | None:
    """A step into a derived value: money, counts and flags have no fields; a derived list of texts
    answers its first item (``.0``); other positions are not compiled."""
    if whole.list_is is None:
        return None
    try:
        position = int(rest[0])
    except ValueError:
        return None
    if position == 0 and len(rest) == 1 and whole.first is not None:
        return whole.first()
    if len(rest) > 1:
        return None  # a text has no fields
    from storeflow.segments.sql_facets import UnsupportedCondition

    raise UnsupportedCondition(f"{root}.{'.'.join(segments)}: only the first item (.0) of a derived list "
                               "is compiled to SQL")


def _first_text(d: Dialect, ordered: Callable[[], tuple[Any, Expr, Expr]]) -> Callable[[], Facets]:
    """The first non-missing text of a derived list, in item order (``_unique`` keeps first ones)."""
    def build() -> Facets:
        source, text, position = ordered()
        first = select(text).select_from(source).where(text.is_not(None)).order_by(position).limit(1)
        value = first.scalar_subquery()
        return Facets(present=value.is_not(None), text_is=value.is_not(None), text=value)

    return build


# --- money ---------------------------------------------------------------------------------------

_EXPONENT_GROUPS: Final[dict[int, tuple[str, ...]]] = {}


def _groups() -> dict[int, tuple[str, ...]]:
    if not _EXPONENT_GROUPS:
        by: dict[int, list[str]] = {}
        for code, exp in _iso_exponents().items():
            by.setdefault(exp, []).append(code)
        _EXPONENT_GROUPS.update({exp: tuple(sorted(codes)) for exp, codes in by.items()})
    return _EXPONENT_GROUPS


def money(d: Dialect, minor: Expr, currency: Expr) -> Facets:
    """An amount stored as integer minor units with its currency: ``from_minor(minor, currency)``."""
    groups = _groups()
    common = max(groups, key=lambda e: len(groups[e]))

    def per_exponent(build: Callable[[int], Any]) -> Expr:
        whens = [(currency.in_(codes), build(exp)) for exp, codes in sorted(groups.items()) if exp != common]
        return case(*whens, else_=build(common)) if whens else build(common)

    def cmp(value: Decimal) -> Expr:
        return per_exponent(lambda exp: integer_cmp(minor, value.scaleb(exp)))

    present = and_(minor.is_not(None), currency.is_not(None))
    if d.pg:
        from sqlalchemy import Numeric, cast

        value_sql = per_exponent(lambda exp: cast(minor, Numeric) * literal(Decimal(1).scaleb(-exp), Numeric))
    else:
        from storeflow.segments.sql_values import SCALE

        value_sql = per_exponent(lambda exp: minor * literal(10 ** (SCALE - exp), BigInteger))
    return Facets(present=present, number_is=present, number_cmp=cmp, number_value=lambda: case((present, value_sql)),
                  d=d)


# --- the records -------------------------------------------------------------------------------------


def profile_binding(table: FromClause) -> RowBinding:
    """``profile_record``: the profile's columns; ``profile.x`` is ``properties.x``."""
    return RowBinding(
        root="profile", table=table,
        text=frozenset({"id", "email", "phone", "locale", "timezone"}),
        integers=frozenset({"orders_count"}),
        times=frozenset({"first_order_at", "last_order_at", "last_active_at", "created_at"}),
        json=frozenset({"tags", "properties", "total_spent"}),
        objects={"consent": {"email": "consent_email", "sms": "consent_sms", "push": "consent_push"}},
        shorthand="properties",
    )


ProfileBinding = profile_binding

EVENT_KEYS: Final = frozenset({"id", "type", "occurred_at", "properties"})
"""The keys of an event as the history port gives it (others fall back to its properties)."""


def event_binding(table: FromClause) -> RowBinding:
    return RowBinding(
        root="event", table=table, text=frozenset({"id", "type"}), times=frozenset({"occurred_at"}),
        json=frozenset({"properties"}), shorthand="properties",
    )


def _item_count(items_column: str) -> Callable[[Dialect, FromClause], Facets]:
    def build(d: Dialect, table: FromClause) -> Facets:
        j = d.json_doc(table.c[items_column])
        source, item = j.items()
        quantity = item.key("quantity")
        whole = case((quantity.type_name() == "integer" if not d.pg else
                      and_(quantity.is_number(), _pg_whole(quantity)),
                      _as_int(d, quantity)), else_=0)
        total = select(func.coalesce(func.sum(whole), 0)).select_from(source).scalar_subquery()
        return int_column(d, total)

    return build


def _pg_whole(j: Json) -> ColumnElement[bool]:
    from sqlalchemy import Numeric, cast

    return case((j.is_number(), func.scale(cast(j.expr, Numeric)) == 0), else_=false())


def _as_int(d: Dialect, j: Json) -> Expr:
    from sqlalchemy import cast

    return cast(j.expr, BigInteger) if not d.pg else cast(j.text(), BigInteger)


def json_text(d: Dialect, j: Json) -> Expr:
    """``records._text``: a non-empty JSON string, or a whole JSON number as text; else NULL."""
    if d.pg:
        digits = j.text().op("~", return_type=Boolean)(literal("^-?[0-9]+$", Text))
        return case((and_(j.is_string(), j.text() != ""), j.text()),
                    (and_(j.is_number(), when(j.is_number(), digits, false())), j.text()))
    return case((and_(j.is_string(), j.text() != ""), j.text()),
                (j.type_name() == "integer", cast(func.json_extract(j.expr, "$"), Text)))


def _text_items(source: Any, text: Expr) -> tuple[Any, Facets]:
    return source, Facets(present=text.is_not(None), text_is=text.is_not(None), text=text)


def _derived_list(items: Callable[[], tuple[Any, Facets]]) -> Facets:
    return Facets(present=true(), list_is=true(), items=items)


def _line_item_texts(key: str) -> Callable[[Dialect, FromClause], Facets]:
    """``product_ids``, ``variant_ids``, ``skus``: the line items' texts at ``key``."""
    def build(d: Dialect, table: FromClause) -> Facets:
        def items() -> tuple[Any, Facets]:
            source, item = d.json_doc(table.c.line_items).items()
            return _text_items(source, when(item.is_object(), json_text(d, item.key(key))))

        def ordered() -> tuple[Any, Expr, Expr]:
            source, item, position = d.json_doc(table.c.line_items).ordered_items()
            return source, when(item.is_object(), json_text(d, item.key(key))), position

        return replace(_derived_list(items), first=_first_text(d, ordered))

    return build


def _product_texts(key: str) -> Callable[[Dialect, FromClause], Facets]:
    """``categories`` (the products' product_type) and ``product_tags`` (their tags)."""
    def build(d: Dialect, table: FromClause) -> Facets:
        def items() -> tuple[Any, Facets]:
            source, item = d.json_doc(table.c.line_items).items()
            product = products.alias("prd")
            joined = source.join(product, product.c.id == when(item.is_object(),
                                                               json_text(d, item.key("product_id"))))
            if key == "product_type":
                text = case((product.c.product_type != "", product.c.product_type))
                return _text_items(joined, text)
            tags_source, tag = d.json_doc(product.c.tags).items()
            return _text_items(joined.join(tags_source, true()), json_text(d, tag))

        return _derived_list(items)

    return build


def _discount_codes(d: Dialect, table: FromClause) -> Facets:
    def items() -> tuple[Any, Facets]:
        source, item = d.json_doc(table.c.properties).key("discount_codes").items()
        text = case((item.is_object(), json_text(d, item.key("code"))), else_=json_text(d, item))
        return _text_items(source, text)

    def ordered() -> tuple[Any, Expr, Expr]:
        source, item, position = d.json_doc(table.c.properties).key("discount_codes").ordered_items()
        return source, case((item.is_object(), json_text(d, item.key("code"))), else_=json_text(d, item)), position

    return replace(_derived_list(items), first=_first_text(d, ordered))


def order_binding(table: FromClause) -> RowBinding:
    derived: dict[str, Callable[[Dialect, FromClause], Facets]] = {
        "total": lambda d, t: money(d, t.c.total_minor, t.c.currency),
        "refunded": lambda d, t: money(d, t.c.refunded_minor, t.c.currency),
        "item_count": _item_count("line_items"),
        "product_ids": _line_item_texts("product_id"),
        "variant_ids": _line_item_texts("variant_id"),
        "skus": _line_item_texts("sku"),
        "categories": _product_texts("product_type"),
        "product_tags": _product_texts("tags"),
        "discount_codes": _discount_codes,
    }
    return RowBinding(
        root="order", table=table,
        text=frozenset({"id", "number", "status", "financial_status", "fulfillment_status", "currency",
                        "shipping_country"}),
        times=frozenset({"placed_at"}),
        json=frozenset({"tags", "line_items", "properties"}),
        derived=derived,
    )


def cart_binding(table: FromClause) -> RowBinding:
    def converted(d: Dialect, t: FromClause) -> Facets:
        flag = t.c.converted_at.is_not(None)

        def is_(value: bool) -> ColumnElement[bool]:
            return flag if value else ~flag

        return Facets(present=true(), bool_is=is_, d=d)

    derived: dict[str, Callable[[Dialect, FromClause], Facets]] = {
        "value": lambda d, t: money(d, t.c.value_minor, t.c.currency),
        "item_count": _item_count("items"),
        "converted": converted,
    }
    return RowBinding(
        root="cart", table=table,
        text=frozenset({"id", "kind", "currency", "checkout_url", "order_id"}),
        times=frozenset({"last_activity_at", "converted_at"}),
        json=frozenset({"items"}),
        derived=derived,
    )


def message_binding(table: FromClause) -> RowBinding:
    return RowBinding(
        root="message", table=table,
        text=frozenset({"id", "channel", "kind", "status", "flow_id", "campaign_id", "variant", "address"}),
        times=frozenset({"created_at", "sent_at", "delivered_at", "opened_at", "clicked_at"}),
    )


def missing_binding() -> Binding:
    class _Missing:
        def facets(self, d: Dialect, segments: Sequence[str]) -> Facets | None:
            return missing()

    return _Missing()


__all__ = [
    "EVENT_KEYS",
    "Binding",
    "ProfileBinding",
    "RowBinding",
    "Scope",
    "cart_binding",
    "event_binding",
    "message_binding",
    "money",
    "order_binding",
    "profile_binding",
]
