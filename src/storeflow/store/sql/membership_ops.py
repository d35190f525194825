"""Segment membership: current members, the history of every stay, the queue of profiles to
re-evaluate, and the due rows of time-relative segments.

``segment_members`` holds one row per (segment, profile) while the profile is in the segment;
``segment_membership_log`` one row per stay (entered_at, exited_at null while it lasts), so
"who was in the segment at instant t" is a range query on the log. Entering and exiting write both
tables in one statement per table, and answer the pairs that really changed: a pair already in (or
already out) is left alone, so two engines evaluating one profile record one entry.

``segment_changes`` is written by ingest in the transaction that changed the profile (only when a
live segment reads what changed) and claimed by the membership engine like date-trigger changes
(SKIP LOCKED on PostgreSQL). ``segment_due`` keeps, per time-relative segment and profile, the next
instant the condition's truth flips if nothing else happens; due rows are claimed through their
``due_at`` index and deleted in the claiming transaction (the engine writes the next one).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, case, exists, func, or_, select, text, update

from storeflow.store.sql.common import TxBase
from storeflow.store.tables import (
    profiles,
    segment_changes,
    segment_due,
    segment_members,
    segment_membership_log,
    segments,
)

if TYPE_CHECKING:
    from storeflow.flows.conditions import Condition
    from storeflow.flows.segment_stats import SegmentStats

_CHUNK = 500


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


ANY_CHANGE = "*"
"""The key of a change that may touch anything (``storeflow.segments.segmentset.ANY``)."""
_LOCK_SEED = 0x5E6_3E3  # the advisory locks of membership evaluations (hashtextextended seed)
_MAX_KEYS = 2000  # characters of keys kept per queued profile; past that it is "anything"


_PG_QUEUE = text(f"""
INSERT INTO segment_changes (profile_id, queued_at, changed)
SELECT p, CAST(:now AS timestamptz), c FROM unnest(CAST(:ids AS text[]), CAST(:changed AS text[])) AS t(p, c)
ON CONFLICT (profile_id) DO UPDATE SET queued_at = excluded.queued_at, changed = CASE
    WHEN coalesce(segment_changes.changed, '*') = excluded.changed THEN excluded.changed
    WHEN coalesce(segment_changes.changed, '*') = '*' OR excluded.changed = '*'
      OR length(segment_changes.changed) + length(excluded.changed) > {_MAX_KEYS} THEN '*'
    ELSE segment_changes.changed || chr(10) || excluded.changed END
""")
"""``queue_segment_changes`` on PostgreSQL: the same upsert as the SQLite executemany, from arrays."""


def _encode_keys(keys: Iterable[str]) -> str:
    wanted = sorted(set(keys))
    if not wanted or ANY_CHANGE in wanted:
        return ANY_CHANGE
    text = "\n".join(wanted)
    return text if len(text) <= _MAX_KEYS else ANY_CHANGE


def _decode_keys(text: str | None) -> frozenset[str]:
    return frozenset((text or ANY_CHANGE).split("\n"))


_SELECTS: dict[tuple[int, datetime, str, int, str], tuple[Any, Any, Select[Any]]] = {}
_SELECTS_MAX = 256
_JIT_OFF = text("SELECT current_setting('jit') AS was, set_config('jit', 'off', true) AS now_")
"""The transaction's jit setting, and jit off for the rest of the transaction (until _JIT_SET)."""
_JIT_SET = text("SELECT set_config('jit', :jit, true)")


def _members_select(condition: Condition, now: datetime, store_tz: ZoneInfo, stats: SegmentStats | None,
                    dialect: str) -> Select[Any]:
    """The compiled members query of a condition at ``now``, built once per (condition, now): the
    engine evaluates a segment for several batches of profiles at one instant."""
    from storeflow.segments.sql import members_query

    key = (id(condition), now, store_tz.key, id(stats), dialect)
    hit = _SELECTS.get(key)
    if hit is not None and hit[0] is condition and hit[1] is stats:
        return hit[2]
    query = members_query(condition, now=now, store_tz=store_tz, stats=stats, dialect_name=dialect)
    if len(_SELECTS) >= _SELECTS_MAX:
        _SELECTS.clear()
    _SELECTS[key] = (condition, stats, query)  # holding them keeps their ids theirs
    return query


