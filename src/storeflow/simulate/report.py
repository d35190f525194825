"""What the demo store did, read back from the store (not from the simulator's own counters).

:func:`collect` gathers runs per flow, messages per flow step (the message records), products hidden
and republished by flows, low-stock alerts, and orders placed after an abandoned-cart email;
:func:`render` prints them as Rich tables.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from babel.numbers import format_currency
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from storeflow.model.money import from_minor
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import events, flows, orders, outbox, profiles, run_steps, runs

if TYPE_CHECKING:
    from storeflow.app import Storeflow
    from storeflow.simulate.traffic_model import SimStats

CART_FLOW: Final = "abandoned-cart"
ALERT_FLOW: Final = "low-stock-alert"
SENT: Final = ("sent", "delivered")  # a message that went out (opens and clicks are separate columns)
CONVERSION_WINDOW: Final = timedelta(days=7)


@dataclass
class FlowRuns:
    flow_id: str
    name: str
    started: int = 0
    finished: int = 0  # completed or exited
    waiting: int = 0
    failed: int = 0


@dataclass
class StepMessages:
    flow_id: str
    step_key: str
    channel: str
    sent: int = 0
    opened: int = 0
    clicked: int = 0
    not_sent: Counter[str] = field(default_factory=Counter)  # status -> count


@dataclass
class DemoReport:
    events_stored: int = 0
    profiles: int = 0
    flows: list[FlowRuns] = field(default_factory=list)
    messages: list[StepMessages] = field(default_factory=list)
    hidden: int = 0
    hidden_products: int = 0
    republished: int = 0
    republished_products: int = 0
    alerts: int = 0
    alert_emails: int = 0
    orders: int = 0
    revenue: Decimal = Decimal(0)
    currency: str = "USD"
    orders_after_cart_email: int = 0
    revenue_after_cart_email: Decimal = Decimal(0)

    def runs_of(self, flow_id: str) -> int:
        return next((f.started for f in self.flows if f.flow_id == flow_id), 0)


def collect(sf: Storeflow, currency: str) -> DemoReport:
    report = DemoReport(currency=currency)
    with sf.store.transaction() as tx:
        conn = sql_connection(tx)
        report.events_stored = int(conn.execute(select(func.count()).select_from(events)).scalar_one())
        report.profiles = int(conn.execute(
            select(func.count()).select_from(profiles).where(profiles.c.merged_into.is_(None))).scalar_one())
        names = dict(conn.execute(select(flows.c.id, flows.c.name).order_by(flows.c.id)).all())
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for flow_id, status, n in conn.execute(
                select(runs.c.flow_id, runs.c.status, func.count()).group_by(runs.c.flow_id, runs.c.status)):
            counts[flow_id][status] += int(n)
        steps = conn.execute(
            select(run_steps.c.kind, run_steps.c.detail)
            .where(run_steps.c.kind.in_(("action:hide_product", "action:publish_product")),
                   run_steps.c.status == "done")).all()
        message_rows = conn.execute(
            select(outbox.c.flow_id, outbox.c.step_key, outbox.c.channel, outbox.c.status, outbox.c.opened_at,
                   outbox.c.clicked_at, outbox.c.profile_id, outbox.c.sent_at, outbox.c.kind)).all()
        order_rows = conn.execute(
            select(orders.c.profile_id, orders.c.placed_at, orders.c.total_minor, orders.c.currency)).all()
    for flow_id in sorted(set(names) | set(counts)):
        c = counts.get(flow_id, Counter())
        report.flows.append(FlowRuns(flow_id, names.get(flow_id, flow_id), started=sum(c.values()),
                                     finished=c["completed"] + c["exited"], waiting=c["waiting"] + c["active"],
                                     failed=c["failed"]))
    report.alerts = report.runs_of(ALERT_FLOW)
    _products(report, steps)
    _messages(report, message_rows)
    _orders(report, message_rows, order_rows)
    return report


def _products(report: DemoReport, steps: Sequence[Any]) -> None:
    hidden: set[str] = set()
    published: set[str] = set()
    for kind, detail in steps:
        product = str((detail or {}).get("product_id", ""))
        if kind == "action:hide_product":
            report.hidden += 1
            hidden.add(product)
        else:
            report.republished += 1
            published.add(product)
    report.hidden_products, report.republished_products = len(hidden), len(published)


def _messages(report: DemoReport, rows: Sequence[Any]) -> None:
    by_step: dict[tuple[str, str, str], StepMessages] = {}
    for flow_id, step_key, channel, status, opened_at, clicked_at, _profile, _sent_at, kind in rows:
        key = (str(flow_id or "-"), str(step_key or "-"), str(channel))
        row = by_step.setdefault(key, StepMessages(*key))
        if status in SENT:
            row.sent += 1
            row.opened += opened_at is not None
            row.clicked += clicked_at is not None
            if flow_id == ALERT_FLOW and kind == "team":
                report.alert_emails += 1
        else:
            row.not_sent[str(status)] += 1
    report.messages = sorted(by_step.values(), key=lambda m: (m.flow_id, m.step_key))


def _orders(report: DemoReport, messages: Sequence[Any], order_rows: Sequence[Any]) -> None:
    """Orders whose customer had an abandoned-cart email sent in the 7 days before the order."""
    cart_mail: dict[str, list[datetime]] = defaultdict(list)
    for flow_id, _step, _channel, status, _o, _c, profile_id, sent_at, _kind in messages:
        if flow_id == CART_FLOW and status in SENT and profile_id and sent_at is not None:
            cart_mail[str(profile_id)].append(sent_at)
    for profile_id, placed_at, total_minor, currency in order_rows:
        amount = from_minor(int(total_minor), str(currency)) if currency == report.currency else Decimal(0)
        report.orders += 1
        report.revenue += amount
        sent = cart_mail.get(str(profile_id), [])
        if any(placed_at - CONVERSION_WINDOW <= at <= placed_at for at in sent):
            report.orders_after_cart_email += 1
            report.revenue_after_cart_email += amount


# -- printing -------------------------------------------------------------------------------------

def _money(amount: Decimal, currency: str, locale: str) -> str:
    if currency == "IDR":  # rupiah prices have no cents, whatever CLDR says
        return format_currency(amount, currency, locale=locale, format="¤#,##0", currency_digits=False)
    return format_currency(amount, currency, locale=locale)


def _n(value: int) -> str:
    return f"{value:,}"


def render(console: Console, report: DemoReport, stats: SimStats, *, title: str, locale: str, wall_s: float) -> None:
    table = Table(title="Runs per flow", title_justify="left")
    table.add_column("flow", no_wrap=True)
    for col in ("runs started", "finished", "waiting", "failed"):
        table.add_column(col, justify="right")
    for f in report.flows:
        table.add_row(f.flow_id, _n(f.started), _n(f.finished), _n(f.waiting), _n(f.failed) if f.failed else "-")
    console.print(f"\n[bold]{title}[/]\n")
    console.print(table)

    messages = Table(title="Messages per flow step", title_justify="left")
    for col in ("flow", "step", "channel"):
        messages.add_column(col, no_wrap=True)
    for col in ("sent", "opens", "clicks"):
        messages.add_column(col, justify="right")
    messages.add_column("not sent", no_wrap=True)
    for m in report.messages:
        others = ", ".join(f"{n} {status}" for status, n in sorted(m.not_sent.items())) or "-"
        tracked = m.channel == "email" and m.flow_id != ALERT_FLOW
        messages.add_row(m.flow_id, m.step_key, m.channel, _n(m.sent), _n(m.opened) if tracked else "-",
                         _n(m.clicked) if tracked else "-", others)
    console.print(messages)

    store = Table(title="The store (orders after a cart email: within 7 days of one)", title_justify="left",
                  show_header=False)
    store.add_column("what", no_wrap=True)
    store.add_column("how many", justify="right", no_wrap=True)
    cur = report.currency
    share = f" ({report.orders_after_cart_email / report.orders:.0%})" if report.orders else ""
    rows = [
        ("events ingested", _n(stats.events)),
        ("events stored (with derived ones)", _n(report.events_stored)),
        ("customer profiles", _n(report.profiles)),
        ("visits / carts / checkouts", f"{_n(stats.visits)} / {_n(stats.carts)} / {_n(stats.checkouts)}"),
        ("orders", f"{_n(report.orders)}, {_money(report.revenue, cur, locale)}"),
        ("orders after a cart email", f"{_n(report.orders_after_cart_email)}{share}, "
                                      f"{_money(report.revenue_after_cart_email, cur, locale)}"),
        ("products hidden (distinct)", f"{_n(report.hidden)} ({_n(report.hidden_products)})"),
        ("products republished (distinct)", f"{_n(report.republished)} ({_n(report.republished_products)})"),
        ("restock deliveries", _n(stats.restocks)),
        ("low-stock alerts (team emails)", f"{_n(report.alerts)} ({_n(report.alert_emails)})"),
        ("new subscribers", _n(stats.subscribers)),
        ("emails opened / clicked / unsubscribed",
         f"{_n(stats.opens)} / {_n(stats.clicks)} / {_n(stats.unsubscribes)}"),
        ("wall time", f"{wall_s:.1f} s (simulation {stats.run_s:.1f} s)"),
    ]
    if stats.rejected:
        rows.append(("events refused by ingest", f"[red]{_n(stats.rejected)}[/]"))
    for what, value in rows:
        store.add_row(what, value)
    console.print(store)
