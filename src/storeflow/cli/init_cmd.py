"""``storeflow init``: write the config file, create the database, create the first API keys."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from storeflow.cli.context import CliError, state
from storeflow.cli.output import line, print_json
from storeflow.errors import ConfigError
from storeflow.model.money import check_currency

DEFAULT_DATABASE_URL = "sqlite:///storeflow.db"


def register(app: typer.Typer) -> None:
    app.command("init")(init)


def new_webhook_secret() -> str:
    """A signing secret in Standard Webhooks form: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _toml_string(value: str) -> str:
    # A JSON string with ASCII escapes is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=True)


def config_text(database_url: str, timezone: str, currency: str, webhook_secret: str) -> str:
    return (
        "# storeflow configuration, written by `storeflow init`.\n"
        "# Any setting can also come from a STOREFLOW_<NAME> environment variable, which wins over this file.\n"
        "\n"
        f"database_url = {_toml_string(database_url)}\n"
        f"timezone = {_toml_string(timezone)}\n"
        f"currency = {_toml_string(currency)}\n"
        "\n"
        "# Signs outgoing webhooks (Standard Webhooks). Keep it secret; give it only to your receivers.\n"
        f"webhook_secret = {_toml_string(webhook_secret)}\n"
    )


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"--timezone: {name!r} is not an IANA time zone; use e.g. Asia/Jakarta") from exc
    return name


def _check_currency(code: str) -> str:
    try:
        return check_currency(code)
    except ValueError as exc:
        raise ConfigError(f"--currency: {exc}") from exc


def _write_private(path: Path, text: str) -> None:
    """Write the file readable by its owner only: it holds the webhook secret."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def init(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", metavar="URL",
                     help=f"Database to create [default: {DEFAULT_DATABASE_URL} in the current directory]."),
    ] = None,
    timezone: Annotated[str, typer.Option(help="The store's IANA time zone, e.g. Asia/Jakarta.")] = "UTC",
    currency: Annotated[str, typer.Option(help="The store's ISO 4217 currency, e.g. IDR.")] = "USD",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write storeflow.toml, create the database and print a private and a public API key (once)."""
    st = state(ctx)
    path = st.config_path()
    if path.exists() and not force:
        raise CliError(f"{path} already exists; use --force to overwrite it (its webhook secret changes)")
    url = database_url or st.database_url or DEFAULT_DATABASE_URL
    tz = _check_timezone(timezone)
    code = _check_currency(currency)
    existed = path.exists()
    _write_private(path, config_text(url, tz, code, new_webhook_secret()))
    try:
        with st.open(database_url=url) as sf:
            private_id, private_secret = sf.keys.create("private", "default private key")
            public_id, public_secret = sf.keys.create("public", "default public key")
    except BaseException:
        if not existed:  # leave nothing half-made behind; running init again starts clean
            path.unlink(missing_ok=True)
        raise
    if as_json:
        print_json({"config": str(path), "database_url": url, "timezone": tz, "currency": code,
                    "keys": {"private": {"id": private_id, "secret": private_secret},
                             "public": {"id": public_id, "secret": public_secret}}})
        return
    line(f"Wrote {path} (timezone {tz}, currency {code}, a new webhook signing secret).")
    line(f"Database ready: {url}")
    line()
    line("API keys, shown only now: store them somewhere safe (a password manager or secrets store).",
         style="yellow")
    line(f"  private key {private_id}: {private_secret}")
    line("      full access: flows, runs, keys and events. Use it on servers only.")
    line(f"  public key  {public_id}: {public_secret}")
    line("      can only send storefront events; safe to use in a storefront.")
    line()
    line("Next:")
    line("  storeflow flows apply flows/     load your flows")
    line("  storeflow serve                  start the API and the worker")
