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
import email.utils
import math
import re
import socket
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from standardwebhooks import Webhook

from storeflow.channels.base import Closable, DeliveryResult, DeliveryStatus, OutboundMessage
from storeflow.channels.base import timed_result as _result
from storeflow.channels.netguard import Destination, Resolver, resolve_destination
from storeflow.clock import utc
from storeflow.errors import BlockedDestinationError, ConfigError, DeliveryError
from storeflow.jsonenc import dumps as dumps_compact

METHODS = frozenset({"POST", "PUT", "PATCH"})
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 300.0
MAX_RETRY_AFTER = timedelta(hours=24)
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
        self._allow_private = allow_private
        self._allowed_hosts = tuple(allowed_hosts)
        self._resolver = resolver
        self._user_agent = user_agent
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(follow_redirects=False, trust_env=False)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def send(self, message: OutboundMessage, now: datetime) -> DeliveryResult:
        started = time.perf_counter()
        try:
            prepared = self._prepare(message, utc(now))
        except _Refused as exc:
            return _result("permanent_failure", str(exc), started)
        try:
            destination = resolve_destination(
                prepared.url,
                allow_private=self._allow_private,
                allowed_hosts=self._allowed_hosts,
                resolver=self._resolver,
            )
        except BlockedDestinationError as exc:
            return _result("permanent_failure", _with_notes(str(exc), prepared.notes), started)
        except DeliveryError as exc:
            return _result("transient_failure", _with_notes(str(exc), prepared.notes), started)
        return self._deliver(prepared, destination, utc(now), started)

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

    # -- sending --------------------------------------------------------------------------------

    def _deliver(
        self, prepared: _Prepared, destination: Destination, now: datetime, started: float
    ) -> DeliveryResult:
        where = destination.netloc
        deadline = started + prepared.timeout_s
        last_error: httpx.ConnectError | None = None
        for url, headers, extensions in _targets(prepared, destination):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            request = self._client.build_request(
                prepared.method,
                url,
                headers=headers,
                content=prepared.content,
                timeout=httpx.Timeout(remaining),
                extensions=extensions,
            )
            try:
                response = self._client.send(request, stream=True, follow_redirects=False)
            except httpx.ConnectError as exc:
                last_error = exc  # nothing was sent; try the next checked address
                continue
            except httpx.TimeoutException as exc:
                detail = f"timed out after {prepared.timeout_s:g}s {_phase(exc)} {where}"
                return _result("transient_failure", _with_notes(detail, prepared.notes), started)
            except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
                detail = f"request to {where} refused by the HTTP client: {exc}"
                return _result("permanent_failure", _with_notes(detail, prepared.notes), started)
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__} talking to {where}: {exc}"
                return _result("transient_failure", _with_notes(detail, prepared.notes), started)
            try:
                body = _read_capped(response, deadline)
            finally:
                response.close()
            status, detail, retry_after = _classify(response, where, now)
            return _result(
                status,
                _with_notes(detail, prepared.notes),
                started,
                response_status=response.status_code,
                response_body=body.decode("utf-8", errors="replace"),
                retry_after=retry_after,
            )
        if last_error is None:
            detail = f"timed out after {prepared.timeout_s:g}s connecting to {where}"
        else:
            detail = f"could not connect to {where}: {last_error}"
        return _result("transient_failure", _with_notes(detail, prepared.notes), started)


def _targets(
    prepared: _Prepared, destination: Destination
) -> list[tuple[httpx.URL, httpx.Headers, dict[str, Any]]]:
    """One request target per checked address (pinned), or the URL as is for an allow-listed host."""
    if not destination.addresses:
        return [(destination.url, prepared.headers, {})]
    headers = httpx.Headers(prepared.headers)
    headers["host"] = destination.netloc
    headers["connection"] = "close"
    extensions: dict[str, Any] = {}
    if destination.scheme == "https" and not destination.host_is_ip:
        extensions["sni_hostname"] = destination.host  # also the name the certificate is checked against
    return [(destination.url.copy_with(host=ip), headers, extensions) for ip in destination.addresses]


def _read_capped(response: httpx.Response, deadline: float) -> bytes:
    """Up to MAX_RESPONSE_READ_BYTES of the raw body, stopping at the deadline or a broken stream."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size >= MAX_RESPONSE_READ_BYTES or time.perf_counter() >= deadline:
                break
    except httpx.HTTPError:
        pass  # the status is what counts; keep what arrived
    return b"".join(chunks)[:MAX_RESPONSE_READ_BYTES]


def _classify(
    response: httpx.Response, where: str, now: datetime
) -> tuple[DeliveryStatus, str, timedelta | None]:
    code = response.status_code
    prefix = f"HTTP {code} from {where}"
    if 200 <= code < 300:
        return "sent", prefix, None
    if code in TRANSIENT_STATUSES or 500 <= code < 600:
        retry_after = None
        if code in (429, 503):
            retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        detail = f"{prefix}: {_STATUS_REASONS.get(code, 'server error')}"
        if retry_after is not None:
            detail += f" (Retry-After {retry_after.total_seconds():g}s)"
        return "transient_failure", detail, retry_after
    if 300 <= code < 400:
        detail = f"{prefix}: redirects are not followed; point the webhook at the final URL"
        target = _origin_of(response.headers.get("location"))
        if target:
            detail += f" (redirects to {target})"
        return "permanent_failure", detail, None
    if 400 <= code < 500:
        return "permanent_failure", f"{prefix}: the receiver rejected the request", None
    return "permanent_failure", f"{prefix}: unexpected status", None


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (delay-seconds or HTTP-date) as a delay, capped at MAX_RETRY_AFTER."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, math.ceil((when - utc(now)).total_seconds()))
    return timedelta(seconds=min(seconds, MAX_RETRY_AFTER.total_seconds()))


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


def _phase(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting to"
    if isinstance(exc, httpx.WriteTimeout):
        return "sending to"
    if isinstance(exc, httpx.PoolTimeout):
        return "waiting for a connection to"
    return "waiting for the response from"


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


