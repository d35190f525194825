"""The JSON Schema accepts the example flows and rejects wrong ones."""

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from storeflow.flows import flow_json_schema, load_flow
from storeflow.flows.loader import FlowYamlLoader


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = flow_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def read(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=FlowYamlLoader)  # a SafeLoader subclass


def test_schema_header() -> None:
    schema = flow_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["id", "name", "trigger", "steps"]


def test_examples_are_valid(validator: jsonschema.Draft202012Validator, example: Path) -> None:
    validator.validate(read(example))
    validator.validate(load_flow(example.read_text(), str(example)).to_document())


GOOD = {"id": "x", "name": "X", "trigger": {"event": "order_placed"}, "steps": [{"wait": "1h"}]}


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("steps"),
        lambda d: d.update(colour="red"),
        lambda d: d.update(id="Not A Slug"),
        lambda d: d.update(steps=[]),
        lambda d: d.update(steps=[{"wait": "1 hr"}]),
        lambda d: d.update(steps=[{"wait": 3600}]),
        lambda d: d.update(steps=[{"wait": "1h", "exit": True}]),
        lambda d: d.update(steps=[{"action": "tagg", "tags": ["x"]}]),
        lambda d: d.update(steps=[{"action": "tag", "tags": []}]),
        lambda d: d.update(steps=[{"action": "tag", "tags": ["x"], "colour": "red"}]),
        lambda d: d.update(steps=[{"action": "set_property", "property": "p"}]),
        lambda d: d.update(steps=[{"action": "set_property", "property": "p", "value": 1, "increment": 1}]),
        lambda d: d.update(steps=[{"action": "webhook", "url": "ftp://x"}]),
        lambda d: d.update(steps=[{"split": [{"name": "a", "weight": 1}]}]),
        lambda d: d.update(steps=[{"split": [{"name": "a", "weight": 0}, {"name": "b", "weight": 1}]}]),
        lambda d: d.update(steps=[{"wait_until": {"time": "09:00", "at": "2026-01-01"}}]),
        lambda d: d.update(steps=[{"wait_until": {"time": "9h"}}]),
        lambda d: d.update(steps=[{"if": {"field": "profile.x", "gt": 1, "lt": 2}, "then": []}]),
        lambda d: d.update(steps=[{"if": {"field": "profile.x"}, "then": []}]),
        lambda d: d.update(steps=[{"if": {"field": "prfile.x", "eq": 1}, "then": []}]),
        lambda d: d.update(steps=[{"if": {"field": "profile.x", "in": "a"}, "then": []}]),
        lambda d: d.update(steps=[{"if": {"history": {"event": "x"}}, "then": []}]),
        lambda d: d.update(steps=[{"if": {"history": {"event": "x"}, "exists": True, "count": {"gt": 1}}, "then": []}]),
        lambda d: d.update(
            steps=[
                {
                    "if": {"history": {"event": "x", "within": "1d", "since": "trigger"}, "exists": True},
                    "then": [],
                }
            ]
        ),
        lambda d: d.update(trigger={"event": "x", "schedule": "@daily"}),
        lambda d: d.update(trigger={"date": "event.birthday"}),
        lambda d: d.update(reentry="twice"),
    ],
)
def test_wrong_documents_are_rejected(validator: jsonschema.Draft202012Validator, change: Any) -> None:
    doc = copy.deepcopy(GOOD)
    validator.validate(doc)
    change(doc)
    assert not validator.is_valid(doc)


def test_registered_actions_appear_in_the_schema() -> None:
    schema = flow_json_schema()
    action_step = schema["$defs"]["step"]["oneOf"][-1]
    assert "webhook" in action_step["properties"]["action"]["enum"]
