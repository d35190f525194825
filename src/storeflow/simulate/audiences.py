"""The demo's audiences: every built-in segment installed on the simulated store and brought up to
date, their sizes, and one newsletter campaign sent to a segment through the demo's mailbox, with
its report. Numbers are read back from the store (``segment_members``, the campaign report)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import segment_members

if TYPE_CHECKING:
    from storeflow.app import Storeflow

CAMPAIGN_ID: Final = "demo-newsletter"
INCLUDE: Final = ("engagement-engaged-30d", "lifecycle-subscriber")
EXCLUDE: Final = ("engagement-unengaged-90d",)


@dataclass(frozen=True)
class SegmentSize:
    segment_id: str
    group: str
    name: str
    members: int


def install_segments(sf: Storeflow) -> int:
    """Install every built-in segment template, refresh the segment statistics and let the
    membership engine compute every segment; the number of segments."""
    from storeflow.segments.builtin import resolve

    chosen = resolve(["all"])
    sf.segments.apply_all([t.segment for t in chosen])
    sf.segment_stats.refresh()
    sf.drain()
    return len(chosen)


def segment_sizes(sf: Storeflow) -> list[SegmentSize]:
    """Every built-in segment with its current number of members (``segment_members``)."""
    from storeflow.segments.builtin import templates

    with sf.store.read() as tx:
        counts: dict[str, int] = dict(sql_connection(tx).execute(
            select(segment_members.c.segment_id, func.count()).group_by(segment_members.c.segment_id)).all())
    return [SegmentSize(t.name, t.group, t.segment.name, int(counts.get(t.name, 0))) for t in templates()]


def render_segments(console: Console, sizes: list[SegmentSize], at: datetime, tz: ZoneInfo) -> None:
    local = at.astimezone(tz)
    table = Table(title=f"Segment members, {local:%Y-%m-%d %H:%M} {local.tzname()} "
                        f"({at.astimezone(ZoneInfo('UTC')):%Y-%m-%dT%H:%MZ})", title_justify="left")
    table.add_column("segment (built-in template)", no_wrap=True)
    table.add_column("members", justify="right")
    group = None
    for s in sizes:
        if group is not None and s.group != group:
            table.add_section()
        group = s.group
        table.add_row(s.segment_id, f"{s.members:,}")
    console.print(table)


_COPY: Final = {  # subject, line, link text, unsubscribe
    "id_ID": ("Kabar terbaru dari {shop}", "Kopi musiman baru saja datang, dan stok favoritmu sudah kembali.",
              "Lihat produk terbaru", "Berhenti berlangganan"),
    "pt_BR": ("Novidades da {shop}", "Os cafés da estação chegaram, e seus favoritos voltaram ao estoque.",
              "Ver as novidades", "Cancelar inscrição"),
    "en_US": ("What's new at {shop}", "The seasonal coffees just landed, and your favourites are back in stock.",
              "See what's new", "Unsubscribe"),
}


_NAME: Final = "{% if profile.first_name %}{{ profile.first_name }}, {% endif %}"


def newsletter(shop: str, locale: str) -> dict[str, Any]:
    """The demo's campaign: an email newsletter to the engaged and the subscribers, leaving out the
    unengaged, now, with Smart Sending (16 hours)."""
    subject, line, cta, unsubscribe = _COPY.get(locale, _COPY["en_US"])
    return {
        "id": CAMPAIGN_ID, "name": f"{shop} newsletter",
        "audience": {"include": list(INCLUDE), "exclude": list(EXCLUDE)},
        "message": {
            "channel": "email",
            "subject": subject.format(shop=shop),
            "html": (f"<p>{_NAME}{line}</p>"
                     f'<p><a href="https://demo.store/collections/new">{cta}</a></p>'
                     f'<p style="color:#777;font-size:12px"><a href="{{{{ links.unsubscribe }}}}">'
                     f"{unsubscribe}</a></p>"),
            "text": f"{line}\n\nhttps://demo.store/collections/new\n\n{unsubscribe}: {{{{ links.unsubscribe }}}}",
        },
        "schedule": "now",
        "smart_sending": 16,
    }


def send_campaign(sf: Storeflow, shop: str, locale: str) -> str | None:
    """Create the newsletter, schedule it now and let the engine send it (on the store's clock).
    Returns why it was not sent (a store too small for anyone to be in the audience), else None."""
    from storeflow.campaigns.definition import CampaignValidationError, parse_campaign

    sf.campaigns.create(parse_campaign(newsletter(shop, locale), CAMPAIGN_ID))
    try:
        sf.campaigns.schedule(CAMPAIGN_ID, now=True)
    except CampaignValidationError as exc:
        return str(exc)
    sf.drain()
    return None


def campaign_report(sf: Storeflow) -> dict[str, Any]:
    """The campaign with its report (``CampaignService.get``)."""
    return sf.campaigns.get(CAMPAIGN_ID)


def render_campaign(console: Console, campaign: dict[str, Any], hours: int) -> None:
    report = campaign["report"]
    table = Table(title=f"Campaign {campaign['id']}, {hours} hours after sending", title_justify="left",
                  show_header=False)
    table.add_column("what", no_wrap=True)
    table.add_column("how many", justify="right")
    skipped = ", ".join(f"{n:,} {reason}" for reason, n in sorted(report["skipped_by_reason"].items()) if n) or "-"
    table.add_row("audience: " + " or ".join(INCLUDE), "")
    table.add_row("  not in " + " or ".join(EXCLUDE), f"{int(report['audience_size'] or 0):,}")
    for what, key in (("messages queued", "queued"), ("sent", "sent"), ("skipped", "skipped")):
        table.add_row(what, f"{int(report[key]):,}")
    table.add_row("skipped by reason", skipped)
    for what in ("failed", "opened", "clicked", "unsubscribed"):
        table.add_row(what, f"{int(report[what]):,}")
    console.print(table)


__all__ = ["CAMPAIGN_ID", "SegmentSize", "campaign_report", "install_segments", "newsletter", "render_campaign",
           "render_segments", "segment_sizes", "send_campaign"]
