"""Two engines sending one unthrottled campaign side by side on PostgreSQL claim different
recipients (SKIP LOCKED): every recipient is queued exactly once, and both take part."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

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


def test_the_throttle_holds_across_engines(pg_url: str) -> None:
    clock = VirtualClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    settings = Settings(database_url=pg_url, signing_secret="s" * 32, campaign_batch_size=4)
    engines = [Storeflow(settings, clock=clock, channels=ChannelRegistry([])) for _ in range(2)]
    try:
        sf = engines[0]
        results = sf.ingest([{"type": "identified", "email": f"t{i}@example.com", "id": f"t-{i}",
                              "profile": {"consent": {"email": "subscribed"}}} for i in range(25)])
        add_segment(sf.store, "all", [str(r.profile_id) for r in results], clock.now())
        sf.campaigns.create(sf.campaigns.validate(
            "id: slow\nname: Slow\naudience: {include: [all]}\nthrottle: 10\n"
            "message: {channel: email, subject: Hi, text: Hi}\n", "s.yaml"))
        sf.campaigns.schedule("slow", now=True)

        def queued() -> int:
            with sf.store.read() as tx:
                q = campaign_recipients.select().where(campaign_recipients.c.campaign_id == "slow",
                                                       campaign_recipients.c.status == "queued")
                return len(sql_connection(tx).execute(q).all())

        errors: list[BaseException] = []

        def send(n: int) -> None:
            try:
                idle = 0
                while idle < 3:  # three empty ticks in a row: nothing more this minute
                    idle = 0 if engines[n].campaign_sender.tick() else idle + 1
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        for minute in range(3):
            threads = [threading.Thread(target=send, args=(n,)) for n in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert errors == []
            assert queued() == min(10 * (minute + 1), 25)
            clock.advance(timedelta(minutes=1))
    finally:
        for engine in engines:
            engine.close()
