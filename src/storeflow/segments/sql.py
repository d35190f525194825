"""Segment conditions compiled to SQL (SQLAlchemy Core, SQLite and PostgreSQL).

:func:`compile_condition` turns a condition (``storeflow.flows.conditions``) into a boolean
expression over ``tables.profiles`` that holds exactly for the profiles ``storeflow.flows.evaluate``
accepts; :func:`members_query` selects their ids (merged profiles are never members). Collections
are correlated subqueries: events by ``(profile_id, type, occurred_at)``, orders by ``profile_id`` on
``placed_at``, carts on ``last_activity_at``, messages (outbox rows of the profile) on
``created_at``. Values are read as the Python evaluator reads them (``sql_facets``, ``sql_values``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, false, not_, or_, select, true

from storeflow.clock import utc
from storeflow.flows.conditions import AllOf, AnyOf, Comparison, Condition, History, Not
from storeflow.flows.segment_stats import SegmentStats
from storeflow.segments.sql_collections import CollectionCompiler
from storeflow.segments.sql_facets import UnsupportedCondition, compare
from storeflow.segments.sql_records import ProfileBinding, Scope
from storeflow.segments.sql_values import Dialect
from storeflow.store.tables import profiles


class Compiler(CollectionCompiler):
    """Compiles conditions for one evaluation instant, store time zone and statistics."""

    def __init__(self, *, now: datetime, store_tz: ZoneInfo | str | None, stats: SegmentStats | None,
                 dialect_name: str) -> None:
        if dialect_name not in ("sqlite", "postgresql"):
            raise UnsupportedCondition(f"segments compile to SQLite and PostgreSQL, not {dialect_name}")
        tz = ZoneInfo(store_tz) if isinstance(store_tz, str) else store_tz
        super().__init__(Dialect(dialect_name), utc(now), tz or ZoneInfo("UTC"), stats)

    def condition(self, node: Condition, scope: Scope) -> ColumnElement[bool]:
        if isinstance(node, AllOf):
            return and_(true(), *(self.condition(c, scope) for c in node.conditions))
        if isinstance(node, AnyOf):
            return or_(false(), *(self.condition(c, scope) for c in node.conditions))
        if isinstance(node, Not):
            return not_(self.condition(node.condition, scope))
        if isinstance(node, Comparison):
            return self.comparison(node, scope)
        if isinstance(node, History):
            return self.history(node)
        return self.profile_node(node)

    def comparison(self, node: Comparison, scope: Scope) -> ColumnElement[bool]:
        binding = scope.get(node.path.root)
        if node.op == "anniversary_within":
            return self.anniversary(node, scope)
        facets = binding.facets(self.d, node.path.segments) if binding is not None else None
        if facets is None:
            from storeflow.segments.sql_facets import missing

            facets = missing()
        return compare(self.d, facets, node.op, node.value, self.now)


def compile_condition(condition: Condition, *, now: datetime, store_tz: ZoneInfo | str | None,
                      stats: SegmentStats | None, dialect_name: str) -> ColumnElement[bool]:
    """A boolean SQL expression over ``tables.profiles`` true exactly where ``evaluate`` holds for
    the profile at ``now``. Raises UnsupportedCondition for what SQL cannot express exactly."""
    compiler = Compiler(now=now, store_tz=store_tz, stats=stats, dialect_name=dialect_name)
    return compiler.condition(condition, {"profile": ProfileBinding(profiles)})


def members_query(condition: Condition, *, now: datetime, store_tz: ZoneInfo | str | None,
                  stats: SegmentStats | None, dialect_name: str,
                  profile_ids: Iterable[str] | None = None) -> Select[Any]:
    """``SELECT profiles.id`` of the unmerged profiles the condition holds for (among ``profile_ids``
    when given)."""
    where = compile_condition(condition, now=now, store_tz=store_tz, stats=stats, dialect_name=dialect_name)
    query = select(profiles.c.id).where(profiles.c.merged_into.is_(None), where)
    if profile_ids is not None:
        query = query.where(profiles.c.id.in_(list(profile_ids)))
    return query


__all__ = ["Compiler", "UnsupportedCondition", "compile_condition", "members_query"]
