"""The built-in segments on the demo store (ten simulated days, SQLite like ``storeflow demo``):
every template installs and is computed, and the members agree with what the store's own rows say,
checked from the profiles directly: the RFM cells split the customers, the lifecycle and behaviour
segments are the customers their definitions name."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storeflow.app import Storeflow
from storeflow.cli.demo_cmd import _install_flows, _settings
from storeflow.clock import VirtualClock
from storeflow.segments.builtin import resolve, templates
from storeflow.simulate.catalog import build_catalog
from storeflow.simulate.people import build_people
from storeflow.simulate.traffic import Simulation
from storeflow.simulate.traffic_model import TrafficModel

pytestmark = pytest.mark.slow
START = datetime(2026, 3, 2, tzinfo=UTC)
DAYS = 10


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storeflow]:
    folder: Path = tmp_path_factory.mktemp("demo")
    clock = VirtualClock(START)
    sf = Storeflow(_settings(folder / "storeflow.db", "IDR", smtp_port=9, port=8787), clock=clock)
    _install_flows(sf)
    model = TrafficModel()
    customers = 1000
    catalog = build_catalog(7, "IDR", 40, expected_units=model.expected_units(customers, DAYS))
    Simulation(sf, catalog, build_people(7, "IDR", customers), start=START, days=DAYS, seed=7, model=model).run(None)
    sf.segments.apply_all([t.segment for t in resolve(["all"])])
    sf.segment_stats.refresh()
    sf.drain()
    yield sf
    sf.close()


def members(sf: Storeflow, segment_id: str) -> set[str]:
    with sf.store.read() as tx:
        return {r["profile_id"] for r in tx.segment_members_page(segment_id, None, 100_000)}


def customers(sf: Storeflow) -> dict[str, dict[str, object]]:
    """Unmerged profiles with an order: id -> orders_count, last_order_at, total spent in IDR."""
    found = {}
    with sf.store.read() as tx:
        after = ""
        while page := tx.profiles_page(after, 1000):
            rows = tx.rows_by_id("profile", [p["id"] for p in page],
                                 columns=["orders_count", "last_order_at", "total_spent", "merged_into"])
            for pid, row in rows.items():
                if row["merged_into"] is None and int(row["orders_count"] or 0) >= 1:
                    found[pid] = row
            after = page[-1]["id"]
    return found


def test_every_template_is_computed(demo: Storeflow) -> None:
    listed = {s["id"]: s for s in demo.segments.list()}
    assert {t.name for t in templates()} <= set(listed)
    assert all(listed[t.name]["computed_version"] == listed[t.name]["current_version"] for t in templates())


def test_the_rfm_cells_split_the_customers(demo: Storeflow) -> None:
    buyers = customers(demo)
    assert len(buyers) >= 8, "the simulated days have customers who ordered"
    cells = [members(demo, t.name) for t in templates() if t.group == "rfm"]
    assert sum(len(c) for c in cells) == len(buyers)
    assert set().union(*cells) == set(buyers)


def test_lifecycle_and_behaviour_agree_with_the_profiles(demo: Storeflow) -> None:
    buyers = customers(demo)
    once = {pid for pid, row in buyers.items() if row["orders_count"] == 1}
    assert members(demo, "lifecycle-first-time-buyer") == once == members(demo, "behaviour-one-time-buyers")
    assert members(demo, "lifecycle-repeat-customer") == set(buyers) - once
    assert members(demo, "lifecycle-loyal") == {pid for pid, row in buyers.items() if int(row["orders_count"]) >= 3}
    now = demo.clock.now()
    assert members(demo, "behaviour-recent-purchasers") == {
        pid for pid, row in buyers.items() if now - timedelta(days=30) <= row["last_order_at"] <= now}
    # the top 10 % by spend: at least ceil(10 % of the customers), more only on a tie at the cut
    vip = members(demo, "lifecycle-vip")
    spend = sorted((float(row["total_spent"].get("IDR", 0)) for row in buyers.values()), reverse=True)
    assert len(vip) >= math.ceil(len(buyers) / 10)
    assert min(float(buyers[p]["total_spent"].get("IDR", 0)) for p in vip) == spend[len(vip) - 1]
