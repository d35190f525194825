"""The built-in segment templates on both backends, on small hand-built stores whose members are
worked out by hand below (the RFM table of docs/segments.md, the lifecycle rules, the engagement and
behaviour definitions), not by running the evaluators: installed through the templates, computed by
the membership engine with statistics refreshed from the customers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.segments.builtin import resolve, templates
from storeflow.segments.lifecycle import STAGE_PROPERTY, write_lifecycle_stages

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def install(sf: Storeflow, *names: str) -> None:
    chosen = resolve(names)
    sf.segments.apply_all([t.segment for t in chosen])
    sf.segment_stats.refresh()
    sf.drain()


def members(sf: Storeflow, segment_id: str) -> set[str]:
    with sf.store.read() as tx:
        rows = tx.segment_members_page(segment_id, None, 10_000)
    return {sf.views.profile(r["profile_id"])["email"].split("@")[0] for r in rows}


def orders(email: str, count: int, each: int, last_days_ago: int, gap_days: int = 20,
           codes: list[list[str]] | None = None) -> list[dict[str, Any]]:
    """``count`` orders of ``each`` USD, the last ``last_days_ago`` days before NOW, one every ``gap_days``."""
    out = []
    for k in range(count):
        at = NOW - (last_days_ago + (count - 1 - k) * gap_days) * DAY
        props: dict[str, Any] = {"order_id": f"{email}-{k}", "total": each, "currency": "USD"}
        if codes is not None:
            props["discount_codes"] = codes[k]
        out.append({"type": "order_placed", "email": f"{email}@example.com", "occurred_at": at.isoformat(),
                    "properties": props})
    return out


# -- RFM and lifecycle -------------------------------------------------------------------------------
# 15 customers, 3 per R and 3 per F level (quintile cut points at the 3rd, 6th, 9th and 12th ranks).
# name: (orders, USD per order, days since the last order) -> (R, F) and the cell of the R/F table.
CUSTOMERS = {
    "c00": (15, 100, 1),   # R5 F5 champions            spend 1500
    "c01": (1, 30, 2),     # R5 F1 new                  spend 30
    "c02": (9, 10, 3),     # R5 F3 potential loyalists  spend 90
    "c03": (2, 1000, 10),  # R4 F1 promising            spend 2000
    "c04": (4, 10, 11),    # R4 F2 potential loyalists  spend 40
    "c05": (12, 10, 12),   # R4 F4 loyal                spend 120
    "c06": (8, 10, 31),    # R3 F3 need attention       spend 80
    "c07": (14, 10, 32),   # R3 F5 loyal                spend 140
    "c08": (3, 12, 33),    # R3 F1 need attention       spend 36
    "c09": (13, 10, 55),   # R2 F5 can't lose them      spend 130
    "c10": (5, 10, 61),    # R2 F2 hibernating          spend 50
    "c11": (11, 10, 62),   # R2 F4 at risk              spend 110
    "c12": (6, 150, 120),  # R1 F2 lost                 spend 900
    "c13": (7, 10, 121),   # R1 F3 at risk              spend 70
    "c14": (10, 10, 122),  # R1 F4 at risk              spend 100
}
RFM_CELLS = {
    "rfm-champions": {"c00"}, "rfm-new": {"c01"}, "rfm-potential-loyalists": {"c02", "c04"},
    "rfm-promising": {"c03"}, "rfm-loyal": {"c05", "c07"}, "rfm-need-attention": {"c06", "c08"},
    "rfm-cant-lose-them": {"c09"}, "rfm-hibernating": {"c10"}, "rfm-at-risk": {"c11", "c13", "c14"},
    "rfm-lost": {"c12"},
}


@pytest.fixture
def shop(make_sf: Any, clock: VirtualClock) -> Storeflow:
    clock.set(NOW)
    sf: Storeflow = make_sf(currency="USD")
    events: list[dict[str, Any]] = []
    for name, (count, each, days) in CUSTOMERS.items():
        events += orders(name, count, each, days)
    events += [{"type": "subscribed", "email": "sub@example.com", "properties": {"channel": "email"}},
               {"type": "customer_created", "email": "quiet@example.com"}]
    assert {r.status for r in sf.ingest(events)} == {"accepted"}
    sf.drain()
    return sf


def test_statistics_are_the_quintiles_and_percentiles_of_the_customers(shop: Storeflow) -> None:
    stats = shop.segment_stats.refresh().stats
    assert stats.customers == 15 and stats.currency == "USD"
    # ranks 3, 6, 9, 12 of the days since the last order (1 2 3 10 11 12 31 32 33 55 61 62 120 121 122)
    assert stats.recency == (3 * DAY, 12 * DAY, 33 * DAY, 62 * DAY)
    assert stats.frequency == (3, 6, 9, 12)  # orders 1..15
    assert stats.monetary == (Decimal(40), Decimal(80), Decimal(110), Decimal(140))
    # the 90th percentile: rank floor(0.9 * 15) + 1 = 14 of the spends (..., 140, 900, 1500, 2000)
    assert stats.monetary_percentiles[89] == Decimal(1500)
    assert stats.frequency_percentiles[49] == 8  # rank floor(7.5) + 1 = 8


def test_rfm_cells_partition_the_customers_as_the_table_says(shop: Storeflow) -> None:
    install(shop, "rfm", "behaviour-high-value-low-frequency")
    for segment_id, expected in RFM_CELLS.items():
        assert members(shop, segment_id) == expected, segment_id
    # F 1-2 with M 4-5 (spend above the 4th cut point, 110): the big, rare baskets
    assert members(shop, "behaviour-high-value-low-frequency") == {"c03", "c12"}


def test_lifecycle_stages_and_the_stage_property(shop: Storeflow) -> None:
    install(shop, "lifecycle")
    assert members(shop, "lifecycle-subscriber") == {"sub"}
    assert members(shop, "lifecycle-first-time-buyer") == {"c01"}
    assert members(shop, "lifecycle-repeat-customer") == set(CUSTOMERS) - {"c01"}
    assert members(shop, "lifecycle-loyal") == set(CUSTOMERS) - {"c01", "c03"}
    assert members(shop, "lifecycle-vip") == {"c00", "c03"}  # the top 10 % of 15 by spend: 2
    # orders every 20 days: overdue after 40 days (at risk), after 60 lapsed; one order: 60 and 90 days
    assert members(shop, "lifecycle-at-risk") == {"c09"}  # 55 days
    assert members(shop, "lifecycle-lapsed") == {"c10", "c11", "c12", "c13", "c14"}  # 61 days and more
    ids = {name: shop.views.find_profile("email", f"{name}@example.com") for name in [*CUSTOMERS, "sub", "quiet"]}
    with shop.store.transaction() as tx:
        write_lifecycle_stages(tx, [str(p) for p in ids.values()], NOW)
    stages = {name: shop.views.profile(str(pid))["properties"].get(STAGE_PROPERTY) for name, pid in ids.items()}
    assert stages == {
        "c00": "vip", "c01": "first_time_buyer", "c02": "loyal", "c03": "vip", "c04": "loyal", "c05": "loyal",
        "c06": "loyal", "c07": "loyal", "c08": "loyal", "c09": "at_risk", "c10": "lapsed", "c11": "lapsed",
        "c12": "lapsed", "c13": "lapsed", "c14": "lapsed", "sub": "subscriber", "quiet": None,
    }


# -- engagement and behaviour ---------------------------------------------------------------------------
def _sent(email: str, days_ago: list[int]) -> list[dict[str, Any]]:
    return [{"id": f"m-{email}-{d}", "run_id": None, "step_key": None, "channel": "email",
             "idempotency_key": f"{email}:{d}", "payload": {}, "status": "sent", "attempts": 1,
             "next_attempt_at": None, "created_at": NOW - d * DAY, "updated_at": NOW - d * DAY,
             "sent_at": NOW - d * DAY, "kind": "marketing", "address": f"{email}@example.com"} for d in days_ago]


def test_engagement(make_sf: Any, clock: VirtualClock) -> None:
    clock.set(NOW)
    sf: Storeflow = make_sf(currency="USD")
    def seen(kind: str, email: str, days: int) -> dict[str, Any]:
        return {"type": kind, "email": f"{email}@example.com", "occurred_at": (NOW - days * DAY).isoformat(),
                "properties": {"message_id": f"m-{email}-{days}"}}
    sf.ingest([seen("message_opened", "opener", 10), seen("message_clicked", "clicker", 60),
               {"type": "customer_created", "email": "ignorer@example.com"},
               seen("message_opened", "faded", 140),
               {"type": "customer_created", "email": "newbie@example.com"},
               {"type": "customer_created", "email": "gone@example.com"}])
    mail = {"opener": [40, 10], "clicker": [70, 60], "ignorer": [200, 100, 20], "faded": [150, 5],
            "newbie": [30], "gone": [300, 200]}  # days ago of the emails sent to each
    with sf.store.transaction() as tx:
        for email, days in mail.items():
            pid = tx.find_profiles_by_identities([("email", f"{email}@example.com")])[("email", f"{email}@example.com")]
            for row in _sent(email, days):
                tx.enqueue({**row, "profile_id": pid})
    install(sf, "engagement")
    assert members(sf, "engagement-engaged-30d") == {"opener"}
    assert members(sf, "engagement-engaged-90d") == {"opener", "clicker"}
    # emailed for more than 90 days, emailed within 90 days, no open or click within 90 days
    assert members(sf, "engagement-unengaged-90d") == {"ignorer", "faded"}
    # the same over 180 days: faded opened 140 days ago; gone got nothing in 180 days
    assert members(sf, "engagement-unengaged-180d") == {"ignorer"}


def test_behaviour(make_sf: Any, clock: VirtualClock) -> None:
    clock.set(NOW)
    sf: Storeflow = make_sf(currency="USD")
    item = [{"product_id": "p1", "quantity": 1, "price": 10}]
    at = lambda delta: (NOW - delta).isoformat()  # noqa: E731
    sf.ingest([
        *orders("recent", 1, 20, 5), *orders("old", 1, 20, 45),
        *orders("hunter", 2, 20, 50, codes=[["SAVE10"], [{"code": "SPRING"}]]),
        *orders("mixed", 2, 20, 50, codes=[["SAVE10"], []]),
        {"type": "product_viewed", "email": "browser@example.com", "occurred_at": at(3 * DAY),
         "properties": {"product_id": "p1"}},
        {"type": "product_viewed", "email": "lapsed-browser@example.com", "occurred_at": at(8 * DAY),
         "properties": {"product_id": "p1"}},
        {"type": "checkout_started", "email": "abandoner@example.com", "occurred_at": at(timedelta(hours=2)),
         "properties": {"checkout_id": "k1", "items": item, "value": 10, "currency": "USD"}},
        {"type": "checkout_started", "email": "still-shopping@example.com", "occurred_at": at(timedelta(minutes=10)),
         "properties": {"checkout_id": "k2", "items": item, "value": 10, "currency": "USD"}},
        {"type": "checkout_started", "email": "buyer@example.com", "occurred_at": at(3 * DAY),
         "properties": {"checkout_id": "k3", "items": item, "value": 10, "currency": "USD"}},
        {"type": "order_placed", "email": "buyer@example.com", "occurred_at": at(2 * DAY),
         "properties": {"order_id": "b1", "checkout_id": "k3", "total": 10, "currency": "USD"}},
        {"type": "cart_updated", "email": "emptied@example.com", "occurred_at": at(DAY),
         "properties": {"cart_id": "k4", "items": [], "value": 0, "currency": "USD"}},
    ])
    install(sf, "behaviour-recent-purchasers", "behaviour-active-browsers", "behaviour-cart-abandoners",
            "behaviour-bargain-hunters", "behaviour-one-time-buyers")  # high value, low frequency: with RFM
    assert members(sf, "behaviour-recent-purchasers") == {"recent", "buyer"}
    assert members(sf, "behaviour-active-browsers") == {"browser"}
    assert members(sf, "behaviour-cart-abandoners") == {"abandoner"}
    assert members(sf, "behaviour-bargain-hunters") == {"hunter"}
    assert members(sf, "behaviour-one-time-buyers") == {"recent", "old", "buyer"}


def test_every_template_parses_and_is_named_after_its_file() -> None:
    found = templates()
    assert len(found) == 27
    assert {t.group for t in found} == {"rfm", "lifecycle", "engagement", "behaviour"}
    assert all(t.segment.id == t.name and t.segment.description for t in found)
    assert [t.name for t in resolve(["rfm-lost", "lifecycle-vip"])] == ["rfm-lost", "lifecycle-vip"]
