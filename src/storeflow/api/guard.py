"""The guard: authentication, key kind and rate limit, checked before the request body is read.

Order per request: no key -> 401, unknown or revoked key -> 401 (both with ``WWW-Authenticate:
Bearer``), public key on a private route -> 403, empty token bucket -> 429 with ``Retry-After``
(a private key's bucket is the key's; a public key's is the client address's, see
:mod:`storeflow.api.ratelimit`).
Allowed responses carry ``X-RateLimit-Limit`` / ``X-RateLimit-Remaining``. Running as ASGI
middleware (not as a FastAPI dependency) means an unauthenticated or throttled client never gets
its body read or parsed.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storeflow.api.auth import (
    INVALID_KEY,
    MISSING_KEY,
    NEEDS_PRIVATE,
    PRINCIPAL_SCOPE_KEY,
    KeyAuthenticator,
    Principal,
    extract_key,
    required_kind,
)
from storeflow.api.encoding import json_response
from storeflow.api.ratelimit import TokenBucketLimiter, client_address, parse_networks
from storeflow.errors import StorageError
from storeflow.settings import Settings

log = logging.getLogger("storeflow.api")


def route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


class GuardMiddleware:
    def __init__(self, app: ASGIApp, *, authenticator: KeyAuthenticator, limiter: TokenBucketLimiter,
                 settings: Settings) -> None:
        self.app = app
        self.auth = authenticator
        self.limiter = limiter
        self.limits = {
            "private": (settings.rate_limit_private_per_s, settings.rate_limit_private_burst),
            "public": (settings.rate_limit_public_per_s, settings.rate_limit_public_burst),
        }
        self.trusted_proxies = parse_networks(settings.trusted_proxies)

    def bucket(self, scope: Scope, principal: Principal) -> str:
        """The rate-limit bucket: the key for a private key, key and client address for a public one."""
        if principal.kind == "private":
            return principal.key_id
        client = scope.get("client")
        forwarded = Headers(scope=scope).getlist("x-forwarded-for") if self.trusted_proxies else []
        return f"{principal.key_id}@{client_address(client[0] if client else None, forwarded, self.trusted_proxies)}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        need = required_kind(route_path(scope))
        if need is None:
            await self.app(scope, receive, send)
            return

        async def reply(status: int, detail: str, headers: dict[str, str] | None = None) -> None:
            await json_response({"detail": detail}, status, headers)(scope, receive, send)

        secret = extract_key(Headers(scope=scope))
        if secret is None:
            await reply(401, MISSING_KEY, {"WWW-Authenticate": "Bearer"})
            return
        principal = self.auth.cached(secret)
        if principal is None:
            try:
                principal = await run_in_threadpool(self.auth.authenticate, secret)
            except StorageError:
                log.exception("API key lookup failed")
                await reply(503, "the database is unavailable; try again shortly", {"Retry-After": "1"})
                return
        if principal is None:
            await reply(401, INVALID_KEY, {"WWW-Authenticate": "Bearer"})
            return
        if need == "private" and principal.kind != "private":
            await reply(403, NEEDS_PRIVATE)
            return
        rate, burst = self.limits[principal.kind]
        decision = self.limiter.take(self.bucket(scope, principal), rate, burst)
        if not decision.allowed:
            who = "API key" if principal.kind == "private" else "client address"
            await reply(429, f"rate limit exceeded for this {who} ({principal.kind} keys: {rate:g} "
                        f"requests/s per {who}, bursts of {decision.limit}); retry after the Retry-After "
                        "seconds", decision.headers())
            return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        extra = decision.headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = ["GuardMiddleware", "Principal", "route_path"]
