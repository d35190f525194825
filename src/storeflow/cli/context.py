"""What every command shares: the global options, settings loading and opening the engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from storeflow.errors import ConfigError, StoreflowError
from storeflow.settings import DEFAULT_CONFIG_FILE, Settings, load_settings

if TYPE_CHECKING:
    from storeflow.app import Storeflow


class CliError(StoreflowError):
    """A command cannot do what was asked (a file exists, a key is unknown, ...)."""


@dataclass
class CliState:
    """The global options (``storeflow --config PATH --database-url URL <command>``)."""

    config: Path | None = None
    database_url: str | None = None

    def config_path(self) -> Path:
        return Path(os.environ.get("STOREFLOW_CONFIG", DEFAULT_CONFIG_FILE))

    def settings(self, **overrides: Any) -> Settings:
        if self.config is not None and not self.config.is_file():
            raise ConfigError(f"config file {self.config} does not exist; create one with `storeflow init`")
        if self.database_url is not None:
            overrides.setdefault("database_url", self.database_url)
        try:
            return load_settings(**overrides)
        except ConfigError as exc:
            raise ConfigError(_config_message(exc, self.config_path())) from exc

    @contextmanager
    def open(self, **overrides: Any) -> Iterator[Storeflow]:
        """The engine, migrated to the newest schema, closed when the command ends."""
        from storeflow.app import Storeflow

        sf = Storeflow(self.settings(**overrides))
        try:
            yield sf
        finally:
            sf.close()


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if isinstance(obj, CliState):
        return obj
    fresh = CliState()
    ctx.find_root().obj = fresh
    return fresh


def _config_message(exc: ConfigError, path: Path) -> str:
    """A readable one-liner for invalid settings: each field with its problem, without pydantic's
    ``[type=..., input_value=...]`` and documentation links."""
    cause = exc.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):
        try:
            items = errors(include_url=False, include_input=False)
        except TypeError:  # not a pydantic error after all
            return str(exc)
        parts = []
        for err in items:
            loc = ".".join(str(p) for p in err.get("loc", ())) or "settings"
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                msg = "unknown setting"
            parts.append(f"{loc}: {msg}")
        return f"invalid configuration ({path} or STOREFLOW_* variables): " + "; ".join(parts)
    if cause is not None:
        return f"invalid configuration in {path}: {cause}"
    return str(exc)
