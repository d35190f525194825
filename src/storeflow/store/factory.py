"""Open the right store for a database URL."""

from __future__ import annotations

from storeflow.store.sql.store import SqlStore


def normalize_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def open_store(url: str, *, pool_size: int = 10) -> SqlStore:
    """SQLite for ``sqlite:///path`` (WAL, the embedded default), PostgreSQL for ``postgresql://``."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        from storeflow.store.sqlite import SqliteStore

        return SqliteStore(url)
    if url.startswith("postgresql"):
        from storeflow.store.postgres import PostgresStore

        return PostgresStore(url, pool_size=pool_size)
    from storeflow.errors import ConfigError

    raise ConfigError(
        f"unsupported database URL {url.split('://')[0]}://...; use sqlite:///path/to/file.db "
        "or postgresql://user@host:5432/db"
    )
