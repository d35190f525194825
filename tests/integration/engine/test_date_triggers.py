"""Schedule and date triggers on both backends, on the virtual clock: cron across daylight-saving
changes, birthdays from their indexed fire times (late in the day, caught up within the grace,
skipped past it, every year, 29 February), backfill and recomputation of the fire times."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import apply, profile_of
from sqlalchemy import event

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.settings import Settings

MakeSf = Callable[..., Storeflow]
NOTE_STEPS = "steps:\n  - action: note\n    text: fired\n"


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def starts(sf: Storeflow, flow_id: str) -> list[datetime]:
    return sorted(r["started_at"] for r in sf.views.runs(flow_id=flow_id, limit=500))


def fires_of(sf: Storeflow, email: str) -> list[dict[str, Any]]:
    pid = sf.views.find_profile("email", email)
    assert pid is not None
    with sf.store.read() as tx:
        return tx.date_fires_of(pid)


def birthday_flow(at_time: str = "09:00", extra: str = "") -> str:
    return (f'id: bday\nname: Birthday\ntrigger: {{date: profile.birthday, at: "{at_time}"}}\n{extra}'
            "steps:\n  - action: tag\n    tags: [birthday]\n")


@contextmanager
def statements(sf: Storeflow) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engine = sf.store.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


# -- cron ------------------------------------------------------------------------------------------
def test_cron_in_the_store_zone_fires_once_on_the_autumn_change(make_sf: MakeSf, clock: VirtualClock) -> None:
    clock.set(at(2026, 10, 30, 12))
    sf = make_sf(timezone="America/New_York")
    apply(sf, 'id: nightly\nname: Nightly\ntrigger: {schedule: "30 1 * * *"}\n' + NOTE_STEPS)
    sf.run_until(at(2026, 11, 4, 12))
    # 01:30 is 05:30 UTC under EDT and 06:30 UTC under EST; on 1 November it happens twice.
    assert starts(sf, "nightly") == [at(2026, 10, 31, 5, 30), at(2026, 11, 1, 5, 30), at(2026, 11, 2, 6, 30),
                                     at(2026, 11, 3, 6, 30), at(2026, 11, 4, 6, 30)]


def test_cron_fires_at_the_end_of_the_spring_gap(make_sf: MakeSf, clock: VirtualClock) -> None:
    clock.set(at(2026, 3, 6, 12))
    sf = make_sf()
    apply(sf, 'id: nightly\nname: Nightly\ntrigger: {schedule: "30 2 * * *", timezone: America/New_York}\n'
          + NOTE_STEPS)
    sf.run_until(at(2026, 3, 9, 12))
    # 02:30 does not exist on 8 March: it fires once, at 03:00 EDT (07:00 UTC).
    assert starts(sf, "nightly") == [at(2026, 3, 7, 7, 30), at(2026, 3, 8, 7, 0), at(2026, 3, 9, 6, 30)]


def test_a_cron_occurrence_starts_one_run_however_often_it_is_claimed(make_sf: MakeSf,
                                                                       clock: VirtualClock) -> None:
    clock.set(at(2026, 11, 1, 5))
    sf = make_sf(timezone="America/New_York")
    apply(sf, 'id: nightly\nname: Nightly\ntrigger: {schedule: "30 1 * * *"}\n' + NOTE_STEPS)
    sf.run_until(at(2026, 11, 1, 6))
    assert starts(sf, "nightly") == [at(2026, 11, 1, 5, 30)]
    # A schedule row pointing at the second 01:30 (as the old computation left it) is the same
    # local occurrence: claimed, but no second run.
    with sf.store.transaction() as tx:
        tx.set_schedule("nightly", 1, "cron", at(2026, 11, 1, 6, 30))
    sf.run_until(at(2026, 11, 1, 7))
    assert starts(sf, "nightly") == [at(2026, 11, 1, 5, 30)]


# -- date triggers -----------------------------------------------------------------------------------
def test_a_birthday_at_23_30_fires_at_23_30_local(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, birthday_flow("23:30"))
    sf.ingest([{"type": "customer_created", "email": "j@example.com",
                "profile": {"birthday": "1990-03-05", "timezone": "Asia/Jakarta"}}])
    sf.run_until(at(2026, 3, 8))
    assert starts(sf, "bday") == [at(2026, 3, 5, 16, 30)]  # 23:30 in Jakarta (UTC+7)
    assert profile_of(sf, "j@example.com")["tags"] == ["birthday"]


def test_missed_birthdays_are_caught_up_within_the_grace_and_skipped_past_it(
        sf: Storeflow, clock: VirtualClock, caplog: pytest.LogCaptureFixture) -> None:
    apply(sf, birthday_flow())
    sf.ingest([{"type": "customer_created", "email": "late@example.com", "profile": {"birthday": "1990-03-04"}},
               {"type": "customer_created", "email": "lost@example.com", "profile": {"birthday": "1990-03-03"}}])
    sf.drain()
    assert [f["next_fire_at"] for f in fires_of(sf, "late@example.com")] == [at(2026, 3, 4, 9)]
    # The worker is down until 5 March 08:00: 4 March's birthday is 23 h late (within the default
    # grace of a day) and fires; 3 March's is 47 h late and is skipped, logged and recorded.
    clock.set(at(2026, 3, 5, 8))
    with caplog.at_level(logging.WARNING, logger="storeflow.scheduler"):
        sf.drain()
    runs = sf.views.runs(flow_id="bday")
    assert [(r["profile_id"], r["started_at"]) for r in runs] == [
        (sf.views.find_profile("email", "late@example.com"), at(2026, 3, 5, 8))]
    late, lost = fires_of(sf, "late@example.com")[0], fires_of(sf, "lost@example.com")[0]
    assert (late["last_occurrence"], late["last_outcome"], late["next_fire_at"]) == ("2026", "started",
                                                                                   at(2027, 3, 4, 9))
    assert (lost["last_occurrence"], lost["last_outcome"], lost["next_fire_at"]) == ("2026", "skipped",
                                                                                   at(2027, 3, 3, 9))
    assert any("skipped" in r.getMessage() and lost["profile_id"] in r.getMessage() for r in caplog.records)
    assert profile_of(sf, "lost@example.com")["tags"] == []


def test_the_grace_is_a_setting(make_sf: MakeSf, clock: VirtualClock) -> None:
    sf = make_sf(date_trigger_grace_s=3600)
    apply(sf, birthday_flow())
    sf.ingest([{"type": "customer_created", "email": "a@example.com", "profile": {"birthday": "1990-03-03"}}])
    sf.drain()
    clock.set(at(2026, 3, 3, 11))  # two hours late
    sf.drain()
    assert sf.views.runs(flow_id="bday") == []
    assert fires_of(sf, "a@example.com")[0]["last_outcome"] == "skipped"


def test_birthdays_fire_every_year_and_29_february_on_28_february(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, birthday_flow(extra="reentry: always\n"))
    sf.ingest([{"type": "customer_created", "email": "leap@example.com", "profile": {"birthday": "1992-02-29"}}])
    sf.run_until(at(2029, 3, 1))
    assert starts(sf, "bday") == [at(2027, 2, 28, 9), at(2028, 2, 29, 9), at(2029, 2, 28, 9)]


def test_existing_profiles_are_backfilled_in_pages(sf: Storeflow, clock: VirtualClock) -> None:
    sf.ingest([{"type": "customer_created", "email": f"p{n}@example.com",
                "profile": {"birthday": f"1990-03-0{n + 3}"}} for n in range(7)])
    sf.ingest([{"type": "customer_created", "email": "none@example.com"}])
    sf.drain()
    sf.scheduler.backfill_page = 3
    apply(sf, birthday_flow())
    sf.scheduler.tick()
    with sf.store.read() as tx:
        profiles = sorted(tx.list_profiles(limit=100), key=lambda p: p["id"])
        with_rows = [p["id"] for p in profiles if tx.date_fires_of(p["id"])]
    # One page: the first three profiles by id, those of them with a birthday.
    assert with_rows == [p["id"] for p in profiles[:3] if p["properties"].get("birthday")]
    assert sf.scheduler.backfilling
    sf.drain()
    assert [fires_of(sf, f"p{n}@example.com")[0]["next_fire_at"] for n in range(7)] == [
        at(2026, 3, 3 + n, 9) for n in range(7)]
    assert fires_of(sf, "none@example.com") == []
    sf.run_until(at(2026, 3, 10))
    assert len(starts(sf, "bday")) == 7


def test_fire_times_follow_profile_changes(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, birthday_flow())
    apply(sf, "id: setter\nname: Setter\ntrigger: {event: order_placed}\nsteps:\n"
              "  - action: set_property\n    property: birthday\n    value: '1980-06-01'\n")
    sf.ingest([{"type": "customer_created", "email": "c@example.com", "profile": {"birthday": "1990-04-01"}}])
    sf.drain()
    assert [f["next_fire_at"] for f in fires_of(sf, "c@example.com")] == [at(2026, 4, 1, 9)]
    # Ingest: a new time zone moves it (09:00 in São Paulo is 12:00 UTC).
    sf.identify({"email": "c@example.com", "profile": {"timezone": "America/Sao_Paulo"}})
    sf.drain()
    assert [f["next_fire_at"] for f in fires_of(sf, "c@example.com")] == [at(2026, 4, 1, 12)]
    # The worker's set_property.
    sf.ingest([{"type": "order_placed", "email": "c@example.com", "id": "o1",
                "properties": {"order_id": "o1", "total": "5.00", "currency": "USD"}}])
    sf.drain()
    assert [f["next_fire_at"] for f in fires_of(sf, "c@example.com")] == [at(2026, 6, 1, 12)]
    # No date any more: no fire row.
    sf.identify({"email": "c@example.com", "profile": {"birthday": "unknown"}})
    sf.drain()
    assert fires_of(sf, "c@example.com") == []


def test_a_date_flow_reads_no_profile_until_one_is_due(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, birthday_flow())
    sf.ingest([{"type": "customer_created", "email": f"q{n}@example.com",
                "profile": {"birthday": f"1990-0{n % 9 + 1}-15"}} for n in range(40)])
    sf.drain()
    clock.advance(timedelta(hours=5))
    with statements(sf) as seen:
        sf.drain()
    assert seen, "the scheduler ran"
    assert not [s for s in seen if "FROM profiles" in s]
    assert sf.scheduler.next_at() == at(2026, 3, 15, 9)


def test_concurrent_claims_take_different_rows_on_postgres(pg_url: str, clock: VirtualClock) -> None:
    """PostgreSQL only (SQLite has one writer at a time, so its claims cannot overlap)."""
    created: list[Storeflow] = []

    def make_sf() -> Storeflow:
        created.append(Storeflow(Settings(database_url=pg_url), clock=clock))
        return created[-1]

    try:
        _concurrent_claims(make_sf, clock)
    finally:
        for engine in created:
            engine.close()


def _concurrent_claims(make_sf: Callable[[], Storeflow], clock: VirtualClock) -> None:
    sf = make_sf()
    apply(sf, birthday_flow())
    sf.ingest([{"type": "customer_created", "email": f"c{n}@example.com", "profile": {"birthday": "1990-03-03"}}
               for n in range(6)])
    sf.drain()
    clock.set(at(2026, 3, 3, 9))
    with sf.store.transaction() as first:
        held = first.claim_due_date_fires(clock.now(), 4)
        with sf.store.transaction() as second:
            rest = second.claim_due_date_fires(clock.now(), 10)
    assert len(held) == 4
    assert len(rest) == 2
    assert not {r["profile_id"] for r in held} & {r["profile_id"] for r in rest}
    # Two engines draining the database at once: every birthday starts exactly one run.
    engines = [sf, make_sf()]
    threads = [threading.Thread(target=engine.drain) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert len(sf.views.runs(flow_id="bday")) == 6


def test_a_change_after_today_s_birthday_does_not_bring_it_back(sf: Storeflow, clock: VirtualClock) -> None:
    apply(sf, birthday_flow())
    sf.ingest([{"type": "customer_created", "email": "d@example.com", "profile": {"birthday": "1990-03-03"}}])
    sf.run_until(at(2026, 3, 3, 10))
    assert starts(sf, "bday") == [at(2026, 3, 3, 9)]
    sf.identify({"email": "d@example.com", "profile": {"first_name": "Dee"}})
    sf.drain()
    row = fires_of(sf, "d@example.com")[0]
    assert (row["next_fire_at"], row["last_occurrence"], row["last_outcome"]) == (at(2027, 3, 3, 9), "2026", "started")
