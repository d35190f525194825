"""A Storeflow on each backend wired to a real local SMTP server (simulate.Mailbox), with its API."""

from __future__ import annotations

import email
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

from storeflow.api import create_app
from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.settings import Settings
from storeflow.simulate.mailbox import Mailbox

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


@dataclass
class Shop:
    sf: Storeflow
    folder: Path
    client: TestClient

    @property
    def mail(self) -> list[Message]:
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(self.folder.glob("*.eml"))]

    def recipients(self) -> list[str]:
        return sorted(str(m["To"]) for m in self.mail)


@pytest.fixture
def shop(db_url: str, clock: VirtualClock, tmp_path: Path) -> Iterator[Shop]:
    mailbox = Mailbox(tmp_path / "mail", now=clock.now)
    mailbox.start()
    settings = Settings(database_url=db_url, public_url="http://testserver", signing_secret="s" * 32,
                        smtp_host="127.0.0.1", smtp_port=mailbox.port, email_from="Loja <loja@example.com>",
                        timezone="Asia/Jakarta", campaign_batch_size=7)
    sf = Storeflow(settings, clock=clock)
    try:
        with TestClient(create_app(sf)) as client:
            yield Shop(sf, tmp_path / "mail", client)
    finally:
        sf.close()
        mailbox.stop()
