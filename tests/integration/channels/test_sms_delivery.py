"""SmsChannel against real HTTP servers on 127.0.0.1 emulating the Twilio Messages endpoint and a
generic SMS gateway (no mocks of httpx or sockets)."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from webhook_server import Recorded, RecordingServer, Reply

from storeflow.channels import OutboundMessage
from storeflow.channels.sms import HttpProvider, SmsChannel, SmsProvider, TwilioProvider
from storeflow.settings import Settings

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-auth-token-not-real"
FROM = "+15005550006"
MSG_ID = "run_01HZX3:steps[2]"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MESSAGES_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
SM_SID = "SM9f1e2d3c4b5a69788796a5b4c3d2e1f0"


@contextmanager
def channel_for(provider: SmsProvider, **options: Any) -> Iterator[SmsChannel]:
    options.setdefault("allow_private", True)  # the emulators listen on 127.0.0.1
    channel = SmsChannel(provider, default_from=options.pop("default_from", None), **options)
    try:
        yield channel
    finally:
        channel.close()


def resolves_to(*ips: str) -> Any:
    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ips]

    return resolve


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def sms(msg_id: str = MSG_ID, attempt: int = 1, **payload: Any) -> OutboundMessage:
    if "from_" in payload:
        payload["from"] = payload.pop("from_")
    return OutboundMessage(msg_id, "sms", {"to": "+5511987654321", "text": "Seu pedido saiu", **payload}, attempt)


def form(req: Recorded) -> dict[str, str]:
    parsed = parse_qs(req.body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    assert all(len(v) == 1 for v in parsed.values())
    return {k: v[0] for k, v in parsed.items()}


def twilio_emulator(req: Recorded) -> Reply:
    """What Twilio's Messages endpoint does, as far as the channel can tell."""
    expected_auth = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    if req.method != "POST" or req.path != MESSAGES_PATH:
        return Reply(404, b'{"code": 20404, "message": "The requested resource was not found", "status": 404}')
    if req.headers.get("authorization") != expected_auth:
        return Reply(401, b'{"code": 20003, "message": "Authenticate", "status": 401}')
    if req.headers.get("content-type") != "application/x-www-form-urlencoded":
        return Reply(400, b'{"code": 20001, "message": "bad content type", "status": 400}')
    fields = form(req)
    if not fields.get("To", "").startswith("+"):
        message = f"The 'To' number {fields.get('To')} is not a valid phone number."
        return Reply(400, json.dumps({"code": 21211, "message": message, "status": 400}).encode())
    body = {"sid": SM_SID, "status": "queued", "to": fields["To"], "from": fields.get("From"), "body": fields["Body"]}
    return Reply(201, json.dumps(body).encode(), {"Content-Type": "application/json"})


@pytest.fixture
def twilio(server: RecordingServer) -> Iterator[SmsChannel]:
    server.responder = twilio_emulator
    provider = TwilioProvider(SID, TOKEN, FROM, base_url=server.url(""))
    with_channel = SmsChannel(provider, default_from=None, allow_private=True, default_region="BR")
    try:
        yield with_channel
    finally:
        with_channel.close()


# -- Twilio ---------------------------------------------------------------------------------------


def test_twilio_success(server: RecordingServer, twilio: SmsChannel) -> None:
    result = twilio.send(sms(), NOW)

    assert result.status == "sent", result.detail
    assert result.provider_id == SM_SID
    assert result.response_status == 201
    assert result.detail == f"HTTP 201 from 127.0.0.1:{server.port}; segments=1, encoding=GSM-7"
    assert result.duration_ms > 0
    [req] = server.requests
    assert req.path == MESSAGES_PATH
    assert form(req) == {"To": "+5511987654321", "From": FROM, "Body": "Seu pedido saiu"}
    assert req.headers["user-agent"] == "storeflow/0.1"
    assert req.headers["connection"] == "close"
    assert "idempotency-key" not in req.headers  # Twilio has none; see TwilioProvider's docstring
    assert TOKEN not in result.detail


def test_twilio_national_number_is_sent_as_e164(server: RecordingServer, twilio: SmsChannel) -> None:
    result = twilio.send(sms(to="(11) 98765-4321"), NOW)

    assert result.ok, result.detail
    assert form(server.requests[0])["To"] == "+5511987654321"


