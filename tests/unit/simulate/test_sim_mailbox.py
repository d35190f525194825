"""The demo mailbox: an SMTP server on an ephemeral port that keeps each message as a .eml file."""

from __future__ import annotations

import email
import smtplib
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from storeflow.simulate.mailbox import Mailbox


def _message(to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Toko Rimba <halo@demo.store>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Halo!")
    return msg


def test_keeps_every_message_per_recipient_named_by_time(tmp_path: Path) -> None:
    at = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
    before = threading.active_count()
    with Mailbox(tmp_path / "mail", now=lambda: at) as box:
        assert box.host == "127.0.0.1" and box.port > 0
        with smtplib.SMTP(box.host, box.port) as smtp:
            smtp.send_message(_message("ana@correio.example", "Olá, Ana"))
            smtp.send_message(_message("team@demo.store", "Low stock"), to_addrs=["a@x.example", "b@y.example"])
        assert box.count == 3
        files = box.files()
    assert threading.active_count() == before  # the server thread is gone
    assert [f.name for f in files] == [
        "20260302T101500Z-00001-ana@correio.example.eml",
        "20260302T101500Z-00002-a@x.example.eml",
        "20260302T101500Z-00003-b@y.example.eml",
    ]
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=default)
    assert parsed["Subject"] == "Olá, Ana"
    assert parsed.get_content().strip() == "Halo!"


def test_the_clock_can_change_and_port_needs_a_running_server(tmp_path: Path) -> None:
    box = Mailbox(tmp_path / "mail")
    with pytest.raises(RuntimeError, match="not running"):
        _ = box.port
    box.start()
    try:
        box.now = lambda: datetime(2030, 1, 1, tzinfo=UTC)
        with smtplib.SMTP(box.host, box.port) as smtp:
            smtp.send_message(_message("x@mail.example", "hi"))
    finally:
        box.stop()
        box.stop()  # twice is fine
    assert box.files()[0].name.startswith("20300101T000000Z-")
