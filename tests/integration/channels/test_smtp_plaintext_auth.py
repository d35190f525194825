"""A login over ``smtp_security = none`` sends the password in clear text: refused unless it stays on
this machine or ``smtp_allow_plaintext_auth`` says the network is trusted. Against a real SMTP server
(aiosmtpd) on this machine's loopback and non-loopback addresses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from test_email_support import SmtpRecorder

from storeflow.app import Storeflow, default_channels
from storeflow.channels.base import OutboundMessage
from storeflow.channels.email import EmailChannel
from storeflow.channels.smtp_pool import SmtpConfig
from storeflow.errors import ConfigError
from storeflow.settings import Settings

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
PASSWORD = "pa55-w0rd"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"shop", PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


def start(host: str) -> SmtpRecorder:
    # AUTH without TLS is offered (not required) for the test: that is what a careless relay does.
    return SmtpRecorder(host=host, authenticator=authenticator, auth_require_tls=False).start()


@pytest.fixture
def loopback() -> Iterator[SmtpRecorder]:
    server = start("127.0.0.1")
    try:
        yield server
    finally:
        server.stop()


def settings(host: str, port: int, **overrides: Any) -> Settings:
    return Settings(
        smtp_host=host,
        smtp_port=port,
        smtp_security="none",
        smtp_username="shop",
        smtp_password=PASSWORD,
        smtp_timeout_s=5.0,
        **overrides,
    )


def send(config: SmtpConfig) -> str:
    channel = EmailChannel(config, default_from="Shop <shop@example.com>")
    try:
        message = OutboundMessage(
            id="m1", channel="email", payload={"to": "ana@example.com", "subject": "Hi", "text": "Hello"}
        )
        result = channel.send(message, NOW)
    finally:
        channel.close()
    return result.status


def test_a_plaintext_login_is_refused_at_startup(loopback: SmtpRecorder) -> None:
    """Refused whatever the host, this machine's included: nothing is sent, not even a connection."""
    config = settings("127.0.0.1", loopback.port)
    with pytest.raises(ConfigError) as info:
        default_channels(config)
    message = str(info.value)
    assert "smtp_security = none would send the SMTP password in clear text" in message
    assert "smtp_allow_plaintext_auth" in message and "starttls" in message
    assert PASSWORD not in message
    assert loopback.connection_count == 0  # refused before anything was sent


def test_a_plaintext_login_goes_out_only_when_explicitly_allowed(loopback: SmtpRecorder) -> None:
    config = SmtpConfig.from_settings(settings("127.0.0.1", loopback.port, smtp_allow_plaintext_auth=True))
    assert send(config) == "sent"
    [received] = loopback.messages
    assert received.login == b"shop"
    assert received.tls is False  # the password went in clear, as the setting allowed


@pytest.mark.parametrize(
    ("host", "security", "username"),
    [
        ("mail.example.com", "starttls", "shop"),
        ("mail.example.com", "tls", "shop"),
        ("mail.example.com", "none", None),
    ],
)
def test_configurations_that_do_not_expose_a_password_are_accepted(
    host: str, security: Any, username: str | None
) -> None:
    password = PASSWORD if username else None
    assert SmtpConfig(host, 587, security, username, password).host == host


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREFLOW_SMTP_ALLOW_PLAINTEXT_AUTH", "true")
    assert SmtpConfig.from_settings(settings("mail.example.com", 25)).allow_plaintext_auth is True


def test_a_refused_configuration_opens_no_store(tmp_path: Path) -> None:
    """The channels are checked before the database is opened: nothing is left open or created."""
    db = tmp_path / "storeflow.db"
    config = settings("127.0.0.1", 2525).model_copy(update={"database_url": f"sqlite:///{db}"})
    with pytest.raises(ConfigError, match="clear text"):
        Storeflow(config)
    assert not db.exists()
