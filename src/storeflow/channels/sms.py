"""The SMS channel: one text per outbound message, through a provider (Twilio or a generic HTTP gateway).

Payload (``to`` and ``text`` required, unknown keys refused): ``{"to": "+5511987654321", "from": str |
None, "text": str, "status_callback": "https://..." | None, "kind": str}`` (``kind`` is engine metadata,
ignored). ``to`` is normalized to E.164 by :func:`~storeflow.model.profiles.normalize_phone` in the
channel's default region (an invalid number is a permanent failure and nothing is sent); ``from``
falls back to ``default_from``, then to the provider's sender. Every result detail ends with
``segments=N, encoding=GSM-7|UCS-2``.

The provider URL passes :mod:`storeflow.channels.netguard` on every attempt and the request goes to a
checked address (Host header and TLS server name kept), as for webhooks. Redirects are not followed.

``idempotent`` tells the dispatcher whether the provider deduplicates re-sends (the generic provider
gets the message id as ``Idempotency-Key``; Twilio has no such key, see :class:`TwilioProvider`).
"""

from __future__ import annotations

import abc
import base64
import functools
import json
import re
import socket
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlencode

import httpx
from pydantic import SecretStr

from storeflow.channels._http import Failed, Guard, Reply, check, client_error, exchange, new_client, retry_after_of
from storeflow.channels.base import Closable, DeliveryResult, DeliveryStatus, OutboundMessage
from storeflow.channels.base import timed_result as _result
from storeflow.channels.netguard import Resolver, resolve_destination
from storeflow.channels.sms_segments import count_segments
from storeflow.clock import utc
from storeflow.errors import ConfigError
from storeflow.model.profiles import normalize_phone

if TYPE_CHECKING:
    from storeflow.settings import Settings

DEFAULT_TIMEOUT_S = 10.0
USER_AGENT = "storeflow/0.1"
MAX_RESPONSE_READ_BYTES = 64 * 1024  # Twilio echoes the text back; a long UCS-2 text is several KB
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
TWILIO_TRANSIENT_CODES = frozenset({21611})  # sent with HTTP 400, but only means "sender queue full"
_PAYLOAD_KEYS = frozenset({"to", "from", "text", "status_callback", "kind"})
_HEADER_VALUE = re.compile(r"[\x20-\x7e]+")
_MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")


@dataclass(frozen=True)
class SmsRequest:
    """One text for a provider. ``to`` is E.164; ``sender`` None means the provider's default."""

    message_id: str
    to: str
    sender: str | None
    text: str
    status_callback: str | None = None


class SmsProvider(Protocol):
    name: str
    idempotent: bool  # the provider deduplicates a re-sent message by its id

    def submit(self, sms: SmsRequest, guard: Guard, now: datetime) -> DeliveryResult:
        """Send one text to the URL ``guard`` approves; never raises for delivery problems."""
        ...

    def close(self) -> None: ...


class _Refused(Exception):
    """The message itself is unusable: a permanent failure with this detail."""


