"""FlowDefinition: every form parses, round-trips through to_document, and has a stable digest."""

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from storeflow.errors import FlowValidationError
from storeflow.flows import (
    ActionStep,
    DateTrigger,
    EventTrigger,
    ExitStep,
    FieldPath,
    FlowDefinition,
    IfStep,
    NoteParams,
    ProductParams,
    Reentry,
    ScheduleTrigger,
    SetPropertyParams,
    SplitStep,
    TagParams,
    WaitForStep,
    WaitStep,
    WaitUntilStep,
    WebhookParams,
    load_flow,
    parse_flow,
)


def flow(steps: Any, trigger: Any = None, **top: Any) -> dict[str, Any]:
    return {"id": "f", "name": "F", "trigger": trigger or {"event": "order_placed"}, "steps": steps, **top}


def test_minimal_flow_defaults() -> None:
    defn = parse_flow(flow([{"wait": "1h"}]))
    assert defn.id == "f"
    assert defn.status == "draft"
    assert defn.description is None
    assert defn.exit_when is None
    assert defn.reentry == Reentry(mode="always")
    assert defn.trigger == EventTrigger(event="order_placed", filter=None, max_age=dt.timedelta(days=1))
    assert defn.steps == (WaitStep(duration=dt.timedelta(hours=1)),)


def test_triggers() -> None:
    event = parse_flow(
        flow(
            [{"exit": True}],
            {"event": "checkout_started", "filter": {"field": "cart.value", "gt": 0}, "max_age": "2h"},
        )
    )
    assert isinstance(event.trigger, EventTrigger)
    assert event.trigger.max_age == dt.timedelta(hours=2)
    assert event.trigger.filter is not None

    schedule = parse_flow(flow([{"exit": True}], {"schedule": "0  9 * * 1-5", "timezone": "America/Sao_Paulo"}))
    assert schedule.trigger == ScheduleTrigger(schedule="0 9 * * 1-5", timezone="America/Sao_Paulo")
    assert parse_flow(flow([{"exit": True}], {"schedule": "@daily"})).trigger == ScheduleTrigger(schedule="@daily")

    date = parse_flow(
        flow(
            [{"exit": True}],
            {"date": "profile.properties.birthday", "offset": "-3d", "at": "8:30", "repeat": "once"},
        )
    )
    assert date.trigger == DateTrigger(
        date=FieldPath(root="profile", segments=("properties", "birthday")),
        offset=dt.timedelta(days=-3),
        at=dt.time(8, 30),
        repeat="once",
    )
    defaults = parse_flow(flow([{"exit": True}], {"date": "profile.birthday"})).trigger
    assert isinstance(defaults, DateTrigger)
    assert (defaults.offset, defaults.at, defaults.repeat) == (dt.timedelta(0), dt.time(9), "yearly")


