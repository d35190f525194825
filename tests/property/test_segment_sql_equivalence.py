"""The SQL compiler of segment conditions selects exactly the profiles the Python evaluator accepts,
on SQLite and on PostgreSQL (hypothesis: random conditions over random store populations).

One store per backend is reused across examples (tables cleared between populations); each
population is checked against several conditions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select
from tests.property.sql_population import NOW, conditions, full_populations, segment_stats
from tests.unit.flows.segment_strategies import conditions as ast_conditions

from storeflow.engine.records import StoreProfileData, profile_record
from storeflow.errors import FlowValidationError
from storeflow.flows import EvalContext, evaluate, parse_condition
from storeflow.flows.conditions import Condition, condition_to_document
from storeflow.flows.segment_stats import SegmentStats
from storeflow.segments.sql import members_query
from storeflow.store import Store, open_store
from storeflow.store.tables import carts, events, identities, orders, outbox, products, profiles, segment_members

CASES = int(os.environ.get("SEGMENT_SQL_CASES", "500"))
"""Generated cases (a condition checked on a population) per backend, at least."""
CONDITIONS_PER_POPULATION = 4
EXAMPLES = CASES // 4 + 5
"""Populations: each is checked against at least 4 generated conditions (3 built as AST nodes, one
or more as documents, of which some may be refused by the parser), so EXAMPLES populations give at
least CASES cases; the test counts them and fails below CASES."""
STORE_TZ = "Asia/Jakarta"
TABLES = (profiles, events, orders, carts, outbox, products, identities, segment_members)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


def write(store: Store, population: dict[str, list[dict[str, Any]]]) -> None:
    with store.transaction() as tx:
        conn = tx.conn  # type: ignore[attr-defined]
        for table in TABLES:
            conn.execute(delete(table))
        for table in TABLES:
            rows = population.get(table.name, [])
            if rows:
                conn.execute(insert(table), rows)


def python_members(store: Store, condition: Condition, stats: SegmentStats | None) -> set[str]:
    found = set()
    with store.read() as tx:
        conn = tx.conn  # type: ignore[attr-defined]
        rows = conn.execute(select(profiles).where(profiles.c.merged_into.is_(None))).mappings().all()
        data = StoreProfileData(tx)
        for row in rows:
            ctx = EvalContext(record={"profile": profile_record(dict(row))}, now=NOW, data=data,
                              profile_id=row["id"], stats=stats, store_tz=STORE_TZ)
            if evaluate(condition, ctx):
                found.add(row["id"])
    return found


def sql_members(store: Store, condition: Condition, stats: SegmentStats | None) -> set[str]:
    with store.read() as tx:
        conn = tx.conn  # type: ignore[attr-defined]
        query = members_query(condition, now=NOW, store_tz=STORE_TZ, stats=stats, dialect_name=conn.dialect.name)
        return {str(r[0]) for r in conn.execute(query)}


@pytest.mark.timeout(1200)
def test_sql_and_python_select_the_same_members(store: Store) -> None:
    checked: list[int] = []
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(population=full_populations(), stats=segment_stats(),
           documents=st.lists(conditions(), min_size=1, max_size=CONDITIONS_PER_POPULATION),
           nodes=st.lists(ast_conditions, min_size=3, max_size=CONDITIONS_PER_POPULATION))
    def check(population: dict[str, list[dict[str, Any]]], stats: SegmentStats | None,
              documents: list[dict[str, Any]], nodes: list[Condition]) -> None:
        write(store, population)
        parsed: list[Condition] = list(nodes)
        for document in documents:
            try:
                parsed.append(parse_condition(document))
            except FlowValidationError:
                continue  # an operand that does not fit the field: refused before any evaluation
        for condition in parsed:
            expected = python_members(store, condition, stats)
            found = sql_members(store, condition, stats)
            if found != expected and os.environ.get("SEGMENT_SQL_DUMP"):
                Path(os.environ["SEGMENT_SQL_DUMP"]).write_text(repr((condition, stats, population)))
            assert found == expected, condition_to_document(condition)
            checked.append(1)

    check()
    assert len(checked) >= CASES, f"only {len(checked)} generated cases were checked"
