"""mime.build writes what the email package would parse back to the same message."""

from __future__ import annotations

import email
import email.policy

import pytest

from storeflow.channels.mime import build, encode_body

BODIES = [
    "Hi Ana,\n\nyour cart is waiting.\n",
    "no final line break",
    "Olá Ana — pedido confirmado (Rp 150.000)\r\nsegunda linha\n",
    "<p>" + "x" * 300 + "</p>\n<p>trailing space </p>\n.\n.starts with a dot\nFrom the start\n",
    "tab\tand = sign and =3D already\n\n\n",
]


@pytest.mark.parametrize("body", BODIES)
def test_each_body_reads_back_as_the_email_package_normalises_it(body: str) -> None:
    for text, html in ((body, None), (None, body), (body, f"<p>{body}</p>")):
        data = build(["Subject: s", "X-Test: 1"], text, html)
        assert data.isascii()
        assert all(len(line) <= 998 for line in data.split(b"\r\n"))
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg["Subject"] == "s" and msg["X-Test"] == "1" and msg["MIME-Version"] == "1.0"
        parts = list(msg.iter_parts()) if text is not None and html is not None else [msg]
        expected = [(kind, value) for kind, value in (("plain", text), ("html", html)) if value is not None]
        assert [p.get_content_type() for p in parts] == [f"text/{kind}" for kind, _ in expected]
        for part, (_, value) in zip(parts, expected, strict=True):
            assert part.get_content_charset() == "utf-8"
            assert part.get_content().replace("\r\n", "\n") == "\n".join(value.splitlines()) + "\n"


def test_short_ascii_bodies_stay_7bit_and_others_are_quoted_printable() -> None:
    assert encode_body("hello\n") == ("7bit", b"hello\r\n")
    assert encode_body("olá\n")[0] == "quoted-printable"
    assert encode_body("x" * 79)[0] == "quoted-printable"
