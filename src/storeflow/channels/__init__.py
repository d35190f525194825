"""Outbound channels behind one interface (:class:`Channel`), the webhook channel, retry policy and
the private-network guard. The dispatcher calls ``registry.get(message.channel).send(message, now)``
and schedules retries with :class:`RetryPolicy`."""

from storeflow.channels.base import (
    MAX_RESPONSE_BODY_CHARS,
    Channel,
    ChannelRegistry,
    DeliveryResult,
    DeliveryStatus,
    OutboundMessage,
    UnknownChannelError,
)
from storeflow.channels.netguard import Destination, check_destination, resolve_destination
from storeflow.channels.retry import RetryPolicy
from storeflow.channels.webhook import WebhookChannel

__all__ = [
    "MAX_RESPONSE_BODY_CHARS",
    "Channel",
    "ChannelRegistry",
    "DeliveryResult",
    "DeliveryStatus",
    "Destination",
    "OutboundMessage",
    "RetryPolicy",
    "UnknownChannelError",
    "WebhookChannel",
    "check_destination",
    "resolve_destination",
]
