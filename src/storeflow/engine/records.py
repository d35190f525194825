"""The records conditions and templates read: event, profile, order, cart, product, run; and message.

Built from stored rows as plain dicts; money becomes Decimal in the row's currency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from storeflow.flows.evaluate import HistoryPort
from storeflow.model.money import from_minor
from storeflow.store.base import StoreTx


def _money(minor: int | None, currency: str | None) -> Decimal | None:
    if minor is None or currency is None:
        return None
    return from_minor(int(minor), currency)


def event_record(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in ("id", "type", "occurred_at", "received_at", "source", "profile_id",
                                     "properties")}


def profile_record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "email": row["email"],
        "phone": row["phone"],
        "locale": row["locale"],
        "timezone": row["timezone"],
        "tags": list(row["tags"] or []),
        "properties": dict(row["properties"] or {}),
        "orders_count": row["orders_count"],
        "total_spent": {cur: Decimal(v) for cur, v in (row["total_spent"] or {}).items()},
        "first_order_at": row["first_order_at"],
        "last_order_at": row["last_order_at"],
        "last_active_at": row["last_active_at"],
        "created_at": row["created_at"],
        "consent": {"email": row["consent_email"], "sms": row["consent_sms"], "push": row["consent_push"]},
    }


def order_record(row: dict[str, Any], products: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The order record; ``products`` (product id -> row with product_type and tags) gives its
    ``categories`` and ``product_tags``, which are None (missing) without it."""
    cur = row["currency"]
    items = list(row["line_items"] or [])
    properties = dict(row["properties"] or {})
    return {
        "id": row["id"],
        "number": row["number"],
        "status": row["status"],
        "financial_status": row["financial_status"],
        "fulfillment_status": row["fulfillment_status"],
        "currency": cur,
        "total": _money(row["total_minor"], cur),
        "refunded": _money(row["refunded_minor"], cur),
        "tags": list(row["tags"] or []),
        "shipping_country": row["shipping_country"],
        "line_items": items,
        "item_count": sum(int(i.get("quantity") or 0) for i in items),
        "placed_at": row["placed_at"],
        "properties": properties,
        "product_ids": _item_texts(items, "product_id"),
        "variant_ids": _item_texts(items, "variant_id"),
        "skus": _item_texts(items, "sku"),
        "categories": None if products is None else _product_texts(items, products, "product_type"),
        "product_tags": None if products is None else _product_texts(items, products, "tags"),
        "discount_codes": discount_codes(properties.get("discount_codes")),
    }


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _unique(values: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v is not None))


def _item_texts(items: list[Any], key: str) -> list[str]:
    """The distinct non-empty texts (or whole numbers, as text) at ``key`` of the items, in order."""
    return _unique(_text(item.get(key)) for item in items if isinstance(item, Mapping))


def order_product_ids(row: Mapping[str, Any]) -> list[str]:
    """The product ids an order row's line items name (for loading its products)."""
    return _item_texts(list(row.get("line_items") or []), "product_id")


def _product_texts(items: list[Any], products: Mapping[str, Mapping[str, Any]], key: str) -> list[str]:
    """``product_type`` (key "product_type") or the tags (key "tags") of the products bought."""
    found: list[str | None] = []
    for product_id in _item_texts(items, "product_id"):
        product = products.get(product_id)
        if product is None:
            continue
        value = product.get(key)
        if key == "tags":
            found.extend(_text(v) for v in (value or []))
        else:
            found.append(_text(value))
    return _unique(found)


def discount_codes(value: Any) -> list[str]:
    """An order's ``properties.discount_codes`` as distinct texts: a list of texts, or of objects with a
    ``code`` (Shopify's form); anything else has none."""
    if not isinstance(value, list | tuple):
        return []
    return _unique(_text(item.get("code")) if isinstance(item, Mapping) else _text(item) for item in value)


def message_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A message sent to a profile (an outbox row), as the ``message`` record."""
    return {key: row.get(key) for key in ("id", "channel", "kind", "status", "flow_id", "campaign_id", "variant",
                                          "address", "created_at", "sent_at", "delivered_at", "opened_at",
                                          "clicked_at")}


def cart_record(row: dict[str, Any]) -> dict[str, Any]:
    items = list(row["items"] or [])
    return {
        "id": row["id"],
        "kind": row["kind"],
        "currency": row["currency"],
        "value": _money(row["value_minor"], row["currency"]),
        "items": items,
        "item_count": sum(int(i.get("quantity") or 0) for i in items),
        "checkout_url": row["checkout_url"],
        "last_activity_at": row["last_activity_at"],
        "converted": row["converted_at"] is not None,
        "converted_at": row["converted_at"],
        "order_id": row["order_id"],
    }


def product_record(tx: StoreTx, row: dict[str, Any]) -> dict[str, Any]:
    variants = tx.product_variants(row["id"])
    prices = [_money(v["price_minor"], v["currency"]) for v in variants if v["price_minor"] is not None]
    return {
        "id": row["id"],
        "title": row["title"],
        "status": row["status"],
        "tags": list(row["tags"] or []),
        "vendor": row["vendor"],
        "product_type": row["product_type"],
        "properties": dict(row["properties"] or {}),
        "stock": tx.product_stock(row["id"]),
        "price": min((p for p in prices if p is not None), default=None),
        "variants": [{"id": v["id"], "sku": v["sku"], "title": v["title"],
                      "price": _money(v["price_minor"], v["currency"]), "currency": v["currency"]}
                     for v in variants],
    }


def _products_of(tx: StoreTx, order: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The products an order bought, one by one through ``get_product``: ingest's batch view
    answers it from its cache, where a set read (``rows_by_id``) would flush the batch's writes."""
    found = {pid: tx.get_product(pid) for pid in order_product_ids(order)}
    return {pid: row for pid, row in found.items() if row is not None}


