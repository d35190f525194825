"""Two engines sending one unthrottled campaign side by side on PostgreSQL claim different
recipients (SKIP LOCKED): every recipient is queued exactly once, and both take part."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

from tests.integration.campaigns.members import add_segment

from storeflow.app import Storeflow
from storeflow.channels.base import ChannelRegistry
from storeflow.clock import VirtualClock
from storeflow.settings import Settings
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import campaign_recipients, outbox

PEOPLE = 400


def test_two_engines_share_a_campaign_and_queue_each_recipient_once(pg_url: str) -> None:
    clock = VirtualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    settings = Settings(database_url=pg_url, signing_secret="s" * 32, campaign_batch_size=20)
    engines = [Storeflow(settings, clock=clock, channels=ChannelRegistry([])) for _ in range(2)]
    try:
        sf = engines[0]
        results = sf.ingest([{"type": "identified", "email": f"p{i}@example.com", "id": f"p-{i}",
                              "profile": {"consent": {"email": "subscribed"}}} for i in range(PEOPLE)])
        add_segment(sf.store, "all", [str(r.profile_id) for r in results], clock.now())
        sf.campaigns.create(sf.campaigns.validate(
            "id: both\nname: Both\naudience: {include: [all]}\nmessage: {channel: email, subject: Hi, text: Hi}\n",
            "b.yaml"))
        sf.campaigns.schedule("both", now=True)
        handled = Counter[int]()
        errors: list[BaseException] = []
        start = threading.Barrier(2)

        def send(n: int) -> None:
            try:
                start.wait()
                while engines[n].campaigns.get("both")["status"] != "sent":
                    handled[n] += engines[n].campaign_sender.tick()
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert all(handled[n] > 0 for n in range(2)), handled
        with sf.store.read() as tx:
            conn = sql_connection(tx)
            statuses = Counter(r[0] for r in conn.execute(
                campaign_recipients.select().with_only_columns(campaign_recipients.c.status)
                .where(campaign_recipients.c.campaign_id == "both")))
            keys = Counter(r[0] for r in conn.execute(
                outbox.select().with_only_columns(outbox.c.idempotency_key).where(outbox.c.campaign_id == "both")))
        assert statuses == {"queued": PEOPLE}
        assert len(keys) == PEOPLE and set(keys.values()) == {1}
    finally:
        for engine in engines:
            engine.close()