def test_invalid_number_is_refused_without_a_request(server: RecordingServer, twilio: SmsChannel) -> None:
    result = twilio.send(sms(to="(11) 1234"), NOW)

    assert result.status == "permanent_failure"
    assert "'(11) 1234'" in result.detail
    assert server.requests == []


def test_ucs2_segments_in_the_detail(server: RecordingServer, twilio: SmsChannel) -> None:
    text = "Olá Ana! Seu pedido #1001 saiu para entrega 🚚 e chega amanhã. Obrigado pela compra ❤️"
    result = twilio.send(sms(text=text), NOW)

    assert result.ok, result.detail
    assert result.detail.endswith("; segments=2, encoding=UCS-2")
    assert form(server.requests[0])["Body"] == text  # arrives intact (UTF-8 form encoding)


def test_payload_from_and_status_callback(server: RecordingServer, twilio: SmsChannel) -> None:
    callback = "https://shop.example.com/api/sms/status?run=1"
    result = twilio.send(sms(from_="ACME", status_callback=callback), NOW)

    assert result.ok, result.detail
    expected = {"To": "+5511987654321", "From": "ACME", "Body": "Seu pedido saiu", "StatusCallback": callback}
    assert form(server.requests[0]) == expected


def test_messaging_service_sender(server: RecordingServer, twilio: SmsChannel) -> None:
    service = "MG" + "0123456789abcdef" * 2
    assert twilio.send(sms(from_=service), NOW).ok
    fields = form(server.requests[0])
    assert fields["MessagingServiceSid"] == service
    assert "From" not in fields


def test_twilio_21211_is_permanent_with_code_and_message(server: RecordingServer, twilio: SmsChannel) -> None:
    server.responder = lambda req: Reply(
        400, b'{"code": 21211, "message": "The \'To\' number +5511987654321 is not a valid phone number.",'
        b' "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}'
    )  # fmt: skip
    result = twilio.send(sms(), NOW)

    assert result.status == "permanent_failure"
    assert result.response_status == 400
    assert result.detail == (
        f"HTTP 400 from 127.0.0.1:{server.port}: Twilio error 21211: The 'To' number +5511987654321 is not a "
        "valid phone number.; segments=1, encoding=GSM-7"
    )
    assert result.provider_id is None


def test_wrong_credentials_are_permanent(server: RecordingServer) -> None:
    server.responder = twilio_emulator
    provider = TwilioProvider(SID, "wrong-token", FROM, base_url=server.url(""))
    with channel_for(provider) as channel:
        result = channel.send(sms(), NOW)
    assert result.status == "permanent_failure"
    assert "Twilio error 20003: Authenticate" in result.detail
    assert "wrong-token" not in result.detail


def test_503_is_transient_with_retry_after(server: RecordingServer, twilio: SmsChannel) -> None:
    server.responder = lambda req: Reply(503, b"upstream unavailable", {"Retry-After": "7"})
    result = twilio.send(sms(), NOW)

    assert result.status == "transient_failure"
    assert result.retry_after == timedelta(seconds=7)
    assert result.detail == (
        f"HTTP 503 from 127.0.0.1:{server.port}: try again later (Retry-After 7s); segments=1, encoding=GSM-7"
    )
    assert result.response_body == "upstream unavailable"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (429, b'{"code": 20429, "message": "Too Many Requests", "status": 429}'),
        (500, b'{"code": 20500, "message": "Internal Server Error", "status": 500}'),
        (400, b'{"code": 21611, "message": "This \'From\' number has exceeded the maximum number of queued messages"}'),
    ],
)
def test_transient_twilio_answers(server: RecordingServer, twilio: SmsChannel, status: int, body: bytes) -> None:
    server.responder = lambda req: Reply(status, body)
    result = twilio.send(sms(), NOW)

    assert result.status == "transient_failure", result.detail
    code = json.loads(body)["code"]
    assert f"Twilio error {code}" in result.detail
    assert result.retry_after is None


