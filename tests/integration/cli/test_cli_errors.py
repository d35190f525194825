"""Errors are one red line on stderr with exit code 1, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_testing import Invoke, assert_one_error_line, check


def test_invalid_config_file_is_one_line(run_cli: Invoke, workdir: Path) -> None:
    (workdir / "storeflow.toml").write_text('timezone = "Mars/Olympus"\ndatabse_url = "sqlite:///x.db"\n')
    line = assert_one_error_line(run_cli("flows", "list"))
    assert line == ("error: invalid configuration (storeflow.toml or STOREFLOW_* variables): "
                    "timezone: 'Mars/Olympus' is not an IANA time zone; use e.g. Asia/Jakarta; "
                    "databse_url: unknown setting")


def test_toml_syntax_error_is_one_line(run_cli: Invoke, workdir: Path) -> None:
    (workdir / "custom.toml").write_text("timezone = \n")
    line = assert_one_error_line(run_cli("--config", "custom.toml", "keys", "list"))
    assert line.startswith("error: invalid configuration in custom.toml: ")
    assert "line 1" in line


def test_missing_config_file_given_with_config_is_one_line(run_cli: Invoke) -> None:
    line = assert_one_error_line(run_cli("--config", "nothere.toml", "keys", "list"))
    assert "config file nothere.toml does not exist" in line


def test_environment_variables_are_checked_too(run_cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREFLOW_WORKER_BATCH_SIZE", "many")
    line = assert_one_error_line(run_cli("keys", "list"))
    assert "worker_batch_size:" in line


def test_unsupported_database_url_is_one_line(run_cli: Invoke) -> None:
    line = assert_one_error_line(run_cli("--database-url", "mysql://db/shop", "keys", "list"))
    assert "unsupported database URL mysql://" in line


def test_unknown_command_is_a_usage_error(run_cli: Invoke) -> None:
    result = check(run_cli("flow", "list"), 2)
    assert "No such command" in result.stderr
    assert "Traceback" not in result.output
