"""The traffic simulator: deterministic for a seed, and flows act on what it sends."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from storeflow.app import Storeflow
from storeflow.clock import VirtualClock
from storeflow.settings import Settings
from storeflow.simulate.catalog import build_catalog
from storeflow.simulate.mailbox import Mailbox
from storeflow.simulate.people import build_people
from storeflow.simulate.traffic import Simulation
from storeflow.simulate.traffic_model import TrafficModel, message_links

START = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
def simulate(tmp_path: Path) -> Iterator[Any]:
    opened: list[tuple[Storeflow, Mailbox]] = []

    def run(name: str, seed: int = 7) -> tuple[dict[str, Any], Storeflow]:
        clock = VirtualClock(START)
        box = Mailbox(tmp_path / name / "mail", now=clock.now).start()
        settings = Settings(database_url=f"sqlite:///{tmp_path / name}.db", timezone="America/Sao_Paulo",
                            currency="BRL", smtp_host="127.0.0.1", smtp_port=box.port,
                            team_emails=["team@demo.store"], email_from="Casa Aurora <oi@demo.store>")
        sf = Storeflow(settings, clock=clock)
        opened.append((sf, box))
        folder = resources.files("storeflow") / "templates"
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if item.name.endswith(".yaml"):
                sf.flows.apply(sf.flows.validate(item.read_text(), item.name), status="live")
        model = TrafficModel(visits_per_day=0.06)
        catalog = build_catalog(seed, "BRL", 15, expected_units=model.expected_units(150, 3))
        people = build_people(seed, "BRL", 150)
        stats = Simulation(sf, catalog, people, start=START, days=3, seed=seed, model=model).run()
        out = asdict(stats)
        for timing in ("setup_s", "run_s"):
            out.pop(timing)
        return out, sf

    yield run
    for sf, box in opened:
        sf.close()
        box.stop()


@pytest.mark.slow
def test_same_seed_same_traffic(simulate: Any) -> None:
    first, sf = simulate("a")
    second, _ = simulate("b")
    assert first == second
    assert first["rejected"] == 0 and first["errors"] == []
    assert first["visits"] > 0 and first["checkouts"] > 0 and first["orders"] > 0
    with sf.store.transaction() as tx:
        counts = {f["id"]: tx.run_counts(f["id"]) for f in tx.list_flows()}
        order = tx.get_order("order-000001")
    assert sum(counts["abandoned-cart"].values()) > 0
    assert sum(counts["vip"].values()) == first["orders"]
    assert order is not None and order["currency"] == "BRL" and order["total_minor"] > 0


def test_message_links_finds_the_tracking_tokens() -> None:
    payload = {
        "html": '<a href="http://127.0.0.1:8787/t/c/abc.DEF-1_2">x</a><img src="http://127.0.0.1:8787/t/o/op.en">'
                '<a href="http://127.0.0.1:8787/t/c/abc.DEF-1_2">again</a>',
        "headers": {"List-Unsubscribe": "<http://127.0.0.1:8787/u/un.sub>"},
    }
    assert message_links(payload) == {"open": ["op.en"], "click": ["abc.DEF-1_2"], "unsubscribe": ["un.sub"]}
    assert message_links({"text": "plain"}) == {"open": [], "click": [], "unsubscribe": []}
