"""``Storeflow``: the engine assembled from its parts. The API, the CLI, the demo and the tests all
go through it.

    sf = Storeflow(Settings(database_url="sqlite:///store.db"), clock=VirtualClock())
    sf.ingest([{"type": "checkout_started", "email": "ana@example.com", "properties": {...}}])
    sf.run_until(sf.clock.now() + timedelta(days=30))   # a month of waits, in seconds
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storeflow.campaigns.sender import CampaignSender
from storeflow.campaigns.service import CampaignService
from storeflow.channels.base import ChannelRegistry
from storeflow.channels.retry import RetryPolicy
from storeflow.channels.webhook import WebhookChannel
from storeflow.clock import Clock, SystemClock, VirtualClock
from storeflow.engine.dispatcher import Dispatcher
from storeflow.engine.flowset import FlowSet
from storeflow.engine.ingest import Ingestor, IngestResult
from storeflow.engine.scheduler import Scheduler
from storeflow.engine.worker import Worker
from storeflow.flows.destinations import DestinationPolicy
from storeflow.model.events import EventIn
from storeflow.segments.membership import SegmentEngine
from storeflow.segments.segmentset import SegmentSet
from storeflow.segments.stats import StatsRefresher
from storeflow.service.flows import FlowService
from storeflow.service.keys import KeyService
from storeflow.service.messages import MessageService
from storeflow.service.segments import SegmentService
from storeflow.service.views import Views
from storeflow.settings import Settings
from storeflow.signing import Signer
from storeflow.store.base import Store
from storeflow.store.factory import open_store
from storeflow.store.sql.messages_ops import new_secret

log = logging.getLogger("storeflow")


@dataclass
class DrainStats:
    runs: int = 0
    steps: int = 0
    messages: int = 0
    scheduled: int = 0
    rounds: int = 0
    campaigns: int = 0  # campaign recipients frozen or handled
    backfilling: bool = False  # a date flow's fire times are still being filled in
    segments: int = 0  # segment membership changes (entries and exits)

    @property
    def idle(self) -> bool:
        return not (self.runs or self.messages or self.scheduled or self.segments or self.campaigns or self.backfilling)

    def add(self, other: DrainStats) -> None:
        self.runs += other.runs
        self.steps += other.steps
        self.messages += other.messages
        self.scheduled += other.scheduled
        self.segments += other.segments
        self.campaigns += other.campaigns


def default_channels(settings: Settings) -> ChannelRegistry:
    """Webhook, email (SMTP), Slack and, when a provider is configured, SMS."""
    from storeflow.channels.email import EmailChannel
    from storeflow.channels.slack import SlackChannel
    from storeflow.channels.sms import SmsChannel
    from storeflow.channels.smtp_pool import SmtpConfig

    secrets = {name: s.get_secret_value() for name, s in settings.webhook_secrets.items()}
    default = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    channels: list[Any] = [
        WebhookChannel(secrets, default, allow_private=settings.webhook_allow_private,
                       allowed_hosts=settings.webhook_allowed_hosts),
        EmailChannel(SmtpConfig.from_settings(settings), default_from=settings.email_from),
        SlackChannel(settings.slack_webhook_url.get_secret_value() if settings.slack_webhook_url else None,
                     allow_private=settings.webhook_allow_private, allowed_hosts=settings.webhook_allowed_hosts),
    ]
    sms = SmsChannel.from_settings(settings)
    if sms is not None:
        channels.append(sms)
    return ChannelRegistry(channels)


class Storeflow:
    def __init__(self, settings: Settings | None = None, *, clock: Clock | None = None, store: Store | None = None,
                 channels: ChannelRegistry | None = None, migrate: bool = True,
                 retry_policy: RetryPolicy | None = None) -> None:
        self.settings = settings or Settings()
        self.clock: Clock = clock or SystemClock()
        # Channels first: a configuration they refuse (ConfigError) leaves no store open behind it.
        self.channels = channels or default_channels(self.settings)
        self.store = store or open_store(self.settings.database_url)
        if migrate:
            self.store.migrate()
        tz = self.settings.tz
        self.signer = Signer(self._signing_secret())
        self.flowset = FlowSet()
        self._wake = threading.Event()
        self.segmentset = SegmentSet()
        self.ingestor = Ingestor(self.store, self.clock, self.settings, self.flowset, on_wake=self._wake.set,
                                 segments=self.segmentset)
        self.segment_stats = StatsRefresher(  # daily, while a live segment uses rfm or top
            self.store, self.clock, self.settings.currency,
            needed=lambda: any(s.uses_stats for s in self.segmentset.ordered()))
        self.membership = SegmentEngine(self.store, self.clock, self.segmentset, self.ingestor, tz,
                                        on_wake=self._wake.set)
        self.worker = Worker(self.store, self.clock, self.flowset, store_tz=tz,
                             batch_size=self.settings.worker_batch_size,
                             max_attempts=self.settings.step_max_attempts,
                             messaging=(self.settings, self.signer), segments=self.segmentset)
        self.scheduler = Scheduler(self.store, self.clock, self.flowset, tz,
                                   grace=timedelta(seconds=self.settings.date_trigger_grace_s))
        self.dispatcher = Dispatcher(self.store, self.clock, self.channels, policy=retry_policy,
                                     lease=timedelta(seconds=self.settings.outbox_lease_s),
                                     batch_size=self.settings.dispatch_batch_size,
                                     concurrency=self.settings.dispatch_concurrency,
                                     on_events=lambda tx, evs: self.ingestor.ingest_in(tx, evs, "storeflow")[1],
                                     on_wake=self._wake.set)
        self.campaign_sender = CampaignSender(self.store, self.clock, self.settings, self.signer,
                                              batch_size=self.settings.campaign_batch_size)
        self.campaigns = CampaignService(self.store, self.clock, self.settings, self.signer, on_wake=self._wake.set)
        self.flows = FlowService(self.store, self.clock, self.flowset, tz,
                                 DestinationPolicy.from_settings(self.settings))
        self.keys = KeyService(self.store, self.clock)
        self.views = Views(self.store)
        self.segments = SegmentService(self.store, self.clock, tz, on_wake=self._wake.set)
        self.messages = MessageService(self.store, self.clock, self.signer, lambda evs: self.ingest(evs, "storeflow"))

    def _signing_secret(self) -> str:
        """The configured secret, else one generated once and kept in the database, so links
        signed by one process verify in every other."""
        if self.settings.signing_secret is not None:
            return self.settings.signing_secret.get_secret_value()
        with self.store.transaction() as tx:
            value = tx.meta_value("signing_secret", new_secret)
        assert value is not None
        return value

    # -- data in -------------------------------------------------------------------------------
    def ingest(self, items: Sequence[Mapping[str, Any] | EventIn], source: str = "api") -> list[IngestResult]:
        return self.ingestor.ingest(items, source)

    def identify(self, fields: Mapping[str, Any], source: str = "api") -> IngestResult:
        """Identify or upsert a profile: an ``identified`` event carrying identities and profile fields."""
        item = {"type": "identified", **fields}
        return self.ingest([item], source)[0]

    # -- execution -----------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load and parse the live flows and segments now, so the first request or batch after
        start-up does not pay for it (with dozens of flows that is most of a second)."""
        with self.store.read() as tx:
            self.flowset.refresh(tx)
            self.segmentset.refresh(tx)

    def drain_once(self) -> DrainStats:
        stats = DrainStats()
        self.segment_stats.tick()
        stats.segments = self.membership.tick()  # first: the segment events it ingests start runs
        stats.scheduled = self.scheduler.tick()
        stats.backfilling = self.scheduler.backfilling or self.membership.pending
        batch = self.worker.run_batch()
        stats.runs, stats.steps = batch.claimed, batch.steps
        stats.campaigns = self.campaign_sender.tick()
        stats.messages = self.dispatcher.run_batch()
        return stats

    def drain(self, max_rounds: int = 100_000) -> DrainStats:
        """Process everything due at the clock's current time, until idle."""
        total = DrainStats()
        for _ in range(max_rounds):
            s = self.drain_once()
            total.add(s)
            total.rounds += 1
            if s.idle:
                break
        return total

    def next_due_at(self) -> datetime | None:
        times = [t for t in (self.worker.next_due_at(), self.scheduler.next_at(), self.dispatcher.next_at(),
                             self.membership.next_at(),
                             self.campaign_sender.next_at()) if t]
        return min(times) if times else None

    def run_until(self, until: datetime) -> DrainStats:
        """Virtual time: jump from one due moment to the next up to ``until``, draining at each."""
        if not isinstance(self.clock, VirtualClock):
            raise TypeError("run_until needs a VirtualClock")
        total = self.drain()
        while True:
            nxt = self.next_due_at()
            if nxt is None or nxt > until:
                break
            if nxt > self.clock.now():
                self.clock.set(nxt)
            total.add(self.drain())
        if until > self.clock.now():
            self.clock.set(until)
            total.add(self.drain())
        return total

    def serve_worker(self, stop: threading.Event) -> None:
        """The worker loop for ``storeflow serve``: wakes at once on ingest (and on NOTIFY from other
        processes on PostgreSQL), otherwise at the next due time or the poll interval."""
        listener = self._start_listener(stop)
        poll = self.settings.worker_poll_interval_s if listener is None else 5.0
        while not stop.is_set():
            # Clear before looking for work: a wake-up that arrives during the drain stays set,
            # so the wait below returns at once instead of sleeping through it.
            self._wake.clear()
            try:
                stats = self.drain_once()
            except Exception:  # keep serving; the failing batch rolled back
                log.exception("worker batch failed")
                stop.wait(1.0)
                continue
            if not stats.idle:
                continue
            nxt = self.next_due_at()
            timeout = poll
            if nxt is not None:
                timeout = max(0.0, min(poll, (nxt - self.clock.now()).total_seconds()))
            self.clock.wait(self._wake, timeout)

    def _start_listener(self, stop: threading.Event) -> threading.Thread | None:
        stream = self.store.listen("storeflow_runs", timeout=0.5)
        if stream is None:
            return None

        def loop() -> None:
            try:
                for got in stream:
                    if got:
                        self._wake.set()
                    if stop.is_set():
                        return
            except Exception:
                log.exception("LISTEN loop stopped; falling back to polling")

        thread = threading.Thread(target=loop, name="storeflow-listen", daemon=True)
        thread.start()
        return thread

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self.dispatcher.close()
        for channel in self.channels:
            close = getattr(channel, "close", None)
            if close:
                close()
        self.store.close()