class SmsChannel(Closable):
    name: str = "sms"

    def __init__(
        self, provider: SmsProvider, *, default_from: str | None, allow_private: bool = False,
        allowed_hosts: Collection[str] = (), default_region: str = "US", resolver: Resolver = socket.getaddrinfo,
    ) -> None:  # fmt: skip
        self.provider = provider
        self._default_from = default_from or None
        self._default_region = default_region
        self._guard: Guard = functools.partial(
            resolve_destination, allow_private=allow_private, allowed_hosts=tuple(allowed_hosts), resolver=resolver
        )

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.Client | None = None) -> SmsChannel | None:
        """The configured channel, or None when ``sms_provider`` is "none"; ConfigError if incomplete.

        The provider URL follows the webhook network policy (``webhook_allow_private``,
        ``webhook_allowed_hosts``); numbers without country code use ``default_phone_region``.
        """
        provider: SmsProvider
        if settings.sms_provider == "none":
            return None
        if settings.sms_provider == "twilio":
            sid, token, sender = settings.twilio_account_sid, _secret(settings.twilio_auth_token), settings.sms_from
            if not (sid and token and sender):
                raise _missing(settings, "twilio_account_sid", "twilio_auth_token", "sms_from")
            provider = TwilioProvider(sid, token, sender, base_url=settings.twilio_base_url, client=client)
        else:
            url, bearer = settings.sms_http_url, _secret(settings.sms_http_token)
            if not (url and bearer):
                raise _missing(settings, "sms_http_url", "sms_http_token")
            provider = HttpProvider(url, bearer, client=client)
        return cls(
            provider, default_from=settings.sms_from, allow_private=settings.webhook_allow_private,
            allowed_hosts=settings.webhook_allowed_hosts, default_region=settings.default_phone_region,
        )  # fmt: skip

    @property
    def idempotent(self) -> bool:
        """Whether a re-send is deduplicated (the dispatcher re-sends after a crash only if so)."""
        return self.provider.idempotent

    def close(self) -> None:
        self.provider.close()

    def send(self, message: OutboundMessage, now: datetime) -> DeliveryResult:
        started = time.perf_counter()
        text = message.payload.get("text")
        info = count_segments(text) if isinstance(text, str) and text else None
        note = f"segments={info.segments}, encoding={info.encoding}" if info else ""
        try:
            sms = self._prepare(message)
        except _Refused as exc:
            return _result("permanent_failure", "; ".join(filter(None, (str(exc), note))), started)
        result = self.provider.submit(sms, self._guard, utc(now))
        return replace(result, detail=f"{result.detail}; {note}")

    def _prepare(self, message: OutboundMessage) -> SmsRequest:
        if message.channel != self.name:
            raise _Refused(f"message for channel {message.channel!r} was given to the sms channel")
        payload = message.payload
        unknown = sorted(map(str, set(payload) - _PAYLOAD_KEYS))
        if unknown:
            raise _Refused(f"unknown sms payload keys: {', '.join(unknown)}")
        text, to, sender, callback = (payload.get(key) for key in ("text", "to", "from", "status_callback"))
        if not isinstance(text, str) or not text:
            raise _Refused("sms payload needs a non-empty 'text' string")
        if not isinstance(to, str) or not to.strip():
            raise _Refused("sms payload needs a 'to' phone number string")
        if sender is not None and (not isinstance(sender, str) or not sender.strip()):
            raise _Refused("sms 'from' must be a non-empty string or null")
        if callback is not None and not _is_http_url(callback):
            raise _Refused("sms 'status_callback' must be an absolute http(s) URL or null")
        if not _HEADER_VALUE.fullmatch(message.id):
            raise _Refused("message id is not a valid header value (printable ASCII only)")
        try:
            number = normalize_phone(to, self._default_region)
        except ValueError as exc:
            raise _Refused(f"nothing sent: {exc}") from None
        sender = sender.strip() if isinstance(sender, str) else self._default_from
        return SmsRequest(message.id, number, sender, text, callback)


# -- providers -----------------------------------------------------------------------------------


