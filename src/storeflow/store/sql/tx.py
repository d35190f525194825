"""SqlTx: one database transaction with every domain operation of the storage port."""

from __future__ import annotations

from typing import TYPE_CHECKING

from storeflow.store.sql.bulk_ops import BulkOps
from storeflow.store.sql.commerce_ops import CommerceOps
from storeflow.store.sql.dates_ops import DatesOps
from storeflow.store.sql.events_ops import EventsOps
from storeflow.store.sql.flows_ops import FlowsOps
from storeflow.store.sql.keys_ops import KeysOps
from storeflow.store.sql.messages_ops import MessagesOps
from storeflow.store.sql.outbox_ops import OutboxOps
from storeflow.store.sql.profiles_ops import ProfilesOps
from storeflow.store.sql.runs_ops import RunsOps

if TYPE_CHECKING:
    from storeflow.store.sql.write_behind import WriteBehindTx


class SqlTx(ProfilesOps, EventsOps, CommerceOps, FlowsOps, RunsOps, OutboxOps, MessagesOps, KeysOps, BulkOps,
            DatesOps):
    """Named domain operations inside one transaction. Shared by SQLite and PostgreSQL."""

    def write_behind(self) -> WriteBehindTx:
        """This transaction seen through a batch cache that writes at ``flush`` (see write_behind)."""
        from storeflow.store.sql.write_behind import WriteBehindTx

        return WriteBehindTx(self)
