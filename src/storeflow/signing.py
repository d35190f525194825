"""Signed tokens for links storeflow puts in messages: unsubscribe, open pixel, click redirect.

Tokens are itsdangerous signatures over a small JSON payload, salted per purpose, so a click token
can never unsubscribe and a forged or edited token is refused. The key is ``signing_secret``
(set one in production; without it a per-database fallback is derived by the caller).
"""

from __future__ import annotations

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

    def _serializer(self, purpose: Purpose) -> URLSafeSerializer:
        found = self._serializers.get(purpose)
        if found is None:  # one per purpose: every message signs two or three links
            found = self._serializers[purpose] = URLSafeSerializer(self._secret, salt=f"storeflow.{purpose}")
        return found

    def sign(self, purpose: Purpose, payload: dict[str, Any]) -> str:
        return str(self._serializer(purpose).dumps(payload))

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
