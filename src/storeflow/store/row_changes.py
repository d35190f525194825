"""Pending changes to existing rows, replayed at flush on the rows as locked then: the one way both
ingest's batch view (``storeflow.store.sql.write_behind``) and the worker's batch
(``storeflow.engine.batch``) write the profiles, orders, carts and products they changed.

A batch never writes back a row it read earlier: it records, per (kind, id), what it did to it as
replayable patches (set columns, set keys of a JSON column, increment a key, add or remove tags,
recompute a profile's order summary). ``lock`` locks every affected row in the one canonical order
(profiles, then orders, carts, products; ids sorted within each kind), which is what keeps ingest
and the worker from deadlocking each other on PostgreSQL, and reads the columns the patches depend
on under that lock. ``write`` replays the patches on those values and writes them with
``update_rows`` (one executemany per set of columns). A change another transaction committed
before the lock is therefore kept, never overwritten with an older copy.

Only storage ports are used here, no SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from storeflow.errors import PermanentActionError

__all__ = ["KINDS", "Increment", "Locked", "OrderSummary", "Patch", "RowChanges", "SetColumns", "SetKeys", "Tags",
           "add_exactly", "tag_list"]

#: The kinds of rows a batch changes, in the order their rows are locked.
KINDS: tuple[str, ...] = ("profile", "order", "cart", "product")

#: The profile columns that summarise its orders (see ``OrderSummary``).
ORDER_SUMMARY: tuple[str, ...] = ("orders_count", "total_spent", "first_order_at", "last_order_at")

Key = tuple[str, str]  # (kind, id)


class RowPorts(Protocol):
    """The port operations a flush uses."""

    def rows_by_id(self, kind: str, ids: Iterable[str], *, lock: bool = False,
                   columns: Iterable[str] | None = None) -> dict[str, dict[str, Any]]: ...

    def update_rows(self, kind: str, rows: list[dict[str, Any]]) -> None: ...

    def order_aggregates_of(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...


class Patch(Protocol):
    """A change to one row, replayable on whatever the row holds when it is locked."""

    @property
    def reads(self) -> tuple[str, ...]:
        """The columns whose current value the change depends on."""

    @property
    def writes(self) -> tuple[str, ...]:
        """The columns it sets."""

    def apply(self, values: dict[str, Any]) -> None:
        """Change ``values`` (the row's ``reads`` as locked, and what earlier patches set)."""


def tag_list(tags: list[str] | None, add: Iterable[str], remove: Iterable[str]) -> list[str]:
    """The tags after removing ``remove`` and appending each of ``add`` once."""
    if remove:
        removed = set(remove)
        out = [t for t in (tags or ()) if t not in removed]
    else:
        out = list(tags or ())
    for tag in add:
        if tag not in out:
            out.append(tag)
    return out


def add_exactly(current: Any, inc: Any, name: str) -> int | float:
    """Exact addition of JSON numbers; stored as an int when whole."""
    try:
        total = Decimal(str(current if current not in (None, "") else 0)) + Decimal(str(inc))
    except InvalidOperation as exc:
        raise PermanentActionError(f"property {name!r} holds {current!r}, which is not a number") from exc
    return int(total) if total == total.to_integral_value() else float(total)


@dataclass(frozen=True, slots=True)
class SetColumns:
    """Set these columns to these values (whatever they hold)."""

    values: dict[str, Any]

    @property
    def reads(self) -> tuple[str, ...]:
        return ()

    @property
    def writes(self) -> tuple[str, ...]:
        return tuple(self.values)

    def apply(self, values: dict[str, Any]) -> None:
        values.update(self.values)


class _OneColumn:
    """A patch that reads and writes its own ``column`` only."""

    __slots__ = ()
    column: str

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.column,)

    @property
    def writes(self) -> tuple[str, ...]:
        return (self.column,)


@dataclass(frozen=True, slots=True)
class SetKeys(_OneColumn):
    """Set these keys of a JSON object column, keeping its other keys as they are."""

    keys: dict[str, Any]
    column: str = "properties"

    def apply(self, values: dict[str, Any]) -> None:
        values[self.column] = {**(values.get(self.column) or {}), **self.keys}


@dataclass(frozen=True, slots=True)
class Increment(_OneColumn):
    """Add ``by`` to one key of a JSON object column (exactly; missing counts as 0)."""

    key: str
    by: Any
    column: str = "properties"

    def apply(self, values: dict[str, Any]) -> None:
        current = dict(values.get(self.column) or {})
        current[self.key] = add_exactly(current.get(self.key), self.by, self.key)
        values[self.column] = current