def test_every_step_form() -> None:
    steps = [
        {"id": "t", "name": "Tag", "action": "tag", "target": "order", "tags": ["a", "b"]},
        {"action": "untag", "tags": ["b"]},
        {"action": "set_property", "property": "tier", "value": {"level": 2}},
        {"action": "set_property", "property": "orders", "increment": 1.5},
        {"action": "hide_product"},
        {"action": "publish_product", "product": 8412345},
        {"action": "note", "text": "hello"},
        {
            "action": "webhook",
            "url": "https://example.com/h",
            "method": "patch",
            "headers": {"X-A": "1"},
            "timeout": "30s",
            "secret": "main",
        },
        {"wait": "1h30m"},
        {"wait_until": {"time": "09:00", "days": ["fri", "mon"], "timezone": "Europe/Berlin"}},
        {"wait_until": {"at": "2026-12-24T09:00"}},
        {"wait_until": {"at": "2026-12-24", "timezone": "store"}},
        {
            "wait_for": {
                "event": "order_placed",
                "timeout": "24h",
                "where": {"field": "event.total", "gt": 10},
            },
            "on_event": [{"exit": True}],
            "on_timeout": [{"wait": "1m"}],
        },
        {"wait_for": {"event": "order_paid", "timeout": "1d"}, "on_event": None},
        {"if": {"field": "profile.vip", "eq": True}, "then": [{"wait": "1s"}], "else": [{"wait": "2s"}]},
        {"if": {"field": "profile.vip", "eq": True}, "then": None},
        {"split": [{"name": "a", "weight": 1, "steps": [{"wait": "1s"}]}, {"name": "b", "weight": 3}]},
        {"exit": "customer ordered"},
        {"exit": True},
    ]
    defn = parse_flow(flow(steps))
    s = defn.steps
    assert s[0] == ActionStep(id="t", name="Tag", action="tag", params=TagParams(target="order", tags=("a", "b")))
    assert isinstance(s[1], ActionStep)
    assert s[1].params == TagParams(tags=("b",))
    assert isinstance(s[2], ActionStep)
    assert s[2].params == SetPropertyParams(property="tier", value={"level": 2})
    assert isinstance(s[3], ActionStep)
    assert isinstance(s[3].params, SetPropertyParams)
    assert s[3].params.increment == Decimal("1.5")
    assert isinstance(s[4], ActionStep)
    assert s[4].params == ProductParams(product=None)
    assert isinstance(s[5], ActionStep)
    assert s[5].params == ProductParams(product="8412345")
    assert isinstance(s[6], ActionStep)
    assert s[6].params == NoteParams(text="hello")
    assert isinstance(s[7], ActionStep)
    hook = s[7].params
    assert isinstance(hook, WebhookParams)
    assert (hook.method, hook.timeout, hook.secret, hook.headers) == (
        "PATCH",
        dt.timedelta(seconds=30),
        "main",
        {"X-A": "1"},
    )
    assert s[8] == WaitStep(duration=dt.timedelta(hours=1, minutes=30))
    assert s[9] == WaitUntilStep(time=dt.time(9), days=("mon", "fri"), timezone="Europe/Berlin")
    assert s[10] == WaitUntilStep(at=dt.datetime(2026, 12, 24, 9), timezone="profile")
    assert s[11] == WaitUntilStep(at=dt.datetime(2026, 12, 24), timezone="store")
    assert isinstance(s[12], WaitForStep)
    assert s[12].timeout == dt.timedelta(days=1)
    assert s[12].on_event == (ExitStep(),)
    assert s[12].where is not None
    assert isinstance(s[13], WaitForStep)
    assert s[13].on_event == s[13].on_timeout == ()
    assert isinstance(s[14], IfStep)
    assert s[14].else_ == (WaitStep(duration=dt.timedelta(seconds=2)),)
    assert isinstance(s[15], IfStep)
    assert s[15].then == s[15].else_ == ()
    assert isinstance(s[16], SplitStep)
    assert [(v.name, v.weight, len(v.steps)) for v in s[16].variants] == [("a", 1, 1), ("b", 3, 0)]
    assert s[17] == ExitStep(reason="customer ordered")
    assert s[18] == ExitStep(reason=None)
    again = parse_flow(defn.to_document())
    assert again == defn
    assert again.digest == defn.digest


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("once", Reentry(mode="once")),
        ("always", Reentry(mode="always")),
        ({"every": "7d"}, Reentry(mode="every", period=dt.timedelta(days=7))),
    ],
)
def test_reentry(value: Any, expected: Reentry) -> None:
    assert parse_flow(flow([{"wait": "1h"}], reentry=value)).reentry == expected


def test_reentry_model_is_consistent() -> None:
    with pytest.raises(ValueError, match="period"):
        Reentry(mode="every")


def test_examples_round_trip(example: Path) -> None:
    defn = load_flow(example.read_text(), str(example))
    doc = defn.to_document()
    text = json.dumps(doc)  # JSON-able
    again = parse_flow(json.loads(text))
    assert again == defn
    assert again.to_document() == doc
    assert again.digest == defn.digest
    assert load_flow(text, "again.json") == defn


