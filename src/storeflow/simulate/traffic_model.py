"""The simulated store's traffic model and the small records the simulation keeps (split out of
traffic.py): how busy customers are, what a visit costs in stock, and the links in sent mail."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from storeflow.simulate.catalog import Product, Variant
from storeflow.simulate.people import PROSPECT_SHARE, Customer

MEAN_ACTIVITY: Final = math.exp(0.8**2 / 2)  # of the customers' lognormal(0, 0.8) activity


@dataclass(frozen=True)
class TrafficModel:
    """The rates of the simulation. Probabilities are per visit, cart, checkout or message."""

    visits_per_day: float = 0.013  # per known customer of average activity
    prospect_visits_per_day: float = 0.05  # anonymous visits before subscribing
    more_views: float = 0.15  # chance of viewing one more product (geometric, at most 4)
    add_to_cart: float = 0.35
    second_item: float = 0.25
    checkout: float = 0.55  # of carts
    order_now: float = 0.4  # of checkouts, a few minutes later in the same visit
    come_back: float = 0.06  # of abandoned checkouts, ordered hours or days later without an email
    open_rate: float = 0.45
    click_rate: float = 0.3  # of opens
    cart_click_orders: float = 0.4  # of clicks on an abandoned-cart email, while the cart is open
    unsubscribe_rate: float = 0.01  # of opens of marketing email

    def units_per_visit(self, items_per_cart: float = 1.3) -> float:
        """Expected units sold per visit (used to size stock against demand)."""
        after = self.order_now + (1 - self.order_now) * (self.come_back + 0.06)
        return self.add_to_cart * items_per_cart * self.checkout * after

    def expected_units(self, customers: int, days: int) -> float:
        """Units the traffic is expected to sell over ``days`` (the catalog sizes stock against it)."""
        return customers * (1 - PROSPECT_SHARE) * self.visits_per_day * days * self.units_per_visit()


@dataclass
class SimStats:
    events: int = 0  # accepted by ingest
    duplicates: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    visits: int = 0
    carts: int = 0
    checkouts: int = 0
    orders: int = 0
    orders_after_click: int = 0
    orders_came_back: int = 0
    missed_sales: int = 0  # orders that found everything sold out
    restocks: int = 0  # deliveries (a product, every variant)
    subscribers: int = 0
    emails_seen: int = 0
    opens: int = 0
    clicks: int = 0
    unsubscribes: int = 0
    setup_s: float = 0.0
    run_s: float = 0.0
    days_done: int = 0  # whole simulated days (fewer than asked when the run was stopped early)


@dataclass
class _Line:
    product: Product
    variant: Variant
    quantity: int

    def as_item(self) -> dict[str, Any]:
        return {"product_id": self.product.product_id, "variant_id": self.variant.variant_id,
                "sku": self.variant.sku, "title": _item_title(self.product, self.variant),
                "quantity": self.quantity, "price": _amount(self.variant.price), "url": self.product.url}


@dataclass
class _Checkout:
    checkout_id: str
    lines: list[_Line]
    at: datetime
    ordered: bool = False


@dataclass(slots=True)
class _Person:
    customer: Customer
    known: bool = False  # has been named (email) in an event
    joined_at: datetime | None = None  # prospects: when they subscribe
    checkout: _Checkout | None = None  # the latest abandoned checkout


@dataclass
class _Zone:
    """The customers of one time zone, with cumulative activity for drawing visitors."""

    tz: ZoneInfo
    members: list[int] = field(default_factory=list)
    cum: list[float] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)  # prospects who have not subscribed yet

    @property
    def total(self) -> float:
        return self.cum[-1] if self.cum else 0.0

    def add(self, i: int, activity: float) -> None:
        self.members.append(i)
        self.cum.append(self.total + activity)


@dataclass(order=True)
class _Item:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    data: Any = field(compare=False)


def _amount(value: Decimal) -> str:
    return format(value, "f")


def _item_title(product: Product, variant: Variant) -> str:
    if variant.title in ("Default", "One size"):
        return product.title
    return f"{product.title} ({variant.title})"


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


_LINK = re.compile(r"""https?://[^\s"'<>]+/(t/o|t/c|u)/([A-Za-z0-9_.\-]+)""")


def message_links(payload: dict[str, Any]) -> dict[str, list[str]]:
    """The tracking tokens in a sent email: ``open`` (pixel), ``click`` (links), ``unsubscribe``."""
    found: dict[str, list[str]] = {"open": [], "click": [], "unsubscribe": []}
    names = {"t/o": "open", "t/c": "click", "u": "unsubscribe"}
    texts = [str(payload.get("html") or ""), *(str(v) for v in (payload.get("headers") or {}).values())]
    for text in texts:
        for kind, token in _LINK.findall(text):
            if token not in found[names[kind]]:
                found[names[kind]].append(token)
    return found
