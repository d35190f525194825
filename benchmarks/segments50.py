"""Fifty live segments of a store like the benchmarks' (``workload.commerce_events``): what a marketer
builds over a few months. Between them they read every event type of the workload (views, carts,
checkouts, orders), the orders, the carts, the messages sent and the profile's order columns, with
windows from an hour to a year (so many are time-relative and keep due rows), plus combinations
(and / or / not, ``in_segment``).

``probe`` is entered by a ``bench_probe`` event of a fresh profile: the ``segment_ingest`` scenario
sends one per ingest batch and times ``event received -> segment_entered stored``.
"""

from __future__ import annotations

from typing import Any

PROBE_SEGMENT = "probe"
PROBE_EVENT = "bench_probe"


def _history(event: str, window: str, op: str, n: int, where: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"event": event, "within": window}
    if where is not None:
        spec["where"] = where
    return {"history": spec, "count": {op: n}}


def _orders(window: str | None, aggregate: dict[str, Any], where: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if window is not None:
        spec["within"] = window
    if where is not None:
        spec["where"] = where
    return {"orders": spec, **aggregate}


def _segment(sid: str, name: str, condition: dict[str, Any]) -> dict[str, Any]:
    return {"id": sid, "name": name, "condition": condition}


def segments() -> list[dict[str, Any]]:
    """The fifty segment documents (JSON-able dicts), those referred to before those referring."""
    out: list[dict[str, Any]] = []
    for window, n in (("1h", 1), ("1d", 1), ("1d", 5), ("7d", 3), ("7d", 10), ("30d", 20)):
        out.append(_segment(f"viewed-{n}-in-{window}", f"Viewed {n}+ products in {window}",
                            _history("product_viewed", window, "gte", n)))
    for window, n in (("1d", 1), ("7d", 2), ("30d", 5)):
        out.append(_segment(f"carted-{n}-in-{window}", f"Added to cart {n}+ times in {window}",
                            _history("product_added_to_cart", window, "gte", n)))
    for window, n in (("1d", 1), ("7d", 1), ("30d", 3)):
        out.append(_segment(f"checkouts-{n}-in-{window}", f"Started {n}+ checkouts in {window}",
                            _history("checkout_started", window, "gte", n)))
    for window, n in (("7d", 1), ("30d", 2)):
        out.append(_segment(f"order-events-{n}-in-{window}", f"{n}+ order events in {window}",
                            _history("order_placed", window, "gte", n)))
    for currency in ("IDR", "BRL", "USD"):
        out.append(_segment(f"browsing-{currency.lower()}", f"Browsing in {currency} this week",
                            _history("product_viewed", "7d", "gte", 3, {"field": "event.currency", "eq": currency})))
    out += [
        _segment("viewed-bestsellers", "Viewed a bestseller this week",
                 _history("product_viewed", "7d", "gte", 1,
                          {"field": "event.product_id", "in": ["p1", "p2", "p3", "p4", "p5"]})),
        _segment("viewed-p1-range", "Viewed the p1 range twice this week",
                 _history("product_viewed", "7d", "gte", 2, {"field": "event.product_id", "starts_with": "p1"})),
        _segment("shipped-to-brazil", "Ordered for Brazil this month",
                 {"history": {"event": "order_placed", "within": "30d",
                              "where": {"field": "event.shipping_country", "eq": "BR"}}, "exists": True}),
        _segment("bulk-carters", "Added 3+ of one item this week",
                 {"history": {"event": "product_added_to_cart", "within": "7d",
                              "where": {"field": "event.quantity", "gte": 3}}, "exists": True}),
        _segment("ordered-30d", "Ordered in the last 30 days", _orders("30d", {"exists": True})),
        _segment("repeat-365d", "2+ orders this year", _orders("365d", {"count": {"gte": 2}})),
        _segment("loyal", "3+ orders ever", _orders(None, {"count": {"gte": 3}})),
        _segment("big-spender-idr", "Spent Rp1.000.000+ this year",
                 _orders("365d", {"sum": {"of": "order.total", "gte": 1_000_000}},
                         {"field": "order.currency", "eq": "IDR"})),
        _segment("big-spender-brl", "Spent R$500+ this year",
                 _orders("365d", {"sum": {"of": "order.total", "gte": 500}}, {"field": "order.currency", "eq": "BRL"})),
        _segment("big-spender-usd", "Spent $200+ this year",
                 _orders("365d", {"sum": {"of": "order.total", "gte": 200}}, {"field": "order.currency", "eq": "USD"})),
        _segment("ships-to-indonesia", "Orders shipped to Indonesia",
                 _orders(None, {"exists": True}, {"field": "order.shipping_country", "eq": "ID"})),
        _segment("big-basket-idr", "An IDR order of Rp1.000.000+",
                 _orders(None, {"max": {"of": "order.total", "gte": 1_000_000}},
                         {"field": "order.currency", "eq": "IDR"})),
        _segment("high-aov-usd", "Average USD order $50+",
                 _orders(None, {"avg": {"of": "order.total", "gte": 50}}, {"field": "order.currency", "eq": "USD"})),
        _segment("ordered-this-week", "Last order within 7 days", _orders(None, {"last_seen": {"within": "7d"}})),
        _segment("new-customers", "First order within 30 days", _orders(None, {"first_seen": {"within": "30d"}})),
        _segment("open-cart-idr", "An open IDR cart of Rp500.000+",
                 {"carts": {"where": {"all": [{"field": "cart.currency", "eq": "IDR"},
                                              {"field": "cart.value", "gte": 500_000},
                                              {"field": "cart.converted", "eq": False}]}}, "exists": True}),
        _segment("cart-abandoners", "Checked out today, no order today",
                 {"all": [{"history": {"event": "checkout_started", "within": "1d"}, "exists": True},
                          {"not": _orders("1d", {"exists": True})}]}),
        _segment("busy-carts", "2+ carts this week", {"carts": {"within": "7d"}, "count": {"gte": 2}}),
        _segment("customers", "1+ orders", {"field": "profile.orders_count", "gte": 1}),
        _segment("regulars", "3+ orders", {"field": "profile.orders_count", "gte": 3}),
        _segment("regulars-5", "5+ orders", {"field": "profile.orders_count", "gte": 5}),
        _segment("lifetime-idr", "Lifetime Rp1.000.000+", {"field": "profile.total_spent.IDR", "gte": 1_000_000}),
        _segment("lifetime-usd", "Lifetime $100+", {"field": "profile.total_spent.USD", "gte": 100}),
        _segment("lifetime-brl", "Lifetime R$300+", {"field": "profile.total_spent.BRL", "gte": 300}),
        _segment("recent-buyers", "Last order this week", {"field": "profile.last_order_at", "within": "7d"}),
        _segment("active-this-hour", "Active this hour", {"field": "profile.last_active_at", "within": "1h"}),
        _segment("first-order-today", "First order today", {"field": "profile.first_order_at", "within": "1d"}),
        _segment("subscribed-browsers", "Subscribed and browsing this month",
                 {"all": [{"field": "profile.consent.email", "eq": "subscribed"},
                          _history("product_viewed", "30d", "gte", 1)]}),
        _segment("emailed-this-week", "Emailed this week",
                 {"messages": {"channel": "email", "within": "7d"}, "count": {"gte": 1}}),
        _segment("browsers-not-buyers", "Browsing, never ordered",
                 {"all": [_history("product_viewed", "7d", "gte", 3), {"not": _orders(None, {"exists": True})}]}),
        _segment("vip-active", "Big IDR spenders browsing today",
                 {"all": [{"in_segment": "big-spender-idr"}, _history("product_viewed", "1d", "gte", 1)]}),
        _segment("win-back-targets", "Cart abandoners or browsers who never bought",
                 {"any": [{"in_segment": "cart-abandoners"}, {"in_segment": "browsers-not-buyers"}]}),
        _segment(PROBE_SEGMENT, "Benchmark probes",
                 {"history": {"event": PROBE_EVENT, "within": "1d"}, "exists": True}),
    ]
    return out


SEGMENTS_50 = segments()
