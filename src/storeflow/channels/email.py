"""The email channel: one rendered message per send, submitted over SMTP through a connection pool.

Payload (built and rendered by the engine; ``to`` and ``subject`` and one of ``text``/``html`` needed)::

    {"from": "Shop <shop@example.com>" | None, "to": "ana@example.com", "reply_to": str | None,
     "subject": "...", "html": "<p>...</p>" | None, "text": "..." | None,
     "headers": {"List-Unsubscribe": "<https://...>", ...}, "message_id": "<id@domain>" | None,
     "kind": "transactional" | "marketing" | "team"}   # kind: informational, not used here

The message is UTF-8 (``multipart/alternative`` when there is both text and HTML, bodies in 7-bit
transfer encodings), with ``Date`` from the injected ``now`` and ``Message-ID`` from the payload or
:func:`email.utils.make_msgid`; the Message-ID is the result's ``provider_id``.

Classification: 250 to DATA is ``sent``; a 5xx reply to MAIL, RCPT or DATA is ``permanent_failure``;
4xx replies, timeouts, refused or reset connections and disconnects are ``transient_failure``, and so
is any failure while connecting, starting TLS or logging in (a server or configuration problem, not
one of this message). A message the channel refuses to build (invalid address, CR/LF in a header,
missing body) is a permanent failure and nothing is sent.

A pooled connection the server dropped while idle is replaced and the message sent again on a fresh
connection, but only when the failure came before DATA (so the server cannot have accepted it).
"""

from __future__ import annotations

import email.policy
import email.utils
import functools
import re
import smtplib
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import Address, AddressHeader, BaseHeader, HeaderRegistry
from typing import Any

from storeflow.channels import mime
from storeflow.channels.base import Closable, DeliveryResult, DeliveryStatus, OutboundMessage
from storeflow.channels.smtp_pool import PooledConnection, SmtpConfig, SmtpPool
from storeflow.clock import utc
from storeflow.errors import ConfigError, DeliveryError

_PAYLOAD_KEYS = frozenset({"from", "to", "reply_to", "subject", "html", "text", "headers", "message_id", "kind"})
# Set by the channel from the payload; a payload header with one of these names is refused.
RESERVED_HEADERS = frozenset(
    {
        "from", "sender", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "mime-version",
        "content-type", "content-transfer-encoding", "content-disposition", "return-path", "received",
    }
)  # fmt: skip
_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")  # printable ASCII except ':' (RFC 5322 ftext)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # any control character but TAB
_MSG_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")  # printable ASCII, no '<', '>' or spaces
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@([a-z0-9.-]+)")
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_MAX_HEADER_LINE = 998
_FOLD_AT = 78


