"""Segments and their current members for campaign tests, written straight into the tables (the
membership engine is not what these tests are about)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import insert

from storeflow.store import Store
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import segment_members, segments


def add_segment(store: Store, segment_id: str, profile_ids: Iterable[str], at: datetime) -> None:
    """A live segment whose current members are ``profile_ids``."""
    members = sorted(set(profile_ids))
    with store.transaction() as tx:
        conn = sql_connection(tx)
        conn.execute(insert(segments).values(id=segment_id, name=segment_id, status="live", current_version=1,
                                             computed_version=1, computed_at=at, member_count=len(members),
                                             created_at=at, updated_at=at))
        if members:
            conn.execute(insert(segment_members),
                         [{"segment_id": segment_id, "profile_id": pid, "entered_at": at} for pid in members])
