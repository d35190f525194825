"""Flow management: validate, apply (new versions), activate, pause, list, show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from storeflow.clock import Clock
from storeflow.engine.flowset import FlowSet
from storeflow.engine.scheduler import schedule_for
from storeflow.errors import ConflictError, FlowValidationError, NotFoundError, Problem
from storeflow.flows import DateTrigger, EventTrigger, FlowDefinition, ScheduleTrigger, SegmentTrigger, load_flow
from storeflow.flows.destinations import DEFAULT_POLICY, DestinationPolicy
from storeflow.flows.segment_refs import segment_references
from storeflow.flows.step_ids import assign_step_ids
from storeflow.flows.vocabulary import did_you_mean
from storeflow.store.base import Store, StoreTx

FlowStatus = Literal["draft", "live", "paused"]


@dataclass(frozen=True)
class ApplyResult:
    flow_id: str
    version: int
    change: Literal["created", "new_version", "unchanged", "status", "layout"]
    status: str

    def as_json(self) -> dict[str, Any]:
        return {"flow_id": self.flow_id, "version": self.version, "change": self.change, "status": self.status}


def _trigger_index(defn: FlowDefinition) -> tuple[str, str | None]:
    if isinstance(defn.trigger, EventTrigger):
        return "event", defn.trigger.event
    if isinstance(defn.trigger, ScheduleTrigger):
        return "schedule", None
    if isinstance(defn.trigger, DateTrigger):
        return "date", None
    if isinstance(defn.trigger, SegmentTrigger):  # indexed under its event, with a filter on the segment
        return "segment", defn.trigger.event
    return "other", None


def _backfills_members(trigger: Any) -> str | None:
    """The segment whose current members a flow's trigger starts runs for when it goes live."""
    if isinstance(trigger, SegmentTrigger):
        return trigger.segment if trigger.include_existing else None
    if isinstance(trigger, dict) and trigger.get("include_existing") is True and trigger.get("on") == "entered":
        return str(trigger.get("segment"))  # a stored version's document
    return None


def _check_segments(tx: StoreTx, defn: FlowDefinition) -> None:
    """Refuse a flow naming segments that do not exist (or are deleted), every one at once."""
    refs = segment_references(defn)
    if not refs:
        return
    known = {row["id"] for row in tx.list_segments()}
    problems = []
    for where, segment in refs:
        if segment in known:
            continue
        hint = did_you_mean(segment, known, cutoff=0.6)
        if hint is None:
            shown = ", ".join(sorted(known)[:10]) + (", ..." if len(known) > 10 else "")
            hint = (f"the segments are: {shown}" if known else "there are no segments yet") + \
                "; create it first (storeflow segments apply FILE)"
        problems.append(Problem(path=where, message=f'unknown segment "{segment}"', hint=hint))
    if problems:
        raise FlowValidationError(problems, source=defn.id)


