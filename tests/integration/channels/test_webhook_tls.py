"""HTTPS with a pinned address: the request goes to the checked IP while TLS still sends the host name
(SNI) and verifies the certificate against the name, not the IP. Certificates come from the openssl CLI."""

from __future__ import annotations

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
from standardwebhooks import Webhook
from webhook_server import RecordingServer

from storeflow.channels import OutboundMessage, WebhookChannel

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HOST = "hooks.example.test"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=storeflow test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
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
    try:
        yield srv, sni_seen
    finally:
        srv.stop()


def resolve_to_loopback(host: str, port: int) -> list[tuple[Any, ...]]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


def test_https_to_pinned_address_keeps_sni_and_verifies_the_name(
    pki: Path, tls_server: tuple[RecordingServer, list[str | None]]
) -> None:
    server, sni_seen = tls_server
    verify = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    msg = OutboundMessage(
        id="run_1:steps[0]",
        channel="webhook",
        payload={"url": server.url(host=HOST, scheme="https"), "body": {"a": 1}},
    )
    with httpx.Client(verify=verify) as client:
        ch = WebhookChannel({}, SECRET, allow_private=True, client=client, resolver=resolve_to_loopback)
        result = ch.send(msg, datetime.now(UTC))

    assert result.status == "sent", result.detail
    assert sni_seen == [HOST]
    [req] = server.requests
    assert req.headers["host"] == f"{HOST}:{server.port}"
    Webhook(SECRET).verify(req.body, req.headers)


def test_certificate_for_another_name_is_rejected(
    pki: Path, tls_server: tuple[RecordingServer, list[str | None]]
) -> None:
    server, _ = tls_server
    verify = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    url = server.url(host="other.example.test", scheme="https")
    msg = OutboundMessage(id="run_1:steps[0]", channel="webhook", payload={"url": url, "body": {}})
    with httpx.Client(verify=verify) as client:
        ch = WebhookChannel({}, SECRET, allow_private=True, client=client, resolver=resolve_to_loopback)
        result = ch.send(msg, datetime.now(UTC))

    assert result.status == "transient_failure"
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert server.requests == []
