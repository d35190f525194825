"""Parse an event's properties into the state change it describes (pure: no database).

Parsing first means a malformed item is refused with a clear reason before anything is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from storeflow.model.bounds import INT64_MAX, INT64_MIN
from storeflow.model.events import CanonicalEvent
from storeflow.model.money import check_currency, parse_amount, to_minor

ORDER_EVENTS = {"order_placed", "order_paid", "order_fulfilled", "order_cancelled", "order_refunded",
                "order_updated", "shipment_updated"}
CART_EVENTS = {"product_added_to_cart", "cart_updated", "checkout_started"}
PRODUCT_EVENTS = {"product_created", "product_updated"}


@dataclass(frozen=True)
class LineItem:
    product_id: str | None
    variant_id: str | None
    sku: str | None
    title: str | None
    quantity: int
    price: Decimal | None

    def as_json(self) -> dict[str, Any]:
        return {"product_id": self.product_id, "variant_id": self.variant_id, "sku": self.sku,
                "title": self.title, "quantity": self.quantity,
                "price": None if self.price is None else str(self.price)}


@dataclass(frozen=True)
class OrderChange:
    order_id: str
    currency: str | None
    total_minor: int | None
    refund_minor: int | None
    items: tuple[LineItem, ...] | None
    values: dict[str, Any] = field(default_factory=dict)  # number, statuses, tags, shipping_country, codes
    cart_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CartChange:
    cart_id: str
    kind: str
    currency: str | None
    value_minor: int | None
    items: tuple[LineItem, ...] | None
    added: LineItem | None
    checkout_url: str | None


@dataclass(frozen=True)
class VariantData:
    variant_id: str
    sku: str | None
    title: str | None
    price_minor: int | None
    currency: str | None
    quantity: int | None


@dataclass(frozen=True)
class ProductChange:
    product_id: str
    values: dict[str, Any]
    variants: tuple[VariantData, ...]


@dataclass(frozen=True)
class StockChange:
    variant_id: str | None
    sku: str | None
    product_id: str | None
    location: str
    quantity: int | None
    delta: int | None


@dataclass(frozen=True)
class ConsentChange:
    channel: str
    state: str


Change = OrderChange | CartChange | ProductChange | StockChange | ConsentChange


def _str(props: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = props.get(name)
        if value not in (None, ""):
            return str(value)
    return None


MAX_LINE_QUANTITY = 10**9
MAX_STOCK = 10**9  # stock_levels.quantity is a 32-bit column; a single change stays well inside it
_MAX_NUMBER_CHARS = 40


def _int(value: Any, where: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """A whole number from JSON (a number or numeric string) within ``low``..``high``. Bounded
    before anything large is built: ``"1e1000000"`` is refused from its exponent."""
    not_whole = f"{where}: {_shown(value)} is not a whole number"
    if isinstance(value, bool):
        raise ValueError(not_whole)
    if isinstance(value, int):
        number = value
    else:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{where}: {value!r} is not a finite number")
            text = repr(value)
        elif isinstance(value, str) and len(value) <= _MAX_NUMBER_CHARS:
            text = value.strip()
        else:
            raise ValueError(not_whole)
        try:
            dec = Decimal(text)
        except InvalidOperation as exc:
            raise ValueError(not_whole) from exc
        if not dec.is_finite():
            raise ValueError(f"{where}: {_shown(value)} is not a finite number")
        if dec and dec.adjusted() > 18:
            raise ValueError(f"{where}: {_shown(value)} is outside {low}..{high}")
        if dec != dec.to_integral_value():
            raise ValueError(not_whole)
        number = int(dec)
    if not low <= number <= high:
        raise ValueError(f"{where}: {_shown(number)} is outside {low}..{high}")
    return number


def _shown(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 200:
        return "a very large number"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _money(props: dict[str, Any], name: str, currency: str | None, where: str = "properties") -> int | None:
    """Minor units of a non-negative amount, within the 64-bit column."""
    if props.get(name) is None:
        return None
    if currency is None:
        raise ValueError(f"{where}.{name}: an amount needs properties.currency (e.g. \"IDR\")")
    try:
        amount = parse_amount(props[name])
        if amount < 0:
            raise ValueError(f"{amount} is negative; amounts are zero or more")
        minor = to_minor(amount, currency)
    except ValueError as exc:
        raise ValueError(f"{where}.{name}: {exc}") from exc
    if not 0 <= minor <= INT64_MAX:
        raise ValueError(f"{where}.{name}: {amount} {currency} is too large")
    return minor


def _currency(props: dict[str, Any]) -> str | None:
    if props.get("currency") in (None, ""):
        return None
    try:
        return check_currency(props["currency"])
    except ValueError as exc:
        raise ValueError(f"properties.currency: {exc}") from exc


def _items(props: dict[str, Any]) -> tuple[LineItem, ...] | None:
    raw = props.get("items", props.get("line_items"))
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ValueError("properties.items: must be a list of line items")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError(f"properties.items[{i}]: must be an object")
        out.append(_line_item(item, f"properties.items[{i}]"))
    return tuple(out)


def _line_item(item: dict[str, Any], where: str) -> LineItem:
    price = None
    if item.get("price") is not None:
        try:
            price = parse_amount(item["price"])
        except ValueError as exc:
            raise ValueError(f"{where}.price: {exc}") from exc
        if price < 0:
            raise ValueError(f"{where}.price: {price} is negative; prices are zero or more")
    return LineItem(
        product_id=_str(item, "product_id"),
        variant_id=_str(item, "variant_id"),
        sku=_str(item, "sku"),
        title=_str(item, "title", "name"),
        quantity=_int(item.get("quantity", 1), f"{where}.quantity", 0, MAX_LINE_QUANTITY),
        price=price,
    )


MAX_DISCOUNT_CODES = 50
MAX_DISCOUNT_CODE_CHARS = 100


def _discount_codes(props: dict[str, Any]) -> list[str] | None:
    """``properties.discount_codes``: a list of codes, or of objects with a ``code`` (Shopify's
    form), as the distinct codes in order; None when the event has none (the stored ones stay)."""
    raw = props.get("discount_codes")
    if raw is None:
        return None
    where = "properties.discount_codes"
    if not isinstance(raw, list):
        raise ValueError(f"{where}: use a list of codes (texts, or objects with a code)")
    if len(raw) > MAX_DISCOUNT_CODES:
        raise ValueError(f"{where}: {len(raw)} codes; an order keeps at most {MAX_DISCOUNT_CODES}")
    codes: list[str] = []
    for i, item in enumerate(raw):
        code = item.get("code") if isinstance(item, dict) else item
        if isinstance(code, int) and not isinstance(code, bool):
            code = str(code)
        if not isinstance(code, str) or not code:
            hint = "an object needs a non-empty text code" if isinstance(item, dict) else "a code is a non-empty text"
            raise ValueError(f"{where}[{i}]: {_shown(item)}: {hint}")
        if len(code) > MAX_DISCOUNT_CODE_CHARS:
            raise ValueError(f"{where}[{i}]: {len(code)} characters; a code has at most {MAX_DISCOUNT_CODE_CHARS}")
        if code not in codes:
            codes.append(code)
    return codes


def _tags(props: dict[str, Any]) -> list[str] | None:
    tags = props.get("tags")
    if tags is None:
        return None
    if isinstance(tags, str):
        return [t.strip() for t in tags.split(",") if t.strip()]
    if isinstance(tags, list):
        return [str(t) for t in tags]
    raise ValueError("properties.tags: use a list of strings or a comma-separated string")


_ORDER_STATUS = {
    "order_paid": {"financial_status": "paid"},
    "order_fulfilled": {"fulfillment_status": "fulfilled"},
    "order_cancelled": {"status": "cancelled"},
    "order_refunded": {"financial_status": "refunded"},
}


def _order_change(event: CanonicalEvent) -> OrderChange:
    p = event.properties
    order_id = _str(p, "order_id", "id")
    if order_id is None:
        raise ValueError(f"properties.order_id: required for {event.type}")
    currency = _currency(p)
    values: dict[str, Any] = dict(_ORDER_STATUS.get(event.type, {}))
    for name in ("number", "financial_status", "fulfillment_status"):
        if _str(p, name) and name not in values:
            values[name] = _str(p, name)
    if _str(p, "shipping_country"):
        values["shipping_country"] = str(p["shipping_country"]).upper()[:2]
    tags = _tags(p)
    if tags is not None:
        values["tags"] = tags
    codes = _discount_codes(p)
    if codes is not None:
        values["discount_codes"] = codes
    if event.type == "shipment_updated":
        values["tracking"] = {k: p[k] for k in ("status", "carrier", "tracking_number", "tracking_url") if k in p}
        if str(p.get("status", "")).lower() == "delivered":
            values["fulfillment_status"] = "delivered"
    refund = None
    if event.type == "order_refunded":
        refund = _money(p, "amount", currency) if "amount" in p else None
    total = _money(p, "total", currency)
    cart_ids = tuple(x for x in (_str(p, "cart_id"), _str(p, "checkout_id")) if x)
    if cart_ids:
        cart_ids += (order_cart_id(order_id),)  # a checkout known by this order (see _cart_change)
    return OrderChange(order_id, currency, total, refund, _items(p), values, cart_ids)


def _cart_change(event: CanonicalEvent) -> CartChange:
    p = event.properties
    names = ("checkout_id", "cart_id") if event.type == "checkout_started" else ("cart_id", "checkout_id")
    cart_id = _str(p, *names)
    if cart_id is None and event.type == "checkout_started" and _str(p, "order_id"):
        cart_id = order_cart_id(str(_str(p, "order_id")))  # Segment's Checkout Started names the order
    if cart_id is None:
        raise ValueError(f"properties.cart_id: required for {event.type} (or properties.checkout_id)")
    currency = _currency(p)
    value = _money(p, "value", currency) if "value" in p else _money(p, "total", currency)
    added = None
    if event.type == "product_added_to_cart" and p.get("items") is None:
        added = _line_item(p, "properties")
    items = _items(p)
    if value is None and currency is not None:
        _check_items_value(items if items is not None else ([added] if added else []), currency)
    return CartChange(cart_id, "checkout" if event.type == "checkout_started" else "cart", currency, value,
                      items, added, _str(p, "checkout_url"))


def order_cart_id(order_id: str) -> str:
    """The cart id of a checkout known only by the order it becomes (Segment's Checkout Started)."""
    return f"order:{order_id}"


def _check_items_value(items: list[LineItem] | tuple[LineItem, ...], currency: str) -> None:
    """A cart without a value is valued from its items: refuse here what could not be stored."""
    if not items or any(i.price is None for i in items):
        return
    total = sum((Decimal(i.price or 0) * (i.quantity or 1) for i in items), Decimal(0))
    try:
        minor = to_minor(total, currency)
    except ValueError as exc:
        raise ValueError(f"properties.items: their value {exc}") from exc
    if minor > INT64_MAX:
        raise ValueError(f"properties.items: their value {total} {currency} is too large")


def _product_change(event: CanonicalEvent) -> ProductChange:
    p = event.properties
    product_id = _str(p, "product_id", "id")
    if product_id is None:
        raise ValueError(f"properties.product_id: required for {event.type}")
    values: dict[str, Any] = {}
    for name in ("title", "vendor", "product_type"):
        if _str(p, name):
            values[name] = _str(p, name)
    if p.get("status") is not None:
        status = str(p["status"]).lower()
        if status in ("active", "published"):
            status = "published"
        elif status in ("draft", "archived", "hidden"):
            status = "hidden"
        else:
            raise ValueError(f"properties.status: {p['status']!r} is not a product status; use published or hidden")
        values["status"] = status
    tags = _tags(p)
    if tags is not None:
        values["tags"] = tags
    variants = []
    raw = p.get("variants") or []
    if not isinstance(raw, list):
        raise ValueError("properties.variants: must be a list")
    base_currency = _currency(p)
    for i, v in enumerate(raw):
        where = f"properties.variants[{i}]"
        if not isinstance(v, dict) or _str(v, "variant_id", "id") is None:
            raise ValueError(f"{where}: needs a variant_id")
        cur = base_currency
        if v.get("currency"):
            try:
                cur = check_currency(v["currency"])
            except ValueError as exc:
                raise ValueError(f"{where}.currency: {exc}") from exc
        price = _money(v, "price", cur, where) if v.get("price") is not None else None
        qty = None
        if "inventory_quantity" in v:
            qty = _int(v["inventory_quantity"], f"{where}.inventory_quantity", -MAX_STOCK, MAX_STOCK)
        variants.append(VariantData(str(_str(v, "variant_id", "id")), _str(v, "sku"), _str(v, "title"), price,
                                    cur, qty))
    return ProductChange(product_id, values, tuple(variants))


def _stock_change(event: CanonicalEvent) -> StockChange:
    p = event.properties
    variant_id, sku = _str(p, "variant_id"), _str(p, "sku")
    if variant_id is None and sku is None:
        raise ValueError("properties.variant_id: inventory_changed needs variant_id or sku")
    qty = _int(p["quantity"], "properties.quantity", -MAX_STOCK, MAX_STOCK) if p.get("quantity") is not None else None
    delta = _int(p["delta"], "properties.delta", -MAX_STOCK, MAX_STOCK) if p.get("delta") is not None else None
    if (qty is None) == (delta is None):
        raise ValueError("properties.quantity: give exactly one of quantity (absolute) or delta (change)")
    return StockChange(variant_id, sku, _str(p, "product_id"), _str(p, "location") or "default", qty, delta)


def _consent_change(event: CanonicalEvent) -> ConsentChange:
    channel = str(event.properties.get("channel", "email")).lower()
    if channel not in ("email", "sms", "push"):
        raise ValueError(f"properties.channel: {channel!r} is not a channel; use email, sms or push")
    return ConsentChange(channel, "subscribed" if event.type == "subscribed" else "unsubscribed")


def parse_change(event: CanonicalEvent) -> Change | None:
    """The state change an event describes, or None. Raises ValueError naming the bad property."""
    if event.type in ORDER_EVENTS:
        return _order_change(event)
    if event.type in CART_EVENTS:
        return _cart_change(event)
    if event.type in PRODUCT_EVENTS:
        return _product_change(event)
    if event.type == "inventory_changed":
        return _stock_change(event)
    if event.type in ("subscribed", "unsubscribed"):
        return _consent_change(event)
    return None