def test_429_http_date_retry_after(server: RecordingServer, twilio: SmsChannel) -> None:
    server.responder = lambda req: Reply(429, b"{}", {"Retry-After": "Mon, 02 Mar 2026 09:01:30 GMT"})
    result = twilio.send(sms(), NOW)

    assert result.status == "transient_failure"
    assert result.retry_after == timedelta(seconds=90)


def test_redirect_is_not_followed(server: RecordingServer, twilio: SmsChannel) -> None:
    server.responder = lambda req: Reply(302, b"", {"Location": "http://127.0.0.1:1/elsewhere"})
    result = twilio.send(sms(), NOW)

    assert result.status == "permanent_failure"
    assert "redirects are not followed" in result.detail
    assert len(server.requests) == 1


def test_success_without_sid_is_still_sent(server: RecordingServer, twilio: SmsChannel) -> None:
    server.responder = lambda req: Reply(201, b"not json")
    result = twilio.send(sms(), NOW)

    assert result.status == "sent"  # accepted: a retry would send the text twice
    assert result.provider_id is None
    assert "no message id" in result.detail


def test_response_timeout_on_twilio_is_not_retried_to_avoid_a_duplicate(server: RecordingServer) -> None:
    server.responder = lambda req: Reply(201, b"{}", delay_s=5)
    provider = TwilioProvider(SID, TOKEN, FROM, base_url=server.url(""), timeout_s=0.3)
    with channel_for(provider) as channel:
        result = channel.send(sms(), NOW)

    # Twilio may have accepted the text and has no idempotency key: a retry could send it twice.
    assert result.status == "permanent_failure"
    assert "timed out after 0.3s" in result.detail
    assert "delivery state unknown" in result.detail
    assert result.duration_ms < 3000


def test_connection_refused_is_transient(unused_port: int) -> None:
    provider = TwilioProvider(SID, TOKEN, FROM, base_url=f"http://127.0.0.1:{unused_port}")
    with channel_for(provider) as channel:
        result = channel.send(sms(), NOW)

    assert result.status == "transient_failure"
    assert f"could not connect to 127.0.0.1:{unused_port}" in result.detail


def test_private_destination_is_blocked_by_default(server: RecordingServer) -> None:
    provider = TwilioProvider(SID, TOKEN, FROM, base_url=server.url(""))
    with channel_for(provider, allow_private=False) as channel:
        result = channel.send(sms(), NOW)

    assert result.status == "permanent_failure"
    assert "destination host '127.0.0.1' is blocked" in result.detail
    assert result.detail.endswith("; segments=1, encoding=GSM-7")
    assert server.requests == []


def test_unresolvable_host_is_transient(server: RecordingServer) -> None:
    def no_dns(host: str, port: int) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    provider = TwilioProvider(SID, TOKEN, FROM, base_url="https://api.twilio.invalid")
    with channel_for(provider, resolver=no_dns) as channel:
        result = channel.send(sms(), NOW)

    assert result.status == "transient_failure"
    assert "could not resolve host 'api.twilio.invalid'" in result.detail


def test_hostname_is_pinned_to_the_checked_address(server: RecordingServer) -> None:
    server.responder = twilio_emulator
    provider = TwilioProvider(SID, TOKEN, FROM, base_url=f"http://api.sms.test:{server.port}")
    with channel_for(provider, resolver=resolves_to("127.0.0.1")) as channel:
        result = channel.send(sms(), NOW)

    assert result.ok, result.detail
    assert server.requests[0].headers["host"] == f"api.sms.test:{server.port}"
    assert result.detail.startswith(f"HTTP 201 from api.sms.test:{server.port}")


