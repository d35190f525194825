"""Steps: what a run does, in order. Each step is a mapping with exactly one of the keys action,
wait, wait_until, wait_for, if, split or exit, plus an optional ``id`` (unique in the flow) and
``name`` (a label)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny

from storeflow.flows.actions import STEP_KEYS, params_to_document, read_action_params
from storeflow.flows.condition_parser import read_condition, read_event_type
from storeflow.flows.conditions import Condition, condition_to_document
from storeflow.flows.durations import format_duration, read_duration
from storeflow.flows.localtime import format_time_of_day, read_local_datetime, read_time_of_day, read_timezone
from storeflow.flows.problems import (
    Loc,
    Problems,
    check_keys,
    format_loc,
    type_name,
    want_list,
    want_mapping,
    want_slug,
    want_text,
)
from storeflow.flows.vocabulary import WEEKDAYS, Weekday, did_you_mean

STEP_FORMS: Final[tuple[str, ...]] = ("action", "wait", "wait_until", "wait_for", "if", "split", "exit")
_FORM_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "wait": ("wait",),
    "wait_until": ("wait_until",),
    "wait_for": ("wait_for", "on_event", "on_timeout"),
    "if": ("if", "then", "else"),
    "split": ("split",),
    "exit": ("exit",),
}
TIMEZONE_KEYWORDS: Final = ("profile", "store")
MAX_VARIANT_NAME: Final = 64


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str | None = None
    name: str | None = None


class ActionStep(_Step):
    """Run action ``action`` with ``params``, an instance of the model registered in ACTIONS."""

    kind: Literal["action"] = "action"
    action: str
    params: SerializeAsAny[BaseModel]


class WaitStep(_Step):
    kind: Literal["wait"] = "wait"
    duration: dt.timedelta


class WaitUntilStep(_Step):
    """Wait until the next ``time`` of day (on one of ``days``; None = any day) or until the local
    date-time ``at`` (naive = in ``timezone``; aware = that instant). ``timezone`` is "profile"
    (the profile's, falling back to the store's), "store" or an IANA name."""

    kind: Literal["wait_until"] = "wait_until"
    time: dt.time | None = None
    days: tuple[Weekday, ...] | None = None
    at: dt.datetime | None = None
    timezone: str = "profile"


class WaitForStep(_Step):
    """Wait up to ``timeout`` for an event of type ``event`` (for the run's profile) matching ``where``;
    then run ``on_event`` or ``on_timeout``, then continue after this step."""

    kind: Literal["wait_for"] = "wait_for"
    event: str
    timeout: dt.timedelta
    where: Condition | None = None
    on_event: tuple[Step, ...] = ()
    on_timeout: tuple[Step, ...] = ()


class IfStep(_Step):
    kind: Literal["if"] = "if"
    condition: Condition
    then: tuple[Step, ...] = ()
    else_: tuple[Step, ...] = ()


class Variant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    weight: int = Field(gt=0)
    steps: tuple[Step, ...] = ()


class SplitStep(_Step):
    """Send each profile down one variant, chosen at random by weight (see cursor.choose_variant)."""

    kind: Literal["split"] = "split"
    variants: tuple[Variant, ...] = Field(min_length=2)


class ExitStep(_Step):
    """End the run here; ``reason`` is None for ``exit: true``."""

    kind: Literal["exit"] = "exit"
    reason: str | None = None


Step = Annotated[
    ActionStep | WaitStep | WaitUntilStep | WaitForStep | IfStep | SplitStep | ExitStep,
    Field(discriminator="kind"),
]

for _model in (WaitForStep, IfStep, Variant, SplitStep):
    _model.model_rebuild()


# --- parsing ---------------------------------------------------------------------------------


@dataclass
class StepReader:
    """Reads steps, collecting problems and checking that step ids are unique across the flow."""

    problems: Problems
    ids: dict[str, Loc] = field(default_factory=dict)

    def steps(self, data: Any, loc: Loc, *, required: bool = False) -> tuple[Step, ...] | None:
        """A list of steps; None (YAML ``then:`` with nothing after it) is an empty list unless required."""
        if data is None and not required:
            return ()
        items = want_list(data, loc, self.problems, "a list of steps")
        if items is None:
            return None
        if required and not items:
            self.problems.add(loc, "needs at least one step")
            return None
        parsed = [self.step(item, (*loc, i)) for i, item in enumerate(items)]
        if any(step is None for step in parsed):
            return None
        return tuple(step for step in parsed if step is not None)

    def step(self, data: Any, loc: Loc) -> Step | None:
        spec = want_mapping(data, loc, self.problems, "a step (a mapping)")
        if spec is None:
            return None
        forms = [form for form in STEP_FORMS if form in spec]
        if not forms:
            for key in spec:
                if key not in ("id", "name"):
                    hint = did_you_mean(str(key), STEP_FORMS) or "steps: " + ", ".join(STEP_FORMS)
                    self.problems.add((*loc, str(key)), f'unknown key "{key}"', hint)
            self.problems.add(loc, "the step needs one of " + ", ".join(STEP_FORMS))
            return None
        if len(forms) > 1:
            self.problems.add(loc, f"the step has {' and '.join(forms)}; a step does exactly one thing")
            return None
        form = forms[0]
        step_id = self._id(spec, loc)
        name = want_text(spec["name"], (*loc, "name"), self.problems) if "name" in spec else None
        if form != "action":
            check_keys(spec, loc, self.problems, (*_FORM_KEYS[form], *sorted(STEP_KEYS - {"action"})))
        readers = {
            "action": self._action,
            "wait": self._wait,
            "wait_until": self._wait_until,
            "wait_for": self._wait_for,
            "if": self._if,
            "split": self._split,
            "exit": self._exit,
        }
        body: _Step | None = readers[form](spec, loc)
        if body is None or step_id is False or ("name" in spec and name is None):
            return None
        labelled: Step = body.model_copy(update={"id": step_id or None, "name": name})  # type: ignore[assignment]
        return labelled

    def _id(self, spec: Mapping[str, Any], loc: Loc) -> str | bool:
        """The step id, "" when absent, False when invalid."""
        if "id" not in spec:
            return ""
        step_id = want_slug(spec["id"], (*loc, "id"), self.problems)
        if step_id is None:
            return False
        if step_id in self.ids:
            self.problems.add(
                (*loc, "id"),
                f'duplicate step id "{step_id}"',
                f"also used at {format_loc(self.ids[step_id])}",
            )
            return False
        self.ids[step_id] = loc
        return step_id

    def _action(self, spec: Mapping[str, Any], loc: Loc) -> ActionStep | None:
        params = read_action_params(spec, loc, self.problems)
        return ActionStep(action=spec["action"], params=params) if params is not None else None

    def _wait(self, spec: Mapping[str, Any], loc: Loc) -> WaitStep | None:
        duration = read_duration(spec["wait"], (*loc, "wait"), self.problems)
        return WaitStep(duration=duration) if duration is not None else None

    def _wait_until(self, spec: Mapping[str, Any], loc: Loc) -> WaitUntilStep | None:
        loc = (*loc, "wait_until")
        body = want_mapping(spec["wait_until"], loc, self.problems, 'a mapping such as {time: "09:00"}')
        if body is None:
            return None
        ok = check_keys(body, loc, self.problems, ("time", "days", "at", "timezone"))
        zone = "profile"
        if "timezone" in body:
            zone = read_timezone(body["timezone"], (*loc, "timezone"), self.problems, keywords=TIMEZONE_KEYWORDS) or ""
        if ("time" in body) == ("at" in body):
            self.problems.add(
                loc,
                "wait_until needs exactly one of time, at",
                'e.g. {time: "09:00"} or {at: "2026-12-24T09:00"}',
            )
            return None
        if "at" in body:
            if "days" in body:
                self.problems.add((*loc, "days"), "days goes with time, not with at")
                return None
            at = read_local_datetime(body["at"], (*loc, "at"), self.problems)
            return WaitUntilStep(at=at, timezone=zone) if at is not None and zone and ok else None
        time = read_time_of_day(body["time"], (*loc, "time"), self.problems)
        days = self._days(body["days"], (*loc, "days")) if "days" in body else None
        if time is None or not zone or not ok or ("days" in body and days is None):
            return None
        return WaitUntilStep(time=time, days=days, timezone=zone)

    def _days(self, data: Any, loc: Loc) -> tuple[Weekday, ...] | None:
        items = want_list(data, loc, self.problems, "a list of days such as [mon, tue]")
        if items is None:
            return None
        if not items:
            self.problems.add(loc, "must not be empty", "leave days out to wait for any day")
            return None
        found: list[Weekday] = []
        ok = True
        for i, item in enumerate(items):
            day = item.strip().lower()[:3] if isinstance(item, str) else None
            if day not in WEEKDAYS or (isinstance(item, str) and len(item.strip()) != 3):
                hint = f'did you mean "{day}"?' if day in WEEKDAYS else "days: " + ", ".join(WEEKDAYS)
                self.problems.add(
                    (*loc, i),
                    f'"{item}" is not a day' if isinstance(item, str) else f"must be a day, not {type_name(item)}",
                    hint,
                )
                ok = False
            elif day in found:
                self.problems.add((*loc, i), f'"{item}" is listed twice')
                ok = False
            else:
                found.append(day)
        return tuple(sorted(found, key=WEEKDAYS.index)) if ok else None

    def _wait_for(self, spec: Mapping[str, Any], loc: Loc) -> WaitForStep | None:
        wloc = (*loc, "wait_for")
        body = want_mapping(
            spec["wait_for"], wloc, self.problems, "a mapping such as {event: order_placed, timeout: 1d}"
        )
        on_event = self.steps(spec.get("on_event"), (*loc, "on_event"))
        on_timeout = self.steps(spec.get("on_timeout"), (*loc, "on_timeout"))
        if body is None:
            return None
        ok = check_keys(body, wloc, self.problems, ("event", "timeout", "where"), ("event", "timeout"))
        event = read_event_type(body["event"], (*wloc, "event"), self.problems) if "event" in body else None
        timeout = read_duration(body["timeout"], (*wloc, "timeout"), self.problems) if "timeout" in body else None
        where = read_condition(body["where"], (*wloc, "where"), self.problems) if "where" in body else None
        if not ok or event is None or timeout is None or on_event is None or on_timeout is None:
            return None
        if "where" in body and where is None:
            return None
        return WaitForStep(event=event, timeout=timeout, where=where, on_event=on_event, on_timeout=on_timeout)

    def _if(self, spec: Mapping[str, Any], loc: Loc) -> IfStep | None:
        condition = read_condition(spec["if"], (*loc, "if"), self.problems)
        if "then" not in spec:
            self.problems.add(loc, 'missing required key "then"', "if: <condition> needs then: [steps]")
        then = self.steps(spec.get("then"), (*loc, "then"))
        else_ = self.steps(spec.get("else"), (*loc, "else"))
        if condition is None or then is None or else_ is None or "then" not in spec:
            return None
        return IfStep(condition=condition, then=then, else_=else_)

    def _split(self, spec: Mapping[str, Any], loc: Loc) -> SplitStep | None:
        loc = (*loc, "split")
        items = want_list(spec["split"], loc, self.problems, "a list of variants")
        if items is None:
            return None
        if len(items) < 2:
            self.problems.add(loc, f"a split needs at least 2 variants, found {len(items)}")
        names: set[str] = set()
        variants = [self._variant(item, (*loc, i), names) for i, item in enumerate(items)]
        if len(items) < 2 or any(variant is None for variant in variants):
            return None
        return SplitStep(variants=tuple(variant for variant in variants if variant is not None))

    def _variant(self, data: Any, loc: Loc, names: set[str]) -> Variant | None:
        spec = want_mapping(data, loc, self.problems, "a variant such as {name: a, weight: 50, steps: [...]}")
        if spec is None:
            return None
        ok = check_keys(spec, loc, self.problems, ("name", "weight", "steps"), ("name", "weight"))
        name = want_text(spec["name"], (*loc, "name"), self.problems) if "name" in spec else None
        if name is not None and len(name) > MAX_VARIANT_NAME:
            self.problems.add((*loc, "name"), f"is too long (at most {MAX_VARIANT_NAME} characters)")
            name = None
        elif name is not None and name in names:
            self.problems.add((*loc, "name"), f'duplicate variant name "{name}"')
            name = None
        elif name is not None:
            names.add(name)
        weight = spec.get("weight")
        if "weight" in spec and not (isinstance(weight, int) and not isinstance(weight, bool) and weight > 0):
            self.problems.add((*loc, "weight"), f"must be a whole number above 0, not {type_name(weight)}", "e.g. 50")
            weight = None
        steps = self.steps(spec.get("steps"), (*loc, "steps"))
        if not ok or name is None or weight is None or steps is None:
            return None
        return Variant(name=name, weight=weight, steps=steps)

    def _exit(self, spec: Mapping[str, Any], loc: Loc) -> ExitStep | None:
        value = spec["exit"]
        if value is True:
            return ExitStep()
        if isinstance(value, str) and value.strip():
            return ExitStep(reason=value)
        self.problems.add(
            (*loc, "exit"),
            f"must be a reason (text) or true, not {type_name(value)}",
            'e.g. exit: "customer ordered"',
        )
        return None


# --- back to documents -----------------------------------------------------------------------


def steps_to_document(steps: tuple[Step, ...]) -> list[dict[str, Any]]:
    return [step_to_document(step) for step in steps]


def step_to_document(step: Step) -> dict[str, Any]:
    """The canonical document of a step; empty optional branches are left out."""
    doc: dict[str, Any] = {}
    if step.id is not None:
        doc["id"] = step.id
    if step.name is not None:
        doc["name"] = step.name
    if isinstance(step, ActionStep):
        doc["action"] = step.action
        doc.update(params_to_document(step.params))
    elif isinstance(step, WaitStep):
        doc["wait"] = format_duration(step.duration)
    elif isinstance(step, WaitUntilStep):
        doc["wait_until"] = _wait_until_document(step)
    elif isinstance(step, WaitForStep):
        body: dict[str, Any] = {"event": step.event, "timeout": format_duration(step.timeout)}
        if step.where is not None:
            body["where"] = condition_to_document(step.where)
        doc["wait_for"] = body
        if step.on_event:
            doc["on_event"] = steps_to_document(step.on_event)
        if step.on_timeout:
            doc["on_timeout"] = steps_to_document(step.on_timeout)
    elif isinstance(step, IfStep):
        doc["if"] = condition_to_document(step.condition)
        doc["then"] = steps_to_document(step.then)
        if step.else_:
            doc["else"] = steps_to_document(step.else_)
    elif isinstance(step, SplitStep):
        doc["split"] = [
            {"name": v.name, "weight": v.weight, "steps": steps_to_document(v.steps)} for v in step.variants
        ]
    else:
        doc["exit"] = step.reason if step.reason is not None else True
    return doc


def _wait_until_document(step: WaitUntilStep) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if step.time is not None:
        body["time"] = format_time_of_day(step.time)
        if step.days is not None:
            body["days"] = list(step.days)
    if step.at is not None:
        body["at"] = step.at.isoformat()
    body["timezone"] = step.timezone
    return body
