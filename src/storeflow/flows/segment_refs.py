"""The segments a flow names: its segment trigger and the ``in_segment`` conditions anywhere in it
(trigger filter, ``exit_when``, ``if`` and ``wait_for.where``), each with where it is in the document.
Flow management refuses a flow naming an unknown segment; segment management can ask which flows use one."""

from __future__ import annotations

from storeflow.flows.conditions import Condition, InSegment, iter_conditions
from storeflow.flows.cursor import format_path, iter_steps
from storeflow.flows.definition import FlowDefinition
from storeflow.flows.steps import IfStep, WaitForStep
from storeflow.flows.triggers import EventTrigger, SegmentTrigger


def segment_references(defn: FlowDefinition) -> list[tuple[str, str]]:
    """(document path, segment id) of every segment the flow names, in document order."""
    found: list[tuple[str, str]] = []

    def scan(condition: Condition | None, where: str) -> None:
        if condition is not None:
            found.extend((where, node.segment) for node in iter_conditions(condition) if isinstance(node, InSegment))

    trigger = defn.trigger
    if isinstance(trigger, SegmentTrigger):
        found.append(("trigger.segment", trigger.segment))
    elif isinstance(trigger, EventTrigger):
        scan(trigger.filter, "trigger.filter")
    scan(defn.exit_when, "exit_when")
    for path, step in iter_steps(defn):
        if isinstance(step, IfStep):
            scan(step.condition, f"{format_path(path)}.if")
        elif isinstance(step, WaitForStep):
            scan(step.where, f"{format_path(path)}.wait_for.where")
    return found


def segments_used(defn: FlowDefinition) -> set[str]:
    """The ids of the segments the flow names."""
    return {segment for _, segment in segment_references(defn)}


__all__ = ["segment_references", "segments_used"]
