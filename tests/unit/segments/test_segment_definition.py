"""Segment documents: loading (YAML, JSON, mappings), every problem with path, hint and line, the
profile-only top level, digests, references, cycles and the JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from storeflow.errors import SegmentValidationError, ValidationError
from storeflow.segments import SegmentDefinition, load_segment, referenced_segments
from storeflow.segments.definition import MAX_SEGMENT_BYTES
from storeflow.segments.schema import segment_json_schema
from storeflow.service.segments import check_references, csv_safe, find_cycle

VIP = """\
id: vip
name: VIP customers
description: Big spenders who still buy
condition:
  all:
    - {field: profile.consent.email, eq: subscribed}
    - {orders: {within: 365d}, sum: {of: order.total, gte: 1000}}
    - not: {in_segment: lapsed}
"""


def problems_of(document: Any, **kwargs: Any) -> list[tuple[str, str, str | None, int | None]]:
    with pytest.raises(SegmentValidationError) as caught:
        load_segment(document, **kwargs)
    return [(p.path, p.message, p.hint, p.line) for p in caught.value.problems]


def test_yaml_json_and_mapping_load_to_the_same_segment() -> None:
    from_yaml = load_segment(VIP, source="segments/vip.yaml")
    assert isinstance(from_yaml, SegmentDefinition)
    assert (from_yaml.id, from_yaml.name, from_yaml.description) == ("vip", "VIP customers",
                                                                     "Big spenders who still buy")
    document = from_yaml.to_document()
    from_json = load_segment(json.dumps(document), fmt="json")
    from_mapping = load_segment(document)
    from_bytes = load_segment(json.dumps(document).encode(), source="x.json")
    assert from_yaml == from_json == from_mapping == from_bytes
    assert len({from_yaml.digest, from_json.digest, from_mapping.digest}) == 1
    assert load_segment(VIP.replace("1000", "2000")).digest != from_yaml.digest


def test_the_error_is_a_validation_error_under_the_one_root() -> None:
    assert issubclass(SegmentValidationError, ValidationError)


def test_every_problem_is_reported_at_once_with_path_hint_and_line() -> None:
    document = """\
id: Not A Slug
name: ""
colour: red
condition:
  any:
    - {field: profile.country, eq: ID}
    - {field: event.total, gte: 10}
    - {field: order.total, gte: 10}
    - {history: {event: order_placd, since: trigger}, count: {gte: 1}}
    - {field: profile.country, equals: ID}
