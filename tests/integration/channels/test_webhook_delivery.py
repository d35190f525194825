"""WebhookChannel against a real HTTP server on 127.0.0.1 (no mocks of httpx or sockets)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from webhook_server import RecordingServer, Reply

from storeflow.channels import OutboundMessage, WebhookChannel
from storeflow.clock import VirtualClock
from storeflow.errors import ConfigError

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
MSG_ID = "run_01HZX3:steps[3]"


def wall_now() -> datetime:
    # standardwebhooks.verify checks the timestamp against the wall clock (5 min tolerance).
    return datetime.now(UTC)


def message(url: str, msg_id: str = MSG_ID, attempt: int = 1, **payload: Any) -> OutboundMessage:
    body = payload.pop("body", {"order": "1001"})
    return OutboundMessage(
        id=msg_id, channel="webhook", payload={"url": url, "body": body, **payload}, attempt=attempt
    )


def fake_resolver(*ips: str) -> Any:
    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in ips
        ]

    return resolve


@pytest.fixture
def channel() -> Iterator[WebhookChannel]:
    ch = WebhookChannel({"shop": OTHER_SECRET}, SECRET, allow_private=True)
    try:
        yield ch
    finally:
        ch.close()


# -- what arrives ---------------------------------------------------------------------------------


def test_body_arrives_as_compact_json_with_decimal_as_string_and_signature_verifies(
    server: RecordingServer, channel: WebhookChannel
) -> None:
    body = {"total": Decimal("19.90"), "placed_at": datetime(2026, 1, 5, 9, 30, tzinfo=UTC), "qty": 2}
    result = channel.send(message(server.url(), body=body), wall_now())

    assert result.status == "sent", result.detail
    assert result.response_status == 200
    assert result.response_body == '{"ok":true}'
    assert result.duration_ms > 0
    [req] = server.requests
    assert req.method == "POST"
    assert req.path == "/hook"
    assert req.headers["content-type"] == "application/json"
    assert req.body == b'{"total":"19.90","placed_at":"2026-01-05T09:30:00+00:00","qty":2}'
    assert req.headers["webhook-id"] == MSG_ID
    assert req.headers["user-agent"] == "storeflow/0.1"
    assert req.headers["webhook-signature"].startswith("v1,")
    verified = Webhook(SECRET).verify(req.body, req.headers)
    assert verified == {"total": "19.90", "placed_at": "2026-01-05T09:30:00+00:00", "qty": 2}


def test_timestamp_comes_from_the_injected_clock(server: RecordingServer, channel: WebhookChannel) -> None:
    clock = VirtualClock(datetime(2026, 1, 5, 9, 0, 0, 750_000, tzinfo=UTC))
    result = channel.send(message(server.url()), clock.now())

    assert result.status == "sent"
    [req] = server.requests
    assert req.headers["webhook-timestamp"] == str(int(clock.now().timestamp()))
    expected = Webhook(SECRET).sign(MSG_ID, clock.now(), req.body.decode())
    assert req.headers["webhook-signature"] == expected


def test_same_webhook_id_on_every_attempt(server: RecordingServer, channel: WebhookChannel) -> None:
    replies = iter([Reply(status=500, body=b"boom"), Reply(status=200)])
    server.responder = lambda _req: next(replies)
    now = wall_now()

    first = channel.send(message(server.url(), attempt=1), now)
    second = channel.send(message(server.url(), attempt=2), now + timedelta(seconds=10))

    assert (first.status, second.status) == ("transient_failure", "sent")
    assert first.response_body == "boom"
    ids = [r.headers["webhook-id"] for r in server.requests]
    assert ids == [MSG_ID, MSG_ID]
    stamps = [int(r.headers["webhook-timestamp"]) for r in server.requests]
    assert stamps[1] - stamps[0] == 10
    for req in server.requests:
        Webhook(SECRET).verify(req.body, req.headers)


def test_named_secret_signs_and_user_headers_pass(server: RecordingServer, channel: WebhookChannel) -> None:
    msg = message(server.url(), secret="shop", method="put", headers={"X-Shop": "acme"})
    result = channel.send(msg, wall_now())

    assert result.status == "sent"
    [req] = server.requests
    assert req.method == "PUT"
    assert req.headers["x-shop"] == "acme"
    Webhook(OTHER_SECRET).verify(req.body, req.headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(req.body, req.headers)


def test_reserved_user_headers_are_dropped_and_noted(
    server: RecordingServer, channel: WebhookChannel
) -> None:
    headers = {
        "Content-Type": "text/plain",
        "webhook-id": "forged",
        "Webhook-Signature": "v1,forged",
        "Host": "elsewhere.example",
        "X-Kept": "yes",
    }
    result = channel.send(message(server.url(), method="PATCH", headers=headers), wall_now())

    assert result.status == "sent"
    assert "ignored reserved headers: content-type, host, webhook-id, webhook-signature" in result.detail
    [req] = server.requests
    assert req.method == "PATCH"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["webhook-id"] == MSG_ID
    assert req.headers["host"] == f"127.0.0.1:{server.port}"
    assert req.headers["x-kept"] == "yes"
    Webhook(SECRET).verify(req.body, req.headers)


# -- classification -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "sent"),
        (201, "sent"),
        (204, "sent"),
        (408, "transient_failure"),
        (409, "transient_failure"),
        (425, "transient_failure"),
        (429, "transient_failure"),
        (500, "transient_failure"),
        (502, "transient_failure"),
        (503, "transient_failure"),
        (400, "permanent_failure"),
        (401, "permanent_failure"),
        (404, "permanent_failure"),
        (410, "permanent_failure"),
        (422, "permanent_failure"),
    ],
)
def test_status_classification(
    server: RecordingServer, channel: WebhookChannel, status: int, expected: str
) -> None:
    server.responder = lambda _req: Reply(status=status, body=b"" if status == 204 else b"resp")
    result = channel.send(message(server.url()), wall_now())

    assert result.status == expected
    assert result.response_status == status
    assert f"HTTP {status} from 127.0.0.1:{server.port}" in result.detail
    assert result.retry_after is None


def test_redirect_is_not_followed_and_is_permanent(server: RecordingServer, channel: WebhookChannel) -> None:
    server.responder = lambda _req: Reply(
        status=302, body=b"", headers={"Location": "https://hooks.example.com/secret-token-path?t=abc"}
    )
    result = channel.send(message(server.url()), wall_now())

    assert result.status == "permanent_failure"
    assert result.response_status == 302
    assert "redirects are not followed" in result.detail
    assert "https://hooks.example.com" in result.detail
    assert "secret-token-path" not in result.detail
    assert len(server.requests) == 1


def test_injected_client_that_follows_redirects_still_does_not(server: RecordingServer) -> None:
    server.responder = lambda req: Reply(status=302, body=b"", headers={"Location": "/elsewhere"})
    with httpx.Client(follow_redirects=True) as client:
        ch = WebhookChannel({}, SECRET, allow_private=True, client=client)
        result = ch.send(message(server.url()), wall_now())
    assert result.status == "permanent_failure"
    assert [r.path for r in server.requests] == ["/hook"]


def test_429_exposes_retry_after_seconds(server: RecordingServer, channel: WebhookChannel) -> None:
    server.responder = lambda _req: Reply(status=429, body=b"slow down", headers={"Retry-After": "30"})
    result = channel.send(message(server.url()), wall_now())

    assert result.status == "transient_failure"
    assert result.retry_after == timedelta(seconds=30)
    assert "Retry-After 30s" in result.detail


def test_503_retry_after_http_date_is_relative_to_injected_now(
    server: RecordingServer, channel: WebhookChannel
) -> None:
    now = wall_now().replace(microsecond=0)
    later = now + timedelta(seconds=120)
    server.responder = lambda _req: Reply(
        status=503, headers={"Retry-After": later.strftime("%a, %d %b %Y %H:%M:%S GMT")}
    )
    result = channel.send(message(server.url()), now)

    assert result.status == "transient_failure"
    assert result.retry_after == timedelta(seconds=120)


def test_retry_after_is_ignored_on_other_statuses(server: RecordingServer, channel: WebhookChannel) -> None:
    server.responder = lambda _req: Reply(status=500, headers={"Retry-After": "30"})
    result = channel.send(message(server.url()), wall_now())
    assert result.status == "transient_failure"
    assert result.retry_after is None


def test_response_body_is_truncated(server: RecordingServer, channel: WebhookChannel) -> None:
    server.responder = lambda _req: Reply(status=400, body=b"x" * 50_000)
    result = channel.send(message(server.url()), wall_now())
    assert result.status == "permanent_failure"
    assert result.response_body == "x" * 2000


def test_timeout_is_transient_and_within_the_configured_timeout(
    server: RecordingServer, channel: WebhookChannel
) -> None:
    server.responder = lambda _req: Reply(delay_s=5.0)
    started = time.perf_counter()
    result = channel.send(message(server.url(), timeout_s=0.3), wall_now())
    elapsed = time.perf_counter() - started

    assert result.status == "transient_failure"
    assert "timed out after 0.3s" in result.detail
    assert result.response_status is None
    assert 0.25 <= elapsed < 1.0
    assert 250 <= result.duration_ms < 1000


def test_connection_refused_is_transient(channel: WebhookChannel) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = channel.send(message(f"http://127.0.0.1:{port}/hook"), wall_now())
    assert result.status == "transient_failure"
    assert f"could not connect to 127.0.0.1:{port}" in result.detail


# -- destination guard ----------------------------------------------------------------------------


def test_loopback_is_blocked_by_default(server: RecordingServer) -> None:
    with WebhookChannel({}, SECRET) as ch:
        result = ch.send(message(server.url()), wall_now())

    assert result.status == "permanent_failure"
    assert "'127.0.0.1'" in result.detail
    assert "loopback" in result.detail
    assert "STOREFLOW_WEBHOOK_ALLOW_PRIVATE=true" in result.detail
    assert "STOREFLOW_WEBHOOK_ALLOWED_HOSTS" in result.detail
    assert server.requests == []


def test_localhost_is_blocked_by_default_and_allowed_when_private_is_allowed(server: RecordingServer) -> None:
    with WebhookChannel({}, SECRET) as blocked, WebhookChannel({}, SECRET, allow_private=True) as allowed:
        refused = blocked.send(message(server.url(host="localhost")), wall_now())
        sent = allowed.send(message(server.url(host="localhost")), wall_now())
    assert refused.status == "permanent_failure"
    assert "'localhost'" in refused.detail
    assert sent.status == "sent", sent.detail
    assert len(server.requests) == 1


def test_allowed_host_passes_without_allow_private(server: RecordingServer) -> None:
    with WebhookChannel({}, SECRET, allowed_hosts=["127.0.0.1"]) as ch:
        result = ch.send(message(server.url()), wall_now())
    assert result.status == "sent", result.detail


def test_name_resolving_to_any_private_address_is_blocked(server: RecordingServer) -> None:
    resolver = fake_resolver("93.184.216.34", "10.0.0.7")
    with WebhookChannel({}, SECRET, resolver=resolver) as ch:
        result = ch.send(message("https://hooks.example.com/x"), wall_now())
    assert result.status == "permanent_failure"
    assert "'hooks.example.com'" in result.detail
    assert "10.0.0.7" in result.detail


def test_connects_to_the_checked_address_keeping_the_host_header(server: RecordingServer) -> None:
    # ".test" never resolves in real DNS: success proves the request went to the address the guard
    # checked instead of resolving the name again (the DNS-rebinding mitigation).
    with WebhookChannel({}, SECRET, allow_private=True, resolver=fake_resolver("127.0.0.1")) as ch:
        result = ch.send(message(server.url(host="hooks.example.test")), wall_now())

    assert result.status == "sent", result.detail
    assert f"HTTP 200 from hooks.example.test:{server.port}" == result.detail
    [req] = server.requests
    assert req.headers["host"] == f"hooks.example.test:{server.port}"
    assert req.headers["connection"] == "close"
    Webhook(SECRET).verify(req.body, req.headers)


def test_falls_back_to_the_next_checked_address_when_one_refuses(server: RecordingServer) -> None:
    resolver = fake_resolver("::1", "127.0.0.1")  # nothing listens on [::1]:port
    with WebhookChannel({}, SECRET, allow_private=True, resolver=resolver) as ch:
        result = ch.send(message(server.url(host="hooks.example.test")), wall_now())
    assert result.status == "sent", result.detail


def test_resolution_failure_is_transient(server: RecordingServer) -> None:
    def failing(host: str, port: int) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with WebhookChannel({}, SECRET, resolver=failing) as ch:
        result = ch.send(message("https://hooks.example.com/x"), wall_now())
    assert result.status == "transient_failure"
    assert "could not resolve host 'hooks.example.com'" in result.detail


@pytest.mark.parametrize(
    "url",
    ["ftp://hooks.example.com/x", "https://user:pw@hooks.example.com/x", "file:///etc/passwd"],
)
def test_bad_scheme_or_credentials_are_permanent(url: str) -> None:
    with WebhookChannel({}, SECRET, allow_private=True) as ch:
        result = ch.send(message(url), wall_now())
    assert result.status == "permanent_failure"
    assert "pw" not in result.detail


# -- refused messages -----------------------------------------------------------------------------


def test_no_signing_secret_is_refused(server: RecordingServer) -> None:
    with WebhookChannel({}, None, allow_private=True) as ch:
        result = ch.send(message(server.url()), wall_now())
    assert result.status == "permanent_failure"
    assert "no signing secret configured" in result.detail
    assert server.requests == []


def test_unknown_named_secret_is_refused(server: RecordingServer, channel: WebhookChannel) -> None:
    result = channel.send(message(server.url(), secret="nope"), wall_now())
    assert result.status == "permanent_failure"
    assert "signing secret 'nope' is not configured" in result.detail
    assert server.requests == []


@pytest.mark.parametrize("bad", ["not-a-whsec", "whsec_***not base64***", "whsec_"])
def test_malformed_secret_fails_at_construction_without_echoing_it(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        WebhookChannel({"shop": bad}, None)
    assert "'shop'" in str(info.value)
    assert bad not in str(info.value)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"method": "DELETE"}, "webhook method must be one of"),
        ({"timeout_s": 0}, "timeout_s must be a number"),
        ({"timeout_s": "5"}, "timeout_s must be a number"),
        ({"headers": {"X-Bad": "a\r\nInjected: 1"}}, "header 'X-Bad'"),
        ({"headers": {"Bad Name": "x"}}, "invalid header name"),
        ({"body": {"x": object()}}, "not JSON-serializable"),
        ({"body": {"x": float("nan")}}, "not JSON-serializable"),
        ({"timeout": 5}, "unknown webhook payload keys: timeout"),
    ],
)
def test_invalid_payload_is_permanent(
    server: RecordingServer, channel: WebhookChannel, payload: dict[str, Any], expected: str
) -> None:
    result = channel.send(message(server.url(), **payload), wall_now())
    assert result.status == "permanent_failure"
    assert expected in result.detail
    assert server.requests == []


def test_missing_body_or_url_is_permanent(channel: WebhookChannel) -> None:
    no_body = OutboundMessage(id=MSG_ID, channel="webhook", payload={"url": "https://a.example/x"})
    no_url = OutboundMessage(id=MSG_ID, channel="webhook", payload={"body": {}})
    assert "needs a 'body'" in channel.send(no_body, wall_now()).detail
    assert "needs a non-empty 'url'" in channel.send(no_url, wall_now()).detail


def test_details_never_contain_secrets_or_url_paths(server: RecordingServer, channel: WebhookChannel) -> None:
    server.responder = lambda _req: Reply(status=500)
    results = [
        channel.send(message(server.url("/services/T000/TOKEN123")), wall_now()),
        channel.send(message(server.url("/services/T000/TOKEN123"), secret="shop"), wall_now()),
        channel.send(message(server.url("/services/T000/TOKEN123"), secret="nope"), wall_now()),
    ]
    for result in results:
        for forbidden in (SECRET, SECRET.removeprefix("whsec_"), OTHER_SECRET, "TOKEN123"):
            assert forbidden not in result.detail
    assert "TOKEN123" not in repr(channel.__dict__)
    assert SECRET not in repr(channel.__dict__)
