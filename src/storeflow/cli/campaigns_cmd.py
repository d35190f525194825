"""``storeflow campaigns ...``: create, preview, schedule, cancel, show, list."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from storeflow.cli.context import state
from storeflow.cli.output import fmt_time, line, print_json, print_table, summarize_counts

app = typer.Typer(help="Send one message to an audience of segments.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")]
IdArgument = Annotated[str, typer.Argument(metavar="ID", help="The campaign's id.")]


@app.command("create")
def create(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(metavar="FILE", help="The campaign document (YAML or JSON).")],
) -> None:
    """Create a campaign as a draft from FILE (or replace the draft with the same id). Every
    problem of the document is listed; nothing is sent until it is scheduled."""
    text = path.read_text(encoding="utf-8")
    with state(ctx).open() as sf:
        result = sf.campaigns.create(sf.campaigns.validate(text, str(path)))
    line(f"{result['campaign_id']}: {result['change']} (draft). Preview it with: storeflow campaigns preview "
         f"{result['campaign_id']}")


@app.command("preview")
def preview(ctx: typer.Context, campaign_id: IdArgument, as_json: JsonOption = False) -> None:
    """The audience's size now and the message rendered for one recipient. Writes nothing."""
    with state(ctx).open() as sf:
        result = sf.campaigns.preview(campaign_id)
    if as_json:
        print_json(result)
        return
    line(f"{campaign_id}: audience of {result['audience_size']}")
    if result["unknown_segments"]:
        line(f"unknown segments: {', '.join(result['unknown_segments'])}", style="red")
    sample = result.get("sample")
    if sample:
        line(f"sample for {sample['profile_id']}" + (f" (variant {sample['variant']})" if sample["variant"] else ""))
        if sample.get("skipped"):
            line(f"  would be skipped: {sample['skipped']}")
        for key in ("to", "subject", "text"):
            if sample.get(key):
                line(f"  {key}: {sample[key]}")


@app.command("schedule")
def schedule(
    ctx: typer.Context,
    campaign_id: IdArgument,
    at: Annotated[str | None, typer.Option("--at", metavar="TIME",
                                           help="When to send (2026-03-05T10:00 in the store's time zone, or "
                                                "with an offset); default: as the document says.")] = None,
    now: Annotated[bool, typer.Option("--now", help="Send now, whatever the document says.")] = False,
) -> None:
    """Schedule a draft. An unknown or empty audience is refused with nothing queued."""
    if at is not None and now:
        raise typer.BadParameter("give --at or --now, not both")
    with state(ctx).open() as sf:
        result = sf.campaigns.schedule(campaign_id, at=at, now=now)
        tz = sf.settings.tz
    line(f"{campaign_id}: scheduled for {fmt_time(result['send_at'], tz)}, audience of {result['audience_size']} "
         "now (frozen when sending starts)")


@app.command("cancel")
def cancel(ctx: typer.Context, campaign_id: IdArgument) -> None:
    """Cancel: pending recipients and queued messages not yet being sent are stopped."""
    with state(ctx).open() as sf:
        result = sf.campaigns.cancel(campaign_id)
    report = result["report"]
    line(f"{campaign_id}: cancelled ({report['sent']} sent before, {report['cancelled']} stopped)")


@app.command("show")
def show(ctx: typer.Context, campaign_id: IdArgument, as_json: JsonOption = False) -> None:
    """A campaign with its report: audience, queued, sent, skipped by reason, delivered, opened,
    clicked, unsubscribed (per variant when it has variants)."""
    with state(ctx).open() as sf:
        campaign = sf.campaigns.get(campaign_id)
        tz = sf.settings.tz
    if as_json:
        print_json(campaign)
        return
    report = campaign["report"]
    line(f"{campaign['id']}: {campaign['name']}")
    line(f"status {campaign['status']}, send at {fmt_time(campaign['send_at'], tz)}, "
         f"frozen {fmt_time(campaign['frozen_at'], tz)}, finished {fmt_time(campaign['finished_at'], tz)}")
    rows: list[tuple[str, dict[str, Any]]] = [("all", report)]
    rows += sorted((report.get("variants") or {}).items())
    print_table(["variant", "audience", "pending", "queued", "sent", "skipped", "delivered", "opened", "clicked",
                 "unsubscribed"],
                [(name, report["audience_size"] if name == "all" else "", r["pending"], r["queued"], r["sent"],
                  r["skipped"], r["delivered"], r["opened"], r["clicked"], r["unsubscribed"]) for name, r in rows])
    skipped = {k: v for k, v in report["skipped_by_reason"].items() if v}
    line(f"skipped: {summarize_counts(skipped)}")


@app.command("list")
def list_campaigns(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the campaigns, newest first."""
    with state(ctx).open() as sf:
        campaigns = sf.campaigns.list()
        tz = sf.settings.tz
    if as_json:
        print_json(campaigns)
        return
    print_table(["campaign", "name", "status", "send at", "audience", "finished"],
                [(c["id"], c["name"], c["status"], fmt_time(c["send_at"], tz), c["audience_size"],
                  fmt_time(c["finished_at"], tz)) for c in campaigns],
                empty="No campaigns yet. Create one with: storeflow campaigns create FILE")
