"""Webhook destinations checked when a flow is validated, with the same rules as when sending.

A webhook URL whose host is an IP address literal (``http://169.254.169.254/``, ``http://10.0.0.5/``,
``http://[::1]/``) or ``localhost`` is refused at validation time when the sending rules
(``storeflow.channels.netguard``, configured by ``webhook_allow_private`` and
``webhook_allowed_hosts``) would refuse it, instead of failing each send later. Host names are not
resolved here (DNS answers change, and validation may run in CI without network): they are checked
when each message is sent, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from storeflow.channels.netguard import check_destination
from storeflow.errors import BlockedDestinationError, DeliveryError
from storeflow.flows.limits import iter_steps
from storeflow.flows.problems import Problems

if TYPE_CHECKING:
    from storeflow.settings import Settings


@dataclass(frozen=True)
class DestinationPolicy:
    """Where webhooks may go: the ``webhook_allow_private`` and ``webhook_allowed_hosts`` settings."""

    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> DestinationPolicy:
        return cls(settings.webhook_allow_private, tuple(settings.webhook_allowed_hosts))


DEFAULT_POLICY = DestinationPolicy()
"""The default settings: public addresses only."""


class _NotResolved(OSError):
    pass


def _no_resolver(host: str, port: int) -> Iterable[tuple[Any, ...]]:
    raise _NotResolved(f"{host} is not resolved when a flow is validated")


def _refusal(url: str, policy: DestinationPolicy) -> str | None:
    """Why ``url`` would be refused at send time, when that is known without DNS, else None.
    URLs that are not http(s) URLs at all are left to the webhook action's own check."""
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
    except ValueError:
        return None
    try:
        check_destination(
            url, allow_private=policy.allow_private, allowed_hosts=policy.allowed_hosts, resolver=_no_resolver
        )
    except BlockedDestinationError as exc:
        return str(exc)
    except DeliveryError:  # a host name: checked when sending
        return None
    return None


def check_webhook_destinations(data: Any, policy: DestinationPolicy, problems: Problems) -> None:
    """Add a problem at ``steps[..].url`` for each webhook step of raw ``data`` whose URL the
    sending rules refuse (see the module docstring)."""
    for loc, step in iter_steps(data):
        url = step.get("url")
        if step.get("action") == "webhook" and isinstance(url, str):
            why = _refusal(url, policy)
            if why is not None:
                problems.add((*loc, "url"), why)
