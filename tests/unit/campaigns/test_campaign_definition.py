"""Reading campaign documents: every problem at once with its path, variants merged over the base
message, the three schedules."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from storeflow.campaigns import CampaignValidationError, load_campaign, parse_campaign

BASE = {"id": "sale", "name": "Sale", "audience": {"include": ["vip"]},
        "message": {"channel": "email", "subject": "Hi {{ profile.first_name }}", "text": "Sale"}}


def problems(doc: object) -> dict[str, str]:
    with pytest.raises(CampaignValidationError) as info:
        parse_campaign(doc)
    return {p.path: p.message for p in info.value.problems}


def test_a_minimal_campaign_is_marketing_now_with_smart_sending_16h() -> None:
    c = parse_campaign(BASE)
    assert (c.channel, c.include, c.exclude, c.schedule.kind, c.throttle, c.smart_sending_hours) == \
        ("email", ("vip",), (), "now", None, 16.0)
    assert c.params.kind == "marketing"  # type: ignore[attr-defined]


def test_every_problem_is_reported_with_its_path() -> None:
    found = problems({"id": "x", "name": "X", "audience": {"include": ["vip"], "exclude": ["vip"], "other": 1},
                      "message": {"channel": "email", "text": "{{ unclosed", "kind": "transactional"},
                      "variants": [{"id": "a", "weight": 0}], "schedule": {"at": "tomorrow"}, "colour": "red"})
    assert found.keys() >= {"audience.exclude", "audience.other", "message", "message.text", "message.kind",
                            "variants", "variants[0].weight", "schedule.at", "colour"}, found


def test_variants_override_the_base_message_and_keep_its_channel() -> None:
    doc = {**BASE, "variants": [{"id": "a", "weight": 3}, {"id": "b", "message": {"subject": "Last call"}}]}
    c = parse_campaign(doc)
    assert c.weights == (("a", 3), ("b", 1))
    assert c.params_for("b").subject == "Last call"  # type: ignore[attr-defined]
    assert c.params_for("a").subject == BASE["message"]["subject"]  # type: ignore[attr-defined,index]
    bad = {**BASE, "variants": [{"id": "a"}, {"id": "a", "message": {"channel": "sms"}}]}
    assert problems(bad).keys() >= {"variants[1].id", "variants[1].message.channel"}


def test_schedules_now_at_and_local_time() -> None:
    jakarta = ZoneInfo("Asia/Jakarta")
    now = datetime(2026, 3, 1, tzinfo=UTC)
    at = parse_campaign({**BASE, "schedule": {"at": "2026-03-05T10:00"}}).schedule
    assert at.send_at(now, jakarta) == datetime(2026, 3, 5, 3, 0, tzinfo=UTC)
    offset = parse_campaign({**BASE, "schedule": {"at": "2026-03-05T10:00+01:00"}}).schedule
    assert offset.send_at(now, jakarta) == datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    local = parse_campaign({**BASE, "schedule": {"local_time": "10:00", "date": "2026-03-05"}}).schedule
    assert (local.local_time, local.on) == (time(10, 0), date(2026, 3, 5))
    assert local.send_at(now, jakarta) == datetime(2026, 3, 4, 20, 0, tzinfo=UTC)  # UTC+14 gets there first
    assert local.due_in(ZoneInfo("America/New_York")) == datetime(2026, 3, 5, 15, 0, tzinfo=UTC)
    assert problems({**BASE, "schedule": {"local_time": "10:00"}}) == {"schedule": 'missing required key "date"'}


def test_yaml_problems_carry_their_line() -> None:
    text = "id: sale\nname: Sale\naudience: {include: [vip]}\nmessage:\n  channel: email\n  subject: Hi\n" \
           "  text: Sale\nthrottle: -5\n"
    with pytest.raises(CampaignValidationError) as info:
        load_campaign(text, "sale.yaml")
    (problem,) = info.value.problems
    assert (problem.path, problem.line) == ("throttle", 8)
