"""EmailChannel over implicit TLS and STARTTLS (with AUTH) against aiosmtpd, certificates from the
openssl CLI: a throwaway CA and a leaf for 127.0.0.1 / localhost."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from test_email_support import SmtpRecorder

from storeflow.channels.base import OutboundMessage
from storeflow.channels.email import EmailChannel
from storeflow.channels.smtp_pool import SmtpConfig

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("smtp-pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=storeflow smtp test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip
    _openssl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost", cwd=d)
    (d / "leaf.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext",
        cwd=d,
    )  # fmt: skip
    return d


def server_context(pki: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki / "leaf.pem", pki / "leaf.key")
    return ctx


def client_context(pki: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki / "ca.pem"))


def message() -> OutboundMessage:
    payload = {"to": "ana@example.com", "subject": "Olá", "text": "Rp 150.000", "html": "<p>Olá</p>"}
    return OutboundMessage(id="run_1:steps[0]", channel="email", payload=payload)


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"shop", b"pa55-w0rd")
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@pytest.fixture
def tls_smtp(pki: Path) -> Iterator[SmtpRecorder]:
    server = SmtpRecorder(ssl_context=server_context(pki)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def starttls_smtp(pki: Path) -> Iterator[SmtpRecorder]:
    server = SmtpRecorder(
        tls_context=server_context(pki), require_starttls=True, auth_required=True, authenticator=authenticator
    ).start()
    try:
        yield server
    finally:
        server.stop()


def test_implicit_tls(pki: Path, tls_smtp: SmtpRecorder) -> None:
    cfg = SmtpConfig("127.0.0.1", tls_smtp.port, "tls", timeout_s=5.0)
    with EmailChannel(cfg, default_from="loja@shop.example.com", ssl_context=client_context(pki)) as ch:
        results = [ch.send(message(), NOW) for _ in range(3)]

    assert [r.status for r in results] == ["sent"] * 3, results[0].detail
    assert tls_smtp.connection_count == 1
    assert [m.message["Subject"] for m in tls_smtp.messages] == ["Olá"] * 3


def test_implicit_tls_with_an_untrusted_certificate_is_transient(tls_smtp: SmtpRecorder) -> None:
    cfg = SmtpConfig("127.0.0.1", tls_smtp.port, "tls", timeout_s=5.0)
    with EmailChannel(cfg, default_from="loja@shop.example.com") as ch:  # system trust store only
        result = ch.send(message(), NOW)

    assert result.status == "transient_failure"
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert tls_smtp.messages == []


def test_starttls_then_login(pki: Path, starttls_smtp: SmtpRecorder) -> None:
    cfg = SmtpConfig("127.0.0.1", starttls_smtp.port, "starttls", "shop", "pa55-w0rd", timeout_s=5.0)
    with EmailChannel(cfg, default_from="loja@shop.example.com", ssl_context=client_context(pki)) as ch:
        result = ch.send(message(), NOW)

    assert result.status == "sent", result.detail
    [got] = starttls_smtp.messages
    assert got.tls
    assert got.login == b"shop"


def test_starttls_required_but_not_offered_is_transient() -> None:
    plain = SmtpRecorder().start()
    try:
        cfg = SmtpConfig("127.0.0.1", plain.port, "starttls", timeout_s=5.0)
        with EmailChannel(cfg, default_from="loja@shop.example.com") as ch:
            result = ch.send(message(), NOW)
    finally:
        plain.stop()

    assert result.status == "transient_failure"
    assert "STARTTLS" in result.detail
    assert plain.messages == []
