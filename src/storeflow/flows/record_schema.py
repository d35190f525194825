"""The declared record schema: every field a condition may read, with its type, declared once.

The records (``storeflow.engine.records``) are plain dicts; this module says what is in them.
Validation (``condition_parser``) refuses a path that names no declared field and an operator that
does not fit the field's type; the evaluator (``evaluate``) reads a value through its declared type;
a SQL compiler reads the same declaration. The comparison rules are in docs/flows.md, "Comparison
semantics".

Types: ``string``, ``integer``, ``decimal`` (money: exact, never a float), ``number`` (integer or
decimal), ``boolean``, ``datetime`` (an instant, compared in UTC), ``date``, ``list`` of a type,
``map`` (free keys, values of one type), ``object`` (declared keys) and ``any`` (free data such as
``profile.properties``; its type is the value's own at run time).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, Literal

from storeflow.flows.paths import FieldPath
from storeflow.flows.problems import Loc, Problems
from storeflow.flows.values import as_datetime, as_decimal, is_number
from storeflow.flows.vocabulary import ALL_ROOTS, FIELD_ROOTS, did_you_mean

Kind = Literal["string", "integer", "decimal", "number", "boolean", "datetime", "date", "list", "map", "object", "any"]

SCALAR_KINDS: Final = frozenset({"string", "integer", "decimal", "number", "boolean", "datetime", "date"})
NUMERIC_KINDS: Final = frozenset({"integer", "decimal", "number"})
TIME_KINDS: Final = frozenset({"datetime", "date"})


@dataclass(frozen=True)
class FieldType:
    """The type of a field. ``item`` is the type of a list's items or a map's values; ``fields`` are
    an object's declared keys; ``properties`` names the key of an object whose free map its unknown
    keys fall back to (``profile.x`` is ``profile.properties.x``)."""

    kind: Kind
    item: FieldType | None = None
    fields: Mapping[str, Field] = field(default_factory=dict)
    properties: str | None = None

    def describe(self) -> str:
        """``list of text``, ``a date-time``, ... for messages."""
        if self.kind == "list" and self.item is not None:
            return f"a list of {_PLURALS[self.item.kind]}"
        if self.kind == "map" and self.item is not None and self.item.kind != "any":
            return f"a mapping of free keys to {_PLURALS[self.item.kind]}"
        return _NAMES[self.kind]


@dataclass(frozen=True)
class Field:
    """A declared field: its type, what it is (for the docs), and names people might try for it."""

    type: FieldType
    doc: str = ""
    aliases: tuple[str, ...] = ()


_NAMES: Final[dict[str, str]] = {
    "string": "text", "integer": "a whole number", "decimal": "an exact decimal (money)", "number": "a number",
    "boolean": "true/false", "datetime": "a date-time", "date": "a date", "list": "a list",
    "map": "a mapping with free keys", "object": "a record", "any": "free data",
}  # fmt: skip
_PLURALS: Final[dict[str, str]] = {
    "string": "texts", "integer": "whole numbers", "decimal": "decimals", "number": "numbers",
    "boolean": "true/false values", "datetime": "date-times", "date": "dates", "list": "lists",
    "map": "mappings", "object": "records", "any": "values",
}  # fmt: skip

STRING: Final = FieldType("string")
INTEGER: Final = FieldType("integer")
DECIMAL: Final = FieldType("decimal")
NUMBER: Final = FieldType("number")
BOOLEAN: Final = FieldType("boolean")
DATETIME: Final = FieldType("datetime")
DATE: Final = FieldType("date")
ANY: Final = FieldType("any")


def list_of(item: FieldType) -> FieldType:
    return FieldType("list", item=item)


def map_of(value: FieldType) -> FieldType:
    return FieldType("map", item=value)


def record(fields: Mapping[str, Field | FieldType], properties: str | None = None) -> FieldType:
    """An object with declared keys (a bare FieldType is a Field without docs)."""
    declared = {name: spec if isinstance(spec, Field) else Field(spec) for name, spec in fields.items()}
    return FieldType("object", fields=declared, properties=properties)


FREE: Final = map_of(ANY)
"""A mapping of free keys and values (``profile.properties``, ``event.properties``)."""

_LINE_ITEM: Final = record({
    "product_id": STRING, "variant_id": STRING, "sku": STRING, "title": STRING, "quantity": INTEGER,
    "price": Field(DECIMAL, "the unit price"),
})  # fmt: skip

EVENT: Final = record({
    "id": STRING,
    "type": Field(STRING, "the event type, e.g. order_placed"),
    "occurred_at": Field(DATETIME, "when it happened"),
    "received_at": Field(DATETIME, "when storeflow received it"),
    "source": Field(STRING, "api, import, shopify, ..."),
    "profile_id": STRING,
    "properties": Field(FREE, "the event's data; event.x is short for event.properties.x"),
}, properties="properties")  # fmt: skip

PROFILE: Final = record({
    "id": STRING,
    "email": STRING,
    "phone": STRING,
    "locale": STRING,
    "timezone": STRING,
    "tags": list_of(STRING),
    "properties": Field(FREE, "custom data; profile.x is short for profile.properties.x"),
    "orders_count": INTEGER,
    "total_spent": Field(map_of(DECIMAL), "per currency code, e.g. profile.total_spent.EUR"),
    "first_order_at": DATETIME,
    "last_order_at": DATETIME,
    "last_active_at": DATETIME,
    "created_at": DATETIME,
    "consent": Field(record({"email": STRING, "sms": STRING, "push": STRING}),
                     "per channel (email, sms, push): subscribed, unsubscribed or never_asked"),
}, properties="properties")  # fmt: skip

ORDER: Final = record({
    "id": STRING,
    "number": STRING,
    "status": STRING,
    "financial_status": STRING,
    "fulfillment_status": STRING,
    "currency": STRING,
    "total": Field(DECIMAL, "in the order's currency", aliases=("value", "amount", "revenue")),
    "refunded": DECIMAL,
    "tags": list_of(STRING),
    "shipping_country": STRING,
    "line_items": Field(list_of(_LINE_ITEM), aliases=("items", "products")),
    "item_count": Field(INTEGER, "the sum of the line items' quantities"),
    "placed_at": DATETIME,
    "properties": FREE,
    "product_ids": Field(list_of(STRING), "the line items' product ids"),
    "variant_ids": Field(list_of(STRING), "the line items' variant ids"),
    "skus": Field(list_of(STRING), "the line items' SKUs"),
    "categories": Field(list_of(STRING), "the product_type of each product bought (read from the products)",
                        aliases=("product_types", "collections")),
    "product_tags": Field(list_of(STRING), "the tags of the products bought (read from the products)"),
    "discount_codes": Field(list_of(STRING), "the discount codes used (properties.discount_codes)",
                            aliases=("coupons", "discounts")),
})  # fmt: skip

CART: Final = record({
    "id": STRING,
    "kind": Field(STRING, "cart or checkout"),
    "currency": STRING,
    "value": Field(DECIMAL, "the items' total in the cart's currency", aliases=("total", "subtotal", "amount")),
    "items": Field(list_of(_LINE_ITEM), aliases=("line_items", "products")),
    "item_count": Field(INTEGER, "the sum of the items' quantities"),
    "checkout_url": STRING,
    "last_activity_at": DATETIME,
    "converted": Field(BOOLEAN, "an order was placed from it"),
    "converted_at": DATETIME,
    "order_id": STRING,
})  # fmt: skip

PRODUCT: Final = record({
    "id": STRING,
    "title": Field(STRING, aliases=("name",)),
    "status": Field(STRING, "published or hidden"),
    "tags": list_of(STRING),
    "vendor": STRING,
    "product_type": STRING,
    "properties": FREE,
    "stock": Field(INTEGER, "units in stock over all variants and locations", aliases=("inventory", "quantity")),
    "price": Field(DECIMAL, "the lowest variant price"),
    "variants": list_of(record({"id": STRING, "sku": STRING, "title": STRING, "price": DECIMAL,
                                "currency": STRING})),
})  # fmt: skip

RUN: Final = record({
    "id": STRING,
    "flow_id": STRING,
    "started_at": DATETIME,
    "variants": Field(map_of(STRING), "split id -> the variant this run took"),
})  # fmt: skip

MESSAGE: Final = record({
    "id": STRING,
    "channel": Field(STRING, "email, sms, push, webhook, ..."),
    "kind": Field(STRING, "marketing, transactional, team or webhook"),
    "status": Field(STRING, "pending, sending, sent, failed or skipped"),
    "flow_id": Field(STRING, "the flow that sent it"),
    "campaign_id": Field(STRING, "the campaign that sent it"),
    "variant": Field(STRING, "the campaign variant"),
    "address": Field(STRING, "the email address, phone number or URL it went to"),
    "created_at": Field(DATETIME, "when it was queued"),
    "sent_at": DATETIME,
    "delivered_at": DATETIME,
    "opened_at": DATETIME,
    "clicked_at": DATETIME,
})  # fmt: skip
"""A message sent to the profile: read only inside ``{messages: {where: ...}}``."""

RECORD_SCHEMA: Final[Mapping[str, FieldType]] = {
    "event": EVENT, "profile": PROFILE, "order": ORDER, "cart": CART, "product": PRODUCT, "run": RUN,
}  # fmt: skip
"""Root name -> the record's type: what ``storeflow.engine.records`` builds for conditions."""

