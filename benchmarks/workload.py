"""What the benchmarks feed storeflow: commerce events as a store sends them, and the flows a store runs.

Everything is generated from a seed, so two runs of a scenario ingest the same events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# The five live flows of the ingest scenario: between them every event type starts runs, evaluates a
# trigger filter or checks re-entry, as in a store that uses storeflow for its usual automations.
STORE_FLOWS: tuple[str, ...] = (
    """
id: abandoned-cart
name: Abandoned cart
status: live
trigger:
  event: checkout_started
  filter: {field: profile.email, exists: true}
  max_age: 2h
exit_when:
  history: {event: order_placed, since: flow_start}
  exists: true
reentry: {every: 7d}
steps:
  - wait_for: {event: order_placed, timeout: 1h}
    on_event:
      - exit: customer ordered
  - action: tag
    tags: [cart-abandoner]
  - action: note
    text: cart reminder would go out here
  - wait: 1d
  - action: untag
    tags: [cart-abandoner]
""",
    """
id: welcome
name: Welcome new shoppers
status: live
trigger:
  event: product_viewed
reentry: once
steps:
  - action: tag
    tags: [welcomed]
  - action: set_property
    property: welcomed_at_first_view
    value: true
""",
    """
id: vip-tagging
name: VIP tagging
status: live
trigger:
  event: order_placed
reentry: always
steps:
  - if:
      history: {event: order_placed, within: 365d}
      count: {gte: 3}
    then:
      - action: tag
        tags: [vip]
      - action: set_property
        property: tier
        value: gold
  - action: set_property
    property: orders_seen
    increment: 1
""",
    """
id: post-purchase
name: Post-purchase review request
status: live
trigger:
  event: order_placed
  filter: {field: event.properties.total, gt: 0}
reentry: always
steps:
  - wait: 3d
  - action: note
    text: review request would go out here
  - action: tag
    tags: [asked-for-review]
""",
    """
id: browse-abandonment
name: Browse abandonment
status: live
trigger:
  event: product_viewed
  max_age: 30m
reentry: {every: 1d}
steps:
  - wait_for: {event: product_added_to_cart, timeout: 2h}
    on_event:
      - exit: added to cart
    on_timeout:
      - action: tag
        tags: [browsed-no-cart]
""",
)

# The flow of the steps scenario: a branch, tags, property writes and a wait (runs pause once, then
# resume when the virtual clock passes the wait). 10 logged steps per run.
STEPS_FLOW = """
id: bench-steps
name: Steps benchmark
status: live
trigger:
  event: bench_started
reentry: always
steps:
  - action: set_property
    property: visits
    increment: 1
  - if: {field: event.properties.tier, eq: gold}
    then:
      - action: tag
        tags: [gold]
    else:
      - action: tag
        tags: [standard]
  - action: set_property
    property: segment
    value: engaged
  - wait: 1h
  - action: set_property
    property: visits
    increment: 1
  - if: {field: profile.properties.visits, gte: 2}
    then:
      - action: tag
        tags: [returning]
  - action: note
    text: done
"""
STEPS_FLOW_WAIT = timedelta(hours=1)
STEPS_PER_RUN = 10  # set, if, tag, set, wait (waiting), wait (resumed), set, if, tag, note

CURRENCIES: dict[str, tuple[list[str], str]] = {
    # currency -> (sample prices, shipping country)
    "IDR": (["49000", "89000", "149000", "259000", "1250000"], "ID"),
    "BRL": (["19.90", "49.90", "89.90", "149.00", "399.00"], "BR"),
    "USD": (["4.99", "12.50", "24.99", "59.00", "180.00"], "US"),
}
EVENT_TYPES = ("product_viewed", "product_added_to_cart", "checkout_started", "order_placed")
EVENT_WEIGHTS = (60, 20, 12, 8)  # before the fix-ups below (no checkout or order with an empty cart)


@dataclass
class _Shopper:
    email: str
    customer_id: str
    currency: str
    cart: list[dict[str, Any]]
    carts: int = 0
    orders: int = 0


def commerce_events(count: int, *, profiles: int, now: datetime, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` events for a pool of ``profiles`` shoppers: views, add-to-carts, checkouts and orders
    with line items, in IDR, BRL and USD; each with a client id (idempotency key) and a recent time."""
    rng = random.Random(seed)
    currencies = list(CURRENCIES)
    shoppers = [
        _Shopper(f"shopper{i}@example.com", f"c{i}", currencies[i % len(currencies)], [])
        for i in range(profiles)
    ]
    catalog = [(f"p{i}", f"v{i}", f"SKU-{i:05d}", f"Product {i}", i % 5) for i in range(500)]
    out: list[dict[str, Any]] = []
    for n in range(count):
        # A few shoppers are much busier than most (roughly Zipf), as in a real store.
        s = shoppers[min(int(rng.paretovariate(1.2)) - 1, profiles - 1) if rng.random() < 0.3
                     else rng.randrange(profiles)]
        prices, country = CURRENCIES[s.currency]
        kind = rng.choices(EVENT_TYPES, EVENT_WEIGHTS)[0]
        product_id, variant_id, sku, title, price_index = catalog[rng.randrange(len(catalog))]
        price = prices[price_index]
        if kind in ("checkout_started", "order_placed") and not s.cart:
            kind = "product_added_to_cart"
        props: dict[str, Any]
        if kind == "product_viewed":
            props = {"product_id": product_id, "title": title, "price": price, "currency": s.currency}
        elif kind == "product_added_to_cart":
            line = {"product_id": product_id, "variant_id": variant_id, "sku": sku, "title": title,
                    "quantity": rng.randint(1, 3), "price": price}
            s.cart.append(line)
            props = {"cart_id": f"cart-{s.customer_id}-{s.carts}", "currency": s.currency, **line}
        else:
            total = _total(s.cart)
            checkout = f"cart-{s.customer_id}-{s.carts}"
            if kind == "checkout_started":
                props = {"checkout_id": checkout, "currency": s.currency, "value": total, "items": list(s.cart),
                         "checkout_url": f"https://shop.example.com/checkouts/{checkout}"}
            else:
                s.orders += 1
                props = {"order_id": f"o-{s.customer_id}-{s.orders}", "number": f"#{1000 + n}",
                         "currency": s.currency, "total": total, "items": list(s.cart), "checkout_id": checkout,
                         "shipping_country": country}
                s.cart, s.carts = [], s.carts + 1
        event: dict[str, Any] = {
            "type": kind,
            "id": f"bench-{seed}-{n}",
            "occurred_at": (now - timedelta(seconds=rng.randint(0, 600))).isoformat(),
            "email": s.email,
            "properties": props,
        }
        if kind == "order_placed":
            event["customer_id"] = s.customer_id
        out.append(event)
    return out


def _total(lines: list[dict[str, Any]]) -> str:
    from decimal import Decimal

    return str(sum((Decimal(line["price"]) * line["quantity"] for line in lines), Decimal(0)))


def step_triggers(count: int, *, seed: int = 11) -> list[dict[str, Any]]:
    """One ``bench_started`` event per run of the steps scenario, each for its own profile; a third
    of them take the ``gold`` branch."""
    rng = random.Random(seed)
    return [{"type": "bench_started", "id": f"steps-{seed}-{i}", "customer_id": f"runner-{i}",
             "properties": {"tier": "gold" if rng.random() < 1 / 3 else "standard"}} for i in range(count)]
