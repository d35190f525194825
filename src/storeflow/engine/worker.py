"""The worker: claims due runs in batches and advances them, one transaction per batch.

A batch's step progress, store actions and outbox messages commit together. The runs of a batch
read their records from rows loaded a few queries per batch and write set-based when the batch
ends (``storeflow.engine.batch``); a failing run is undone in memory, so it never costs the others
their work. Should the batch's writes fail, its runs are advanced again one by one, each in its own
savepoint, so one run's bad write fails (or retries) that run alone. A worker killed at any moment
loses nothing: the uncommitted batch rolls back and its runs are due again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from storeflow.clock import Clock
from storeflow.engine.batch import Batch, RunEnv
from storeflow.engine.flow_stats import BatchStats
from storeflow.engine.flowset import FlowSet
from storeflow.engine.runner import RunState, advance
from storeflow.errors import (
    ConditionError,
    PermanentActionError,
    StorageError,
    TransientActionError,
    ValidationError,
)
from storeflow.segments.segmentset import SegmentSet
from storeflow.settings import Settings
from storeflow.signing import Signer
from storeflow.store.base import Store, StoreTx

log = logging.getLogger("storeflow.worker")

_STEP_KEYS = frozenset({"profile:tags", "profile:properties"})
"""What a step's tag and set_property actions change on a profile, for the segments' index."""
engine_log = logging.getLogger("storeflow.engine")

# Errors that fail a run for good. The first three are refusals a flow can meet (a missing order, a
# condition that cannot be evaluated, bad input); anything else among them is a bug, and is logged.
_EXPECTED = (PermanentActionError, ConditionError, ValidationError)
_PERMANENT = (*_EXPECTED, KeyError)


@dataclass
class BatchResult:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    steps: int = 0

    def add(self, other: BatchResult) -> None:
        self.completed += other.completed
        self.failed += other.failed
        self.retried += other.retried
        self.steps += other.steps


class Worker:
    def __init__(self, store: Store, clock: Clock, flows: FlowSet, *, store_tz: ZoneInfo,
                 batch_size: int = 200, max_attempts: int = 5,
                 messaging: tuple[Settings, Signer] | None = None, segments: SegmentSet | None = None) -> None:
        self.store, self.clock, self.flows = store, clock, flows
        self.segments = segments  # live segments: profiles a step changed are queued for those reading it
        self.messaging = messaging
        self.store_tz, self.batch_size, self.max_attempts = store_tz, batch_size, max_attempts

    def run_batch(self) -> BatchResult:
        """Claim up to ``batch_size`` due runs and advance each; commit once."""
        result = BatchResult()
        now = self.clock.now()
        with self.store.transaction() as tx:
            rows = tx.claim_due_runs(now, self.batch_size)
            result.claimed = len(rows)
            if rows:
                result.add(self._advance_claimed(tx, rows, now))
        return result

    def _advance_claimed(self, tx: StoreTx, rows: list[dict[str, Any]], now: datetime) -> BatchResult:
        try:
            with tx.savepoint():
                return self._advance(tx, rows, now)
        except Exception:
            if len(rows) == 1:
                return self._advance_alone(tx, rows[0], now)
            log.warning("the writes of a batch of %d runs failed; advancing them one by one", len(rows),
                        exc_info=True)
        result = BatchResult()
        for row in rows:
            result.add(self._advance_alone(tx, row, now))
        return result

    def _queue_segment_changes(self, tx: StoreTx, profile_ids: list[str], now: datetime) -> None:
        """Profiles whose tags or properties a step changed (tag, set_property) are queued for the
        membership engine, in the batch's transaction, when a live segment reads those fields."""
        assert self.segments is not None
        self.segments.refresh(tx)
        if not self.segments.reads_any(_STEP_KEYS):
            return
        tx.queue_segment_changes(dict.fromkeys(profile_ids, _STEP_KEYS), now)
        tx.notify_after_commit("storeflow_runs")

    def _advance_alone(self, tx: StoreTx, row: dict[str, Any], now: datetime) -> BatchResult:
        """One run in its own savepoint; an error that escapes it is that run's."""
        try:
            with tx.savepoint():
                return self._advance(tx, [row], now)
        except Exception as exc:
            result = BatchResult()
            batch = Batch(tx, now, [])
            self._failed(batch, row, int((row["context"] or {}).get("seq", 0)), exc, result)
            batch.flush()
            return result

    def _advance(self, tx: StoreTx, rows: list[dict[str, Any]], now: datetime) -> BatchResult:
        result = BatchResult()
        batch = Batch(tx, now, rows)
        stats = self.flows.stats.batch(tx)  # read once, if a run's flow uses rfm or top
        for row in rows:
            self._one(batch, row, result, stats)
        changed = batch.changes.ids("profile")
        batch.flush()
        if changed and self.segments is not None:
            self._queue_segment_changes(tx, changed, now)
        return result

    def _one(self, batch: Batch, row: dict[str, Any], result: BatchResult, stats: BatchStats) -> None:
        run = RunState.from_row(row)
        seq = int(run.context.get("seq", 0))
        batch.begin_run()
        try:
            defn = self.flows.definition(batch.tx, run.flow_id, run.flow_version)
            trigger = batch.get("event", row["trigger_event_id"]) if row["trigger_event_id"] else None
            env = RunEnv(batch, run, trigger, self.store_tz, self.messaging, stats.for_flow(defn))
            outcome = advance(run, defn, env)
            batch.save(outcome, seq)
        except SQLAlchemyError:
            batch.end_run(ok=False)
            raise  # the transaction may be unusable (PostgreSQL): the caller retries the runs one by one
        except Exception as exc:
            batch.end_run(ok=False)
            self._failed(batch, row, seq, exc, result, step=run.step)
            return
        batch.end_run(ok=True)
        result.steps += len(outcome.logs)
        if outcome.run.status in ("completed", "exited"):
            result.completed += 1

    def _failed(self, batch: Batch, row: dict[str, Any], seq: int, exc: Exception, result: BatchResult,
                step: str | None = None) -> None:
        """A permanent error fails the run; any other retries it with backoff, up to ``max_attempts``.
        An unexpected permanent one (a bug, such as a ``KeyError`` in a step) is logged at ERROR with
        the run, flow, step and traceback: only identifiers, never the run's record or context."""
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, _PERMANENT) and not isinstance(exc, _EXPECTED):
            engine_log.error("run %s of flow %s failed for good at step %s: %s", row["id"], row["flow_id"],
                             step or row["cursor"] or "(start)", type(exc).__name__, exc_info=exc)
        if isinstance(exc, _PERMANENT):
            batch.fail(row, seq, reason, permanent=True)
            result.failed += 1
            return
        if not isinstance(exc, TransientActionError | StorageError):
            log.error("run %s failed unexpectedly", row["id"], exc_info=exc)
        attempts = int(row["attempts"]) + 1
        if attempts >= self.max_attempts:
            batch.fail(row, seq, f"{reason} (after {attempts} attempts)", permanent=False)
            result.failed += 1
        else:
            batch.retry(row["id"], attempts, batch.now + timedelta(seconds=min(3600, 5 * 2 ** (attempts - 1))),
                        reason)
            result.retried += 1

    def next_due_at(self) -> datetime | None:
        with self.store.read() as tx:
            return tx.next_due_at()
