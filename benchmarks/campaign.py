"""A campaign to 180,000 recipients: the audience frozen and every recipient queued, then sent.

Seeding: N subscribed profiles with email (set-based SQL) and the segment ``subscribers``
(``profile.consent.email eq subscribed``), computed in full in this process
(``campaign audience``). A real worker process (``storeflow serve --worker-only``: the campaign
sender and the dispatcher in its drain loop, as the app runs them) sends over SMTP to a local
aiosmtpd server in its own process (``benchmarks/email.py``). This process creates the campaign
(an email to the segment, no throttle, Smart Sending at its default) and schedules it now.

- ``campaign``: from ``schedule now`` until this process sees the audience frozen and no recipient
  pending (each queued in the outbox or skipped with its reason), polling every 0.25 s; target
  <= 30 s. (The stored ``frozen_at`` and recipients' ``updated_at`` are the sender's clock readings
  at the start of its tick, so they come before the commits; they are kept in the details.) The worker's RSS is
  sampled every 0.25 s throughout (memory flat).
- ``campaign send``: messages sent and recorded, over the time between the first and the last
  ``sent_at`` (sending starts with the first queued batch and goes on alongside the queueing); the
  worker is watched until ``send_window_s`` after the queueing ended (or all are sent). The SMTP
  server must have received every message recorded as sent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, text

from benchmarks.common import BenchmarkError, Figure, open_storeflow
from benchmarks.email import SmtpSink
from benchmarks.latency import worker_process
from benchmarks.segment_data import Dialect
from benchmarks.targets import Target
from benchmarks.timers import rss_mb
from storeflow.clock import SystemClock
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import campaign_recipients, campaigns, outbox, segment_members

SEGMENT = {"id": "subscribers", "name": "Email subscribers",
           "condition": {"field": "profile.consent.email", "eq": "subscribed"}}
CAMPAIGN = """
id: bench-newsletter
name: December newsletter
audience: {include: [subscribers]}
message:
  channel: email
  subject: "{{ profile.first_name or 'Hi' }}, what's new in December"
  html: |
    <html><body><h1>Hi {{ profile.first_name or 'there' }},</h1>
    <p>Our December picks are in. <a href="https://shop.example/december">See them</a>.</p>
    <p style="font-size:12px"><a href="{{ links.unsubscribe }}">Unsubscribe</a></p></body></html>
  text: "Hi {{ profile.first_name or 'there' }}, our December picks: https://shop.example/december"
