"""Signer.sign writes exactly itsdangerous's tokens, so links verify anywhere they did before."""

from __future__ import annotations

from typing import Any

import pytest
from itsdangerous import URLSafeSerializer

from storeflow.signing import Signer

SECRET = "s3cret-ß-" + "x" * 20


@pytest.mark.parametrize("payload", [
    {"m": "msg_01", "p": "prof_1", "c": "email"},
    {"m": "msg_01", "u": "https://shop.example/products/p1?utm_source=storeflow&utm_medium=email&x=" + "y" * 300},
    {"m": "é", "n": 1, "f": 1.5, "b": True, "z": None, "l": [1, "two"]},
    {},
])
@pytest.mark.parametrize("purpose", ["unsubscribe", "open", "click", "sms-inbound"])
def test_tokens_equal_itsdangerous_and_verify(purpose: Any, payload: dict[str, Any]) -> None:
    signer = Signer(SECRET)
    token = signer.sign(purpose, payload)
    assert token == URLSafeSerializer(SECRET, salt=f"storeflow.{purpose}").dumps(payload)
    assert signer.verify(purpose, token) == payload
    assert signer.sign(purpose, payload) == token  # the cached key gives the same token
