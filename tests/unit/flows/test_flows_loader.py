"""load_flow: YAML and JSON text, every problem at once, with paths, hints and line numbers."""

import datetime as dt

import pytest

from storeflow.errors import FlowValidationError, Problem
from storeflow.flows import ActionStep, EventTrigger, IfStep, WebhookParams, load_flow

BROKEN = """\
id: abandoned-cart
name: Abandoned cart
stauts: live
trigger:
  event: checkout_startd
  filter:
    all:
      - {field: cart.total, gte: 20}
      - {field: cart.items, gt: 1, lt: 5}
steps:
  - wait: 1h
  - id: first
    action: tagg
  - wait: 1 hr
  - if: {field: prfile.country, eq: BR}
    then:
      - action: tag
        tags: []
      - action: push
    else:
      - split:
          - {name: a, weight: 100}
  - id: first
    wait_for: {event: order_placed, timeout: 1d}
    on_timeout:
      - action: webhook
        url: ftp://example.com
        timeout: 2m
        secret: "s3cr3t value"
  - wait_until: {time: "09:00", timezone: Europe/Berln}
  - exit: true
"""


def test_all_problems_at_once_with_lines() -> None:
    with pytest.raises(FlowValidationError) as info:
        load_flow(BROKEN, "flows/cart.yaml")
    err = info.value
    assert err.source == "flows/cart.yaml"
    found = [(p.line, p.path, p.message, p.hint) for p in err.problems]
    known_actions = (
        "known actions: email, hide_product, note, notify_team, publish_product, set_property, sms, tag, untag, webhook"
    )
    assert found == [
        (3, "stauts", 'unknown key "stauts"', 'did you mean "status"?'),
        (5, "trigger.event", 'unknown event type "checkout_startd"', 'did you mean "checkout_started"?'),
        (
            8,
            "trigger.filter.all[0].field",
            'unknown field "total" of cart',
            'did you mean "value"? known fields of cart: checkout_url, converted, converted_at, currency, id, '
            "item_count, items, kind, last_activity_at, order_id, value",
        ),
        (
            9,
            "trigger.filter.all[1]",
            "the comparison has 2 operators (gt, lt); use exactly one",
            "combine comparisons with all: [...]",
        ),
        (13, "steps[1].action", 'unknown action "tagg"', f'did you mean "tag"? {known_actions}'),
        (14, "steps[2].wait", '"1 hr" is not a duration', "use 1h, 30m or 2d"),
        (
            15,
            "steps[3].if.field",
            '"prfile.country" does not start with a known root',
            'did you mean "profile"?',
        ),
        (18, "steps[3].then[0].tags", "must have at least 1 item", None),
        (
            19,
            "steps[3].then[1].action",
            '"push" is not available: the push channel is not configured in this version',
            known_actions,
        ),
        (21, "steps[3].else[0].split", "a split needs at least 2 variants, found 1", None),
        (23, "steps[4].id", 'duplicate step id "first"', "also used at steps[1]"),
        (
            27,
            "steps[4].on_timeout[0].url",
            '"ftp://example.com" is not an http or https URL',
            "e.g. https://example.com/hooks/cart",
        ),
        (28, "steps[4].on_timeout[0].timeout", '"2m" is too long', "webhooks time out after at most 60s"),
        (
            29,
            "steps[4].on_timeout[0].secret",
            '"s3cr3t value" is not a secret name',
            "secret is the name of a signing secret configured in storeflow, not the secret itself",
        ),
        (
            30,
            "steps[5].wait_until.timezone",
            'unknown time zone "Europe/Berln"',
            'did you mean "Europe/Berlin"?',
        ),
    ]
    text = str(err)
    assert 'flows/cart.yaml:14: steps[2].wait: "1 hr" is not a duration; use 1h, 30m or 2d' in text.splitlines()
    assert "https://errors.pydantic.dev" not in text
    assert "pydantic" not in text.lower()


def test_problem_lines_fall_back_to_the_parent() -> None:
    text = (
        "id: x\nname: X\ntrigger: {event: order_placed}\n"
        "steps:\n  - action: note\n  - wait_for: {event: order_placed}\n"
    )
    with pytest.raises(FlowValidationError) as info:
        load_flow(text, "f.yaml")
    assert info.value.problems == [
        Problem(path="steps[0]", message='missing required key "text"', line=5),
        Problem(path="steps[1].wait_for", message='missing required key "timeout"', line=6),
    ]


