"""API keys. A private key can do everything; a public key may only ingest events.

Keys look like ``sf_priv_<43 chars>`` / ``sf_pub_<43 chars>``; only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Literal

from storeflow.clock import Clock
from storeflow.model.events import new_id
from storeflow.store.base import Store

KeyKind = Literal["private", "public"]
_PREFIX = {"private": "sf_priv_", "public": "sf_pub_"}


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store, self.clock = store, clock

    def create(self, kind: KeyKind, name: str = "") -> tuple[str, str]:
        """Returns (key id, secret). The secret is shown once and never stored."""
        secret = _PREFIX[kind] + secrets.token_urlsafe(32)
        key_id = new_id("key")
        with self.store.transaction() as tx:
            tx.insert_key({"id": key_id, "name": name or f"{kind} key", "kind": kind, "prefix": secret[:12],
                           "secret_hash": hash_secret(secret), "created_at": self.clock.now()})
        return key_id, secret

    def authenticate(self, secret: str) -> dict[str, Any] | None:
        if not secret.startswith(tuple(_PREFIX.values())):
            return None
        with self.store.read() as tx:
            return tx.key_by_hash(hash_secret(secret))

    def list(self) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            return [{k: v for k, v in row.items() if k != "secret_hash"} for row in tx.list_keys()]

    def revoke(self, key_id: str) -> bool:
        with self.store.transaction() as tx:
            return tx.revoke_key(key_id, self.clock.now())
