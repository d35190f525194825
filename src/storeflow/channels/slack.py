"""The Slack channel: team notifications posted to a Slack-compatible incoming webhook.

Payload::

    {"text": "New order #1001 (Rp 150.000)", "blocks": [ ... Block Kit blocks ... ]}   # blocks optional

The webhook URL comes only from settings (``STOREFLOW_SLACK_WEBHOOK_URL``): it is a secret, so flows
never carry one, and it never appears in a result's detail (only its host does). The destination
passes :mod:`storeflow.channels.netguard` on every send and the request goes to a checked address
(original Host header and TLS server name, fresh connection), as in the webhook channel. Redirects
are not followed.

Classification: 2xx is ``sent``; 408/429 and 5xx, timeouts and connection errors are
``transient_failure`` (429/503 with the receiver's ``Retry-After``); other statuses are
``permanent_failure``, as is a send without a configured webhook URL.
"""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import httpx

from storeflow.channels._http import Failed, Guard, Reply, check, exchange, new_client, retry_after_of
from storeflow.channels.base import Closable, DeliveryResult, DeliveryStatus, OutboundMessage
from storeflow.channels.base import timed_result as _result
from storeflow.channels.netguard import Resolver, resolve_destination
from storeflow.clock import utc
from storeflow.errors import ConfigError
from storeflow.jsonenc import dumps as dumps_compact

DEFAULT_TIMEOUT_S = 10.0
MAX_RESPONSE_READ_BYTES = 4 * 1024
MAX_TEXT_CHARS = 40_000  # Slack truncates longer messages
MAX_BLOCKS = 50
NOT_CONFIGURED = "no Slack webhook configured (STOREFLOW_SLACK_WEBHOOK_URL)"
_PAYLOAD_KEYS = frozenset({"text", "blocks"})


class _Refused(Exception):
    """The message itself is unusable: a permanent failure with this detail."""


class SlackChannel(Closable):
    name: str = "slack"

    def __init__(
        self,
        webhook_url: str | None,
        *,
        client: httpx.Client | None = None,
        allow_private: bool = False,
        allowed_hosts: Collection[str] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
        resolver: Resolver = socket.getaddrinfo,
        user_agent: str = "storeflow/0.1",
    ) -> None:
        """``webhook_url`` None (or empty) leaves the channel registered but every send fails
        permanently with a hint. A URL that is not http(s) raises ConfigError (without echoing it).

        ``client`` is used as given (redirects disabled per request); without one the channel owns a
        client that ignores proxy/netrc environment settings, closed by :meth:`close`.
        """
        self._url = webhook_url or None
        if self._url is not None:
            try:
                scheme = httpx.URL(self._url).scheme
            except (httpx.InvalidURL, TypeError):
                raise ConfigError("STOREFLOW_SLACK_WEBHOOK_URL is not a valid URL") from None
            if scheme not in ("http", "https"):
                raise ConfigError("STOREFLOW_SLACK_WEBHOOK_URL must be an http(s) URL")
        if not 0 < timeout_s <= 300:
            raise ConfigError(f"Slack timeout must be in (0, 300] seconds, got {timeout_s}")
        self._guard: Guard = functools.partial(
            resolve_destination, allow_private=allow_private, allowed_hosts=tuple(allowed_hosts), resolver=resolver
        )
        self._timeout_s = timeout_s
        self._user_agent = user_agent
        self._owns_client = client is None
        self._client = client if client is not None else new_client()

    @property
    def configured(self) -> bool:
        return self._url is not None

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def send(self, message: OutboundMessage, now: datetime) -> DeliveryResult:
        started = time.perf_counter()
        try:
            body = self._body(message)
        except _Refused as exc:
            return _result("permanent_failure", str(exc), started)
        if self._url is None:
            return _result("permanent_failure", NOT_CONFIGURED, started)
        destination = check(self._url, self._guard)
        if isinstance(destination, Failed):
            joint = " " if destination.status == "permanent_failure" else ": "  # "Slack webhook blocked: ..."
            return _result(destination.status, f"Slack webhook{joint}{destination.detail}", started)
        headers = {"content-type": "application/json", "user-agent": self._user_agent, "accept-encoding": "identity"}
        reply = exchange(self._client, destination, method="POST", headers=headers, content=body,
                         timeout_s=self._timeout_s, started=started, max_read=MAX_RESPONSE_READ_BYTES,
                         on_error=self._client_error)
        if isinstance(reply, Failed):
            return _result(reply.status, reply.detail, started)
        text = reply.body.decode("utf-8", errors="replace")
        status, detail, retry_after = _classify(reply, text, destination.netloc, utc(now))
        return _result(status, detail, started, response_status=reply.status_code, response_body=text,
                       retry_after=retry_after)

    def _client_error(self, exc: httpx.HTTPError, where: str) -> Failed:
        """How this channel reads a client error: every one is transient."""
        if isinstance(exc, httpx.TimeoutException):
            return Failed("transient_failure", f"timed out after {self._timeout_s:g}s posting to {where}")
        return Failed("transient_failure", f"{type(exc).__name__} posting to {where}: {exc}")

    def _body(self, message: OutboundMessage) -> bytes:
        if message.channel != self.name:
            raise _Refused(f"message for channel {message.channel!r} was given to the Slack channel")
        payload = message.payload
        unknown = sorted(map(str, set(payload) - _PAYLOAD_KEYS))
        if unknown:
            hint = "; the webhook URL comes only from settings" if "webhook_url" in unknown else ""
            raise _Refused(f"unknown Slack payload keys: {', '.join(unknown)}{hint}")
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _Refused("Slack payload needs a non-empty 'text' string (also the notification fallback)")
        if len(text) > MAX_TEXT_CHARS:
            raise _Refused(f"Slack 'text' is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
        body: dict[str, Any] = {"text": text}
        blocks = payload.get("blocks")
        if blocks is not None:
            if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
                raise _Refused("Slack 'blocks' must be a list of block objects")
            if len(blocks) > MAX_BLOCKS:
                raise _Refused(f"Slack allows at most {MAX_BLOCKS} blocks, got {len(blocks)}")
            body["blocks"] = blocks
        try:
            return dumps_compact(body).encode("utf-8")
        except (TypeError, ValueError, RecursionError) as exc:
            raise _Refused(f"Slack payload is not JSON-serializable: {exc}") from exc


def _classify(reply: Reply, text: str, where: str, now: datetime) -> tuple[DeliveryStatus, str, timedelta | None]:
    code = reply.status_code
    prefix = f"HTTP {code} from Slack webhook at {where}"
    reason = f": {' '.join(text.split())[:200]}" if text.strip() else ""
    if 200 <= code < 300:
        return "sent", prefix, None
    if code in (408, 429) or 500 <= code < 600:
        retry_after = retry_after_of(reply, now)
        detail = f"{prefix}{reason}"
        if retry_after is not None:
            detail += f" (Retry-After {retry_after.total_seconds():g}s)"
        return "transient_failure", detail, retry_after
    if 300 <= code < 400:
        return "permanent_failure", f"{prefix}: redirects are not followed; configure the final URL", None
    return "permanent_failure", f"{prefix}{reason}", None
