"""The HTTP sending the webhook, SMS and Slack channels share (private to ``storeflow.channels``).

One request goes out as the channels' documents describe: the URL passes
:mod:`storeflow.channels.netguard` on every attempt (a blocked destination is a permanent failure, an
unresolvable one transient); the request goes to a checked address with the original Host header and
TLS server name over a fresh connection (``Connection: close``), trying the next checked address only
when nothing was sent; the whole exchange keeps one deadline; redirects are never followed; at most
``max_read`` bytes of the response are read. What the response means is the channel's to decide.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from storeflow.channels.base import DeliveryStatus
from storeflow.channels.netguard import Destination
from storeflow.clock import utc
from storeflow.errors import BlockedDestinationError, DeliveryError

MAX_RETRY_AFTER = timedelta(hours=24)

Guard = Callable[[str], Destination]  # netguard with the channel's policy: URL in, checked destination out


@dataclass(frozen=True)
class Failed:
    """No usable response: the attempt's status and what went wrong."""

    status: DeliveryStatus
    detail: str


@dataclass(frozen=True)
class Reply:
    """The receiver's response: status, headers and the first ``max_read`` bytes of the body."""

    status_code: int
    headers: httpx.Headers
    body: bytes


OnError = Callable[[httpx.HTTPError, str], Failed]  # a client error (not ConnectError) and where -> failure


def new_client() -> httpx.Client:
    """A client for a channel that owns one: no redirects, no proxy or netrc from the environment."""
    return httpx.Client(follow_redirects=False, trust_env=False)


def check(url: str, guard: Guard) -> Destination | Failed:
    """The destination of ``url`` as netguard allows it, or why not (the error's text as detail)."""
    try:
        return guard(url)
    except BlockedDestinationError as exc:
        return Failed("permanent_failure", str(exc))
    except DeliveryError as exc:
        return Failed("transient_failure", str(exc))


def client_error(exc: httpx.HTTPError, where: str, timeout_s: float) -> Failed:
    """The usual reading of a client error: a timeout and a network error are transient, a request
    the client itself refused is permanent."""
    if isinstance(exc, httpx.TimeoutException):
        return Failed("transient_failure", f"timed out after {timeout_s:g}s {_phase(exc)} {where}")
    if isinstance(exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol):
        return Failed("permanent_failure", f"request to {where} refused by the HTTP client: {exc}")
    return Failed("transient_failure", f"{type(exc).__name__} talking to {where}: {exc}")


def exchange(client: httpx.Client, destination: Destination, *, method: str, headers: Mapping[str, str],
             content: bytes, timeout_s: float, started: float, max_read: int,
             on_error: OnError | None = None) -> Reply | Failed:
    """Send one request to ``destination`` (see the module docstring) and read its response.
    ``on_error`` reads client errors other than a refused connection (default :func:`client_error`)."""
    where = destination.netloc
    deadline = started + timeout_s
    last_error: httpx.ConnectError | None = None
    for url, target_headers, extensions in _targets(destination, headers):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        request = client.build_request(method, url, headers=target_headers, content=content,
                                       timeout=httpx.Timeout(remaining), extensions=extensions)
        try:
            response = client.send(request, stream=True, follow_redirects=False)
        except httpx.ConnectError as exc:
            last_error = exc  # nothing was sent; try the next checked address
            continue
        except httpx.HTTPError as exc:
            return on_error(exc, where) if on_error is not None else client_error(exc, where, timeout_s)
        try:
            body = _read_capped(response, deadline, max_read)
        finally:
            response.close()
        return Reply(response.status_code, response.headers, body)
    if last_error is None:
        return Failed("transient_failure", f"timed out after {timeout_s:g}s connecting to {where}")
    return Failed("transient_failure", f"could not connect to {where}: {last_error}")


def _targets(destination: Destination,
             headers: Mapping[str, str]) -> list[tuple[httpx.URL, httpx.Headers, dict[str, Any]]]:
    """One request target per checked address (pinned), or the URL as is for an allow-listed host."""
    if not destination.addresses:
        return [(destination.url, httpx.Headers(headers), {})]
    pinned = httpx.Headers(headers)
    pinned["host"] = destination.netloc
    pinned["connection"] = "close"
    extensions: dict[str, Any] = {}
    if destination.scheme == "https" and not destination.host_is_ip:
        extensions["sni_hostname"] = destination.host  # also the name the certificate is checked against
    return [(destination.url.copy_with(host=ip), pinned, extensions) for ip in destination.addresses]


def _read_capped(response: httpx.Response, deadline: float, max_read: int) -> bytes:
    """Up to ``max_read`` bytes of the raw body, stopping at the deadline or a broken stream."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size >= max_read or time.perf_counter() >= deadline:
                break
    except httpx.HTTPError:
        pass  # the status is what counts; keep what arrived
    return b"".join(chunks)[:max_read]


def _phase(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting to"
    if isinstance(exc, httpx.WriteTimeout):
        return "sending to"
    if isinstance(exc, httpx.PoolTimeout):
        return "waiting for a connection to"
    return "waiting for the response from"


def retry_after_of(reply: Reply, now: datetime) -> timedelta | None:
    """The receiver's ``Retry-After`` on a 429 or 503, else None."""
    if reply.status_code not in (429, 503):
        return None
    return parse_retry_after(reply.headers.get("retry-after"), now)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A ``Retry-After`` header (delay-seconds or HTTP-date) as a delay, capped at MAX_RETRY_AFTER."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, math.ceil((when - utc(now)).total_seconds()))
    return timedelta(seconds=min(seconds, MAX_RETRY_AFTER.total_seconds()))
