"""Fixtures: a Storeflow wired to a real SMTP server and a local HTTP peer, plus its API."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from messaging_harness import TWILIO_TOKEN, HttpPeer, Inbox, Shop

from storeflow.api import create_app
from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.settings import Settings
from storeflow.simulate.mailbox import Mailbox

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

@pytest.fixture
def shop(db_url: str, clock: VirtualClock, tmp_path: Path) -> Iterator[Shop]:
    mailbox = Mailbox(tmp_path / "mail", now=clock.now)
    mailbox.start()
    inbox = Inbox(tmp_path / "mail")
    peer = HttpPeer()
    settings = Settings(
        database_url=db_url, public_url="http://testserver", signing_secret="s" * 32,
        smtp_host="127.0.0.1", smtp_port=mailbox.port, email_from="Loja <loja@example.com>",
        team_emails=["team@example.com"], slack_webhook_url=f"{peer.url}/slack", webhook_allow_private=True,
        sms_provider="twilio", sms_from="+14155550100", twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=TWILIO_TOKEN, twilio_base_url=peer.url, default_phone_region="BR",
    )  # type: ignore[arg-type]
    sf = Storeflow(settings, clock=clock)
    try:
        with TestClient(create_app(sf)) as client:
            yield Shop(sf, inbox, peer, client)
    finally:
        sf.close()
        peer.close()
        mailbox.stop()
