"""StoreProfileData (engine/records.py) on both backends: the ProfileData the Python evaluator reads,
with the derived order fields (categories and product tags from the products, discount codes), the
message records, identity kinds and memberships; and segment conditions evaluated over it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.contract.helpers import T0, cart_row, message_row, order_row

from storeflow.engine.records import StoreProfileData
from storeflow.flows.condition_parser import parse_condition
from storeflow.flows.evaluate import EvalContext, ProfileData, evaluate
from storeflow.flows.flips import next_flip
from storeflow.store import Store

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _fill(store: Store) -> None:
    with store.transaction() as tx:
        tx.create_profile("p", T0)
        tx.add_identities("p", [("email", "ana@example.com"), ("customer_id", "c-1")], T0)
        tx.upsert_product("tee", T0, T0, title="Tee", product_type="shirts", tags=["summer", "cotton"])
        tx.upsert_product("cap", T0, T0, title="Cap", product_type="hats", tags=["summer"])
        tx.insert_order(order_row("o1", "p", placed_at=T0, total_minor=15000000, currency="IDR",
                                  line_items=[{"product_id": "tee", "variant_id": "tee-m", "sku": "TEE-M",
                                               "quantity": 1, "price": "1500"},
                                              {"product_id": "gone", "sku": "X", "quantity": 1}],
                                  properties={"discount_codes": [{"code": "SALE10"}, {"amount": 5}]}))
        tx.insert_order(order_row("o2", "p", placed_at=T0 + DAY, total_minor=5000000, currency="IDR",
                                  line_items=[{"product_id": "cap", "sku": "CAP", "quantity": 2}],
                                  properties={"discount_codes": ["WELCOME", "WELCOME"]}))
        tx.insert_cart(cart_row("c1", "p", last_activity_at=T0 + 2 * DAY, value_minor=200000000, currency="IDR"))
        tx.enqueue(message_row("m1", profile_id="p", channel="email", kind="marketing", created_at=T0,
                               opened_at=T0 + HOUR, campaign_id="spring", variant="a", address="ana@example.com"))
        tx.enqueue(message_row("m2", profile_id="p", channel="sms", kind="transactional", created_at=T0 + DAY))
        tx.enter_segment([{"segment_id": "vip", "profile_id": "p", "at": T0, "by": "event"}])


def test_store_profile_data_answers_the_records(store: Store) -> None:
    _fill(store)
    with store.read() as tx:
        data = StoreProfileData(tx)
        assert isinstance(data, ProfileData)
        first, second = data.orders("p")
        assert (first["product_ids"], first["variant_ids"], first["skus"]) == (["tee", "gone"], ["tee-m"],
                                                                               ["TEE-M", "X"])  # fmt: skip
        assert (first["categories"], first["product_tags"], first["discount_codes"]) == (
            ["shirts"], ["summer", "cotton"], ["SALE10"])  # fmt: skip
        assert (second["categories"], second["product_tags"], second["discount_codes"]) == (
            ["hats"], ["summer"], ["WELCOME"])  # fmt: skip
        assert first["total"] == Decimal(150000)
        assert [c["id"] for c in data.carts("p")] == ["c1"]
        email = data.messages("p", "email")
        assert [m["id"] for m in email] == ["m1"]
        assert {k: email[0][k] for k in ("channel", "kind", "campaign_id", "variant", "address", "opened_at")} == {
            "channel": "email", "kind": "marketing", "campaign_id": "spring", "variant": "a",
            "address": "ana@example.com", "opened_at": T0 + HOUR}  # fmt: skip
        assert [m["id"] for m in data.messages("p", None)] == ["m1", "m2"]
        assert data.identity_kinds("p") == frozenset({"email", "customer_id"})
        assert data.segments_of("p") == frozenset({"vip"})
        assert data.orders("nobody") == [] and data.identity_kinds("nobody") == frozenset()


def test_segment_conditions_over_the_store(store: Store) -> None:
    _fill(store)
    now = T0 + 3 * DAY
    with store.read() as tx:
        profile = {"first_order_at": T0, "last_order_at": T0 + DAY, "orders_count": 2}
        ctx = EvalContext(record={"profile": profile}, now=now, profile_id="p", data=StoreProfileData(tx))

        def holds(doc: object) -> bool:
            return evaluate(parse_condition(doc), ctx)

        assert holds({"orders": {"where": {"field": "order.categories", "contains": "shirts"}}, "exists": True})
        assert holds({"orders": {"where": {"field": "order.product_tags", "contains": "summer"}}, "count": {"eq": 2}})
        assert holds({"orders": {"where": {"field": "order.discount_codes", "in": ["SALE10", "X"]}},
                      "sum": {"of": "total", "eq": 150000}})  # fmt: skip
        assert holds({"orders": {"since": "first_order"}, "avg": {"of": "total", "eq": 100000}})
        assert holds({"all": [{"carts": {"within": "7d", "where": {"field": "cart.converted", "eq": False}},
                               "max": {"of": "value", "gt": 1000000}},
                              {"messages": {"channel": "email", "within": "7d",
                                            "where": {"field": "message.opened_at", "exists": True}},
                               "exists": True}]})  # fmt: skip
        assert holds({"all": [{"in_segment": "vip"}, {"identity": "customer_id"}, {"not": {"identity": "phone"}}]})
        assert not holds({"messages": {"channel": "push"}, "exists": True})
        flip = next_flip(parse_condition({"messages": {"within": "7d"}, "exists": True}), ctx, horizon=30 * DAY)
        assert flip == T0 + DAY + 7 * DAY + timedelta(microseconds=1)  # m2 leaves the window
