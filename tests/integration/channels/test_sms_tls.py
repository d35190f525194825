"""The production path: Twilio over HTTPS to a host name. The request goes to the netguard-checked IP
while TLS sends the name (SNI) and verifies the certificate against it. Certificates come from the
openssl CLI."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from webhook_server import RecordingServer, Reply

from storeflow.channels import OutboundMessage
from storeflow.channels.sms import SmsChannel, TwilioProvider

HOST = "api.twilio.test"
SID = "AC0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sms-pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=storeflow sms test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    _openssl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", f"/CN={HOST}", cwd=d)
    (d / "leaf.ext").write_text(
        f"subjectAltName=DNS:{HOST}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext",
        cwd=d,
    )  # fmt: skip
    return d


@pytest.fixture
def tls_server(pki: Path) -> Iterator[tuple[RecordingServer, list[str | None]]]:
    sni_seen: list[str | None] = []
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki / "leaf.pem", pki / "leaf.key")

    def record_sni(_sock: ssl.SSLObject, name: str, _ctx: ssl.SSLContext) -> None:
        sni_seen.append(name)

    ctx.sni_callback = record_sni
    srv = RecordingServer(ssl_context=ctx)
    srv.responder = lambda req: Reply(201, json.dumps({"sid": "SM1"}).encode())
    try:
        yield srv, sni_seen
    finally:
        srv.stop()


def resolve_to_loopback(host: str, port: int) -> list[tuple[Any, ...]]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


def send(pki: Path, base_url: str, trust: bool = True) -> Any:
    verify = ssl.create_default_context(cafile=str(pki / "ca.pem")) if trust else True
    with httpx.Client(verify=verify, trust_env=False) as client:
        provider = TwilioProvider(SID, "token", "+15005550006", base_url=base_url, client=client)
        channel = SmsChannel(provider, default_from=None, allow_private=True, resolver=resolve_to_loopback)
        message = OutboundMessage("run_1:steps[0]", "sms", {"to": "+5511987654321", "text": "oi"})
        return channel.send(message, NOW)


def test_https_to_pinned_address_keeps_sni_and_verifies_the_name(
    pki: Path, tls_server: tuple[RecordingServer, list[str | None]]
) -> None:
    server, sni_seen = tls_server
    result = send(pki, f"https://{HOST}:{server.port}")

    assert result.status == "sent", result.detail
    assert result.provider_id == "SM1"
    assert sni_seen == [HOST]
    assert server.requests[0].headers["host"] == f"{HOST}:{server.port}"


def test_untrusted_certificate_is_not_sent(pki: Path, tls_server: tuple[RecordingServer, list[str | None]]) -> None:
    server, _ = tls_server
    result = send(pki, f"https://{HOST}:{server.port}", trust=False)

    assert result.status == "transient_failure"
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert server.requests == []
