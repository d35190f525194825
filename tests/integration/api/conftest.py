"""HTTP API tests: the real ASGI app through TestClient, on a real database.

``api`` runs on SQLite and, when reachable, PostgreSQL (the main flows); ``sqlite_api`` runs on
SQLite only (auth, limits and request-shape checks that do not depend on the database).

The backends come from the shared ``db_url`` fixture in tests/conftest.py (a private PostgreSQL
schema per test; skipped with the reason when unreachable, a failure under CI=true).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from api_harness import Api, ApiFactory, factory


@pytest.fixture
def make_api(db_url: str) -> Iterator[ApiFactory]:
    """Build an API (with custom settings) on SQLite and PostgreSQL."""
    with ExitStack() as stack:
        yield factory(db_url, stack)


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


