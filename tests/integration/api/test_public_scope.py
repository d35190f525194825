"""What a public (storefront) key may send: storefront events and self-description, nothing else.

A public key ships in every visitor's browser, so anyone can use it. It may send browsing, cart,
checkout and identify events about the visitor (by email or anonymous id); everything that changes
orders, stock, products, consent or addresses a profile by id needs a private key: 403 naming the
event type or field, with a hint.
"""

from __future__ import annotations

from typing import Any

import pytest
from api_harness import Api, checkout

from storeflow.api.storefront import PUBLIC_EVENT_TYPES, PUBLIC_PROFILE_FIELDS


def _post(api: Api, event: dict[str, Any]) -> Any:
    return api.client.post("/v1/events", json=event, headers=api.public_auth)


def _event_count(api: Api) -> int:
    with api.sf.store.read() as tx:
        return tx.count_events()


REFUSED_TYPES = [
    {"type": "inventory_changed", "properties": {"sku": "TEE-S", "quantity": 0}},
    {"type": "order_placed", "email": "ana@example.com",
     "properties": {"order_id": "o-1", "total": "10.00", "currency": "USD"}},
    {"type": "Order Completed", "email": "ana@example.com", "properties": {"order_id": "o-2", "revenue": "1"}},
    {"type": "product_updated", "properties": {"product_id": "p-1", "title": "Gone"}},
    {"type": "subscribed", "email": "ana@example.com", "properties": {"channel": "email"}},
    {"type": "unsubscribed", "email": "ana@example.com", "properties": {"channel": "email"}},
    {"type": "customer_updated", "email": "ana@example.com"},
    {"type": "message_opened", "email": "ana@example.com"},
    {"type": "my_custom_event", "email": "ana@example.com"},
]


@pytest.mark.parametrize("event", REFUSED_TYPES, ids=lambda e: str(e["type"]))
def test_public_key_cannot_send_non_storefront_events(sqlite_api: Api, event: dict[str, Any]) -> None:
    resp = _post(sqlite_api, event)
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["detail"].startswith("type: ")
    assert repr(event["type"]) in body["detail"]
    assert "use a private key (server side)" in body["detail"]
    assert body["result"]["status"] == "forbidden"
    assert body["result"]["error"] == body["detail"]
    assert _event_count(sqlite_api) == 0
    # The same event with a private key is accepted as before.
    assert sqlite_api.client.post("/v1/events", json=event, headers=sqlite_api.auth).status_code == 202


REFUSED_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("profile_id", {"profile_id": "prof_0123"}),
    ("customer_id", {"customer_id": "c-1"}),
    ("customer_id", {"userId": "c-1"}),
    ("phone", {"phone": "+14155550100"}),
    ("source", {"source": "shopify"}),
    ("profile.consent", {"profile": {"consent": {"email": "subscribed"}}}),
    ("profile.properties", {"profile": {"properties": {"vip": True}}}),
    ("profile.vip", {"profile": {"vip": True}}),
    ("profile.first_name", {"profile": {"first_name": "Ana"}}),
]


@pytest.mark.parametrize(("field", "extra"), REFUSED_FIELDS, ids=[f"{f}-{'-'.join(e)}" for f, e in REFUSED_FIELDS])
def test_public_key_cannot_send_privileged_fields(sqlite_api: Api, field: str, extra: dict[str, Any]) -> None:
    resp = _post(sqlite_api, {"type": "identified", "email": "ana@example.com", **extra})
    assert resp.status_code == 403, resp.text
    detail = resp.json()["detail"]
    assert detail.startswith(f"{field}: ")
    assert "use a private key (server side)" in detail
    assert _event_count(sqlite_api) == 0


def test_every_problem_of_an_event_is_named(sqlite_api: Api) -> None:
    resp = _post(sqlite_api, {"type": "order_paid", "profile_id": "prof_1",
                              "profile": {"consent": {"sms": "subscribed"}}})
    assert resp.status_code == 403
    detail = resp.json()["detail"]
    for name in ("type: 'order_paid'", "profile_id: ", "profile.consent: "):
        assert name in detail


