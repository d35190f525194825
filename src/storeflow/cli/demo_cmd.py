"""``storeflow demo``: a month of a small online store, in one command, on the embedded default.

A fresh SQLite store in ``--dir``, the sample flows installed live, a seeded catalog and customers,
and a local SMTP server that keeps every email as an ``.eml`` file. The traffic simulator then runs
``--days`` of store activity on a virtual clock (ending now), the flows act with their real waits,
and a summary shows what they did. Then every built-in segment is installed and computed (with the
segment statistics of the simulated customers), their sizes are shown, and one newsletter campaign
goes to a segment through the mailbox; its report comes after the customers have had
``CAMPAIGN_HOURS`` to open it. With ``--serve`` (the default) the API and the worker keep running
on that store afterwards, with the mailbox, and the command prints a private and a public key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

if TYPE_CHECKING:  # imported when the command runs: keeps `storeflow --help` fast
    from storeflow.app import Storeflow
    from storeflow.settings import Settings
    from storeflow.simulate.mailbox import Mailbox

console = Console()
TEAM_EMAIL: Final = "team@demo.store"
CAMPAIGN_HOURS: Final = 24  # the customers' time to read the newsletter before its report


@dataclass(frozen=True)
class _Shop:
    name: str
    sender: str
    timezone: str
    locale: str
    region: str


SHOPS: Final = {
    "IDR": _Shop("Toko Rimba", "Toko Rimba <halo@demo.store>", "Asia/Jakarta", "id_ID", "ID"),
    "BRL": _Shop("Casa Aurora", "Casa Aurora <oi@demo.store>", "America/Sao_Paulo", "pt_BR", "BR"),
    "USD": _Shop("Fieldhouse Goods", "Fieldhouse Goods <hello@demo.store>", "America/New_York", "en_US", "US"),
}


def _start_time(start: str | None, days: int, tz: ZoneInfo) -> datetime:
    """The first simulated moment: ``--start`` (a date or date-time, local to the store when it has
    no offset), else ``days`` before the current hour, so the simulated month ends now."""
    if start is None:
        return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    try:
        value = datetime.fromisoformat(start)
    except ValueError:
        raise typer.BadParameter(f"{start!r} is not a date; use e.g. 2026-03-01 or 2026-03-01T08:00",
                                 param_hint="--start") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _fresh(folder: Path) -> tuple[Path, Path]:
    """The demo's database and mail folder, emptied of a previous demo (nothing else is touched)."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "storeflow.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    mail = folder / "mail"
    if mail.is_dir():
        for old in mail.glob("*.eml"):
            old.unlink()
    return db, mail


def _settings(db: Path, currency: str, smtp_port: int, port: int) -> Settings:
    from storeflow.settings import load_settings

    shop = SHOPS[currency]
    # Every channel setting is given, so a storeflow.toml or STOREFLOW_* variables around cannot send
    # the demo's email to a real server or its team alerts to a real Slack.
    return load_settings(
        database_url=f"sqlite:///{db}", timezone=shop.timezone, currency=currency, locale=shop.locale,
        default_phone_region=shop.region, host="127.0.0.1", port=port, public_url=f"http://127.0.0.1:{port}",
        smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_security="none", smtp_username=None, smtp_password=None,
        email_from=shop.sender, team_emails=[TEAM_EMAIL], email_marketing_requires_opt_in=True,
        slack_webhook_url=None, sms_provider="none", webhook_allow_private=False,
    )


def _install_flows(sf: Storeflow) -> int:
    folder = resources.files("storeflow") / "templates"
    count = 0
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith((".yaml", ".yml")):
            sf.flows.apply(sf.flows.validate(item.read_text(encoding="utf-8"), f"templates/{item.name}"),
                           status="live")
            count += 1
    return count


def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Where the demo store lives (recreated).")] = Path(
        "storeflow-demo"),
    currency: Annotated[str, typer.Option(help="The store's currency: IDR, BRL or USD.")] = "IDR",
    customers: Annotated[int, typer.Option(min=1, max=100_000, help="Customers in the store.")] = 3000,
    products: Annotated[int, typer.Option(min=1, max=5000, help="Products in the catalog.")] = 300,
    days: Annotated[int, typer.Option(min=1, max=365, help="Days of traffic to simulate.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same store and traffic.")] = 7,
    start: Annotated[str | None, typer.Option(
        help="First simulated day, e.g. 2026-03-01 (default: the simulated days end now).")] = None,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API and worker afterwards.")] = True,
    port: Annotated[int, typer.Option(min=1, max=65535, help="API port (with --serve).")] = 8787,
) -> None:
    """Simulate a month of a small store on SQLite and show what the sample flows did."""
    from storeflow.simulate.catalog import check_currency_supported

    try:
        currency = check_currency_supported(currency)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--currency") from None
    shop = SHOPS[currency]
    first = _start_time(start, days, ZoneInfo(shop.timezone))
    if serve:  # a taken port is one clear error now, not after the simulation
        from storeflow.cli.serve_cmd import bind_socket

        bind_socket("127.0.0.1", port).close()
    db, mail = _fresh(folder)

    from storeflow.simulate.mailbox import Mailbox

    mailbox = Mailbox(mail)
    try:
        keys = _simulate(mailbox, db, mail, currency=currency, customers=customers, products=products, days=days,
                         seed=seed, first=first, port=port, serve=serve)
        if serve and keys is not None:
            _serve(mailbox, db, currency, port, keys)
    finally:
        mailbox.stop()


