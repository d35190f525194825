"""SmsChannel without a network: payload checks, E.164 normalization, sender fallback, segment notes,
configuration (from_settings) and provider construction. Real HTTP is in tests/integration/channels."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from storeflow.channels import ChannelRegistry, OutboundMessage
from storeflow.channels.base import DeliveryResult
from storeflow.channels.sms import Guard, HttpProvider, SmsChannel, SmsRequest, TwilioProvider
from storeflow.errors import ConfigError
from storeflow.settings import Settings

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class StubProvider:
    name = "stub"
    idempotent = False

    def __init__(self) -> None:
        self.sent: list[SmsRequest] = []
        self.closed = False

    def submit(self, sms: SmsRequest, guard: Guard, now: datetime) -> DeliveryResult:
        self.sent.append(sms)
        return DeliveryResult("sent", "HTTP 201 from stub", provider_id="SM1")

    def close(self) -> None:
        self.closed = True


def msg(msg_id: str = "run_1:steps[0]", channel: str = "sms", **payload: Any) -> OutboundMessage:
    if "from_" in payload:
        payload["from"] = payload.pop("from_")
    return OutboundMessage(id=msg_id, channel=channel, payload={"to": "+5511987654321", "text": "hi", **payload})


@pytest.fixture
def stub() -> StubProvider:
    return StubProvider()


@pytest.fixture
def channel(stub: StubProvider) -> SmsChannel:
    return SmsChannel(stub, default_from="+15005550006", default_region="BR")


def test_channel_registers_under_sms(channel: SmsChannel) -> None:
    assert ChannelRegistry([channel]).get("sms") is channel


def test_sends_normalized_request_with_segment_note(channel: SmsChannel, stub: StubProvider) -> None:
    result = channel.send(msg(to="(11) 98765-4321", text="Olá! Seu pedido saiu 🚚"), NOW)

    assert result.status == "sent"
    assert result.provider_id == "SM1"
    assert result.detail == "HTTP 201 from stub; segments=1, encoding=UCS-2"
    [sms] = stub.sent
    assert sms == SmsRequest("run_1:steps[0]", "+5511987654321", "+15005550006", "Olá! Seu pedido saiu 🚚", None)


@pytest.mark.parametrize(
    ("to", "e164"),
    [
        ("+1 (415) 555-2671", "+14155552671"),
        ("011 98765 4321", "+5511987654321"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_to_is_normalized_to_e164(channel: SmsChannel, stub: StubProvider, to: str, e164: str) -> None:
    assert channel.send(msg(to=to), NOW).ok
    assert stub.sent[0].to == e164


@pytest.mark.parametrize("to", ["12345", "not a number", "+999 123", "+1 555 0100"])
def test_invalid_number_is_permanent_and_nothing_is_sent(channel: SmsChannel, stub: StubProvider, to: str) -> None:
    result = channel.send(msg(to=to), NOW)

    assert result.status == "permanent_failure"
    assert "nothing sent" in result.detail
    assert repr(to) in result.detail
    assert result.detail.endswith("; segments=1, encoding=GSM-7")
    assert stub.sent == []


def test_region_default_is_us(stub: StubProvider) -> None:
    channel = SmsChannel(stub, default_from=None)
    assert channel.send(msg(to="(415) 555-2671"), NOW).ok
    assert stub.sent[0].to == "+14155552671"
    assert stub.sent[0].sender is None  # the provider's own sender


def test_payload_from_overrides_default_and_is_trimmed(channel: SmsChannel, stub: StubProvider) -> None:
    assert channel.send(msg(from_=" ACME "), NOW).ok
    assert channel.send(msg(from_=None), NOW).ok
    assert [s.sender for s in stub.sent] == ["ACME", "+15005550006"]


def test_engine_kind_metadata_is_accepted(channel: SmsChannel, stub: StubProvider) -> None:
    assert channel.send(msg(kind="transactional"), NOW).ok
    assert len(stub.sent) == 1


def test_status_callback_is_passed(channel: SmsChannel, stub: StubProvider) -> None:
    assert channel.send(msg(status_callback="https://shop.example.com/sms/status"), NOW).ok
    assert stub.sent[0].status_callback == "https://shop.example.com/sms/status"


@pytest.mark.parametrize(
    ("message", "fragment"),
    [
        (msg(channel="webhook"), "given to the sms channel"),
        (msg(body="x"), "unknown sms payload keys: body"),
        (msg(text=""), "non-empty 'text'"),
        (msg(text=5), "non-empty 'text'"),
        (msg(to=None), "'to' phone number"),
        (msg(to="  "), "'to' phone number"),
        (msg(from_=""), "'from' must be"),
        (msg(from_=1), "'from' must be"),
        (msg(status_callback="ftp://x/y"), "'status_callback'"),
        (msg(status_callback="/relative"), "'status_callback'"),
        (msg(msg_id="run\n1"), "message id"),
    ],
)
def test_unusable_payloads_are_permanent_failures(
    channel: SmsChannel, stub: StubProvider, message: OutboundMessage, fragment: str
) -> None:
    result = channel.send(message, NOW)
    assert result.status == "permanent_failure"
    assert fragment in result.detail
    assert stub.sent == []


def test_refusal_without_text_has_no_segment_note(channel: SmsChannel) -> None:
    assert "segments=" not in channel.send(msg(text=None), NOW).detail


def test_long_gsm_text_note(channel: SmsChannel) -> None:
    assert channel.send(msg(text="a" * 161), NOW).detail.endswith("; segments=2, encoding=GSM-7")


def test_close_closes_the_provider(channel: SmsChannel, stub: StubProvider) -> None:
    channel.close()
    assert stub.closed


# -- configuration --------------------------------------------------------------------------------


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setenv("STOREFLOW_CONFIG", str(tmp_path / "absent.toml"))

    def make(**values: Any) -> Settings:
        return Settings(**values)

    return make


def test_from_settings_none(settings: Any) -> None:
    assert SmsChannel.from_settings(settings()) is None
    assert SmsChannel.from_settings(settings(sms_provider="none", sms_from="+15005550006")) is None


def test_from_settings_twilio(settings: Any) -> None:
    channel = SmsChannel.from_settings(
        settings(
            sms_provider="twilio",
            sms_from="+15005550006",
            twilio_account_sid="AC123",
            twilio_auth_token="tok",
            default_phone_region="BR",
        )
    )
    assert channel is not None
    assert isinstance(channel.provider, TwilioProvider)
    assert channel.provider.from_number == "+15005550006"
    channel.close()


def test_from_settings_http(settings: Any) -> None:
    channel = SmsChannel.from_settings(
        settings(sms_provider="http", sms_http_url="https://sms.example.com/send", sms_http_token="t0k")
    )
    assert channel is not None
    assert isinstance(channel.provider, HttpProvider)
    channel.close()


def test_from_settings_names_what_is_missing_without_secrets(settings: Any) -> None:
    with pytest.raises(ConfigError) as twilio:
        SmsChannel.from_settings(settings(sms_provider="twilio", twilio_auth_token="hunter2"))
    assert "STOREFLOW_TWILIO_ACCOUNT_SID, STOREFLOW_SMS_FROM" in str(twilio.value)
    assert "hunter2" not in str(twilio.value)
    with pytest.raises(ConfigError, match="STOREFLOW_SMS_HTTP_TOKEN"):
        SmsChannel.from_settings(settings(sms_provider="http", sms_http_url="https://sms.example.com/send"))
    with pytest.raises(ConfigError, match="STOREFLOW_TWILIO_AUTH_TOKEN"):
        SmsChannel.from_settings(
            settings(sms_provider="twilio", twilio_account_sid="AC1", twilio_auth_token="", sms_from="+15005550006")
        )


def test_from_settings_rejects_a_bad_base_url(settings: Any) -> None:
    with pytest.raises(ConfigError, match="Twilio base URL"):
        SmsChannel.from_settings(
            settings(
                sms_provider="twilio",
                sms_from="+15005550006",
                twilio_account_sid="AC1",
                twilio_auth_token="t",
                twilio_base_url="api.twilio.com",
            )
        )


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: TwilioProvider("", "tok", "+15005550006"), "account SID"),
        (lambda: TwilioProvider("AC1", "", "+15005550006"), "account SID"),
        (lambda: TwilioProvider("AC1", "tok", ""), "account SID"),
        (lambda: TwilioProvider("AC1", "tok", "+1", base_url="file:///x"), "base URL"),
        (lambda: TwilioProvider("AC1", "tok", "+1", timeout_s=0), "timeout"),
        (lambda: HttpProvider("sms.example.com/send", "tok"), "must be an absolute http"),
        (lambda: HttpProvider("https://sms.example.com/send", ""), "token"),
        (lambda: HttpProvider("https://sms.example.com/send", "tok\n"), "token"),
    ],
)
def test_provider_configuration_errors(make: Any, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        make()


def test_idempotency_follows_the_provider() -> None:
    twilio = SmsChannel(TwilioProvider("AC1", "tok", "+15005550006"), default_from=None)
    gateway = SmsChannel(HttpProvider("https://sms.example.com/send", "tok"), default_from=None)
    # The dispatcher re-sends after a crash only on an idempotent channel (getattr(channel, "idempotent")).
    assert getattr(twilio, "idempotent", None) is False
    assert getattr(gateway, "idempotent", None) is True
    twilio.close()
    gateway.close()
