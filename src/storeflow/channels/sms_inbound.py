"""Pure helpers for inbound SMS (the API's provider callbacks): opt-out keywords and Twilio signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Keyword = Literal["stop", "start", "help"]

KEYWORDS: Mapping[str, Keyword] = {
    **dict.fromkeys(("STOP", "END", "QUIT", "UNSUBSCRIBE", "CANCEL", "STOPALL"), "stop"),
    **dict.fromkeys(("START", "UNSTOP", "YES"), "start"),
    **dict.fromkeys(("HELP", "INFO"), "help"),
}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_keyword(body: str) -> Keyword | None:
    """``"stop"``, ``"start"`` or ``"help"`` when the whole message (trimmed, any case) is such a keyword.

    "stop please" or "STOP." is not a keyword: only an exact match counts, as carriers and Twilio do.
    """
    word = body.strip()
    if not word.isascii():  # no Unicode case mapping tricks (U+017F LONG S upper-cases to "S")
        return None
    return KEYWORDS.get(word.upper())


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Base64 HMAC-SHA1, keyed with the auth token, of the URL followed by each parameter's name and
    value in name order (Twilio's ``X-Twilio-Signature`` for form-encoded callbacks)."""
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_twilio_signature(auth_token: str, url: str, params: Mapping[str, str], signature: str) -> bool:
    """True if ``signature`` (the ``X-Twilio-Signature`` header) signs this request.

    ``url`` must be the full URL Twilio requested (scheme, host, path and query string exactly as
    configured in Twilio, i.e. the public URL, not the one a reverse proxy forwarded to), and
    ``params`` the form-encoded POST parameters (empty for a GET). Like Twilio's own validators, the
    URL is also tried without its port and with the scheme's default port added, because Twilio may
    sign either form. Comparison is constant-time; an empty token or signature never verifies.
    """
    if not auth_token or not signature:
        return False
    given = signature.strip().encode("utf-8")
    valid = False
    for candidate in _url_variants(url):
        expected = twilio_signature(auth_token, candidate, params).encode("ascii")
        valid |= hmac.compare_digest(expected, given)  # no early exit: same work either way
    return valid


def _url_variants(url: str) -> list[str]:
    """The URL as given, plus the same URL without its port or with the scheme's default port."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [url]
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not hostport:
        return [url]
    if port is not None:
        netloc = hostport[: hostport.rfind(":")]
    elif parts.scheme in _DEFAULT_PORTS:
        netloc = f"{hostport.rstrip(':')}:{_DEFAULT_PORTS[parts.scheme]}"
    else:
        return [url]
    return [url, urlunsplit(parts._replace(netloc=userinfo + at + netloc))]
