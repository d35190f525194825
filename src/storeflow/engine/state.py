"""Apply a parsed state change to the current view of the store, and derive events from it.

Out-of-order events are safe: absolute values (product fields, stock counts, cart contents) only
apply when the event is newer than what is stored; aggregates are recomputed from rows.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from storeflow.engine.changes import (
    CartChange,
    Change,
    ConsentChange,
    LineItem,
    OrderChange,
    ProductChange,
    StockChange,
    order_cart_id,
)
from storeflow.model.bounds import INT64_MAX
from storeflow.model.events import CanonicalEvent, new_id
from storeflow.model.profiles import IdentityHints
from storeflow.store.base import StoreTx


def apply_change(tx: StoreTx, event: CanonicalEvent, profile_id: str | None, change: Change | None,
                 now: datetime, low_stock: int) -> list[CanonicalEvent]:
    """Update current state; return derived events (stock thresholds crossed)."""
    if isinstance(change, OrderChange):
        _apply_order(tx, event, profile_id, change, now)
    elif isinstance(change, CartChange):
        _apply_cart(tx, event, profile_id, change, now)
    elif isinstance(change, ProductChange):
        return _apply_product(tx, event, change, now, low_stock)
    elif isinstance(change, StockChange):
        return _apply_stock(tx, event, change, now, low_stock)
    elif isinstance(change, ConsentChange) and profile_id:
        tx.update_profile(profile_id, now, **{f"consent_{change.channel}": change.state})
    return []


def _apply_order(tx: StoreTx, event: CanonicalEvent, profile_id: str | None, ch: OrderChange,
                 now: datetime) -> None:
    current = tx.get_order(ch.order_id)
    items = [i.as_json() for i in ch.items] if ch.items is not None else None
    if current is None:
        row: dict[str, Any] = {
            "id": ch.order_id,
            "profile_id": profile_id,
            "number": None,
            "status": "open",
            "financial_status": "pending",
            "fulfillment_status": "unfulfilled",
            "currency": ch.currency or "USD",
            "total_minor": ch.total_minor or 0,
            "refunded_minor": 0,
            "tags": [],
            "shipping_country": None,
            "line_items": items or [],
            "properties": {},
            "placed_at": event.occurred_at,
            "updated_at": now,
        }
        row.update(_order_values(ch))
        if ch.refund_minor is not None or event.type == "order_refunded":
            row["refunded_minor"] = ch.refund_minor if ch.refund_minor is not None else row["total_minor"]
        tx.insert_order(row)
    else:
        values = _order_values(ch, current)
        if event.type == "order_placed" and event.occurred_at < current["placed_at"]:
            values["placed_at"] = event.occurred_at
        if ch.total_minor is not None and event.type in ("order_placed", "order_updated"):
            values["total_minor"] = ch.total_minor
            if ch.currency:
                values["currency"] = ch.currency
        if items is not None and event.type in ("order_placed", "order_updated"):
            values["line_items"] = items
        if event.type == "order_refunded":
            amount = ch.refund_minor if ch.refund_minor is not None else current["total_minor"]
            values["refunded_minor"] = min(current["total_minor"], current["refunded_minor"] + amount)
            if values["refunded_minor"] < current["total_minor"]:
                values["financial_status"] = "partially_refunded"
        if profile_id and current["profile_id"] is None:
            values["profile_id"] = profile_id
        values["updated_at"] = now
        tx.update_order(ch.order_id, **values)
    owner = profile_id or (current or {}).get("profile_id")
    if owner:
        tx.recompute_order_aggregates(owner, now)
        if event.type == "order_placed":
            tx.convert_carts(owner, list(ch.cart_ids), ch.order_id, event.occurred_at)
    elif ch.cart_ids and event.type == "order_placed":
        tx.convert_carts(None, list(ch.cart_ids), ch.order_id, event.occurred_at)
    if not ch.cart_ids and event.type == "order_placed":  # a checkout known only by this order
        tx.convert_carts(None, [order_cart_id(ch.order_id)], ch.order_id, event.occurred_at)


_ORDER_PROPERTIES = ("tracking", "discount_codes")
"""The change's values kept in the order row's ``properties`` (merged into those stored)."""


def _order_values(ch: OrderChange, current: dict[str, Any] | None = None) -> dict[str, Any]:
    values = dict(ch.values)
    kept = {name: values.pop(name) for name in _ORDER_PROPERTIES if name in values}
    if kept:
        values["properties"] = {**dict((current or {}).get("properties") or {}), **kept}
    return values


def _apply_cart(tx: StoreTx, event: CanonicalEvent, profile_id: str | None, ch: CartChange,
                now: datetime) -> None:
    current = tx.get_cart(ch.cart_id)
    if current is None:
        items = list(ch.items) if ch.items is not None else ([ch.added] if ch.added else [])
        tx.insert_cart({
            "id": ch.cart_id,
            "profile_id": profile_id,
            "kind": ch.kind,
            "currency": ch.currency,
            "value_minor": ch.value_minor if ch.value_minor is not None else _value_of(items, ch.currency),
            "items": [i.as_json() for i in items],
            "checkout_url": ch.checkout_url,
            "last_activity_at": event.occurred_at,
            "converted_at": None,
            "order_id": None,
            "created_at": now,
        })
        return
    values: dict[str, Any] = {}
    if profile_id and current["profile_id"] is None:
        values["profile_id"] = profile_id
    if event.occurred_at >= current["last_activity_at"]:
        values["last_activity_at"] = event.occurred_at
        if ch.kind == "checkout":
            values["kind"] = "checkout"
        if ch.checkout_url:
            values["checkout_url"] = ch.checkout_url
        if ch.currency:
            values["currency"] = ch.currency
        items_json: list[dict[str, Any]] | None = None
        if ch.items is not None:
            items_json = [i.as_json() for i in ch.items]
        elif ch.added is not None:
            items_json = _add_item(current["items"], ch.added)
        if items_json is not None:
            values["items"] = items_json
        if ch.value_minor is not None:
            values["value_minor"] = ch.value_minor
        elif items_json is not None:
            values["value_minor"] = _value_of_json(items_json, ch.currency or current["currency"])
    if values:
        tx.update_cart(ch.cart_id, **values)


def _add_item(items: list[dict[str, Any]], added: LineItem) -> list[dict[str, Any]]:
    out = [dict(i) for i in items]
    for item in out:
        if item.get("variant_id") == added.variant_id and item.get("product_id") == added.product_id:
            item["quantity"] = int(item.get("quantity") or 0) + added.quantity
            return out
    out.append(added.as_json())
    return out


def _value_of(items: list[LineItem], currency: str | None) -> int | None:
    return _value_of_json([i.as_json() for i in items], currency)


def _value_of_json(items: list[dict[str, Any]], currency: str | None) -> int | None:
    from decimal import Decimal

    from storeflow.model.money import to_minor

    if currency is None or not items or any(i.get("price") is None for i in items):
        return None
    total = sum((Decimal(str(i["price"])) * int(i.get("quantity") or 1) for i in items), Decimal(0))
    try:
        minor = to_minor(total, currency)
    except ValueError:  # items priced finer than the currency: the value is unknown, the event still counts
        return None
    return minor if minor <= INT64_MAX else None  # beyond the column: unknown rather than a failed batch


def _apply_product(tx: StoreTx, event: CanonicalEvent, ch: ProductChange, now: datetime,
                   low_stock: int) -> list[CanonicalEvent]:
    applied = tx.upsert_product(ch.product_id, now, event.occurred_at, **ch.values)
    if not applied:
        return []
    derived: list[CanonicalEvent] = []
    for v in ch.variants:
        tx.upsert_variant(v.variant_id, ch.product_id, now, sku=v.sku, title=v.title, price_minor=v.price_minor,
                          currency=v.currency)
        if v.quantity is not None:
            stock = StockChange(v.variant_id, v.sku, ch.product_id, "default", v.quantity, None)
            derived += _apply_stock(tx, event, stock, now, low_stock)
    return derived


def _apply_stock(tx: StoreTx, event: CanonicalEvent, ch: StockChange, now: datetime,
                 low_stock: int) -> list[CanonicalEvent]:
    variant = tx.get_variant(ch.variant_id) if ch.variant_id else tx.variant_by_sku(ch.sku or "")
    if variant is None:
        product_id = ch.product_id or f"unknown:{ch.variant_id or ch.sku}"
        if tx.get_product(product_id) is None:
            tx.upsert_product(product_id, now, event.occurred_at, title=None)
        vid = ch.variant_id or f"sku:{ch.sku}"
        tx.upsert_variant(vid, product_id, now, sku=ch.sku, title=None, price_minor=None, currency=None)
        variant = tx.get_variant(vid)
        assert variant is not None
    product_id = str(variant["product_id"])
    before = tx.product_stock(product_id)
    applied = tx.set_stock(str(variant["id"]), ch.location, now, event.occurred_at, quantity=ch.quantity,
                           delta=ch.delta)
    if not applied:
        return []
    after = tx.product_stock(product_id)
    kind = None
    if before > 0 >= after:
        kind = "stock_out"
    elif before <= 0 < after:
        kind = "stock_restored"
    elif before > low_stock >= after > 0:
        kind = "stock_low"
    if kind is None:
        return []
    product = tx.get_product(product_id) or {}
    return [replace(
        event,
        id=new_id("evt"),
        type=kind,
        source="storeflow",
        idempotency_key=f"{event.idempotency_key}:{kind}:{product_id}",
        hints=IdentityHints(),
        properties={"product_id": product_id, "title": product.get("title"), "variant_id": variant["id"],
                    "sku": variant.get("sku"), "location": ch.location, "stock_before": before,
                    "stock": after, "threshold": low_stock, "caused_by": event.id},
        profile_updates={},
    )]
