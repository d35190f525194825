"""Stable step ids: validated, generated when missing, kept across edits; the layout is editor
metadata, checked loosely and kept out of the digest."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from storeflow.errors import FlowValidationError
from storeflow.flows import FlowDefinition, flow_json_schema, load_flow
from storeflow.flows.layout import MAX_LAYOUT_CHARS, MAX_LAYOUT_DEPTH, read_layout
from storeflow.flows.problems import SLUG, Problems
from storeflow.flows.step_ids import assign_step_ids, step_ids_of

HEAD = """
id: f
name: F
trigger: {event: checkout_started}
steps:
"""

V1 = HEAD + """
  - wait: 1h
  - action: tag
    tags: [a]
  - if: {field: profile.email, exists: true}
    then:
      - action: tag
        tags: [b]
  - split:
      - {name: x, weight: 1, steps: [{action: tag, tags: [x]}]}
      - {name: y, weight: 1, steps: [{wait: 1d}]}
  - wait: 1d
  - action: tag
    tags: [c]
"""


def ids(defn: FlowDefinition) -> dict[str, str]:
    """formatted path -> id"""
    return {path: step_id for step_id, path in step_ids_of(defn.to_document())}


def first(text: str) -> tuple[FlowDefinition, dict[str, Any]]:
    defn = assign_step_ids(load_flow(text, "f.yaml"))
    return defn, defn.to_document()


def test_every_step_gets_a_slug_id_deterministically() -> None:
    defn, _ = first(V1)
    got = ids(defn)
    assert list(got) == ["steps[0]", "steps[1]", "steps[2]", "steps[2].then[0]", "steps[3]",
                         "steps[3].split[0].steps[0]", "steps[3].split[1].steps[0]", "steps[4]", "steps[5]"]
    assert all(SLUG.fullmatch(step_id) for step_id in got.values())
    assert len(set(got.values())) == len(got)
    assert got["steps[0]"].startswith("wait-") and got["steps[1]"].startswith("tag-")
    assert got["steps[2]"].startswith("if-") and got["steps[3]"].startswith("split-")
    assert ids(first(V1)[0]) == got  # the same document gets the same ids anywhere
    assert next(iter(defn.to_document()["steps"][0])) == "id"  # ids come first in the document


def test_the_same_document_applied_again_keeps_every_id_and_the_digest() -> None:
    defn, stored = first(V1)
    again = assign_step_ids(load_flow(V1, "f.yaml"), stored)
    assert again.digest == defn.digest
    shown = load_flow(json.dumps(stored), "shown.json")  # what `flows show` gives back, ids included
    assert assign_step_ids(shown, stored) is shown
    assert shown.digest == defn.digest


def test_inserting_steps_keeps_the_ids_of_the_others() -> None:
    defn, stored = first(V1)
    old = ids(defn)
    edited = V1.replace("  - wait: 1h\n", "  - action: note\n    text: new\n  - wait: 1h\n").replace(
        "    then:\n", "    then:\n      - wait: 5m\n")
    new = ids(assign_step_ids(load_flow(edited, "f.yaml"), stored))
    moved = {"steps[0]": "steps[1]", "steps[1]": "steps[2]", "steps[2]": "steps[3]",
             "steps[2].then[0]": "steps[3].then[1]", "steps[3]": "steps[4]",
             "steps[3].split[0].steps[0]": "steps[4].split[0].steps[0]",
             "steps[3].split[1].steps[0]": "steps[4].split[1].steps[0]", "steps[4]": "steps[5]",
             "steps[5]": "steps[6]"}
    assert {path: new[to] for path, to in moved.items()} == old
    assert new["steps[0]"].startswith("note-") and new["steps[3].then[0]"].startswith("wait-")
    assert {new["steps[0]"], new["steps[3].then[0]"]}.isdisjoint(old.values())


def test_edited_parameters_keep_the_id_and_a_replaced_step_gets_a_new_one() -> None:
    defn, stored = first(V1)
    old = ids(defn)
    edited = V1.replace("  - wait: 1d\n  - action: tag\n    tags: [c]\n",
                        "  - wait: 2d\n  - exit: done\n")
    new = ids(assign_step_ids(load_flow(edited, "f.yaml"), stored))
    assert new["steps[4]"] == old["steps[4]"]  # the same wait, now 2d
    assert new["steps[5]"].startswith("exit-") and new["steps[5]"] not in old.values()


def test_removed_ids_are_not_reused_and_a_moved_step_follows_its_content() -> None:
    defn, stored = first(V1)
    old = ids(defn)
    # The last tag moves into the if's else branch; the first wait is removed.
    edited = V1.replace("  - wait: 1h\n", "").replace("  - action: tag\n    tags: [c]\n", "").replace(
        "        tags: [b]\n", "        tags: [b]\n    else:\n      - action: tag\n        tags: [c]\n", 1)
    new = ids(assign_step_ids(load_flow(edited, "f.yaml"), stored))
    assert new["steps[1].else[0]"] == old["steps[5]"]
    assert old["steps[0]"] not in new.values()


def test_explicit_ids_are_kept_and_generated_ones_avoid_them() -> None:
    text = HEAD + "  - id: start\n    wait: 1h\n  - wait: 1h\n  - action: tag\n    tags: [a]\n"
    defn, stored = first(text)
    got = ids(defn)
    assert got["steps[0]"] == "start" and got["steps[1]"] != "start"
    # An explicit id may take over another step's id; the step that lost it gets a new one.
    swapped = text.replace("  - wait: 1h\n  - action", f"  - id: {got['steps[2]']}\n    wait: 1h\n  - action")
    new = ids(assign_step_ids(load_flow(swapped, "f.yaml"), stored))
    assert new["steps[1]"] == got["steps[2]"]
    assert len(set(new.values())) == 3


@pytest.mark.parametrize(("step_id", "message"), [
    ("Bad Id", "is not a valid id"),
    ("x" * 65, "is not a valid id"),
    ("", "must not be empty"),
])
def test_step_ids_are_safe_slugs(step_id: str, message: str) -> None:
    with pytest.raises(FlowValidationError) as err:
        load_flow(json.dumps({"id": "f", "name": "F", "trigger": {"event": "order_placed"},
                              "steps": [{"id": step_id, "wait": "1h"}]}), "f.json")
    assert any(message in p.message and p.path == "steps[0].id" for p in err.value.problems), err.value.problems


def test_step_ids_are_unique_in_the_flow() -> None:
    with pytest.raises(FlowValidationError, match='duplicate step id "a"'):
        load_flow(HEAD + "  - {id: a, wait: 1h}\n  - if: {field: profile.email, exists: true}\n"
                  "    then: [{id: a, wait: 1h}]\n", "f.yaml")


LAYOUT_FLOW = HEAD + "  - {id: w, wait: 1h}\n"


def test_layout_is_kept_and_not_part_of_the_digest() -> None:
    plain = load_flow(LAYOUT_FLOW, "f.yaml")
    laid = load_flow(LAYOUT_FLOW + "layout:\n  nodes: {w: {x: 1, y: -2.5, collapsed: true}}\n  zoom: 2\n", "f.yaml")
    assert laid.layout == {"nodes": {"w": {"x": 1, "y": -2.5, "collapsed": True}}, "zoom": 2}
    assert laid.to_document()["layout"] == laid.layout
    assert "layout" not in plain.to_document()
    assert laid.digest == plain.digest
    assert load_flow(json.dumps(laid.to_document()), "f.json").layout == laid.layout
    jsonschema.Draft202012Validator(flow_json_schema()).validate(laid.to_document())


@pytest.mark.parametrize(("layout", "path", "message"), [
    ("[1, 2]", "layout", "must be a mapping"),
    ("{nodes: [1]}", "layout.nodes", "must be a mapping of step id"),
    ("{nodes: {w: {x: left}}}", "layout.nodes.w.x", "must be a number"),
    ("{nodes: {w: {x: true}}}", "layout.nodes.w.x", "must be a number"),
    ("{nodes: {'Not An Id': {x: 1}}}", 'layout.nodes["Not An Id"]', "is not a step id"),
    ("{nodes: {w: 3}}", "layout.nodes.w", "must be a mapping"),
    ("{a: " + "[" * (MAX_LAYOUT_DEPTH + 1) + "]" * (MAX_LAYOUT_DEPTH + 1) + "}", "layout.a", "nested too deeply"),
    ("{notes: " + json.dumps("x" * MAX_LAYOUT_CHARS) + "}", "layout", "too large"),
])
def test_bad_layouts_are_refused_with_their_path(layout: str, path: str, message: str) -> None:
    with pytest.raises(FlowValidationError) as err:
        load_flow(LAYOUT_FLOW + f"layout: {layout}\n", "f.yaml")
    assert any(p.path.startswith(path) and message in p.message for p in err.value.problems), err.value.problems


def test_a_layout_holds_json_values_only() -> None:
    problems = Problems()
    assert read_layout({"zoom": float("nan"), "at": object()}, ("layout",), problems) is None
    assert [(loc, message) for loc, message, _, _ in problems.items] == [
        (("layout", "zoom"), "nan is not a finite number"), (("layout", "at"), "must be a JSON value, not object")]
