"""Store traffic on the virtual clock: visits, carts, checkouts, orders, stock, subscribers, email.

Hour by hour, customers visit in their own local daily rhythm (quiet at night, busy at lunch and in
the evening, a little busier at weekends). A visit views a product or two, may add to the cart, may
start a checkout, and may order a few minutes later; most checkouts are abandoned. Orders take stock
away per location (``inventory_changed`` deltas), so popular products run low and sell out. The shop
reorders a product when it sells out (or, for some, when it runs low), and the delivery arrives a few
days later at 09:00 store time (an absolute stock count at the warehouse). Prospects browse
anonymously, then subscribe (and are merged into their known profile).

Messages the flows send are read back from the store: a share of customers open them (the tracking
pixel) and click (the tracked links), through the same service the HTTP routes use. A click on an
abandoned-cart email often leads to the order, and some customers come back and order on their own.

Everything is ingested through :meth:`Storeflow.ingest` in time order, and the clock only moves
forward, with :meth:`Storeflow.run_until` whenever runs are due, so flows act with their real waits.
A customer's events never share a batch with an earlier event of theirs that starts a run (so the
run starts before what they do next), an event waits at most ``BATCH_SPAN`` to be ingested, and a due
run waits at most ``RUN_SLACK`` (like a busy worker) before it is processed. Deterministic for a
seed and a start time.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import select

from storeflow.simulate.catalog import SHOP_URL, Catalog, Product, product_event, stock_events
from storeflow.simulate.people import Customer
from storeflow.simulate.traffic_model import (
    MEAN_ACTIVITY,
    SimStats,
    TrafficModel,
    _amount,
    _Checkout,
    _Item,
    _Line,
    _Person,
    _poisson,
    _Zone,
    message_links,
)
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import outbox, products

if TYPE_CHECKING:
    from storeflow.app import Storeflow

SOURCE: Final = "demo"
BATCH_MAX: Final = 1000
BATCH_SPAN: Final = timedelta(minutes=10)  # the longest an event waits to be ingested
RUN_SLACK: Final = timedelta(minutes=10)  # due runs wait at most this long for the next batch (a worker's lag)
JOIN_HORIZON_DAYS: Final = 30  # prospects subscribe at a steady rate: all of them over 30 days
# Visits per local hour of the day (relative): night, morning, lunch, evening peak.
HOURLY: Final = (0.5, 0.3, 0.2, 0.15, 0.15, 0.3, 0.8, 1.5, 2.5, 3.5, 4.0, 4.5,
                 5.5, 5.0, 4.2, 4.0, 4.2, 4.8, 5.5, 6.5, 7.0, 6.5, 4.5, 2.2)
_HOURLY_SHARE: Final = tuple(h / sum(HOURLY) for h in HOURLY)
_WEEKDAY: Final = (0.95, 0.95, 1.0, 1.0, 1.05, 1.15, 1.1)  # Monday .. Sunday
RESTOCK_HOUR: Final = 9  # store-local time of the daily stock delivery
REORDER_WHEN_OUT: Final = 0.6  # share of products reordered only when sold out
DISCOUNT_CODES: Final = ("WELCOME10", "FLASH20", "FREESHIP")


class Simulation:
    """Drives ``sf`` (on a :class:`VirtualClock`) through ``days`` of traffic from ``start``;
    :meth:`run` once."""

    def __init__(self, sf: Storeflow, catalog: Catalog, people: Sequence[Customer], *, start: datetime,
                 days: int, seed: int = 7, model: TrafficModel | None = None) -> None:
        from storeflow.clock import VirtualClock

        if not isinstance(sf.clock, VirtualClock):
            raise TypeError("the simulation needs a Storeflow on a VirtualClock")
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        self.sf, self.clock = sf, sf.clock
        self.catalog, self.start, self.days = catalog, start, days
        self.end = start + timedelta(days=days)
        self.model = model or TrafficModel()
        self.rng = random.Random(f"traffic:{seed}")
        self.seed = seed
        self.store_tz = ZoneInfo(sf.settings.timezone)
        self.currency = catalog.currency
        self.people = [_Person(c) for c in people]
        self.by_email = {p.customer.email: i for i, p in enumerate(self.people)}
        self.stats = SimStats()
        self._queue: list[_Item] = []
        self._seq = 0
        self._counter: dict[str, int] = {}
        # stock mirror: variant id -> location -> units; sold-out variants wait for a delivery
        self.stock = {v.variant_id: dict(v.stock) for p in catalog.products for v in p.variants}
        self._deliveries: dict[str, datetime] = {}  # product id -> when the reorder arrives
        # Most products are reordered only once they sell out; the others at the low-stock threshold.
        low = sf.settings.low_stock_threshold
        self._reorder_point = {p.product_id: 0 if self.rng.random() < REORDER_WHEN_OUT else low
                               for p in catalog.products}
        self._visible: list[Product] = list(catalog.products)
        self._visible_cum: list[float] = []  # cumulative popularity, for drawing a product
        self._zones = self._group_by_zone()
        # the batch being collected
        self._batch: list[dict[str, Any]] = []
        self._batch_started: datetime | None = None
        self._batch_at: datetime | None = None
        self._batch_runners: set[int] = set()  # people with a run-starting event in the batch
        self._next_due: datetime | None = None
        self._flows_ran = [True, True]  # since the last look at (products, sent mail)
        self._mail_mark: datetime | None = None
        self._mail_seen: set[str] = set()  # ids of the messages seen that were sent at _mail_mark

    # -- ids and queue -------------------------------------------------------------------------
    def _id(self, kind: str) -> str:
        n = self._counter.get(kind, 0) + 1
        self._counter[kind] = n
        return f"{kind}-{n:06d}"

    def _push(self, at: datetime, kind: str, data: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, _Item(at, self._seq, kind, data))

    def _group_by_zone(self) -> dict[str, _Zone]:
        zones: dict[str, _Zone] = {}
        for i, p in enumerate(self.people):
            zone = zones.setdefault(p.customer.timezone, _Zone(ZoneInfo(p.customer.timezone)))
            if p.customer.prospect:
                zone.waiting.append(i)
            else:
                zone.add(i, p.customer.activity)
        return zones

    # -- the run -------------------------------------------------------------------------------
    def run(self, progress: Callable[[int, int], None] | None = None,
            stop: Callable[[], bool] | None = None) -> SimStats:
        """Simulate the days; ``progress`` hears after each day, and ``stop`` (asked after each day)
        ends the run early, with ``stats.days_done`` the days simulated."""
        t0 = time.perf_counter()
        self.clock.set(self.start)
        self._setup()
        self.stats.setup_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        self._plan_prospects()
        hours = self.days * 24
        for hour in range(hours):
            h0 = self.start + timedelta(hours=hour)
            h1 = h0 + timedelta(hours=1)
            if self._flows_ran[0]:  # only flows change what is published, and only in run_until
                self._flows_ran[0] = False
                self._refresh_visible()
            if h0.astimezone(self.store_tz).hour == RESTOCK_HOUR:
                self._restock(h0)
            self._plan_visits(h0)
            while self._queue and self._queue[0].at < h1:
                self._handle(heapq.heappop(self._queue))
            self._flush()
            self._advance(h1)
            if self._flows_ran[1]:  # only flows send email
                self._flows_ran[1] = False
                self._read_mail()
            if (hour + 1) % 24 == 0:
                self.stats.days_done = (hour + 1) // 24
                if progress is not None:
                    progress(self.stats.days_done, self.days)
                if stop is not None and stop():
                    break
        self.stats.run_s = time.perf_counter() - t1
        return self.stats

    def follow_mail(self, until: datetime) -> None:
        """After :meth:`run`: hour by hour up to ``until``, customers read the email sent since (a
        campaign's, say) and open, click or unsubscribe as in the run; no new visits are planned."""
        while (now := self.clock.now()) < until:
            h1 = min(until, now + timedelta(hours=1))
            self._read_mail()
            while self._queue and self._queue[0].at < h1:
                self._handle(heapq.heappop(self._queue))
            self._flush()
            self._advance(h1)
            self.clock.set(max(h1, self.clock.now()))
        self._read_mail()

    def import_customers(self) -> int:
        """The store's customer list (everyone but the prospects), ingested before the period as
        ``customer_created`` events dated a year back (too old to start flows), in batches: a store
        that installs storeflow with its customers. Call before :meth:`run`; returns how many."""
        at = (self.start - timedelta(days=365)).isoformat()
        batch: list[dict[str, Any]] = []
        count = 0
        for person in self.people:
            c = person.customer
            if c.prospect:
                continue
            person.known = True
            batch.append({"type": "customer_created", "id": f"import:{c.customer_id}", "occurred_at": at,
                          "email": c.email, "customer_id": c.customer_id, "phone": c.phone,
                          "profile": c.profile_fields()})
            if len(batch) == BATCH_MAX:
                count += self._import(batch)
                batch = []
        return count + (self._import(batch) if batch else 0)

    def _import(self, batch: list[dict[str, Any]]) -> int:
        results = self.sf.ingest(batch, source=SOURCE)
        for result in results:
            if result.status not in ("accepted", "duplicate"):
                self._note_error(f"import: {result.error}")
        return sum(result.status == "accepted" for result in results)

    def _setup(self) -> None:
        """The catalog and its stock, dated two days back (too old to start flows)."""
        at = self.start - timedelta(days=2)
        items: list[dict[str, Any]] = [product_event(p, self.currency, at) for p in self.catalog.products]
        for p in self.catalog.products:
            items += stock_events(p, at + timedelta(minutes=1))
        for i in range(0, len(items), BATCH_MAX):
            self._ingest(items[i:i + BATCH_MAX])
        for p in self.catalog.products:  # the shop has already reordered what it has run out of
            if self._units(p) == 0:
                self._deliveries[p.product_id] = self.start + timedelta(days=self.rng.randint(1, 4))
        self.sf.drain()
        self._next_due = self.sf.next_due_at()

    # -- planning ------------------------------------------------------------------------------
    def _plan_prospects(self) -> None:
        span = max(self.days, JOIN_HORIZON_DAYS) * 24
        for index, person in enumerate(self.people):
            if not person.customer.prospect:
                continue
            tz = ZoneInfo(person.customer.timezone)
            for _ in range(50):
                at = self.start + timedelta(hours=self.rng.randrange(span), seconds=self.rng.randrange(3600))
                if self.rng.random() < _HOURLY_SHARE[at.astimezone(tz).hour] * 24 / 2.5:
                    break
            if at < self.end:
                person.joined_at = at
                self._push(at, "subscribe", index)

    def _plan_visits(self, h0: datetime) -> None:
        """Visits starting in the hour from ``h0``, per time zone, in the customers' local rhythm."""
        m, rng = self.model, self.rng
        for zone in self._zones.values():
            local = h0.astimezone(zone.tz)
            share = _HOURLY_SHARE[local.hour] * _WEEKDAY[local.weekday()]
            for i in [i for i in zone.waiting if self._is_customer(i, h0)]:  # subscribed: a customer now
                zone.waiting.remove(i)
                zone.add(i, self.people[i].customer.activity)
            if zone.members:
                for _ in range(_poisson(rng, zone.total / MEAN_ACTIVITY * m.visits_per_day * share)):
                    who = rng.choices(zone.members, cum_weights=zone.cum)[0]
                    self._push(h0 + timedelta(seconds=rng.randrange(3600)), "visit", who)
            if zone.waiting:  # prospects browse anonymously
                weights = [self.people[i].customer.activity for i in zone.waiting]
                cum: list[float] | None = None
                for _ in range(_poisson(rng, sum(weights) / MEAN_ACTIVITY * m.prospect_visits_per_day * share)):
                    cum = cum or list(itertools.accumulate(weights))  # what choices(weights=) computes, once
                    who = rng.choices(zone.waiting, cum_weights=cum)[0]
                    self._push(h0 + timedelta(seconds=rng.randrange(3600)), "visit", who)

    def _is_customer(self, i: int, at: datetime) -> bool:
        joined = self.people[i].joined_at
        return not self.people[i].customer.prospect or (joined is not None and joined <= at)

    def _refresh_visible(self) -> None:
        with self.sf.store.transaction() as tx:
            status = dict(sql_connection(tx).execute(select(products.c.id, products.c.status)).all())
        self._visible = [p for p in self.catalog.products if status.get(p.product_id, "published") == "published"]
        self._visible_cum = list(itertools.accumulate(p.popularity for p in self._visible))

    def _units(self, product: Product) -> int:
        return sum(sum(self.stock[v.variant_id].values()) for v in product.variants)

    def _reorder(self, product: Product, at: datetime) -> None:
        """The shop reorders a product when a sale takes it to its reorder point (zero, or the
        low-stock threshold); the delivery arrives after a few days' lead time."""
        if product.product_id not in self._deliveries and \
                self._units(product) <= self._reorder_point[product.product_id]:
            self._deliveries[product.product_id] = at + timedelta(days=self.rng.randint(2, 5))

    def _restock(self, at: datetime) -> None:
        """The morning delivery: every product whose reorder has arrived, each variant topped up."""
        arrived = [p for p in self.catalog.products if self._deliveries.get(p.product_id, self.end) <= at]
        per_day = self.model.expected_units(len(self.people), 1)
        minute = 0
        for product in arrived:
            del self._deliveries[product.product_id]
            self.stats.restocks += 1
            for v in product.variants:
                units = max(3, round(per_day * product.popularity / len(product.variants) * 21
                                     * self.rng.uniform(1.0, 1.6)))
                levels = self.stock[v.variant_id]
                levels["warehouse"] = levels.get("warehouse", 0) + units
                minute += 1
                self._emit(at + timedelta(minutes=minute), {
                    "type": "inventory_changed", "id": self._id("restock"),
                    "properties": {"product_id": product.product_id, "variant_id": v.variant_id, "sku": v.sku,
                                   "location": "warehouse", "quantity": levels["warehouse"],
                                   "reason": "restock"}})

    # -- handling queued items -----------------------------------------------------------------
    def _handle(self, item: _Item) -> None:
        if item.kind == "event":
            who, event = item.data
            self._add(item.at, event, who)
        elif item.kind == "visit":
            self._visit(item.at, item.data)
        elif item.kind == "order":
            who, checkout, why = item.data
            self._order(item.at, who, checkout, why)
        elif item.kind == "subscribe":
            self._subscribe(item.at, item.data)
        else:
            self._engage(item.at, item.kind, item.data)

    def _emit(self, at: datetime, event: dict[str, Any], who: int | None = None) -> None:
        event["occurred_at"] = at.isoformat()
        self._push(at, "event", (who, event))

    def _identity(self, i: int, at: datetime, *, full: bool = False) -> dict[str, Any]:
        """Who an event at ``at`` is about: anonymous before a prospect subscribes; the first event
        that names a customer carries their phone and profile fields."""
        person = self.people[i]
        c = person.customer
        if not person.known and not self._is_customer(i, at):
            return {"anonymous_id": f"anon-{c.customer_id}"}
        out: dict[str, Any] = {"email": c.email}
        if full or not person.known:
            out["customer_id"] = c.customer_id
        if not person.known:
            person.known = True
            out["phone"] = c.phone
            out["profile"] = c.profile_fields()
        return out

    def _visit(self, at: datetime, i: int) -> None:
        if not self._visible:
            return
        m, rng = self.model, self.rng
        self.stats.visits += 1
        customer = self._is_customer(i, at)
        t = at
        viewed: list[Product] = []
        for _ in range(4):
            product = rng.choices(self._visible, cum_weights=self._visible_cum)[0]
            viewed.append(product)
            self._emit(t, {"type": "product_viewed", "id": self._id("view"), **self._identity(i, t),
                           "properties": {"product_id": product.product_id, "title": product.title,
                                          "url": product.url, "currency": self.currency,
                                          "price": _amount(min(v.price for v in product.variants))}}, i)
            t += timedelta(seconds=rng.randint(20, 150))
            if rng.random() > m.more_views:
                break
        if rng.random() > m.add_to_cart:
            return
        lines: list[_Line] = []
        cart_id = self._id("cart")
        for n, product in enumerate({p.product_id: p for p in viewed}.values()):
            if n and rng.random() > m.second_item:
                break
            in_stock = [v for v in product.variants if sum(self.stock[v.variant_id].values()) > 0]
            if not in_stock:
                continue
            line = _Line(product, rng.choice(in_stock), 2 if rng.random() < 0.1 else 1)
            lines.append(line)
            t += timedelta(seconds=rng.randint(15, 90))
            self._emit(t, {"type": "product_added_to_cart", "id": self._id("add"), **self._identity(i, t),
                           "properties": {"cart_id": cart_id, "currency": self.currency, **line.as_item()}}, i)
        if not lines:
            return
        self.stats.carts += 1
        if not customer or rng.random() > m.checkout:
            return
        t += timedelta(seconds=rng.randint(30, 240))
        checkout = _Checkout(cart_id, lines, t)
        self.stats.checkouts += 1
        self._emit(t, {"type": "checkout_started", "id": self._id("checkout"), **self._identity(i, t, full=True),
                       "properties": {"checkout_id": cart_id, "currency": self.currency,
                                      "value": _amount(sum((ln.variant.price * ln.quantity for ln in lines),
                                                           Decimal(0))),
                                      "checkout_url": f"{SHOP_URL}/checkouts/{cart_id}",
                                      "items": [ln.as_item() for ln in lines]}}, i)
        if rng.random() < m.order_now:
            self._push(t + timedelta(seconds=rng.randint(180, 900)), "order", (i, checkout, "visit"))
            return
        self.people[i].checkout = checkout
        if rng.random() < m.come_back:
            later = t + timedelta(hours=rng.uniform(3, 96))
            self._push(later, "order", (i, checkout, "came_back"))

    def _subscribe(self, at: datetime, i: int) -> None:
        person = self.people[i]
        c = person.customer
        self.stats.subscribers += 1
        person.known = True
        self._emit(at, {"type": "subscribed", "id": self._id("subscribe"), "email": c.email,
                        "anonymous_id": f"anon-{c.customer_id}", "customer_id": c.customer_id, "phone": c.phone,
                        "profile": c.profile_fields(),
                        "properties": {"channel": "email", "form": "newsletter pop-up"}}, i)

    def _order(self, at: datetime, i: int, checkout: _Checkout, why: str) -> None:
        if checkout.ordered:
            return
        lines = []
        for line in checkout.lines:
            available = sum(self.stock[line.variant.variant_id].values())
            if available > 0:
                lines.append(_Line(line.product, line.variant, min(line.quantity, available)))
        if not lines:
            self.stats.missed_sales += 1
            return
        checkout.ordered = True
        person = self.people[i]
        if person.checkout is checkout:
            person.checkout = None
        order_id = self._id("order")
        total = sum((ln.variant.price * ln.quantity for ln in lines), Decimal(0))
        self.stats.orders += 1
        if why == "click":
            self.stats.orders_after_click += 1
        elif why == "came_back":
            self.stats.orders_came_back += 1
        self._add(at, {"type": "order_placed", "id": order_id, "occurred_at": at.isoformat(),
                       **self._identity(i, at, full=True),
                       "properties": {"order_id": order_id, "number": f"#{1000 + self.stats.orders}",
                                      "checkout_id": checkout.checkout_id, "currency": self.currency,
                                      "total": _amount(total), "items": [ln.as_item() for ln in lines],
                                      "shipping_country": person.customer.country,
                                      "discount_codes": self._discount_codes(i, order_id)}}, i)
        t = at + timedelta(seconds=self.rng.randint(30, 120))
        for line in lines:
            levels = self.stock[line.variant.variant_id]
            left = line.quantity
            for location in ("warehouse", "store"):
                take = min(left, levels.get(location, 0))
                if take <= 0:
                    continue
                levels[location] -= take
                left -= take
                self._emit(t, {"type": "inventory_changed", "id": self._id("stock"),
                               "properties": {"product_id": line.product.product_id,
                                              "variant_id": line.variant.variant_id, "sku": line.variant.sku,
                                              "location": location, "delta": -take, "reason": "order",
                                              "order_id": order_id}})
            self._reorder(line.product, at)

    def _discount_codes(self, i: int, order_id: str) -> list[str]:
        """A tenth of the customers use a code on every order (bargain hunters), the others on one
        order in eight; drawn apart from the traffic's own randomness, which they leave as it was."""
        customer = self.people[i].customer.customer_id
        draw = random.Random(f"codes:{self.seed}:{order_id}").random()
        if draw >= 0.125 and random.Random(f"hunter:{self.seed}:{customer}").random() >= 0.1:
            return []
        return [DISCOUNT_CODES[int(draw * 1000) % len(DISCOUNT_CODES)]]

    # -- email engagement ----------------------------------------------------------------------
    def _read_mail(self) -> None:
        """Sent emails to customers since the last look: schedule their opens, clicks and orders."""
        mark = self._mail_mark
        q = (select(outbox.c.id, outbox.c.flow_id, outbox.c.step_key, outbox.c.address, outbox.c.kind,
                    outbox.c.payload, outbox.c.sent_at)
             .where(outbox.c.channel == "email", outbox.c.sent_at.is_not(None),
                    outbox.c.kind.in_(("marketing", "transactional")))
             .order_by(outbox.c.sent_at, outbox.c.address, outbox.c.flow_id, outbox.c.step_key))
        if mark is not None:
            q = q.where(outbox.c.sent_at >= mark)
        with self.sf.store.transaction() as tx:
            rows = [dict(r) for r in sql_connection(tx).execute(q).mappings()]
        for row in rows:
            if row["id"] in self._mail_seen:
                continue
            if row["sent_at"] != self._mail_mark:  # rows come in sent_at order: older ids are never read again
                self._mail_seen.clear()
                self._mail_mark = row["sent_at"]
            self._mail_seen.add(row["id"])
            self.stats.emails_seen += 1
            i = self.by_email.get(str(row["address"] or "").lower())
            if i is None:
                continue
            self._plan_engagement(i, row)

    def _plan_engagement(self, i: int, row: dict[str, Any]) -> None:
        m, rng = self.model, self.rng
        links = message_links(dict(row["payload"] or {}))
        if not links["open"] or rng.random() > m.open_rate:
            return
        tz = ZoneInfo(self.people[i].customer.timezone)
        opened = max(row["sent_at"], self.clock.now()) + timedelta(minutes=rng.lognormvariate(math.log(60), 1.0))
        local = opened.astimezone(tz)
        if local.hour < 7:  # asleep: read it in the morning
            opened += timedelta(hours=7 - local.hour, minutes=rng.randint(0, 90))
        self._push(opened, "open", (i, row, links["open"][0]))
        if row["kind"] == "marketing" and links["unsubscribe"] and rng.random() < m.unsubscribe_rate:
            self._push(opened + timedelta(seconds=rng.randint(20, 120)), "unsubscribe",
                       (i, row, links["unsubscribe"][0]))
            return
        if links["click"] and rng.random() < m.click_rate:
            self._push(opened + timedelta(seconds=rng.randint(10, 300)), "click", (i, row, rng.choice(links["click"])))

    def _engage(self, at: datetime, kind: str, data: tuple[int, dict[str, Any], str]) -> None:
        i, row, token = data
        self._flush()
        self._advance(at, slack=True)
        service = self.sf.messages
        try:
            if kind == "open":
                service.record_open(token)
                self.stats.opens += 1
            elif kind == "unsubscribe":
                service.unsubscribe(token)
                self.stats.unsubscribes += 1
            else:
                service.record_click(token)
                self.stats.clicks += 1
        except Exception as exc:  # a link the engine refuses is a finding to report, not a crash
            self._note_error(f"{kind} of message {row['id']}: {exc}")
            return
        finally:
            self._runs_may_be_due()
        if kind != "click":
            return
        person = self.people[i]
        open_checkout = person.checkout
        cart_open = open_checkout is not None and not open_checkout.ordered
        if row.get("flow_id") == "abandoned-cart" and cart_open and self.rng.random() < self.model.cart_click_orders:
            self._push(at + timedelta(seconds=self.rng.randint(120, 1500)), "order", (i, open_checkout, "click"))
            return
        self._push(at + timedelta(seconds=self.rng.randint(5, 60)), "visit", i)

    # -- batching, time and ingest -------------------------------------------------------------
    def _add(self, at: datetime, event: dict[str, Any], who: int | None) -> None:
        """Queue one event for ingest, keeping causality (see the module docstring)."""
        if self._next_due is not None and at >= self._next_due + RUN_SLACK:
            self._flush()
            self._advance(at)
        elif self._batch and self._batch_started is not None and (
                (who is not None and who in self._batch_runners) or at - self._batch_started > BATCH_SPAN
                or len(self._batch) >= BATCH_MAX):
            self._flush()
        if not self._batch:
            self._batch_started = at
        self._batch.append(event)
        self._batch_at = at
        if who is not None and event["type"] in ("checkout_started", "order_placed", "subscribed"):
            self._batch_runners.add(who)

    def _flush(self) -> None:
        if not self._batch:
            return
        batch, at = self._batch, self._batch_at
        self._batch, self._batch_started, self._batch_at = [], None, None
        self._batch_runners.clear()
        if at is not None and at > self.clock.now():
            self.clock.set(at)
        self._ingest(batch)
        self._runs_may_be_due()

    def _runs_may_be_due(self) -> None:
        """After ingest: runs it started (or woke) are due now. Only the worker's queue can change."""
        due = self.sf.worker.next_due_at()
        if due is not None and (self._next_due is None or due < self._next_due):
            self._next_due = due

    def _advance(self, until: datetime, *, slack: bool = False) -> None:
        """Move the clock to ``until``, running what is due on the way; with ``slack``, runs that
        have been due for less than ``RUN_SLACK`` at ``until`` wait for a later advance (as they
        wait for the next batch): a worker's lag, not one drain per email open."""
        if until <= self.clock.now():
            return
        due = self._next_due
        if due is not None and due <= until and not (slack and until < due + RUN_SLACK):
            self.sf.run_until(until)
            self._flows_ran = [True, True]
            self._next_due = self.sf.next_due_at()
        else:
            self.clock.set(until)

    def _ingest(self, items: list[dict[str, Any]]) -> None:
        for result in self.sf.ingest(items, source=SOURCE):
            if result.status == "accepted":
                self.stats.events += 1
            elif result.status == "duplicate":
                self.stats.duplicates += 1
            else:
                self.stats.rejected += 1
                self._note_error(f"{items[result.index].get('type')}: {result.error}")

    def _note_error(self, text: str) -> None:
        if len(self.stats.errors) < 20:
            self.stats.errors.append(text)

