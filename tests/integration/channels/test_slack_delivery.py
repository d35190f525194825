"""SlackChannel against a real HTTP server on 127.0.0.1 standing in for a Slack incoming webhook."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from webhook_server import RecordingServer, Reply

from storeflow.channels.base import DeliveryResult, OutboundMessage
from storeflow.channels.slack import NOT_CONFIGURED, SlackChannel
from storeflow.errors import ConfigError

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
SECRET_PATH = "/services/T000/B000/XXXXsecretXXXX"


def message(**payload: Any) -> OutboundMessage:
    return OutboundMessage(id="run_1:steps[2]", channel="slack", payload=payload or {"text": "New order #1001"})


@pytest.fixture
def channel(server: RecordingServer) -> Iterator[SlackChannel]:
    ch = SlackChannel(server.url(SECRET_PATH), allow_private=True)
    try:
        yield ch
    finally:
        ch.close()


def no_secret(result: DeliveryResult) -> None:
    assert "secret" not in result.detail
    assert "XXXX" not in result.detail


def test_text_and_blocks_are_posted_as_json(server: RecordingServer, channel: SlackChannel) -> None:
    server.responder = lambda _req: Reply(200, b"ok")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Pedido* Rp 150.000 — Olá"}}]
    result = channel.send(message(text="Pedido Rp 150.000", blocks=blocks), NOW)

    assert result.status == "sent", result.detail
    assert result.response_status == 200
    assert result.response_body == "ok"
    no_secret(result)
    [req] = server.requests
    assert req.method == "POST"
    assert req.path == SECRET_PATH
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.body) == {"text": "Pedido Rp 150.000", "blocks": blocks}


def test_a_host_name_is_pinned_to_the_checked_address(server: RecordingServer) -> None:
    def resolver(host: str, port: int) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    url = server.url(SECRET_PATH, host="hooks.slack.test")
    with SlackChannel(url, allow_private=True, resolver=resolver) as ch:
        result = ch.send(message(), NOW)

    assert result.status == "sent", result.detail
    assert "hooks.slack.test" in result.detail
    assert server.requests[0].headers["host"] == f"hooks.slack.test:{server.port}"


@pytest.mark.parametrize("url", [None, ""])
def test_no_webhook_configured_is_permanent(url: str | None) -> None:
    with SlackChannel(url) as ch:
        result = ch.send(message(), NOW)
    assert result.status == "permanent_failure"
    assert result.detail == NOT_CONFIGURED
    assert not ch.configured


def test_private_destination_is_refused_unless_allowed(server: RecordingServer) -> None:
    with SlackChannel(server.url(SECRET_PATH)) as ch:
        result = ch.send(message(), NOW)

    assert result.status == "permanent_failure"
    assert "blocked" in result.detail
    assert "loopback" in result.detail
    no_secret(result)
    assert server.requests == []


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (Reply(200, b"ok"), "sent"),
        (Reply(204, b""), "sent"),
        (Reply(400, b"invalid_payload"), "permanent_failure"),
        (Reply(403, b"action_prohibited"), "permanent_failure"),
        (Reply(404, b"channel_not_found"), "permanent_failure"),
        (Reply(410, b"channel_is_archived"), "permanent_failure"),
        (Reply(302, b"", {"Location": "https://elsewhere.example/x"}), "permanent_failure"),
        (Reply(408, b""), "transient_failure"),
        (Reply(500, b"rollup_error"), "transient_failure"),
        (Reply(502, b"bad gateway"), "transient_failure"),
    ],
)
def test_status_classification(server: RecordingServer, channel: SlackChannel, reply: Reply, status: str) -> None:
    server.responder = lambda _req: reply
    result = channel.send(message(), NOW)

    assert result.status == status
    assert result.response_status == reply.status
    assert result.retry_after is None
    no_secret(result)
    if reply.body:
        assert reply.body.decode() in result.detail
    assert len(server.requests) == 1  # redirects are not followed


@pytest.mark.parametrize(("code", "retry_after"), [(429, "30"), (503, "Mon, 05 Jan 2026 09:32:00 GMT")])
def test_rate_limits_are_transient_and_honour_retry_after(
    server: RecordingServer, channel: SlackChannel, code: int, retry_after: str
) -> None:
    server.responder = lambda _req: Reply(code, b"rate_limited", {"Retry-After": retry_after})
    result = channel.send(message(), NOW)

    assert result.status == "transient_failure"
    expected = timedelta(seconds=30) if code == 429 else timedelta(minutes=2)
    assert result.retry_after == expected
    assert f"Retry-After {expected.total_seconds():g}s" in result.detail


def test_timeout_is_transient(server: RecordingServer) -> None:
    server.responder = lambda _req: Reply(200, b"ok", delay_s=5)
    with SlackChannel(server.url(SECRET_PATH), allow_private=True, timeout_s=0.3) as ch:
        result = ch.send(message(), NOW)

    assert result.status == "transient_failure"
    assert "timed out" in result.detail
    no_secret(result)


def test_connection_refused_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with SlackChannel(f"http://127.0.0.1:{port}{SECRET_PATH}", allow_private=True) as ch:
        result = ch.send(message(), NOW)

    assert result.status == "transient_failure"
    assert "could not connect" in result.detail
    no_secret(result)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"text": ""}, "non-empty 'text'"),
        ({"text": "   "}, "non-empty 'text'"),
        ({"blocks": []}, "non-empty 'text'"),
        ({"text": "hi", "blocks": "nope"}, "list of block objects"),
        ({"text": "hi", "webhook_url": "https://hooks.slack.com/services/x"}, "only from settings"),
        ({"text": "hi", "channel": "#ops"}, "unknown Slack payload keys: channel"),
        ({"text": "x" * 40_001}, "limit is 40000"),
    ],
)
def test_unusable_payloads_are_permanent_and_not_sent(
    server: RecordingServer, channel: SlackChannel, payload: dict[str, Any], expected: str
) -> None:
    result = channel.send(message(**payload), NOW)

    assert result.status == "permanent_failure"
    assert expected in result.detail
    assert server.requests == []


def test_message_for_another_channel_is_refused(server: RecordingServer, channel: SlackChannel) -> None:
    msg = OutboundMessage(id="m", channel="email", payload={"text": "hi"})
    assert channel.send(msg, NOW).status == "permanent_failure"


@pytest.mark.parametrize("url", ["ftp://hooks.slack.com/x", "not a url at all"])
def test_invalid_webhook_url_is_a_config_error_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError, match="STOREFLOW_SLACK_WEBHOOK_URL") as info:
        SlackChannel(url)
    assert url not in str(info.value)
