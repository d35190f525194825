"""The step function: from a run's state (and what woke it) to effects, a step log and new state.

``advance`` reads and acts only through a ``StepEnv`` (records, history, time zones, and ``apply``
for the effects each step makes, so a later step sees an earlier one's tag). The worker's env
applies effects and the returned state in one transaction; tests can drive it with their own env.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from storeflow.engine.actions import ActionContext, plan_action
from storeflow.engine.effects import AddWait, Effect, RemoveWait
from storeflow.errors import StoreflowError
from storeflow.flows import (
    ActionStep,
    EvalContext,
    ExitStep,
    FlowDefinition,
    HistoryPort,
    IfStep,
    SplitStep,
    Step,
    StepPath,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
    branch_path,
    choose_variant,
    evaluate,
    find_step,
    format_path,
    next_path,
    step_at,
    step_key,
)
from storeflow.flows.segment_stats import SegmentStats
from storeflow.flows.timing import wait_until_deadline

MAX_STEPS_PER_ADVANCE = 200


class StepEnv(Protocol):
    now: datetime
    store_tz: ZoneInfo
    history: HistoryPort
    stats: SegmentStats | None
    """The store's segment statistics for rfm and top conditions (None: those are false)."""

    def record(self) -> dict[str, Any]: ...

    def apply(self, effects: list[Effect]) -> None:
        """Carry out effects now (in the worker: inside the step's transaction)."""
        ...


@dataclass
class RunState:
    id: str
    flow_id: str
    flow_version: int
    profile_id: str | None
    status: str
    cursor: str | None
    """Where the run is: the key of its step (the step's id; its formatted path in versions stored
    before every step had an id). Runs stay on the version they started with."""
    context: dict[str, Any]
    started_at: datetime
    due_at: datetime | None = None
    exit_reason: str | None = None
    ended_at: datetime | None = None
    step: str | None = None
    """The path of the step being run (not stored): where a failure is reported."""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RunState:
        return cls(id=row["id"], flow_id=row["flow_id"], flow_version=row["flow_version"],
                   profile_id=row["profile_id"], status=row["status"], cursor=row["cursor"],
                   context=dict(row["context"] or {}), started_at=row["started_at"], due_at=row["due_at"],
                   exit_reason=row["exit_reason"], ended_at=row["ended_at"])


@dataclass(frozen=True)
class StepLog:
    step_key: str
    step_path: str
    kind: str
    status: str
    detail: dict[str, Any]


@dataclass
class Outcome:
    run: RunState
    effects: list[Effect] = field(default_factory=list)
    logs: list[StepLog] = field(default_factory=list)


def _kind(step: object) -> str:
    kinds: dict[type, str] = {ActionStep: "action", WaitStep: "wait", WaitUntilStep: "wait_until",
                              WaitForStep: "wait_for", IfStep: "if", SplitStep: "split", ExitStep: "exit"}
    return kinds.get(type(step), type(step).__name__)


def advance(run: RunState, defn: FlowDefinition, env: StepEnv) -> Outcome:
    """Run steps from the run's cursor until it waits, exits, completes or fails."""
    out = Outcome(run=run)
    now = env.now
    walk = _walk(defn)
    cursor: StepPath | None = walk.find(run.cursor) if run.cursor else None
    wait = run.context.pop("wait", None)
    if wait is not None and cursor is not None:
        cursor = _resume(run, walk, cursor, wait, out, env)
    record: dict[str, Any] | None = None
    ectx: EvalContext | None = None
    for _ in range(MAX_STEPS_PER_ADVANCE):
        if cursor is None:
            return _finish(out, "completed", now)
        at = walk.at(cursor)
        step, key, path_text = at.step, at.key, at.text
        run.step = path_text
        fresh = env.record()
        if fresh is not record or ectx is None:  # conditions see each change of the record
            record, ectx = fresh, _eval_ctx(run, env, fresh)
        if defn.exit_when is not None and evaluate(defn.exit_when, ectx):
            out.logs.append(StepLog(key, path_text, _kind(step), "exited", {"why": "exit condition met"}))
            return _finish(out, "exited", now, "exit condition met")
        if isinstance(step, ActionStep):
            actx = ActionContext(run.id, run.flow_id, run.flow_version, key, path_text,
                                 f"{run.id}:{path_text}", run.profile_id, record, now,
                                 messaging=getattr(env, "messaging", None))
            effects, detail = plan_action(step.action, step.params, actx)
            env.apply(effects)
            out.effects += effects
            out.logs.append(StepLog(key, path_text, at.kind, "done", detail))
            cursor = walk.next(cursor)
        elif isinstance(step, WaitStep | WaitUntilStep | WaitForStep):
            return _start_wait(out, defn, step, cursor, key, path_text, env, record)
        elif isinstance(step, IfStep):
            result = evaluate(step.condition, ectx)
            branch = "then" if result else "else"
            out.logs.append(StepLog(key, path_text, "if", "done", {"result": result, "branch": branch}))
            cursor = walk.branch(cursor, branch)
        elif isinstance(step, SplitStep):
            seed = f"{run.flow_id}:{run.profile_id or run.id}:{key}"
            index = choose_variant(step.variants, seed)
            name = step.variants[index].name
            run.context.setdefault("variants", {})[key] = name
            out.logs.append(StepLog(key, path_text, "split", "done", {"variant": name, "seed": seed}))
            cursor = walk.branch(cursor, index)
        elif isinstance(step, ExitStep):
            reason = step.reason if isinstance(step.reason, str) else "exit step"
            out.logs.append(StepLog(key, path_text, "exit", "exited", {"why": reason}))
            return _finish(out, "exited", now, reason)
        else:  # pragma: no cover - the definition types are closed
            raise StoreflowError(f"unknown step type {type(step).__name__}")
        run.cursor = walk.at(cursor).key if cursor is not None else None
    # A very long chain of instant steps: yield and continue in the next claim.
    run.status, run.due_at = "active", now
    return out


