from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storeflow.channels import (
    Channel,
    ChannelRegistry,
    DeliveryResult,
    OutboundMessage,
    UnknownChannelError,
    WebhookChannel,
)
from storeflow.errors import ConfigError, NotFoundError


class EchoChannel:
    def __init__(self, name: str = "echo") -> None:
        self.name = name

    def send(self, message: OutboundMessage, now: datetime) -> DeliveryResult:
        return DeliveryResult("sent", f"{message.id} at {now.isoformat()}")


def test_registry_returns_channels_by_name() -> None:
    echo = EchoChannel()
    with WebhookChannel({}, None) as webhook:
        registry = ChannelRegistry([echo, webhook])
        assert registry.get("echo") is echo
        assert registry.get("webhook") is webhook
        assert registry.names() == ["echo", "webhook"]
        assert "webhook" in registry
        assert "sms" not in registry
        assert len(registry) == 2


def test_unknown_channel_error_names_it_and_the_known_ones() -> None:
    registry = ChannelRegistry([EchoChannel()])
    with pytest.raises(
        UnknownChannelError, match=r"no channel named 'sms' is registered \(registered: echo\)"
    ):
        registry.get("sms")
    assert issubclass(UnknownChannelError, NotFoundError)


def test_duplicate_registration_is_a_config_error() -> None:
    registry = ChannelRegistry([EchoChannel()])
    with pytest.raises(ConfigError, match="already registered"):
        registry.register(EchoChannel())


def test_channels_satisfy_the_protocol() -> None:
    channel: Channel = EchoChannel()
    result = channel.send(OutboundMessage("m1", "echo", {}), datetime(2026, 1, 5, tzinfo=UTC))
    assert result.ok


def test_result_truncates_the_response_body() -> None:
    result = DeliveryResult("permanent_failure", "HTTP 400", response_body="y" * 5000)
    assert result.response_body == "y" * 2000
    assert result.retry_after is None
    assert not result.ok


def test_message_validation() -> None:
    with pytest.raises(ValueError, match="id"):
        OutboundMessage("", "webhook", {})
    with pytest.raises(ValueError, match="attempt"):
        OutboundMessage("m", "webhook", {}, attempt=0)


def test_webhook_channel_refuses_a_message_for_another_channel() -> None:
    with WebhookChannel({}, None) as webhook:
        result = webhook.send(OutboundMessage("m", "sms", {}), datetime(2026, 1, 5, tzinfo=UTC))
    assert result.status == "permanent_failure"
    assert "'sms'" in result.detail
