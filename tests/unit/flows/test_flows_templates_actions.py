"""The message actions (email, sms, notify_team): validation of their params and templates."""

from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from storeflow.errors import FlowValidationError
from storeflow.flows import (
    ACTIONS,
    ActionStep,
    EmailParams,
    FieldPath,
    NotifyTeamParams,
    SmsParams,
    build_context,
    flow_json_schema,
    load_flow,
    params_to_document,
    parse_flow,
    render,
    render_recipient,
)

ORDER_CONFIRMATION = """\
id: order-confirmation
name: Order confirmation
trigger: {event: order_placed}
steps:
  - wait: 5m
  - action: email
    name: Confirmation
    kind: transactional
    from: Shop <shop@example.com>
    reply_to: help@example.com
    subject: "Your order {{ order.number }}"
    html: |
      <p>Hi {{ profile.first_name or "there" }},</p>
      <ul>
      {% for item in order.line_items %}
        <li>{{ item.quantity }} x {{ item.title }}: {{ item.price | money }}</li>
      {% endfor %}
      </ul>
      <p>Total {{ order.total | money }}, placed {{ order.placed_at | datetime }}</p>
    text: "Total {{ order.total | money }}"
    track_opens: false
  - action: sms
    to: profile.properties.mobile
    text: "Order {{ order.number }} received"
  - action: notify_team
    via: email
    to: [ops@example.com]
    subject: "New order {{ order.number }}"
    text: "{{ profile.email }} ordered {{ order.total | money }}"
  - action: notify_team
    via: slack
    text: "New order {{ order.number }}"
"""


def one_step(step: dict[str, Any]) -> dict[str, Any]:
    return {"id": "f", "name": "F", "trigger": {"event": "order_placed"}, "steps": [step]}


