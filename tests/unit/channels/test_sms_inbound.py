"""Inbound SMS helpers: opt-out keywords and Twilio request signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from storeflow.channels.sms_inbound import parse_keyword, twilio_signature, verify_twilio_signature

# -- keywords -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", ["STOP", "stop", "Stop", "  stop\n", "END", "quit", "Unsubscribe", "CANCEL", "stopall"]
)
def test_stop_keywords(body: str) -> None:
    assert parse_keyword(body) == "stop"


@pytest.mark.parametrize("body", ["START", "unstop", " Yes "])
def test_start_keywords(body: str) -> None:
    assert parse_keyword(body) == "start"


@pytest.mark.parametrize("body", ["HELP", "info", "\tHelp\r\n"])
def test_help_keywords(body: str) -> None:
    assert parse_keyword(body) == "help"


@pytest.mark.parametrize(
    "body",
    [
        *("", "   ", "stop please", "please stop", "STOP.", "STOP!", "S T O P", "stopp", "yes please", "no"),
        "\u017ftop",  # LONG S, which str.upper() maps to "S"
        "\uff33\uff34\uff2f\uff30",  # fullwidth STOP
    ],
)
def test_anything_but_the_whole_keyword_is_not_a_keyword(body: str) -> None:
    assert parse_keyword(body) is None


def test_unicode_whitespace_around_the_keyword_is_trimmed() -> None:
    assert parse_keyword("\u00a0STOP\u2003") == "stop"


# -- Twilio signatures ----------------------------------------------------------------------------

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
# The vector published in Twilio's helper library tests (twilio-python tests/unit/test_request_validator.py).
PUBLISHED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def independent_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's documented algorithm, written out step by step: the full URL, then each POST
    parameter sorted by name with its value appended directly, HMAC-SHA1 keyed by the auth token,
    base64-encoded."""
    data = url
    for name in sorted(params):
        data += name
        data += params[name]
    mac = hmac.new(token.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def test_known_vector() -> None:
    assert independent_signature(TOKEN, URL, PARAMS) == PUBLISHED
    assert twilio_signature(TOKEN, URL, PARAMS) == PUBLISHED
    assert verify_twilio_signature(TOKEN, URL, PARAMS, PUBLISHED)


def test_sms_callback_vector_computed_independently() -> None:
    token = "a3f1c0ffee5e5e5e5e5e5e5e5e5e5e5e"
    url = "https://shop.example.com/api/v1/sms/inbound/twilio"
    params = {
        "MessageSid": "SM0123456789abcdef0123456789abcdef",
        "AccountSid": "AC0123456789abcdef0123456789abcdef",
        "From": "+5511987654321",
        "To": "+15005550006",
        "Body": "Stop ✋ ação",
        "NumMedia": "0",
    }
    signature = independent_signature(token, url, params)
    assert verify_twilio_signature(token, url, params, signature)


@pytest.mark.parametrize(
    ("name", "value"),
    [("To", "+18005551213"), ("Digits", "1235"), ("Extra", "1"), ("caller", "+14158675309")],
)
def test_tampered_or_added_param_fails(name: str, value: str) -> None:
    params = {**PARAMS, name: value}
    assert not verify_twilio_signature(TOKEN, URL, params, PUBLISHED)


def test_removed_param_fails() -> None:
    params = {k: v for k, v in PARAMS.items() if k != "Digits"}
    assert not verify_twilio_signature(TOKEN, URL, params, PUBLISHED)


@pytest.mark.parametrize(
    "url",
    [
        "https://mycompany.com/myapp.php?foo=1&bar=3",
        "https://mycompany.com/myapp.php?bar=2&foo=1",
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        "https://evil.com/myapp.php?foo=1&bar=2",
        "https://mycompany.com/myapp.php",
    ],
)
def test_other_url_fails(url: str) -> None:
    assert not verify_twilio_signature(TOKEN, url, PARAMS, PUBLISHED)


def test_wrong_token_empty_token_and_garbage_signatures_fail() -> None:
    assert not verify_twilio_signature("54321", URL, PARAMS, PUBLISHED)
    assert not verify_twilio_signature("", URL, PARAMS, PUBLISHED)
    assert not verify_twilio_signature(TOKEN, URL, PARAMS, "")
    assert not verify_twilio_signature(TOKEN, URL, PARAMS, PUBLISHED[:-1])
    assert not verify_twilio_signature(TOKEN, URL, PARAMS, "ünïcødé")


def test_port_variants_are_accepted_as_twilio_signs_either_form() -> None:
    # Signed without a port, requested with one (a proxy reports it) and vice versa.
    with_port = URL.replace(".com", ".com:1234")
    assert verify_twilio_signature(TOKEN, with_port, PARAMS, PUBLISHED)
    signed_with_443 = independent_signature(TOKEN, URL.replace(".com", ".com:443"), PARAMS)
    assert verify_twilio_signature(TOKEN, URL, PARAMS, signed_with_443)
    http = URL.replace("https", "http")
    signed_with_80 = independent_signature(TOKEN, http.replace(".com", ".com:80"), PARAMS)
    assert verify_twilio_signature(TOKEN, http, PARAMS, signed_with_80)


def test_no_params_signs_the_url_alone() -> None:
    signature = independent_signature(TOKEN, URL, {})
    assert verify_twilio_signature(TOKEN, URL, {}, signature)
    assert not verify_twilio_signature(TOKEN, URL, {"Body": "hi"}, signature)