@dataclass(frozen=True, slots=True)
class Tags(_OneColumn):
    """Remove ``remove`` from the row's tags, then append each of ``add`` once."""

    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    column: str = "tags"

    def apply(self, values: dict[str, Any]) -> None:
        values[self.column] = tag_list(values.get(self.column), self.add, self.remove)


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """A profile's order summary, recomputed at write time from the orders table (after the batch's
    orders are written, under the profile's lock): two batches storing two new orders of one
    profile at once both count."""

    @property
    def reads(self) -> tuple[str, ...]:
        return ()

    @property
    def writes(self) -> tuple[str, ...]:
        return ORDER_SUMMARY

    def apply(self, values: dict[str, Any]) -> None:
        pass  # ``RowChanges.write`` fills these columns from ``order_aggregates_of``


@dataclass
class Locked:
    """What ``RowChanges.lock`` read: kind -> id -> the columns the patches read; ``missing``: the
    (kind, id) of rows that no longer exist (known only for kinds it had to read)."""

    rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    missing: list[Key] = field(default_factory=list)


class RowChanges:
    """The pending changes of a batch to existing rows, per (kind, id), in the order made."""

    def __init__(self) -> None:
        self._patches: dict[Key, list[Patch]] = {}

    def __bool__(self) -> bool:
        return bool(self._patches)

    def add(self, kind: str, row_id: str, *patches: Patch) -> None:
        """Record changes to a row (none: the row is only locked at flush, as for a write made
        elsewhere in the same flush)."""
        if kind not in KINDS:
            raise ValueError(f"row changes: unknown kind {kind!r}; one of {', '.join(KINDS)}")
        self._patches.setdefault((kind, row_id), []).extend(patches)

    def count(self, kind: str, row_id: str) -> int:
        """How many patches the row has (a mark for ``truncate``)."""
        return len(self._patches.get((kind, row_id), ()))

    def truncate(self, kind: str, row_id: str, count: int) -> None:
        """Drop the row's patches after the first ``count`` (undo a failed run's changes)."""
        key = (kind, row_id)
        if key in self._patches:
            del self._patches[key][count:]
            if not self._patches[key]:
                del self._patches[key]

    def discard(self, kind: str, row_id: str, *types: type) -> None:
        """Drop the row's pending patches of these types."""
        patches = self._patches.get((kind, row_id))
        if patches is not None:
            patches[:] = [p for p in patches if not isinstance(p, types)]

    def ids(self, kind: str) -> list[str]:
        """The ids of the rows of ``kind`` with changes, sorted."""
        return sorted(i for k, i in self._patches if k == kind)

    def clear(self) -> None:
        self._patches = {}

    def lock(self, tx: RowPorts, *, verify: bool = False) -> Locked:
        """Lock every changed row, kind by kind in ``KINDS`` order and by id, reading the columns
        the patches depend on. A kind whose patches read nothing is only locked (no statement
        where the backend's writer already holds the database), unless ``verify`` asks to learn
        which rows are gone."""
        locked = Locked()
        for kind in KINDS:
            ids = self.ids(kind)
            if not ids:
                continue
            reads = sorted({c for i in ids for p in self._patches[(kind, i)] for c in p.reads})
            if not reads and verify:
                reads = ["id"]
            found = tx.rows_by_id(kind, ids, lock=True, columns=reads)
            locked.rows[kind] = found
            if reads:
                locked.missing += [(kind, i) for i in ids if i not in found]
        return locked

    def write(self, tx: RowPorts, locked: Locked, *, stamp: datetime | None = None) -> None:
        """Replay the patches on the locked values and write them (profiles last, so that their
        order summaries count the orders written just before). ``stamp``: set ``updated_at`` of
        every changed row to it. Rows that no longer exist are skipped."""
        for kind in (*KINDS[1:], KINDS[0]):
            ids = self.ids(kind)
            if not ids:
                continue
            current = locked.rows.get(kind, {})
            read = any(p.reads for i in ids for p in self._patches[(kind, i)])
            summaries = tx.order_aggregates_of(
                [i for i in ids if any(isinstance(p, OrderSummary) for p in self._patches[(kind, i)])]
            ) if kind == "profile" else {}
            updates = []
            for i in ids:
                patches = self._patches[(kind, i)]
                if not patches or (read and i not in current):
                    continue
                values = dict(current.get(i) or {})
                written: set[str] = set()
                for patch in patches:
                    patch.apply(values)
                    written.update(patch.writes)
                    if isinstance(patch, OrderSummary) and i in summaries:
                        values.update(summaries[i])
                if stamp is not None:
                    values["updated_at"] = stamp
                    written.add("updated_at")
                updates.append({"id": i, **{c: values[c] for c in sorted(written) if c in values}})
            tx.update_rows(kind, updates)
        self.clear()

    def flush(self, tx: RowPorts, *, stamp: datetime | None = None, verify: bool = False) -> Locked:
        """``lock`` then ``write``; returns what ``lock`` found (its ``missing`` rows were skipped)."""
        locked = self.lock(tx, verify=verify)
        self.write(tx, locked, stamp=stamp)
        return locked
