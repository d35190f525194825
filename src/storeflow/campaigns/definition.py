"""Campaign documents: one message to an audience, read with every problem reported at once.

    id: march-newsletter
    name: March newsletter
    audience: {include: [subscribers], exclude: [unengaged-180d]}
    message:
      channel: email
      subject: "What's new in March, {{ profile.first_name or 'friend' }}"
      html: "<p>...</p>"
    variants:                      # optional: a test between versions of the message
      - {id: a, weight: 50}
      - {id: b, weight: 50, message: {subject: "March is here"}}
    schedule: {local_time: "10:00", date: "2026-03-05"}   # or: now, or {at: "2026-03-05T10:00"}
    throttle: 600                  # messages per minute (optional)
    smart_sending: 16              # hours; 0 turns it off

The message takes the keys of the flows' ``email`` and ``sms`` steps (their templates, checked in
the same sandbox), always as a marketing message to each recipient's own address.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel

from storeflow.errors import ValidationError
from storeflow.flows.actions import read_action_params
from storeflow.flows.limits import LimitExceeded, check_size
from storeflow.flows.loader import read_yaml
from storeflow.flows.problems import (
    Loc,
    Problems,
    check_keys,
    type_name,
    want_list,
    want_mapping,
    want_slug,
    want_text,
)

_KEYS = ("id", "name", "description", "audience", "message", "variants", "schedule", "throttle", "smart_sending")
_MESSAGE_KEYS = {"email": ("channel", "subject", "html", "text", "from", "reply_to", "kind", "track_opens",
                           "track_clicks", "utm"),
                 "sms": ("channel", "text", "kind")}
DEFAULT_SMART_SENDING_HOURS = 16.0
MAX_SEGMENTS = 50
MAX_VARIANTS = 10
_EARLIEST_OFFSET = timedelta(hours=14)  # the zone furthest ahead (UTC+14) reaches a local time first


class CampaignValidationError(ValidationError):
    """A campaign document with one or more problems (all listed)."""


@dataclass(frozen=True)
class Schedule:
    """When the campaign goes: ``now``; ``at`` an instant (a time without offset is in the store's
    time zone); or ``local_time`` on ``date`` in each recipient's own time zone."""

    kind: Literal["now", "at", "local_time"] = "now"
    at: str | None = None
    local_time: time | None = None
    on: date | None = None

    def send_at(self, now: datetime, store_tz: ZoneInfo) -> datetime:
        """When freezing starts: now, the instant, or the first moment any zone reaches the local time."""
        if self.kind == "at" and self.at is not None:
            return parse_instant(self.at, store_tz)
        if self.kind == "local_time" and self.local_time is not None and self.on is not None:
            return datetime.combine(self.on, self.local_time, ZoneInfo("UTC")) - _EARLIEST_OFFSET
        return now

    def due_in(self, zone: ZoneInfo) -> datetime:
        """A local-time campaign's due instant for recipients in ``zone``."""
        assert self.local_time is not None
        assert self.on is not None
        return datetime.combine(self.on, self.local_time, zone).astimezone(ZoneInfo("UTC"))

    def as_document(self) -> str | dict[str, str]:
        if self.kind == "at":
            return {"at": str(self.at)}
        if self.kind == "local_time":
            return {"local_time": f"{self.local_time:%H:%M}", "date": str(self.on)}
        return "now"


@dataclass(frozen=True)
class Variant:
    """One version of the message in a test: its share of the audience and its params."""

    id: str
    weight: int
    params: BaseModel


@dataclass(frozen=True)
class CampaignDefinition:
    id: str
    name: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    channel: Literal["email", "sms"]
    params: BaseModel
    variants: tuple[Variant, ...]
    schedule: Schedule
    throttle: int | None
    smart_sending_hours: float
    document: dict[str, Any]

    def params_for(self, variant: str | None) -> BaseModel:
        """The message params of a variant (the base message when there are no variants)."""
        for v in self.variants:
            if v.id == variant:
                return v.params
        return self.params

    @property
    def weights(self) -> tuple[tuple[str, int], ...]:
        return tuple((v.id, v.weight) for v in self.variants)


