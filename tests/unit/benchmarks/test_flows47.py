"""The 47 flows of the month benchmark: all valid, live, distinct, and applied as a set."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _benchmarks_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # benchmarks/ lives at the repo root, beside src/


def test_47_valid_live_flows_with_distinct_ids() -> None:
    from benchmarks.flows47 import FLOWS_47, SAMPLES

    from storeflow.flows import load_flow

    flows = [load_flow(text, source=f"flows47[{n}].yaml") for n, text in enumerate(FLOWS_47)]
    assert len(flows) == 47
    assert len({f.id for f in flows}) == 47
    assert all(f.status == "live" for f in flows)
    assert set(SAMPLES) <= {f.id for f in flows}


def test_no_network_action_but_email() -> None:
    from benchmarks.flows47 import FLOWS_47

    for text in FLOWS_47:
        assert "action: webhook" not in text and "action: sms" not in text and "via: slack" not in text


def test_apply_all(tmp_path: Path) -> None:
    from benchmarks.flows47 import apply_all

    from storeflow.app import Storeflow
    from storeflow.clock import VirtualClock
    from storeflow.settings import Settings

    sf = Storeflow(Settings(database_url=f"sqlite:///{tmp_path / 'f.db'}"),
                   clock=VirtualClock(datetime(2026, 3, 2, tzinfo=UTC)))
    try:
        assert apply_all(sf) == 47
        listed = sf.flows.list()
        assert len(listed) == 47 and {f["status"] for f in listed} == {"live"}
    finally:
        sf.close()
    assert "benchmarks" in sys.modules


def test_timers_count_exclusive_time() -> None:
    import time

    from benchmarks.month_sim import Timers

    class Thing:
        def outer(self) -> None:
            time.sleep(0.02)
            self.inner()

        def inner(self) -> None:
            time.sleep(0.03)

    thing, timers = Thing(), Timers()
    timers.wrap(thing, "inner", "inner")
    timers.wrap(thing, "outer", "outer")
    thing.outer()
    assert timers.calls == {"inner": 1, "outer": 1}
    assert 0.03 <= timers.seconds["inner"] < 0.1 and 0.02 <= timers.seconds["outer"] < 0.03 + 0.05
