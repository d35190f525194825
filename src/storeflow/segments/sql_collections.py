"""Collections (events, orders, carts, messages) and the profile conditions of segments, in SQL.

A ``History`` node is a correlated subquery over the profile's items in its window (an item after
``now`` never counts); its aggregate compares what the subquery counts, sums or finds. The profile
nodes (in_segment, identity, purchase_overdue, rfm, top) read the profile row, its identities and
``segment_members``. The rules are the Python evaluator's (docs/segments.md).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Numeric,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql import FromClause

from storeflow.flows.conditions import (
    Comparison,
    Condition,
    CountAggregate,
    ExistsAggregate,
    FirstSeenAggregate,
    HasIdentity,
    History,
    HistoryWindow,
    InSegment,
    LastSeenAggregate,
    PurchaseOverdue,
    Rfm,
    SumAggregate,
    TopPercent,
    ValueAggregate,
)
from storeflow.flows.segment_stats import SegmentStats, top_cut
from storeflow.segments.sql_facets import Facets, UnsupportedCondition, integer_cmp, missing
from storeflow.segments.sql_records import (
    RowBinding,
    Scope,
    cart_binding,
    event_binding,
    message_binding,
    order_binding,
)
from storeflow.segments.sql_values import Bool, Dialect, Expr, cat, truth, when
from storeflow.store.tables import carts, events, identities, orders, outbox, profiles, segment_members

_NUMERIC_OPS = {"eq": "__eq__", "ne": "__ne__", "gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}


def numeric_op(left: Any, op: str, right: Any) -> Bool:
    """``left op right`` for eq, ne, gt, gte, lt, lte."""
    result: Bool = getattr(left, _NUMERIC_OPS[op])(right)
    return result


class CollectionCompiler:
    """The collection and profile nodes; :class:`storeflow.segments.sql.Compiler` adds the rest."""

    def __init__(self, d: Dialect, now: datetime, store_tz: ZoneInfo, stats: SegmentStats | None) -> None:
        self.d = d
        self.now = now
        self.store_tz = store_tz
        self.stats = stats

    def condition(self, node: Condition, scope: Scope) -> ColumnElement[bool]:  # pragma: no cover
        """Any node in ``scope`` (a collection's ``where``): defined by ``storeflow.segments.sql.Compiler``,
        the only subclass, which is the only class instantiated."""
        raise TypeError("CollectionCompiler is a base: compile with storeflow.segments.sql.Compiler")

    # -- collections ----------------------------------------------------------------------------
    def _source(self, node: History) -> tuple[FromClause, RowBinding, str, Any, list[Bool]]:
        """(item table, its binding, its root, its time column, the filters tying it to the profile)."""
        if node.source == "events":
            e = events.alias("ev")
            filters: list[Bool] = [e.c.profile_id == profiles.c.id]
            if node.event is not None:
                filters.append(e.c.type == node.event)
            return e, event_binding(e), "event", e.c.occurred_at, filters
        if node.source == "orders":
            o = orders.alias("ord")
            return o, order_binding(o), "order", o.c.placed_at, [o.c.profile_id == profiles.c.id]
        if node.source == "carts":
            c = carts.alias("crt")
            return c, cart_binding(c), "cart", c.c.last_activity_at, [c.c.profile_id == profiles.c.id]
        m = outbox.alias("msg")
        filters = [m.c.profile_id == profiles.c.id]
        if node.channel is not None:
            filters.append(m.c.channel == node.channel)
        return m, message_binding(m), "message", m.c.created_at, filters

    def _window(self, window: HistoryWindow, at: Any) -> list[Bool]:
        now = self.now
        found: list[Bool] = [at <= now]
        if window.within is not None:
            found.append(at >= now - window.within)
        elif window.since == "first_order":
            found.append(at >= profiles.c.first_order_at)  # none: nothing counts
        elif isinstance(window.since, datetime):
            found.append(at >= window.since.astimezone(UTC))
        elif window.since is not None:
            raise UnsupportedCondition(f"since: {window.since} means nothing for a segment")
        elif isinstance(window.before, timedelta):
            found.append(at < now - window.before)
        elif isinstance(window.before, datetime):
            found.append(at < window.before.astimezone(UTC))
        elif window.between is not None:
            found.append(at >= window.between[0].astimezone(UTC))
            found.append(at <= window.between[1].astimezone(UTC))
        return found

    def history(self, node: History) -> ColumnElement[bool]:
        table, binding, root, at, filters = self._source(node)
        filters = filters + self._window(node.window, at)
        if node.where is not None:
            filters.append(self.condition(node.where, {root: binding}))
        items = select(literal(1)).select_from(table).where(*filters)
        agg = node.aggregate
        if isinstance(agg, ExistsAggregate):
            found = items.exists()
            return found if agg.value else not_(found)
        if isinstance(agg, CountAggregate):
            count = select(func.count()).select_from(table).where(*filters).scalar_subquery()
            return numeric_op(count, agg.op, agg.value)
        if isinstance(agg, LastSeenAggregate | FirstSeenAggregate):
            pick = func.max(at) if isinstance(agg, LastSeenAggregate) else func.min(at)
            seen = select(pick).select_from(table).where(*filters).scalar_subquery()
            return self._seen(agg, seen)
        of = binding.facets(self.d, agg.of.segments) or missing()
        if of.number_value is None:
            value_sql: Expr = literal(None, BigInteger)
        else:
            value_sql = of.number_value()
        if isinstance(agg, SumAggregate):
            total = select(func.coalesce(func.sum(value_sql), 0)).select_from(table).where(*filters).scalar_subquery()
            return self._number_compare(total, agg.op, agg.value)
        return self._value_aggregate(agg, table, filters, value_sql)

    def _seen(self, agg: LastSeenAggregate | FirstSeenAggregate, seen: Expr) -> Bool:
        never = seen.is_(None)
        if agg.op in ("within", "older_than"):
            assert agg.period is not None
            cutoff = self.now - agg.period
            if agg.op == "within":
                return truth(seen >= cutoff)
            return or_(never, truth(seen < cutoff))
        assert agg.at is not None
        at = agg.at.astimezone(UTC)
        if agg.op == "before":
            return or_(never, truth(seen < at))
        return truth(seen > at)

    def _number_compare(self, value: Expr, op: str, operand: Decimal) -> Bool:
        """An aggregated number (numeric on PostgreSQL, scaled integer on SQLite) ``op`` ``operand``."""
        if self.d.pg:
            return truth(numeric_op(value, op, literal(operand, Numeric)))
        cmp = integer_cmp(value, self.d.scaled_operand(operand))
        return truth(_cmp_op(cmp, op))

    def _value_aggregate(self, agg: ValueAggregate, table: FromClause, filters: list[Bool], value_sql: Expr) -> Bool:
        """min / max / avg of the items' values; none with a value: missing (only ne holds)."""
        counted = select(func.count(value_sql)).select_from(table).where(*filters).scalar_subquery()
        if agg.kind == "avg":
            total = select(func.sum(value_sql)).select_from(table).where(*filters).scalar_subquery()
            if self.d.pg:
                holds = numeric_op(total, agg.op, literal(agg.value, Numeric) * counted)
            else:
                holds = _cmp_op(_scaled_product_cmp(total, counted, self.d.scaled_operand(agg.value)), agg.op)
        else:
            pick = func.min(value_sql) if agg.kind == "min" else func.max(value_sql)
            found = select(pick).select_from(table).where(*filters).scalar_subquery()
            holds = self._number_compare(found, "ne" if agg.op == "ne" else agg.op, agg.value)
            if agg.op == "ne":
                return or_(counted == 0, holds)
            return and_(counted > 0, holds)
        if agg.op == "ne":
            return or_(counted == 0, truth(holds))
        return and_(counted > 0, truth(holds))

    # -- profile nodes --------------------------------------------------------------------------
    def profile_node(self, node: Condition) -> ColumnElement[bool]:
        if isinstance(node, InSegment):
            return (select(literal(1)).where(segment_members.c.profile_id == profiles.c.id,
                                             segment_members.c.segment_id == node.segment).exists())
        if isinstance(node, HasIdentity):
            return (select(literal(1)).where(identities.c.profile_id == profiles.c.id,
                                             identities.c.kind == node.identity).exists())
        if isinstance(node, PurchaseOverdue):
            return self._overdue(node)
        if isinstance(node, Rfm):
            return self._rfm(node)
        if isinstance(node, TopPercent):
            return self._top(node)
        raise UnsupportedCondition(f"{type(node).__name__} is not supported in SQL")

    def _overdue(self, node: PurchaseOverdue) -> Bool:
        """now - last > factor * (last - first) / (count - 1), or > default with one order."""
        p = profiles.c
        has = and_(p.orders_count >= 1, p.last_order_at.is_not(None))
        one = and_(has, p.orders_count == 1, p.last_order_at < self.now - node.default)
        # now - last > factor * (last - first) / (n - 1)  <=>  (now - last) * (n - 1) > factor * (last - first),
        # in whole microseconds (the factor is exact: scaled to an integer with its denominator).
        now_micros = _python_micros(self.now)
        since_last = literal(now_micros, BigInteger) - self._epoch_micros(p.last_order_at)
        span = self._epoch_micros(p.last_order_at) - self._epoch_micros(p.first_order_at)
        num, den = node.factor.as_integer_ratio()
        many = and_(has, p.orders_count > 1, p.first_order_at.is_not(None),
                    since_last * (p.orders_count - 1) * den > span * num)
        return or_(truth(one), truth(many))

    def _epoch_micros(self, column: Any) -> Expr:
        """Whole microseconds since the Unix epoch of a date-time column, exactly."""
        if self.d.pg:
            return cast(func.extract("epoch", column) * 1_000_000, BigInteger)
        text = cast(column, Text)
        return (cast(func.strftime("%s", text), BigInteger) * 1_000_000
                + cast(func.substr(cat(func.substr(text, 21, 6), "000000"), 1, 6), BigInteger))

    def _rfm(self, node: Rfm) -> Bool:
        stats = self.stats
        if stats is None:
            return false()
        p = profiles.c
        has = and_(p.orders_count >= 1, p.last_order_at.is_not(None))
        parts: list[Bool] = [has]
        for dimension, score in node.scores:
            value: Expr
            if dimension == "recency":
                cuts = [self.now - cut for cut in stats.recency]
                value = case(*((p.last_order_at >= cut, s) for cut, s in zip(cuts, (5, 4, 3, 2), strict=True)), else_=1)
            elif dimension == "frequency":
                value = 1 + sum((case((p.orders_count > cut, 1), else_=0) for cut in stats.frequency), literal(0))
            else:
                spent = self._spent(stats.currency)
                value = 1 + sum((case((_cmp_op(spent(cut), "gt"), 1), else_=0) for cut in stats.monetary), literal(0))
            parts.append(numeric_op(value, score.op, score.value))
        return truth(and_(*parts))

    def _spent(self, currency: str) -> Any:
        """cut -> -1/0/1 comparing the profile's total spent in ``currency`` (0 when absent) with cut."""
        from storeflow.segments.sql_records import profile_binding

        facets: Facets | None = profile_binding(profiles).facets(self.d, ("total_spent", currency))
        assert facets is not None
        number_cmp, number_is, source = facets.number_cmp, facets.number_is, facets.source
        assert number_cmp is not None
        assert number_is is not None

        def cmp(cut: Decimal) -> Expr:
            zero = 1 if cut < 0 else (-1 if cut > 0 else 0)
            value = case((number_is, number_cmp(cut)), else_=zero)
            if source is None:
                return value
            return select(value).select_from(source).scalar_subquery()

        return cmp

    def _top(self, node: TopPercent) -> Bool:
        if self.stats is None:
            return false()
        cut = top_cut(self.stats, node.metric, node.percent)
        if cut is None:
            return false()
        p = profiles.c
        has = p.orders_count >= 1
        if node.metric == "frequency":
            return truth(and_(has, p.orders_count >= cut))
        return truth(and_(has, _cmp_op(self._spent(self.stats.currency)(Decimal(cut)), "gte")))

    # -- anniversaries --------------------------------------------------------------------------
    def anniversary(self, node: Comparison, scope: Scope) -> Bool:
        binding = scope.get(node.path.root)
        facets = binding.facets(self.d, node.path.segments) if binding is not None else None
        if facets is None:
            return false()
        days = anniversary_days(self.now, self.store_tz, node.value)
        if not days:
            return false()
        parts: list[Bool] = []
        if facets.instant_is is not None and facets.instant is not None:
            parts.append(and_(facets.instant_is, self._month_day(facets.instant, canonical=False).in_(days)))
        if facets.text_is is not None and facets.text is not None:
            d = self.d

            def build(valid: Bool, instant: Expr) -> Expr:
                return when(valid, self._month_day(instant, canonical=True).in_(days), false())

            parts.append(when(facets.text_is, d.date_text(facets.text, build), false()))
        from storeflow.segments.sql_facets import scoped

        return truth(scoped(facets, or_(false(), *parts)))

    def _month_day(self, instant: Expr, *, canonical: bool) -> Expr:
        """'MM-DD' of an instant's UTC date."""
        if self.d.pg:
            return func.to_char(func.timezone("UTC", instant), "MM-DD")
        return func.substr(cast(instant, Text), 6, 5)


def anniversary_days(now: datetime, store_tz: ZoneInfo, period: Any) -> list[str]:
    """The 'MM-DD' of the dates whose anniversary falls in the ``period.days`` days from today
    (the store's date of ``now``), with 29 February counted on 28 February in common years."""
    if not isinstance(period, timedelta) or period.days < 1:
        return []
    today = now.astimezone(store_tz).date()
    found: set[str] = set()
    for offset in range(min(period.days, 367)):
        day = today + timedelta(days=offset)
        found.add(f"{day.month:02d}-{day.day:02d}")
        if day.month == 2 and day.day == 28 and not _leap(day.year):
            found.add("02-29")
    return sorted(found)


def _python_micros(when: datetime) -> int:
    delta = when.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _leap(year: int) -> bool:
    try:
        date(year, 2, 29)
    except ValueError:
        return False
    return True


def _cmp_op(cmp: Expr, op: str) -> Bool:
    return {"eq": cmp == 0, "ne": cmp != 0, "gt": cmp > 0, "gte": cmp >= 0, "lt": cmp < 0, "lte": cmp <= 0}[op]


def _scaled_product_cmp(total: Expr, count: Expr, operand: Decimal) -> Expr:
    """-1/0/1 comparing ``total`` with ``operand * count`` exactly (integers; operand rational)."""
    num, den = operand.as_integer_ratio()
    left = total * den
    right = count * num
    return case((left > right, 1), (left < right, -1), else_=0)


_ = (true, Text)