class _HttpSmsProvider(abc.ABC):
    """One POST per text to a netguard-checked address. 2xx is sent; 408/409/425/429/5xx, network errors
    and timeouts are transient (Retry-After kept for 429/503); 3xx and other 4xx are permanent."""

    name: str
    idempotent: bool
    _id_key: str  # the message id's key in a success body

    def __init__(self, url: str, client: httpx.Client | None, timeout_s: float) -> None:
        if not 0 < timeout_s <= 300:
            raise ConfigError(f"sms provider timeout must be in (0, 300] seconds, got {timeout_s!r}")
        self._url = url
        self._timeout_s = timeout_s
        self._owns_client = client is None
        self._client = client if client is not None else new_client()

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    @abc.abstractmethod
    def _build(self, sms: SmsRequest) -> tuple[dict[str, str], bytes]:
        """Headers and body of the request."""

    @abc.abstractmethod
    def _error(self, data: Any) -> tuple[str | None, bool]:
        """The provider's error text from an error body, and whether it is transient whatever the status."""

    def submit(self, sms: SmsRequest, guard: Guard, now: datetime) -> DeliveryResult:
        started = time.perf_counter()
        own_headers, content = self._build(sms)
        destination = check(self._url, guard)
        if isinstance(destination, Failed):
            return _result(destination.status, destination.detail, started)
        headers = {"user-agent": USER_AGENT, "accept": "application/json", **own_headers}
        reply = exchange(self._client, destination, method="POST", headers=headers, content=content,
                         timeout_s=self._timeout_s, started=started, max_read=MAX_RESPONSE_READ_BYTES,
                         on_error=self._client_error)
        if isinstance(reply, Failed):
            return _result(reply.status, reply.detail, started)
        return self._classify(reply, destination.netloc, now, started)

    def _client_error(self, exc: httpx.HTTPError, where: str) -> Failed:
        if not isinstance(exc, httpx.TimeoutException):
            return client_error(exc, where, self._timeout_s)
        detail = f"timed out after {self._timeout_s:g}s talking to {where}"
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return Failed("transient_failure", detail)  # nothing was sent
        if not self.idempotent:
            # The provider may have accepted the text; without an idempotency key a retry could send it
            # twice, so the outcome is recorded as unknown, not retried.
            return Failed("permanent_failure", detail + ": delivery state unknown; not retried, to avoid a duplicate")
        return Failed("transient_failure", detail + " (retried with the same Idempotency-Key)")

    def _classify(self, reply: Reply, where: str, now: datetime, started: float) -> DeliveryResult:
        code, body = reply.status_code, reply.body
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            data = None
        detail = f"HTTP {code} from {where}"
        status: DeliveryStatus = "permanent_failure"
        provider_id: str | None = None
        retry_after: timedelta | None = None
        if 200 <= code < 300:
            status = "sent"
            value = data.get(self._id_key) if isinstance(data, dict) else None
            if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
                provider_id = str(value)
            if provider_id is None:
                detail += ": accepted, but the response carried no message id"
        elif 300 <= code < 400:
            detail += ": redirects are not followed; configure the provider's final URL"
        else:
            error, always_transient = self._error(data)
            if always_transient or code in TRANSIENT_STATUSES or 500 <= code < 600:
                status = "transient_failure"
            retry_after = retry_after_of(reply, now)
            fallback = "the provider rejected the request" if status != "transient_failure" else "try again later"
            detail += f": {error or fallback}"
            if retry_after is not None:
                detail += f" (Retry-After {retry_after.total_seconds():g}s)"
        text = body.decode("utf-8", errors="replace")
        return _result(status, detail, started, response_status=code, response_body=text, provider_id=provider_id,
                       retry_after=retry_after)  # fmt: skip


