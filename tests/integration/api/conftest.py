"""HTTP API tests: the real ASGI app through TestClient, on a real database.

``api`` runs on SQLite and, when reachable, PostgreSQL (the main flows); ``sqlite_api`` runs on
SQLite only (auth, limits and request-shape checks that do not depend on the database).

PostgreSQL comes from STOREFLOW_TEST_POSTGRES_URL (default: the local server, database ``test``);
each test gets its own schema, dropped afterwards. If PostgreSQL is unreachable the PostgreSQL
variants skip with the reason, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from storeflow.api import create_app
from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.settings import Settings

with warnings.catch_warnings():
    # Starlette >= 1.x warns at import when it falls back to httpx (it wants httpx2); the project
    # does not depend on httpx2 yet. Scoped to this one import so no other warning is hidden.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PG_URL = os.environ.get("STOREFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_pg_state: dict[str, str | None] = {}


def _postgres_problem() -> str | None:
    """None if PostgreSQL answers, else why not (checked once per session)."""
    if "problem" not in _pg_state:
        try:
            engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            finally:
                engine.dispose()
            _pg_state["problem"] = None
        except Exception as exc:  # any driver or network error
            _pg_state["problem"] = f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}: {exc}"
    return _pg_state["problem"]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema of their own."""
    problem = _postgres_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs PostgreSQL: {problem}")
        pytest.skip(problem)
    schema = f"api_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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


def _factory(url: str, stack: ExitStack) -> ApiFactory:
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/t.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def make_api(database_url: str) -> Iterator[ApiFactory]:
    """Build an API (with custom settings) on SQLite and PostgreSQL."""
    with ExitStack() as stack:
        yield _factory(database_url, stack)


@pytest.fixture
def make_sqlite_api(tmp_path: Path) -> Iterator[ApiFactory]:
    """Build an API (with custom settings) on SQLite only."""
    with ExitStack() as stack:
        yield _factory(f"sqlite:///{tmp_path}/t.db", stack)


@pytest.fixture
def api(make_api: ApiFactory) -> Api:
    return make_api()


@pytest.fixture
def sqlite_api(make_sqlite_api: ApiFactory) -> Api:
    return make_sqlite_api()


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