"""
ZONES = ("Asia/Jakarta", "Asia/Makassar", "America/Sao_Paulo", "America/New_York")
NAMES = ("Budi", "Siti", "Ana", "Emily", "Dewi", "Rafael")


@dataclass(frozen=True)
class Sizes:
    recipients: int
    send_window_s: float  # how long sending is watched after the last recipient is queued
    cap_s: float  # give up on queueing after this long


QUICK = Sizes(recipients=300, send_window_s=20.0, cap_s=60.0)
FULL = Sizes(recipients=180_000, send_window_s=30.0, cap_s=240.0)


def run(target: Target, quick: bool) -> list[Figure]:
    sizes = QUICK if quick else FULL
    with target.database() as url:
        d = campaign(url, sizes)
    rss = d["worker_rss_mb"]
    flat = f"worker RSS {rss['before']} -> max {rss['max']} MB (end {rss['end']})"
    bound = "≥ " if d["capped"] else ""
    queued = Figure(target.name, "campaign", d["audience"], "recipients", d["freeze_queue_s"], d,
                    note=(f"{d['audience']:,} recipients frozen in {d['frozen_after_s'] or 0:.1f} s and all queued "
                          f"({d['queued']:,}) or skipped ({d['skipped']:,}) {bound}{d['freeze_queue_s']:.1f} s after "
                          f"scheduling (target ≤ 30 s)"
                          + (f", {d['pending_at_cap']:,} still pending then" if d["capped"] else "")
                          + f"; {flat}; sending alongside"))
    send = Figure(target.name, "campaign send", d["sent_total"], "messages", d["sending_s"], d,
                  note=(f"{d['sent_total']:,} of {d['queued']:,} sent over SMTP and recorded between the first and "
                        f"the last send ({d['smtp_received']:,} received by the server; watched until "
                        f"{sizes.send_window_s:.0f} s after queueing ended); dispatcher batches of "
                        f"{d['dispatch_batch_size']}, {d['dispatch_concurrency']} concurrent sends"))
    audience = Figure(target.name, "campaign audience", d["audience"], "members", d["audience_compute_s"], d,
                      note=f"segment '{SEGMENT['id']}' computed in full over {sizes.recipients:,} profiles")
    return [queued, send, audience]


def seed(engine: Engine, n: int) -> None:
    """``n`` subscribed profiles with an email, a first name and a time zone."""
    d = Dialect(engine.dialect.name)
    names = "CASE i % " + str(len(NAMES)) + " " + " ".join(
        f"WHEN {k} THEN '{name}'" for k, name in enumerate(NAMES)) + " END"
    zones = "CASE i % " + str(len(ZONES)) + " " + " ".join(
        f"WHEN {k} THEN '{zone}'" for k, zone in enumerate(ZONES)) + " END"
    props = d.json(f"'{{\"first_name\":\"' || {names} || '\"}}'")
    head, numbers = ("", f"generate_series(1, {n}) AS s(i)") if d.pg else (
        f"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) ", "c")
    created = d.ts(str(int(time.time()) - 200 * 86_400))
    with engine.begin() as conn:
        conn.execute(text(
            f"{head}INSERT INTO profiles (id, email, locale, timezone, properties, tags, consent_email, consent_sms,"
            f" consent_push, orders_count, total_spent, created_at, updated_at) SELECT {d.hex_id('prof_', 'i')},"
            f" 'c' || i || '@bench.example', 'id_ID', {zones}, {props}, {d.json(chr(39) + '[]' + chr(39))},"
            f" 'subscribed', 'never_asked', 'never_asked', 0, {d.json(chr(39) + '{}' + chr(39))}, {created},"
            f" {created} FROM {numbers}"))
    if d.pg:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE profiles"))


def _pending(sf: Any, campaign_id: str) -> tuple[bool, int]:
    """Whether the audience is frozen, and how many recipients are still pending (an index range)."""
    with sf.store.read() as tx:
        conn = sql_connection(tx)
        frozen = conn.execute(select(campaigns.c.frozen_at).where(campaigns.c.id == campaign_id)).scalar_one()
        pending = conn.execute(select(func.count()).select_from(campaign_recipients).where(
            campaign_recipients.c.campaign_id == campaign_id, campaign_recipients.c.status == "pending")).scalar_one()
    return frozen is not None, int(pending)


def _counts(sf: Any, campaign_id: str) -> dict[str, Any]:
    """Recipients by status, messages sent, and the stored instants: frozen, last recipient handled,
    first and last message sent."""
    with sf.store.read() as tx:
        conn = sql_connection(tx)
        rows = conn.execute(select(campaign_recipients.c.status, func.count(),
                                   func.max(campaign_recipients.c.updated_at))
                            .where(campaign_recipients.c.campaign_id == campaign_id)
                            .group_by(campaign_recipients.c.status)).all()
        sent, first_sent, last_sent = conn.execute(
            select(func.count(), func.min(outbox.c.sent_at), func.max(outbox.c.sent_at))
            .where(outbox.c.campaign_id == campaign_id, outbox.c.status == "sent")).one()
        frozen = conn.execute(select(campaigns.c.frozen_at).where(campaigns.c.id == campaign_id)).scalar_one()
    out: dict[str, Any] = {str(status): int(n) for status, n, _ in rows}
    handled = [at for status, _, at in rows if status != "pending" and at is not None]
    out.update(sent=int(sent), frozen_at=frozen, handled_at=max(handled) if handled else None,
               first_sent=first_sent, last_sent=last_sent)
    return out


def _sent(sf: Any, campaign_id: str) -> int:
    with sf.store.read() as tx:
        return int(sql_connection(tx).execute(select(func.count()).select_from(outbox).where(
            outbox.c.campaign_id == campaign_id, outbox.c.status == "sent")).scalar_one())


def campaign(url: str, sizes: Sizes) -> dict[str, Any]:
    with SmtpSink() as smtp:
        settings = {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "signing_secret": "c" * 32}
        sf = open_storeflow(url, SystemClock(), **settings)
        try:
            engine: Engine = getattr(sf.store, "engine")  # noqa: B009 - SqlStore has it, the Store port does not
            started = time.perf_counter()
            seed(engine, sizes.recipients)
            seed_s = time.perf_counter() - started
            sf.segments.apply(sf.segments.load(SEGMENT, source="campaign"))
            started = time.perf_counter()
            sf.membership.tick()
            compute_s = time.perf_counter() - started
            with sf.store.read() as tx:
                members = sql_connection(tx).execute(select(func.count()).select_from(segment_members)).scalar_one()
            if members != sizes.recipients:
                raise BenchmarkError(f"campaign: {members} members in {SEGMENT['id']}, not {sizes.recipients}")
            defn = sf.campaigns.validate(CAMPAIGN, "bench-newsletter.yaml")
            sf.campaigns.create(defn)
            env = {"STOREFLOW_SMTP_HOST": "127.0.0.1", "STOREFLOW_SMTP_PORT": str(smtp.port),
                   "STOREFLOW_SIGNING_SECRET": "c" * 32, "STOREFLOW_WORKER_POLL_INTERVAL_S": "0.05"}
            samples: list[float] = []
            with worker_process(url, env) as worker:
                before = rss_mb(worker.pid)
                scheduled = time.time()
                sf.campaigns.schedule(defn.id, now=True)
                capped = False
                seen_frozen: float | None = None
                while True:  # until frozen and nobody pending, as another process sees it (every 0.25 s)
                    frozen, pending = _pending(sf, defn.id)
                    if frozen and seen_frozen is None:
                        seen_frozen = time.time() - scheduled
                    if frozen and not pending:
                        seen_done = time.time() - scheduled
                        break
                    if time.time() - scheduled > sizes.cap_s:
                        capped = True
                        break
                    _sample(samples, worker.pid)
                    time.sleep(0.25)
                window_started = time.perf_counter()
                counts = _counts(sf, defn.id)
                to_send, sent_at_queued = counts.get("queued", 0), counts["sent"]
                while time.perf_counter() - window_started < sizes.send_window_s:
                    _sample(samples, worker.pid)
                    if _sent(sf, defn.id) >= to_send:
                        break
                    time.sleep(1.0)
                window_s = time.perf_counter() - window_started
                counts = _counts(sf, defn.id)
                end = rss_mb(worker.pid)
            received = smtp.stop()
            report = sf.campaigns.get(defn.id)
        finally:
            sf.close()
    if received.get("messages", 0) < counts["sent"]:
        raise BenchmarkError(f"campaign: {counts['sent']} recorded as sent, the server received {received}")
    frozen_at, handled_at = counts["frozen_at"], counts["handled_at"]
    first_sent, last_sent = counts["first_sent"], counts["last_sent"]
    frozen_after = seen_frozen
    queued_after = sizes.cap_s if capped else seen_done
    return {
        "audience": counts.get("queued", 0) + counts.get("skipped", 0) + counts.get("pending", 0),
        "queued": counts.get("queued", 0), "skipped": counts.get("skipped", 0),
        "pending_at_cap": counts.get("pending", 0) if capped else 0, "capped": capped,
        "frozen_after_s": round(frozen_after, 3) if frozen_after is not None else None,
        "freeze_queue_s": round(queued_after, 3), "sent_when_queued": sent_at_queued,
        "stored_frozen_at_s": round(frozen_at.timestamp() - scheduled, 3) if frozen_at else None,
        "stored_last_handled_at_s": round(handled_at.timestamp() - scheduled, 3) if handled_at else None,
        "observed_every_s": 0.25,
        "watched_after_queueing_s": round(window_s, 3),
        "sent_total": counts["sent"],
        "sending_s": round((last_sent - first_sent).total_seconds(), 3) if first_sent and last_sent else 0.0,
        "smtp_received": received.get("messages", 0),
        "smtp_server_cpu_seconds": round(received.get("cpu_seconds", 0.0), 3),
        "worker_rss_mb": {"before": before, "max": max(samples) if samples else None, "end": end,
                          "samples": samples[:: max(1, len(samples) // 40)]},
        "seed_s": round(seed_s, 3), "audience_compute_s": round(compute_s, 3),
        "dispatch_batch_size": sf.settings.dispatch_batch_size,
        "dispatch_concurrency": sf.settings.dispatch_concurrency,
        "campaign_batch_size": sf.settings.campaign_batch_size, "report": report.get("report", report),
    }


def _sample(samples: list[float], pid: int) -> None:
    rss = rss_mb(pid)
    if rss is not None:
        samples.append(rss)
