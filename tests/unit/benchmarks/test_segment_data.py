"""The segment benchmarks' store generator: the shapes it promises (exact sizes, skewed activity, a
type mix, order columns consistent with the orders), on a tiny SQLite population."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _benchmarks_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # benchmarks/ lives at the repo root, beside src/


def test_profile_params_sum_to_the_sizes_with_a_skewed_activity() -> None:
    from benchmarks.segment_data import Population, profile_params

    params = profile_params(Population(profiles=3_000, events=60_000))
    assert len(params) == 3_000 and sum(p.n_events for p in params) == 60_000
    counts = sorted((p.n_events for p in params), reverse=True)
    assert sum(counts[:300]) > 0.35 * 60_000  # the busiest tenth of the shoppers: well over a tenth of events
    assert counts[-1] == 0  # some never browsed
    merged = [p for p in params if p.merged_into is not None]
    assert merged and all(p.n_events == 0 and p.n_orders == 0 for p in merged)
    assert all(p.created_s < p.last_s for p in params)
    assert params == profile_params(Population(profiles=3_000, events=60_000))  # deterministic


def test_the_sql_writes_what_the_python_mirror_says(tmp_path: Path) -> None:
    from benchmarks.common import open_storeflow
    from benchmarks.segment_data import EVENT_MIX, NOW, Population, event_id, event_type, load, profile_id

    from storeflow.clock import VirtualClock

    url = f"sqlite:///{tmp_path / 'pop.db'}"
    open_storeflow(url, VirtualClock(NOW)).close()
    info = load(url, Population(profiles=300, events=5_000))
    assert info["profiles"] == 300 and info["events"] == 5_000
    db = sqlite3.connect(tmp_path / "pop.db")
    rows = db.execute("SELECT id, type, properties, occurred_at FROM events ORDER BY id").fetchall()
    assert [r[0] for r in rows[:3]] == [event_id(1), event_id(2), event_id(3)]
    assert all(r[1] == event_type(n) for n, r in enumerate(rows, start=1))
    mix = Counter(r[1] for r in rows)
    for name, per_mille in EVENT_MIX:  # a Weyl sequence: the mix to within a few events
        assert abs(mix[name] - per_mille * 5) <= 5, (name, mix)
    assert all(json.loads(r[2]).get("product_id", "p").startswith("p") for r in rows)
    assert max(r[3] for r in rows) < NOW.strftime("%Y-%m-%d %H:%M:%S")
    # the profiles' order columns are their live orders', as ingest keeps them
    for pid, count, spent, last_at in db.execute(
            "SELECT id, orders_count, total_spent, last_order_at FROM profiles WHERE orders_count > 0"):
        live = db.execute("SELECT count(*), sum(total_minor), max(placed_at), min(currency) FROM orders "
                          "WHERE profile_id = ? AND status <> 'cancelled'", (pid,)).fetchone()
        assert (count, last_at) == (live[0], live[2])
        assert json.loads(spent) == {live[3]: f"{live[1] // 100}.{live[1] % 100:02d}"}
    assert db.execute("SELECT count(*) FROM profiles WHERE id = ?", (profile_id(300),)).fetchone() == (1,)
    # the secondary indexes the schema declares are there again after the load
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_events_profile_id_type_occurred_at", "ix_events_type_occurred_at", "ix_orders_profile_id"} <= names


def test_the_cache_key_follows_the_schema_and_the_sizes() -> None:
    from benchmarks.segment_data import Population

    pop = Population(profiles=10, events=20)
    assert pop.key("0006") == Population(profiles=10, events=20).key("0006")
    assert pop.key("0006") != pop.key("0007")
    assert pop.key("0006") != Population(profiles=10, events=21).key("0006")


def test_fifty_valid_segments_with_the_probe_last() -> None:
    from benchmarks.segments50 import PROBE_SEGMENT, SEGMENTS_50

    from storeflow.segments import load_segment

    loaded = [load_segment(doc, source=f"segments50/{doc['id']}") for doc in SEGMENTS_50]
    assert len(loaded) == 50 and len({s.id for s in loaded}) == 50
    assert loaded[-1].id == PROBE_SEGMENT
    ids = [s.id for s in loaded]
    for doc in SEGMENTS_50:  # a segment refers only to segments listed before it
        for ref in _in_segment_refs(doc["condition"]):
            assert ids.index(ref) < ids.index(doc["id"])


def _in_segment_refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["in_segment"]] if "in_segment" in node else []
        return found + [r for value in node.values() for r in _in_segment_refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _in_segment_refs(value)]
    return []
