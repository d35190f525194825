"""KeysPort on both backends."""

from __future__ import annotations

from datetime import timedelta

from tests.contract.helpers import T0

from storeflow.store import Store


def test_keys_insert_find_list_and_revoke(store: Store) -> None:
    with store.transaction() as tx:
        for i, kind in enumerate(("private", "public")):
            tx.insert_key({"id": f"k{i}", "name": kind, "kind": kind, "prefix": f"sf_{i}", "secret_hash": f"h{i}",
                           "created_at": T0 + timedelta(seconds=i)})
    with store.transaction() as tx:
        found = tx.key_by_hash("h1")
        assert found is not None and found["id"] == "k1"
        assert [k["id"] for k in tx.list_keys()] == ["k0", "k1"]
        assert tx.revoke_key("k1", T0) is True
        assert tx.revoke_key("k1", T0) is False
        assert tx.revoke_key("nope", T0) is False
        assert tx.key_by_hash("h1") is None
        assert [k["revoked_at"] for k in tx.list_keys()] == [None, T0]
