"""Flow execution on both backends: waits, wait-for-event, versions, identify mid-flow, exits,
re-entry, splits, schedules, date triggers, failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from helpers import apply, profile_of, steps

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.errors import FlowValidationError

CART_FLOW = """
id: cart
name: Abandoned cart
trigger: {event: checkout_started}
steps:
  - wait_for: {event: order_placed, timeout: 1h}
    on_event:
      - action: tag
        tags: [recovered]
    on_timeout:
      - action: tag
        tags: [reminded]
"""


def _checkout(email: str, key: str = "ck") -> dict[str, object]:
    return {"type": "checkout_started", "email": email, "id": key,
            "properties": {"checkout_id": key, "value": "20.00", "currency": "USD"}}


def _order(email: str, key: str = "o1", **extra: object) -> dict[str, object]:
    return {"type": "order_placed", "email": email, "id": key, **extra,
            "properties": {"order_id": key, "total": "20.00", "currency": "USD"}}


def test_wait_for_event_times_out(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, CART_FLOW)
    run_id = sf.ingest([_checkout("a@example.com")])[0].runs_started[0]
    sf.drain()
    assert sf.views.run(run_id)["status"] == "waiting"
    clock.advance(timedelta(minutes=59))
    sf.drain()
    assert sf.views.run(run_id)["status"] == "waiting"
    clock.advance(timedelta(minutes=2))
    sf.drain()
    run = sf.views.run(run_id)
    assert run["status"] == "completed"
    assert profile_of(sf, "a@example.com")["tags"] == ["reminded"]
    assert ("steps[0]", "wait_for", "resumed") in steps(sf, run_id)
    assert run["steps"][1]["detail"]["outcome"] == "timeout"


def test_wait_for_event_is_satisfied_in_real_time(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, CART_FLOW)
    run_id = sf.ingest([_checkout("b@example.com")])[0].runs_started[0]
    sf.drain()
    clock.advance(timedelta(minutes=20))
    sf.ingest([_order("b@example.com")])
    sf.drain()  # no clock movement needed: the event made the run due now
    run = sf.views.run(run_id)
    assert run["status"] == "completed"
    assert run["steps"][1]["detail"]["outcome"] == "event"
    assert profile_of(sf, "b@example.com")["tags"] == ["recovered"]


def test_anonymous_visitor_identifies_mid_flow(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, """
id: browse
name: Browse abandonment
trigger: {event: product_viewed}
steps:
  - wait_for: {event: order_placed, timeout: 1d}
    on_event: [{action: tag, tags: [bought-after-browse]}]
    on_timeout: [{action: tag, tags: [browse-reminder]}]
""")
    sf.ingest([{"type": "customer_created", "email": "known@example.com", "id": "c0",
                "profile": {"first_name": "Ana", "locale": "pt_BR"}}])
    view = sf.ingest([{"type": "product_viewed", "anonymous_id": "anon-1", "id": "v1",
                       "properties": {"product_id": "p1"}}])[0]
    anon_profile = view.profile_id
    run_id = view.runs_started[0]
    sf.drain()
    clock.advance(timedelta(hours=2))
    ident = sf.ingest([{"type": "identified", "anonymous_id": "anon-1", "email": "known@example.com"}])[0]
    assert ident.profile_id != anon_profile  # merged into the known customer
    sf.ingest([_order("known@example.com")])
    sf.drain()
    known = profile_of(sf, "known@example.com")
    assert known["tags"] == ["bought-after-browse"]
    assert known["properties"]["first_name"] == "Ana"
    assert {e["type"] for e in known["timeline"]} >= {"product_viewed", "order_placed", "customer_created"}
    assert sf.views.run(run_id)["profile_id"] == known["id"]
    assert sf.views.profile(anon_profile)["id"] == known["id"]  # the old id redirects


def test_editing_a_flow_keeps_waiting_runs_on_their_version(sf: Storeflow, clock: VirtualClock) -> None:
    v1 = "id: promo\nname: Promo\ntrigger: {event: customer_created}\nsteps:\n  - wait: 1h\n" \
         "  - action: tag\n    tags: [v1]\n"
    assert apply(sf, v1).version == 1
    old = sf.ingest([{"type": "customer_created", "email": "old@example.com"}])[0].runs_started[0]
    sf.drain()
    result = apply(sf, v1.replace("[v1]", "[v2]"))
    assert (result.version, result.change) == (2, "new_version")
    assert apply(sf, v1.replace("[v1]", "[v2]")).change == "unchanged"
    new = sf.ingest([{"type": "customer_created", "email": "new@example.com"}])[0].runs_started[0]
    sf.drain()
    clock.advance(timedelta(hours=1, seconds=1))
    sf.drain()
    assert sf.views.run(old)["flow_version"] == 1
    assert sf.views.run(new)["flow_version"] == 2
    assert profile_of(sf, "old@example.com")["tags"] == ["v1"]
    assert profile_of(sf, "new@example.com")["tags"] == ["v2"]


def test_exit_condition_is_checked_before_every_step(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, """
id: series
name: Series
trigger: {event: checkout_started}
exit_when: {history: {event: order_placed, since: flow_start}, exists: true}
steps:
  - action: tag
    tags: [email-1]
  - wait: 24h
  - action: tag
    tags: [email-2]
