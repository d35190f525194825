"""FlowDefinition: a whole flow as validated, frozen data, with a canonical document and digest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from storeflow.errors import FlowValidationError
from storeflow.flows.condition_parser import read_condition
from storeflow.flows.conditions import Condition, condition_to_document
from storeflow.flows.durations import format_duration, read_duration
from storeflow.flows.layout import read_layout
from storeflow.flows.problems import Loc, Problems, check_keys, type_name, want_mapping, want_slug, want_text
from storeflow.flows.steps import Step, StepReader, steps_to_document
from storeflow.flows.triggers import Trigger, read_trigger, trigger_to_document

FlowStatus = Literal["draft", "live", "paused"]
FLOW_STATUSES: Final[tuple[str, ...]] = ("draft", "live", "paused")
TOP_LEVEL_KEYS: Final[tuple[str, ...]] = (
    "id", "name", "description", "status", "trigger", "exit_when", "reentry", "steps", "layout",
)  # fmt: skip
REQUIRED_KEYS: Final[tuple[str, ...]] = ("id", "name", "trigger", "steps")


class Reentry(BaseModel):
    """Whether a profile may go through the flow again: ``once`` ever, ``always``, or at most once
    ``every`` period (counted from the start of its previous run). A profile never has two active
    runs of one flow at the same time, whatever this says."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["once", "always", "every"] = "always"
    period: timedelta | None = None

    @model_validator(mode="after")
    def _period_iff_every(self) -> Reentry:
        if (self.mode == "every") != (self.period is not None):
            raise ValueError("period is set exactly when mode is 'every'")
        return self


class FlowDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    description: str | None = None
    status: FlowStatus = "draft"
    trigger: Trigger
    exit_when: Condition | None = None
    reentry: Reentry = Reentry()
    steps: tuple[Step, ...]
    layout: dict[str, Any] | None = None
    """Editor metadata (node positions): kept in the document, never read by the engine, and not
    part of the digest (see flows/layout.py)."""

    def to_document(self) -> dict[str, Any]:
        """The canonical JSON-able document, defaults filled in; ``parse_flow`` accepts it again."""
        doc: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.description is not None:
            doc["description"] = self.description
        doc["status"] = self.status
        doc["trigger"] = trigger_to_document(self.trigger)
        if self.exit_when is not None:
            doc["exit_when"] = condition_to_document(self.exit_when)
        doc["reentry"] = reentry_to_document(self.reentry)
        doc["steps"] = steps_to_document(self.steps)
        if self.layout is not None:
            doc["layout"] = self.layout
        return doc

    @property
    def digest(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`to_document` without the layout: same
        content, same digest (moving nodes in an editor changes nothing the engine does)."""
        doc = self.to_document()
        doc.pop("layout", None)
        return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


def canonical_json(document: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the form digests are computed on."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def reentry_to_document(reentry: Reentry) -> str | dict[str, str]:
    if reentry.mode == "every" and reentry.period is not None:
        return {"every": format_duration(reentry.period)}
    return reentry.mode


def read_reentry(value: Any, loc: Loc, problems: Problems) -> Reentry | None:
    if value in ("once", "always"):
        return Reentry(mode=value)
    if isinstance(value, Mapping):
        if not check_keys(value, loc, problems, ("every",), ("every",)):
            return None
        period = read_duration(value["every"], (*loc, "every"), problems)
        return Reentry(mode="every", period=period) if period is not None else None
    shown = f'"{value}"' if isinstance(value, str) else type_name(value)
    problems.add(loc, f"{shown} is not a reentry rule", "use once, always or {every: 7d}")
    return None


def read_flow(data: Any, problems: Problems) -> FlowDefinition | None:
    """A flow from a parsed document, or None after adding every problem found to ``problems``."""
    if data is None:
        problems.add((), "the document is empty", "a flow needs id, name, trigger and steps")
        return None
    doc = want_mapping(data, (), problems, "a mapping with id, name, trigger and steps")
    if doc is None:
        return None
    check_keys(doc, (), problems, TOP_LEVEL_KEYS, REQUIRED_KEYS)
    fields: dict[str, Any] = {}
    ok = True

    def keep(key: str, value: Any) -> None:
        nonlocal ok
        if value is None:
            ok = False
        else:
            fields[key] = value

    if "id" in doc:
        keep("id", want_slug(doc["id"], ("id",), problems))
    if "name" in doc:
        keep("name", want_text(doc["name"], ("name",), problems))
    if "description" in doc and doc["description"] is not None:
        if isinstance(doc["description"], str):
            fields["description"] = doc["description"]
        else:
            problems.add(("description",), f"must be text, not {type_name(doc['description'])}")
            ok = False
    if "status" in doc:
        if doc["status"] in FLOW_STATUSES:
            fields["status"] = doc["status"]
        else:
            shown = f'"{doc["status"]}"' if isinstance(doc["status"], str) else type_name(doc["status"])
            problems.add(("status",), f"{shown} is not a status", "use draft, live or paused")
            ok = False
    if "trigger" in doc:
        keep("trigger", read_trigger(doc["trigger"], ("trigger",), problems))
    if "exit_when" in doc:
        keep("exit_when", read_condition(doc["exit_when"], ("exit_when",), problems))
    if "reentry" in doc:
        keep("reentry", read_reentry(doc["reentry"], ("reentry",), problems))
    if "steps" in doc:
        keep("steps", StepReader(problems).steps(doc["steps"], ("steps",), required=True))
    if "layout" in doc:
        keep("layout", read_layout(doc["layout"], ("layout",), problems))
    if problems or not ok or not all(key in fields for key in REQUIRED_KEYS):
        return None
    return FlowDefinition(**fields)


def parse_flow(data: Any, source: str = "<flow>") -> FlowDefinition:
    """Validate a parsed document (dicts and lists, as from JSON). Raises FlowValidationError with
    every problem in the document."""
    problems = Problems()
    flow = read_flow(data, problems)
    if flow is None:
        if not problems:  # pragma: no cover - every None comes with a problem
            problems.add((), "the flow is not valid")
        raise FlowValidationError(problems.to_problems(), source=source)
    return flow
