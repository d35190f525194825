"""The worker: claims due runs in batches and advances them, one transaction per batch.

A batch's step progress, store actions and outbox messages commit together; each run runs in its
own savepoint so one failing run never blocks the others. A worker killed at any moment loses
nothing: the uncommitted batch rolls back and its runs are due again.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storeflow.clock import Clock
from storeflow.engine.effects import Effect, ProductStatus, SetProperty, Tag, apply_effects
from storeflow.engine.flowset import FlowSet
from storeflow.engine.messaging import Messaging
from storeflow.engine.records import RecordLoader, StoreHistory
from storeflow.engine.runner import Outcome, RunState, StepLog, advance
from storeflow.errors import (
    ConditionError,
    PermanentActionError,
    StorageError,
    TransientActionError,
    ValidationError,
)
from storeflow.flows import HistoryPort
from storeflow.settings import Settings
from storeflow.signing import Signer
from storeflow.store.base import Store, StoreTx

log = logging.getLogger("storeflow.worker")

_PERMANENT = (PermanentActionError, ConditionError, ValidationError, KeyError)


class _Env:
    """StepEnv for one run inside the worker's transaction: effects apply as each step makes them,
    so a later condition in the same run sees an earlier tag."""

    def __init__(self, tx: StoreTx, run: RunState, trigger: dict[str, Any] | None, now: datetime,
                 store_tz: ZoneInfo, messaging: tuple[Settings, Signer] | None = None) -> None:
        self.tx, self.run, self.trigger, self.now, self.store_tz = tx, run, trigger, now, store_tz
        self.messaging = Messaging(messaging[0], messaging[1], tx.suppression) if messaging else None
        self.history: HistoryPort = StoreHistory(tx)
        self._record: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        if self._record is None:
            run_info = {"id": self.run.id, "flow_id": self.run.flow_id, "started_at": self.run.started_at,
                        "variants": dict(self.run.context.get("variants", {}))}
            self._record = RecordLoader(self.tx).build(event=self.trigger, profile_id=self.run.profile_id,
                                                       run=run_info)
        return self._record

    def apply(self, effects: list[Effect]) -> None:
        apply_effects(self.tx, effects, self.now)
        if any(isinstance(e, Tag | SetProperty | ProductStatus) for e in effects):
            self._record = None  # a profile, order or product changed; sends and waits change none


@dataclass
class BatchResult:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    steps: int = 0


class Worker:
    def __init__(self, store: Store, clock: Clock, flows: FlowSet, *, store_tz: ZoneInfo,
                 batch_size: int = 200, max_attempts: int = 5,
                 messaging: tuple[Settings, Signer] | None = None) -> None:
        self.store, self.clock, self.flows = store, clock, flows
        self.messaging = messaging
        self.store_tz, self.batch_size, self.max_attempts = store_tz, batch_size, max_attempts

    def run_batch(self) -> BatchResult:
        """Claim up to ``batch_size`` due runs and advance each; commit once."""
        result = BatchResult()
        now = self.clock.now()
        with self.store.transaction() as tx:
            rows = tx.claim_due_runs(now, self.batch_size)
            result.claimed = len(rows)
            for row in rows:
                self._one(tx, row, now, result)
        return result

    def _one(self, tx: StoreTx, row: dict[str, Any], now: datetime, result: BatchResult) -> None:
        run = RunState.from_row(row)
        seq = int(run.context.get("seq", 0))
        try:
            with tx.conn.begin_nested():
                defn = self.flows.definition(tx, run.flow_id, run.flow_version)
                trigger = tx.get_event(row["trigger_event_id"]) if row["trigger_event_id"] else None
                env = _Env(tx, run, trigger, now, self.store_tz, self.messaging)
                outcome = advance(run, defn, env)
                self._save(tx, outcome, seq, now)
                result.steps += len(outcome.logs)
                if outcome.run.status in ("completed", "exited"):
                    result.completed += 1
        except _PERMANENT as exc:
            self._fail(tx, row, seq, now, f"{type(exc).__name__}: {exc}", permanent=True)
            result.failed += 1
        except (TransientActionError, StorageError, Exception) as exc:
            if not isinstance(exc, TransientActionError | StorageError):
                log.error("run %s failed unexpectedly:\n%s", run.id, traceback.format_exc())
            attempts = int(row["attempts"]) + 1
            if attempts >= self.max_attempts:
                self._fail(tx, row, seq, now, f"{type(exc).__name__}: {exc} (after {attempts} attempts)",
                           permanent=False)
                result.failed += 1
            else:
                delay = timedelta(seconds=min(3600, 5 * 2 ** (attempts - 1)))
                tx.update_run(row["id"], attempts=attempts, due_at=now + delay, updated_at=now,
                              last_error=f"{type(exc).__name__}: {exc}")
                result.retried += 1

    def _save(self, tx: StoreTx, outcome: Outcome, seq: int, now: datetime) -> None:
        run = outcome.run
        rows = []
        for entry in outcome.logs:
            seq += 1
            rows.append(_log_row(run.id, seq, entry, now))
        run.context["seq"] = seq
        tx.append_steps(rows)
        finished = run.status in ("completed", "exited", "failed")
        tx.update_run(run.id, status=run.status, cursor=run.cursor, due_at=run.due_at, context=run.context,
                      exit_reason=run.exit_reason, ended_at=run.ended_at, updated_at=now, attempts=0,
                      last_error=None, **({"active_key": None} if finished else {}))

    def _fail(self, tx: StoreTx, row: dict[str, Any], seq: int, now: datetime, reason: str, *,
              permanent: bool) -> None:
        context = dict(row["context"] or {})
        context["seq"] = seq + 1
        cursor = row["cursor"] or ""
        tx.append_steps([_log_row(row["id"], seq + 1,
                                  StepLog(cursor, cursor, "error", "failed",
                                          {"why": reason, "permanent": permanent}), now)])
        tx.remove_wait(row["id"])
        tx.update_run(row["id"], status="failed", due_at=None, active_key=None, ended_at=now, updated_at=now,
                      last_error=reason, context=context)

    def next_due_at(self) -> datetime | None:
        with self.store.read() as tx:
            return tx.next_due_at()


def _log_row(run_id: str, seq: int, entry: StepLog, now: datetime) -> dict[str, Any]:
    return {"run_id": run_id, "seq": seq, "step_key": entry.step_key, "step_path": entry.step_path,
            "kind": entry.kind, "status": entry.status, "at": now, "detail": entry.detail}
