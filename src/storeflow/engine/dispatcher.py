"""The outbox dispatcher: delivers committed messages through their channel, records every
attempt, retries transient failures with backoff, and never retries a permanent one.

Messages are leased, not locked, while they are sent. A worker that dies mid-send leaves a lease
that runs out. On an idempotent channel (``channel.idempotent``: webhooks carry a stable
``webhook-id``, the HTTP SMS provider an ``Idempotency-Key``) the message is sent again with the
same key and the receiver deduplicates. On a channel without one (SMTP, Twilio) it is not re-sent:
it is marked failed as "delivery state unknown", so no message ever goes out twice.

A batch is sent by ``concurrency`` threads, each over its own pooled connection. Leases are renewed
by compare-and-set in groups right before sending, and each send's outcome (its attempt, the
message's status) is recorded in a short transaction as soon as it completes, by compare-and-set
on the lease; a thread sends its next message only once that is committed (sends that complete
together share the transaction: ``group_commit``). So a worker killed at any instant can repeat
at most the sends in flight at that instant (at most ``concurrency``).

A message sent to a profile also gets a ``message_sent`` event. The transaction that records the
send marks the message ``event_pending``; the batch's events are then stored with one ingest, in
one transaction that clears the marks. A worker killed in between leaves the marks, and the next
dispatch (by any worker) stores those events: none is lost, and none is stored twice (each has a
fixed idempotency key).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storeflow.channels.base import ChannelRegistry, DeliveryResult, OutboundMessage
from storeflow.channels.retry import RetryPolicy
from storeflow.clock import Clock
from storeflow.engine.group_commit import GroupCommit
from storeflow.errors import LostRace, NotFoundError
from storeflow.store.base import Store, StoreTx
from storeflow.store.ports import finished

RENEW_GROUP = 10
"""Messages whose leases one statement renews, right before a sending thread sends them."""

RENEW_SLACK = timedelta(seconds=1)
"""Longest a message of a group may wait between its lease's renewal and its send."""

LEASE_MARGIN = timedelta(seconds=5)

_RECORD_ATTEMPTS = 3  # storing events that lost a race with a concurrent writer is retried

RecordEvents = Callable[[StoreTx, list[dict[str, Any]]], bool]
"""Stores events inside the given transaction; True if a worker should be woken after commit."""


@dataclass
class _Sent:
    """One finished send: the claimed row, its attempt and the channel's result."""

    row: dict[str, Any]
    attempt: int
    started: datetime
    result: DeliveryResult