def _by_segment(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    grouped: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        grouped[str(row["segment_id"])][str(row["profile_id"])] = row
    return grouped


class MembershipOps(TxBase):
    # -- current members -------------------------------------------------------------------------
    def segments_of(self, profile_id: str) -> frozenset[str]:
        """The ids of the segments this profile is a current member of."""
        rows = self.conn.execute(select(segment_members.c.segment_id).where(segment_members.c.profile_id == profile_id))
        return frozenset(str(r[0]) for r in rows)

    def memberships_of(self, profile_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """Profile id -> the segments it is a current member of (profiles in none are absent)."""
        found: dict[str, set[str]] = defaultdict(set)
        for chunk in _chunks(sorted(set(profile_ids))):
            rows = self.conn.execute(select(segment_members.c.profile_id, segment_members.c.segment_id)
                                     .where(segment_members.c.profile_id.in_(chunk)))
            for pid, sid in rows:
                found[str(pid)].add(str(sid))
        return {pid: frozenset(sids) for pid, sids in found.items()}

    def is_member(self, segment_id: str, profile_id: str) -> bool:
        """Whether the profile is a current member of the segment."""
        q = select(exists().where(segment_members.c.segment_id == segment_id,
                                  segment_members.c.profile_id == profile_id))
        return bool(self.conn.execute(q).scalar())

    def merged_members(self, profile_ids: Iterable[str]) -> list[tuple[str, str]]:
        """(segment id, profile id) of the current members merged into one of these profiles: a
        merged profile is never a member, so the engine takes them out."""
        out: list[tuple[str, str]] = []
        for chunk in _chunks(sorted(set(profile_ids))):
            rows = self.conn.execute(
                select(segment_members.c.segment_id, segment_members.c.profile_id)
                .join(profiles, profiles.c.id == segment_members.c.profile_id)
                .where(profiles.c.merged_into.in_(chunk)))
            out.extend((str(s), str(p)) for s, p in rows)
        return sorted(out)

    def enter_segment(self, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """Rows of segment_id, profile_id, at, by (event | time | compute): the profiles become
        current members and a stay opens in the log. Pairs already in are left alone; returns the
        (segment id, profile id) pairs that entered."""
        entered: list[tuple[str, str]] = []
        for segment_id, wanted in sorted(_by_segment(rows).items()):
            ids = sorted(wanted)
            for chunk in _chunks(ids):
                stmt = self.upsert(segment_members).on_conflict_do_nothing(
                    index_elements=["segment_id", "profile_id"]).returning(segment_members.c.profile_id)
                got = self.conn.execute(stmt, [{"segment_id": segment_id, "profile_id": pid,
                                                "entered_at": wanted[pid]["at"]} for pid in chunk]).scalars().all()
                new = sorted(str(p) for p in got)
                if new:
                    self.conn.execute(segment_membership_log.insert(), [
                        {"segment_id": segment_id, "profile_id": pid, "entered_at": wanted[pid]["at"],
                         "exited_at": None, "entered_by": wanted[pid]["by"], "exited_by": None} for pid in new])
                entered.extend((segment_id, pid) for pid in new)
        return entered

    def exit_segment(self, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """Rows of segment_id, profile_id, at, by (event | time | compute | deleted): the profiles
        stop being members and their open stay closes. Pairs not in are left alone; returns the
        (segment id, profile id) pairs that exited."""
        exited: list[tuple[str, str]] = []
        for segment_id, wanted in sorted(_by_segment(rows).items()):
            for chunk in _chunks(sorted(wanted)):
                stmt = (segment_members.delete()
                        .where(segment_members.c.segment_id == segment_id, segment_members.c.profile_id.in_(chunk))
                        .returning(segment_members.c.profile_id))
                gone = sorted(str(p) for p in self.conn.execute(stmt).scalars().all())
                if gone:
                    log = segment_membership_log.c
                    self.conn.execute(
                        update(segment_membership_log)
                        .where(log.segment_id == segment_id, log.profile_id == bindparam("k_profile"),
                               log.exited_at.is_(None))
                        .values(exited_at=bindparam("k_at"), exited_by=bindparam("k_by")),
                        [{"k_profile": pid, "k_at": wanted[pid]["at"], "k_by": wanted[pid]["by"]} for pid in gone])
                exited.extend((segment_id, pid) for pid in gone)
        return exited

    def members_in_range(self, segment_id: str, after: str, upto: str) -> set[str]:
        """The segment's current members with ids in (``after``, ``upto``]: one page of a full
        computation's diff."""
        c = segment_members.c
        q = select(c.profile_id).where(c.segment_id == segment_id, c.profile_id > after, c.profile_id <= upto)
        return {str(r[0]) for r in self.conn.execute(q)}

    def member_counts(self, segment_ids: Iterable[str]) -> dict[str, int]:
        """Segment id -> its current member count (0 for a segment without members)."""
        wanted = sorted(set(segment_ids))
        counts = dict.fromkeys(wanted, 0)
        for chunk in _chunks(wanted):
            rows = self.conn.execute(select(segment_members.c.segment_id, func.count())
                                     .where(segment_members.c.segment_id.in_(chunk))
                                     .group_by(segment_members.c.segment_id))
            counts.update({str(s): int(n) for s, n in rows})
        return counts

    # -- history ----------------------------------------------------------------------------------
    def membership_history(self, profile_id: str) -> list[dict[str, Any]]:
        """Every stay of one profile in any segment, oldest first."""
        log = segment_membership_log.c
        rows = self.conn.execute(
            select(log.segment_id, log.entered_at, log.exited_at, log.entered_by, log.exited_by)
            .where(log.profile_id == profile_id).order_by(log.entered_at, log.id)).mappings()
        return [dict(r) for r in rows]

    # -- profiles to re-evaluate ---------------------------------------------------------------------
    def queue_segment_changes(self, changes: Mapping[str, Iterable[str]], now: datetime) -> None:
        """Queue these profiles for re-evaluation, each with the keys of what changed for it
        (``ANY_CHANGE``: anything); a profile already queued keeps the union. In id order, and ON
        CONFLICT DO UPDATE, so that on PostgreSQL a row an engine is claiming meanwhile is waited
        for, then written again."""
        if not changes:
            return
        ids = sorted(changes)
        if self.conn.dialect.name == "postgresql":  # one statement for the batch, not one per row
            self.conn.execute(_PG_QUEUE, {"ids": ids, "changed": [_encode_keys(changes[p]) for p in ids], "now": now})
            return
        rows = [{"profile_id": pid, "queued_at": now, "changed": _encode_keys(changes[pid])} for pid in ids]
        stmt = self.upsert(segment_changes)
        old, new = func.coalesce(segment_changes.c.changed, ANY_CHANGE), stmt.excluded.changed
        merged = case((old == new, old),  # the same changes again: kept once
                      (or_(old == ANY_CHANGE, new == ANY_CHANGE, func.length(old) + func.length(new) > _MAX_KEYS),
                       ANY_CHANGE), else_=old + "\n" + new)
        stmt = stmt.on_conflict_do_update(index_elements=["profile_id"],
                                          set_={"queued_at": stmt.excluded.queued_at, "changed": merged})
        self.conn.execute(stmt, rows)

    def claim_segment_changes(self, limit: int, now: datetime, until: datetime) -> dict[str, frozenset[str]]:
        """Up to ``limit`` profiles queued by ``now``, leased until ``until`` (their ``queued_at``
        moves there; rows another engine holds are skipped on PostgreSQL): profile id -> the keys of
        what changed. Claim in a short transaction of its own, so ingest never waits for the
        evaluation; :meth:`finish_segment_changes` removes them once evaluated, and a lease that
        runs out (a crash) makes them claimable again."""
        q = (select(segment_changes.c.profile_id, segment_changes.c.changed)
             .where(segment_changes.c.queued_at <= now)
             .order_by(segment_changes.c.queued_at, segment_changes.c.profile_id).limit(limit))
        found = {str(r[0]): _decode_keys(r[1]) for r in self.conn.execute(self.store.lock_for_claim(q))}
        for chunk in _chunks(sorted(found)):
            self.conn.execute(update(segment_changes).where(segment_changes.c.profile_id.in_(chunk))
                              .values(queued_at=until))
        return found

    def finish_segment_changes(self, profile_ids: Iterable[str], until: datetime) -> None:
        """Take these claimed profiles off the queue, unless queued again since the claim (their
        ``queued_at`` is no longer the lease's ``until``: they are evaluated again)."""
        for chunk in _chunks(sorted(set(profile_ids))):
            self.conn.execute(segment_changes.delete().where(segment_changes.c.profile_id.in_(chunk),
                                                             segment_changes.c.queued_at == until))

    def has_segment_changes(self, now: datetime | None = None) -> bool:
        """Whether a queued profile waits for the membership engine (claimable by ``now``, when given)."""
        q = exists().select_from(segment_changes)
        if now is not None:
            q = q.where(segment_changes.c.queued_at <= now)
        return bool(self.conn.execute(select(q)).scalar())

    def lock_profiles_for_membership(self, profile_ids: Iterable[str]) -> None:
        """Serialize membership evaluations of these profiles between engines (PostgreSQL: advisory
        transaction locks, taken in id order; SQLite serializes writers already): an engine that
        claimed a profile queued again while another evaluates it waits, then reads that one's result."""
        ids = sorted(set(profile_ids))
        if ids and self.conn.dialect.name == "postgresql":
            self.conn.execute(text(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(p, :seed))) "
                "FROM (SELECT unnest(CAST(:ids AS text[])) AS p ORDER BY 1) AS wanted"),
                {"ids": ids, "seed": _LOCK_SEED})

    # -- due flips of time-relative segments -------------------------------------------------------
    def set_segment_due(self, rows: list[dict[str, Any]]) -> None:
        """Rows of segment_id, profile_id, due_at: inserted or replaced (one per pair)."""
        if not rows:
            return
        latest = {(r["segment_id"], r["profile_id"]): r["due_at"] for r in rows}
        stmt = self.upsert(segment_due)
        stmt = stmt.on_conflict_do_update(index_elements=["segment_id", "profile_id"],
                                          set_={"due_at": stmt.excluded.due_at})
        self.conn.execute(stmt, [{"segment_id": s, "profile_id": p, "due_at": due}
                                 for (s, p), due in sorted(latest.items())])

    def delete_segment_due(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Remove the due rows of these (segment id, profile id) pairs."""
        wanted = sorted(set(pairs))
        if wanted:
            self.conn.execute(segment_due.delete().where(segment_due.c.segment_id == bindparam("s"),
                                                         segment_due.c.profile_id == bindparam("p")),
                              [{"s": s, "p": p} for s, p in wanted])

    def segment_due_of(self, profile_id: str) -> dict[str, datetime]:
        """Segment id -> the due instant of this profile's row in it."""
        rows = self.conn.execute(select(segment_due.c.segment_id, segment_due.c.due_at)
                                 .where(segment_due.c.profile_id == profile_id))
        return {str(s): d for s, d in rows}

    def claim_due_segment_flips(self, now: datetime, limit: int, until: datetime) -> list[dict[str, Any]]:
        """Due rows (segment_id, profile_id, due_at) earliest first, leased until ``until`` (their
        due_at moves there; SKIP LOCKED on PostgreSQL, so concurrent engines take different rows).
        Claim in a short transaction of its own; the evaluation writes each pair's next flip or
        :meth:`finish_segment_due` drops it."""
        q = (select(segment_due.c.segment_id, segment_due.c.profile_id, segment_due.c.due_at)
             .where(segment_due.c.due_at <= now).order_by(segment_due.c.due_at).limit(limit))
        rows = [dict(r) for r in self.conn.execute(self.store.lock_for_claim(q)).mappings()]
        if rows:
            self.conn.execute(update(segment_due).where(segment_due.c.segment_id == bindparam("s"),
                                                        segment_due.c.profile_id == bindparam("p"))
                              .values(due_at=until), [{"s": r["segment_id"], "p": r["profile_id"]} for r in rows])
        return rows

    def finish_segment_due(self, pairs: Iterable[tuple[str, str]], until: datetime) -> None:
        """Drop the claimed due rows that still hold the lease ``until`` (no next flip was written)."""
        wanted = sorted(set(pairs))
        if wanted:
            self.conn.execute(segment_due.delete().where(segment_due.c.segment_id == bindparam("s"),
                                                         segment_due.c.profile_id == bindparam("p"),
                                                         segment_due.c.due_at == until),
                              [{"s": s, "p": p} for s, p in wanted])

    def next_segment_due_at(self) -> datetime | None:
        """The earliest due instant (an index seek)."""
        value: datetime | None = self.conn.execute(
            select(segment_due.c.due_at).order_by(segment_due.c.due_at).limit(1)).scalar()
        return value

    # -- full computation --------------------------------------------------------------------------
    def segment_states(self, *, lock: bool = False) -> list[dict[str, Any]]:
        """id, status, current_version, computed_version of every segment, by id. ``lock``: the live
        ones are held FOR SHARE on PostgreSQL, so a full computation under way (which holds its
        segment FOR UPDATE) finishes before this transaction reads the segment's state."""
        c = segments.c
        q = select(c.id, c.status, c.current_version, c.computed_version).order_by(c.id)
        if lock and self.conn.dialect.name == "postgresql":
            q = q.where(c.status == "live").with_for_update(read=True)
        return [dict(r) for r in self.conn.execute(q).mappings()]

    def lock_segment_for_compute(self, segment_id: str) -> dict[str, Any] | None:
        """The segment's state, locked for a full computation (FOR UPDATE SKIP LOCKED on PostgreSQL);
        None when it is gone, not live, or another transaction holds it."""
        c = segments.c
        q = select(c.id, c.status, c.current_version, c.computed_version).where(c.id == segment_id, c.status == "live")
        row = self.conn.execute(self.store.lock_for_claim(q)).mappings().first()
        return dict(row) if row is not None else None

    def mark_segment_computed(self, segment_id: str, version: int, now: datetime) -> None:
        """The full computation of ``version`` is done: computed_version, computed_at and member_count."""
        count = self.member_counts([segment_id])[segment_id]
        self.conn.execute(update(segments).where(segments.c.id == segment_id)
                          .values(computed_version=version, computed_at=now, member_count=count))

    def profile_id_page(self, after: str, limit: int) -> list[str]:
        """Profile ids (merged ones included) after ``after``, by id: the pages of a full computation."""
        q = select(profiles.c.id).where(profiles.c.id > after).order_by(profiles.c.id).limit(limit)
        return [str(r[0]) for r in self.conn.execute(q)]

    def segment_member_ids(self, condition: Condition, *, now: datetime, store_tz: ZoneInfo,
                           stats: SegmentStats | None, profile_ids: Iterable[str] | None = None,
                           after: str | None = None, upto: str | None = None) -> set[str]:
        """The profiles the condition holds for now, by the SQL evaluator: among ``profile_ids``
        when given, and with ids in (``after``, ``upto``] when given."""
        dialect = self.conn.dialect.name
        base = _members_select(condition, now, store_tz, stats, dialect)
        if after is not None:
            base = base.where(profiles.c.id > after)
        if upto is not None:
            base = base.where(profiles.c.id <= upto)
        ids = None if profile_ids is None else sorted(set(profile_ids))
        found: set[str] = set()
        # PostgreSQL estimates each one-row parse table (jsonb_array_elements) at 100 rows, so a
        # segment reading free JSON numbers or dates is costed past jit_above_cost and JIT-compiled
        # on every execution (20-80 ms, more than the query takes); off for these statements only.
        jit = self.conn.execute(_JIT_OFF).scalar() if dialect == "postgresql" else None
        try:
            for chunk in ([None] if ids is None else list(_chunks(ids))):
                q = base if chunk is None else base.where(profiles.c.id.in_(chunk))
                found.update(str(r[0]) for r in self.conn.execute(q))
        finally:
            if jit is not None:
                self.conn.execute(_JIT_SET, {"jit": jit})
        return found
