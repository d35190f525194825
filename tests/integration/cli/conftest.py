"""CLI tests run the real Typer app (CliRunner) on a temporary SQLite database, in a temporary
working directory so that ``storeflow.toml`` lands there."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import pytest
from cli_testing import Invoke
from typer.testing import CliRunner, Result

from storeflow.cli.main import app


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory, with no STOREFLOW_* variables from the outer environment."""
    for name in list(os.environ):
        if name.startswith("STOREFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def db_url(workdir: Path) -> str:
    return f"sqlite:///{workdir}/t.db"


@pytest.fixture
def run_cli(workdir: Path) -> Invoke:
    """Invoke ``storeflow ARGS`` (no global options added). STOREFLOW_CONFIG, which --config sets,
    is restored after each call."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), input=input, env={"STOREFLOW_CONFIG": None})

    return invoke


@pytest.fixture
def cli(run_cli: Invoke, db_url: str) -> Invoke:
    """Invoke ``storeflow --database-url sqlite:///<tmp>/t.db ARGS``."""

    def invoke(*args: str, input: str | None = None) -> Result:
        return run_cli("--database-url", db_url, *args, input=input)

    return invoke


@pytest.fixture
def write(workdir: Path) -> Callable[[str, str], Path]:
    def write_file(name: str, text: str) -> Path:
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")
        return path

    return write_file