class Dispatcher:
    def __init__(self, store: Store, clock: Clock, channels: ChannelRegistry, *,
                 policy: RetryPolicy | None = None, lease: timedelta = timedelta(seconds=60),
                 batch_size: int = 50, concurrency: int = 4,
                 on_events: RecordEvents | None = None, on_wake: Callable[[], object] | None = None) -> None:
        self.store, self.clock, self.channels = store, clock, channels
        self.on_events, self.on_wake = on_events, on_wake
        self.concurrency = max(1, concurrency)
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="storeflow-send") \
            if self.concurrency > 1 else None
        self.policy = policy or RetryPolicy()
        self.lease, self.batch_size = lease, batch_size
        self._recorder: GroupCommit[_Sent] = GroupCommit(self._record)

    def run_batch(self) -> int:
        """Claim a batch and send it (``concurrency`` threads, each taking groups of messages),
        recording each outcome as its send completes. Returns how many were claimed.

        A crash after a send and before its outcome is recorded leaves the message ``sending``; when
        its lease runs out it is settled as "delivery state unknown" (or re-sent with the same key
        on an idempotent channel), exactly as for a crash in the middle of a send."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            rows = tx.claim_outbox(now, self.batch_size, self.lease)
        if not rows:
            self._store_events()  # left by a worker that stopped before it stored them
            return 0
        unknown = [row for row in rows if row["status"] == "sending" and not self._idempotent(row["channel"])]
        if unknown:
            # A worker died mid-send. Without an idempotency key at the provider a re-send could
            # duplicate the message, so it is not re-sent: the record says what is known.
            with self.store.transaction() as tx:
                tx.finish_messages([finished(row["id"], self.clock.now(), status="failed",
                                             error="delivery state unknown: a worker stopped during the send; "
                                                   "not re-sent, to avoid a duplicate") for row in unknown])
        skip = {row["id"] for row in unknown}
        todo = [row for row in rows if row["id"] not in skip]
        size = max(1, min(RENEW_GROUP, -(-len(todo) // self.concurrency)))
        groups = [todo[i:i + size] for i in range(0, len(todo), size)]
        if self._pool is not None and len(groups) > 1:
            list(self._pool.map(self._send_group, groups))
        else:
            for group in groups:
                self._send_group(group)
        self._store_events()
        return len(rows)

    def _lease_for(self, row: dict[str, Any]) -> timedelta:
        """The lease must outlast the send itself, or another worker could take the message over
        mid-send: at least the message's own timeout plus a margin."""
        timeout = float((row["payload"] or {}).get("timeout_s") or 0)
        return max(self.lease, timedelta(seconds=timeout) + LEASE_MARGIN)

    def _send_group(self, group: list[dict[str, Any]]) -> None:
        """Renew the group's leases by compare-and-set (one statement), then send each message that
        this worker still holds and record its outcome. Every message goes out within
        ``RENEW_SLACK`` of a renewal of its own lease: one that waited longer (a slow server) is
        renewed again, alone, before its send."""
        renewed_at = self.clock.now()
        until = renewed_at + max(self._lease_for(row) for row in group)
        with self.store.transaction() as tx:
            held = tx.renew_leases([(row["id"], row["held_lease"]) for row in group], until)
        for row in group:
            if row["id"] not in held:
                continue  # another worker has taken it over meanwhile: it is not ours to send
            row["held_lease"] = until
            now = self.clock.now()
            if now - renewed_at > RENEW_SLACK:
                renewed = now + self._lease_for(row)
                with self.store.transaction() as tx:
                    if not tx.renew_lease(row["id"], row["held_lease"], renewed):
                        continue
                row["held_lease"] = renewed
            self._recorder.submit(self._send(row))  # returns once the outcome is committed

    def _send(self, row: dict[str, Any]) -> _Sent:
        attempt = int(row["attempts"])
        msg = OutboundMessage(id=row["idempotency_key"], channel=row["channel"], payload=row["payload"],
                              attempt=attempt)
        started = self.clock.now()
        t0 = time.perf_counter()
        try:
            result = self.channels.get(row["channel"]).send(msg, started)
        except NotFoundError as exc:
            result = DeliveryResult("permanent_failure", str(exc), duration_ms=(time.perf_counter() - t0) * 1000)
        return _Sent(row, attempt, started, result)

    @staticmethod
    def _attempt_row(item: _Sent) -> dict[str, Any]:
        result = item.result
        return {"outbox_id": item.row["id"], "attempt": item.attempt, "started_at": item.started,
                "duration_ms": result.duration_ms, "status": result.status,
                "response_status": result.response_status, "detail": result.detail,
                "response_body": result.response_body}

    def _outcome(self, item: _Sent, now: datetime) -> tuple[dict[str, Any], bool]:
        """The outcome for ``finish_held_message``, and whether the message gets a ``message_sent``."""
        row, result, attempt = item.row, item.result, item.attempt
        if result.ok:
            event = bool(row.get("profile_id")) and row.get("kind") in ("marketing", "transactional")
            return finished(row["id"], now, status="sent", provider_id=result.provider_id), event
        if self.policy.should_retry(result, attempt):
            delay = self.policy.next_delay(result, attempt, row["idempotency_key"])
            return finished(row["id"], now, status="pending", error=result.detail, next_attempt_at=now + delay), False
        why = result.detail if result.status == "permanent_failure" else \
            f"{result.detail} (gave up after {attempt} attempts)"
        return finished(row["id"], now, status="failed", error=why), False

    def _record(self, done: list[_Sent]) -> None:
        """Sends that just completed, in one short transaction: their attempts and their outcomes,
        each only while this worker still holds the message's lease (compare-and-set). A message
        sent to a profile is marked ``event_pending`` in the same statement."""
        now = self.clock.now()
        with self.store.transaction() as tx:
            tx.record_attempts([self._attempt_row(item) for item in done])
            for item in done:
                outcome, event = self._outcome(item, now)
                tx.finish_held_message(outcome, item.row["held_lease"], event_pending=event)

    def _store_events(self) -> None:
        """The ``message_sent`` events of messages marked ``event_pending``, stored with one ingest
        in the transaction that clears the marks (a batch at a time)."""
        if self.on_events is None:
            return
        while True:
            woke = False
            for tries in range(1, _RECORD_ATTEMPTS + 1):
                try:
                    with self.store.transaction() as tx:
                        rows = tx.messages_with_pending_events(self.batch_size)
                        if rows:
                            woke = self.on_events(tx, [message_event(row, "message_sent") for row in rows])
                            tx.clear_pending_events([row["id"] for row in rows])
                    break
                except LostRace:
                    if tries == _RECORD_ATTEMPTS:
                        raise
            if woke and self.on_wake is not None:
                self.on_wake()
            if len(rows) < self.batch_size:
                return

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
                       "flow_id": message.get("flow_id"), "step": message.get("step_key"),
                       **({"campaign_id": message["campaign_id"], "variant": message.get("variant")}
                          if message.get("campaign_id") else {}),
                       **extra},
    }
