"""Email throughput: runs render a marketing email and the dispatcher sends it over SMTP.

Each run renders a realistic marketing email at step time in the worker (Jinja sandbox, babel money
in IDR, BRL or USD for the customer's locale, click tracking, an open pixel, List-Unsubscribe), and
the dispatcher delivers it over pooled SMTP connections to a local aiosmtpd server running in a
separate process (so it does not share this process's GIL), then records each message as sent.
The server counts what it received; the scenario fails unless every message arrived exactly once
and is recorded as sent with one attempt.

Figures: ``email`` (messages/s end to end: rendering plus sending), ``email render`` (steps that
render and queue a message, per second) and ``email send`` (messages sent and recorded, per second).
Each also gives ``per_cpu_second``: messages per CPU-second of this process (wall-clock rates on a
shared machine move with its load; this one much less). The SMTP server's own CPU time is recorded
as ``smtp_server_cpu_seconds``.

    .venv/bin/python -m benchmarks --scenario email [--quick] [--backend sqlite]
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import func, select

from benchmarks.common import START, BenchmarkError, Figure, count_statements, open_storeflow
from benchmarks.targets import Target
from storeflow.clock import VirtualClock
from storeflow.store.tables import delivery_attempts

QUICK_MESSAGES = 30
FULL_MESSAGES = 3_000

FLOW = """
id: bench-email
name: Bench email
reentry: always
trigger: {event: checkout_started}
steps:
  - action: email
    subject: "{{ profile.first_name or 'Hi' }}, your cart is waiting"
    html: |
      <html><body>
      <h1>Hi {{ profile.first_name or 'there' }},</h1>
      <p>You left {{ cart.item_count }} item(s) worth {{ cart.value | money }} in your cart.</p>
      <table>
      {% for item in cart.items %}
      <tr><td><a href="https://shop.example/products/{{ item.product_id }}">{{ item.title }}</a></td>
      <td>{{ item.quantity }}</td><td>{{ item.price | money }}</td></tr>
      {% endfor %}
      </table>
      <p><a href="{{ cart.checkout_url }}">Finish your order</a></p>
      <p style="font-size:12px">You get this email because you subscribed at shop.example.
      <a href="{{ links.unsubscribe }}">Unsubscribe</a></p>
      </body></html>
    text: |
      Hi {{ profile.first_name or 'there' }}, you left {{ cart.item_count }} item(s) worth {{ cart.value | money }}.
      {% for item in cart.items %}
      - {{ item.title }} x {{ item.quantity }}: {{ item.price | money }}
      {% endfor %}
      Finish your order: {{ cart.checkout_url }}
      Unsubscribe: {{ links.unsubscribe }}