""")
    run_id = sf.ingest([_checkout("e@example.com")])[0].runs_started[0]
    sf.drain()
    clock.advance(timedelta(hours=3))
    sf.ingest([_order("e@example.com")])
    clock.advance(timedelta(hours=22))
    sf.drain()
    run = sf.views.run(run_id)
    assert run["status"] == "exited"
    assert run["exit_reason"] == "exit condition met"
    assert profile_of(sf, "e@example.com")["tags"] == ["email-1"]


def test_reentry_once_and_one_active_run(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "id: once\nname: Once\nreentry: once\ntrigger: {event: customer_updated}\n"
              "steps:\n  - wait: 1h\n")
    first = sf.ingest([{"type": "customer_updated", "email": "r@example.com", "id": "1"}])[0]
    second = sf.ingest([{"type": "customer_updated", "email": "r@example.com", "id": "2"}])[0]
    assert len(first.runs_started) == 1
    assert second.runs_started == []
    clock.advance(timedelta(hours=2))
    sf.drain()
    third = sf.ingest([{"type": "customer_updated", "email": "r@example.com", "id": "3"}])[0]
    assert third.runs_started == []


def test_reentry_every_period(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "id: every\nname: Every\nreentry: {every: 7d}\ntrigger: {event: customer_updated}\n"
              "steps:\n  - action: note\n    text: hi\n")
    assert sf.ingest([{"type": "customer_updated", "email": "s@example.com", "id": "1"}])[0].runs_started
    sf.drain()
    clock.advance(timedelta(days=3))
    assert not sf.ingest([{"type": "customer_updated", "email": "s@example.com", "id": "2"}])[0].runs_started
    clock.advance(timedelta(days=5))
    assert sf.ingest([{"type": "customer_updated", "email": "s@example.com", "id": "3"}])[0].runs_started


def test_random_split_is_deterministic_per_profile(sf: Storeflow) -> None:
    flow = """
id: ab
name: AB
trigger: {event: customer_updated}
reentry: always
steps:
  - split:
      - {name: a, weight: 1, steps: [{action: tag, tags: [a]}]}
      - {name: b, weight: 1, steps: [{action: tag, tags: [b]}]}
"""
    apply(sf, flow)
    emails = [f"u{i}@example.com" for i in range(40)]
    sf.ingest([{"type": "customer_updated", "email": e, "id": f"x{e}"} for e in emails])
    sf.drain()
    first = {e: profile_of(sf, e)["tags"] for e in emails}
    assert {"a", "b"} == {t for tags in first.values() for t in tags}
    sf.ingest([{"type": "customer_updated", "email": e, "id": f"y{e}"} for e in emails])
    sf.drain()
    for e in emails:
        assert profile_of(sf, e)["tags"] == first[e]


def test_if_branches_on_profile_and_history(sf: Storeflow) -> None:
    apply(sf, """
id: vip
name: VIP
reentry: always
trigger: {event: order_placed}
steps:
  - if: {history: {event: order_placed, within: 365d}, sum: {of: total, gte: 100}}
    then: [{action: tag, tags: [vip]}]
    else: [{action: tag, tags: [regular]}]
