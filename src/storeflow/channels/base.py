"""The channel interface: an outbound message in, a classified delivery result out.

A channel never raises for a delivery problem (refused payload, blocked destination, timeout, HTTP
error); it returns a :class:`DeliveryResult` whose ``status`` tells the dispatcher what to do next.
Exceptions from a channel mean a programming error, not a delivery outcome.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from storeflow.errors import ConfigError, NotFoundError

MAX_RESPONSE_BODY_CHARS = 2_000

DeliveryStatus = Literal["sent", "transient_failure", "permanent_failure"]


@dataclass(frozen=True)
class OutboundMessage:
    """One message to deliver.

    ``id`` is a stable idempotency key derived from the run and step (e.g. ``"run_01H...:steps[3]"``);
    it stays the same on every attempt so the receiver can deduplicate.
    """

    id: str
    channel: str
    payload: Mapping[str, Any]
    attempt: int = 1

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("OutboundMessage.id must not be empty")
        if self.attempt < 1:
            raise ValueError(f"OutboundMessage.attempt must be >= 1, got {self.attempt}")


@dataclass(frozen=True)
class DeliveryResult:
    """The classified outcome of one delivery attempt. ``detail`` never contains secrets."""

    status: DeliveryStatus
    detail: str
    response_status: int | None = None
    response_body: str | None = None  # truncated to MAX_RESPONSE_BODY_CHARS
    duration_ms: float = 0.0
    provider_id: str | None = None
    retry_after: timedelta | None = None  # the receiver's Retry-After, if it sent one

    def __post_init__(self) -> None:
        if self.response_body is not None and len(self.response_body) > MAX_RESPONSE_BODY_CHARS:
            object.__setattr__(self, "response_body", self.response_body[:MAX_RESPONSE_BODY_CHARS])

    @property
    def ok(self) -> bool:
        return self.status == "sent"


class Channel(Protocol):
    name: str

    def send(self, message: OutboundMessage, now: datetime) -> DeliveryResult:
        """Deliver one message. Never raises for delivery problems; returns a classified result."""
        ...


class Closable:
    """Lets a channel be used as a context manager that calls its ``close()``."""

    def close(self) -> None:
        """Release connections and clients the channel owns."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class UnknownChannelError(NotFoundError):
    """A message names a channel that is not registered."""


class ChannelRegistry:
    """Channels by name."""

    def __init__(self, channels: Iterable[Channel] = ()) -> None:
        self._channels: dict[str, Channel] = {}
        for channel in channels:
            self.register(channel)

    def register(self, channel: Channel) -> None:
        if not channel.name:
            raise ConfigError("a channel needs a non-empty name")
        if channel.name in self._channels:
            raise ConfigError(f"channel {channel.name!r} is already registered")
        self._channels[channel.name] = channel

    def get(self, name: str) -> Channel:
        try:
            return self._channels[name]
        except KeyError:
            known = ", ".join(sorted(self._channels)) or "none"
            raise UnknownChannelError(
                f"no channel named {name!r} is registered (registered: {known})"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._channels)

    def __contains__(self, name: object) -> bool:
        return name in self._channels

    def __iter__(self) -> Iterator[Channel]:
        return iter(list(self._channels.values()))

    def __len__(self) -> int:
        return len(self._channels)


def timed_result(status: DeliveryStatus, detail: str, started: float, **fields: Any) -> DeliveryResult:
    """A result whose duration runs from ``started`` (a ``time.perf_counter()`` reading) to now."""
    return DeliveryResult(status=status, detail=detail,
                          duration_ms=round((time.perf_counter() - started) * 1000, 3), **fields)