"""

# (locale, time zone, currency, first name, item prices): the demo store's three markets.
MARKETS = (
    ("id_ID", "Asia/Jakarta", "IDR", "Budi", ("149000", "89000", "299000")),
    ("pt_BR", "America/Sao_Paulo", "BRL", "Ana", ("99.90", "49.90", "189.00")),
    ("en_US", "America/New_York", "USD", "Emily", ("24.50", "12.00", "58.75")),
)
TITLES = ("Batik shirt", "Canvas tote", "Linen dress")


def run(target: Target, quick: bool) -> list[Figure]:
    return email(target, QUICK_MESSAGES if quick else FULL_MESSAGES)


def triggers(messages: int) -> list[dict[str, Any]]:
    events = []
    for i in range(messages):
        locale, zone, currency, name, prices = MARKETS[i % len(MARKETS)]
        items = [{"product_id": f"p{j}", "variant_id": f"p{j}-m", "title": TITLES[j], "quantity": 1 + j % 2,
                  "price": prices[j]} for j in range(3)]
        value = sum((float(p) * (1 + j % 2) for j, p in enumerate(prices)), 0.0)
        events.append({
            "type": "checkout_started", "id": f"ck{i}", "email": f"customer{i}@example.com",
            "profile": {"first_name": name, "locale": locale, "timezone": zone, "consent": {"email": "subscribed"}},
            "properties": {"checkout_id": f"ck{i}", "value": f"{value:.2f}" if currency != "IDR" else f"{value:.0f}",
                           "currency": currency, "checkout_url": f"https://shop.example/checkouts/ck{i}",
                           "items": items},
        })
    return events


def email(target: Target, messages: int) -> list[Figure]:
    with target.database() as url, SmtpSink() as sink:
        clock = VirtualClock(START)
        sf = open_storeflow(url, clock, smtp_host="127.0.0.1", smtp_port=sink.port, signing_secret="b" * 32)
        try:
            sf.flows.apply(sf.flows.validate(FLOW, "bench-email.yaml"), status="live")
            events = triggers(messages)
            for i in range(0, len(events), 1000):
                sf.ingest(events[i:i + 1000])
            with count_statements(sf) as render_sql:
                started, cpu_started = time.perf_counter(), time.process_time()
                while sf.worker.run_batch().claimed:  # each step renders its email into the outbox
                    pass
                render_s, render_cpu = time.perf_counter() - started, time.process_time() - cpu_started
            with count_statements(sf) as send_sql:
                started, cpu_started = time.perf_counter(), time.process_time()
                while sf.dispatcher.run_batch():  # SMTP, then recorded as sent
                    pass
                send_s, send_cpu = time.perf_counter() - started, time.process_time() - cpu_started
            with sf.store.read() as tx:
                statuses = tx.outbox_counts()
                attempts = tx.conn.execute(select(func.count()).select_from(delivery_attempts)).scalar_one()
            settings = sf.settings
        finally:
            sf.close()
        received = sink.stop()
    sent = statuses.get("sent", 0)
    if statuses != {"sent": messages} or attempts != messages or received["messages"] != messages \
            or received["unsubscribe_headers"] != messages:
        raise BenchmarkError(f"email: outbox {statuses}, {attempts} attempts, server received {received}; "
                             f"expected {messages} sent once each, with List-Unsubscribe")
    common = {"messages": messages, "received": received["messages"],
              "received_bytes": received["bytes"], "connections": received["connections"],
              "smtp_server_cpu_seconds": round(received["cpu_seconds"], 3),
              "dispatch_concurrency": settings.dispatch_concurrency, "smtp_pool_size": settings.smtp_pool_size,
              "dispatch_batch_size": settings.dispatch_batch_size}
    total_s = render_s + send_s
    return [
        Figure(target.name, "email", sent, "messages", total_s, {
            **common, "cpu_seconds": round(render_cpu + send_cpu, 3),
            "per_cpu_second": round(messages / (render_cpu + send_cpu), 1) if render_cpu + send_cpu else None,
            "render_per_second": round(messages / render_s, 1) if render_s else None,
            "send_per_second": round(sent / send_s, 1) if send_s else None,
            "sql_statements": render_sql[0] + send_sql[0],
        }, note="rendered at step time, sent over SMTP to a server in another process; target >= 500/s"),
        Figure(target.name, "email render", messages, "messages", render_s, {
            "cpu_seconds": round(render_cpu, 3),
            "per_cpu_second": round(messages / render_cpu, 1) if render_cpu else None,
            "sql_statements": render_sql[0],
            "sql_per_message": round(render_sql[0] / messages, 2)}, note="worker steps: render, queue"),
        Figure(target.name, "email send", sent, "messages", send_s, {
            **common, "cpu_seconds": round(send_cpu, 3),
            "per_cpu_second": round(sent / send_cpu, 1) if send_cpu else None,
            "sql_statements": send_sql[0],
            "sql_per_message": round(send_sql[0] / messages, 2)}, note="dispatcher: SMTP, record as sent"),
    ]


# -- the SMTP server, in its own process -----------------------------------------------------------

class _Counter:
    """aiosmtpd handler: counts messages, bytes and List-Unsubscribe headers; keeps nothing."""

    def __init__(self) -> None:
        self.messages = self.bytes = self.unsubscribe_headers = self.connections = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or b""
        self.messages += len(envelope.rcpt_tos)
        self.bytes += len(data)
        header_end = data.find(b"\r\n\r\n")
        if b"\nList-Unsubscribe:" in data[:header_end]:
            self.unsubscribe_headers += 1
        return "250 Message accepted for delivery"

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses


def _serve(conn: Connection) -> None:
    from storeflow.simulate.mailbox import EphemeralController

    counter = _Counter()
    controller = EphemeralController(counter, hostname="127.0.0.1", port=0, ready_timeout=10.0)
    controller.start()
    try:
        conn.send(int(controller.port))
        conn.recv()  # stop
    finally:
        controller.stop()
    conn.send({"messages": counter.messages, "bytes": counter.bytes,
               "unsubscribe_headers": counter.unsubscribe_headers, "connections": counter.connections,
               "cpu_seconds": time.process_time()})


class SmtpSink:
    """An aiosmtpd server in a child process that counts what it receives."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(child,), name="bench-smtp", daemon=True)
        self.port = 0
        self._result: dict[str, Any] | None = None

    def __enter__(self) -> SmtpSink:
        self._process.start()
        try:
            if not self._conn.poll(30):
                raise EOFError
            self.port = int(self._conn.recv())
        except EOFError:
            self._process.kill()
            raise BenchmarkError("the benchmark's SMTP server process did not start") from None
        return self

    def stop(self) -> dict[str, Any]:
        if self._result is None:
            self._conn.send("stop")
            self._result = dict(self._conn.recv()) if self._conn.poll(30) else {}
            self._process.join(10)
        return self._result

    def __exit__(self, *_exc: object) -> None:
        if self._process.is_alive():
            try:
                self.stop()
            finally:
                if self._process.is_alive():
                    self._process.kill()
                    self._process.join(5)
        self._conn.close()
