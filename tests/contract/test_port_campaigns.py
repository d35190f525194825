"""CampaignsPort on both backends: campaign rows, the frozen audience, claims, the throttle's
window, Smart Sending's read, cancellation and the report."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.contract.helpers import T0, event_row, message_row, profile_row
from tests.integration.campaigns.members import add_segment

from storeflow.store import Store

H = timedelta(hours=1)


def campaign_row(cid: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = {"id": cid, "name": cid, "status": "draft", "definition": {"id": cid},
                              "created_at": T0, "updated_at": T0}
    row.update(values)
    return row


@pytest.fixture
def audience(store: Store) -> Store:
    """p1..p6; p6 merged into p1. vip: p1 p2 p3 p6; news: p3 p4 p5; lapsed: p2."""
    with store.transaction() as tx:
        tx.insert_profiles([profile_row(f"p{i}", timezone=tz) for i, tz in
                            enumerate(["Asia/Jakarta", None, "Europe/Lisbon", "Asia/Jakarta", None, None], 1)])
        tx.update_profile("p6", T0, merged_into="p1")
    add_segment(store, "vip", ["p1", "p2", "p3", "p6"], T0)
    add_segment(store, "news", ["p3", "p4", "p5"], T0)
    add_segment(store, "lapsed", ["p2"], T0)
    return store


def test_campaign_rows_and_compare_and_set(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_campaign(campaign_row("c1"))
        tx.insert_campaign(campaign_row("c2", created_at=T0 + H))
        assert tx.get_campaign("c1")["status"] == "draft"  # type: ignore[index]
        assert tx.get_campaign("nope") is None
        assert [r["id"] for r in tx.list_campaigns()] == ["c2", "c1"]
        assert tx.update_campaign("c1", ("draft",), status="scheduled", send_at=T0)
        assert not tx.update_campaign("c1", ("draft",), status="sending")
        assert tx.update_campaign("c2", name="renamed")
        assert [r["id"] for r in tx.list_campaigns(status="scheduled")] == ["c1"]
        assert tx.next_campaign_send_at() == T0
        assert [r["id"] for r in tx.claim_due_campaigns(T0 - H)] == []
        assert [r["id"] for r in tx.claim_due_campaigns(T0)] == ["c1"]
        assert tx.lock_campaign("c1") is None  # scheduled, not sending
        tx.update_campaign("c1", status="sending")
        assert tx.lock_campaign("c1")["id"] == "c1"  # type: ignore[index]


def test_audience_is_include_minus_exclude_distinct_and_unmerged(audience: Store) -> None:
    with audience.read() as tx:
        assert tx.audience_segments_known(["vip", "news", "ghost"]) == {"vip", "news"}
        assert tx.count_audience(["vip", "news"], ["lapsed"]) == 4  # p1 p3 p4 p5 (p6 merged, p2 excluded)
        assert tx.audience_sample(["vip", "news"], ["lapsed"], 2) == ["p1", "p3"]
        assert sorted(tx.audience_timezones(["vip"], []), key=str) == ["Asia/Jakarta", "Europe/Lisbon", None]
    with audience.transaction() as tx:
        tx.insert_campaign(campaign_row("c", status="sending"))
        zone = {"Asia/Jakarta": T0 + H, "Europe/Lisbon": T0 + 2 * H}
        n = tx.freeze_audience("c", ["vip", "news"], ["lapsed"], T0, due_at=T0 + 3 * H, zone_due=zone,
                               variants=[("a", 1), ("b", 1)])
        assert n == 4
        rows = tx.claim_campaign_recipients("c", T0 + 5 * H, 10)
    due = {r["profile_id"]: r["due_at"] for r in rows}
    assert due == {"p1": T0 + H, "p4": T0 + H, "p3": T0 + 2 * H, "p5": T0 + 3 * H}
    assert [r["variant"] for r in sorted(rows, key=lambda r: r["profile_id"])] == ["a", "b", "a", "b"]
    assert {r["status"] for r in rows} == {"pending"}
    assert {r["profile_id"]: r["profile"]["timezone"] for r in rows} == {  # the profile, read with the claim
        "p1": "Asia/Jakarta", "p3": "Europe/Lisbon", "p4": "Asia/Jakarta", "p5": None}


def test_a_claimed_recipient_comes_with_its_profile_as_it_is_now(audience: Store) -> None:
    with audience.transaction() as tx:
        tx.insert_campaign(campaign_row("c", status="sending"))
        tx.freeze_audience("c", ["lapsed"], [], T0, due_at=T0)
        tx.update_profile("p2", T0, merged_into="p1")  # merged after the freeze
        (rec,) = tx.claim_campaign_recipients("c", T0, 10)
    assert (rec["profile_id"], rec["profile"]["id"], rec["profile"]["merged_into"]) == ("p2", "p2", "p1")


def test_claims_outcomes_throttle_window_and_finish(audience: Store) -> None:
    with audience.transaction() as tx:
        tx.insert_campaign(campaign_row("c", status="sending"))
        tx.freeze_audience("c", ["news"], [], T0, due_at=T0)
        assert tx.next_recipient_due() == T0
        assert tx.next_recipient_due(["c"]) is None
        assert tx.claim_campaign_recipients("c", T0 - H, 10) == []
        first = tx.claim_campaign_recipients("c", T0, 2)
        assert len(first) == 2
        tx.update_campaign_recipients("c", [
            {"profile_id": first[0]["profile_id"], "status": "queued", "message_id": "m1", "updated_at": T0 + H},
            {"profile_id": first[1]["profile_id"], "status": "skipped", "reason": "no_consent",
             "updated_at": T0 + H}])
        assert tx.campaign_queued_since("c", T0) == (1, T0 + H)
        assert tx.campaign_queued_since("c", T0 + H) == (0, None)
        assert tx.has_pending_recipients("c")
        (last,) = tx.claim_campaign_recipients("c", T0, 10)
        tx.update_campaign_recipients("c", [{"profile_id": last["profile_id"], "status": "queued",
                                             "message_id": "m2", "updated_at": T0 + H}])
        assert not tx.has_pending_recipients("c")


def test_recently_messaged_counts_marketing_that_reached_or_will_reach(store: Store) -> None:
    with store.transaction() as tx:
        tx.enqueue_many([
            message_row("m1", profile_id="p1", kind="marketing", status="sent", sent_at=T0),
            message_row("m2", profile_id="p2", kind="transactional", status="sent", sent_at=T0),
            message_row("m3", profile_id="p3", kind="marketing", status="skipped"),
            message_row("m4", profile_id="p4", kind="marketing", status="pending", created_at=T0 + H),
            message_row("m5", profile_id="p5", kind="marketing", status="sent", sent_at=T0 - 20 * H),
        ])
        assert tx.recently_messaged(["p1", "p2", "p3", "p4", "p5", "p9"], T0 - H) == {"p1", "p4"}


def test_cancel_stops_pending_recipients_and_unclaimed_messages(audience: Store) -> None:
    with audience.transaction() as tx:
        tx.insert_campaign(campaign_row("c", status="sending"))
        tx.freeze_audience("c", ["news"], [], T0, due_at=T0)
        claimed = tx.claim_campaign_recipients("c", T0, 2)
        tx.enqueue_many([message_row("mq", run_id="x", campaign_id="c", profile_id=claimed[0]["profile_id"],
                                     kind="marketing"),
                         message_row("ms", run_id="y", campaign_id="c", profile_id=claimed[1]["profile_id"],
                                     kind="marketing", status="sending")])
        tx.update_campaign_recipients("c", [
            {"profile_id": claimed[0]["profile_id"], "status": "queued", "message_id": "mq", "updated_at": T0},
            {"profile_id": claimed[1]["profile_id"], "status": "queued", "message_id": "ms", "updated_at": T0}])
    with audience.transaction() as tx:
        assert tx.cancel_campaign("c", T0 + H)
        assert not tx.cancel_campaign("c", T0 + H)
        assert tx.get_campaign("c")["status"] == "cancelled"  # type: ignore[index]
        assert tx.get_message("mq")["status"] == "cancelled"  # type: ignore[index]
        assert tx.get_message("ms")["status"] == "sending"  # type: ignore[index]  # claimed: it goes
        report = tx.campaign_report("c")
    assert report["recipients"] == {None: {"cancelled:cancelled": 2, "queued": 1}}
    assert report["messages"][None]["cancelled"] == 1


def test_report_counts_messages_and_their_events(store: Store) -> None:
    with store.transaction() as tx:
        tx.enqueue_many([
            message_row("m1", campaign_id="c", variant="a", status="sent", sent_at=T0, delivered_at=T0,
                        opened_at=T0, clicked_at=T0),
            message_row("m2", campaign_id="c", variant="a", status="sent", sent_at=T0),
            message_row("m3", campaign_id="c", variant="b", status="failed"),
            message_row("m4", campaign_id="other", variant="a", status="sent", sent_at=T0),
        ])
        tx.insert_event(event_row("storeflow:m2:unsubscribed", type="unsubscribed"))
        report = tx.campaign_report("c")
    assert report["messages"]["a"] == {"queued": 2, "sent": 2, "failed": 0, "cancelled": 0, "delivered": 1,
                                       "opened": 1, "clicked": 1, "unsubscribed": 1}
    assert report["messages"]["b"]["failed"] == 1
    assert report["recipients"] == {}