def test_from_settings_end_to_end(server: RecordingServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STOREFLOW_CONFIG", str(tmp_path / "absent.toml"))
    server.responder = twilio_emulator
    settings = Settings(
        sms_provider="twilio", sms_from=FROM, twilio_account_sid=SID, twilio_auth_token=TOKEN,
        twilio_base_url=server.url(""), webhook_allow_private=True, default_phone_region="BR",
    )  # fmt: skip
    channel = SmsChannel.from_settings(settings)
    assert channel is not None
    try:
        result = channel.send(sms(to="11 98765-4321"), NOW)
    finally:
        channel.close()
    assert result.ok, result.detail
    assert form(server.requests[0])["To"] == "+5511987654321"


# -- generic HTTP provider ------------------------------------------------------------------------

BEARER = "gw-token-not-real"


def gateway_emulator(req: Recorded) -> Reply:
    if req.headers.get("authorization") != f"Bearer {BEARER}":
        return Reply(401, b'{"error": "invalid token"}')
    if req.headers.get("content-type") != "application/json" or not req.headers.get("idempotency-key"):
        return Reply(400, b'{"error": "bad request"}')
    return Reply(202, json.dumps({"id": 987654, "status": "accepted"}).encode())


@pytest.fixture
def gateway(server: RecordingServer) -> Iterator[SmsChannel]:
    server.responder = gateway_emulator
    channel = SmsChannel(
        HttpProvider(server.url("/v1/sms"), BEARER), default_from="ACME", allow_private=True, default_region="BR"
    )
    try:
        yield channel
    finally:
        channel.close()


def test_gateway_success_with_bearer_and_idempotency_key(server: RecordingServer, gateway: SmsChannel) -> None:
    first = gateway.send(sms(to="(11) 98765-4321", text="Oi 👋"), NOW)
    retry = gateway.send(sms(to="(11) 98765-4321", text="Oi 👋", attempt=2), NOW)

    assert first.status == retry.status == "sent", first.detail
    assert first.provider_id == "987654"
    assert first.detail == f"HTTP 202 from 127.0.0.1:{server.port}; segments=1, encoding=UCS-2"
    one, two = server.requests
    assert one.method == "POST"
    assert one.path == "/v1/sms"
    assert one.headers["authorization"] == f"Bearer {BEARER}"
    assert one.headers["idempotency-key"] == two.headers["idempotency-key"] == MSG_ID
    assert json.loads(one.body) == {"to": "+5511987654321", "from": "ACME", "text": "Oi 👋", "message_id": MSG_ID}
    assert BEARER not in first.detail


def test_gateway_status_callback_is_included_when_given(server: RecordingServer, gateway: SmsChannel) -> None:
    assert gateway.send(sms(status_callback="https://shop.example.com/cb"), NOW).ok
    assert json.loads(server.requests[0].body)["status_callback"] == "https://shop.example.com/cb"


def test_gateway_without_any_sender_sends_null_from(server: RecordingServer) -> None:
    server.responder = gateway_emulator
    with channel_for(HttpProvider(server.url("/v1/sms"), BEARER)) as channel:
        assert channel.send(sms(), NOW).ok
    assert json.loads(server.requests[0].body)["from"] is None


@pytest.mark.parametrize(
    ("status", "body", "expected", "detail"),
    [
        (400, b'{"error": "number is on the carrier block list"}', "permanent_failure", "carrier block list"),
        (422, b'{"message": "text too long"}', "permanent_failure", "text too long"),
        (404, b"<html>nope</html>", "permanent_failure", "the provider rejected the request"),
        (409, b'{"error": "request with this key in progress"}', "transient_failure", "in progress"),
        (502, b"bad gateway", "transient_failure", "try again later"),
    ],
)
def test_gateway_classification(
    server: RecordingServer, gateway: SmsChannel, status: int, body: bytes, expected: str, detail: str
) -> None:
    server.responder = lambda req: Reply(status, body)
    result = gateway.send(sms(), NOW)

    assert result.status == expected
    assert detail in result.detail
    assert result.response_status == status


def test_gateway_wrong_token_is_permanent(server: RecordingServer) -> None:
    server.responder = gateway_emulator
    with channel_for(HttpProvider(server.url("/v1/sms"), "other-token")) as channel:
        result = channel.send(sms(), NOW)
    assert result.status == "permanent_failure"
    assert "invalid token" in result.detail


def test_response_timeout_on_the_idempotent_http_provider_is_retried(server: RecordingServer) -> None:
    server.responder = lambda req: Reply(200, b'{"id": "x"}', delay_s=5)
    with channel_for(HttpProvider(server.url("/v1/sms"), BEARER, timeout_s=0.3)) as channel:
        result = channel.send(sms(), NOW)

    assert result.status == "transient_failure"
    assert "same Idempotency-Key" in result.detail
