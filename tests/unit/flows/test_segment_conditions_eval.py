"""The Python evaluator of segment conditions: windows, aggregates, profile conditions and
anniversaries, exactly as docs/segments.md "The condition language" says (the SQL compiler is
checked against this evaluator)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from profile_data import MemoryProfileData

from storeflow.errors import ConditionError
from storeflow.flows.condition_parser import parse_condition
from storeflow.flows.evaluate import EvalContext, ProfileData, anniversary_within, evaluate
from storeflow.flows.segment_stats import SegmentStats

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
DAY = timedelta(days=1)


def order(at: datetime, total: Any = "10", **more: Any) -> dict[str, Any]:
    return {"id": f"o{at.isoformat()}", "placed_at": at, "total": Decimal(str(total)) if total is not None else None,
            "currency": "IDR", "status": "paid", "categories": [], **more}  # fmt: skip


def holds(doc: dict[str, Any], data: MemoryProfileData | None = None, *, now: datetime = NOW,
          profile: dict[str, Any] | None = None, stats: SegmentStats | None = None, tz: str = "UTC") -> bool:
    ctx = EvalContext(record={"profile": profile or {}}, now=now, profile_id="p1",
                      data=data if data is not None else MemoryProfileData(), stats=stats, store_tz=tz)  # fmt: skip
    return evaluate(parse_condition(doc), ctx)


def test_memory_data_is_a_profile_data() -> None:
    assert isinstance(MemoryProfileData(), ProfileData)


# --- windows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "at", "counted"),
    [
        ({"within": "7d"}, NOW - 7 * DAY, True),  # both ends included
        ({"within": "7d"}, NOW - 7 * DAY - US, False),
        ({"within": "7d"}, NOW, True),
        ({"within": "7d"}, NOW + US, False),  # after now: never counts
        ({}, NOW + US, False),
        ({"since": "2026-03-01"}, datetime(2026, 3, 1, tzinfo=UTC), True),
        ({"since": "2026-03-01"}, datetime(2026, 3, 1, tzinfo=UTC) - US, False),
        ({"before": "2026-03-01"}, datetime(2026, 3, 1, tzinfo=UTC), False),  # strict
        ({"before": "2026-03-01"}, datetime(2026, 3, 1, tzinfo=UTC) - US, True),
        ({"before": "30d"}, NOW - 30 * DAY, False),
        ({"before": "30d"}, NOW - 30 * DAY - US, True),
        ({"before": "2027-01-01"}, NOW + US, False),
        ({"between": ["2026-03-01", "2026-03-05"]}, datetime(2026, 3, 1, tzinfo=UTC), True),
        ({"between": ["2026-03-01", "2026-03-05"]}, datetime(2026, 3, 5, tzinfo=UTC), True),
        ({"between": ["2026-03-01", "2026-03-05"]}, datetime(2026, 3, 5, tzinfo=UTC) + US, False),
        ({"between": ["2026-03-01", "2026-04-05"]}, NOW + US, False),
    ],
)
def test_windows(window: dict[str, Any], at: datetime, counted: bool) -> None:
    data = MemoryProfileData(order_list=[order(at)])
    assert holds({"orders": window, "exists": True}, data) is counted
    events = MemoryProfileData(event_list=[{"id": "e", "type": "page_viewed", "occurred_at": at, "properties": {}}])
    assert holds({"history": {"event": "page_viewed", **window}, "exists": True}, events) is counted


def test_since_first_order_reads_the_profile_and_without_one_nothing_counts() -> None:
    first = NOW - 10 * DAY
    data = MemoryProfileData(cart_list=[{"id": "c1", "last_activity_at": first - US, "value": Decimal(5)},
                                        {"id": "c2", "last_activity_at": first, "value": Decimal(7)}])  # fmt: skip
    doc = {"carts": {"since": "first_order"}, "count": {"eq": 1}}
    assert holds(doc, data, profile={"first_order_at": first})
    assert holds({"carts": {"since": "first_order"}, "count": {"eq": 0}}, data, profile={})
    assert not holds({"carts": {"since": "first_order"}, "exists": True}, data, profile={"first_order_at": None})


def test_items_without_a_time_never_count() -> None:
    data = MemoryProfileData(order_list=[order(NOW), {"id": "x", "placed_at": None, "total": Decimal(1)}])
    assert holds({"orders": {}, "count": {"eq": 1}}, data)


# --- aggregates --------------------------------------------------------------------------------


def test_sum_min_max_avg() -> None:
    data = MemoryProfileData(order_list=[order(NOW - DAY, "1"), order(NOW - 2 * DAY, "1"),
                                         order(NOW - 3 * DAY, "2"), order(NOW - 4 * DAY, None)])  # fmt: skip
    assert holds({"orders": {}, "sum": {"of": "total", "eq": 4}}, data)
    assert holds({"orders": {}, "min": {"of": "total", "eq": 1}}, data)
    assert holds({"orders": {}, "max": {"of": "order.total", "eq": 2}}, data)
    # avg = 4/3 over the three orders with a total, compared exactly: sum op value * n
    assert not holds({"orders": {}, "avg": {"of": "total", "eq": "1.3333333333"}}, data)
    assert holds({"orders": {}, "avg": {"of": "total", "gt": "1.3333333333"}}, data)
    assert holds({"orders": {}, "avg": {"of": "total", "lt": "1.3333333334"}}, data)
    assert holds({"orders": {"within": "36h"}, "avg": {"of": "total", "eq": 1}}, data)


def test_aggregates_of_nothing() -> None:
    empty = MemoryProfileData()
    assert holds({"orders": {}, "sum": {"of": "total", "eq": 0}}, empty)
    assert holds({"orders": {}, "count": {"eq": 0}}, empty)
    assert holds({"orders": {}, "exists": False}, empty)
    for kind in ("min", "max", "avg"):
        assert not holds({"orders": {}, kind: {"of": "total", "gte": 0}}, empty)
        assert not holds({"orders": {}, kind: {"of": "total", "eq": 0}}, empty)
        assert holds({"orders": {}, kind: {"of": "total", "ne": 0}}, empty)


def test_sum_of_free_properties_counts_numbers_and_numeric_text_only() -> None:
    events = [{"id": str(i), "type": "order_placed", "occurred_at": NOW - DAY, "properties": {"total": v}}
              for i, v in enumerate([1, "2.5", "x", True, None, 0.5])]  # fmt: skip
    data = MemoryProfileData(event_list=events)
    assert holds({"history": {"event": "order_placed"}, "sum": {"of": "total", "eq": 4}}, data)
    assert holds({"history": {"event": "order_placed"}, "avg": {"of": "total", "eq": "1.3333333333333333333333333"}},
                 data) is False  # fmt: skip
    assert holds({"history": {"event": "order_placed"}, "count": {"eq": 6}}, data)


@pytest.mark.parametrize(
    ("aggregate", "seen", "never"),
    [
        ({"last_seen": {"within": "7d"}}, True, False),
        ({"last_seen": {"older_than": "7d"}}, False, True),
        ({"first_seen": {"older_than": "7d"}}, True, True),
        ({"first_seen": {"within": "7d"}}, False, False),
        ({"last_seen": {"before": "2026-03-09"}}, False, True),
        ({"last_seen": {"after": "2026-03-09"}}, True, False),
        ({"first_seen": {"before": "2026-03-09"}}, True, True),
        ({"first_seen": {"after": "2026-03-09"}}, False, False),
    ],
)
def test_first_and_last_seen(aggregate: dict[str, Any], seen: bool, never: bool) -> None:
    data = MemoryProfileData(message_list=[
        {"id": "m1", "channel": "email", "created_at": NOW - 20 * DAY, "opened_at": NOW - 19 * DAY},
        {"id": "m2", "channel": "email", "created_at": NOW - DAY, "opened_at": None},
    ])  # fmt: skip
    assert holds({"messages": {"channel": "email"}, **aggregate}, data) is seen
    assert holds({"messages": {"channel": "sms"}, **aggregate}, data) is never


def test_where_reads_the_item() -> None:
    data = MemoryProfileData(
        order_list=[order(NOW - DAY, "150", categories=["shoes"], discount_codes=["SALE"]), order(NOW - DAY, "50")],
        message_list=[{"id": "m", "channel": "email", "kind": "marketing", "created_at": NOW - DAY,
                       "opened_at": NOW - DAY + US}],
    )  # fmt: skip
    assert holds({"orders": {"where": {"field": "order.categories", "contains": "shoes"}}, "sum": {"of": "total",
                  "eq": 150}}, data)  # fmt: skip
    assert holds({"orders": {"where": {"field": "order.discount_codes", "exists": False}}, "count": {"eq": 1}}, data)
    assert holds({"messages": {"within": "7d", "where": {"all": [{"field": "message.kind", "eq": "marketing"},
                  {"field": "message.opened_at", "within": "7d"}]}}, "exists": True}, data)  # fmt: skip


# --- profile conditions ------------------------------------------------------------------------


def test_in_segment_and_identity() -> None:
    data = MemoryProfileData(identities=frozenset({"email"}), segments=frozenset({"vip"}))
    assert holds({"in_segment": "vip"}, data)
    assert not holds({"in_segment": "lapsed"}, data)
    assert holds({"identity": "email"}, data)
    assert not holds({"identity": "phone"}, data)


def test_profile_conditions_need_data() -> None:
    ctx = EvalContext(record={"profile": {}}, now=NOW, profile_id="p1")
    for doc in ({"in_segment": "vip"}, {"orders": {}, "exists": True}, {"identity": "email"}):
        with pytest.raises(ConditionError):
            evaluate(parse_condition(doc), ctx)


def test_purchase_overdue_one_order_uses_the_default() -> None:
    last = NOW - 60 * DAY
    profile = {"orders_count": 1, "first_order_at": last, "last_order_at": last}
    doc = {"purchase_overdue": {"factor": 2, "default": "60d"}}
    assert not holds(doc, profile=profile)
    assert holds(doc, profile=profile, now=NOW + US)
    assert not holds(doc, profile={"orders_count": 0})
    assert not holds(doc, profile={})


def test_purchase_overdue_compares_with_the_own_rhythm_exactly() -> None:
    first, last = NOW - 40 * DAY, NOW - 10 * DAY  # 3 orders: interval 15d; factor 1.5: 22.5d
    profile = {"orders_count": 3, "first_order_at": first, "last_order_at": last}
    doc = {"purchase_overdue": {"factor": 1.5, "default": "60d"}}
    edge = last + timedelta(days=22, hours=12)
    assert not holds(doc, profile=profile, now=edge)
    assert holds(doc, profile=profile, now=edge + US)
    # a third of a microsecond: 1µs span, 4 orders, factor 1 -> overdue after 1/3 µs: at 1 µs
    tiny = {"orders_count": 4, "first_order_at": last - US, "last_order_at": last}
    assert not holds({"purchase_overdue": {"factor": 1, "default": "1d"}}, profile=tiny, now=last)
    assert holds({"purchase_overdue": {"factor": 1, "default": "1d"}}, profile=tiny, now=last + US)


STATS = SegmentStats(
    currency="IDR",
    recency=(timedelta(days=7), timedelta(days=30), timedelta(days=90), timedelta(days=180)),
    frequency=(1, 2, 3, 5),
    monetary=(Decimal(100), Decimal(200), Decimal(500), Decimal(1000)),
    monetary_percentiles=tuple(Decimal(i * 10) for i in range(1, 100)),
    frequency_percentiles=tuple(1 + i // 20 for i in range(1, 100)),
    customers=100,
)


def test_rfm_scores() -> None:
    profile = {"orders_count": 3, "last_order_at": NOW - 7 * DAY, "total_spent": {"IDR": Decimal(200)}}
    assert holds({"rfm": {"recency": {"eq": 5}, "frequency": {"eq": 3}, "monetary": {"eq": 2}}}, profile=profile,
                 stats=STATS)  # fmt: skip
    assert holds({"rfm": {"recency": {"eq": 4}}}, profile=profile, stats=STATS, now=NOW + US)
    assert not holds({"rfm": {"recency": {"gte": 1}}}, profile=profile)  # no statistics: false
    assert not holds({"rfm": {"recency": {"gte": 1}}}, profile={"orders_count": 0}, stats=STATS)
    assert holds({"rfm": {"monetary": {"eq": 1}}}, profile={**profile, "total_spent": {"USD": 9999}}, stats=STATS)


def test_top_percent() -> None:
    profile = {"orders_count": 3, "last_order_at": NOW, "total_spent": {"IDR": Decimal(900)}}
    assert holds({"top": {"metric": "monetary", "percent": 10}}, profile=profile, stats=STATS)  # cut: 900
    assert not holds({"top": {"metric": "monetary", "percent": 9}}, profile=profile, stats=STATS)  # cut: 910
    assert not holds({"top": {"metric": "monetary", "percent": 10}}, profile=profile)
    assert not holds({"top": {"metric": "frequency", "percent": 50}}, profile={"orders_count": 0}, stats=STATS)
    assert holds({"top": {"metric": "frequency", "percent": 50}}, profile=profile, stats=STATS)  # cut: 3


# --- anniversaries -----------------------------------------------------------------------------


def test_anniversary_counts_n_days_starting_today() -> None:
    today = datetime(2026, 3, 10).date()
    born = datetime(1990, 3, 16).date()
    assert anniversary_within(born, 7 * DAY, today)  # 10..16
    assert not anniversary_within(born, 6 * DAY, today)  # 10..15
    assert anniversary_within(datetime(1990, 3, 10).date(), DAY, today)  # 1d: today only
    assert anniversary_within(datetime(1990, 3, 9).date(), 400 * DAY, today)  # next year's 9 March
    assert anniversary_within(datetime(1990, 1, 2).date(), 4 * DAY, datetime(2026, 12, 30).date())  # over new year


def test_anniversary_of_29_february() -> None:
    leapling = datetime(2000, 2, 29).date()
    assert anniversary_within(leapling, DAY, datetime(2026, 2, 28).date())
    assert not anniversary_within(leapling, DAY, datetime(2026, 3, 1).date())
    assert anniversary_within(leapling, DAY, datetime(2028, 2, 29).date())
    assert not anniversary_within(leapling, DAY, datetime(2028, 2, 28).date())


def test_anniversary_today_is_the_store_date() -> None:
    doc = {"field": "profile.birthday", "anniversary_within": "1d"}
    profile = {"properties": {"birthday": "1990-03-11"}}
    late = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)  # 2026-03-11 00:00 in Jakarta (UTC+7)
    assert holds(doc, profile=profile, now=late, tz="Asia/Jakarta")
    assert not holds(doc, profile=profile, now=late - US, tz="Asia/Jakarta")
    assert not holds(doc, profile=profile, now=late, tz="UTC")
    # a date-time is read as its UTC date
    assert holds({"field": "profile.created_at", "anniversary_within": "1d"},
                 profile={"created_at": datetime(2020, 3, 10, 23, 30, tzinfo=UTC)})  # fmt: skip
    assert not holds(doc, profile={"properties": {"birthday": "soon"}})
    assert holds({"not": doc}, profile={})


def test_parser_refuses_part_days_for_anniversaries() -> None:
    with pytest.raises(Exception, match="whole number of days"):
        parse_condition({"field": "profile.birthday", "anniversary_within": "36h"})
