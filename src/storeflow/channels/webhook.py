"""The webhook channel: one signed JSON request per message, following Standard Webhooks.

Every request carries ``webhook-id`` (the message id, identical on every retry so the receiver can
deduplicate), ``webhook-timestamp`` (from the injected ``now``) and ``webhook-signature``
(``standardwebhooks.Webhook(secret).sign``). Unsigned requests are never sent.

Payload (all keys but ``url`` and ``body`` optional; unknown keys are refused)::

    {"url": "https://...", "method": "POST" | "PUT" | "PATCH", "headers": {"X-Shop": "acme"},
     "body": <JSON-able>, "timeout_s": 10.0, "secret": "<name of a configured secret>"}

The destination passes :mod:`storeflow.channels.netguard` on every attempt, and the request goes to
an address that was checked (the name is not resolved again), with the original Host header and TLS
server name, over a fresh connection (``Connection: close``) so a pooled TLS session is never reused
for a different host name. Redirects are not followed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
import socket
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from standardwebhooks import Webhook

from storeflow.channels._http import Failed, Guard, Reply, check, exchange, new_client, retry_after_of
from storeflow.channels.base import Closable, DeliveryResult, DeliveryStatus, OutboundMessage
from storeflow.channels.base import timed_result as _result
from storeflow.channels.netguard import Resolver, resolve_destination
from storeflow.clock import utc
from storeflow.errors import ConfigError
from storeflow.jsonenc import dumps as dumps_compact

METHODS = frozenset({"POST", "PUT", "PATCH"})
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 300.0
MAX_RESPONSE_READ_BYTES = 8 * 1024
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
# Set by the channel; a user header with one of these names is dropped (and the drop noted in detail).
RESERVED_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "content-length",
        "transfer-encoding",
        "host",
        "connection",
        "accept-encoding",
    }
)
_PAYLOAD_KEYS = frozenset({"url", "method", "headers", "body", "timeout_s", "secret"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")
_STATUS_REASONS = {408: "request timeout", 409: "conflict", 425: "too early", 429: "rate limited"}


class _Refused(Exception):
    """The message itself is unusable: a permanent failure with this detail."""


@dataclass(frozen=True)
class _Prepared:
    url: str
    method: str
    headers: httpx.Headers
    content: bytes
    timeout_s: float
    notes: tuple[str, ...]


class WebhookChannel(Closable):
    name: str = "webhook"
    idempotent: bool = True  # webhook-id is stable across attempts (Standard Webhooks)

    def __init__(
        self,
        secrets: Mapping[str, str],
        default_secret: str | None,
        *,
        allow_private: bool = False,
        allowed_hosts: Collection[str] = (),
        client: httpx.Client | None = None,
        user_agent: str = "storeflow/0.1",
        resolver: Resolver = socket.getaddrinfo,
    ) -> None:
        """Secrets are ``whsec_`` + base64 (Standard Webhooks); a malformed one raises ConfigError.

        ``client`` is used as given (redirects are disabled per request); without one the channel
        owns a client that ignores proxy/netrc environment settings, closed by :meth:`close`.
        """
        self._signers = {name: _signer(value, f"webhook secret {name!r}") for name, value in secrets.items()}
        self._default_signer = (
            _signer(default_secret, "the default webhook secret") if default_secret is not None else None
        )
        self._guard: Guard = functools.partial(
            resolve_destination, allow_private=allow_private, allowed_hosts=tuple(allowed_hosts), resolver=resolver
        )
        self._user_agent = user_agent
        self._owns_client = client is None
        self._client = client if client is not None else new_client()

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def send(self, message: OutboundMessage, now: datetime) -> DeliveryResult:
        started = time.perf_counter()
        try:
            prepared = self._prepare(message, utc(now))
        except _Refused as exc:
            return _result("permanent_failure", str(exc), started)
        destination = check(prepared.url, self._guard)
        if isinstance(destination, Failed):
            return _result(destination.status, _with_notes(destination.detail, prepared.notes), started)
        reply = exchange(self._client, destination, method=prepared.method, headers=prepared.headers,
                         content=prepared.content, timeout_s=prepared.timeout_s, started=started,
                         max_read=MAX_RESPONSE_READ_BYTES)
        if isinstance(reply, Failed):
            return _result(reply.status, _with_notes(reply.detail, prepared.notes), started)
        status, detail, retry_after = _classify(reply, destination.netloc, utc(now))
        return _result(status, _with_notes(detail, prepared.notes), started, response_status=reply.status_code,
                       response_body=reply.body.decode("utf-8", errors="replace"), retry_after=retry_after)

    # -- building the request -------------------------------------------------------------------

    def _prepare(self, message: OutboundMessage, now: datetime) -> _Prepared:
        if message.channel != self.name:
            raise _Refused(f"message for channel {message.channel!r} was given to the webhook channel")
        payload = message.payload
        unknown = sorted(set(payload) - _PAYLOAD_KEYS)
        if unknown:
            raise _Refused(f"unknown webhook payload keys: {', '.join(map(str, unknown))}")
        url = payload.get("url")
        if not isinstance(url, str) or not url:
            raise _Refused("webhook payload needs a non-empty 'url' string")
        method = payload.get("method", "POST")
        if not isinstance(method, str) or method.upper() not in METHODS:
            raise _Refused(f"webhook method must be one of {', '.join(sorted(METHODS))}, got {method!r}")
        if "body" not in payload:
            raise _Refused("webhook payload needs a 'body' (use null for an empty JSON body)")
        timeout_s = _timeout(payload.get("timeout_s", DEFAULT_TIMEOUT_S))
        signer = self._signer_for(payload.get("secret"))
        if not _HEADER_VALUE.fullmatch(message.id):
            raise _Refused("message id is not a valid header value (printable ASCII only)")
        try:
            body = dumps_compact(payload["body"])
        except (TypeError, ValueError, RecursionError) as exc:
            raise _Refused(f"webhook body is not JSON-serializable: {exc}") from exc

        headers, dropped = self._headers(payload.get("headers"))
        headers["content-type"] = "application/json"
        headers["webhook-id"] = message.id
        headers["webhook-timestamp"] = str(math.floor(now.timestamp()))
        headers["webhook-signature"] = signer.sign(message.id, now, body)
        notes = (f"ignored reserved headers: {', '.join(dropped)}",) if dropped else ()
        return _Prepared(url, method.upper(), headers, body.encode("utf-8"), timeout_s, notes)

    def _signer_for(self, secret_name: object) -> Webhook:
        if secret_name is None:
            if self._default_signer is None:
                raise _Refused("no signing secret configured (set a default webhook secret or name one)")
            return self._default_signer
        if not isinstance(secret_name, str):
            raise _Refused("webhook 'secret' must be the name of a configured secret")
        signer = self._signers.get(secret_name)
        if signer is None:
            raise _Refused(f"signing secret {secret_name!r} is not configured")
        return signer

    def _headers(self, given: object) -> tuple[httpx.Headers, list[str]]:
        headers = httpx.Headers({"user-agent": self._user_agent, "accept-encoding": "identity"})
        if given is None:
            return headers, []
        if not isinstance(given, Mapping):
            raise _Refused("webhook 'headers' must be a mapping of header names to strings")
        dropped: list[str] = []
        for key, value in given.items():
            if not isinstance(key, str) or not _TOKEN.fullmatch(key):
                raise _Refused(f"invalid header name {key!r}")
            if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
                raise _Refused(f"header {key!r} needs a printable ASCII string value")
            if key.lower() in RESERVED_HEADERS:
                dropped.append(key.lower())
            else:
                headers[key] = value
        return headers, sorted(set(dropped))


def _classify(reply: Reply, where: str, now: datetime) -> tuple[DeliveryStatus, str, timedelta | None]:
    code = reply.status_code
    prefix = f"HTTP {code} from {where}"
    if 200 <= code < 300:
        return "sent", prefix, None
    if code in TRANSIENT_STATUSES or 500 <= code < 600:
        retry_after = retry_after_of(reply, now)
        detail = f"{prefix}: {_STATUS_REASONS.get(code, 'server error')}"
        if retry_after is not None:
            detail += f" (Retry-After {retry_after.total_seconds():g}s)"
        return "transient_failure", detail, retry_after
    if 300 <= code < 400:
        detail = f"{prefix}: redirects are not followed; point the webhook at the final URL"
        target = _origin_of(reply.headers.get("location"))
        if target:
            detail += f" (redirects to {target})"
        return "permanent_failure", detail, None
    if 400 <= code < 500:
        return "permanent_failure", f"{prefix}: the receiver rejected the request", None
    return "permanent_failure", f"{prefix}: unexpected status", None


def _origin_of(location: str | None) -> str | None:
    """Scheme and host of a redirect target: never its path or query, which may carry tokens."""
    if not location:
        return None
    try:
        url = httpx.URL(location)
    except httpx.InvalidURL:
        return None
    if not url.is_absolute_url:
        return None
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TIMEOUT_S:
        raise _Refused(f"webhook timeout_s must be a number in (0, {MAX_TIMEOUT_S:g}], got {value!r}")
    return float(value)


def _signer(secret: str, label: str) -> Webhook:
    """A Standard Webhooks signer for a ``whsec_`` secret; ConfigError (never echoing it) if malformed."""
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        raise ConfigError(f"{label} must be 'whsec_' followed by base64 (Standard Webhooks format)")
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{label} is not valid base64 after 'whsec_'") from None
    if not key:
        raise ConfigError(f"{label} is empty")
    return Webhook(secret)


def _with_notes(detail: str, notes: tuple[str, ...]) -> str:
    return "; ".join((detail, *notes))


