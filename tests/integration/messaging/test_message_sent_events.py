"""A message recorded as sent always gets its ``message_sent`` event, once, even when the worker
dies right after recording the send: the transaction that records the send's outcome also marks
the message ``event_pending``, and whoever dispatches next stores the event and clears the mark in
one transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from messaging_harness import Shop, apply

from storeflow.clock import VirtualClock
from storeflow.store.sql.write_behind import WriteBehindTx

RECEIPT = """
id: receipt
name: Receipt
reentry: always
trigger: {event: order_placed}
steps:
  - action: email
    kind: transactional
    subject: "Thanks for order {{ order.id }}"
    text: "We got it."
"""


class Crash(Exception):
    """Stands for the process dying at this point."""


def _state(shop: Shop) -> tuple[str, list[str]]:
    with shop.sf.store.read() as tx:
        [message] = tx.list_messages(flow_id="receipt")
        events = [e["type"] for e in shop.sf.views.profile(message["profile_id"])["timeline"]]
    return message["status"], [t for t in events if t == "message_sent"]


def test_a_crash_before_message_sent_is_stored_loses_no_event(
        shop: Shop, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    apply(shop.sf, RECEIPT)
    shop.sf.ingest([{"type": "order_placed", "email": "ana@example.com",
                     "properties": {"order_id": "o1", "total": "10", "currency": "BRL"}}])
    assert shop.sf.worker.run_batch().claimed == 1  # the step queues the email

    original = WriteBehindTx.flush

    def crash_on_message_sent(self: WriteBehindTx) -> None:
        if any(e["type"] == "message_sent" for e in self._events):
            raise Crash("the process died while storing message_sent")
        original(self)

    monkeypatch.setattr(WriteBehindTx, "flush", crash_on_message_sent)
    with pytest.raises(Crash):
        shop.sf.dispatcher.run_batch()
    assert len(shop.inbox.to("ana@example.com")) == 1  # the email went out before the crash
    assert _state(shop) == ("sent", [])

    # Restarted: the next dispatch, with nothing else to send, stores the event; once.
    monkeypatch.setattr(WriteBehindTx, "flush", original)
    clock.advance(timedelta(minutes=1))
    assert shop.sf.dispatcher.run_batch() == 0
    assert _state(shop) == ("sent", ["message_sent"])
    shop.sf.dispatcher.run_batch()
    assert _state(shop) == ("sent", ["message_sent"])
    assert len(shop.inbox.to("ana@example.com")) == 1


def test_a_sent_message_gets_its_event_in_the_same_dispatch(shop: Shop) -> None:
    apply(shop.sf, RECEIPT)
    shop.sf.ingest([{"type": "order_placed", "email": "bo@example.com",
                     "properties": {"order_id": "o2", "total": "10", "currency": "BRL"}}])
    shop.sf.drain()
    assert _state(shop) == ("sent", ["message_sent"])
