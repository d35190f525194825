"""Email throughput through the engine: runs render a marketing email (Jinja sandbox, babel money,
link tracking, List-Unsubscribe) and the dispatcher sends it over pooled SMTP connections to
storeflow's local SMTP server (aiosmtpd, same machine). Counts messages recorded as sent per second.

    .venv/bin/python -m benchmarks.email_throughput [--messages 500] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.settings import Settings
from storeflow.simulate.mailbox import Mailbox

FLOW = """
id: bench-email
name: Bench email
reentry: always
trigger: {event: checkout_started}
steps:
  - action: email
    subject: "{{ profile.first_name }}, your cart is waiting"
    html: |
      <p>Hi {{ profile.first_name }}, you left {{ cart.item_count }} item(s) worth {{ cart.value | money }}.</p>
      {% for item in cart.items %}<p>{{ item.title }} x {{ item.quantity }}: {{ item.price | money }}</p>{% endfor %}
      <p><a href="https://shop.example/cart">Back to your cart</a></p>
    text: "Total: {{ cart.value | money }} - https://shop.example/cart"
"""


def run(messages: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        clock = VirtualClock()
        with Mailbox(Path(tmp) / "mail", now=clock.now) as box:
            sf = Storeflow(Settings(database_url=f"sqlite:///{tmp}/bench.db", smtp_host=box.host,
                                    smtp_port=box.port, smtp_pool_size=concurrency,
                                    dispatch_concurrency=concurrency, signing_secret="b" * 32), clock=clock)
            try:
                sf.flows.apply(sf.flows.validate(FLOW, "bench.yaml"), status="live")
                events = [{"type": "checkout_started", "email": f"c{i}@example.com", "id": f"ck{i}",
                           "profile": {"first_name": "Budi", "locale": "id_ID", "consent": {"email": "subscribed"}},
                           "properties": {"checkout_id": f"ck{i}", "value": "299000", "currency": "IDR",
                                          "items": [{"product_id": "p1", "title": "Batik", "quantity": 1,
                                                     "price": "299000"}]}} for i in range(messages)]
                for start in range(0, messages, 1000):
                    sf.ingest(events[start:start + 1000])
                t0 = time.perf_counter()
                while sf.worker.run_batch().claimed:  # render: steps -> outbox
                    pass
                t1 = time.perf_counter()
                while sf.dispatcher.run_batch():  # send over SMTP
                    pass
                t2 = time.perf_counter()
                with sf.store.read() as tx:
                    sent = tx.outbox_counts().get("sent", 0)
                received = box.count
            finally:
                sf.close()
    return {"messages": messages, "sent": sent, "received": received, "render_s": t1 - t0, "send_s": t2 - t1,
            "rendered_per_s": messages / (t1 - t0), "sent_per_s": sent / (t2 - t1),
            "end_to_end_per_s": sent / (t2 - t0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    result = run(args.messages, args.concurrency)
    for key, value in result.items():
        print(f"{key:>18}: {value:,.1f}" if isinstance(value, float) else f"{key:>18}: {value}")


if __name__ == "__main__":
    main()