DECLARED_ROOTS: Final[Mapping[str, FieldType]] = {**RECORD_SCHEMA, "message": MESSAGE}
"""Every root a path may start with: the records above, and ``message`` (an item of a ``messages``
collection, see conditions.py)."""

assert tuple(RECORD_SCHEMA) == FIELD_ROOTS, "declare every field root once"
assert tuple(DECLARED_ROOTS) == ALL_ROOTS, "declare every field root once"


class UnknownField(ValueError):
    """A path that names no declared field: ``message`` and ``hint`` for a problem."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def field_type(root: str, segments: Sequence[str]) -> FieldType:
    """The declared type at ``root.segments``; raises UnknownField naming the unknown part."""
    return _field_type(root, tuple(segments))


@lru_cache(maxsize=4096)
def _field_type(root: str, segments: tuple[str, ...]) -> FieldType:
    if root not in DECLARED_ROOTS:
        raise UnknownField(f'unknown root "{root}"', "paths start with " + ", ".join(RECORD_SCHEMA))
    current = DECLARED_ROOTS[root]
    walked = root
    for i, segment in enumerate(segments):
        current = _step(current, segment, walked, shorthand=i == 0)
        walked = f"{walked}.{segment}"
    return current


def _step(current: FieldType, segment: str, walked: str, *, shorthand: bool) -> FieldType:
    kind = current.kind
    if kind == "any":
        return ANY
    if kind == "map":
        return current.item or ANY
    if kind == "list":
        try:
            int(segment)
        except ValueError:
            raise UnknownField(
                f'"{segment}" is not a list position: {walked} is {current.describe()}',
                f"use a position, e.g. {walked}.0 (-1 is the last), or contains / in on the whole list",
            ) from None
        return current.item or ANY
    if kind == "object":
        declared = current.fields.get(segment)
        if declared is not None:
            return declared.type
        return _unknown_key(current, segment, walked, shorthand=shorthand)
    raise UnknownField(f'{walked} is {current.describe()}; it has no field "{segment}"', f"compare {walked} itself")


def _unknown_key(current: FieldType, segment: str, walked: str, *, shorthand: bool) -> FieldType:
    names = sorted(current.fields)
    near = did_you_mean(segment, names, cutoff=0.8)
    alias = next((name for name, spec in current.fields.items() if segment in spec.aliases), None)
    if current.properties is not None and shorthand and near is None and alias is None:
        return current.fields[current.properties].type.item or ANY  # profile.x = profile.properties.x
    hint = f'did you mean "{alias}"?' if alias else near
    known = f"known fields of {walked}: {', '.join(names)}"
    if current.properties is not None:
        known += f"; for a custom property write {walked}.{current.properties}.{segment}"
    raise UnknownField(f'unknown field "{segment}" of {walked}', f"{hint} {known}" if hint else known)


# --- operators --------------------------------------------------------------------------------

Misfit = tuple[str, str | None]
"""A problem as ``(message, hint)``."""

_EQUALITY: Final = ("eq", "ne", "in", "not_in", "exists")
_ORDER: Final = ("gt", "gte", "lt", "lte")
_TIME: Final = ("within", "older_than", "before", "after")
OPERATORS_BY_KIND: Final[Mapping[str, tuple[str, ...]]] = {
    "string": (*_EQUALITY, "contains", "not_contains", "starts_with"),
    "integer": (*_EQUALITY, *_ORDER),
    "decimal": (*_EQUALITY, *_ORDER),
    "number": (*_EQUALITY, *_ORDER),
    "boolean": _EQUALITY,
    "datetime": (*_EQUALITY, *_ORDER, *_TIME, "anniversary_within"),
    "date": (*_EQUALITY, *_ORDER, *_TIME, "anniversary_within"),
    "list": ("contains", "not_contains", "in", "not_in", "exists"),
    "map": ("contains", "not_contains", "exists"),
    "object": ("exists",),
}
"""The operators that fit each kind; ``any`` takes every operator."""


def operator_problem(ftype: FieldType, op: str, operand: Any, path: str) -> Misfit | None:
    """``(message, hint)`` when ``op`` with ``operand`` does not fit a field of type ``ftype``, else None.

    ``operand`` is the parsed operand (see ``Comparison.value``).
    """
    if ftype.kind == "any":
        return None
    allowed = OPERATORS_BY_KIND[ftype.kind]
    if op not in allowed:
        hint = "operators for it: " + ", ".join(allowed)
        if ftype.kind == "list" and op in ("eq", "ne"):
            hint = f"use contains to test for an item; {hint}"
        return f'{path} is {ftype.describe()}: "{op}" does not apply to it', hint
    if op in ("exists", "within", "older_than", "before", "after", "anniversary_within"):
        return None
    if ftype.kind == "list":
        item = ftype.item or ANY
        if item.kind in ("object", "list", "map"):
            return (
                f"{path} is {ftype.describe()}: compare a field of one item instead",
                f"e.g. {path}.0.{next(iter(item.fields), 'id')}" if item.fields else f"e.g. {path}.0",
            )
        return _operand_problem(item, op, operand, path, of_items=True)
    if ftype.kind == "map":
        if not isinstance(operand, str):
            return f"{path} is {ftype.describe()}: contains takes a key (text)", None
        return None
    return _operand_problem(ftype, op, operand, path, of_items=False)


def _operand_problem(ftype: FieldType, op: str, operand: Any, path: str, *, of_items: bool) -> Misfit | None:
    values = operand if isinstance(operand, tuple | list) and op in ("in", "not_in") else (operand,)
    for value in values:
        if fits(ftype, value):
            continue
        subject = f"the items of {path} are {_NAMES[ftype.kind]}" if of_items else f"{path} is {ftype.describe()}"
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        hint = _EXAMPLE[ftype.kind]
        if ftype.kind == "string" and not isinstance(value, str | bool):
            hint = f'write it as text: "{value}"'
        return f"{subject}; {shown} is not", hint
    return None


_EXAMPLE: Final[dict[str, str]] = {
    "string": 'e.g. "vip"', "integer": "e.g. 3", "decimal": "e.g. 20 or 19.90", "number": "e.g. 20 or 19.90",
    "boolean": "true or false", "datetime": "an ISO date-time, e.g. 2026-01-31T09:00:00Z",
    "date": "an ISO date, e.g. 2026-01-31", "any": "", "list": "", "map": "", "object": "",
}  # fmt: skip


def fits(ftype: FieldType, value: Any) -> bool:
    """Whether a flow's operand ``value`` can compare with a field of scalar type ``ftype``."""
    kind = ftype.kind
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in NUMERIC_KINDS:
        return (is_number(value) or isinstance(value, str)) and as_decimal(value) is not None
    if kind in TIME_KINDS:
        return not is_number(value) and as_datetime(value) is not None
    return True


