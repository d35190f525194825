"""BatchPort on both backends: ingest's reads and writes of many rows at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.contract.helpers import T0, cart_row, event_row, flow_row, order_row, profile_row, run_row

from storeflow.errors import LostRace
from storeflow.store import Store


def test_batch_writes_then_batch_reads(store: Store) -> None:
    later = T0 + timedelta(hours=1)
    with store.transaction() as tx:
        tx.insert_flow(flow_row("f"))
        tx.insert_profiles([profile_row("p1"), profile_row("p2")])
        tx.insert_identities([{"kind": "email", "value": "a@example.com", "profile_id": "p1", "created_at": T0},
                              {"kind": "phone", "value": "+4915100000", "profile_id": "p2", "created_at": T0}])
        tx.insert_events([event_row("e1", profile_id="p1"), event_row("e2", profile_id="p2")])
        tx.insert_carts([cart_row("c1", profile_id="p1"), cart_row("c2", profile_id="p2", converted_at=T0)])
        tx.insert_orders([order_row("o1", profile_id="p1"), order_row("o2", profile_id="p2")])
        tx.touch_active_many([{"id": "p1", "at": later}, {"id": "p2", "at": T0}])
        tx.create_runs([run_row("r1", profile_id="p1", active_key="f:p1", status="waiting")])
        tx.add_wait("r1", "p1", "order_paid", T0)
        tx.record_entries([{"flow_id": "f", "profile_id": "p1", "at": T0},
                           {"flow_id": "f", "profile_id": "p1", "at": later}])
        tx.upsert_product("prod", T0, T0, title="Mug")
        tx.upsert_variant("v", "prod", T0, sku="MUG")
        tx.set_stock("v", "main", T0, T0, quantity=7)
    with store.read() as tx:
        assert tx.count_events() == 2
        assert tx.identity_owners([("email", "a@example.com"), ("phone", "+4915100000"), ("email", "x@y.z")]) \
            == {("email", "a@example.com"): "p1", ("phone", "+4915100000"): "p2"}
        rows = tx.rows_by_id("profile", ["p1", "p2", "nope"])  # the batch reads of ingest and the worker
        assert sorted(rows) == ["p1", "p2"] and rows["p1"]["last_active_at"] == later
        assert tx.identities_of_profiles(["p1", "p2"]) == {"p1": [("email", "a@example.com")],
                                                            "p2": [("phone", "+4915100000")]}
        assert sorted(c["id"] for c in tx.carts_for(["c2"], ["p1", "p2"])) == ["c1", "c2"]  # c2 by id only
        assert sorted(o["id"] for o in tx.orders_for(["o2"], ["p1"])) == ["o1", "o2"]
        product, variants, stock = tx.products_with_stock(["prod", "nope"])["prod"]
        assert (product["title"], [v["id"] for v in variants], stock) == ("Mug", ["v"], 7)
        entry = tx.entries_of_profiles(["p1", "p2"], ["f"])
        assert list(entry) == [("f", "p1")] and entry[("f", "p1")]["entries"] == 2
        assert tx.active_keys_of_profiles(["p1", "p2"]) == {"f:p1"}
        assert tx.waiting_profiles(["p1", "p2"]) == {("p1", "order_paid")}


def test_batch_inserts_that_lost_a_race_raise_lost_race(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_events([event_row("k")])
    with pytest.raises(LostRace), store.transaction() as tx:
        tx.insert_events([event_row("k", id="evt_other")])
    with store.read() as tx:
        assert tx.count_events() == 1
