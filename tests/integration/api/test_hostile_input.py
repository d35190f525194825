"""Hostile and broken input on the HTTP API: refused one item at a time with its field path, never
a 500, never a whole batch lost, never stored in a form that breaks later reads.

Each case was a 500 (or an accepted item that broke its profile) before the bounds of
storeflow.model.bounds and the strict JSON parsing of storeflow.api.encoding.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from api_harness import Api, ApiFactory

DEEP: Any = 1
for _ in range(40):
    DEEP = [DEEP]
VALID = {"type": "product_viewed", "anonymous_id": "visitor-ok", "properties": {"product_id": "p1"}}


def order(**props: Any) -> dict[str, Any]:
    return {"type": "order_placed", "email": "ana@example.com",
            "properties": {"order_id": "o-bad", "currency": "USD", **props}}


def stock(**props: Any) -> dict[str, Any]:
    return {"type": "inventory_changed", "properties": {"sku": "TEE", **props}}


HOSTILE: dict[str, tuple[dict[str, Any], str]] = {
    "quantity 1e1000000": (stock(quantity="1e1000000"), "properties.quantity"),
    "quantity Infinity": (stock(quantity="Infinity"), "properties.quantity"),
    "quantity beyond 64 bits": (stock(quantity=18446744073709551616), "properties.quantity"),
    "stock beyond its column": (stock(quantity=2**31), "properties.quantity"),
    "total 1e20": (order(total="1e20"), "properties.total"),
    "total beyond 64 bits": (order(total=18446744073709551616), "properties.total"),
    "negative total": (order(total="-5.00"), "properties.total"),
    "negative line quantity": (order(items=[{"sku": "a", "quantity": -2, "price": "1.00"}]),
                               "properties.items[0].quantity"),
    "year 0190": ({**VALID, "anonymous_id": "y", "occurred_at": "0190-07-27T20:28:10Z"}, "occurred_at"),
    "year 1 overflowing": ({**VALID, "occurred_at": "0001-01-01T00:30:00+01:00"}, "occurred_at"),
    "year 9999 overflowing": ({**VALID, "occurred_at": "9999-12-31T23:59:59-01:00"}, "occurred_at"),
    "dated 2099": (stock(quantity=5) | {"occurred_at": "2099-01-01T00:00:00Z"}, "occurred_at"),
    "property beyond 64 bits": ({**VALID, "properties": {"x": {"y": [18446744073709551616]}}}, "properties.x.y[0]"),
    "NUL in a property": ({**VALID, "properties": {"note": "a\x00b"}}, "properties.note"),
    "lone surrogate in a property": ({**VALID, "properties": {"note": "\ud800"}}, "properties.note"),
    "NUL in an id": ({**VALID, "anonymous_id": "a\x00b"}, "anonymous_id"),
    "300-character timezone": ({**VALID, "profile": {"timezone": "A" * 300}}, "profile.timezone"),
    "email with two dots": ({**VALID, "email": "a@example..com"}, "email"),
    "email with NUL": ({**VALID, "email": "a\x00@example.com"}, "email"),
    "properties 40 deep": ({**VALID, "properties": {"a": DEEP}}, "properties.a"),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_a_hostile_item_is_refused_alone_and_the_valid_ones_are_stored(api: Api, case: str) -> None:
    item, path = HOSTILE[case]
    body = json.dumps({"events": [VALID, item]})  # ASCII, with \uXXXX escapes for what is not
    resp = api.client.post("/v1/events/batch", content=body,
                           headers={**api.auth, "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    first, second = resp.json()["results"]
    assert first["status"] == "accepted"
    assert second["status"] == "rejected"
    assert second["error"].startswith(path), second["error"]
    assert api.sf.views.find_profile("anonymous", "visitor-ok") == first["profile_id"]


def test_an_ancient_date_does_not_break_the_profile_it_names(api: Api) -> None:
    item = {**VALID, "anonymous_id": "old", "occurred_at": "0190-07-27T20:28:10Z"}
    assert api.client.post("/v1/events", json=item, headers=api.public_auth).status_code == 422
    later = api.client.post("/v1/events", json={**VALID, "anonymous_id": "old"}, headers=api.public_auth)
    assert later.status_code == 202, later.text
    shown = api.client.get("/v1/profiles", params={"anonymous_id": "old"}, headers=api.auth)
    assert shown.status_code == 200, shown.text
    assert len(shown.json()["timeline"]) == 1


def test_a_stock_level_dated_in_the_future_does_not_pin_the_stock(api: Api) -> None:
    future = stock(quantity=0) | {"occurred_at": "2099-01-01T00:00:00Z"}
    refused = api.client.post("/v1/events", json=future, headers=api.auth)
    assert refused.status_code == 422
    assert "beyond the 300 s of clock skew allowed" in refused.json()["detail"]
    now = api.sf.clock.now()
    for qty, at in ((3, now - timedelta(minutes=1)), (7, now + timedelta(seconds=200))):
        ok = api.client.post("/v1/events", json=stock(quantity=qty) | {"occurred_at": at.isoformat()},
                             headers=api.auth)
        assert ok.status_code == 202, ok.text


def test_the_clock_skew_allowance_is_a_setting(make_sqlite_api: ApiFactory) -> None:
    api = make_sqlite_api(max_future_skew_s=3600)
    soon = api.sf.clock.now() + timedelta(minutes=50)
    resp = api.client.post("/v1/events", json={**VALID, "occurred_at": soon.isoformat()}, headers=api.auth)
    assert resp.status_code == 202, resp.text
    later = soon + timedelta(minutes=20)
    resp = api.client.post("/v1/events", json={**VALID, "occurred_at": later.isoformat()}, headers=api.auth)
    assert resp.status_code == 422
    assert "3600 s of clock skew" in resp.json()["detail"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_number_literals_are_422(sqlite_api: Api, literal: bytes) -> None:
    body = b'{"events": [{"type": "product_viewed", "anonymous_id": "n", "properties": {"x": ' + literal + b"}}]}"
    resp = sqlite_api.client.post("/v1/events/batch", content=body,
                                  headers={**sqlite_api.public_auth, "Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert "is not a JSON number" in resp.json()["detail"][0]["ctx"]["error"]


def test_a_number_too_large_for_a_float_is_refused_with_its_path(sqlite_api: Api) -> None:
    body = b'{"events": [{"type": "product_viewed", "anonymous_id": "n", "properties": {"x": 1e400}}]}'
    resp = sqlite_api.client.post("/v1/events/batch", content=body,
                                  headers={**sqlite_api.public_auth, "Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["results"][0]["error"].startswith("properties.x: inf is not a number")


@pytest.mark.parametrize("body", [
    rb'{"type": "product_viewed", "anonymous_id": "\ud800"}',
    rb'{"type": "product_viewed", "anonymous_id": "v", "properties": {"k": ["ok", "\udc00x"]}}',
    rb'{"type": "product_viewed", "anonymous_id": "v", "bogus\ud800": 1}',
    rb'{"type": "product_viewed", "anonymous_id": "a\u0000b"}',
])
def test_lone_surrogates_and_nul_anywhere_in_a_body_are_422(api: Api, body: bytes) -> None:
    resp = api.client.post("/v1/events", content=body,
                           headers={**api.public_auth, "Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["type"] == "json_invalid"


def test_surrogate_pairs_are_ordinary_text(api: Api) -> None:
    body = rb'{"type": "product_viewed", "anonymous_id": "smile-\ud83d\ude00", "properties": {"t": "\u00e3"}}'
    resp = api.client.post("/v1/events", content=body, headers={**api.public_auth, "Content-Type": "application/json"})
    assert resp.status_code == 202, resp.text
    assert api.sf.views.find_profile("anonymous", "smile-\U0001f600") == resp.json()["profile_id"]


def test_a_422_echoing_input_that_cannot_be_written_is_still_a_422(sqlite_api: Api) -> None:
    body = b'{"type": 1e400, "anonymous_id": "v", "id": -1e999}'
    resp = sqlite_api.client.post("/v1/events", content=body,
                                  headers={**sqlite_api.public_auth, "Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert {str(e["input"]) for e in resp.json()["detail"]} == {"inf", "-inf"}


@pytest.mark.parametrize("url", ["/v1/runs?offset=18446744073709551616", "/v1/runs?flow_id=a%00b",
                                 "/v1/runs/run%00x", "/v1/messages?status=%00", "/v1/profiles/p%00"])
def test_out_of_range_and_nul_query_values_are_422(api: Api, url: str) -> None:
    resp = api.client.get(url, headers=api.auth)
    assert resp.status_code == 422, resp.text


def test_an_added_item_the_cart_value_cannot_hold_does_not_fail_the_batch(api: Api) -> None:
    cart = {"type": "cart_updated", "anonymous_id": "shopper", "properties": {
        "cart_id": "c-1", "currency": "USD",
        "items": [{"product_id": "TEE", "sku": "TEE", "quantity": 1, "price": "10.00"}]}}
    assert api.client.post("/v1/events", json=cart, headers=api.public_auth).status_code == 202
    odd = [{"type": "product_added_to_cart", "anonymous_id": "shopper", "id": f"add-{i}",
            "properties": {"cart_id": "c-1", "product_id": sku, "sku": sku, "quantity": qty, "price": price}}
           for i, (sku, qty, price) in enumerate([("PIN", 1, "19.999"), ("GOLD", 10**9, "99999999999999")])]
    resp = api.client.post("/v1/events/batch", json={"events": [VALID, *odd]}, headers=api.public_auth)
    assert resp.status_code == 200, resp.text
    assert [r["status"] for r in resp.json()["results"]] == ["accepted", "accepted", "accepted"]
    with api.sf.store.read() as tx:
        stored = tx.get_cart("c-1")
    assert stored is not None
    assert [i["sku"] for i in stored["items"]] == ["TEE", "PIN", "GOLD"]
    assert stored["value_minor"] is None  # not a number storeflow can hold: unknown, not wrong
