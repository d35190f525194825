"""EmailChannel against a real SMTP server (aiosmtpd on 127.0.0.1; no mocks of smtplib or sockets)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from test_email_support import SmtpRecorder

from storeflow.channels.base import OutboundMessage
from storeflow.channels.email import EmailChannel
from storeflow.channels.smtp_pool import SmtpConfig
from storeflow.errors import ConfigError
from storeflow.settings import Settings

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
UNSUBSCRIBE = "https://shop.example.com/u/" + "t0k3n" * 30 + "?m=msg_01&c=email"
TEXT = "Olá Ana,\n\nSeu pedido de Rp 150.000 foi confirmado.\n"
HTML = "<html><body><p>Olá Ana,</p><p>Seu pedido de <b>Rp 150.000</b> foi confirmado.</p></body></html>"


def payload(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "from": None,
        "to": "Ana Souza <ana@example.com>",
        "reply_to": "help@shop.example.com",
        "subject": "Olá Ana — pedido confirmado (Rp 150.000)",
        "text": TEXT,
        "html": HTML,
        "headers": {
            "List-Unsubscribe": f"<{UNSUBSCRIBE}>, <mailto:unsubscribe@shop.example.com?subject=msg_01>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Storeflow-Message": "msg_01",
        },
        "message_id": "<msg_01@shop.example.com>",
        "kind": "marketing",
    }
    base.update(overrides)
    return base


def message(msg_id: str = "run_1:steps[0]", **overrides: Any) -> OutboundMessage:
    return OutboundMessage(id=msg_id, channel="email", payload=payload(**overrides))


def config(port: int, **overrides: Any) -> SmtpConfig:
    return SmtpConfig(**{"host": "127.0.0.1", "port": port, "timeout_s": 5.0, "pool_size": 3, **overrides})


def config_with(**overrides: Any) -> SmtpConfig:
    return SmtpConfig(**{"host": "127.0.0.1", "port": 25, **overrides})


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    server = SmtpRecorder().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def channel(smtp: SmtpRecorder) -> Iterator[EmailChannel]:
    ch = EmailChannel(config(smtp.port), default_from="Loja Bela <loja@shop.example.com>", local_hostname="worker.test")
    try:
        yield ch
    finally:
        ch.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- what arrives ---------------------------------------------------------------------------------


def test_multipart_utf8_message_arrives_with_headers_and_message_id(smtp: SmtpRecorder, channel: EmailChannel) -> None:
    result = channel.send(message(), NOW)

    assert result.status == "sent", result.detail
    assert result.provider_id == "<msg_01@shop.example.com>"
    assert result.response_status == 250
    assert "Q123" in result.detail
    [got] = smtp.messages
    assert got.mail_from == "loja@shop.example.com"
    assert got.rcpt_tos == ["ana@example.com"]
    msg = got.message
    assert msg["Message-ID"] == result.provider_id
    assert msg["Subject"] == "Olá Ana — pedido confirmado (Rp 150.000)"
    assert msg["From"] == "Loja Bela <loja@shop.example.com>"
    assert msg["To"] == "Ana Souza <ana@example.com>"
    assert msg["Reply-To"] == "help@shop.example.com"
    assert msg["Date"] == "Mon, 05 Jan 2026 09:30:00 +0000"
    assert msg["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>, <mailto:unsubscribe@shop.example.com?subject=msg_01>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["X-Storeflow-Message"] == "msg_01"
    assert msg.get_content_type() == "multipart/alternative"
    text_part, html_part = msg.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert text_part.get_content_charset() == "utf-8"
    assert text_part.get_content().replace("\r\n", "\n") == TEXT
    assert html_part.get_content_type() == "text/html"
    assert html_part.get_content().rstrip("\r\n") == HTML
    # The wire form is 7-bit clean and the unsubscribe URL is not RFC 2047-encoded.
    assert got.data.isascii()
    assert b"=?utf-8?" not in got.data.split(b"List-Unsubscribe:")[1].split(b"List-Unsubscribe-Post")[0]


def test_message_id_is_generated_on_the_sender_domain_when_absent(smtp: SmtpRecorder, channel: EmailChannel) -> None:
    result = channel.send(message(message_id=None), NOW)

    assert result.status == "sent", result.detail
    assert result.provider_id is not None
    assert result.provider_id.startswith("<")
    assert result.provider_id.endswith("@shop.example.com>")
    assert smtp.messages[0].message["Message-ID"] == result.provider_id


@pytest.mark.parametrize(("text", "html", "content_type"), [(TEXT, None, "text/plain"), (None, HTML, "text/html")])
def test_single_part_messages(
    smtp: SmtpRecorder, channel: EmailChannel, text: str | None, html: str | None, content_type: str
) -> None:
    result = channel.send(message(text=text, html=html, headers=None), NOW)

    assert result.status == "sent", result.detail
    msg = smtp.messages[0].message
    assert msg.get_content_type() == content_type
    assert "Olá" in msg.get_content()


def test_long_ascii_headers_are_folded_and_unfold_to_the_exact_value(smtp: SmtpRecorder, channel: EmailChannel) -> None:
    subject = "Your order  #1001 from Loja Bela is confirmed: " + " ".join(f"item-{i}" for i in range(30))
    sender = '"Loja, Bela \\"Top\\"" <loja@shop.example.com>'
    result = channel.send(
        message(subject=subject, **{"from": sender, "reply_to": "Help Desk <help@shop.example.com>"}), NOW
    )

    assert result.status == "sent", result.detail
    got = smtp.messages[0]
    assert max(len(line) for line in got.data.split(b"\r\n\r\n")[0].split(b"\r\n")) <= 998
    msg = got.message
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].display_name == 'Loja, Bela "Top"'
    assert msg["From"].addresses[0].addr_spec == "loja@shop.example.com"
    assert msg["Reply-To"] == "Help Desk <help@shop.example.com>"


def test_payload_from_overrides_the_default_and_idn_domains_go_out_as_punycode(
    smtp: SmtpRecorder, channel: EmailChannel
) -> None:
    result = channel.send(message(**{"from": "Café <ola@café.example>", "to": "bia@exämple.com"}), NOW)

    assert result.status == "sent", result.detail
    [got] = smtp.messages
    assert got.mail_from == "ola@xn--caf-dma.example"
    assert got.rcpt_tos == ["bia@xn--exmple-cua.com"]
    assert got.message["From"] == "Café <ola@xn--caf-dma.example>"


def test_non_ascii_local_part_uses_smtputf8(smtp: SmtpRecorder, channel: EmailChannel) -> None:
    result = channel.send(message(to="josé@example.com"), NOW)

    assert result.status == "sent", result.detail
    [got] = smtp.messages
    assert got.rcpt_tos == ["josé@example.com"]
    assert got.message["To"] == "josé@example.com"


def test_non_ascii_reply_to_local_part_also_uses_smtputf8(smtp: SmtpRecorder, channel: EmailChannel) -> None:
    result = channel.send(message(reply_to="Atendimento <atenção@shop.example.com>"), NOW)

    assert result.status == "sent", result.detail
    assert smtp.messages[0].message["Reply-To"] == "Atendimento <atenção@shop.example.com>"


# -- the pool ------------------------------------------------------------------------------------


def test_fifty_sequential_messages_use_one_connection(smtp: SmtpRecorder, channel: EmailChannel) -> None:
    results = [channel.send(message(f"run_{i}:steps[0]", message_id=None), NOW) for i in range(50)]

    assert all(r.status == "sent" for r in results), [r.detail for r in results if not r.ok]
    assert len(smtp.messages) == 50
    assert smtp.connection_count == 1
    assert len({r.provider_id for r in results}) == 50


def test_fifty_concurrent_messages_use_at_most_pool_size_connections(smtp: SmtpRecorder, channel: EmailChannel) -> None:
    results: list[Any] = []
    lock = threading.Lock()

    def worker(start: int) -> None:
        for i in range(start, 50, 8):
            result = channel.send(message(f"run_{i}:steps[0]", message_id=f"<m{i}@shop.example.com>"), NOW)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 50
    assert all(r.status == "sent" for r in results), [r.detail for r in results if not r.ok]
    assert sorted(m.message["Message-ID"] for m in smtp.messages) == sorted(
        f"<m{i}@shop.example.com>" for i in range(50)
    )
    assert 1 <= smtp.connection_count <= 3


def test_a_restarted_server_is_reconnected_to(smtp: SmtpRecorder, channel: EmailChannel) -> None:
    assert channel.send(message(), NOW).status == "sent"
    smtp.stop()  # the pooled connection is now dead
    restarted = SmtpRecorder(port=smtp.port).start()
    try:
        result = channel.send(message(), NOW)
        assert result.status == "sent", result.detail
        assert len(restarted.messages) == 1
    finally:
        restarted.stop()


# -- classification ------------------------------------------------------------------------------


def test_451_for_the_recipient_is_transient_and_the_connection_stays_usable(
    smtp: SmtpRecorder, channel: EmailChannel
) -> None:
    smtp.handler.rcpt_replies["ana@example.com"] = "451 4.7.1 Greylisted, try again later"
    result = channel.send(message(), NOW)

    assert result.status == "transient_failure"
    assert result.response_status == 451
    assert "451" in result.detail
    assert "Greylisted" in result.detail
    assert result.provider_id is None
    assert smtp.messages == []

    assert channel.send(message(to="bia@example.com"), NOW).status == "sent"
    assert smtp.connection_count == 1


def test_550_for_the_recipient_is_permanent(smtp: SmtpRecorder, channel: EmailChannel) -> None:
    smtp.handler.rcpt_replies["ana@example.com"] = "550 5.1.1 <ana@example.com>: user unknown"
    result = channel.send(message(), NOW)

    assert result.status == "permanent_failure"
    assert result.response_status == 550
    assert "550" in result.detail
    assert "user unknown" in result.detail
    assert smtp.messages == []


@pytest.mark.parametrize(
    ("reply", "status"),
    [("554 5.7.1 Message rejected as spam", "permanent_failure"), ("452 4.3.1 Out of storage", "transient_failure")],
)
def test_a_refused_data_transaction_is_classified_by_code(
    smtp: SmtpRecorder, channel: EmailChannel, reply: str, status: str
) -> None:
    smtp.handler.data_reply = reply
    result = channel.send(message(), NOW)

    assert result.status == status
    assert result.response_status == int(reply[:3])
    assert reply[4:] in result.detail


def test_server_down_is_transient() -> None:
    with EmailChannel(config(free_port()), default_from="loja@shop.example.com") as ch:
        result = ch.send(message(), NOW)

    assert result.status == "transient_failure"
    assert "could not connect to 127.0.0.1:" in result.detail
    assert "ConnectionRefusedError" in result.detail


def test_a_server_that_never_greets_times_out_as_transient() -> None:
    with socket.socket() as listener:  # accepts connections (kernel backlog) but never says a word
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        cfg = config(listener.getsockname()[1], timeout_s=0.3)
        with EmailChannel(cfg, default_from="loja@shop.example.com") as ch:
            result = ch.send(message(), NOW)

    assert result.status == "transient_failure"
    assert "timed out" in result.detail


def test_server_gone_after_a_pooled_connection_is_transient(smtp: SmtpRecorder, channel: EmailChannel) -> None:
    assert channel.send(message(), NOW).status == "sent"
    smtp.stop()

    result = channel.send(message(), NOW)

    assert result.status == "transient_failure"
    assert "could not connect" in result.detail


# -- refused before anything is sent -------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"headers": {"X-Note": "hi\r\nBcc: victim@example.org"}}, "'X-Note'"),
        ({"headers": {"List-Unsubscribe": "<https://x.example/u>\nBcc: victim@example.org"}}, "'List-Unsubscribe'"),
        ({"subject": "Hello\nBcc: victim@example.org"}, "'Subject'"),
    ],
)
def test_header_injection_is_refused_without_sending(
    smtp: SmtpRecorder, channel: EmailChannel, overrides: dict[str, Any], named: str
) -> None:
    result = channel.send(message(**overrides), NOW)

    assert result.status == "permanent_failure"
    assert named in result.detail
    assert "line break" in result.detail
    assert smtp.connection_count == 0
    assert smtp.messages == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to", "not-an-email"),
        ("to", "ana@localhost"),
        ("to", "ana@"),
        ("to", "@example.com"),
        ("to", "ana@example.com, bia@example.com"),
        ("to", "ana@[127.0.0.1]"),
        ("to", "ana@-bad-.com"),
        ("to", "ana@example.com\r\nBcc: victim@example.org"),
        ("to", ""),
        ("to", None),
        ("from", "Shop <shop@>"),
        ("reply_to", "nobody"),
    ],
)
def test_invalid_addresses_are_refused(smtp: SmtpRecorder, channel: EmailChannel, field: str, value: Any) -> None:
    result = channel.send(message(**{field: value}), NOW)

    assert result.status == "permanent_failure"
    assert repr(field) in result.detail
    assert smtp.connection_count == 0


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"text": None, "html": None}, "'text' or an 'html' body"),
        ({"subject": ""}, "non-empty 'subject'"),
        ({"headers": {"Bcc": "victim@example.org"}}, "'Bcc' is set by the email channel"),
        ({"headers": {"Bad Name": "x"}}, "invalid email header name"),
        ({"message_id": "no-angle@brackets"}, "'message_id'"),
        ({"headers": {"X-Long": "x" * 991}}, "'X-Long' has a word too long"),
        ({"cc": "x@example.com"}, "unknown email payload keys: cc"),
    ],
)
def test_unusable_payloads_are_permanent(
    smtp: SmtpRecorder, channel: EmailChannel, overrides: dict[str, Any], expected: str
) -> None:
    result = channel.send(message(**overrides), NOW)

    assert result.status == "permanent_failure"
    assert expected in result.detail
    assert smtp.connection_count == 0


def test_invalid_default_from_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="STOREFLOW_EMAIL_FROM"):
        EmailChannel(config(25), default_from="Store <store@>")


# -- login ---------------------------------------------------------------------------------------


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"shop", b"pa55-w0rd")
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture
def auth_smtp() -> Iterator[SmtpRecorder]:
    # AUTH over plain text only for the test (offered, not required: aiosmtpd warns about requiring it
    # without TLS); the TLS tests cover required AUTH after STARTTLS.
    server = SmtpRecorder(authenticator=authenticator, auth_require_tls=False).start()
    try:
        yield server
    finally:
        server.stop()


def test_login_when_a_username_is_set(auth_smtp: SmtpRecorder) -> None:
    cfg = config(auth_smtp.port, username="shop", password="pa55-w0rd", allow_plaintext_auth=True)
    with EmailChannel(cfg, default_from="loja@shop.example.com") as ch:
        result = ch.send(message(), NOW)

    assert result.status == "sent", result.detail
    assert auth_smtp.messages[0].login == b"shop"


def test_failed_login_is_transient_and_never_shows_the_password(auth_smtp: SmtpRecorder) -> None:
    cfg = config(auth_smtp.port, username="shop", password="wrong-s3cret", allow_plaintext_auth=True)
    with EmailChannel(cfg, default_from="loja@shop.example.com") as ch:
        result = ch.send(message(), NOW)

    assert result.status == "transient_failure"
    assert "535" in result.detail
    assert "login" in result.detail
    assert "wrong-s3cret" not in repr(result)
    assert "wrong-s3cret" not in repr(cfg)
    assert auth_smtp.messages == []


def test_config_from_settings() -> None:
    settings = Settings(
        smtp_host="mail.example.com",
        smtp_port=587,
        smtp_security="starttls",
        smtp_username="shop",
        smtp_password="s3cret",
        smtp_timeout_s=7.5,
        smtp_pool_size=2,
    )
    cfg = SmtpConfig.from_settings(settings)

    assert cfg == SmtpConfig("mail.example.com", 587, "starttls", "shop", "s3cret", 7.5, 2)
    assert "s3cret" not in repr(cfg)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"port": 0}, "smtp_port"),
        ({"security": "ssl"}, "smtp_security"),
        ({"pool_size": 0}, "smtp_pool_size"),
        ({"timeout_s": 0}, "smtp_timeout_s"),
        ({"username": "shop"}, "smtp_password is not"),
        ({"password": "x"}, "smtp_username is not"),
    ],
)
def test_config_is_validated(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_with(**overrides)
