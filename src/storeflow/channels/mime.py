"""Writing an email's bytes directly: headers already checked and formatted by the email channel,
bodies in UTF-8, 7-bit clean.

This is what ``EmailMessage.set_content``/``add_alternative`` and ``as_bytes`` produce for the same
message (the same headers in the same order, ``multipart/alternative`` for text plus HTML), at a
small part of their cost: the email package's generator was most of the time it took to send a
message. Bodies are ``7bit`` when they are ASCII with short lines, else quoted-printable (binascii,
in C). Line endings are CRLF.
"""

from __future__ import annotations

import binascii
import secrets
from collections.abc import Sequence

_MAX_LINE = 78  # the email package's limit for a 7bit body line (policy.max_line_length)


def _lines(body: str) -> list[str]:
    return body.splitlines()


def encode_body(body: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded body ending with CRLF), as the email package chooses
    for ASCII; anything else is quoted-printable."""
    lines = _lines(body)
    if body.isascii() and max((len(line) for line in lines), default=0) <= _MAX_LINE:
        return "7bit", ("\r\n".join(lines) + "\r\n").encode("ascii")
    raw = ("\n".join(lines) + "\n").encode("utf-8")
    encoded = binascii.b2a_qp(raw, quotetabs=False, istext=True, header=False)
    return "quoted-printable", encoded.replace(b"\n", b"\r\n")


def _part_headers(subtype: str, cte: str) -> str:
    return f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n'


def build(headers: Sequence[str], text: str | None, html: str | None, *, utf8: bool = False) -> bytes:
    """The message: ``headers`` are complete folded header lines without their line ending
    (``"Subject: Hi"``), followed by the MIME headers and the text and/or HTML body."""
    head = "\r\n".join(headers) + "\r\nMIME-Version: 1.0\r\n"
    charset = "utf-8" if utf8 else "ascii"
    if text is None or html is None:
        subtype, body = ("plain", text) if text is not None else ("html", html)
        assert body is not None
        cte, data = encode_body(body)
        return (head + _part_headers(subtype, cte) + "\r\n").encode(charset) + data
    (text_cte, text_data), (html_cte, html_data) = encode_body(text), encode_body(html)
    boundary = f"=_storeflow_{secrets.token_hex(12)}"
    while boundary.encode("ascii") in text_data or boundary.encode("ascii") in html_data:
        boundary = f"=_storeflow_{secrets.token_hex(12)}"
    # The line break before a boundary belongs to the boundary (RFC 2046), not to the part.
    return b"".join([
        (head + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n').encode(charset),
        f"--{boundary}\r\n".encode("ascii"), _part_headers("plain", text_cte).encode("ascii"), b"\r\n",
        text_data, f"\r\n--{boundary}\r\n".encode("ascii"), _part_headers("html", html_cte).encode("ascii"),
        b"\r\n", html_data, f"\r\n--{boundary}--\r\n".encode("ascii"),
    ])
