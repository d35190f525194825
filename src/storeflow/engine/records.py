"""The records conditions and templates read: event, profile, order, cart, product, run.

Built from stored rows as plain dicts; money becomes Decimal in the row's currency.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

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


def order_record(row: dict[str, Any]) -> dict[str, Any]:
    cur = row["currency"]
    items = list(row["line_items"] or [])
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
        "properties": dict(row["properties"] or {}),
    }


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
        return {
            "event": event_record(event) if event else None,
            "profile": profile_record(profile) if profile else None,
            "order": order_record(order) if order else None,
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
