"""ProfilesPort on both backends."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.helpers import T0, order_row

from storeflow.store import Store, open_store


def test_profiles_identities_updates_and_pages(store: Store) -> None:
    later = T0 + timedelta(hours=1)
    with store.transaction() as tx:
        tx.create_profile("p1", T0, email="a@example.com", properties={"tier": "gold"})
        tx.create_profile("p2", T0 + timedelta(seconds=1))
        tx.add_identities("p1", [("email", "a@example.com"), ("anonymous", "anon-1")], T0)
        tx.add_identities("p2", [("email", "a@example.com")], T0)  # owned already: stays p1's
        tx.update_profile("p1", later, locale="de-DE")
        tx.merge_properties("p1", {"visits": 2}, later)
        tx.touch_active("p1", later)
        tx.touch_active("p1", T0)  # never moves back
    with store.read() as tx:
        assert tx.find_profiles_by_identities([("email", "a@example.com"), ("email", "none@example.com")]) \
            == {("email", "a@example.com"): "p1"}
        assert sorted(tx.identities_of("p1")) == [("anonymous", "anon-1"), ("email", "a@example.com")]
        assert tx.identities_of("p2") == []
        p1 = tx.get_profile("p1")
        assert p1 is not None
        assert (p1["locale"], p1["properties"], p1["updated_at"], p1["last_active_at"]) \
            == ("de-DE", {"tier": "gold", "visits": 2}, later, later)
        assert tx.get_profile("nobody") is None
        assert tx.count_profiles() == 2
        assert [p["id"] for p in tx.list_profiles(limit=1)] == ["p2"]  # newest first
        assert [p["id"] for p in tx.list_profiles(limit=5, offset=1)] == ["p1"]
        assert [p["id"] for p in tx.profiles_page("", 10)] == ["p1", "p2"]
        assert [p["id"] for p in tx.profiles_page("p1", 10)] == ["p2"]


def test_merged_profiles_redirect_and_leave_the_listings(store: Store) -> None:
    with store.transaction() as tx:
        tx.create_profile("keep", T0)
        tx.create_profile("gone", T0)
        tx.add_identities("gone", [("email", "g@example.com")], T0)
        tx.merge_profiles("keep", "gone", T0)
    with store.read() as tx:
        assert tx.resolve_profile_id("gone") == "keep"
        assert tx.resolve_profile_id("nobody") is None
        assert tx.find_profiles_by_identities([("email", "g@example.com")]) == {("email", "g@example.com"): "keep"}
        assert tx.count_profiles() == 1
        assert [p["id"] for p in tx.list_profiles()] == ["keep"]


def test_order_aggregates_come_from_the_orders_table(store: Store) -> None:
    later = T0 + timedelta(days=1)
    with store.transaction() as tx:
        tx.create_profile("p", T0)
        tx.insert_order(order_row("o1", total_minor=1050))
        tx.insert_order(order_row("o2", total_minor=2000, refunded_minor=500, placed_at=later))
        tx.insert_order(order_row("o3", total_minor=9999, status="cancelled"))
        assert tx.order_aggregates("p") == {"orders_count": 2, "total_spent": {"EUR": "25.50"},
                                            "first_order_at": T0, "last_order_at": later}
        tx.recompute_order_aggregates("p", later)
        tx.create_profile("none", T0)
        tx.create_profile("two", T0)
        tx.insert_order(order_row("o4", "two", currency="USD", total_minor=700, placed_at=later))
        tx.insert_order(order_row("o5", "two", total_minor=300, placed_at=T0 + timedelta(hours=1)))
        tx.insert_order(order_row("o6", "two", currency="USD", total_minor=100, placed_at=T0))
        assert tx.order_aggregates_of(["p", "none", "p", "two"]) == {
            "p": tx.order_aggregates("p"),
            "none": {"orders_count": 0, "total_spent": {}, "first_order_at": None, "last_order_at": None},
            "two": {"orders_count": 3, "total_spent": {"USD": "8.00", "EUR": "3.00"}, "first_order_at": T0,
                    "last_order_at": later}}
    with store.read() as tx:
        p = tx.get_profile("p")
    assert p is not None
    assert (p["orders_count"], p["total_spent"], p["last_order_at"]) == (2, {"EUR": "25.50"}, later)


def test_every_read_follows_a_chain_of_merges_to_the_survivor(db_url: str) -> None:
    """p1 was merged into p2, then p2 into p3: the single read, the batch read and the ingest
    cache (write-behind) all answer p1 and p2 with p3, and a missing id with nothing."""
    store = open_store(db_url)
    store.migrate()
    with store.transaction() as tx:
        for pid in ("p1", "p2", "p3"):
            tx.create_profile(pid, T0, properties={"n": pid})
        tx.merge_profiles("p2", "p1", T0)
        tx.merge_profiles("p3", "p2", T0)
    with store.transaction() as tx:
        assert [tx.resolve_profile_id(p) for p in ("p1", "p2", "p3", "nobody")] == ["p3", "p3", "p3", None]
        assert [(tx.get_profile(p) or {}).get("id") for p in ("p1", "p2", "nobody")] == ["p3", "p3", None]
        found = tx.profiles_by_id(["p1", "p2", "p3", "nobody"])
        assert {asked: row["id"] for asked, row in found.items()} == {"p1": "p3", "p2": "p3", "p3": "p3"}
        cached = tx.write_behind()
        assert [cached.resolve_profile_id(p) for p in ("p1", "p2", "p3", "nobody")] == ["p3", "p3", "p3", None]
        assert [(cached.get_profile(p) or {}).get("id") for p in ("p1", "nobody")] == ["p3", None]
    store.close()
