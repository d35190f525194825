"""Segment Ecommerce Events Spec v2: the spec's own examples are accepted and stored as sent.

The examples live in tests/fixtures/segment_spec/ (see its README). Stored properties keep every
value; the only change is the documented renaming of three Segment names to storeflow's
(products -> items, name -> title, url -> product_url). ``revenue`` is not renamed: the spec's
Order Completed carries both ``revenue`` and ``subtotal``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from storeflow.app import Storeflow

FIXTURES = Path(__file__).parents[2] / "fixtures" / "segment_spec"
EXAMPLES = sorted(FIXTURES.glob("*.json"))
_RENAMED = {"products": "items", "name": "title", "url": "product_url"}


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def renamed(value: Any) -> Any:
    if isinstance(value, dict):
        return {_RENAMED.get(k, k): renamed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v) for v in value]
    return value


def send(sf: Storeflow, data: dict[str, Any], message_id: str) -> tuple[str, dict[str, Any]]:
    """Ingest one Segment track call; the accepted event's profile id and stored properties."""
    result = sf.ingest([{**data, "anonymousId": "anon-7", "messageId": message_id}], source="segment")[0]
    assert result.status == "accepted", result.error
    assert result.profile_id is not None
    with sf.store.read() as tx:
        stored = [e for e in tx.timeline(result.profile_id, 100) if e["id"] == result.event_id]
    return result.profile_id, stored[0]["properties"]


def test_every_spec_example_is_a_fixture() -> None:
    assert {p.stem for p in EXAMPLES} >= {"product_viewed", "product_clicked", "product_added", "product_removed",
                                          "cart_viewed", "checkout_started", "order_completed", "order_updated",
                                          "order_cancelled", "order_refunded"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_each_spec_example_is_accepted_and_stored_with_every_value(sf: Storeflow, path: Path) -> None:
    data = json.loads(path.read_text())
    _, props = send(sf, data, f"m-{path.stem}")
    if "currency" not in data["properties"]:  # an event with amounts records the store's currency
        assert props.pop("currency", sf.settings.currency) == sf.settings.currency
    assert props == renamed(data["properties"])


def test_order_completed_keeps_subtotal_revenue_total_tax_shipping_discount_and_products(sf: Storeflow) -> None:
    data = example("order_completed")
    profile_id, props = send(sf, data, "m-1")
    assert (props["subtotal"], props["revenue"], props["total"]) == (22.5, 25.0, 27.5)
    assert (props["tax"], props["shipping"], props["discount"]) == (2, 3, 2.5)
    assert [(i["product_id"], i["title"], i["price"], i["quantity"]) for i in props["items"]] == [
        ("507f1f77bcf86cd799439011", "Monopoly: 3rd Edition", 19, 1),
        ("505bd76785ebb509fc183733", "Uno Card Game", 3, 2),
    ]
    order = sf.views.profile(profile_id)["orders"][0]
    assert (order["id"], order["total_minor"], order["currency"]) == ("50314b8e9bcf000000000000", 2750, "USD")


def test_checkout_started_with_only_an_order_id_is_a_checkout_the_order_then_converts(sf: Storeflow) -> None:
    _, props = send(sf, example("checkout_started"), "m-1")
    assert (props["value"], props["revenue"], props["order_id"]) == (30, 25.0, "50314b8e9bcf000000000000")
    with sf.store.read() as tx:
        cart = tx.get_cart("order:50314b8e9bcf000000000000")
    assert cart is not None
    assert (cart["kind"], cart["value_minor"], cart["converted_at"]) == ("checkout", 3000, None)
    assert [i["quantity"] for i in cart["items"]] == [1, 2]

    send(sf, example("order_completed"), "m-2")
    with sf.store.read() as tx:
        cart = tx.get_cart("order:50314b8e9bcf000000000000")
    assert cart is not None
    assert cart["order_id"] == "50314b8e9bcf000000000000"
    assert cart["converted_at"] is not None
