"""MessagesPort on both backends: messages as the API reads them, suppressions, meta values."""

from __future__ import annotations

from tests.contract.helpers import T0, message_row

from storeflow.store import Store


def test_messages_by_provider_id_and_listed(store: Store) -> None:
    with store.transaction() as tx:
        tx.enqueue(message_row("m1", profile_id="p", flow_id="f"))
        tx.enqueue(message_row("m2", profile_id="q", flow_id="f"))
        tx.update_message("m1", provider_id="<id@x>", status="sent")
    with store.read() as tx:
        found = tx.message_by_provider_id("<id@x>")
        assert found is not None and found["id"] == "m1"
        assert tx.message_by_provider_id("<none@x>") is None
        assert sorted(m["id"] for m in tx.list_messages(flow_id="f")) == ["m1", "m2"]
        assert [m["id"] for m in tx.list_messages(profile_id="q")] == ["m2"]
        assert [m["id"] for m in tx.list_messages(status="sent")] == ["m1"]


def test_suppressions_and_meta_values(store: Store) -> None:
    with store.transaction() as tx:
        tx.suppress("email", "Bounce@Example.com", "bounced", T0, message_id="m1")
        tx.suppress("email", "bounce@example.com", "complained", T0)  # already suppressed: kept as it was
        assert tx.suppression("email", "BOUNCE@example.com") == "bounced"
        assert tx.suppression("sms", "bounce@example.com") is None
        assert tx.suppressions_of([("email", "bounce@EXAMPLE.com"), ("email", "ok@example.com")]) \
            == {("email", "bounce@example.com"): "bounced"}
        assert tx.meta_value("secret") is None
        assert tx.meta_value("secret", lambda: "s1") == "s1"
        assert tx.meta_value("secret", lambda: "s2") == "s1"  # created once
