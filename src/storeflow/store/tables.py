"""SQLAlchemy Core tables: the one schema both SQLite and PostgreSQL use. Alembic migrates to it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to storage; use aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def JSONDoc() -> Any:
    return JSON().with_variant(JSONB(), "postgresql")


def _id(name: str = "id", **kw: Any) -> Column[str]:
    return Column(name, String(64), **kw)


profiles = Table(
    "profiles",
    metadata,
    _id(primary_key=True),
    Column("email", String(320), nullable=True),
    Column("phone", String(32), nullable=True),
    Column("locale", String(35), nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("properties", JSONDoc(), nullable=False),
    Column("tags", JSONDoc(), nullable=False),
    Column("consent_email", String(16), nullable=False),
    Column("consent_sms", String(16), nullable=False),
    Column("consent_push", String(16), nullable=False),
    Column("orders_count", Integer, nullable=False),
    Column("total_spent", JSONDoc(), nullable=False),
    Column("first_order_at", UTCDateTime(), nullable=True),
    Column("last_order_at", UTCDateTime(), nullable=True),
    Column("last_active_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("merged_into", String(64), nullable=True),
    Index(None, "email"),
    Index(None, "phone"),
)

identities = Table(
    "identities",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("value", String(320), primary_key=True),
    Column("profile_id", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "profile_id"),
)

events = Table(
    "events",
    metadata,
    _id(primary_key=True),
    Column("type", String(100), nullable=False),
    Column("profile_id", String(64), nullable=True),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("source", String(50), nullable=False),
    Column("idempotency_key", String(260), nullable=False),
    Column("properties", JSONDoc(), nullable=False),
    UniqueConstraint("idempotency_key"),
    Index(None, "profile_id", "type", "occurred_at"),
    Index(None, "type", "occurred_at"),
)

products = Table(
    "products",
    metadata,
    _id(primary_key=True),
    Column("title", String(500), nullable=True),
    Column("status", String(16), nullable=False),
    Column("tags", JSONDoc(), nullable=False),
    Column("vendor", String(200), nullable=True),
    Column("product_type", String(200), nullable=True),
    Column("properties", JSONDoc(), nullable=False),
    Column("source_updated_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

variants = Table(
    "variants",
    metadata,
    _id(primary_key=True),
    Column("product_id", String(64), ForeignKey("products.id"), nullable=False),
    Column("sku", String(200), nullable=True),
    Column("title", String(500), nullable=True),
    Column("price_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "product_id"),
    Index(None, "sku"),
)

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("variant_id", String(64), primary_key=True),
    Column("location", String(100), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("source_updated_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    _id(primary_key=True),
    Column("profile_id", String(64), nullable=True),
    Column("number", String(100), nullable=True),
    Column("status", String(16), nullable=False),
    Column("financial_status", String(32), nullable=False),
    Column("fulfillment_status", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("tags", JSONDoc(), nullable=False),
    Column("shipping_country", String(2), nullable=True),
    Column("line_items", JSONDoc(), nullable=False),
    Column("properties", JSONDoc(), nullable=False),
    Column("placed_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "profile_id"),
)

carts = Table(
    "carts",
    metadata,
    _id(primary_key=True),
    Column("profile_id", String(64), nullable=True),
    Column("kind", String(16), nullable=False),
    Column("currency", String(3), nullable=True),
    Column("value_minor", BigInteger, nullable=True),
    Column("items", JSONDoc(), nullable=False),
    Column("checkout_url", Text, nullable=True),
    Column("last_activity_at", UTCDateTime(), nullable=False),
    Column("converted_at", UTCDateTime(), nullable=True),
    Column("order_id", String(64), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index(None, "profile_id"),
)

flows = Table(
    "flows",
    metadata,
    _id(primary_key=True),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("current_version", Integer, nullable=False),
    Column("trigger_kind", String(16), nullable=False),
    Column("trigger_event", String(100), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

flow_revision = Table(
    "flow_revision",
    metadata,
    # One row (id 1): a counter bumped in the same transaction as every change to ``flows``. Flow
    # caches in every process compare it to know whether to reload; unlike timestamps it cannot go
    # backwards when hosts' clocks disagree.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", BigInteger, nullable=False),
)

flow_versions = Table(
    "flow_versions",
    metadata,
    Column("flow_id", String(64), ForeignKey("flows.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("definition", JSONDoc(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    _id(primary_key=True),
    Column("flow_id", String(64), nullable=False),
    Column("flow_version", Integer, nullable=False),
    Column("profile_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("cursor", String(500), nullable=True),
    Column("due_at", UTCDateTime(), nullable=True),
    Column("active_key", String(140), nullable=True),
    Column("dedupe_key", String(200), nullable=True),
    Column("trigger_event_id", String(64), nullable=True),
    Column("context", JSONDoc(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("exit_reason", Text, nullable=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime(), nullable=True),
    UniqueConstraint("active_key"),
    UniqueConstraint("dedupe_key"),
    Index(None, "due_at"),
    Index(None, "flow_id", "status"),
    Index(None, "profile_id"),
)

run_steps = Table(
    "run_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("step_key", String(200), nullable=False),
    Column("step_path", String(500), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("detail", JSONDoc(), nullable=False),
    UniqueConstraint("run_id", "seq"),
)

run_waits = Table(
    "run_waits",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("profile_id", String(64), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("since", UTCDateTime(), nullable=False),
    Index(None, "profile_id", "event_type"),
)

flow_entries = Table(
    "flow_entries",
    metadata,
    Column("flow_id", String(64), primary_key=True),
    Column("profile_id", String(64), primary_key=True),
    Column("entries", Integer, nullable=False),
    Column("last_entered_at", UTCDateTime(), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    _id(primary_key=True),
    Column("run_id", String(64), nullable=True),
    Column("step_key", String(200), nullable=True),
    Column("channel", String(32), nullable=False),
    Column("idempotency_key", String(300), nullable=False),
    Column("payload", JSONDoc(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    # The message record: who, from which flow step, what kind, and what the provider said.
    Column("flow_id", String(64), nullable=True),
    Column("flow_version", Integer, nullable=True),
    Column("profile_id", String(64), nullable=True),
    Column("kind", String(16), nullable=True),  # marketing | transactional | team | webhook
    Column("address", String(320), nullable=True),
    Column("provider_id", String(200), nullable=True),
    Column("segments", Integer, nullable=True),
    Column("delivered_at", UTCDateTime(), nullable=True),
    Column("opened_at", UTCDateTime(), nullable=True),
    Column("clicked_at", UTCDateTime(), nullable=True),
    # True from the commit that records a send to a profile until its ``message_sent`` event is
    # stored: a worker that dies in between leaves it set, and the next dispatch stores the event.
    Column("event_pending", Boolean, nullable=True),
    # A campaign's message: which campaign and variant (None for flow and team messages).
    Column("campaign_id", String(64), nullable=True),
    Column("variant", String(32), nullable=True),
    UniqueConstraint("idempotency_key"),
    Index(None, "next_attempt_at"),
    # The dispatcher's claims seek the live messages only, however many sent ones pile up.
    Index(None, "status", "next_attempt_at"),
    Index(None, "status", "lease_until"),
    Index(None, "event_pending"),
    Index(None, "run_id"),
    Index(None, "provider_id"),
    Index(None, "profile_id"),
    Index(None, "campaign_id"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("address", String(320), primary_key=True),
    Column("reason", String(32), nullable=False),  # bounced | complained
    Column("message_id", String(64), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("outbox_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status", String(24), nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("detail", Text, nullable=False),
    Column("response_body", Text, nullable=True),
    Index(None, "outbox_id"),
)

schedules = Table(
    "schedules",
    metadata,
    Column("flow_id", String(64), primary_key=True),
    Column("flow_version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("next_fire_at", UTCDateTime(), nullable=False),
    Column("last_fired_at", UTCDateTime(), nullable=True),
    # Date flows: the last profile id the backfill of this version has reached (None: done).
    Column("backfill_after", String(64), nullable=True),
    Index(None, "next_fire_at"),
)

# When each date-triggered flow next fires for each profile (birthdays and the like): claimed when
# due, as runs are, and moved on to the next occurrence after firing.
date_trigger_fires = Table(
    "date_trigger_fires",
    metadata,
    Column("flow_id", String(64), primary_key=True),
    Column("profile_id", String(64), primary_key=True),
    Column("next_fire_at", UTCDateTime(), nullable=False),
    Column("occurrence_key", String(32), nullable=False),  # the anniversary's year, or "once"
    Column("last_occurrence", String(32), nullable=True),
    Column("last_outcome", String(16), nullable=True),  # started | not_started | skipped
    Column("last_at", UTCDateTime(), nullable=True),
    Index(None, "next_fire_at"),
    Index(None, "profile_id"),
)

# Profiles whose properties, time zone or merge state changed since the scheduler last looked:
# written in the transaction that changes the profile, so no change goes unnoticed.
date_trigger_changes = Table(
    "date_trigger_changes",
    metadata,
    Column("profile_id", String(64), primary_key=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    _id(primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("prefix", String(24), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    UniqueConstraint("secret_hash"),
)

# --- segments (issue 9) ---------------------------------------------------------------------------

segments = Table(
    "segments",
    metadata,
    _id(primary_key=True),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # live | deleted
    Column("current_version", Integer, nullable=False),
    # The version whose full computation has finished (None: not yet computed); below
    # current_version the membership engine computes the segment in full once.
    Column("computed_version", Integer, nullable=True),
    Column("computed_at", UTCDateTime(), nullable=True),
    Column("member_count", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

segment_versions = Table(
    "segment_versions",
    metadata,
    Column("segment_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("definition", JSONDoc(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Current members: one row per segment and profile while the profile is in the segment.
segment_members = Table(
    "segment_members",
    metadata,
    Column("segment_id", String(64), primary_key=True),
    Column("profile_id", String(64), primary_key=True),
    Column("entered_at", UTCDateTime(), nullable=False),
    Index(None, "profile_id"),
)

# Every stay in a segment, kept: "who was in vip on 1 October" is the rows with entered_at <= t
# and (exited_at > t or exited_at is null).
segment_membership_log = Table(
    "segment_membership_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("segment_id", String(64), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("entered_at", UTCDateTime(), nullable=False),
    Column("exited_at", UTCDateTime(), nullable=True),
    Column("entered_by", String(16), nullable=False),  # event | time | compute
    Column("exited_by", String(16), nullable=True),  # event | time | compute | deleted
    Index(None, "segment_id", "profile_id"),
    Index(None, "segment_id", "entered_at"),
)

# When a time-relative segment's truth next flips for a profile if nothing else happens; claimed
# when due like runs are.
segment_due = Table(
    "segment_due",
    metadata,
    Column("segment_id", String(64), primary_key=True),
    Column("profile_id", String(64), primary_key=True),
    Column("due_at", UTCDateTime(), nullable=False),
    Index(None, "due_at"),
)

# Profiles changed by an event that some live segment reads, written in the ingest transaction;
# the membership engine drains it right after.
segment_changes = Table(
    "segment_changes",
    metadata,
    Column("profile_id", String(64), primary_key=True),
    Column("queued_at", UTCDateTime(), nullable=False),
    # What changed, as the keys segment conditions read (storeflow.segments.segmentset), one per
    # line; "*" (or null): anything. Only the segments reading one of them are evaluated.
    Column("changed", Text(), nullable=True),
)

# --- campaigns (issue 9) --------------------------------------------------------------------------

campaigns = Table(
    "campaigns",
    metadata,
    _id(primary_key=True),
    Column("name", String(200), nullable=False),
    Column("status", String(16), nullable=False),  # draft | scheduled | sending | sent | cancelled
    Column("definition", JSONDoc(), nullable=False),
    Column("send_at", UTCDateTime(), nullable=True),  # when freezing starts (None: draft)
    Column("audience_size", Integer, nullable=True),
    Column("frozen_at", UTCDateTime(), nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Column("cancelled_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "status", "send_at"),
)

# The frozen audience: one row per recipient, with when its message is due (local-time campaigns
# give each its own) and what became of it.
campaign_recipients = Table(
    "campaign_recipients",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("profile_id", String(64), primary_key=True),
    Column("variant", String(32), nullable=True),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # pending | queued | skipped | cancelled
    Column("reason", String(64), nullable=True),
    Column("message_id", String(64), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "status", "due_at"),
    Index(None, "campaign_id", "status"),
)
