"""Campaigns end to end on both backends, on the virtual clock, with real email to a local SMTP
server: one message per member, local time in three zones, Smart Sending, the throttle, cancel,
variants, and the audience refused before anything is queued."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from tests.integration.campaigns.conftest import Shop
from tests.integration.campaigns.members import add_segment

from storeflow.campaigns import CampaignValidationError
from storeflow.clock import VirtualClock
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import campaign_recipients, outbox


def people(shop: Shop, n: int, prefix: str = "c", *, consent: str = "subscribed",
           tz: str | None = None) -> list[str]:
    """``n`` profiles with email (and the given consent and time zone); their profile ids."""
    profile: dict[str, Any] = {"first_name": "Ana", "consent": {"email": consent}}
    if tz:
        profile["timezone"] = tz
    results = shop.sf.ingest([{"type": "identified", "email": f"{prefix}{i}@example.com", "id": f"{prefix}-{i}",
                               "profile": profile} for i in range(n)])
    return [str(r.profile_id) for r in results]


def campaign(cid: str = "sale", segment: str = "vip", **extra: Any) -> str:
    lines = [f"id: {cid}", "name: Flash sale", f"audience: {{include: [{segment}]}}",
             "message:", "  channel: email", '  subject: "Sale, {{ profile.first_name }}"',
             '  text: "Everything -30% today. {{ links.unsubscribe }}"']
    lines += [f"{key}: {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def create(shop: Shop, text: str) -> str:
    defn = shop.sf.campaigns.validate(text, "c.yaml")
    shop.sf.campaigns.create(defn)
    return defn.id


def outbox_rows(shop: Shop, campaign_id: str) -> list[dict[str, Any]]:
    with shop.sf.store.read() as tx:
        rows = sql_connection(tx).execute(outbox.select().where(outbox.c.campaign_id == campaign_id)).mappings()
        return [dict(r) for r in rows]


def recipient_rows(shop: Shop, campaign_id: str) -> list[dict[str, Any]]:
    with shop.sf.store.read() as tx:
        q = campaign_recipients.select().where(campaign_recipients.c.campaign_id == campaign_id)
        return [dict(r) for r in sql_connection(tx).execute(q).mappings()]


def test_a_campaign_sends_each_member_exactly_one_email(shop: Shop, clock: VirtualClock) -> None:
    members = people(shop, 20)
    unsubscribed = people(shop, 3, "u", consent="unsubscribed")
    outsider = people(shop, 1, "x")
    add_segment(shop.sf.store, "vip", members + unsubscribed, clock.now())
    cid = create(shop, campaign())
    scheduled = shop.sf.campaigns.schedule(cid, now=True)
    assert scheduled["audience_size"] == 23
    shop.sf.run_until(clock.now() + timedelta(minutes=5))

    got = Counter(shop.recipients())
    assert got == Counter({f"c{i}@example.com": 1 for i in range(20)})
    assert "x0@example.com" not in got and outsider
    rows = outbox_rows(shop, cid)
    assert {(r["kind"], r["status"], r["flow_id"], r["run_id"]) for r in rows} == {("marketing", "sent", None, None)}
    assert sorted(r["idempotency_key"] for r in rows) == sorted(f"campaign:{cid}:{p}" for p in members)
    message = shop.mail[0]
    assert message["Subject"] == "Sale, Ana" and message["List-Unsubscribe"]
    shown = shop.sf.campaigns.get(cid)
    assert shown["status"] == "sent" and shown["finished_at"] is not None
    report = shown["report"]
    assert (report["audience_size"], report["queued"], report["sent"], report["skipped"]) == (23, 20, 20, 3)
    assert report["skipped_by_reason"]["no_consent"] == 3
    with shop.sf.store.read() as tx:  # the message_sent events carry the campaign, for attribution
        sent = [e for e in tx.timeline(members[0]) if e["type"] == "message_sent"]
    assert [(e["properties"]["campaign_id"], e["properties"]["variant"]) for e in sent] == [(cid, None)]


def test_local_time_delivers_at_ten_in_each_recipients_time_zone(shop: Shop, clock: VirtualClock) -> None:
    zones = ["Asia/Jakarta", "Europe/Lisbon", "America/New_York"]
    ids = [pid for zone in zones for pid in people(shop, 2, zone.split("/")[1].lower(), tz=zone)]
    ids += people(shop, 1, "nozone")  # no time zone of its own: the store's (Asia/Jakarta)
    add_segment(shop.sf.store, "vip", ids, clock.now())
    cid = create(shop, campaign(schedule='{local_time: "10:00", date: "2026-03-05"}'))
    shop.sf.campaigns.schedule(cid)
    shop.sf.run_until(datetime(2026, 3, 6, 12, 0, tzinfo=UTC))

    sent = {r["address"]: r["sent_at"] for r in outbox_rows(shop, cid)}
    assert len(sent) == 7
    for address, at in sent.items():
        prefix = address.split("@")[0].rstrip("01")
        zone = next((z for z in zones if z.split("/")[1].lower() == prefix), "Asia/Jakarta")
        local = at.astimezone(ZoneInfo(zone))
        assert (local.date().isoformat(), local.hour, local.minute) == ("2026-03-05", 10, 0), (address, local)
    assert len(shop.mail) == 7


def test_smart_sending_skips_whoever_got_marketing_3_hours_before(shop: Shop, clock: VirtualClock) -> None:
    shop.sf.flows.apply(shop.sf.flows.validate(
        "id: promo\nname: Promo\ntrigger: {event: promo}\nsteps:\n"
        "  - action: email\n    subject: Promo\n    text: Hi\n", "promo.yaml"), status="live")
    recent, others = people(shop, 1, "recent"), people(shop, 2, "other")
    shop.sf.ingest([{"type": "promo", "email": "recent0@example.com", "id": "promo-1"}])
    shop.sf.drain()
    assert len(shop.mail) == 1
    clock.advance(timedelta(hours=3))
    add_segment(shop.sf.store, "vip", recent + others, clock.now())
    cid = create(shop, campaign())
    shop.sf.campaigns.schedule(cid, now=True)
    shop.sf.drain()
    report = shop.sf.campaigns.get(cid)["report"]
    assert report["skipped_by_reason"]["smart_sending"] == 1 and report["sent"] == 2
    assert {r["profile_id"]: r["reason"] for r in recipient_rows(shop, cid)}[recent[0]] == "smart_sending"

    # Smart Sending off (0): the same recipient gets the second campaign.
    off = create(shop, campaign("again", smart_sending=0))
    shop.sf.campaigns.schedule(off, now=True)
    shop.sf.drain()
    assert shop.sf.campaigns.get(off)["report"]["sent"] == 3


def test_the_throttle_keeps_to_n_messages_per_minute(shop: Shop, clock: VirtualClock) -> None:
    add_segment(shop.sf.store, "vip", people(shop, 23), clock.now())
    cid = create(shop, campaign(throttle=5))
    start = clock.now()
    shop.sf.campaigns.schedule(cid, now=True)
    shop.sf.run_until(start + timedelta(minutes=10))
    times = sorted(r["created_at"] for r in outbox_rows(shop, cid))
    assert len(times) == 23 and len(shop.mail) == 23
    for i, t in enumerate(times):  # any minute holds at most 5
        assert sum(1 for u in times[i:] if u < t + timedelta(minutes=1)) <= 5
    assert times[-1] - times[0] >= timedelta(minutes=4)
    assert shop.sf.campaigns.get(cid)["status"] == "sent"


def test_cancel_stops_what_has_not_gone(shop: Shop, clock: VirtualClock) -> None:
    add_segment(shop.sf.store, "vip", people(shop, 12), clock.now())
    cid = create(shop, campaign(throttle=5))
    shop.sf.campaigns.schedule(cid, now=True)
    shop.sf.drain()
    assert len(shop.mail) == 5
    cancelled = shop.sf.campaigns.cancel(cid)
    assert cancelled["status"] == "cancelled"
    shop.sf.run_until(clock.now() + timedelta(hours=1))
    assert len(shop.mail) == 5
    statuses = Counter(r["status"] for r in recipient_rows(shop, cid))
    assert statuses == {"queued": 5, "cancelled": 7}
    with pytest.raises(Exception, match="can no longer be cancelled"):
        shop.sf.campaigns.cancel(cid)


def test_cancel_withdraws_queued_messages_the_dispatcher_has_not_claimed(shop: Shop, clock: VirtualClock) -> None:
    add_segment(shop.sf.store, "vip", people(shop, 6), clock.now())
    cid = create(shop, campaign())
    shop.sf.campaigns.schedule(cid, now=True)
    shop.sf.campaign_sender.tick()  # frozen, and its first batch (all 6) queued
    shop.sf.campaign_sender.tick()  # no pending recipient left: sent, though no message has gone yet
    assert shop.sf.campaigns.get(cid)["status"] == "sent"
    assert Counter(r["status"] for r in outbox_rows(shop, cid)) == {"pending": 6}
    shop.sf.campaigns.cancel(cid)
    shop.sf.drain()
    assert shop.mail == []
    assert Counter(r["status"] for r in outbox_rows(shop, cid)) == {"cancelled": 6}
    assert shop.sf.campaigns.get(cid)["report"]["cancelled"] == 6


def test_variants_split_the_audience_by_weight_and_report_each(shop: Shop, clock: VirtualClock) -> None:
    add_segment(shop.sf.store, "vip", people(shop, 20), clock.now())
    text = campaign() + ("variants:\n  - {id: a, weight: 1}\n"
                         "  - {id: b, weight: 1, message: {subject: \"Last hours, {{ profile.first_name }}\"}}\n")
    cid = create(shop, text)
    shop.sf.campaigns.schedule(cid, now=True)
    shop.sf.drain()
    assert Counter(m["Subject"] for m in shop.mail) == {"Sale, Ana": 10, "Last hours, Ana": 10}
    report = shop.sf.campaigns.get(cid)["report"]
    assert report["sent"] == 20 and {k: v["sent"] for k, v in report["variants"].items()} == {"a": 10, "b": 10}


def test_an_unknown_or_empty_audience_is_refused_before_anything_is_queued(shop: Shop, clock: VirtualClock) -> None:
    with pytest.raises(CampaignValidationError, match='unknown segment "ghost"'):
        create(shop, campaign(segment="ghost"))
    add_segment(shop.sf.store, "nobody", [], clock.now())
    cid = create(shop, campaign(segment="nobody"))
    with pytest.raises(CampaignValidationError, match="the audience is empty"):
        shop.sf.campaigns.schedule(cid, now=True)
    shop.sf.drain()
    assert shop.sf.campaigns.get(cid)["status"] == "draft"
    assert recipient_rows(shop, cid) == [] and outbox_rows(shop, cid) == []


def test_at_is_a_wall_time_in_the_stores_time_zone_and_nothing_freezes_before(shop: Shop,
                                                                              clock: VirtualClock) -> None:
    add_segment(shop.sf.store, "vip", people(shop, 3), clock.now())
    cid = create(shop, campaign(schedule="{at: \"2026-03-02T17:00\"}"))  # 10:00 UTC in Asia/Jakarta
    assert shop.sf.campaigns.schedule(cid)["send_at"] == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert shop.sf.next_due_at() == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    shop.sf.drain()
    assert recipient_rows(shop, cid) == []  # not frozen before its time
    shop.sf.run_until(datetime(2026, 3, 2, 11, 0, tzinfo=UTC))
    assert {r["sent_at"] for r in outbox_rows(shop, cid)} == {datetime(2026, 3, 2, 10, 0, tzinfo=UTC)}


def test_a_recipient_merged_after_the_freeze_is_skipped_with_the_reason(shop: Shop, clock: VirtualClock) -> None:
    ids = people(shop, 3)
    add_segment(shop.sf.store, "vip", ids, clock.now())
    cid = create(shop, campaign(schedule='{local_time: "10:00", date: "2026-03-03"}'))
    shop.sf.campaigns.schedule(cid)
    shop.sf.run_until(datetime(2026, 3, 2, 21, 0, tzinfo=UTC))  # frozen (UTC+14 reaches 10:00 first)
    assert shop.sf.campaigns.get(cid)["status"] == "sending" and len(recipient_rows(shop, cid)) == 3
    with shop.sf.store.transaction() as tx:
        tx.update_profile(ids[0], clock.now(), merged_into=ids[1])
    shop.sf.run_until(datetime(2026, 3, 4, tzinfo=UTC))
    reasons = {r["profile_id"]: r["reason"] for r in recipient_rows(shop, cid)}
    assert reasons == {ids[0]: "merged", ids[1]: None, ids[2]: None}
    assert shop.sf.campaigns.get(cid)["report"]["skipped_by_reason"]["merged"] == 1


def test_the_report_counts_opens_clicks_and_unsubscribes_from_the_real_links(shop: Shop, clock: VirtualClock) -> None:
    add_segment(shop.sf.store, "vip", people(shop, 3), clock.now())
    text = campaign().replace('  text: "Everything -30% today. {{ links.unsubscribe }}"',
                              "  html: \"<p>Sale</p><a href='https://shop.example/sale'>Shop</a>\"")
    cid = create(shop, text)
    shop.sf.campaigns.schedule(cid, now=True)
    shop.sf.drain()
    first, second = shop.mail[0], shop.mail[1]

    def html_of(message: Any) -> str:
        part = next(p for p in message.walk() if p.get_content_type() == "text/html")
        return str(part.get_payload(decode=True).decode())

    html = html_of(first)
    click = next(u.split('"')[0] for u in html.split('href="')[1:] if "/t/c/" in u)
    redirect = shop.client.get(urlsplit(click).path, follow_redirects=False)
    assert parse_qs(urlsplit(redirect.headers["location"]).query)["utm_campaign"] == [cid]
    pixel = html.split('src="')[1].split('"')[0]
    assert shop.client.get(urlsplit(pixel).path).status_code == 200
    unsubscribe = urlsplit(str(second["List-Unsubscribe"]).strip("<>")).path
    assert shop.client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    shop.sf.drain()
    report = shop.sf.campaigns.get(cid)["report"]
    assert (report["sent"], report["opened"], report["clicked"], report["unsubscribed"]) == (3, 1, 1, 1)
