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
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from api_harness import Api, ApiFactory, factory
from sqlalchemy import create_engine, text

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
        yield factory(database_url, stack)


@pytest.fixture
def make_sqlite_api(tmp_path: Path) -> Iterator[ApiFactory]:
    """Build an API (with custom settings) on SQLite only."""
    with ExitStack() as stack:
        yield factory(f"sqlite:///{tmp_path}/t.db", stack)


@pytest.fixture
def api(make_api: ApiFactory) -> Api:
    return make_api()


@pytest.fixture
def sqlite_api(make_sqlite_api: ApiFactory) -> Api:
    return make_sqlite_api()


