"""The records the engine builds (engine/records.py) carry exactly the declared fields, each value of its
declared type, on both backends; and a flow's conditions read them through that declaration."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from helpers import profile_of

from storeflow.app import Storeflow
from storeflow.engine.records import RecordLoader
from storeflow.flows.record_schema import RECORD_SCHEMA, FieldType, read_as


def assert_fits(value: Any, ftype: FieldType, where: str) -> None:
    """``value`` is None or of ``ftype``; a record has exactly its declared keys."""
    if value is None or ftype.kind == "any":
        return
    assert read_as(ftype, value) is not None, f"{where}: {value!r} is not {ftype.describe()}"
    if ftype.kind == "object":
        assert isinstance(value, Mapping)
        assert set(value) == set(ftype.fields), f"{where}: keys {sorted(value)} != {sorted(ftype.fields)}"
        for name, spec in ftype.fields.items():
            assert_fits(value[name], spec.type, f"{where}.{name}")
    elif ftype.kind in ("list", "map") and ftype.item is not None:
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        for key, item in items:
            assert_fits(item, ftype.item, f"{where}.{key}")


def test_built_records_match_the_declared_schema(sf: Storeflow) -> None:
    results = sf.ingest([
        {"type": "product_created", "id": "pc", "properties": {
            "product_id": "tee", "title": "Tee", "currency": "EUR", "tags": ["summer"],
            "variants": [{"variant_id": "tee-m", "sku": "TEE-M", "price": "19.90", "inventory_quantity": 8}]}},
        {"type": "checkout_started", "id": "co", "email": "ana@example.com", "properties": {
            "checkout_id": "c1", "currency": "EUR", "checkout_url": "https://shop.example/c1",
            "items": [{"product_id": "tee", "variant_id": "tee-m", "sku": "TEE-M", "quantity": 2, "price": "19.90"}]}},
        {"type": "order_placed", "id": "op", "email": "ana@example.com", "profile": {"first_name": "Ana"},
         "properties": {"order_id": "o1", "checkout_id": "c1", "product_id": "tee", "total": "39.80",
                        "currency": "EUR", "tags": ["web"],
                        "items": [{"product_id": "tee", "sku": "TEE-M", "quantity": 2, "price": "19.90"}]}},
    ])  # fmt: skip
    sf.drain()
    assert [r.status for r in results] == ["accepted"] * 3, [r.error for r in results]
    event_id, profile_id = results[2].event_id, results[2].profile_id
    assert event_id is not None and profile_id == profile_of(sf, "ana@example.com")["id"]
    with sf.store.transaction() as tx:
        event = tx.get_event(event_id)
        assert event is not None
        record = RecordLoader(tx).build(event=event, profile_id=profile_id)
    for root in ("event", "profile", "order", "cart", "product"):
        assert record[root] is not None, root
        assert_fits(record[root], RECORD_SCHEMA[root], root)
    assert record["order"]["total"] == read_as(RECORD_SCHEMA["order"].fields["total"].type, "39.80")
    assert record["cart"]["items"][0]["price"] == "19.90"  # text in the record, a decimal to conditions


def test_conditions_read_run_order_and_line_items_through_the_schema(sf: Storeflow) -> None:
    sf.flows.apply(sf.flows.validate("""\
id: typed
name: Typed
status: live
trigger:
  event: order_placed
  filter:
    all:
      - {field: order.total, gte: "39.80"}
      - {field: order.line_items.0.price, eq: 19.9}
      - {field: profile.first_order_at, exists: true}
      - {field: run.id, exists: false}  # no run yet while the trigger is checked
steps:
  - if:
      all:
        - {field: run.flow_id, eq: typed}
        - {field: run.started_at, within: 1m}
        - {field: order.total, eq: 39.8}
    then:
      - action: tag
        tags: [typed]
""", "typed.yaml"), status="live")  # fmt: skip
    sf.ingest([{"type": "order_placed", "id": "op", "email": "ana@example.com", "properties": {
        "order_id": "o1", "total": "39.80", "currency": "EUR",
        "items": [{"sku": "TEE-M", "quantity": 2, "price": "19.90"}]}}])  # fmt: skip
    sf.drain()
    assert "typed" in profile_of(sf, "ana@example.com")["tags"]


def test_the_worker_reads_an_orders_categories_and_product_tags(sf: Storeflow) -> None:
    # The worker's batch builds the order record with the products it bought, as ingest does.
    sf.flows.apply(sf.flows.validate("""\
id: shoes
name: Shoes buyers
status: live
trigger: {event: order_placed}
steps:
  - if:
      all:
        - {field: order.categories, contains: Shoes}
        - {field: order.product_tags, contains: summer}
    then: [{action: tag, tags: [shoes-buyer]}]
    else: [{action: tag, tags: [other-buyer]}]
""", "shoes.yaml"), status="live")  # fmt: skip
    sf.ingest([{"type": "product_created", "id": "pc", "properties": {
        "product_id": "sandal", "title": "Sandal", "product_type": "Shoes", "tags": ["summer"], "currency": "EUR",
        "variants": [{"variant_id": "sandal-40", "sku": "SAN-40", "price": "30.00", "inventory_quantity": 5}]}}])
    sf.ingest([{"type": "order_placed", "id": "op", "email": "ana@example.com", "properties": {
        "order_id": "o1", "total": "30.00", "currency": "EUR",
        "items": [{"product_id": "sandal", "sku": "SAN-40", "quantity": 1, "price": "30.00"}]}}])  # fmt: skip
    sf.drain()
    tags = profile_of(sf, "ana@example.com")["tags"]
    assert "shoes-buyer" in tags and "other-buyer" not in tags