@dataclass(frozen=True)
class _At:
    step: Step
    key: str
    text: str  # the formatted path
    kind: str  # as an action's step is logged: "action:tag"


class _Walk:
    """A flow's steps by path, with where each leads: computed once per definition and path, as the
    same few paths are walked by every run of a flow."""

    def __init__(self, defn: FlowDefinition) -> None:
        self.defn = defn
        self._at: dict[StepPath, _At] = {}
        self._parsed: dict[str, StepPath] = {}
        self._next: dict[StepPath, StepPath | None] = {}
        self._branch: dict[tuple[StepPath, str | int], StepPath | None] = {}

    def at(self, path: StepPath) -> _At:
        at = self._at.get(path)
        if at is None:
            step = step_at(self.defn, path)
            kind = f"action:{step.action}" if isinstance(step, ActionStep) else ""
            at = self._at[path] = _At(step, step_key(self.defn, path), format_path(path), kind)
        return at

    def find(self, key: str) -> StepPath:
        """The path of the step with this key (a step id, or a formatted path); KeyError if none."""
        path = self._parsed.get(key)
        if path is None:
            found = find_step(self.defn, key)
            if found is None:
                raise KeyError(f"flow {self.defn.id} has no step {key!r}")
            path = self._parsed[key] = found
        return path

    def next(self, path: StepPath) -> StepPath | None:
        if path not in self._next:
            self._next[path] = next_path(self.defn, path)
        return self._next[path]

    def branch(self, path: StepPath, branch: str | int) -> StepPath | None:
        if (path, branch) not in self._branch:
            self._branch[(path, branch)] = branch_path(self.defn, path, branch)
        return self._branch[(path, branch)]


_WALKS: dict[int, _Walk] = {}


def _walk(defn: FlowDefinition) -> _Walk:
    """The definition's walk, kept while the definition lives (definitions are immutable)."""
    walk = _WALKS.get(id(defn))
    if walk is None or walk.defn is not defn:
        if len(_WALKS) >= 256:
            _WALKS.clear()
        walk = _WALKS[id(defn)] = _Walk(defn)
    return walk


def _eval_ctx(run: RunState, env: StepEnv, record: dict[str, Any]) -> EvalContext:
    trigger_at = run.context.get("trigger_at")
    return EvalContext(record=record, now=env.now, history=env.history, profile_id=run.profile_id,
                       store_tz=env.store_tz.key, stats=env.stats,
                       flow_started_at=run.started_at,
                       trigger_at=datetime.fromisoformat(trigger_at) if trigger_at else run.started_at)


def _resume(run: RunState, walk: _Walk, cursor: StepPath, wait: dict[str, Any],
            out: Outcome, env: StepEnv) -> StepPath | None:
    at = walk.at(cursor)
    key, path_text = at.key, at.text
    if wait.get("kind") == "wait_for":
        env.apply([RemoveWait(run.id)])
        out.effects.append(RemoveWait(run.id))
        matched = wait.get("matched_event")
        if matched:
            out.logs.append(StepLog(key, path_text, "wait_for", "resumed",
                                    {"outcome": "event", "event_id": matched, "event_type": wait.get("event")}))
            return walk.branch(cursor, "on_event")
        out.logs.append(StepLog(key, path_text, "wait_for", "resumed",
                                {"outcome": "timeout", "event_type": wait.get("event")}))
        return walk.branch(cursor, "on_timeout")
    out.logs.append(StepLog(key, path_text, str(wait.get("kind", "wait")), "resumed", {"until": wait.get("until")}))
    return walk.next(cursor)


def _start_wait(out: Outcome, defn: FlowDefinition, step: WaitStep | WaitUntilStep | WaitForStep,
                cursor: StepPath, key: str, path_text: str, env: StepEnv, record: dict[str, Any]) -> Outcome:
    run, now = out.run, env.now
    wait: dict[str, Any] = {"kind": _kind(step), "started": now.isoformat()}
    if isinstance(step, WaitStep):
        until = now + step.duration
    elif isinstance(step, WaitUntilStep):
        profile_tz = ((record.get("profile") or {}) or {}).get("timezone")
        until = max(now, wait_until_deadline(step, now, profile_tz=profile_tz, store_tz=env.store_tz.key))
    else:
        until = now + step.timeout
        wait["event"] = step.event
        if run.profile_id:
            add = AddWait(run.id, run.profile_id, step.event, now)
            env.apply([add])
            out.effects.append(add)
    wait["until"] = until.isoformat()
    run.context["wait"] = wait
    run.cursor = key
    run.status, run.due_at = "waiting", until
    out.logs.append(StepLog(key, path_text, wait["kind"], "waiting",
                            {"until": until.isoformat(), **({"event": wait["event"]} if "event" in wait else {})}))
    return out


def _finish(out: Outcome, status: str, now: datetime, reason: str | None = None) -> Outcome:
    run = out.run
    run.status, run.due_at, run.ended_at, run.exit_reason = status, None, now, reason
    run.cursor = None if status == "completed" else run.cursor
    return out