class TwilioProvider(_HttpSmsProvider):
    """Twilio Programmable Messaging: ``POST {base_url}/2010-04-01/Accounts/{sid}/Messages.json``.

    Form fields ``To``, ``From`` (``MessagingServiceSid`` for an ``MG...`` sender), ``Body`` and
    ``StatusCallback`` when given; HTTP Basic auth with the account SID and auth token. 201 with the
    message ``sid`` is sent. Twilio's error ``code`` and ``message`` go into the detail (e.g. 21211,
    invalid 'To'); error 21611 (the sender's queue is full) is transient although sent with a 400.

    Idempotency: Twilio's Messages API takes no idempotency key, so none is sent and ``idempotent`` is
    False (the dispatcher then never re-sends after a crash mid-send). The outbox makes one send per
    run step, but a response timeout or dropped connection after Twilio accepted the text is transient,
    and its retry sends the text a second time.
    """

    name = "twilio"
    idempotent = False
    _id_key = "sid"

    def __init__(
        self, account_sid: str, auth_token: str, from_number: str, base_url: str = "https://api.twilio.com",
        client: httpx.Client | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:  # fmt: skip
        if not account_sid or not auth_token or not from_number:
            raise ConfigError("Twilio needs an account SID, an auth token and a sender (from number)")
        if not _is_http_url(base_url):
            raise ConfigError(f"the Twilio base URL must be an absolute http(s) URL, got {base_url!r}")
        path = f"/2010-04-01/Accounts/{quote(account_sid, safe='')}/Messages.json"
        super().__init__(base_url.rstrip("/") + path, client, timeout_s)
        self.from_number = from_number
        self._authorization = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")

    def _build(self, sms: SmsRequest) -> tuple[dict[str, str], bytes]:
        sender = sms.sender or self.from_number
        form = {"To": sms.to, "Body": sms.text}
        form["MessagingServiceSid" if _MESSAGING_SERVICE_SID.fullmatch(sender) else "From"] = sender
        if sms.status_callback:
            form["StatusCallback"] = sms.status_callback
        headers = {"authorization": self._authorization, "content-type": "application/x-www-form-urlencoded"}
        return headers, urlencode(form).encode("ascii")

    def _error(self, data: Any) -> tuple[str | None, bool]:
        if not isinstance(data, dict):
            return None, False
        code, message = data.get("code"), data.get("message")
        parts = (f"Twilio error {code}" if code is not None else "", str(message)[:300] if message else "")
        return ": ".join(filter(None, parts)) or None, isinstance(code, int) and code in TWILIO_TRANSIENT_CODES


class HttpProvider(_HttpSmsProvider):
    """A generic gateway: ``POST url`` with JSON ``{"to", "from", "text", "message_id"}`` (and
    ``"status_callback"`` when given), ``Authorization: Bearer <token>`` and ``Idempotency-Key: <message
    id>``, the same on every retry. A 2xx response's JSON ``id`` is the provider id; an error body's
    ``error`` or ``message`` string goes into the detail."""

    name = "http"
    idempotent = True
    _id_key = "id"

    def __init__(
        self, url: str, token: str, client: httpx.Client | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        if not _is_http_url(url):
            raise ConfigError(f"the sms HTTP provider URL must be an absolute http(s) URL, got {url!r}")
        if not token or not _HEADER_VALUE.fullmatch(token):
            raise ConfigError("the sms HTTP provider token must be non-empty printable ASCII")
        super().__init__(url, client, timeout_s)
        self._authorization = f"Bearer {token}"

    def _build(self, sms: SmsRequest) -> tuple[dict[str, str], bytes]:
        body: dict[str, Any] = {"to": sms.to, "from": sms.sender, "text": sms.text, "message_id": sms.message_id}
        if sms.status_callback:
            body["status_callback"] = sms.status_callback
        headers = {"authorization": self._authorization, "idempotency-key": sms.message_id}
        return headers | {"content-type": "application/json"}, json.dumps(body, ensure_ascii=False).encode()

    def _error(self, data: Any) -> tuple[str | None, bool]:
        texts = [data.get(key) for key in ("error", "message")] if isinstance(data, dict) else []
        return next((text[:300] for text in texts if isinstance(text, str) and text), None), False


# -- helpers -------------------------------------------------------------------------------------


def _is_http_url(value: object) -> bool:
    try:
        url = httpx.URL(value) if isinstance(value, str) else None
    except httpx.InvalidURL:
        return False
    return url is not None and url.scheme in ("http", "https") and bool(url.host)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _missing(settings: Settings, *names: str) -> ConfigError:
    unset = [n for n in names if not (_secret(v) if isinstance(v := getattr(settings, n), SecretStr) else v)]
    listed = ", ".join(f"STOREFLOW_{name.upper()}" for name in unset)
    return ConfigError(f"sms_provider={settings.sms_provider!r} needs {listed}")