def test_digest_ignores_form_and_sees_content() -> None:
    a = flow(
        [
            {"action": "tag", "tags": ["x"]},
            {"wait": "24h"},
            {"wait_until": {"time": "9:00", "days": ["tue", "mon"]}},
        ],
        description=None,
    )
    b = {
        "steps": [
            {"tags": ["x"], "target": "profile", "action": "tag"},
            {"wait": "1d"},
            {"wait_until": {"days": ["mon", "tue"], "time": "09:00", "timezone": "profile"}},
        ],
        "trigger": {"max_age": "1d", "event": "order_placed"},
        "reentry": "always",
        "status": "draft",
        "name": "F",
        "id": "f",
    }
    assert parse_flow(a).digest == parse_flow(b).digest
    assert len(parse_flow(a).digest) == 64
    c = flow(
        [
            {"action": "tag", "tags": ["y"]},
            {"wait": "24h"},
            {"wait_until": {"time": "9:00", "days": ["tue", "mon"]}},
        ]
    )
    assert parse_flow(c).digest != parse_flow(a).digest


def test_definitions_are_frozen() -> None:
    defn = parse_flow(flow([{"wait": "1h"}]))
    with pytest.raises(ValueError, match="frozen"):
        defn.status = "live"  # type: ignore[misc]
    step = defn.steps[0]
    with pytest.raises(ValueError, match="frozen"):
        step.id = "x"  # type: ignore[misc]
    assert isinstance(defn, FlowDefinition)


@pytest.mark.parametrize(
    ("doc", "path", "message"),
    [
        (flow([{"wait": "0s"}]), "steps[0].wait", '"0s" is not allowed'),
        (flow([{"wait": "-1h"}]), "steps[0].wait", '"-1h" is not allowed'),
        (flow([]), "steps", "needs at least one step"),
        (flow({"wait": "1h"}), "steps", "must be a list of steps, not a mapping"),
        (flow(["wait 1h"]), "steps[0]", "must be a step (a mapping), not text"),
        (
            flow([{"wait": "1h", "exit": True}]),
            "steps[0]",
            "the step has wait and exit; a step does exactly one thing",
        ),
        (
            flow([{"name": "only a name"}]),
            "steps[0]",
            "the step needs one of action, wait, wait_until, wait_for, if, split, exit",
        ),
        (flow([{"exit": False}]), "steps[0].exit", "must be a reason (text) or true, not true/false"),
        (flow([{"if": {"field": "profile.x", "eq": 1}}]), "steps[0]", 'missing required key "then"'),
        (
            flow([{"split": [{"name": "a", "weight": 1}, {"name": "a", "weight": 1}]}]),
            "steps[0].split[1].name",
            'duplicate variant name "a"',
        ),
        (
            flow([{"split": [{"name": "a", "weight": 1.5}, {"name": "b", "weight": True}]}]),
            "steps[0].split[0].weight",
            "must be a whole number above 0, not the number 1.5",
        ),
        (
            flow([{"wait_until": {"time": "25:00"}}]),
            "steps[0].wait_until.time",
            '"25:00" is not a time of day',
        ),
        (
            flow([{"wait_until": {"time": "09:00", "at": "2026-01-01"}}]),
            "steps[0].wait_until",
            "wait_until needs exactly one of time, at",
        ),
        (
            flow([{"wait_until": {"at": "2026-01-01", "days": ["mon"]}}]),
            "steps[0].wait_until.days",
            "days goes with time, not with at",
        ),
        (
            flow([{"wait_until": {"time": "09:00", "days": ["monday"]}}]),
            "steps[0].wait_until.days[0]",
            '"monday" is not a day',
        ),
        (
            flow([{"wait_until": {"time": "09:00", "days": ["mon", "Mon"]}}]),
            "steps[0].wait_until.days[1]",
            '"Mon" is listed twice',
        ),
        (
            flow([{"wait_until": {"time": "09:00", "timezone": "Mars/Olympus"}}]),
            "steps[0].wait_until.timezone",
            'unknown time zone "Mars/Olympus"',
        ),
        (
            flow([{"wait_for": {"event": "order_placed", "timeout": "1d"}, "on_event": {"exit": True}}]),
            "steps[0].on_event",
            "must be a list of steps, not a mapping",
        ),
        (
            flow([{"wait": "1h"}], {"schedule": "0 9 * *"}),
            "trigger.schedule",
            '"0 9 * *" is not a cron schedule',
        ),
        (
            flow([{"wait": "1h"}], {"schedule": "0 25 * * *"}),
            "trigger.schedule",
            '"0 25 * * *" is not a cron schedule',
        ),
        (
            flow([{"wait": "1h"}], {"schedule": "0 9 * * *", "timezone": "america/sao_paulo"}),
            "trigger.timezone",
            'unknown time zone "america/sao_paulo"',
        ),
        (
            flow([{"wait": "1h"}], {"date": "profile.birthday", "offset": "36h"}),
            "trigger.offset",
            '"36h" is not a whole number of days',
        ),
        (
            flow([{"wait": "1h"}], {"date": "event.birthday"}),
            "trigger.date",
            '"event.birthday" cannot be used here',
        ),
        (
            flow([{"wait": "1h"}], {"date": "profile.birthday", "repeat": "monthly"}),
            "trigger.repeat",
            '"monthly" is not a repeat',
        ),
        (
            flow([{"wait": "1h"}], {"event": "order_placed", "schedule": "@daily"}),
            "trigger",
            "the trigger has event and schedule; use exactly one",
        ),
        (flow([{"wait": "1h"}], {"evnt": "order_placed"}), "trigger.evnt", 'unknown key "evnt"'),
        (
            flow([{"wait": "1h"}], {"event": "order_placed", "max_age": 3600}),
            "trigger.max_age",
            "3600 is not a duration",
        ),
        (flow([{"wait": "1h"}], status="active"), "status", '"active" is not a status'),
        (flow([{"wait": "1h"}], reentry="twice"), "reentry", '"twice" is not a reentry rule'),
        (flow([{"wait": "1h"}], reentry={"every": "0s"}), "reentry.every", '"0s" is not allowed'),
        (flow([{"wait": "1h"}], description=5), "description", "must be text, not the number 5"),
        ({**flow([{"wait": "1h"}]), "id": "Cart Flow"}, "id", '"Cart Flow" is not a valid id'),
        ({**flow([{"wait": "1h"}]), "name": ""}, "name", "must not be empty"),
        (["not", "a", "flow"], "", "must be a mapping with id, name, trigger and steps, not a list"),
        (None, "", "the document is empty"),
    ],
)
def test_single_problems(doc: Any, path: str, message: str) -> None:
    with pytest.raises(FlowValidationError) as info:
        parse_flow(doc, "test.json")
    found = [(p.path, p.message) for p in info.value.problems]
    assert (path, message) in found, found


