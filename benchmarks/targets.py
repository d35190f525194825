"""The databases a benchmark runs against: each scenario gets a fresh, empty one, removed after.

* SQLite: a new file in a temporary directory (WAL, as storeflow configures it).
* PostgreSQL: a new private schema on the given server (the URL's own ``search_path``, if any, is
  replaced), dropped afterwards.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storeflow.store.factory import normalize_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class Target(Protocol):
    name: str

    def database(self) -> AbstractContextManager[str]:
        """A URL of a fresh, empty database (storeflow migrates it on open), removed on exit."""
        ...

    def describe(self) -> dict[str, str]:
        """Backend version and settings worth printing next to the figures."""
        ...


class SqliteTarget:
    name = "sqlite"

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory

    @contextmanager
    def database(self) -> Iterator[str]:
        base = Path(tempfile.mkdtemp(prefix="storeflow-bench-", dir=self.directory))
        try:
            yield f"sqlite:///{base / 'bench.db'}"
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def describe(self) -> dict[str, str]:
        import sqlite3

        return {"version": sqlite3.sqlite_version, "settings": "file in a temp dir, WAL, synchronous=NORMAL"}


class PostgresTarget:
    name = "postgres"

    def __init__(self, url: str = DEFAULT_POSTGRES_URL) -> None:
        parsed = make_url(normalize_url(url))
        query = {k: v for k, v in parsed.query.items() if k != "options"}
        self.server_url = parsed.set(query=query)

    def problem(self) -> str | None:
        """None if the server answers, else why not."""
        try:
            engine = create_engine(self.server_url)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
        except Exception as exc:  # any driver or network error
            return f"PostgreSQL not reachable at {self.server_url.render_as_string()}: {type(exc).__name__}: {exc}"
        return None

    @contextmanager
    def database(self) -> Iterator[str]:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = self.server_url.update_query_dict({"options": f"-csearch_path={schema}"})
            try:
                yield url.render_as_string(hide_password=False)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            admin.dispose()

    def describe(self) -> dict[str, str]:
        engine = create_engine(self.server_url)
        try:
            with engine.connect() as conn:
                version = str(conn.execute(text("SHOW server_version")).scalar_one())
                settings = {name: str(conn.execute(text(f"SHOW {name}")).scalar_one())
                            for name in ("synchronous_commit", "shared_buffers", "fsync")}
        finally:
            engine.dispose()
        return {"version": version, "settings": ", ".join(f"{k}={v}" for k, v in settings.items()),
                "server": self.server_url.render_as_string()}