def checked_type(path: FieldPath, loc: Loc, problems: Problems) -> FieldType | None:
    """The declared type of a parsed ``path``, or None after adding an unknown-field problem at ``loc``."""
    try:
        return _field_type(path.root, path.segments)
    except UnknownField as exc:
        problems.add(loc, exc.message, exc.hint)
        return None


def is_date_field(path: FieldPath, loc: Loc, problems: Problems) -> bool:
    """Whether ``path`` is a declared field that can hold a date (date, datetime or free data), else
    False after adding the problem (a date trigger's ``date``)."""
    ftype = checked_type(path, loc, problems)
    if ftype is None:
        return False
    if ftype.kind in (*TIME_KINDS, "any"):
        return True
    problems.add(loc, f"{path} is {ftype.describe()}, not a date", "e.g. profile.birthday or profile.created_at")
    return False


def declared_type(root: str, segments: Sequence[str]) -> FieldType:
    """The declared type at a path, or ``ANY`` for a path the schema does not know (a comparison built
    in code rather than parsed). Cached: the evaluator calls it for every comparison."""
    try:
        return _field_type(root, tuple(segments))
    except UnknownField:
        return ANY


def read_as(ftype: FieldType, value: Any) -> Any:
    """A record's ``value`` read through its declared type: numbers as exact Decimals, date-times and
    dates as aware UTC datetimes, lists of scalars with their items read the same way. A value that
    does not fit its type reads as missing (None); ``any`` values are returned as they are."""
    kind = ftype.kind
    if value is None or kind == "any":
        return value
    if kind in NUMERIC_KINDS:
        return as_decimal(value)
    if kind in TIME_KINDS:
        return as_datetime(value)
    if kind == "string":
        return value if isinstance(value, str) else None
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind == "list":
        if not isinstance(value, list | tuple):
            return None
        item = ftype.item
        if item is None or item.kind not in SCALAR_KINDS:
            return value
        read = [read_as(item, v) for v in value]
        return [v for v in read if v is not None]
    return value if isinstance(value, Mapping) else None


