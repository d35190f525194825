"""The ``store`` fixture for the per-port contract tests (tests/contract/test_port_*.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storeflow.store import Store, open_store


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on each backend (``db_url`` is parametrized over SQLite and PostgreSQL)."""
    opened = open_store(db_url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()