"""
    found = problems_of(document, source="s.yaml")
    by_path = {path: (message, hint, line) for path, message, hint, line in found}
    assert by_path["id"][0] == '"Not A Slug" is not a valid id' and by_path["id"][2] == 1
    assert by_path["name"][0] == "must not be empty"
    assert by_path["colour"][0] == 'unknown key "colour"' and by_path["colour"][2] == 3
    message, hint, line = by_path["condition.any[1].field"]
    assert message == '"event.total" cannot be used in a segment condition' and line == 7
    assert hint is not None and "profile." in hint and "history" in hint
    message, hint, line = by_path["condition.any[2].field"]
    assert line == 8 and hint is not None and "{orders:" in hint
    assert "flow anchor" in by_path["condition.any[3].history.since"][0]
    assert 'did you mean "order_placed"' in (by_path["condition.any[3].history.event"][1] or "")
    assert "condition.any[4].equals" in by_path
    assert len(found) >= 7


def test_collection_where_reads_its_own_root() -> None:
    segment = load_segment({"id": "big-carts", "name": "Big carts", "condition": {
        "carts": {"within": "7d", "where": {"field": "cart.value", "gte": 100}}, "exists": True}})
    assert segment.id == "big-carts"
    found = problems_of({"id": "x", "name": "X", "condition": {
        "orders": {"where": {"field": "profile.country", "eq": "ID"}}, "exists": True}})
    assert [path for path, *_ in found] == ["condition.orders.where.field"]


@pytest.mark.parametrize(("document", "path", "words"), [
    ("", "", "empty"),
    ("- a\n- b\n", "", "mapping"),
    ("id: x\nname: X\n", "", 'missing required key "condition"'),
    ("id: x\nname: X\ncondition: [\n", "", "YAML syntax error"),
    ('{"id": "x", "name": "X", "condition": NaN}', "", "JSON syntax error"),
    ("id: x\nname: X\ndescription: 3\ncondition: {field: profile.a, eq: 1}\n", "description", "must be text"),
])
def test_malformed_documents(document: str, path: str, words: str) -> None:
    found = problems_of(document)
    assert any(p == path and words in message for p, message, *_ in found), found


def test_documents_are_bounded() -> None:
    huge = "id: x\nname: X\ndescription: " + "a" * MAX_SEGMENT_BYTES + "\ncondition: {field: profile.a, eq: 1}\n"
    ((path, message, hint, _),) = problems_of(huge)
    assert path == "" and "larger than" in message and hint is not None and "in_segment" in hint
    deep = "id: x\nname: X\ncondition: " + "{not: " * 200 + "{field: profile.a, eq: 1}" + "}" * 200 + "\n"
    assert any("deep" in message or "nest" in message for _, message, *_ in problems_of(deep))
    assert "UTF-8" in problems_of(b"\xff\xfe")[0][1]


def test_referenced_segments_anywhere_in_the_condition() -> None:
    segment = load_segment({"id": "a", "name": "A", "condition": {"any": [
        {"in_segment": "b"}, {"not": {"all": [{"in_segment": "c"}, {"field": "profile.x", "eq": 1}]}}]}})
    assert referenced_segments(segment) == {"b", "c"}
    assert referenced_segments(load_segment(VIP)) == {"lapsed"}


def _seg(sid: str, *refs: str) -> SegmentDefinition:
    conditions: list[dict[str, Any]] = [{"in_segment": r} for r in refs] or [{"field": "profile.x", "eq": 1}]
    return load_segment({"id": sid, "name": sid, "condition": {"any": conditions}})


def test_references_must_exist_and_must_not_cycle() -> None:
    known = {s.id: s.to_document() for s in (_seg("b", "c"), _seg("c"), _seg("vip"))}
    check_references(_seg("a", "b", "vip"), known)  # fine
    with pytest.raises(SegmentValidationError) as caught:
        check_references(_seg("a", "b", "vpi"), known)
    (problem,) = caught.value.problems
    assert (problem.path, problem.message) == ("condition.any[1].in_segment", 'unknown segment "vpi"')
    assert problem.hint == 'did you mean "vip"?'
    cyclic = {**known, "c": _seg("c", "a").to_document()}
    with pytest.raises(SegmentValidationError) as caught:
        check_references(_seg("a", "b"), cyclic)
    (problem,) = caught.value.problems
    assert problem.message == "the segment refers to itself: a -> b -> c -> a"
    assert problem.path == "condition.any[0].in_segment"
    with pytest.raises(SegmentValidationError, match="a -> a"):
        check_references(_seg("a", "a"), {})


def test_find_cycle() -> None:
    assert find_cycle("a", {"a": ["b"], "b": ["c"], "c": []}) is None
    assert find_cycle("a", {"a": ["b", "x"], "b": ["x"], "x": ["b", "a"]}) == ["a", "b", "x", "a"]
    assert find_cycle("a", {"a": ["b"], "b": ["c"], "c": ["b"]}) is None  # a cycle not through a


def test_json_schema_accepts_valid_documents_and_refuses_segment_rule_breaks() -> None:
    schema = segment_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for document in (load_segment(VIP).to_document(), _seg("a", "b").to_document(),
                     {"id": "rfm-champions", "name": "Champions", "condition": {"all": [
                         {"rfm": {"recency": {"gte": 4}, "frequency": {"gte": 4}}},
                         {"top": {"metric": "monetary", "percent": 10}},
                         {"purchase_overdue": {"factor": 2, "default": "60d"}},
                         {"identity": "email"},
                         {"messages": {"channel": "email", "within": "30d"}, "exists": True},
                         {"history": {"event": "product_viewed", "within": "7d"}, "count": {"gte": 3}}]}}):
        load_segment(document)  # the loader agrees
        assert list(validator.iter_errors(document)) == [], document
    for bad in ({"id": "x", "name": "X", "condition": {"field": "event.total", "gt": 1}},
                {"id": "x", "name": "X", "condition": {"not": {"field": "order.total", "gt": 1}}},
                {"id": "x", "name": "X", "condition": {"history": {"event": "a", "since": "flow_start"},
                                                       "exists": True}},
                {"id": "x", "name": "X"},
                {"id": "x", "name": "X", "condition": {"field": "profile.a", "eq": 1}, "status": "live"}):
        assert list(validator.iter_errors(bad)) != [], bad


def test_csv_cells_never_start_a_formula() -> None:
    assert csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert csv_safe("@cmd") == "'@cmd"
    assert csv_safe("-x") == "'-x" and csv_safe("+x") == "'+x"
    assert csv_safe("+6281234") == "+6281234"
    assert csv_safe("ana@example.com") == "ana@example.com"
    assert csv_safe(None) == ""
