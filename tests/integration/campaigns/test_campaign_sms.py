"""A flash-sale SMS campaign through a Twilio-compatible local peer, on both backends: subscribers
get one text each; the unsubscribed, the never-asked and those without a phone are skipped with
their reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.campaigns.members import add_segment
from tests.integration.messaging.messaging_harness import TWILIO_TOKEN, HttpPeer

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.settings import Settings

FLASH = """
id: flash-sms
name: Flash sale SMS
audience: {include: [sms-subscribers]}
message:
  channel: sms
  text: "{{ profile.first_name }}, 30% off until midnight: https://shop.example/sale Reply STOP to opt out"
throttle: 600
"""


@pytest.fixture
def sms_shop(db_url: str, clock: VirtualClock) -> Iterator[tuple[Storeflow, HttpPeer]]:
    peer = HttpPeer()
    settings = Settings(database_url=db_url, signing_secret="s" * 32, sms_provider="twilio",
                        sms_from="+14155550100", twilio_account_sid="AC" + "0" * 32,
                        twilio_auth_token=TWILIO_TOKEN, twilio_base_url=peer.url,
                        default_phone_region="ID", webhook_allow_private=True)
    sf = Storeflow(settings, clock=clock)
    try:
        yield sf, peer
    finally:
        sf.close()
        peer.close()


def test_a_flash_sale_sms_goes_once_to_each_subscriber(sms_shop: tuple[Storeflow, HttpPeer],
                                                      clock: VirtualClock) -> None:
    sf, peer = sms_shop
    items: list[dict[str, Any]] = [
        {"type": "identified", "phone": f"+62812000000{i:02d}", "id": f"s-{i}",
         "profile": {"first_name": f"Budi{i}", "consent": {"sms": "subscribed"}}} for i in range(8)]
    items += [{"type": "identified", "phone": "+6281200000099", "id": "stop",
               "profile": {"consent": {"sms": "unsubscribed"}}},
              {"type": "identified", "phone": "+6281200000098", "id": "never"},
              {"type": "identified", "email": "nophone@example.com", "id": "nophone",
               "profile": {"consent": {"sms": "subscribed"}}}]
    ids = [str(r.profile_id) for r in sf.ingest(items)]
    add_segment(sf.store, "sms-subscribers", ids, clock.now())
    sf.campaigns.create(sf.campaigns.validate(FLASH, "flash.yaml"))
    sf.campaigns.schedule("flash-sms", now=True)
    sf.drain()

    sent = [r["form"] for r in peer.requests if r["path"].endswith("/Messages.json")]
    assert Counter(f["To"] for f in sent) == Counter({f"+62812000000{i:02d}": 1 for i in range(8)})
    assert all(f["Body"].startswith("Budi") and "STOP" in f["Body"] for f in sent)
    report = sf.campaigns.get("flash-sms")["report"]
    assert (report["sent"], report["skipped"]) == (8, 3)
    assert {k: v for k, v in report["skipped_by_reason"].items() if v} == {"no_consent": 2, "no_address": 1}
