"""The outbox dispatcher: delivers committed messages through their channel, records every
attempt, retries transient failures with backoff, and never retries a permanent one.

Messages are leased, not locked, while they are sent. A worker that dies mid-send leaves a lease
that runs out. On an idempotent channel (``channel.idempotent``: webhooks carry a stable
``webhook-id``, the HTTP SMS provider an ``Idempotency-Key``) the message is sent again with the
same key and the receiver deduplicates. On a channel without one (SMTP, Twilio) it is not re-sent:
it is marked failed as "delivery state unknown", so no message ever goes out twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from storeflow.channels.base import ChannelRegistry, DeliveryResult, OutboundMessage
from storeflow.channels.retry import RetryPolicy
from storeflow.clock import Clock
from storeflow.errors import NotFoundError
from storeflow.store.base import Store


class Dispatcher:
    def __init__(self, store: Store, clock: Clock, channels: ChannelRegistry, *,
                 policy: RetryPolicy | None = None, lease: timedelta = timedelta(seconds=60),
                 batch_size: int = 50, concurrency: int = 4,
                 on_events: Callable[[list[dict[str, Any]]], object] | None = None) -> None:
        self.store, self.clock, self.channels = store, clock, channels
        self.on_events = on_events
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="storeflow-send") \
            if concurrency > 1 else None
        self.policy = policy or RetryPolicy()
        self.lease, self.batch_size = lease, batch_size

    def run_batch(self) -> int:
        with self.store.transaction() as tx:
            rows = tx.claim_outbox(self.clock.now(), self.batch_size, self.lease)
        if self._pool is not None and len(rows) > 1:
            outcomes = list(self._pool.map(self._deliver, rows))
        else:
            outcomes = [self._deliver(row) for row in rows]
        sent = [row for row, ok in zip(rows, outcomes, strict=True) if ok]
        events = [message_event(row, "message_sent") for row in sent if row.get("profile_id")
                  and row.get("kind") in ("marketing", "transactional")]
        if events and self.on_events is not None:
            self.on_events(events)
        return len(rows)

    def _deliver(self, row: dict[str, Any]) -> bool:
        if row["status"] == "sending" and not self._idempotent(row["channel"]):
            # A worker died mid-send. Without an idempotency key at the provider a re-send could
            # duplicate the message, so it is not re-sent: the record says what is known.
            with self.store.transaction() as tx:
                tx.finish_message(row["id"], self.clock.now(), status="failed",
                                  error="delivery state unknown: a worker stopped during the send; "
                                        "not re-sent, to avoid a duplicate")
            return False
        # Claimed messages wait their turn in this batch; renew the lease right before sending, and
        # skip the message if another worker has taken it over meanwhile.
        # The lease must outlast the send itself, or another worker could take the message over
        # mid-send: at least the message's own timeout plus a margin.
        timeout = float((row["payload"] or {}).get("timeout_s") or 0)
        lease = max(self.lease, timedelta(seconds=timeout + 5))
        with self.store.transaction() as tx:
            if not tx.renew_lease(row["id"], row["held_lease"], self.clock.now() + lease):
                return False
        msg = OutboundMessage(id=row["idempotency_key"], channel=row["channel"], payload=row["payload"],
                              attempt=int(row["attempts"]))
        started = self.clock.now()
        t0 = time.perf_counter()
        try:
            result = self.channels.get(row["channel"]).send(msg, started)
        except NotFoundError as exc:
            result = DeliveryResult("permanent_failure", str(exc), duration_ms=(time.perf_counter() - t0) * 1000)
        now = self.clock.now()
        with self.store.transaction() as tx:
            tx.record_attempt({
                "outbox_id": row["id"], "attempt": msg.attempt, "started_at": started,
                "duration_ms": result.duration_ms, "status": result.status,
                "response_status": result.response_status, "detail": result.detail,
                "response_body": result.response_body,
            })
            if result.ok:
                tx.finish_message(row["id"], now, status="sent", provider_id=result.provider_id)
                return True
            if self.policy.should_retry(result, msg.attempt):
                delay = self.policy.next_delay(result, msg.attempt, msg.id)
                tx.finish_message(row["id"], now, status="pending", error=result.detail,
                                  next_attempt_at=now + delay)
            else:
                why = result.detail if result.status == "permanent_failure" else \
                    f"{result.detail} (gave up after {msg.attempt} attempts)"
                tx.finish_message(row["id"], now, status="failed", error=why)
        return False

    def _idempotent(self, channel: str) -> bool:
        try:
            return bool(getattr(self.channels.get(channel), "idempotent", False))
        except NotFoundError:
            return False

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def next_at(self) -> Any:
        with self.store.read() as tx:
            return tx.next_outbox_at()


def message_event(message: dict[str, Any], event_type: str, **extra: Any) -> dict[str, Any]:
    """The event recording something that happened to a message, on its profile (idempotent)."""
    suffix = extra.pop("key_suffix", "")
    return {
        "type": event_type,
        "id": f"{message['id']}:{event_type}{suffix}",
        "profile_id": message["profile_id"],
        "source": "storeflow",
        "properties": {"message_id": message["id"], "channel": message["channel"], "kind": message.get("kind"),
                       "flow_id": message.get("flow_id"), "step": message.get("step_key"), **extra},
    }