""")
    sf.ingest([{**_order("v@example.com", "o1"), "properties": {"order_id": "o1", "total": "60", "currency": "USD"}}])
    sf.drain()
    assert profile_of(sf, "v@example.com")["tags"] == ["regular"]
    sf.ingest([{**_order("v@example.com", "o2"), "properties": {"order_id": "o2", "total": "50", "currency": "USD"}}])
    sf.drain()
    assert set(profile_of(sf, "v@example.com")["tags"]) == {"regular", "vip"}


def test_a_failing_step_fails_its_run_only(sf: Storeflow) -> None:
    apply(sf, "id: bad\nname: Bad\ntrigger: {event: customer_updated}\nsteps:\n"
              "  - action: tag\n    target: order\n    tags: [x]\n")
    apply(sf, "id: good\nname: Good\ntrigger: {event: customer_updated}\nsteps:\n"
              "  - action: tag\n    tags: [fine]\n")
    sf.ingest([{"type": "customer_updated", "email": "f@example.com"}])
    sf.drain()
    runs = {r["flow_id"]: r for r in sf.views.runs()}
    assert runs["bad"]["status"] == "failed"
    assert "no order" in runs["bad"]["last_error"]
    assert runs["good"]["status"] == "completed"
    assert profile_of(sf, "f@example.com")["tags"] == ["fine"]


def test_paused_flow_holds_runs_and_resumes(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "id: p\nname: P\ntrigger: {event: customer_updated}\nsteps:\n  - wait: 1h\n"
              "  - action: tag\n    tags: [done]\n")
    run_id = sf.ingest([{"type": "customer_updated", "email": "p@example.com"}])[0].runs_started[0]
    sf.drain()
    sf.flows.set_status("p", "paused")
    clock.advance(timedelta(hours=2))
    sf.drain()
    assert sf.views.run(run_id)["status"] == "waiting"
    assert sf.ingest([{"type": "customer_updated", "email": "q@example.com"}])[0].runs_started == []
    sf.flows.set_status("p", "live")
    sf.drain()
    assert sf.views.run(run_id)["status"] == "completed"


def test_old_events_do_not_start_runs(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, CART_FLOW)
    old = {**_checkout("h@example.com"), "occurred_at": (clock.now() - timedelta(days=30)).isoformat()}
    result = sf.ingest([old])[0]
    assert result.status == "accepted"
    assert result.runs_started == []


def test_trigger_filter(sf: Storeflow) -> None:
    apply(sf, "id: big\nname: Big\ntrigger:\n  event: checkout_started\n  filter: {field: cart.value, gte: 100}\n"
              "steps:\n  - action: note\n    text: big cart\n")
    small = sf.ingest([_checkout("s1@example.com", "c1")])[0]
    big = sf.ingest([{**_checkout("s2@example.com", "c2"),
                      "properties": {"checkout_id": "c2", "value": "150.00", "currency": "USD"}}])[0]
    assert small.runs_started == []
    assert len(big.runs_started) == 1


def test_wait_until_uses_the_profile_time_zone(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "id: morning\nname: Morning\ntrigger: {event: customer_created}\nsteps:\n"
              "  - wait_until: {time: \"09:00\"}\n  - action: tag\n    tags: [morning]\n")
    # 2026-03-02 09:00 UTC is 16:00 in Jakarta: the next 09:00 there is 02:00 UTC on 3 March.
    run_id = sf.ingest([{"type": "customer_created", "email": "j@example.com",
                         "profile": {"timezone": "Asia/Jakarta"}}])[0].runs_started[0]
    sf.drain()
    assert sf.views.run(run_id)["due_at"] == datetime(2026, 3, 3, 2, 0, tzinfo=UTC)


def test_schedule_trigger_fires_on_the_virtual_clock(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "id: daily\nname: Daily report\ntrigger: {schedule: \"0 8 * * *\", timezone: America/Sao_Paulo}\n"
              "steps:\n  - action: note\n    text: report\n")
    sf.run_until(clock.now() + timedelta(days=3))
    runs = sf.views.runs(flow_id="daily")
    assert len(runs) == 3
    assert all(r["status"] == "completed" for r in runs)
    assert {r["started_at"].hour for r in runs} == {11}  # 08:00 in São Paulo is 11:00 UTC


def test_date_trigger_birthday(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, "id: bday\nname: Birthday\ntrigger: {date: profile.birthday, offset: -1d, at: \"09:00\"}\n"
              "steps:\n  - action: tag\n    tags: [birthday-soon]\n")
    sf.ingest([{"type": "customer_created", "email": "b1@example.com", "profile": {"birthday": "1990-03-04"}},
               {"type": "customer_created", "email": "b2@example.com", "profile": {"birthday": "1985-07-01"}}])
    sf.run_until(clock.now() + timedelta(days=3))
    assert profile_of(sf, "b1@example.com")["tags"] == ["birthday-soon"]
    assert profile_of(sf, "b2@example.com")["tags"] == []
    assert len(sf.views.runs(flow_id="bday")) == 1


def test_invalid_flow_is_refused_with_every_problem(sf: Storeflow) -> None:
    bad = """
id: Bad Flow
name: Broken
trigger: {event: order_place}
reentry: sometimes
steps:
  - wait: 1 hr
  - action: tagg
    tags: [x]
  - if: {field: profile.orders_count, gte: 1, lt: 5}
    then: []
  - split:
      - {name: a, weight: 1, steps: []}
"""
    with pytest.raises(FlowValidationError) as err:
        sf.flows.validate(bad, "flows/bad.yaml")
    paths = {p.path for p in err.value.problems}
    assert len(err.value.problems) >= 6
    for expected in ("id", "trigger.event", "reentry", "steps[0].wait", "steps[1].action", "steps[3].split"):
        assert any(p.startswith(expected) for p in paths), (expected, paths)
    assert "flows/bad.yaml:7: steps[0].wait" in str(err.value)
    assert sf.flows.list() == []


def test_a_live_flow_cannot_be_applied_back_to_draft(sf: Storeflow) -> None:
    from storeflow.errors import ConflictError

    apply(sf, CART_FLOW)
    with pytest.raises(ConflictError):
        apply(sf, CART_FLOW, status="draft")
    assert sf.flows.get("cart")["status"] == "live"
