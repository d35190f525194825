"""Action params and the action registry."""

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from storeflow.errors import FlowValidationError
from storeflow.flows import (
    ACTIONS,
    ActionParams,
    ActionStep,
    FieldPath,
    ProductParams,
    SetPropertyParams,
    flow_json_schema,
    params_to_document,
    parse_flow,
    register_action,
    unregister_action,
)


def one_step(step: dict[str, Any]) -> dict[str, Any]:
    return {"id": "f", "name": "F", "trigger": {"event": "order_placed"}, "steps": [step]}


def problems(step: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    with pytest.raises(FlowValidationError) as info:
        parse_flow(one_step(step))
    return [(p.path, p.message, p.hint) for p in info.value.problems]


def test_registry_is_read_only() -> None:
    assert set(ACTIONS) == {
        "email",
        "sms",
        "notify_team",
        "tag",
        "untag",
        "set_property",
        "hide_product",
        "publish_product",
        "note",
        "webhook",
    }
    with pytest.raises(TypeError):
        ACTIONS["x"] = SetPropertyParams  # type: ignore[index]


class FaxParams(ActionParams):
    template: str
    subject: str | None = None


@pytest.fixture
def fax_action() -> Iterator[None]:
    register_action("fax", FaxParams)
    yield
    unregister_action("fax")


def test_reserved_channels_explain_themselves() -> None:
    ((path, message, hint),) = problems({"action": "push", "text": "hi"})
    assert path == "steps[0].action"
    assert message == '"push" is not available: the push channel is not configured in this version'
    assert hint is not None
    assert hint.startswith("known actions: ")


def test_registered_actions_are_usable(fax_action: None) -> None:
    defn = parse_flow(one_step({"action": "fax", "template": "welcome", "name": "Welcome mail"}))
    step = defn.steps[0]
    assert isinstance(step, ActionStep)
    assert step.name == "Welcome mail"
    assert step.params == FaxParams(template="welcome")
    assert parse_flow(defn.to_document()) == defn
    assert "fax" in flow_json_schema()["$defs"]["step"]["oneOf"][-1]["properties"]["action"]["enum"]
    assert problems({"action": "fax", "templat": "x"}) == [
        ("steps[0]", 'missing required key "template"', None),
        ("steps[0].templat", 'unknown key "templat"', 'did you mean "template"?'),
    ]


def test_register_action_guards() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_action("tag", SetPropertyParams)
    with pytest.raises(ValueError, match="not valid"):
        register_action("Bad Name", SetPropertyParams)

    class Clashing(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        name: str

    with pytest.raises(ValueError, match="step keys"):
        register_action("clash", Clashing)
    with pytest.raises(TypeError):
        register_action("notamodel", dict)  # type: ignore[arg-type]


def test_unknown_action_lists_known_ones() -> None:
    ((path, message, hint),) = problems({"action": "launch_rocket"})
    assert (path, message) == ("steps[0].action", 'unknown action "launch_rocket"')
    assert hint == (
        "known actions: email, hide_product, note, notify_team, publish_product, set_property, sms, tag, untag, webhook"
    )
    ((_, _, hint),) = problems({"action": "webhok", "url": "https://x.y"})
    assert hint is not None
    assert hint.startswith('did you mean "webhook"?')


def test_set_property() -> None:
    assert problems({"action": "set_property", "property": "p"}) == [
        (
            "steps[0]",
            "set_property needs exactly one of value, increment",
            "e.g. value: gold, or increment: 1",
        )
    ]
    assert problems({"action": "set_property", "property": "p", "value": 1, "increment": 1})[0][1] == (
        "set_property needs exactly one of value, increment"
    )
    assert problems({"action": "set_property", "property": "p", "increment": "5"}) == [
        ("steps[0].increment", "must be a number", "e.g. 1 or 12.50")
    ]
    assert (
        problems({"action": "set_property", "property": "p", "increment": None})[0][1] == "increment must be a number"
    )
    assert problems({"action": "set_property", "property": "p", "value": 1, "target": "order"})[0][:2] == (
        "steps[0].target",
        'must be "profile"',
    )
    # "name" is the step's label; the property goes in "property"
    assert problems({"action": "set_property", "name": "tier", "value": "gold"}) == [
        (
            "steps[0].name",
            'set_property takes the property name in "property"',
            '"name" is the label of the step; write property: <property name>',
        )
    ]
    cleared = SetPropertyParams(property="p", value=None)
    assert params_to_document(cleared) == {"property": "p", "value": None, "target": "profile"}
    bumped = SetPropertyParams.model_validate({"property": "p", "increment": 12.5})
    assert bumped.increment == Decimal("12.5")
    assert params_to_document(bumped) == {"property": "p", "increment": 12.5, "target": "profile"}


def test_tag_params() -> None:
    assert problems({"action": "tag", "tags": ["ok", ""], "target": "customer"}) == [
        ("steps[0].target", 'must be "profile", "order" or "product"', None),
        ("steps[0].tags[1]", "must not be empty", None),
    ]
    assert problems({"action": "untag", "tags": "vip"}) == [("steps[0].tags", "must be a list", None)]


def test_product_references() -> None:
    assert ProductParams.model_validate({"product": "event.product_id"}).product == FieldPath(
        root="event", segments=("product_id",)
    )
    assert ProductParams.model_validate({"product": "gid://shopify/Product/1"}).product == "gid://shopify/Product/1"
    assert ProductParams.model_validate({"product": 42}).product == "42"
    assert params_to_document(ProductParams.model_validate({"product": "order.line_items.0.product_id"})) == {
        "product": "order.line_items.0.product_id"
    }
    assert problems({"action": "hide_product", "product": "event..x"})[0][:2] == (
        "steps[0].product",
        '"event..x" is not a valid field path',
    )


def test_webhook_params() -> None:
    found = problems(
        {
            "action": "webhook",
            "url": "https://example.com",
            "method": "GET",
            "headers": {"Bad Header": "x"},
            "timeout": "0s",
        }
    )
    assert found == [
        ("steps[0].method", 'must be "POST", "PUT" or "PATCH"', None),
        ("steps[0].headers", '"Bad Header" is not a valid header name', None),
        ("steps[0].timeout", '"0s" is not allowed', "the duration must be longer than 0s"),
    ]
    assert problems({"action": "webhook", "url": "https://x.y", "headers": {"X": "a\r\nB: c"}})[0][1] == (
        'the value of header "X" contains a line break'
    )
    assert problems({"action": "webhook", "url": "https://x.y", "timeout": 10})[0][1] == "10 is not a duration"
