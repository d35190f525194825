"""The storage ports: the named domain operations a transaction offers, one Protocol per domain.

Engine, service, API and CLI code types against these (``StoreTx``, or the narrower port it needs),
never against the SQL implementation; ``storeflow.store.sql.tx.SqlTx`` satisfies every port, and
mypy checks that structurally where ``SqlStore`` hands a ``SqlTx`` out as a ``StoreTx``.

An operation the engine needs is added to its port first. ``WriteBehindTx`` (ingest's batch view)
declares for every operation of every port whether it answers it from its batch cache or flushes
first; ``tests/contract/test_ports.py`` checks that, and that the contract suite names every
operation, so a new operation can neither bypass the cache nor go untested on either backend.

The audience ports (segments, membership, campaigns, ...) live in ``storeflow.store.audience_ports``
and are combined here like the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from storeflow.store.audience_ports import (
    CampaignsPort,
    MembershipPort,
    ProfileDataPort,
    SegmentFlowsPort,
    SegmentsPort,
    SegmentStatsPort,
)

if TYPE_CHECKING:

    pass


@dataclass
class PrefetchKeys:
    """What a batch's events will ask about. ``trigger_identities``: of the events that may start
    runs (their records, re-entry and active runs are read); ``order_identities``: of order events
    (the profile's orders and open carts are read)."""

    identities: list[tuple[str, str]] = field(default_factory=list)
    profile_ids: list[str] = field(default_factory=list)
    cart_ids: list[str] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)
    product_ids: list[str] = field(default_factory=list)
    trigger_identities: list[tuple[str, str]] = field(default_factory=list)
    order_identities: list[tuple[str, str]] = field(default_factory=list)
    entry_flows: frozenset[str] = frozenset()


def finished(message_id: str, now: datetime, *, status: str, error: str | None = None,
             next_attempt_at: datetime | None = None, provider_id: str | None = None) -> dict[str, Any]:
    """One item for :meth:`OutboxPort.finish_messages`: ``status`` sent, pending (retry at
    ``next_attempt_at``) or failed, with ``error`` as the reason."""
    return {"m_id": message_id, "m_status": status, "m_error": error, "m_now": now, "m_next": next_attempt_at,
            "m_provider": provider_id, "m_sent": now if status == "sent" else None}