class FlowService:
    def __init__(self, store: Store, clock: Clock, flows: FlowSet, store_tz: Any,
                 destinations: DestinationPolicy = DEFAULT_POLICY) -> None:
        self.store, self.clock, self.flows, self.store_tz = store, clock, flows, store_tz
        self.destinations = destinations

    def validate(self, text: str, source: str = "<flow>") -> FlowDefinition:
        """The flow in ``text``, checked against the webhook rules of the settings."""
        return load_flow(text, source=source, destinations=self.destinations)

    def apply(self, defn: FlowDefinition, status: FlowStatus | None = None) -> ApplyResult:
        """Store the definition: a new flow, a new version if it changed, or nothing if unchanged.
        Runs in progress stay on the version they started with. Steps without an id get one, kept
        from the current version where they match one of its steps (flows/step_ids.py). A change
        of the layout alone (editor metadata) updates the current version in place; a document
        without a layout keeps the stored one."""
        now = self.clock.now()
        want = status or defn.status
        kind, event = _trigger_index(defn)
        with self.store.transaction() as tx:
            _check_segments(tx, defn)
            current = tx.get_flow(defn.id)
            if current is not None and status == "draft" and current["status"] != "draft":
                raise ConflictError(f"flow {defn.id!r} is {current['status']}; a flow that has run "
                                    "cannot go back to draft (pause it instead)")
            latest = tx.get_flow_version(defn.id, int(current["current_version"])) if current else None
            stored: dict[str, Any] | None = latest["definition"] if latest is not None else None
            defn = assign_step_ids(defn, stored)
            if defn.layout is None and stored is not None and stored.get("layout") is not None:
                defn = defn.model_copy(update={"layout": stored["layout"]})
            if current is None:
                tx.insert_flow({"id": defn.id, "name": defn.name, "status": want, "current_version": 1,
                                "trigger_kind": kind, "trigger_event": event, "created_at": now, "updated_at": now})
                tx.insert_flow_version(defn.id, 1, defn.digest, defn.to_document(), now)
                self._sync_schedule(tx, defn, 1, want, now)
                result = ApplyResult(defn.id, 1, "created", want)
            else:
                version = int(current["current_version"])
                if latest is not None and latest["digest"] == defn.digest:
                    change: Literal["unchanged", "status", "new_version", "layout"] = "unchanged"
                    if stored is not None and defn.layout != stored.get("layout"):
                        tx.set_flow_layout(defn.id, version, defn.layout)
                        change = "layout"
                    if status is not None and status != current["status"]:
                        tx.update_flow(defn.id, status=status, updated_at=now)
                        change = "status"
                    final = status or current["status"]
                    self._sync_schedule(tx, defn, version, final, now)
                    result = ApplyResult(defn.id, version, change, final)
                else:
                    version += 1
                    final = status or (defn.status if defn.status != "draft" else current["status"])
                    tx.insert_flow_version(defn.id, version, defn.digest, defn.to_document(), now)
                    tx.update_flow(defn.id, name=defn.name, current_version=version, status=final,
                                   trigger_kind=kind, trigger_event=event, updated_at=now)
                    before = _backfills_members(stored.get("trigger") if stored is not None else None)
                    self._sync_schedule(tx, defn, version, final, now,
                                        restart=before != _backfills_members(defn.trigger))
                    result = ApplyResult(defn.id, version, "new_version", final)
        self.flows.invalidate()
        return result

    def set_status(self, flow_id: str, status: FlowStatus) -> ApplyResult:
        now = self.clock.now()
        with self.store.transaction() as tx:
            current = tx.get_flow(flow_id)
            if current is None:
                raise NotFoundError(f"flow {flow_id!r} does not exist; `storeflow flows list` shows the flows")
            if status == "draft" and current["status"] != "draft":
                raise ConflictError(f"flow {flow_id!r} is {current['status']}; a flow that has run "
                                    "cannot go back to draft (pause it instead)")
            version = int(current["current_version"])
            defn = self.flows.definition(tx, flow_id, version)
            if status == "live":
                _check_segments(tx, defn)  # a segment it names may have been deleted while it was paused
            tx.update_flow(flow_id, status=status, updated_at=now)
            self._sync_schedule(tx, defn, version, status, now)
        self.flows.invalidate()
        return ApplyResult(flow_id, version, "status", status)

    def _sync_schedule(self, tx: StoreTx, defn: FlowDefinition, version: int, status: str,
                       now: datetime, *, restart: bool = False) -> None:
        """The flow's schedules row for its status and trigger. A live include_existing segment flow
        gets a backfill of the segment's members when it goes live, or when ``restart`` (a new version
        that turns include_existing on or changes the segment); other new versions leave it be."""
        plan = schedule_for(defn, now, self.store_tz) if status == "live" else None
        if plan is None:
            tx.drop_schedule(defn.id)
        elif plan[0] == "date":  # its fire times are (re)computed for every profile unless current
            tx.set_date_schedule(defn.id, version, now)
        elif plan[0] == "segment":
            tx.set_segment_backfill(defn.id, version, now, restart=restart)
        else:
            tx.set_schedule(defn.id, version, plan[0], plan[1])

    def list(self) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            flows = tx.list_flows()
            counts = tx.run_counts_by_flow(f["id"] for f in flows)
            for f in flows:
                f["runs"] = counts[f["id"]]
            return flows

    def get(self, flow_id: str) -> dict[str, Any]:
        with self.store.read() as tx:
            flow = tx.get_flow(flow_id)
            if flow is None:
                raise NotFoundError(f"flow {flow_id!r} does not exist; `storeflow flows list` shows the flows")
            version = tx.get_flow_version(flow_id, int(flow["current_version"]))
            flow["definition"] = version["definition"] if version else None
            flow["versions"] = tx.flow_versions_of(flow_id)
            flow["runs"] = tx.run_counts(flow_id)
            return flow
