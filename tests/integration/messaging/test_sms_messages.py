"""SMS through the engine to a local Twilio-compatible server; STOP and START over the inbound hook."""

from __future__ import annotations

from messaging_harness import TWILIO_TOKEN, Shop, apply

from storeflow.channels.sms_inbound import twilio_signature

SMS_FLOW = """
id: sms-promo
name: SMS promo
reentry: always
trigger: {event: customer_updated}
steps:
  - action: sms
    text: "Olá {{ profile.first_name }}! Frete grátis hoje 🚚"
"""


def _update(phone: str, key: str, consent: str | None = None) -> dict[str, object]:
    profile: dict[str, object] = {"first_name": "Ana"}
    if consent:
        profile["consent"] = {"sms": consent}
    return {"type": "customer_updated", "phone": phone, "id": key, "profile": profile}


def _inbound(shop: Shop, phone: str, body: str) -> int:
    params = {"From": phone, "Body": body, "To": "+14155550100"}
    url = "http://testserver/hooks/sms/inbound"
    signature = twilio_signature(TWILIO_TOKEN, url, params)
    return shop.client.post("/hooks/sms/inbound", data=params,
                            headers={"X-Twilio-Signature": signature}).status_code


def test_sms_needs_consent_and_stop_stops_it(shop: Shop) -> None:
    apply(shop.sf, SMS_FLOW)
    shop.sf.ingest([_update("(11) 91234-5678", "u0")])  # never asked: no marketing SMS
    shop.sf.ingest([_update("+55 11 98765-4321", "u1", consent="subscribed")])
    shop.sf.drain()
    sent = [r for r in shop.peer.requests if r["path"].endswith("/Messages.json")]
    assert len(sent) == 1
    assert sent[0]["form"]["To"] == "+5511987654321"
    assert sent[0]["form"]["Body"].startswith("Olá Ana!")
    with shop.sf.store.transaction() as tx:
        records = sorted(tx.list_messages(flow_id="sms-promo"), key=lambda m: m["created_at"])
    assert [m["status"] for m in records] == ["skipped", "sent"]
    assert records[1]["segments"] == 1
    assert records[1]["provider_id"].startswith("SM")

    assert _inbound(shop, "+5511987654321", "  stop ") == 200
    pid = shop.sf.views.find_profile("phone", "+5511987654321")
    assert pid is not None
    assert shop.sf.views.profile(pid)["consent_sms"] == "unsubscribed"
    shop.sf.ingest([_update("+5511987654321", "u2")])
    shop.sf.drain()
    assert len([r for r in shop.peer.requests if r["path"].endswith("/Messages.json")]) == 1

    assert _inbound(shop, "+5511987654321", "START") == 200
    assert shop.sf.views.profile(pid)["consent_sms"] == "subscribed"
    shop.sf.ingest([_update("+5511987654321", "u3")])
    shop.sf.drain()
    assert len([r for r in shop.peer.requests if r["path"].endswith("/Messages.json")]) == 2


def test_inbound_without_a_valid_signature_is_refused(shop: Shop) -> None:
    r = shop.client.post("/hooks/sms/inbound", data={"From": "+5511987654321", "Body": "STOP"},
                         headers={"X-Twilio-Signature": "forged"})
    assert r.status_code == 403
    assert shop.sf.views.find_profile("phone", "+5511987654321") is None


def test_delivery_receipts_update_the_message(shop: Shop) -> None:
    apply(shop.sf, SMS_FLOW)
    shop.sf.ingest([_update("+5511987654321", "u1", consent="subscribed")])
    shop.sf.drain()
    with shop.sf.store.transaction() as tx:
        (message,) = tx.list_messages(flow_id="sms-promo")
    params = {"MessageSid": message["provider_id"], "MessageStatus": "delivered"}
    url = "http://testserver/hooks/sms/status"
    r = shop.client.post("/hooks/sms/status", data=params,
                         headers={"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, params)})
    assert r.status_code == 204
    with shop.sf.store.transaction() as tx:
        updated = tx.get_message(message["id"])
    assert updated is not None
    assert updated["status"] == "delivered"
    pid = message["profile_id"]
    assert "message_delivered" in [e["type"] for e in shop.sf.views.profile(pid)["timeline"]]