def parse_instant(text: str, store_tz: ZoneInfo) -> datetime:
    """An ISO 8601 date-time; without an offset it is a wall time in ``store_tz``."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=store_tz)
    return value.astimezone(ZoneInfo("UTC"))


def _segment_ids(value: Any, loc: Loc, problems: Problems) -> tuple[str, ...]:
    items = want_list(value, loc, problems, "a list of segment ids")
    if items is None:
        return ()
    if len(items) > MAX_SEGMENTS:
        problems.add(loc, f"must have at most {MAX_SEGMENTS} segments")
    out: list[str] = []
    for i, item in enumerate(items):
        slug = want_slug(item, (*loc, i), problems)
        if slug is not None and slug not in out:
            out.append(slug)
    return tuple(out)


def _audience(value: Any, problems: Problems) -> tuple[tuple[str, ...], tuple[str, ...]]:
    data = want_mapping(value, ("audience",), problems)
    if data is None:
        return (), ()
    check_keys(data, ("audience",), problems, ("include", "exclude"), ("include",))
    include = _segment_ids(data.get("include", []), ("audience", "include"), problems)
    if "include" in data and not include and isinstance(data.get("include"), list):
        problems.add(("audience", "include"), "must name at least one segment", "e.g. include: [subscribers]")
    exclude = _segment_ids(data.get("exclude", []), ("audience", "exclude"), problems)
    for seg in set(include) & set(exclude):
        problems.add(("audience", "exclude"), f'"{seg}" is both included and excluded', "keep it in one list")
    return include, exclude


def _message_params(channel: str, message: Mapping[str, Any], loc: Loc, problems: Problems) -> BaseModel | None:
    """The flows' ``email``/``sms`` params of a message (every problem added under ``loc``)."""
    body = {k: v for k, v in message.items() if k != "channel"}
    if "to" in body:
        problems.add((*loc, "to"), "a campaign sends to each recipient's own address",
                     "leave out to; the audience decides who gets the message")
        body.pop("to")
    if body.get("kind", "marketing") != "marketing":
        problems.add((*loc, "kind"), "a campaign is a marketing message", "leave out kind (it is marketing)")
    body["kind"] = "marketing"
    for key in ("id", "name", "action"):
        if key in body:
            problems.add((*loc, key), f'unknown key "{key}"', "allowed keys: " + ", ".join(_MESSAGE_KEYS[channel]))
            body.pop(key)
    return read_action_params({"action": channel, **body}, loc, problems)


def _message(value: Any, problems: Problems) -> tuple[str | None, dict[str, Any], BaseModel | None]:
    data = want_mapping(value, ("message",), problems)
    if data is None:
        return None, {}, None
    channel = data.get("channel")
    if channel not in _MESSAGE_KEYS:
        problems.add(("message", "channel"), f"must be email or sms, not {type_name(channel)}"
                     if channel is not None else 'missing required key "channel"', "channel: email or channel: sms")
        return None, dict(data), None
    return str(channel), dict(data), _message_params(str(channel), data, ("message",), problems)


def _variants(value: Any, channel: str | None, message: dict[str, Any], problems: Problems) -> tuple[Variant, ...]:
    if value is None:
        return ()
    items = want_list(value, ("variants",), problems)
    if items is None:
        return ()
    if len(items) < 2 or len(items) > MAX_VARIANTS:
        problems.add(("variants",), f"must have 2 to {MAX_VARIANTS} variants", "or leave out variants")
    out: list[Variant] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        loc: Loc = ("variants", i)
        data = want_mapping(item, loc, problems)
        if data is None:
            continue
        check_keys(data, loc, problems, ("id", "weight", "message"), ("id",))
        vid = want_slug(data.get("id"), (*loc, "id"), problems) if "id" in data else None
        if vid is not None and len(vid) > 32:
            problems.add((*loc, "id"), "is too long (at most 32 characters)")
        if vid is not None and vid in seen:
            problems.add((*loc, "id"), f'duplicate variant id "{vid}"')
        weight = data.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 10_000:
            problems.add((*loc, "weight"), "must be a whole number from 1 to 10000", "e.g. weight: 50")
            weight = 1
        overrides = want_mapping(data.get("message", {}), (*loc, "message"), problems) or {}
        if "channel" in overrides and overrides["channel"] != channel:
            problems.add((*loc, "message", "channel"), "a variant cannot change the channel")
        params = _message_params(channel, {**message, **overrides}, (*loc, "message"), problems) \
            if channel is not None else None
        if vid is not None and params is not None:
            seen.add(vid)
            out.append(Variant(vid, weight, params))
    return tuple(out)


