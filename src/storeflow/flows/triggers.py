"""Triggers: what starts a run of a flow. Exactly one per flow::

trigger: {event: checkout_started, filter: <condition>, max_age: 1d}
trigger: {schedule: "0 9 * * *", timezone: America/Sao_Paulo}
trigger: {date: profile.birthday, offset: -3d, at: "09:00", repeat: yearly}
trigger: {segment: vip, on: entered, include_existing: false}
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field

from storeflow.flows.condition_parser import read_condition, read_event_type
from storeflow.flows.conditions import Comparison, Condition, condition_to_document
from storeflow.flows.durations import format_duration, read_duration
from storeflow.flows.localtime import format_time_of_day, read_time_of_day, read_timezone
from storeflow.flows.paths import FieldPath, read_field_path
from storeflow.flows.problems import Loc, Problems, check_keys, type_name, want_mapping, want_slug
from storeflow.flows.record_schema import is_date_field
from storeflow.flows.vocabulary import did_you_mean

DEFAULT_MAX_AGE: Final = dt.timedelta(days=1)
DEFAULT_AT: Final = dt.time(9, 0)
CRON_ALIASES: Final = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_CRON_HINT = 'use 5 fields: minute hour day-of-month month day-of-week, e.g. "0 9 * * *"'
_FORMS: Final = {
    "event": ("event", "filter", "max_age"),
    "schedule": ("schedule", "timezone"),
    "date": ("date", "offset", "at", "repeat"),
    "segment": ("segment", "on", "include_existing"),
}
SEGMENT_EVENTS: Final = {"entered": "segment_entered", "exited": "segment_exited"}
"""The event a segment trigger starts on, by its ``on``."""
_SEGMENT_ID_PATH: Final = FieldPath(root="event", segments=("properties", "segment_id"))


class _Trigger(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EventTrigger(_Trigger):
    """A run starts when an event of this type arrives and ``filter`` holds. Events whose
    ``occurred_at`` is older than ``max_age`` when received start no run."""

    kind: Literal["event"] = "event"
    event: str
    filter: Condition | None = None
    max_age: dt.timedelta = DEFAULT_MAX_AGE


class ScheduleTrigger(_Trigger):
    """A run starts at each time of the cron schedule, in ``timezone`` (None: the store's time zone)."""

    kind: Literal["schedule"] = "schedule"
    schedule: str
    timezone: str | None = None


class DateTrigger(_Trigger):
    """A run starts for a profile at ``at`` (profile's time zone) on the date in the profile property
    ``date`` shifted by ``offset`` whole days; every year, or only once."""

    kind: Literal["date"] = "date"
    date: FieldPath
    offset: dt.timedelta = dt.timedelta(0)
    at: dt.time = DEFAULT_AT
    repeat: Literal["yearly", "once"] = "yearly"


class SegmentTrigger(_Trigger):
    """A run starts when the profile enters (``on: entered``) or leaves (``on: exited``) the segment:
    on each ``segment_entered`` / ``segment_exited`` event for it, so once per entry (or exit). With
    ``include_existing`` (entered only), the segment's members when the flow goes live, or gets a
    version that turns it on, each start a run too; without it they start nothing."""

    kind: Literal["segment"] = "segment"
    segment: str
    on: Literal["entered", "exited"] = "entered"
    include_existing: bool = False

    @property
    def event(self) -> str:
        """The event type that starts a run."""
        return SEGMENT_EVENTS[self.on]

    @property
    def filter(self) -> Condition:
        """The condition on that event: it is about this segment (ingest evaluates it like an event
        trigger's filter)."""
        return _segment_filter(self.segment)


@functools.lru_cache(maxsize=1024)
def _segment_filter(segment: str) -> Comparison:
    return Comparison(path=_SEGMENT_ID_PATH, op="eq", value=segment)


Trigger = Annotated[EventTrigger | ScheduleTrigger | DateTrigger | SegmentTrigger, Field(discriminator="kind")]


def read_trigger(data: Any, loc: Loc, problems: Problems) -> Trigger | None:
    """A trigger from a document, or None after adding its problems."""
    spec = want_mapping(data, loc, problems, "a mapping with event, schedule, date or segment")
    if spec is None:
        return None
    forms = [form for form in _FORMS if form in spec]
    if not forms:
        for key in spec:
            hint = did_you_mean(str(key), _FORMS) or "a trigger has one of: event, schedule, date, segment"
            problems.add((*loc, str(key)), f'unknown key "{key}"', hint)
        problems.add(loc, "the trigger needs one of event, schedule, date, segment", "e.g. {event: order_placed}")
        return None
    if len(forms) > 1:
        problems.add(loc, f"the trigger has {' and '.join(forms)}; use exactly one")
        return None
    form = forms[0]
    check_keys(spec, loc, problems, _FORMS[form])
    if form == "event":
        return _read_event_trigger(spec, loc, problems)
    if form == "schedule":
        return _read_schedule_trigger(spec, loc, problems)
    if form == "segment":
        return _read_segment_trigger(spec, loc, problems)
    return _read_date_trigger(spec, loc, problems)


def _read_event_trigger(spec: Mapping[str, Any], loc: Loc, problems: Problems) -> EventTrigger | None:
    event = read_event_type(spec["event"], (*loc, "event"), problems)
    condition = read_condition(spec["filter"], (*loc, "filter"), problems) if "filter" in spec else None
    max_age = read_duration(spec["max_age"], (*loc, "max_age"), problems) if "max_age" in spec else DEFAULT_MAX_AGE
    if event is None or max_age is None or ("filter" in spec and condition is None):
        return None
    return EventTrigger(event=event, filter=condition, max_age=max_age)


def read_cron(value: Any, loc: Loc, problems: Problems) -> str | None:
    """A cron expression of 5 fields (or an alias such as @daily), whitespace normalized."""
    if not isinstance(value, str):
        problems.add(loc, f"must be a cron schedule, not {type_name(value)}", _CRON_HINT)
        return None
    expr = " ".join(value.split())
    valid = expr in CRON_ALIASES if expr.startswith("@") else len(expr.split()) == 5 and croniter.is_valid(expr)
    if not valid:
        problems.add(loc, f'"{value}" is not a cron schedule', _CRON_HINT)
        return None
    return expr


def _read_schedule_trigger(spec: Mapping[str, Any], loc: Loc, problems: Problems) -> ScheduleTrigger | None:
    cron = read_cron(spec["schedule"], (*loc, "schedule"), problems)
    zone = read_timezone(spec["timezone"], (*loc, "timezone"), problems) if "timezone" in spec else None
    if cron is None or ("timezone" in spec and zone is None):
        return None
    return ScheduleTrigger(schedule=cron, timezone=zone)


def _read_date_trigger(spec: Mapping[str, Any], loc: Loc, problems: Problems) -> DateTrigger | None:
    path = read_field_path(spec["date"], (*loc, "date"), problems, ("profile",))
    if path is not None and not is_date_field(path, (*loc, "date"), problems):
        path = None
    offset: dt.timedelta | None = dt.timedelta(0)
    if "offset" in spec:
        offset = read_duration(spec["offset"], (*loc, "offset"), problems, signed=True, allow_zero=True)
        if offset is not None and offset % dt.timedelta(days=1):
            problems.add((*loc, "offset"), f'"{spec["offset"]}" is not a whole number of days', "e.g. -3d or 1w")
            offset = None
    at = read_time_of_day(spec["at"], (*loc, "at"), problems) if "at" in spec else DEFAULT_AT
    repeat = spec.get("repeat", "yearly")
    if repeat not in ("yearly", "once"):
        shown = f'"{repeat}"' if isinstance(repeat, str) else type_name(repeat)
        problems.add((*loc, "repeat"), f"{shown} is not a repeat", "use yearly or once")
        return None
    if path is None or offset is None or at is None:
        return None
    return DateTrigger(date=path, offset=offset, at=at, repeat=repeat)


def _read_segment_trigger(spec: Mapping[str, Any], loc: Loc, problems: Problems) -> SegmentTrigger | None:
    segment = want_slug(spec["segment"], (*loc, "segment"), problems)
    on = spec.get("on", "entered")
    if on not in SEGMENT_EVENTS:
        shown = f'"{on}"' if isinstance(on, str) else type_name(on)
        hint = did_you_mean(on, SEGMENT_EVENTS) if isinstance(on, str) else None
        problems.add((*loc, "on"), f"{shown} is not a segment change", hint or "use entered or exited")
        return None
    include = spec.get("include_existing", False)
    if not isinstance(include, bool):
        problems.add((*loc, "include_existing"), f"must be true or false, not {type_name(include)}")
        return None
    if include and on == "exited":
        problems.add((*loc, "include_existing"), "include_existing starts runs for the current members, "
                     "so it only goes with on: entered", "remove include_existing, or use on: entered")
        return None
    if segment is None:
        return None
    return SegmentTrigger(segment=segment, on=on, include_existing=include)


def trigger_to_document(trigger: Trigger) -> dict[str, Any]:
    """The canonical document of a trigger, defaults included."""
    if isinstance(trigger, EventTrigger):
        doc: dict[str, Any] = {"event": trigger.event}
        if trigger.filter is not None:
            doc["filter"] = condition_to_document(trigger.filter)
        doc["max_age"] = format_duration(trigger.max_age)
        return doc
    if isinstance(trigger, SegmentTrigger):
        return {"segment": trigger.segment, "on": trigger.on, "include_existing": trigger.include_existing}
    if isinstance(trigger, ScheduleTrigger):
        doc = {"schedule": trigger.schedule}
        if trigger.timezone is not None:
            doc["timezone"] = trigger.timezone
        return doc
    return {
        "date": str(trigger.date),
        "offset": f"{trigger.offset.days}d",
        "at": format_time_of_day(trigger.at),
        "repeat": trigger.repeat,
    }
