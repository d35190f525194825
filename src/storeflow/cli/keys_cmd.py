"""``storeflow keys create|list|revoke``: API keys. Secrets are shown once, at creation."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from storeflow.cli.context import CliError, state
from storeflow.cli.output import fmt_time, line, print_json, print_table

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


class KeyKindOption(StrEnum):
    private = "private"
    public = "public"


_KIND_HELP = {
    "private": "full access: flows, runs, keys and events. Use it on servers only.",
    "public": "can only send storefront events; safe to use in a storefront.",
}


@app.command("create")
def create(
    ctx: typer.Context,
    kind: Annotated[KeyKindOption, typer.Option("--kind",
                                                help="private: everything; public: send storefront events only.")],
    name: Annotated[str, typer.Option(help="A label, e.g. 'shopify webhook'.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the key as JSON.")] = False,
) -> None:
    """Create an API key and print its secret (shown only now)."""
    with state(ctx).open() as sf:
        key_id, secret = sf.keys.create(kind.value, name)
    if as_json:
        print_json({"id": key_id, "kind": kind.value, "name": name or f"{kind.value} key", "secret": secret})
        return
    line(f"Created {kind.value} key {key_id}: {secret}")
    line(f"  {_KIND_HELP[kind.value]}")
    line("The secret is shown only now: store it somewhere safe.", style="yellow")


@app.command("list")
def list_keys(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the keys as JSON.")] = False,
) -> None:
    """List API keys (never their secrets)."""
    with state(ctx).open() as sf:
        keys = sf.keys.list()
        tz = sf.settings.tz
    if as_json:
        print_json(keys)
        return
    print_table(["key", "name", "kind", "prefix", "created", "last used", "revoked"],
                [(k["id"], k["name"], k["kind"], f"{k['prefix']}…", fmt_time(k.get("created_at"), tz),
                  fmt_time(k.get("last_used_at"), tz), fmt_time(k.get("revoked_at"), tz)) for k in keys],
                empty="No API keys. Create one with: storeflow keys create --kind private")


@app.command("revoke")
def revoke(ctx: typer.Context, key_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Revoke an API key; requests using it fail from now on."""
    with state(ctx).open() as sf:
        if not sf.keys.revoke(key_id):
            known = any(k["id"] == key_id for k in sf.keys.list())
            raise CliError(f"key {key_id!r} is already revoked" if known
                           else f"key {key_id!r} does not exist; `storeflow keys list` shows the keys")
    line(f"Revoked key {key_id}")