def test_missing_top_level_keys() -> None:
    with pytest.raises(FlowValidationError) as info:
        load_flow("id: x\n", "f.yaml")
    assert [p.message for p in info.value.problems] == [
        'missing required key "name"',
        'missing required key "trigger"',
        'missing required key "steps"',
    ]
    assert str(info.value).splitlines()[0] == 'f.yaml:1: missing required key "name"'


def test_yaml_syntax_error_has_its_line() -> None:
    text = "id: x\nname: X\ntrigger:\n  event: order_placed\n   bad: indent\nsteps: []\n"
    with pytest.raises(FlowValidationError) as info:
        load_flow(text, "f.yaml")
    (problem,) = info.value.problems
    assert problem.line == 5
    assert problem.message.startswith("YAML syntax error: ")


def test_two_documents_are_a_syntax_error() -> None:
    with pytest.raises(FlowValidationError, match="YAML syntax error"):
        load_flow("id: a\n---\nid: b\n", "f.yaml")


def test_duplicate_keys_are_problems() -> None:
    text = "id: x\nname: X\ntrigger: {event: order_placed}\nsteps:\n  - wait: 1h\n    wait: 2h\nname: Y\n"
    with pytest.raises(FlowValidationError) as info:
        load_flow(text, "f.yaml")
    assert [(p.line, p.path, p.message) for p in info.value.problems] == [
        (6, "steps[0].wait", 'duplicate key "wait"'),
        (7, "name", 'duplicate key "name"'),
    ]


def test_empty_document() -> None:
    with pytest.raises(FlowValidationError, match="the document is empty"):
        load_flow("# nothing\n", "f.yaml")


def test_yaml_scalars_mean_what_json_means() -> None:
    text = """\
id: x
name: X
trigger:
  event: order_placed
  filter: {field: profile.country, in: [NO, SE, on, yes]}
steps:
  - wait_until: {time: 9:30}
  - action: webhook
    url: https://example.com
    body: {since: 2026-01-01, count: 010, ratio: 1.50, off: off, missing: ~}
"""
    defn = load_flow(text, "f.yaml")
    assert isinstance(defn.trigger, EventTrigger)
    assert defn.trigger.filter is not None
    assert defn.trigger.filter.value == ("NO", "SE", "on", "yes")  # type: ignore[union-attr]
    assert defn.steps[0].time == dt.time(9, 30)  # type: ignore[union-attr]
    hook = defn.steps[1]
    assert isinstance(hook, ActionStep)
    assert isinstance(hook.params, WebhookParams)
    assert hook.params.body == {
        "since": "2026-01-01",
        "count": 10,
        "ratio": 1.5,
        "off": "off",
        "missing": None,
    }


def test_json_input() -> None:
    text = (
        '{"id": "x", "name": "X", "trigger": {"event": "order_placed"},'
        ' "steps": [{"if": {"field": "order.total", "gt": 10}, "then": []}]}'
    )
    for source, fmt in (("f.json", "auto"), ("<flow>", "auto"), ("<flow>", "json"), ("f.txt", "yaml")):
        defn = load_flow(text, source, fmt)  # type: ignore[arg-type]
        assert isinstance(defn.steps[0], IfStep)


def test_json_errors() -> None:
    with pytest.raises(FlowValidationError) as info:
        load_flow('{\n  "id": "x",\n}', "f.json")
    assert info.value.problems[0].line == 3
    assert info.value.problems[0].message.startswith("JSON syntax error")
    with pytest.raises(FlowValidationError, match="NaN is not allowed"):
        load_flow('{"id": NaN}', "f.json")
    with pytest.raises(FlowValidationError) as info:
        load_flow(
            '{"id": "x", "name": "X", "trigger": {"event": "order_placed"}, "steps": [{"wait": 60}]}',
            "f.json",
        )
    assert [(p.line, p.path, p.message) for p in info.value.problems] == [
        (None, "steps[0].wait", "60 is not a duration")
    ]


def test_flow_style_yaml_that_looks_like_json() -> None:
    defn = load_flow("{id: x, name: X, trigger: {event: order_placed}, steps: [{wait: 1h}]}")
    assert defn.id == "x"