def problems(step: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    with pytest.raises(FlowValidationError) as info:
        parse_flow(one_step(step))
    return [(p.path, p.message, p.hint) for p in info.value.problems]


def test_the_message_actions_are_registered() -> None:
    assert ACTIONS["email"] is EmailParams
    assert ACTIONS["sms"] is SmsParams
    assert ACTIONS["notify_team"] is NotifyTeamParams


def test_a_flow_with_message_steps_validates_and_round_trips() -> None:
    flow = load_flow(ORDER_CONFIRMATION, source="flows/order-confirmation.yaml")
    email, sms, team_email, team_slack = (step.params for step in flow.steps[1:] if isinstance(step, ActionStep))
    assert isinstance(email, EmailParams)
    assert email.kind == "transactional"
    assert email.from_ == "Shop <shop@example.com>"
    assert email.to is None  # the profile's email
    assert (email.track_opens, email.track_clicks, email.utm) == (False, True, True)
    assert isinstance(sms, SmsParams)
    assert sms.to == FieldPath(root="profile", segments=("properties", "mobile"))
    assert sms.kind == "marketing"
    assert isinstance(team_email, NotifyTeamParams)
    assert team_email.to == ("ops@example.com",)
    assert isinstance(team_slack, NotifyTeamParams)
    assert team_slack.via == "slack"
    document = params_to_document(email)
    assert document["from"] == "Shop <shop@example.com>"
    assert "from_" not in document
    assert params_to_document(sms)["to"] == "profile.properties.mobile"
    again = parse_flow(flow.to_document())
    assert again == flow
    assert again.digest == flow.digest


def test_the_json_schema_knows_the_message_actions() -> None:
    validator = jsonschema.Draft202012Validator(flow_json_schema())
    assert list(validator.iter_errors(yaml.safe_load(ORDER_CONFIRMATION))) == []
    enum = flow_json_schema()["$defs"]["step"]["oneOf"][-1]["properties"]["action"]["enum"]
    assert {"email", "sms", "notify_team"} <= set(enum)
    assert "push" not in enum
    for step in (
        {"action": "email", "subject": "Hi"},  # neither html nor text
        {"action": "email", "subject": "Hi", "text": "x", "form": "a@b.co"},
        {"action": "email", "subject": "Hi", "text": "x", "kind": "newsletter"},
        {"action": "sms"},
        {"action": "notify_team", "text": "x"},  # via is required
        {"action": "notify_team", "via": "email", "text": "x"},  # email needs a subject
        {"action": "notify_team", "via": "slack", "text": "x", "to": ["a@b.co"]},
        {"action": "notify_team", "via": "slack", "text": "x", "webhook_url": "https://hooks.slack.com/x"},
    ):
        assert not validator.is_valid(one_step(step)), step


def test_broken_templates_report_every_problem_with_paths_and_lines() -> None:
    text = """\
id: broken
name: Broken
trigger: {event: order_placed}
steps:
  - action: note
    text: hi
  - action: tag
    tags: [x]
  - action: email
    subject: "Hi {{ profile.first_name }"
    html: |
      <p>Hi {{ profle.first_name }}</p>
      <p>{{ order.total | monye }}</p>
    text: "{{ profile.__class__.__mro__ }}"
"""
    with pytest.raises(FlowValidationError) as info:
        load_flow(text, source="flows/broken.yaml")
    found = [(p.line, p.path, p.message, p.hint) for p in info.value.problems]
    assert found == [
        (
            10,
            "steps[2].subject",
            "template syntax error on line 1: unexpected '}'",
            "write variables as {{ profile.first_name }} and tags as {% if ... %} ... {% endif %}",
        ),
        (11, "steps[2].html", 'unknown variable "profle" on line 1', 'did you mean "profile"?'),
        (11, "steps[2].html", 'unknown filter "monye" on line 2', 'did you mean "money"?'),
        (
            14,
            "steps[2].text",
            '"__class__" cannot be used in a template',
            "names starting with _ are internal; use the record's fields, e.g. profile.first_name",
        ),
    ]
    assert str(info.value).splitlines()[1] == (
        'flows/broken.yaml:11: steps[2].html: unknown variable "profle" on line 1; did you mean "profile"?'
    )


def test_template_problems_and_other_problems_together() -> None:
    found = problems(
        {
            "action": "email",
            "subject": "{{ order.number | nope }}",
            "text": "{{ x }}",
            "to": "{{ profile.email",
            "from": "not an address",
            "track_opens": "yes",
            "colour": "red",
        }
    )
    assert [(path, message) for path, message, _ in found] == [
        ("steps[0].subject", 'unknown filter "nope"'),
        ("steps[0].text", 'unknown variable "x"'),
        (
            "steps[0].to",
            "template syntax error on line 1: unexpected end of template, expected 'end of print statement'",
        ),
        ("steps[0].from", '"not an address" is not an email address'),
        ("steps[0].track_opens", "must be true or false"),
        ("steps[0].colour", 'unknown key "colour"'),
    ]


def test_email_needs_a_subject_and_a_body() -> None:
    assert problems({"action": "email", "subject": "Hi"}) == [
        ("steps[0]", "email needs html or text (or both)", "e.g. text: Hi {{ profile.first_name }}")
    ]
    assert problems({"action": "email", "text": "Hi"}) == [("steps[0]", 'missing required key "subject"', None)]
    assert problems({"action": "email", "subject": "Hi\nthere", "text": "x"}) == [
        ("steps[0].subject", "must be one line", "a subject cannot contain line breaks")
    ]
    assert problems({"action": "email", "subject": "", "text": "x"}) == [
        ("steps[0].subject", "must not be empty", None)
    ]


def test_email_keys_have_did_you_mean_hints_including_from() -> None:
    assert problems({"action": "email", "subject": "Hi", "text": "x", "form": "a@b.co"}) == [
        ("steps[0].form", 'unknown key "form"', 'did you mean "from"?')
    ]


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("profile.properties.work_email", FieldPath(root="profile", segments=("properties", "work_email"))),
        ("{{ profile.work_email }}", "{{ profile.work_email }}"),
        ("Ops <ops@example.com>", "Ops <ops@example.com>"),
    ],
)
def test_email_to_is_a_field_path_a_template_or_an_address(to: str, expected: Any) -> None:
    step = parse_flow(one_step({"action": "email", "subject": "Hi", "text": "x", "to": to})).steps[0]
    assert isinstance(step, ActionStep)
    assert isinstance(step.params, EmailParams)
    assert step.params.to == expected


def test_bad_recipients_are_reported() -> None:
    assert problems({"action": "email", "subject": "Hi", "text": "x", "to": "nobody"}) == [
        ("steps[0].to", '"nobody" is not an email address', "e.g. shop@example.com or Shop <shop@example.com>")
    ]
    assert problems({"action": "email", "subject": "Hi", "text": "x", "to": "profle.email"})[0][:2] == (
        "steps[0].to",
        '"profle.email" is not an email address',
    )
    assert problems({"action": "sms", "text": "x", "to": "0812"}) == [
        ("steps[0].to", '"0812" is not a phone number', "use the international form, e.g. +6281234567890")
    ]
    parse_flow(one_step({"action": "sms", "text": "x", "to": "{{ profile.mobil }}"}))  # any property name is fine
    assert problems({"action": "sms", "text": "x", "to": "{{ mobile }}"})[0][:2] == (
        "steps[0].to",
        'unknown variable "mobile"',
    )