def _schedule(value: Any, problems: Problems) -> Schedule:
    loc: Loc = ("schedule",)
    if value is None or value == "now":
        return Schedule()
    data = want_mapping(value, loc, problems, 'now, {at: "2026-03-05T10:00"} or {local_time: "10:00", date: ...}')
    if data is None:
        return Schedule()
    check_keys(data, loc, problems, ("now", "at", "local_time", "date"))
    given = [k for k in ("now", "at", "local_time") if k in data]
    if len(given) != 1:
        problems.add(loc, "give exactly one of now, at and local_time", 'e.g. schedule: {at: "2026-03-05T10:00"}')
        return Schedule()
    if given == ["now"]:
        if data["now"] is not True:
            problems.add((*loc, "now"), "must be true")
        return Schedule()
    if given == ["at"]:
        text = want_text(data["at"], (*loc, "at"), problems)
        if text is not None:
            try:
                parse_instant(text, ZoneInfo("UTC"))
            except ValueError:
                problems.add((*loc, "at"), f'"{text}" is not a date and time',
                             "e.g. 2026-03-05T10:00 (the store's time zone) or 2026-03-05T10:00+07:00")
                return Schedule()
        if "date" in data:
            problems.add((*loc, "date"), "date goes with local_time", "at holds the date itself")
        return Schedule("at", at=text)
    local = want_text(data["local_time"], (*loc, "local_time"), problems)
    when: time | None = None
    if local is not None:
        try:
            when = time.fromisoformat(local)
        except ValueError:
            problems.add((*loc, "local_time"), f'"{local}" is not a time of day', 'e.g. local_time: "10:00"')
    on: date | None = None
    if "date" not in data:
        problems.add(loc, 'missing required key "date"', 'local_time needs the day, e.g. date: "2026-03-05"')
    else:
        day = want_text(data["date"], (*loc, "date"), problems)
        try:
            on = date.fromisoformat(day) if day is not None else None
        except ValueError:
            problems.add((*loc, "date"), f'"{day}" is not a date', 'e.g. date: "2026-03-05"')
    return Schedule("local_time", local_time=when, on=on)


def read_campaign(data: Any, problems: Problems) -> CampaignDefinition | None:
    """The campaign in a parsed document; None after adding every problem found."""
    doc = want_mapping(data, (), problems, "a mapping (the campaign document)")
    if doc is None:
        return None
    check_keys(doc, (), problems, _KEYS, ("id", "name", "audience", "message"))
    cid = want_slug(doc["id"], ("id",), problems) if "id" in doc else None
    name = want_text(doc["name"], ("name",), problems) if "name" in doc else None
    if name is not None and len(name) > 200:
        problems.add(("name",), "is too long (at most 200 characters)")
    include, exclude = _audience(doc["audience"], problems) if "audience" in doc else ((), ())
    channel, message, params = _message(doc["message"], problems) if "message" in doc else (None, {}, None)
    variants = _variants(doc.get("variants"), channel, message, problems)
    schedule = _schedule(doc.get("schedule"), problems)
    throttle = doc.get("throttle")
    if throttle is not None and (isinstance(throttle, bool) or not isinstance(throttle, int) or throttle < 1):
        problems.add(("throttle",), "must be a whole number of messages per minute, at least 1", "e.g. throttle: 600")
        throttle = None
    smart = doc.get("smart_sending", DEFAULT_SMART_SENDING_HOURS)
    if isinstance(smart, bool) or not isinstance(smart, int | float) or not 0 <= smart <= 24 * 30:
        problems.add(("smart_sending",), "must be a number of hours from 0 to 720", "0 turns Smart Sending off")
        smart = DEFAULT_SMART_SENDING_HOURS
    if problems or cid is None or name is None or channel is None or params is None:
        return None
    return CampaignDefinition(id=cid, name=name, include=include, exclude=exclude,
                              channel="email" if channel == "email" else "sms", params=params,
                              variants=variants, schedule=schedule, throttle=throttle,
                              smart_sending_hours=float(smart), document=dict(doc))


def parse_campaign(data: Any, source: str = "<campaign>") -> CampaignDefinition:
    """A campaign from a parsed document; raises CampaignValidationError with every problem."""
    problems = Problems()
    campaign = read_campaign(data, problems)
    if campaign is None:
        if not problems:  # pragma: no cover - every None comes with a problem
            problems.add((), "the campaign is not valid")
        raise CampaignValidationError(problems.to_problems(), source=source)
    return campaign


def load_campaign(text: str, source: str = "<campaign>") -> CampaignDefinition:
    """A campaign from YAML or JSON text; raises CampaignValidationError with every problem (with
    line numbers for YAML)."""
    problems = Problems()
    lines: dict[Loc, int] = {}
    try:
        check_size(text)
        if source.lower().endswith(".json") or text.lstrip().startswith("{"):
            data = json.loads(text)
        else:
            data, lines = read_yaml(text, problems)
    except json.JSONDecodeError as exc:
        raise CampaignValidationError([_syntax(f"JSON syntax error: {exc.msg}", exc.lineno)], source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise CampaignValidationError([_syntax(f"YAML syntax error: {exc.problem or 'invalid YAML'}",
                                               mark.line + 1 if mark else None)], source) from None
    except yaml.YAMLError as exc:
        raise CampaignValidationError([_syntax(f"YAML syntax error: {exc}", None)], source) from None
    except LimitExceeded as exc:
        problems.add(exc.loc, exc.message, exc.hint, line=exc.line)
        raise CampaignValidationError(problems.to_problems(), source=source) from None
    campaign = read_campaign(data, problems)
    if campaign is None or problems:
        raise CampaignValidationError(problems.to_problems(lines), source=source)
    return campaign


def _syntax(message: str, line: int | None) -> Any:
    from storeflow.errors import Problem

    return Problem(path="", message=message, line=line)
