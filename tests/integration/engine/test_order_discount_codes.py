"""Ingest keeps an order's discount codes (``properties.discount_codes`` of its order events: codes, or
objects with a ``code``) on the order row, so ``order.discount_codes`` reads them in the Python
evaluator and in the SQL compiler alike, on both backends; too many or too long codes are refused
naming the field."""

from __future__ import annotations

from typing import Any

from helpers import profile_of

from storeflow.app import Storeflow
from storeflow.engine.records import RecordLoader, StoreProfileData
from storeflow.flows.condition_parser import parse_condition
from storeflow.flows.evaluate import EvalContext, evaluate

WELCOME = {"orders": {"where": {"field": "order.discount_codes", "contains": "WELCOME10"}}, "exists": True}
SPRING = {"orders": {"where": {"field": "order.discount_codes", "contains": "SPRING"}}, "count": {"gte": 1}}
NO_CODE = {"orders": {"where": {"not": {"field": "order.discount_codes.0", "exists": True}}}, "exists": True}


def order(email: str, order_id: str, **props: Any) -> dict[str, Any]:
    return {"type": "order_placed", "email": email,
            "properties": {"order_id": order_id, "total": 20, "currency": "USD", **props}}


def python_members(sf: Storeflow, condition: object, emails: list[str]) -> set[str]:
    parsed = parse_condition(condition)
    found = set()
    with sf.store.read() as tx:
        for email in emails:
            pid = profile_of(sf, email)["id"]
            record = RecordLoader(tx).build(event=None, profile_id=pid)
            ctx = EvalContext(record=record, now=sf.clock.now(), profile_id=pid, data=StoreProfileData(tx))
            if evaluate(parsed, ctx):
                found.add(email)
    return found


def sql_members(sf: Storeflow, condition: object) -> set[str]:
    with sf.store.read() as tx:
        ids = tx.segment_member_ids(parse_condition(condition), now=sf.clock.now(), store_tz=sf.settings.tz,
                                    stats=None)
    return {sf.views.profile(pid)["email"] for pid in ids}


def test_order_placed_keeps_its_discount_codes_for_both_evaluators(sf: Storeflow) -> None:
    results = sf.ingest([
        order("ana@example.com", "o-ana", discount_codes=["WELCOME10", {"code": "SPRING", "amount": "5.00"}]),
        order("bob@example.com", "o-bob", discount_codes=[{"code": "SPRING"}]),
        order("cy@example.com", "o-cy"),
        order("dee@example.com", "o-dee", discount_codes=[]),
    ])
    assert [r.status for r in results] == ["accepted"] * 4
    emails = ["ana@example.com", "bob@example.com", "cy@example.com", "dee@example.com"]
    with sf.store.read() as tx:
        row = tx.get_order("o-ana")
        assert row is not None
        assert row["properties"] == {"discount_codes": ["WELCOME10", "SPRING"]}
        assert StoreProfileData(tx).orders(str(row["profile_id"]))[0]["discount_codes"] == ["WELCOME10", "SPRING"]
    for condition, expected in ((WELCOME, {"ana@example.com"}), (SPRING, {"ana@example.com", "bob@example.com"})):
        assert python_members(sf, condition, emails) == expected, condition
        assert sql_members(sf, condition) == expected, condition


def test_an_order_without_a_code_is_found_by_its_first_code_missing(sf: Storeflow) -> None:
    """``order.discount_codes.0`` (docs/segments.md's "at least one code") in both evaluators."""
    sf.ingest([order("ana@example.com", "o-ana", discount_codes=["WELCOME10"]),
               order("cy@example.com", "o-cy"), order("dee@example.com", "o-dee", discount_codes=[])])
    expected = {"cy@example.com", "dee@example.com"}
    assert python_members(sf, NO_CODE, ["ana@example.com", *expected]) == expected
    assert sql_members(sf, NO_CODE) == expected


def test_later_order_events_keep_or_replace_the_codes(sf: Storeflow) -> None:
    sf.ingest([order("ana@example.com", "o1", discount_codes=["WELCOME10"])])
    sf.ingest([
        {"type": "order_paid", "email": "ana@example.com", "properties": {"order_id": "o1"}},
        {"type": "shipment_updated", "email": "ana@example.com",
         "properties": {"order_id": "o1", "status": "in_transit", "carrier": "JNE"}},
    ])
    with sf.store.read() as tx:
        row = tx.get_order("o1")
        assert row is not None
        assert row["properties"] == {"discount_codes": ["WELCOME10"],
                                     "tracking": {"status": "in_transit", "carrier": "JNE"}}
    sf.ingest([{"type": "order_updated", "email": "ana@example.com",
                "properties": {"order_id": "o1", "discount_codes": ["VIP"]}}])
    assert python_members(sf, WELCOME, ["ana@example.com"]) == set() == sql_members(sf, WELCOME)
    with sf.store.read() as tx:
        row = tx.get_order("o1")
        assert row is not None and row["properties"]["discount_codes"] == ["VIP"]
        assert row["properties"]["tracking"]["carrier"] == "JNE"


def test_too_many_or_too_long_codes_are_refused_naming_the_field(sf: Storeflow) -> None:
    results = sf.ingest([
        order("a@example.com", "o1", discount_codes=[f"C{i}" for i in range(51)]),
        order("a@example.com", "o2", discount_codes=["OK", "X" * 101]),
        order("a@example.com", "o3", discount_codes="WELCOME10"),
        order("a@example.com", "o4", discount_codes=[{"amount": 5}]),
        order("a@example.com", "o5", discount_codes=[f"C{i}" for i in range(50)] + []),
        order("a@example.com", "o6", discount_codes=["X" * 100, 7]),
    ])
    assert [r.status for r in results] == ["rejected"] * 4 + ["accepted"] * 2
    errors = [r.error or "" for r in results[:4]]
    assert errors[0].startswith("properties.discount_codes: 51 codes; an order keeps at most 50")
    assert errors[1].startswith("properties.discount_codes[1]: 101 characters; a code has at most 100")
    assert errors[2].startswith("properties.discount_codes: use a list")
    assert errors[3].startswith("properties.discount_codes[0]:") and "code" in errors[3]
    with sf.store.read() as tx:
        assert tx.get_order("o1") is None
        row = tx.get_order("o6")
        assert row is not None and row["properties"]["discount_codes"] == ["X" * 100, "7"]
