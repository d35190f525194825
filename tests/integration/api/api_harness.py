"""Test harness for the HTTP API tests: an app on a real database, keys, a fake timer."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from storeflow.api import create_app
from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.settings import Settings

with warnings.catch_warnings():
    # Starlette >= 1.x warns at import when it falls back to httpx (it wants httpx2); the project
    # does not depend on httpx2 yet. Scoped to this one import so no other warning is hidden.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


class FakeTimer:
    """Stands in for time.monotonic in the API (rate limits, key cache, latency)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Api:
    sf: Storeflow
    client: TestClient
    timer: FakeTimer
    private_key: str
    public_key: str
    private_key_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.private_key}"}

    @property
    def public_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.public_key}"}

    def upload_flow(self, document: str, **params: str) -> Any:
        return self.client.post("/v1/flows", content=document, params=params,
                                headers={**self.auth, "Content-Type": "application/yaml"})


ApiFactory = Callable[..., Api]


def factory(url: str, stack: ExitStack) -> ApiFactory:
    def make(*, max_body_bytes: int | None = None, key_cache_ttl_s: float = 5.0, **settings: Any) -> Api:
        sf = Storeflow(Settings(database_url=url, **settings),
                       clock=VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)))
        timer = FakeTimer()
        options: dict[str, Any] = {"timer": timer, "key_cache_ttl_s": key_cache_ttl_s}
        if max_body_bytes is not None:
            options["max_body_bytes"] = max_body_bytes
        stack.callback(sf.close)
        client = stack.enter_context(TestClient(create_app(sf, **options)))
        private_id, private = sf.keys.create("private", "tests")
        _, public = sf.keys.create("public", "storefront")
        return Api(sf, client, timer, private, public, private_id)

    return make


CART_FLOW = """\
id: cart-tag
name: Tag carts
status: live
trigger:
  event: checkout_started
steps:
  - id: tag-cart
    action: tag
    tags: [cart]
"""


def checkout(event_id: str = "e1", email: str = "ana@example.com", **extra: Any) -> dict[str, Any]:
    return {"type": "checkout_started", "id": event_id, "email": email,
            "properties": {"cart_id": f"cart-{event_id}", "total": "49.90", "currency": "USD"}, **extra}
