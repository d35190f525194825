"""``storeflow demo``: a working store on the embedded default in one command.

Until the full demo store and traffic simulator land, it sets up a SQLite store in a folder,
installs the built-in flows, creates API keys, drives a small burst of store activity through
the engine on a virtual clock (so every sample flow acts), prints what happened, and then
(unless ``--no-serve``) serves the API and worker on that store.
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # imported when the command runs: keeps `storeflow --help` and `flows validate` fast
    from storeflow.app import Storeflow

console = Console()


def _activity() -> list[dict[str, Any]]:
    products = [{"type": "product_created", "id": f"prod-{i}",
                 "properties": {"product_id": f"p{i}", "title": title, "currency": "IDR",
                                "variants": [{"variant_id": f"p{i}-v", "sku": f"SKU-{i}", "price": price,
                                              "inventory_quantity": 12}]}}
                for i, (title, price) in enumerate([("Batik shirt", "350000"), ("Coffee beans", "120000"),
                                                    ("Rattan bag", "480000")])]
    people = [("ana@example.com", "pt_BR", "America/Sao_Paulo"), ("budi@example.com", "id_ID", "Asia/Jakarta"),
              ("cara@example.com", "en_US", "America/New_York")]
    events: list[dict[str, Any]] = list(products)
    for n, (email, locale, tz) in enumerate(people):
        events.append({"type": "subscribed", "email": email, "id": f"sub-{n}",
                       "profile": {"locale": locale, "timezone": tz}, "properties": {"channel": "email"}})
        events.append({"type": "checkout_started", "email": email, "id": f"ck-{n}",
                       "properties": {"checkout_id": f"ck-{n}", "value": "350000", "currency": "IDR"}})
    events.append({"type": "order_placed", "email": "budi@example.com", "id": "order-1",
                   "properties": {"order_id": "o-1", "checkout_id": "ck-1", "total": "5600000", "currency": "IDR",
                                  "items": [{"product_id": "p2", "sku": "SKU-2", "quantity": 12,
                                             "price": "480000"}]}})
    events.append({"type": "inventory_changed", "id": "stock-1", "properties": {"sku": "SKU-2", "quantity": 0}})
    return events


def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Where the demo store lives.")] = Path("storeflow-demo"),
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API afterwards.")] = True,
    port: Annotated[int, typer.Option(help="API port.")] = 8787,
) -> None:
    """Set up a demo store on SQLite, show the sample flows acting, then serve the API."""
    from storeflow.app import Storeflow
    from storeflow.clock import VirtualClock
    from storeflow.settings import Settings

    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "storeflow.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    settings = Settings(database_url=f"sqlite:///{db}", webhook_secret=secret, timezone="Asia/Jakarta",
                        currency="IDR", port=port)
    clock = VirtualClock()
    sf = Storeflow(settings, clock=clock)
    try:
        folder_t = resources.files("storeflow") / "templates"
        for item in sorted(folder_t.iterdir(), key=lambda p: p.name):
            if item.name.endswith(".yaml"):
                sf.flows.apply(sf.flows.validate(item.read_text(), f"templates/{item.name}"), status="live")
        results = sf.ingest(_activity(), source="demo")
        sf.run_until(clock.now() + timedelta(days=4))
        _summary(sf, len(results))
        _, private = sf.keys.create("private", "demo private key")
        _, public = sf.keys.create("public", "demo public key")
    finally:
        sf.close()
    console.print(f"\nDemo store: [bold]{db}[/]  (keys below are shown once)")
    console.print(f"  private key: {private}\n  public key:  {public}")
    console.print("\nSend an event:\n"
                  f"  curl -X POST http://127.0.0.1:{port}/v1/events -H 'Authorization: Bearer {public}' "
                  "-H 'content-type: application/json' -d '{\"type\":\"checkout_started\",\"email\":"
                  "\"you@example.com\",\"properties\":{\"checkout_id\":\"c-1\",\"value\":\"99000\","
                  "\"currency\":\"IDR\"}}'")
    console.print(f"Then: storeflow --database-url sqlite:///{db} runs list")
    if serve:
        from storeflow.cli.serve_cmd import _run_api

        live = Storeflow(Settings(database_url=f"sqlite:///{db}", webhook_secret=secret, timezone="Asia/Jakarta",
                                  currency="IDR", port=port))
        try:
            _run_api(live, live.settings.host, port, with_worker=True)
        finally:
            live.close()


def _summary(sf: Storeflow, events: int) -> None:
    table = Table(title=f"Demo: {events} events ingested, 4 days on the virtual clock")
    for col in ("flow", "runs", "completed", "waiting", "exited", "failed"):
        table.add_column(col, justify="left" if col == "flow" else "right")
    for flow in sf.flows.list():
        runs = flow["runs"]
        table.add_row(flow["id"], str(sum(runs.values())), *(str(runs.get(s, 0)) for s in
                                                             ("completed", "waiting", "exited", "failed")))
    console.print(table)
