"""API keys: who is calling, and may they call this route.

Send ``Authorization: Bearer <key>`` (or ``X-Api-Key: <key>``). A **private** key may call every
route; a **public** key (safe to ship in a storefront) may only send storefront events (see
:mod:`storeflow.api.storefront` and docs/api-keys.md).

Successful key lookups are cached in process for ``ttl`` seconds (default 5) so that a busy
ingest path does not query the key table per request. Consequence: **a revoked key keeps working
for at most ``ttl`` seconds** in each API process that used it recently. Failed lookups are not
cached. The cache is keyed by the SHA-256 of the key; keys themselves are never stored or logged.

Enforcement happens in :class:`storeflow.api.guard.GuardMiddleware` before the request body is read;
the dependencies below hand the checked :class:`Principal` to handlers, document the security
scheme in OpenAPI, and fail closed if a route were ever reached without the guard.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer

from storeflow.api.ratelimit import Timer, monotonic
from storeflow.service.keys import hash_secret

KeyKind = Literal["private", "public"]
PRINCIPAL_SCOPE_KEY = "storeflow.principal"

# Routes a public key may call; everything else under /v1, and /metrics, needs a private key.
PUBLIC_ROUTES = frozenset({"/v1/events", "/v1/events/batch"})

MISSING_KEY = "missing API key; send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'"
INVALID_KEY = "invalid or revoked API key"
NEEDS_PRIVATE = ("this route needs a private API key; a public key may only send storefront events "
                 "(POST /v1/events, POST /v1/events/batch)")


@dataclass(frozen=True)
class Principal:
    """The caller: an API key's id, kind and name (never its secret)."""

    key_id: str
    kind: KeyKind
    name: str


def required_kind(path: str) -> KeyKind | None:
    """The key kind a path needs: "public" (any key), "private", or None (no key: health, docs)."""
    if path in PUBLIC_ROUTES:
        return "public"
    if path in {"/metrics", "/v1"} or path.startswith("/v1/"):
        return "private"
    return None


def extract_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``Authorization: Bearer`` or ``X-Api-Key``; None if neither is usable."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class KeyAuthenticator:
    """Looks keys up through ``lookup`` (``sf.keys.authenticate``) with a short positive cache."""

    def __init__(self, lookup: Callable[[str], Mapping[str, Any] | None], *, ttl: float = 5.0,
                 now: Timer = monotonic, max_entries: int = 10_000) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._now = now
        self._max = max_entries
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def cached(self, secret: str) -> Principal | None:
        """The cached principal for ``secret`` if still fresh; no database access."""
        digest = hash_secret(secret)
        with self._lock:
            hit = self._cache.get(digest)
            if hit is None:
                return None
            if hit[0] <= self._now():
                del self._cache[digest]
                return None
            return hit[1]

    def authenticate(self, secret: str) -> Principal | None:
        """The principal for ``secret``, from the cache or the database (blocking)."""
        found = self.cached(secret)
        if found is not None:
            return found
        row = self._lookup(secret)
        if row is None or row.get("revoked_at") is not None or row.get("kind") not in ("private", "public"):
            return None
        kind: KeyKind = "private" if row["kind"] == "private" else "public"
        principal = Principal(str(row["id"]), kind, str(row.get("name") or ""))
        with self._lock:
            if len(self._cache) >= self._max:
                self._evict()
            self._cache[hash_secret(secret)] = (self._now() + self._ttl, principal)
        return principal

    def _evict(self) -> None:
        now = self._now()
        for digest in [d for d, (exp, _) in self._cache.items() if exp <= now]:
            del self._cache[digest]
        while len(self._cache) >= self._max:
            del self._cache[next(iter(self._cache))]  # oldest first (insertion order)


# OpenAPI documentation of the two ways to send a key; the guard does the real checking.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_api_key = APIKeyHeader(name="X-Api-Key", auto_error=False, description="The API key")


def _principal(request: Request) -> Principal:
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal):
        raise HTTPException(401, MISSING_KEY, headers={"WWW-Authenticate": "Bearer"})
    return principal


def any_key(request: Request, _b: Annotated[Any, Security(_bearer)] = None,
            _k: Annotated[Any, Security(_api_key)] = None) -> Principal:
    """Any valid key, public or private."""
    return _principal(request)


def private_key(request: Request, _b: Annotated[Any, Security(_bearer)] = None,
                _k: Annotated[Any, Security(_api_key)] = None) -> Principal:
    """A valid private key."""
    principal = _principal(request)
    if principal.kind != "private":
        raise HTTPException(403, NEEDS_PRIVATE)
    return principal


AnyKey = Annotated[Principal, Depends(any_key)]
PrivateKey = Annotated[Principal, Depends(private_key)]