class RecordLoader:
    """Loads the record for one run (or trigger evaluation) from the store, once."""

    def __init__(self, tx: StoreTx) -> None:
        self.tx = tx

    def build(self, *, event: dict[str, Any] | None, profile_id: str | None,
              run: dict[str, Any] | None = None) -> dict[str, Any]:
        tx = self.tx
        props: dict[str, Any] = (event or {}).get("properties") or {}
        profile = tx.get_profile(profile_id) if profile_id else None
        order = tx.get_order(str(props["order_id"])) if props.get("order_id") else None
        cart = None
        for key in ("checkout_id", "cart_id"):
            if props.get(key):
                cart = tx.get_cart(str(props[key]))
                if cart:
                    break
        if cart is None and profile is not None:
            cart = tx.latest_open_cart(profile["id"])
        product = tx.get_product(str(props["product_id"])) if props.get("product_id") else None
        products = _products_of(tx, order) if order else {}
        return {
            "event": event_record(event) if event else None,
            "profile": profile_record(profile) if profile else None,
            "order": order_record(order, products) if order else None,
            "cart": cart_record(cart) if cart else None,
            "product": product_record(tx, product) if product else None,
            "run": run,
        }


class StoreHistory:
    """The flows HistoryPort over stored events."""

    def __init__(self, tx: StoreTx) -> None:
        self.tx = tx

    def events(self, profile_id: str, event_type: str, since: datetime | None,
               until: datetime) -> list[dict[str, Any]]:
        return self.tx.history_events(profile_id, event_type, since, until)


class StoreProfileData(StoreHistory):
    """The flows ProfileData (flows/evaluate.py) over the store: one profile's events (through
    ``events``, a batch's HistoryPort, when given), orders, carts, messages, identity kinds and
    current segment memberships, each read when a condition first asks and kept for the life of this
    object (one evaluation, or one batch of runs). Ingest and the worker hand one to every condition,
    so flows can test ``in_segment`` and the collection conditions."""

    def __init__(self, tx: StoreTx, events: HistoryPort | None = None) -> None:
        super().__init__(tx)
        self._events = events
        self._orders: dict[str, list[dict[str, Any]]] = {}
        self._carts: dict[str, list[dict[str, Any]]] = {}
        self._messages: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        self._identities: dict[str, frozenset[str]] = {}
        self._segments: dict[str, frozenset[str]] = {}

    def events(self, profile_id: str, event_type: str, since: datetime | None,
               until: datetime) -> list[dict[str, Any]]:
        if self._events is not None:
            return cast(list[dict[str, Any]], list(self._events.events(profile_id, event_type, since, until)))
        return super().events(profile_id, event_type, since, until)

    def orders(self, profile_id: str) -> list[dict[str, Any]]:
        found = self._orders.get(profile_id)
        if found is None:
            rows = self.tx.orders_of_profile(profile_id)
            ids = sorted({pid for row in rows for pid in order_product_ids(row)})
            products = self.tx.rows_by_id("product", ids, columns=("product_type", "tags")) if ids else {}
            found = self._orders[profile_id] = [order_record(row, products) for row in rows]
        return found

    def carts(self, profile_id: str) -> list[dict[str, Any]]:
        found = self._carts.get(profile_id)
        if found is None:
            found = self._carts[profile_id] = [cart_record(row) for row in self.tx.carts_of_profile(profile_id)]
        return found

    def messages(self, profile_id: str, channel: str | None) -> list[dict[str, Any]]:
        key = (profile_id, channel)
        found = self._messages.get(key)
        if found is None:
            rows = self.tx.messages_of_profile(profile_id, channel)
            found = self._messages[key] = [message_record(row) for row in rows]
        return found

    def identity_kinds(self, profile_id: str) -> frozenset[str]:
        found = self._identities.get(profile_id)
        if found is None:
            found = self._identities[profile_id] = frozenset(kind for kind, _ in self.tx.identities_of(profile_id))
        return found

    def segments_of(self, profile_id: str) -> frozenset[str]:
        found = self._segments.get(profile_id)
        if found is None:
            found = self._segments[profile_id] = self.tx.segments_of(profile_id)
        return found
