"""The storage ports of audiences: segments as documents, their membership, segment-triggered flows'
backfills, segment statistics, a profile's collections for the Python evaluator, and campaigns.

Part of ``storeflow.store.ports`` (which combines them into ``StoreTx``); kept apart only for size.
The rules of ``storeflow.store.ports`` apply: every operation is implemented by ``SqlTx``, declared
by the write-behind view and exercised by a contract test on both backends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from storeflow.flows.conditions import Condition
    from storeflow.flows.segment_stats import SegmentStats


class SegmentFlowsPort(Protocol):
    """Segment-triggered flows: the backfill of a segment's current members (include_existing)."""

    def set_segment_backfill(self, flow_id: str, version: int, now: datetime, *, restart: bool) -> bool:
        """Start the members backfill of a live include_existing flow unless it has one and not ``restart``."""

    def postpone_segment_backfill(self, flow_id: str, until: datetime) -> None:
        """Look at the flow's members backfill again at ``until``."""

    def segment_backfills(self) -> list[dict[str, Any]]:
        """The schedules rows of the members backfills (flow_id, flow_version, next_fire_at, last_fired_at)."""


class SegmentsPort(Protocol):
    """Segments as documents: rows, versions, the segments revision, member pages, deletion."""

    def get_segment(self, segment_id: str) -> dict[str, Any] | None:
        """The segment row by id (deleted ones too); None if unknown."""

    def list_segments(self, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Segment rows by id (with member_count, computed_version and computed_at)."""

    def insert_segment(self, row: dict[str, Any]) -> None:
        """Insert a segment row (moves the segments revision on)."""

    def update_segment(self, segment_id: str, **values: Any) -> None:
        """Set these columns of the segment (moves the segments revision on)."""

    def insert_segment_version(self, segment_id: str, version: int, digest: str, definition: dict[str, Any],
                               now: datetime) -> bool:
        """Store a version of a segment's document; False (nothing stored) when its latest version
        has the same digest."""

    def get_segment_version(self, segment_id: str, version: int) -> dict[str, Any] | None:
        """One stored version (digest, definition, created_at); None if unknown."""

    def segment_versions_of(self, segment_id: str) -> list[dict[str, Any]]:
        """The segment's stored versions (version, digest, created_at), oldest first."""

    def live_segment_definitions(self) -> dict[str, dict[str, Any]]:
        """Segment id -> the document of its current version, for every segment not deleted."""

    def delete_segment(self, segment_id: str, now: datetime) -> int:
        """Mark the segment deleted; its members are removed, their stays closed (exited_by
        "deleted") and its due rows dropped. How many members it had."""

    def bump_segments_revision(self) -> None:
        """One more segment change, in this transaction."""

    def segments_revision(self) -> int:
        """The counter of segment changes (``meta`` key segments_revision)."""

    def segment_members_page(self, segment_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Current members after profile id ``after`` (profile_id, email, phone, entered_at), by id."""

    def segment_members_at(self, segment_id: str, at: datetime, after: str | None,
                           limit: int) -> list[dict[str, Any]]:
        """The members at instant ``at`` (from the membership log), paged like segment_members_page."""

    def segment_users(self) -> list[dict[str, Any]]:
        """Live flows and campaigns still to send, with their definitions (kind, id, name, definition)."""

    def preview_segment(self, condition: Condition, *, now: datetime, store_tz: ZoneInfo,
                        stats: SegmentStats | None, sample: int) -> dict[str, Any]:
        """How many profiles the condition holds for now (SQL evaluator) and the first ``sample`` by id
        (profile_id, email): ``{"count": n, "sample": [...]}``. Never writes."""


class CampaignsPort(Protocol):
    """Campaigns: their rows, the frozen audience, due recipients, cancellation and the report."""

    def insert_campaign(self, row: dict[str, Any]) -> None:
        """Insert a campaign row (a duplicate id is a unique violation)."""

    def get_campaign(self, campaign_id: str) -> dict[str, Any] | None:
        """The campaign row by id; None if unknown."""

    def list_campaigns(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Campaigns, newest first, optionally of one status."""

    def update_campaign(self, campaign_id: str, expect: Sequence[str] | None = None, **values: Any) -> bool:
        """Set these columns, only while the status is one of ``expect`` when given (compare-and-set)."""

    def claim_due_campaigns(self, now: datetime, limit: int = 10) -> list[dict[str, Any]]:
        """Scheduled campaigns whose send time has come, locked for this transaction."""

    def lock_campaign(self, campaign_id: str) -> dict[str, Any] | None:
        """The campaign while ``sending``, locked for this transaction; None if not (or held elsewhere)."""

    def audience_segments_known(self, segment_ids: Iterable[str]) -> set[str]:
        """Which of these segment ids name live segments."""

    def count_audience(self, include: Sequence[str], exclude: Sequence[str]) -> int:
        """Live profiles in any included segment and in no excluded one (reads only)."""

    def audience_sample(self, include: Sequence[str], exclude: Sequence[str], limit: int = 1) -> list[str]:
        """The first ``limit`` profile ids of the audience, by id (reads only)."""

    def audience_timezones(self, include: Sequence[str], exclude: Sequence[str]) -> list[str | None]:
        """The distinct profile time zones of the audience (None: the profile has none)."""

    def freeze_audience(self, campaign_id: str, include: Sequence[str], exclude: Sequence[str], now: datetime, *,
                        due_at: datetime, zone_due: dict[str, datetime] | None = None,
                        variants: Sequence[tuple[str, int]] = ()) -> int:
        """Record the audience as pending recipients with variant and due time (one INSERT ... SELECT)."""

    def claim_campaign_recipients(self, campaign_id: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Pending recipients due by ``now``, earliest first, locked, each with its ``profile`` row."""

    def update_campaign_recipients(self, campaign_id: str, rows: list[dict[str, Any]]) -> None:
        """Record what became of recipients (profile_id, status, reason, message_id, updated_at)."""

    def campaign_queued_since(self, campaign_id: str, since: datetime) -> tuple[int, datetime | None]:
        """Recipients queued after ``since``, and the earliest of those times (the throttle's window)."""

    def has_pending_recipients(self, campaign_id: str) -> bool:
        """Whether any recipient of the campaign is still pending."""

    def recently_messaged(self, profile_ids: Iterable[str], since: datetime) -> set[str]:
        """Which of these profiles got a marketing message (any flow or campaign) since ``since``."""

    def next_campaign_send_at(self) -> datetime | None:
        """The earliest send time of a scheduled campaign; None if none."""

    def next_recipient_due(self, skip_campaigns: Iterable[str] = ()) -> datetime | None:
        """The earliest due time of a pending recipient of a campaign not skipped."""

    def cancel_campaign(self, campaign_id: str, now: datetime) -> bool:
        """Cancel the campaign, its pending recipients and its messages not yet claimed for sending."""

    def campaign_report(self, campaign_id: str) -> dict[str, Any]:
        """Recipients by status and reason, and message counts, per variant."""


class MembershipPort(Protocol):
    """Segment membership: current members and their history, the queue of profiles to
    re-evaluate, and the due flips of time-relative segments (see store/sql/membership_ops.py)."""

    def segments_of(self, profile_id: str) -> frozenset[str]:
        """The ids of the segments this profile is a current member of."""

    def memberships_of(self, profile_ids: Iterable[str]) -> dict[str, frozenset[str]]:
        """Profile id -> the segments it is a current member of (profiles in none are absent)."""

    def is_member(self, segment_id: str, profile_id: str) -> bool:
        """Whether the profile is a current member of the segment."""

    def merged_members(self, profile_ids: Iterable[str]) -> list[tuple[str, str]]:
        """(segment id, profile id) of current members merged into one of these profiles."""

    def enter_segment(self, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """Rows of segment_id, profile_id, at, by: members and log stays; the pairs that entered."""

    def exit_segment(self, rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
        """Rows of segment_id, profile_id, at, by: stays closed, members removed; the pairs that exited."""

    def members_in_range(self, segment_id: str, after: str, upto: str) -> set[str]:
        """The segment's current members with ids in (``after``, ``upto``]."""

    def member_counts(self, segment_ids: Iterable[str]) -> dict[str, int]:
        """Segment id -> its current member count."""

    def membership_history(self, profile_id: str) -> list[dict[str, Any]]:
        """Every stay of one profile in any segment, oldest first."""

    def queue_segment_changes(self, changes: Mapping[str, Iterable[str]], now: datetime) -> None:
        """Queue profiles (id -> the keys of what changed) for the membership engine to re-evaluate."""

    def claim_segment_changes(self, limit: int, now: datetime, until: datetime) -> dict[str, frozenset[str]]:
        """Up to ``limit`` profiles queued by ``now`` (id -> what changed), leased until ``until``."""

    def finish_segment_changes(self, profile_ids: Iterable[str], until: datetime) -> None:
        """Take claimed profiles off the queue unless queued again since their claim."""

    def has_segment_changes(self, now: datetime | None = None) -> bool:
        """Whether a queued profile waits for the membership engine (claimable by ``now``)."""

    def lock_profiles_for_membership(self, profile_ids: Iterable[str]) -> None:
        """Serialize membership evaluations of these profiles between engines (this transaction)."""

    def set_segment_due(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace due rows (segment_id, profile_id, due_at)."""

    def delete_segment_due(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Remove the due rows of these (segment id, profile id) pairs."""

    def segment_due_of(self, profile_id: str) -> dict[str, datetime]:
        """Segment id -> the due instant of this profile's row in it."""

    def claim_due_segment_flips(self, now: datetime, limit: int, until: datetime) -> list[dict[str, Any]]:
        """Due rows earliest first, leased until ``until``."""

    def finish_segment_due(self, pairs: Iterable[tuple[str, str]], until: datetime) -> None:
        """Drop the claimed due rows that still hold the lease ``until``."""

    def next_segment_due_at(self) -> datetime | None:
        """The earliest due instant of a time-relative segment flip."""

    def segment_states(self, *, lock: bool = False) -> list[dict[str, Any]]:
        """id, status, current_version, computed_version of every segment (``lock``: live ones FOR SHARE)."""

    def lock_segment_for_compute(self, segment_id: str) -> dict[str, Any] | None:
        """The live segment's state locked for a full computation; None if gone or held elsewhere."""

    def mark_segment_computed(self, segment_id: str, version: int, now: datetime) -> None:
        """Record that ``version`` is computed in full (and the member count)."""

    def profile_id_page(self, after: str, limit: int) -> list[str]:
        """Profile ids after ``after``, by id (the pages of a full computation)."""

    def segment_member_ids(self, condition: Condition, *, now: datetime, store_tz: ZoneInfo,
                           stats: SegmentStats | None, profile_ids: Iterable[str] | None = None,
                           after: str | None = None, upto: str | None = None) -> set[str]:
        """The profiles the condition holds for now (SQL evaluator), optionally among ids or in a range."""


class SegmentStatsPort(Protocol):
    """Segment statistics: the store's customers ranked by recency, frequency and spend, and the
    ``meta`` row the statistics are kept in (storeflow.segments.stats)."""

    def count_customers(self) -> int:
        """How many unmerged profiles have an order."""

    def customer_values_at(self, metric: str, currency: str, ranks: Sequence[int]) -> dict[int, Any]:
        """The value of ``metric`` (recency: last_order_at, frequency, monetary) at these 1-based ranks."""

    def set_meta_value(self, key: str, value: str) -> bool:
        """Store ``value`` under ``key`` in ``meta``; whether it changed."""


class ProfileDataPort(Protocol):
    """One profile's collections for the Python condition evaluator (engine.records.StoreProfileData)."""

    def orders_of_profile(self, profile_id: str) -> list[dict[str, Any]]:
        """Every order of the profile, oldest first."""

    def carts_of_profile(self, profile_id: str) -> list[dict[str, Any]]:
        """Every cart and checkout of the profile, converted ones too."""

    def messages_of_profile(self, profile_id: str, channel: str | None) -> list[dict[str, Any]]:
        """Every message to the profile (on ``channel``; any channel for None), oldest first."""


__all__ = ["CampaignsPort", "MembershipPort", "ProfileDataPort", "SegmentFlowsPort", "SegmentStatsPort",
           "SegmentsPort"]
