"""Shared fixtures: every storage-backed test runs on SQLite and on PostgreSQL.

PostgreSQL comes from STOREFLOW_TEST_POSTGRES_URL (default: the local server, database ``test``).
Each test gets its own schema. Where PostgreSQL is unreachable its tests skip with the reason,
except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.settings import Settings

PG_URL = os.environ.get("STOREFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_pg_problem: str | None = None
_pg_checked = False


def postgres_problem() -> str | None:
    """None if PostgreSQL answers, else why not (checked once per session)."""
    global _pg_checked, _pg_problem
    if not _pg_checked:
        _pg_checked = True
        try:
            eng = create_engine(PG_URL)
            with eng.connect() as conn:
                conn.execute(text("SELECT 1"))
            eng.dispose()
        except Exception as exc:  # any driver or network error
            _pg_problem = f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}: {exc}"
    return _pg_problem


def require_postgres() -> None:
    problem = postgres_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true needs PostgreSQL: {problem}")
        pytest.skip(problem)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections use a fresh, private schema."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
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


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/storeflow.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def make_sf(db_url: str, clock: VirtualClock) -> Iterator[object]:
    created: list[Storeflow] = []

    def make(**overrides: object) -> Storeflow:
        settings = Settings(database_url=db_url, **overrides)  # type: ignore[arg-type]
        sf = Storeflow(settings, clock=clock)
        created.append(sf)
        return sf

    yield make
    for sf in created:
        sf.close()


@pytest.fixture
def sf(make_sf: object) -> Storeflow:
    return make_sf()  # type: ignore[operator,no-any-return]