def test_sms_params() -> None:
    spec = {"text": "Hi {{ profile.first_name }}", "to": "+62 812-3456-7890", "kind": "transactional"}
    step = parse_flow(one_step({"action": "sms", **spec})).steps[0]
    assert isinstance(step, ActionStep)
    assert step.params == SmsParams.model_validate(spec)
    assert problems({"action": "sms"}) == [("steps[0]", 'missing required key "text"', None)]
    assert [(path, message) for path, message, _ in problems({"action": "sms", "text": "{{ nope }}{{ a.__b }}"})] == [
        ("steps[0].text", 'unknown variable "nope"'),
        ("steps[0].text", '"__b" cannot be used in a template'),
        ("steps[0].text", 'unknown variable "a"'),
    ]


def test_notify_team_rules() -> None:
    assert problems({"action": "notify_team", "text": "x"}) == [("steps[0]", 'missing required key "via"', None)]
    assert problems({"action": "notify_team", "via": "pager", "text": "x"}) == [
        ("steps[0].via", 'must be "email" or "slack"', None)
    ]
    assert problems({"action": "notify_team", "via": "email", "text": "x"}) == [
        ("steps[0].subject", "notify_team with via: email needs a subject", "e.g. subject: Low stock")
    ]
    assert problems({"action": "notify_team", "via": "email", "subject": "s", "text": "x", "to": ["nope"]}) == [
        ("steps[0].to[0]", '"nope" is not an email address', "e.g. shop@example.com or Shop <shop@example.com>")
    ]
    assert problems({"action": "notify_team", "via": "email", "subject": "s", "text": "x", "to": []}) == [
        ("steps[0].to", "must have at least 1 item", "or leave out to for the configured team addresses")
    ]
    assert problems(
        {
            "action": "notify_team",
            "via": "slack",
            "subject": "s",
            "to": ["a@b.co"],
            "webhook_url": "https://hooks.slack.com/services/T/B/secret",
            "text": "x",
        }
    ) == [
        (
            "steps[0].webhook_url",
            "the Slack webhook URL is not written in flows",
            "configure it in storeflow's settings; flows never hold secrets",
        ),
        ("steps[0].to", "to is only used with via: email", "Slack messages go to the webhook in settings"),
        ("steps[0].subject", "subject is only used with via: email", "write the whole Slack message in text"),
    ]


def test_push_is_still_reserved() -> None:
    ((path, message, _),) = problems({"action": "push", "text": "hi"})
    assert (path, message) == (
        "steps[0].action",
        '"push" is not available: the push channel is not configured in this version',
    )


def test_models_check_templates_when_built_directly() -> None:
    with pytest.raises(ValidationError, match="unknown variable"):
        EmailParams.model_validate({"subject": "{{ profle.x }}", "text": "x"})
    with pytest.raises(ValidationError, match="email needs html or text"):
        EmailParams.model_validate({"subject": "Hi"})


def test_render_recipient_resolves_paths_and_renders_templates() -> None:
    record = {"profile": {"email": "a@example.com", "properties": {"work_email": "w@example.com", "mobile": None}}}
    context = build_context(record, locale="en_US", timezone="UTC", currency="USD", flow={}, links={})
    path = FieldPath(root="profile", segments=("work_email",))
    assert render_recipient(path, record, context) == "w@example.com"
    assert render_recipient(FieldPath(root="profile", segments=("mobile",)), record, context) is None
    assert render_recipient("{{ profile.work_email }}", record, context) == "w@example.com"
    assert render_recipient("{{ profile.nothing }}", record, context) is None
    assert render("{{ profile.email }}", context, autoescape=False) == "a@example.com"


def test_addresses_that_start_like_a_root_are_addresses() -> None:
    step = parse_flow(one_step({"action": "email", "subject": "s", "text": "t", "to": "order.desk@shop.com"})).steps[0]
    assert isinstance(step, ActionStep)
    assert isinstance(step.params, EmailParams)
    assert step.params.to == "order.desk@shop.com"
