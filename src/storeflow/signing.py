"""Signed tokens for links storeflow puts in messages: unsubscribe, open pixel, click redirect.

Tokens are itsdangerous signatures over a small JSON payload, salted per purpose, so a click token
can never unsubscribe and a forged or edited token is refused. The key is ``signing_secret``
(set one in production; without it a per-database fallback is derived by the caller).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import zlib
from typing import Any, Literal

from itsdangerous import BadSignature, URLSafeSerializer

from storeflow.errors import Problem, ValidationError

Purpose = Literal["unsubscribe", "open", "click", "sms-inbound"]


class Signer:
    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("the signing secret must be at least 16 characters")
        self._secret = secret
        self._serializers: dict[str, URLSafeSerializer] = {}
        self._keys: dict[str, bytes] = {}

    def _serializer(self, purpose: Purpose) -> URLSafeSerializer:
        found = self._serializers.get(purpose)
        if found is None:  # one per purpose: every message signs two or three links
            found = self._serializers[purpose] = URLSafeSerializer(self._secret, salt=f"storeflow.{purpose}")
        return found

    def sign(self, purpose: Purpose, payload: dict[str, Any]) -> str:
        """The token ``URLSafeSerializer(secret, salt=f"storeflow.{purpose}").dumps(payload)`` gives,
        byte for byte, without its per-call signer objects and key derivation (a message signs up
        to a handful of links, so this was a noticeable part of rendering one)."""
        key = self._keys.get(purpose)
        if key is None:  # itsdangerous's default "django-concat" derivation, SHA-1
            derive = f"storeflow.{purpose}signer{self._secret}".encode()
            key = self._keys[purpose] = hashlib.sha1(derive).digest()  # noqa: S324 - as itsdangerous does
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        compressed = zlib.compress(data)
        body = b"." + _b64(compressed) if len(compressed) < len(data) - 1 else _b64(data)
        return (body + b"." + _b64(hmac.digest(key, body, "sha1"))).decode()

    def verify(self, purpose: Purpose, token: str) -> dict[str, Any]:
        """The payload of a valid token; ValidationError for a forged, edited or foreign one."""
        try:
            data = self._serializer(purpose).loads(token)
        except BadSignature as exc:
            raise ValidationError([Problem("token", f"this {purpose} link is not valid",
                                           "it may have been copied incompletely")]) from exc
        if not isinstance(data, dict):
            raise ValidationError([Problem("token", f"this {purpose} link is not valid")])
        return data


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")
