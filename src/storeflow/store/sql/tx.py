"""SqlTx: one database transaction with every domain operation of the storage ports.

It satisfies ``storeflow.store.ports.StoreTx`` structurally: ``SqlStore`` hands it out as one, so
mypy checks every port operation against the mixins here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.engine import Connection

from storeflow.store.sql.bulk_ops import BulkOps
from storeflow.store.sql.campaigns_ops import CampaignsOps
from storeflow.store.sql.commerce_ops import CommerceOps
from storeflow.store.sql.dates_ops import DatesOps
from storeflow.store.sql.events_ops import EventsOps
from storeflow.store.sql.flows_ops import FlowsOps
from storeflow.store.sql.keys_ops import KeysOps
from storeflow.store.sql.membership_ops import MembershipOps
from storeflow.store.sql.messages_ops import MessagesOps
from storeflow.store.sql.outbox_ops import OutboxOps
from storeflow.store.sql.profile_data_ops import ProfileDataOps
from storeflow.store.sql.profiles_ops import ProfilesOps
from storeflow.store.sql.runs_ops import RunsOps
from storeflow.store.sql.segment_flows_ops import SegmentFlowsOps
from storeflow.store.sql.segment_stats_ops import SegmentStatsOps
from storeflow.store.sql.segments_ops import SegmentsOps

if TYPE_CHECKING:
    from storeflow.store.ports import StoreTx, WriteBehind


class SqlTx(ProfilesOps, EventsOps, CommerceOps, FlowsOps, RunsOps, OutboxOps, MessagesOps, KeysOps, BulkOps,
            DatesOps, SegmentFlowsOps, SegmentStatsOps, ProfileDataOps, MembershipOps, SegmentsOps, CampaignsOps):
    """Named domain operations inside one transaction. Shared by SQLite and PostgreSQL."""

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit of work (SAVEPOINT): an exception inside rolls back only its writes."""
        with self.conn.begin_nested():
            yield

    def ping(self) -> None:
        """``SELECT 1``: raises if the database does not answer."""
        self.conn.execute(text("SELECT 1"))

    def write_behind(self) -> WriteBehind:
        """This transaction seen through a batch cache that writes at ``flush`` (see write_behind)."""
        from storeflow.store.sql.write_behind import WriteBehindTx

        return WriteBehindTx(self)


def sql_connection(tx: StoreTx) -> Connection:
    """The SQLAlchemy connection under a transaction, for tools that read tables directly (the demo
    simulation's report). Engine, service, API and CLI code use the named port operations instead."""
    if not isinstance(tx, SqlTx):
        raise TypeError(f"not a SQL transaction: {type(tx).__name__}")
    return tx.conn