def _simulate(mailbox: Mailbox, db: Path, mail: Path, *, currency: str, customers: int, products: int, days: int,
              seed: int, first: datetime, port: int, serve: bool) -> tuple[str, str] | None:
    from storeflow.app import Storeflow
    from storeflow.clock import VirtualClock
    from storeflow.simulate import audiences
    from storeflow.simulate.catalog import build_catalog
    from storeflow.simulate.people import build_people
    from storeflow.simulate.report import collect, render
    from storeflow.simulate.traffic import Simulation
    from storeflow.simulate.traffic_model import TrafficModel

    t0 = time.perf_counter()
    clock = VirtualClock(first)
    mailbox.now = clock.now
    mailbox.start()
    settings = _settings(db, currency, mailbox.port, port)
    sf = Storeflow(settings, clock=clock)
    try:
        _install_flows(sf)
        model = TrafficModel()
        catalog = build_catalog(seed, currency, products, expected_units=model.expected_units(customers, days))
        people = build_people(seed, currency, customers)
        sim = Simulation(sf, catalog, people, start=first, days=days, seed=seed, model=model)
        with _progress(days) as progress:
            stats = sim.run(progress)
        report = collect(sf, currency)
        wall = time.perf_counter() - t0
        shop = SHOPS[currency]
        end = first + timedelta(days=days)
        local = ZoneInfo(shop.timezone)
        title = (f"storeflow demo: {shop.name}, {days} days ({first.astimezone(local):%Y-%m-%d} to "
                 f"{end.astimezone(local):%Y-%m-%d}), {len(people):,} customers, {len(catalog):,} products "
                 f"({catalog.variant_count:,} variants), prices in {currency}")
        render(console, report, stats, title=title, locale=shop.locale, wall_s=wall)
        if stats.errors:
            console.print("[yellow]Refused by the engine (first few):[/]")
            for line in stats.errors[:5]:
                console.print(f"  {line}")
        t1 = time.perf_counter()
        audiences.install_segments(sf)
        audiences.render_segments(console, audiences.segment_sizes(sf), clock.now(), local)
        not_sent = audiences.send_campaign(sf, shop.name, shop.locale)
        if not_sent is None:
            sim.follow_mail(clock.now() + timedelta(hours=CAMPAIGN_HOURS))
            sf.drain()
            audiences.render_campaign(console, audiences.campaign_report(sf), CAMPAIGN_HOURS)
        else:
            console.print(f"[yellow]No campaign sent:[/] {not_sent}", soft_wrap=True, highlight=False)
        console.print(f"Segments and campaign: {time.perf_counter() - t1:.1f} s; "
                      f"{len(mailbox.files()):,} emails kept as .eml files in [bold]{mail}[/]")
        if not serve:
            return None
        _, private = sf.keys.create("private", "demo private key")
        _, public = sf.keys.create("public", "demo public key")
        return private, public
    finally:
        sf.close()


@contextmanager
def _progress(days: int) -> Iterator[Callable[[int, int], None] | None]:
    """A transient progress bar on a terminal; nothing otherwise."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("Simulating day {task.completed}/{task.total}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("days", total=days)
        yield lambda day, total: bar.update(task, completed=day)


def _serve(mailbox: Mailbox, db: Path, currency: str, port: int, keys: tuple[str, str]) -> None:
    import json

    from storeflow.app import Storeflow
    from storeflow.cli.serve_cmd import _run_api

    private, public = keys
    mailbox.now = lambda: datetime.now(UTC)
    settings = _settings(db, currency, mailbox.port, port)
    example = json.dumps({"type": "subscribed", "email": "you@mail.example",
                          "profile": {"first_name": "You", "locale": SHOPS[currency].locale},
                          "properties": {"channel": "email"}})
    console.print(f"\nDemo store: [bold]{db}[/] (the keys are shown once)", soft_wrap=True)
    console.print(f"  private key: {private}\n  public key:  {public}", soft_wrap=True)
    # Subscribing (consent) needs the private key: the public one may send only storefront events.
    console.print("Subscribe someone, and their welcome email lands in the mailbox:", soft_wrap=True)
    console.print(f"  curl -X POST http://127.0.0.1:{port}/v1/events -H 'Authorization: Bearer {private}' "
                  f"-H 'content-type: application/json' -d '{example}'", soft_wrap=True, highlight=False,
                  markup=False)
    console.print(f"  ls {mailbox.folder}; storeflow --database-url sqlite:///{db} runs list\n", soft_wrap=True,
                  highlight=False, markup=False)
    live = Storeflow(settings)
    try:
        _run_api(live, settings.host, port, with_worker=True)
    finally:
        live.close()