def known_fields(root: str) -> list[str]:
    """The declared top-level fields of a root, sorted."""
    return sorted(DECLARED_ROOTS[root].fields)


def iter_fields(prefix: str = "", ftype: FieldType | None = None) -> list[tuple[str, FieldType, str]]:
    """Every declared field as ``(path, type, doc)``, depth first; list items appear as ``path.N``."""
    out: list[tuple[str, FieldType, str]] = []
    if ftype is None:
        for root, rtype in DECLARED_ROOTS.items():
            out.extend(iter_fields(root, rtype))
        return out
    target = ftype.item if ftype.kind == "list" and ftype.item is not None else ftype
    base = f"{prefix}.N" if target is not ftype else prefix
    for name, spec in target.fields.items():
        path = f"{base}.{name}"
        out.append((path, spec.type, spec.doc))
        if spec.type.fields or (spec.type.item is not None and spec.type.item.fields):
            out.extend(iter_fields(path, spec.type))
    return out


__all__ = [
    "ANY",
    "BOOLEAN",
    "DATE",
    "DATETIME",
    "DECIMAL",
    "DECLARED_ROOTS",
    "FREE",
    "INTEGER",
    "MESSAGE",
    "NUMBER",
    "OPERATORS_BY_KIND",
    "RECORD_SCHEMA",
    "STRING",
    "Field",
    "FieldType",
    "Kind",
    "Misfit",
    "UnknownField",
    "checked_type",
    "declared_type",
    "field_type",
    "fits",
    "is_date_field",
    "iter_fields",
    "known_fields",
    "list_of",
    "map_of",
    "operator_problem",
    "read_as",
    "record",
]