class _HeaderClasses(HeaderRegistry):
    """A HeaderRegistry that reuses header classes: the stdlib builds a new class for every header,
    which was most of the cost of building a message. Bounded, as header names come from payloads."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = super().__getitem__(name)
            if len(self._classes) < 256:
                self._classes[key] = cls
        return cls


_REGISTRY = _HeaderClasses()
# Bodies in quoted-printable/base64 (7-bit clean), headers RFC 2047-encoded where needed, CRLF;
# refold_source="none" keeps the pre-folded raw headers as they are.
_POLICY = email.policy.SMTP.clone(cte_type="7bit", refold_source="none", header_factory=_REGISTRY)
_UTF8_POLICY = _POLICY.clone(utf8=True)


class _Refused(Exception):
    """The message itself is unusable: a permanent failure with this detail."""


@dataclass(frozen=True)
class _Prepared:
    data: bytes
    sender: str  # envelope MAIL FROM
    recipient: str  # envelope RCPT TO
    message_id: str
    smtputf8: bool


@dataclass(frozen=True)
class _Outcome:
    status: DeliveryStatus
    detail: str
    code: int | None = None
    reply: str | None = None
    reusable: bool = True  # the connection may serve the next message
    retry_fresh: bool = False  # nothing reached the server; worth one more try on a new connection


class EmailChannel(Closable):
    name: str = "email"

    def __init__(
        self,
        config: SmtpConfig,
        *,
        default_from: str,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        """``default_from`` is used when the payload has no ``from``; an invalid one raises ConfigError.

        ``ssl_context`` (for starttls/tls) defaults to ``ssl.create_default_context()``.
        """
        try:
            self._default_from = _address(default_from, "email_from")
        except _Refused as exc:
            raise ConfigError(f"{exc} (STOREFLOW_EMAIL_FROM)") from None
        self.config = config
        self.pool = SmtpPool(config, ssl_context=ssl_context, local_hostname=local_hostname)

    def close(self) -> None:
        self.pool.close()

    def send(self, message: OutboundMessage, now: datetime) -> DeliveryResult:
        started = time.perf_counter()
        try:
            prepared = self._prepare(message, utc(now))
        except _Refused as exc:
            return _result(_Outcome("permanent_failure", str(exc)), started)
        return self._deliver(prepared, started)

    # -- building the message -------------------------------------------------------------------

    def _prepare(self, message: OutboundMessage, now: datetime) -> _Prepared:
        if message.channel != self.name:
            raise _Refused(f"message for channel {message.channel!r} was given to the email channel")
        payload = message.payload
        unknown = sorted(map(str, set(payload) - _PAYLOAD_KEYS))
        if unknown:
            raise _Refused(f"unknown email payload keys: {', '.join(unknown)}")
        sender = self._default_from if payload.get("from") is None else _address(payload["from"], "from")
        recipient = _address(payload.get("to"), "to")
        reply_to = None if payload.get("reply_to") is None else _address(payload["reply_to"], "reply_to")
        subject = payload.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            raise _Refused("email payload needs a non-empty 'subject' string")
        _check_value("Subject", subject)
        text, html = _body(payload, "text"), _body(payload, "html")
        if text is None and html is None:
            raise _Refused("email payload needs a 'text' or an 'html' body (or both)")
        message_id = _message_id(payload.get("message_id"), sender)

        # ASCII header values are written pre-formatted: the email package's header objects cost
        # about half a millisecond each, and they would RFC 2047-encode a long URL in
        # List-Unsubscribe, which breaks one-click unsubscribe. Non-ASCII values go through them.
        # The bodies and MIME structure are written by ``mime.build`` (the email package's
        # generator cost more than the rest of a send).
        smtputf8 = not all(a.username.isascii() for a in (sender, recipient, reply_to) if a is not None)
        policy = _UTF8_POLICY if smtputf8 else _POLICY
        try:
            lines = [_address_line("From", sender, policy), _address_line("To", recipient, policy)]
            if reply_to is not None:
                lines.append(_address_line("Reply-To", reply_to, policy))
            lines.append(_text_line("Subject", subject, policy))
            lines.append(f"Date: {email.utils.format_datetime(now)}")
            lines.append(f"Message-ID: {message_id}")
            lines.extend(_text_line(name, value, policy) for name, value in _headers(payload.get("headers")))
            data = mime.build(lines, text, html, utf8=smtputf8)
        except (ValueError, TypeError, UnicodeError, LookupError) as exc:
            raise _Refused(f"could not build the email: {exc}") from exc
        return _Prepared(data, sender.addr_spec, recipient.addr_spec, message_id, smtputf8)

    # -- sending --------------------------------------------------------------------------------

    def _deliver(self, prepared: _Prepared, started: float) -> DeliveryResult:
        where = self.config.where
        while True:
            try:
                conn = self.pool.acquire()
            except DeliveryError as exc:
                return _result(_Outcome("transient_failure", str(exc)), started)
            except (smtplib.SMTPException, OSError) as exc:
                return _result(_setup_failure(exc, where), started)
            try:
                outcome = _transact(conn, prepared, where)
            except BaseException:
                self.pool.release(conn, reusable=False)  # never leak a connection or its slot
                raise
            self.pool.release(conn, reusable=outcome.reusable)
            if outcome.retry_fresh and conn.reused:
                continue  # the server dropped an idle pooled connection; a fresh one may do
            return _result(outcome, started, provider_id=prepared.message_id)


def _transact(conn: PooledConnection, prepared: _Prepared, where: str) -> _Outcome:
    smtp = conn.smtp
    stage = "MAIL FROM"
    try:
        options: list[str] = []
        if prepared.smtputf8:
            if not smtp.has_extn("smtputf8"):
                return _Outcome(
                    "permanent_failure",
                    f"{where} does not support SMTPUTF8, needed for an address with a non-ASCII local part",
                )
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        code, reply = _envelope(smtp, "mail", "from", prepared.sender, options)
        if code != 250:
            return _refused(smtp, stage, code, reply, where, conn.reused)
        stage = "RCPT TO"
        code, reply = _envelope(smtp, "rcpt", "to", prepared.recipient, [])
        if code not in (250, 251):
            return _refused(smtp, stage, code, reply, where, conn.reused)
        stage = "DATA"
        code, reply = smtp.data(prepared.data)
    except smtplib.SMTPServerDisconnected as exc:
        before_data = stage != "DATA"
        detail = f"{where} closed the connection during {stage}: {exc}"
        return _Outcome("transient_failure", detail, reusable=False, retry_fresh=before_data)
    except smtplib.SMTPResponseException as exc:  # the DATA command itself refused (not 354)
        return _refused(smtp, stage, exc.smtp_code, exc.smtp_error, where, conn.reused)
    except (smtplib.SMTPException, OSError) as exc:
        detail = f"{type(exc).__name__} during {stage} with {where}: {exc}"
        return _Outcome("transient_failure", detail, reusable=False)
    text = _text(reply)
    if code == 250:
        return _Outcome("sent", f"{code} accepted by {where}: {text}", code, text)
    status: DeliveryStatus = "permanent_failure" if 500 <= code < 600 else "transient_failure"
    return _Outcome(status, f"SMTP {code} from {where} after {stage}: {text}", code, text, reusable=code != 421)


def _envelope(smtp: smtplib.SMTP, command: str, field: str, address: str, options: list[str]) -> tuple[int, bytes]:
    """MAIL FROM or RCPT TO. smtplib re-parses every address with the email package's address parser
    (``quoteaddr``); a bare dot-atom address, already checked, is written as ``<address>`` directly,
    which is what that parser would give. Anything else goes through smtplib."""
    if options or _PLAIN_ADDRESS.fullmatch(address) is None:
        return smtp.mail(address, options) if command == "mail" else smtp.rcpt(address, options)
    smtp.putcmd(command, f"{field}:<{address}>")
    return smtp.getreply()


def _refused(smtp: smtplib.SMTP, stage: str, code: int, reply: bytes | str, where: str, reused: bool) -> _Outcome:
    """The server answered a command with something other than success: classify by reply code."""
    text = _text(reply)
    detail = f"SMTP {code} from {where} refusing {stage}: {text}"
    if code in (421, -1):  # closing the connection (-1: smtplib saw no valid reply)
        smtp.close()
        return _Outcome("transient_failure", detail, code, text, reusable=False, retry_fresh=reused)
    reusable = _reset(smtp)
    if 500 <= code < 600:
        return _Outcome("permanent_failure", detail, code, text, reusable=reusable)
    return _Outcome("transient_failure", detail, code, text, reusable=reusable)


def _reset(smtp: smtplib.SMTP) -> bool:
    """RSET so the connection can start a new transaction; False if it is no longer usable."""
    try:
        code, _ = smtp.rset()
    except (smtplib.SMTPException, OSError):
        return False
    return code == 250


def _setup_failure(exc: BaseException, where: str) -> _Outcome:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        detail = f"SMTP login to {where} failed ({exc.smtp_code} {_text(exc.smtp_error)}); check smtp_username"
    elif isinstance(exc, smtplib.SMTPResponseException):
        detail = f"SMTP {exc.smtp_code} from {where} while connecting: {_text(exc.smtp_error)}"
    elif isinstance(exc, TimeoutError):
        detail = f"timed out connecting to {where}"
    else:
        detail = f"could not connect to {where}: {type(exc).__name__}: {exc}"
    return _Outcome("transient_failure", detail)


# -- payload validation ---------------------------------------------------------------------------


def _address(value: object, field: str) -> Address:
    """Exactly one valid mailbox (``addr`` or ``Name <addr>``) with an ASCII (IDNA) domain."""
    if not isinstance(value, str) or not value.strip():
        raise _Refused(f"email {field!r} must be a non-empty address string")
    if _CONTROL.search(value):
        raise _Refused(f"email {field!r} contains a line break or control character")
    plain = _PLAIN_ADDRESS.fullmatch(value)
    if plain is not None and _ascii_domain(plain[2]) == plain[2]:
        # A bare dot-atom address with a lowercase ASCII domain (nearly every recipient): what the
        # header parser would return, without its cost (recipients differ, so the cache misses).
        return Address(username=plain[1], domain=plain[2])
    mailbox = _mailbox(value)
    if isinstance(mailbox, str):
        raise _Refused(f"email {field!r} {mailbox}: {value!r}")
    return mailbox


@functools.lru_cache(maxsize=1024)  # sender and reply-to addresses repeat; parsing one costs ~0.5 ms
def _mailbox(value: str) -> Address | str:
    """The parsed mailbox, or why ``value`` is not one."""
    try:
        header = _REGISTRY("to", value)
        groups = header.groups if isinstance(header, AddressHeader) else ()
    except Exception:  # the email header parser raises assorted errors on malformed input
        return "is not a valid address"
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]  # SMTPUTF8 is fine
    if defects or len(groups) != 1 or groups[0].display_name is not None or len(groups[0].addresses) != 1:
        return "must be exactly one valid address"
    mailbox = groups[0].addresses[0]
    if not mailbox.username or not mailbox.domain:
        return "is not a valid address"
    domain = _ascii_domain(mailbox.domain)
    if domain is None:
        return "has an invalid domain"
    return Address(display_name=mailbox.display_name, username=mailbox.username, domain=domain)


def _ascii_domain(domain: str) -> str | None:
    try:
        ascii_domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or len(labels) < 2 or labels[-1].isdigit():
        return None
    return ascii_domain if all(_DNS_LABEL.fullmatch(label) for label in labels) else None


def _body(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Refused(f"email {key!r} must be a string or null")
    return value


def _message_id(value: object, sender: Address) -> str:
    if value is None:
        return email.utils.make_msgid(domain=sender.domain)
    if not isinstance(value, str) or not _MSG_ID.fullmatch(value):
        raise _Refused(f"email 'message_id' must look like <id@domain> (printable ASCII), got {value!r}")
    return value


def _headers(given: object) -> list[tuple[str, str]]:
    if given is None:
        return []
    if not isinstance(given, Mapping):
        raise _Refused("email 'headers' must be a mapping of header names to strings")
    headers: list[tuple[str, str]] = []
    for name, value in given.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise _Refused(f"invalid email header name {name!r}")
        if name.lower() in RESERVED_HEADERS:
            raise _Refused(f"email header {name!r} is set by the email channel; use the payload field instead")
        if not isinstance(value, str):
            raise _Refused(f"email header {name!r} needs a string value")
        _check_value(name, value)
        headers.append((name, value))
    return headers


def _check_value(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise _Refused(f"email header {name!r} contains a line break (CR/LF); refusing header injection")
    if _CONTROL.search(value):
        raise _Refused(f"email header {name!r} contains a control character")


def _text_line(name: str, value: str, policy: Any) -> str:
    if value.isascii():
        return f"{name}: {_fold(name, value)}"
    return _REGISTRY(name, value).fold(policy=policy).rstrip("\r\n")  # RFC 2047 (raw UTF-8 with SMTPUTF8)


def _address_line(name: str, address: Address, policy: Any) -> str:
    if address.username.isascii():
        # formataddr quotes the display name where needed and RFC 2047-encodes a non-ASCII one.
        return f"{name}: {_fold(name, email.utils.formataddr((address.display_name, address.addr_spec)))}"
    return _REGISTRY(name, address).fold(policy=policy).rstrip("\r\n")  # SMTPUTF8: written as UTF-8


def _fold(name: str, value: str) -> str:
    """An ASCII header value folded before spaces so lines stay near 78 characters.

    Folding only inserts CRLF before an existing space, so unfolding restores the exact value; a
    word is never split. A word too long for a 998-character line is refused.
    """
    words = value.strip(" \t").split(" ")
    lines = [words[0]]
    width = len(name) + 2 + len(words[0])
    for word in words[1:]:
        if width + 1 + len(word) > _FOLD_AT and lines[-1].strip():
            lines.append(f" {word}")
            width = 1 + len(word)
        else:
            lines[-1] += f" {word}"
            width += 1 + len(word)
    if len(name) + 2 + len(lines[0]) > _MAX_HEADER_LINE or any(len(line) > _MAX_HEADER_LINE for line in lines[1:]):
        raise _Refused(f"email header {name!r} has a word too long for one header line ({_MAX_HEADER_LINE})")
    return "\r\n".join(lines)


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _result(outcome: _Outcome, started: float, *, provider_id: str | None = None) -> DeliveryResult:
    return DeliveryResult(
        status=outcome.status,
        detail=outcome.detail,
        response_status=outcome.code,
        response_body=outcome.reply,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        provider_id=provider_id if outcome.status == "sent" else None,
    )
