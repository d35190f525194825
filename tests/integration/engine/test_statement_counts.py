"""Statements per batch on the hot paths, on both backends: the worker's batch of runs (``exit_when``
history before every step, a suppression check per message) and the read paths (runs per flow,
delivery attempts of a run's messages) take a number of statements that does not grow with the
number of runs, profiles or messages. Counted with SQLAlchemy's ``before_cursor_execute``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from helpers import apply
from sqlalchemy import event

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock

# Six steps, an exit_when with history checked before each, and an email (a suppression lookup).
_FLOW = """\
id: counted{n}
name: Counted {n}
reentry: always
trigger: {{event: customer_updated}}
exit_when:
  any:
    - history: {{event: order_placed, since: flow_start}}
      exists: true
    - history: {{event: product_viewed, within: 30d}}
      count: {{gte: 1000}}
steps:
  - action: tag
    tags: [one]
  - action: note
    text: two
  - action: email
    kind: transactional
    subject: Hello
    text: hi
  - action: set_property
    property: visits
    increment: 1
  - action: note
    text: five
  - action: tag
    tags: [six]
"""


@contextmanager
def _counting(sf: Storeflow) -> Iterator[list[str]]:
    """The SQL statements sent on any connection of the store while inside."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engines = {id(e): e for e in (sf.store.engine, sf.store.read_engine)}  # type: ignore[attr-defined]
    for eng in engines.values():
        event.listen(eng, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        for eng in engines.values():
            event.remove(eng, "before_cursor_execute", count)


def _batch_statements(sf: Storeflow, clock: VirtualClock, runs: int, tag: str) -> int:
    """Statements of one worker batch that advances ``runs`` fresh runs through all six steps."""
    sf.ingest([{"type": "customer_updated", "email": f"{tag}{i}@example.com"} for i in range(runs)])
    clock.advance(timedelta(seconds=1))
    with _counting(sf) as seen:
        result = sf.worker.run_batch()
    assert result.claimed == runs and result.completed == runs, result
    assert result.steps == runs * 6
    return len(seen)


def test_a_worker_batch_takes_statements_independent_of_its_runs(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, _FLOW.format(n=1))
    small = _batch_statements(sf, clock, 10, "a")
    large = _batch_statements(sf, clock, 40, "b")
    # 60 and 240 history checks and 10 and 40 suppression checks were one query each before.
    assert large <= small + 2, f"10 runs took {small} statements, 40 runs took {large}"
    assert small <= 25, f"10 runs x 6 steps took {small} statements"


def _read_statements(sf: Storeflow, read: Callable[[], Any]) -> int:
    with _counting(sf) as seen:
        read()
    return len(seen)


def test_listing_flows_counts_their_runs_in_one_query(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, _FLOW.format(n=1))
    sf.ingest([{"type": "customer_updated", "email": "x@example.com"}])
    one = _read_statements(sf, sf.flows.list)
    for n in range(2, 8):
        apply(sf, _FLOW.format(n=n))
    sf.ingest([{"type": "customer_updated", "email": "y@example.com"}])
    clock.advance(timedelta(seconds=1))
    sf.worker.run_batch()
    flows = sf.flows.list()
    assert len(flows) == 7 and all(sum(f["runs"].values()) >= 1 for f in flows)
    assert _read_statements(sf, sf.flows.list) == one


def test_a_run_loads_the_attempts_of_its_messages_in_one_query(sf: Storeflow, clock: VirtualClock) -> None:
    steps = "".join(f"  - action: email\n    kind: transactional\n    subject: S{i}\n    text: t{i}\n"
                    for i in range(8))
    apply(sf, "id: many\nname: Many\ntrigger: {event: customer_updated}\nsteps:\n" + steps)
    apply(sf, "id: few\nname: Few\ntrigger: {event: customer_updated}\nsteps:\n"
              "  - action: email\n    kind: transactional\n    subject: S\n    text: t\n")
    sf.ingest([{"type": "customer_updated", "email": "m@example.com"}])
    sf.drain()
    runs = {r["flow_id"]: r["id"] for r in sf.views.runs()}
    many = sf.views.run(runs["many"])
    assert len(many["messages"]) == 8 and all(m["attempts_log"] for m in many["messages"])
    assert (_read_statements(sf, lambda: sf.views.run(runs["many"]))
            == _read_statements(sf, lambda: sf.views.run(runs["few"])))


def _order(email: str, key: str) -> dict[str, object]:
    return {"type": "order_placed", "email": email, "id": key,
            "properties": {"order_id": key, "total": "20.00", "currency": "USD"}}


def test_batched_history_and_suppressions_answer_each_run_as_alone(sf: Storeflow, clock: VirtualClock) -> None:
    """Runs of one batch with different start times: each run's ``since: flow_start`` window is its
    own (an order between two runs' starts counts for the earlier run only), and each message's
    suppression is its own address's."""
    apply(sf, "id: series\nname: Series\nreentry: always\ntrigger: {event: customer_updated}\n"
              "exit_when: {history: {event: order_placed, since: flow_start}, exists: true}\n"
              "steps:\n  - wait: 1h\n  - action: tag\n    tags: [reached]\n"
              "  - action: email\n    kind: transactional\n    subject: S\n    text: t\n")
    sf.ingest([{"type": "customer_updated", "email": "early@example.com"}])
    clock.advance(timedelta(minutes=5))
    sf.ingest([_order("late@example.com", "o-before-late-started"),
               _order("early@example.com", "o-after-early-started")])
    clock.advance(timedelta(minutes=5))
    sf.ingest([{"type": "customer_updated", "email": e} for e in ("late@example.com", "quiet@example.com")])
    with sf.store.transaction() as tx:
        tx.suppress("email", "Quiet@example.com", "bounced", clock.now())
    assert sf.worker.run_batch().claimed == 3  # one batch: early exits, the others wait
    clock.advance(timedelta(hours=2))
    assert sf.worker.run_batch().claimed == 2
    runs = {sf.views.profile(str(r["profile_id"]))["email"]: r for r in sf.views.runs()}
    assert runs["early@example.com"]["status"] == "exited"
    assert runs["late@example.com"]["status"] == "completed"
    assert runs["quiet@example.com"]["status"] == "completed"
    statuses = {m["address"]: m["status"] for r in runs.values() for m in sf.views.run(str(r["id"]))["messages"]}
    assert statuses == {"late@example.com": "pending", "quiet@example.com": "suppressed"}


def _order_batch_statements(sf: Storeflow, n: int, tag: str) -> int:
    with _counting(sf) as seen:
        results = sf.ingest([{"type": "order_placed", "email": f"{tag}{i}@example.com", "properties": {
            "order_id": f"{tag}-o{i}", "total": "10", "currency": "USD",
            "items": [{"product_id": "tee", "sku": "TEE", "quantity": 1, "price": "10"}]}} for i in range(n)])
    assert [r.status for r in results] == ["accepted"] * n
    return len(seen)


def test_an_ingest_batch_of_triggering_orders_does_not_flush_per_event(sf: Storeflow) -> None:
    # An order's record reads the products it bought (categories, product tags): through the batch's
    # cache, not a set read that would write the pending rows out before every triggering order.
    apply(sf, """\
id: on-order
name: On order
status: live
trigger: {event: order_placed, filter: {field: order.categories, not_contains: Hats}}
steps: [{action: note, text: hi}]
""")
    sf.ingest([{"type": "product_created", "properties": {"product_id": "tee", "title": "Tee", "product_type": "Shirts",
                                                           "variants": [{"variant_id": "tee-1", "price": "10"}]}}])
    small, large = _order_batch_statements(sf, 5, "s"), _order_batch_statements(sf, 40, "l")
    assert large <= small + 5, (small, large)