def test_timezone_hint_fixes_case() -> None:
    with pytest.raises(FlowValidationError) as info:
        parse_flow(flow([{"wait": "1h"}], {"schedule": "0 9 * * *", "timezone": "america/sao_paulo"}))
    assert info.value.problems[0].hint == 'did you mean "America/Sao_Paulo"?'


def test_description_and_status_are_kept() -> None:
    defn = parse_flow(flow([{"wait": "1h"}], description="Hi", status="paused"))
    assert (defn.description, defn.status) == ("Hi", "paused")
    assert defn.to_document()["description"] == "Hi"


def test_dates_from_other_yaml_loaders_are_normalized() -> None:
    data = {
        "id": "x",
        "name": "X",
        "trigger": {
            "event": "order_placed",
            "filter": {
                "all": [
                    {"field": "profile.since", "eq": dt.date(2026, 1, 1)},
                    {"history": {"event": "order_placed", "since": dt.date(2026, 1, 1)}, "exists": True},
                ]
            },
        },
        "steps": [
            {"wait_until": {"at": dt.date(2026, 12, 24)}},
            {"if": {"field": "profile.x", "before": dt.datetime(2026, 1, 1, 10, tzinfo=dt.UTC)}, "then": []},
        ],
    }
    defn = parse_flow(data)
    doc = defn.to_document()
    json.dumps(doc)
    assert doc["trigger"]["filter"]["all"][0] == {"field": "profile.since", "eq": "2026-01-01"}
    assert doc["steps"][0]["wait_until"]["at"] == "2026-12-24T00:00:00"
    assert parse_flow(doc).digest == defn.digest


def test_non_json_values_are_problems() -> None:
    with pytest.raises(FlowValidationError) as info:
        parse_flow(flow([{"if": {"field": "profile.x", "eq": {1, 2}}, "then": []}]))
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("steps[0].if.eq", "must be text, a number, true/false, a list or a mapping, not set")
    ]