def test_public_key_can_send_storefront_events(api: Api) -> None:
    events: list[dict[str, Any]] = [
        {"type": "product_viewed", "anonymous_id": "anon-1", "properties": {"product_id": "p-1"}},
        {"event": "Product Viewed", "anonymousId": "anon-1", "messageId": "pv-2", "properties": {"product_id": "p-2"}},
        {"type": "product_added_to_cart", "anonymous_id": "anon-1",
         "properties": {"cart_id": "cart-a", "product_id": "p-1", "quantity": 1, "price": "10.00"}},
        checkout("c1", anonymous_id="anon-1"),
        {"type": "identified", "email": "ana@example.com", "anonymous_id": "anon-1",
         "profile": {"locale": "pt_BR", "timezone": "America/Sao_Paulo"}},
    ]
    profiles = set()
    for event in events:
        resp = _post(api, event)
        assert resp.status_code == 202, resp.text
        assert resp.json()["status"] == "accepted"
        profiles.add(resp.json()["profile_id"])
    assert len(profiles) == 1  # one visitor, identified by their own email
    profile = api.client.get(f"/v1/profiles/{profiles.pop()}", headers=api.auth).json()
    assert profile["locale"] == "pt_BR"
    assert profile["timezone"] == "America/Sao_Paulo"
    timeline = profile["timeline"]
    sources = {e["source"] for e in timeline if e["type"] in {"product_viewed", "checkout_started", "identified"}}
    assert sources == {"storefront"}  # a public key's events are namespaced


def test_public_event_ids_cannot_shadow_server_events(api: Api) -> None:
    """A visitor who guesses a server event's id must not make the real event a duplicate."""
    seen = _post(api, {"type": "product_viewed", "id": "order-1001", "anonymous_id": "anon-9"})
    assert seen.status_code == 202
    real = api.client.post("/v1/events", headers=api.auth, json={
        "type": "order_placed", "id": "order-1001", "email": "ana@example.com",
        "properties": {"order_id": "1001", "total": "10.00", "currency": "USD"}})
    assert real.status_code == 202
    assert real.json()["status"] == "accepted"


def test_batch_stores_allowed_items_and_refuses_the_others_one_by_one(api: Api) -> None:
    events: list[Any] = [
        checkout("b1"),
        {"type": "inventory_changed", "properties": {"sku": "TEE-S", "quantity": 0}},
        {"type": "product_viewed", "anonymous_id": "anon-2", "properties": {"product_id": "p-1"}},
        {"type": "checkout_started", "profile_id": "prof_x", "properties": {"cart_id": "c-x"}},
        {"type": "order_placed", "email": "not-an-email"},  # invalid first: rejected, as before
        checkout("b1"),  # duplicate of item 0
        {"type": "identified", "email": "bo@example.com", "profile": {"consent": {"email": "subscribed"}}},
    ]
    resp = api.client.post("/v1/events/batch", json={"events": events}, headers=api.public_auth)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(events)))
    assert [r["status"] for r in results] == [
        "accepted", "forbidden", "accepted", "forbidden", "rejected", "duplicate", "forbidden"]
    assert (body["accepted"], body["duplicates"], body["rejected"], body["forbidden"]) == (2, 1, 1, 3)
    assert results[1]["error"].startswith("type: 'inventory_changed'")
    assert results[3]["error"].startswith("profile_id: ")
    assert results[6]["error"].startswith("profile.consent: ")
    assert all("use a private key (server side)" in results[i]["error"] for i in (1, 3, 6))
    assert results[0]["event_id"] and results[2]["event_id"]
    assert _event_count(api) == 2
    assert api.sf.views.find_profile("email", "bo@example.com") is None


def test_private_key_batch_is_unchanged(sqlite_api: Api) -> None:
    events = [{"type": "inventory_changed", "properties": {"sku": "TEE-S", "quantity": 0}},
              {"type": "identified", "profile_id": None, "email": "bo@example.com",
               "profile": {"consent": {"email": "subscribed"}, "first_name": "Bo"}}]
    body = sqlite_api.client.post("/v1/events/batch", json={"events": events}, headers=sqlite_api.auth).json()
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    assert body["forbidden"] == 0


def test_allowlist_is_the_documented_one() -> None:
    documented = {"product_viewed", "product_added_to_cart", "cart_updated", "checkout_started", "identified",
                  "Product Viewed", "Product Clicked", "Product Added", "Product Removed", "Cart Viewed",
                  "Checkout Started"}
    assert set(PUBLIC_EVENT_TYPES) == documented
    assert set(PUBLIC_PROFILE_FIELDS) == {"locale", "timezone"}