class ProfilesPort(Protocol):
    """Profiles, their identities, merges and order summaries."""

    def find_profiles_by_identities(self, idents: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(kind, value) -> owning profile id, for the identities that have one."""

    def resolve_profile_id(self, profile_id: str) -> str | None:
        """Follow merges to the surviving profile."""

    def get_profile(self, profile_id: str) -> dict[str, Any] | None:
        """The profile row, following merges to the survivor; None if unknown."""

    def create_profile(self, profile_id: str, now: datetime, **values: Any) -> None:
        """Insert a new profile with these column values (nothing known or consented otherwise)."""

    def add_identities(self, profile_id: str, idents: list[tuple[str, str]], now: datetime) -> None:
        """Attach these (kind, value) identities to the profile; ones already owned are kept as they are."""

    def update_profile(self, profile_id: str, now: datetime, **values: Any) -> None:
        """Set these columns of the profile and stamp ``updated_at``."""

    def merge_properties(self, profile_id: str, patch: dict[str, Any], now: datetime) -> None:
        """Set these keys of the profile's ``properties``, keeping the others as stored now."""

    def touch_active(self, profile_id: str, at: datetime) -> None:
        """Move ``last_active_at`` forward to ``at`` (never back)."""

    def merge_profiles(self, survivor: str, loser: str, now: datetime) -> None:
        """Move everything of ``loser`` to ``survivor``; the loser row stays as a redirect."""

    def recompute_order_aggregates(self, profile_id: str, now: datetime) -> None:
        """Orders count, spend per currency, first/last order from the orders table."""

    def order_aggregates(self, profile_id: str) -> dict[str, Any]:
        """The profile columns that summarise its orders, computed from the orders table."""

    def order_aggregates_of(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``order_aggregates`` for many profiles at once (every asked id is in the answer)."""

    def list_profiles(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """A page of live (unmerged) profiles, newest first."""

    def count_profiles(self) -> int:
        """How many live (unmerged) profiles there are."""

    def identities_of(self, profile_id: str) -> list[tuple[str, str]]:
        """The profile's (kind, value) identities."""

    def profiles_page(self, after_id: str, limit: int) -> list[dict[str, Any]]:
        """A page of live profiles (id, timezone, properties) ordered by id, for sweeps."""


class EventsPort(Protocol):
    """Stored events: idempotent inserts, history and timelines."""

    def insert_event(self, record: dict[str, Any]) -> bool:
        """Insert unless an event with the same idempotency key exists; True if inserted."""

    def existing_idempotency_keys(self, keys: list[str]) -> set[str]:
        """Which of these idempotency keys are already taken by stored events."""

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        """The event row by id; None if unknown."""

    def history_events(self, profile_id: str, event_type: str, since: datetime | None,
                       until: datetime) -> list[dict[str, Any]]:
        """The profile's events of this type between ``since`` and ``until``, oldest first."""

    def history_events_of(self, profile_ids: Iterable[str], event_type: str, since: datetime | None,
                          until: datetime) -> dict[str, list[dict[str, Any]]]:
        """``history_events`` for many profiles at once (one query per 500 profiles)."""

    def timeline(self, profile_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The profile's latest events, newest first."""

    def count_events(self) -> int:
        """How many events are stored."""


class CommercePort(Protocol):
    """Products, variants, stock, orders and carts."""

    def get_product(self, product_id: str) -> dict[str, Any] | None:
        """The product row by id; None if unknown."""

    def upsert_product(self, product_id: str, now: datetime, source_at: datetime, **values: Any) -> bool:
        """Create or update a product; an update older than what is stored is ignored. True if applied."""

    def upsert_variant(self, variant_id: str, product_id: str, now: datetime, **values: Any) -> None:
        """Create or update a product variant."""

    def get_variant(self, variant_id: str) -> dict[str, Any] | None:
        """The variant row by id; None if unknown."""

    def variant_by_sku(self, sku: str) -> dict[str, Any] | None:
        """A variant with this SKU; None if none."""

    def product_variants(self, product_id: str) -> list[dict[str, Any]]:
        """The product's variants, by id."""

    def product_stock(self, product_id: str) -> int:
        """The product's stock summed over its variants and locations."""

    def set_stock(self, variant_id: str, location: str, now: datetime, source_at: datetime, *,
                  quantity: int | None = None, delta: int | None = None) -> bool:
        """Set or change a variant's stock at a location; absolute quantities older than stored are ignored."""

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        """The order row by id; None if unknown."""

    def insert_order(self, row: dict[str, Any]) -> None:
        """Insert an order row (a duplicate id is a unique violation)."""

    def update_order(self, order_id: str, **values: Any) -> None:
        """Set these columns of the order."""

    def profile_orders(self, profile_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The profile's latest orders, newest first."""

    def get_cart(self, cart_id: str) -> dict[str, Any] | None:
        """The cart row by id; None if unknown."""

    def insert_cart(self, row: dict[str, Any]) -> None:
        """Insert a cart row (a duplicate id is a unique violation)."""

    def update_cart(self, cart_id: str, **values: Any) -> None:
        """Set these columns of the cart."""

    def latest_open_cart(self, profile_id: str) -> dict[str, Any] | None:
        """The profile's open (unconverted) cart with the latest activity; None if none."""

    def convert_carts(self, profile_id: str | None, cart_ids: list[str], order_id: str, at: datetime) -> int:
        """Mark the named carts (or the profile's open ones) converted to this order; how many changed."""


class FlowsPort(Protocol):
    """Flows, their versions, the flow revision and cron schedules."""

    def get_flow(self, flow_id: str) -> dict[str, Any] | None:
        """The flow row by id; None if unknown."""

    def list_flows(self) -> list[dict[str, Any]]:
        """Every flow row."""

    def get_flow_version(self, flow_id: str, version: int) -> dict[str, Any] | None:
        """The stored definition of one version of a flow; None if unknown."""

    def flow_versions_of(self, flow_id: str) -> list[dict[str, Any]]:
        """The flow's stored versions."""

    def insert_flow(self, row: dict[str, Any]) -> None:
        """Insert a flow row."""

    def update_flow(self, flow_id: str, **values: Any) -> None:
        """Set these columns of the flow."""

    def bump_flow_revision(self) -> None:
        """One more flow change, in this transaction."""

    def insert_flow_version(self, flow_id: str, version: int, digest: str, definition: dict[str, Any],
                            now: datetime) -> None:
        """Store a version of a flow's definition."""

    def set_flow_layout(self, flow_id: str, version: int, layout: dict[str, Any] | None) -> None:
        """Replace the editor layout kept in a stored version's document (not part of its digest)."""

    def live_flows(self) -> list[dict[str, Any]]:
        """The live flows with their current definitions."""

    def flows_revision(self) -> int:
        """The counter of flow changes (``flow_revision``)."""

    def set_schedule(self, flow_id: str, version: int, kind: str, next_fire_at: datetime) -> None:
        """Create or replace the cron schedule of a flow."""

    def drop_schedule(self, flow_id: str) -> None:
        """Remove the cron schedule of a flow."""

    def claim_due_schedules(self, now: datetime, limit: int = 20) -> list[dict[str, Any]]:
        """Cron schedules due by ``now``, locked for this transaction."""

    def fire_schedule(self, flow_id: str, fired_at: datetime, next_fire_at: datetime) -> None:
        """Record that a schedule fired and when it fires next."""

    def next_schedule_at(self) -> datetime | None:
        """The earliest next fire time of any schedule; None if none."""


class RunsPort(Protocol):
    """Runs, their steps, waits and flow entries; the worker's row reads and writes by id."""

    def create_run(self, row: dict[str, Any]) -> bool:
        """Insert a run; False if its active or dedupe key is taken (one active run per flow and profile)."""

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run row by id; None if unknown."""

    def claim_due_runs(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Due runs of live flows, locked for this transaction (SKIP LOCKED on PostgreSQL)."""

    def update_run(self, run_id: str, **values: Any) -> None:
        """Set these columns of the run."""

    def append_steps(self, rows: list[dict[str, Any]]) -> None:
        """Add step-log rows in one round (executemany on SQLite, COPY on PostgreSQL)."""

    def run_steps_of(self, run_id: str) -> list[dict[str, Any]]:
        """The step log of a run, in order."""

    def list_runs(self, *, flow_id: str | None = None, status: str | None = None, profile_id: str | None = None,
                  limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Runs, newest first, optionally of one flow, profile or status."""

    def run_counts(self, flow_id: str | None = None) -> dict[str, int]:
        """Runs per status."""

    def run_counts_by_flow(self, flow_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """``run_counts`` for many flows in one query per 500."""

    def step_stats(self, flow_id: str) -> dict[str, dict[str, Any]]:
        """Per step of a flow, over all its versions, by step key (the step id)."""

    def next_due_at(self) -> datetime | None:
        """The earliest due time among runs of live flows."""

    def add_wait(self, run_id: str, profile_id: str, event_type: str, since: datetime) -> None:
        """Make the run wait for the profile's next event of this type."""

    def waits_for(self, profile_id: str, event_type: str) -> list[dict[str, Any]]:
        """Runs waiting for this profile's event of this type."""

    def remove_wait(self, run_id: str) -> bool:
        """The run no longer waits for events."""

    def flow_entry(self, flow_id: str, profile_id: str) -> dict[str, Any] | None:
        """How often and when the profile last entered the flow; None if never."""

    def record_entry(self, flow_id: str, profile_id: str, at: datetime) -> None:
        """Count one more entry of the profile into the flow, at ``at``."""

    def lock_run(self, run_id: str) -> dict[str, Any] | None:
        """The run row, locked until commit (FOR UPDATE on PostgreSQL) so a worker cannot race."""

    def rows_by_id(self, kind: str, ids: Iterable[str], *, lock: bool = False,
                   columns: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Rows of ``kind`` (event, profile, order, cart, product, run) by id, one query per 500 ids;
        with ``lock``, locked until commit in id order; ``columns=()`` with ``lock``: only locked."""

    def profiles_by_id(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Like ``get_profile`` for many ids at once."""

    def open_carts_of(self, profile_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """``latest_open_cart`` for many profiles at once."""

    def update_rows(self, kind: str, rows: list[dict[str, Any]]) -> None:
        """Update many rows of ``kind`` by id."""

    def update_runs(self, rows: list[dict[str, Any]]) -> None:
        """``update_run`` for many runs in one go (see ``update_rows``)."""

    def replace_waits(self, run_ids: Iterable[str], rows: list[dict[str, Any]]) -> None:
        """Remove the event waits of ``run_ids``, then add ``rows`` (run_id, profile_id, event_type, since)."""


class OutboxPort(Protocol):
    """The outbox: enqueued messages, leases, delivery attempts and outcomes."""

    def enqueue(self, row: dict[str, Any]) -> bool:
        """Add a message; False if one with the same idempotency key exists (never twice)."""

    def enqueue_many(self, rows: list[dict[str, Any]]) -> None:
        """:meth:`enqueue` for many messages."""

    def claim_outbox(self, now: datetime, limit: int, lease: timedelta) -> list[dict[str, Any]]:
        """Pending messages due now, and sending ones whose lease ran out (a worker died mid-send)."""

    def renew_lease(self, message_id: str, held: datetime, until: datetime) -> bool:
        """Extend a lease only if it is still the one this worker holds (compare-and-set on the lease time)."""

    def renew_leases(self, held: list[tuple[str, datetime]], until: datetime) -> set[str]:
        """:meth:`renew_lease` for many messages, given as (id, lease held)."""

    def record_attempts(self, rows: list[dict[str, Any]]) -> None:
        """Add delivery attempts (one statement for all; every row has the same keys)."""

    def finish_messages(self, done: list[dict[str, Any]]) -> None:
        """Record the outcome of many sends in one statement."""

    def finish_held_message(self, done: dict[str, Any], held: datetime, *, event_pending: bool = False) -> bool:
        """Record one send's outcome only while this worker holds the lease ``held`` (compare-and-set)."""

    def messages_with_pending_events(self, limit: int) -> list[dict[str, Any]]:
        """Sent messages whose ``message_sent`` event is not stored yet, locked for this transaction."""

    def clear_pending_events(self, message_ids: list[str]) -> None:
        """Their ``message_sent`` events are stored (in this transaction)."""

    def get_message(self, message_id: str) -> dict[str, Any] | None:
        """The outbox message by id; None if unknown."""

    def messages_of_run(self, run_id: str) -> list[dict[str, Any]]:
        """The run's messages, oldest first."""

    def attempts_of(self, message_id: str) -> list[dict[str, Any]]:
        """The message's delivery attempts, in order."""

    def attempts_of_messages(self, message_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """``attempts_of`` for many messages at once (one query per 500)."""

    def next_outbox_at(self) -> datetime | None:
        """When the next pending or leased message is due; None if none."""

    def outbox_counts(self) -> dict[str, int]:
        """Messages per status."""


class MessagesPort(Protocol):
    """Sent messages as the API reads them, suppressions and stored settings (meta)."""

    def message_by_provider_id(self, provider_id: str) -> dict[str, Any] | None:
        """The message a provider knows by this id; None if unknown."""

    def list_messages(self, *, profile_id: str | None = None, flow_id: str | None = None,
                      status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Messages, optionally of one profile, flow or status, newest first."""

    def update_message(self, message_id: str, **values: Any) -> None:
        """Set these columns of the message."""

    def suppress(self, channel: str, address: str, reason: str, now: datetime, message_id: str | None = None) -> None:
        """Suppress an address on a channel (idempotent)."""

    def suppression(self, channel: str, address: str) -> str | None:
        """The reason this address is suppressed on this channel; None if not."""

    def suppressions_of(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """``suppression`` for many (channel, address) pairs at once, one query per 500 addresses."""

    def meta_value(self, key: str, default_factory: Any = None) -> str | None:
        """The stored value; with ``default_factory``, create it once (race-safe) and return it."""


class KeysPort(Protocol):
    """API keys."""

    def insert_key(self, row: dict[str, Any]) -> None:
        """Insert an API key row."""

    def key_by_hash(self, secret_hash: str) -> dict[str, Any] | None:
        """The unrevoked API key with this secret hash; None if none."""

    def list_keys(self) -> list[dict[str, Any]]:
        """Every API key, oldest first."""

    def revoke_key(self, key_id: str, now: datetime) -> bool:
        """Revoke an API key; False if unknown or already revoked."""


class BatchPort(Protocol):
    """Reads and writes of many rows at once, for ingest's batches (see ``write_behind``)."""

    def identity_owners(self, idents: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Profile id owning each (kind, value) that has one."""

    def identities_of_profiles(self, ids: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """Profile id -> its (kind, value) identities, for many profiles."""

    def carts_for(self, cart_ids: Iterable[str], profile_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Carts with these ids, and every open cart of these profiles."""

    def orders_for(self, order_ids: Iterable[str], profile_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Orders with these ids, and every order of these profiles."""

    def insert_orders(self, rows: list[dict[str, Any]]) -> None:
        """Insert orders whose ids were looked up in this transaction."""

    def products_with_stock(self, ids: Iterable[str]) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]], int]]:
        """(product row, its variants ordered by id, total stock) for each product that exists."""

    def entries_of_profiles(self, ids: Iterable[str], flow_ids: Iterable[str]) -> dict[tuple[str, str], dict[str, Any]]:
        """Entries of these flows by these profiles, keyed by (flow_id, profile_id)."""

    def active_keys_of_profiles(self, ids: Iterable[str]) -> set[str]:
        """The active-run keys held by runs of these profiles."""

    def waiting_profiles(self, ids: Iterable[str]) -> set[tuple[str, str]]:
        """(profile_id, event_type) pairs some run waits for."""

    def insert_profiles(self, rows: list[dict[str, Any]]) -> None:
        """Insert new profile rows in one round."""

    def insert_identities(self, rows: list[dict[str, Any]]) -> None:
        """Insert identities (kind, value, profile_id, created_at); one owned meanwhile raises LostRace."""

    def insert_events(self, rows: list[dict[str, Any]]) -> None:
        """Insert events whose idempotency keys were checked in this transaction."""

    def insert_carts(self, rows: list[dict[str, Any]]) -> None:
        """Insert carts whose ids were looked up in this transaction."""

    def touch_active_many(self, rows: list[dict[str, Any]]) -> None:
        """Move ``last_active_at`` of many profiles (rows of id, at) forward only."""

    def create_runs(self, rows: list[dict[str, Any]]) -> None:
        """Insert runs whose active keys were checked in this transaction."""

    def record_entries(self, rows: list[dict[str, Any]]) -> None:
        """Count entries (rows of flow_id, profile_id, at): one more each, last entered at ``at``."""


class DatesPort(Protocol):
    """Date triggers: each profile's next fire time per date flow, claimed like waits."""

    def set_date_schedule(self, flow_id: str, version: int, now: datetime) -> bool:
        """Make ``flow_id`` a live date flow at ``version``."""

    def advance_backfill(self, flow_id: str, after: str | None, now: datetime) -> None:
        """The backfill has reached profile id ``after``."""

    def live_date_flows(self) -> list[tuple[str, int]]:
        """(flow id, current version) of every live date-triggered flow."""

    def claim_profile_changes(self, limit: int) -> list[str]:
        """Up to ``limit`` queued changed profile ids, taken off the queue in this transaction."""

    def has_profile_changes(self) -> bool:
        """Whether any profile change waits to be claimed for date triggers."""

    def set_date_fires(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace fire rows (flow_id, profile_id, next_fire_at, occurrence_key)."""

    def delete_date_fires(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Remove the fire rows of these (flow id, profile id) pairs."""

    def date_fires_of(self, profile_id: str) -> list[dict[str, Any]]:
        """The fire rows of one profile, by flow id."""

    def last_occurrences(self, profile_ids: Iterable[str]) -> dict[tuple[str, str], str]:
        """(flow id, profile id) -> the occurrence last handled (fired or skipped), for these profiles."""

    def claim_due_date_fires(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Due fire rows of live date flows, earliest first, locked for this transaction."""

    def update_date_fires(self, rows: list[dict[str, Any]]) -> None:
        """Update fire rows by (flow_id, profile_id) after they fired or were skipped."""

    def next_date_fire_at(self) -> datetime | None:
        """The earliest fire time of a live date flow."""


class TransactionPort(Protocol):
    """The transaction itself: savepoints, a liveness probe, notifications and the batch view."""

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested unit of work: an exception inside rolls back only its writes, then propagates."""

    def ping(self) -> None:
        """One trivial statement: raises if the database does not answer."""

    def notify_after_commit(self, channel: str) -> None:
        """Wake listeners of ``channel`` in other processes once this transaction commits."""

    def write_behind(self) -> WriteBehind:
        """This transaction seen through a batch cache that writes at ``flush`` (ingest's batches)."""


class StoreTx(ProfilesPort, EventsPort, CommercePort, FlowsPort, RunsPort, OutboxPort, MessagesPort, KeysPort,
              BatchPort, DatesPort, SegmentFlowsPort, SegmentStatsPort, ProfileDataPort, MembershipPort,
              SegmentsPort, CampaignsPort, TransactionPort, Protocol):
    """One transaction: a transaction offers every port."""


class WriteBehind(StoreTx, Protocol):
    """A transaction whose operations are answered from rows fetched for a whole batch, with the
    batch's writes kept in memory until ``flush`` (see ``storeflow.store.sql.write_behind``)."""

    stale: bool
    flushes: int

    def prefetch(self, keys: PrefetchKeys) -> None:
        """Load what the coming events will ask about: a few statements for the whole batch."""

    def flush(self) -> None:
        """Write the pending rows, one executemany per table; the cache stays valid."""

    def invalidate(self) -> None:
        """Forget every cached row; ``stale`` tells the caller to prefetch again."""


#: Every port, in the order ``StoreTx`` combines them (tests enumerate their operations from here).
PORTS: tuple[type, ...] = (ProfilesPort, EventsPort, CommercePort, FlowsPort, RunsPort, OutboxPort, MessagesPort,
                           KeysPort, BatchPort, DatesPort, SegmentFlowsPort, SegmentStatsPort, ProfileDataPort,
                           MembershipPort, SegmentsPort, CampaignsPort, TransactionPort)


def operations(port: type) -> list[str]:
    """The operations a port declares (its own public methods)."""
    return sorted(name for name, value in vars(port).items() if callable(value) and not name.startswith("_"))
