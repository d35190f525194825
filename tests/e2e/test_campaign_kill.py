"""A campaign process killed with SIGKILL in the middle of sending resumes where it stopped, and
nobody is messaged twice.

The child is a real ``storeflow serve`` loop (``serve_worker``) sending a campaign to 60 people,
10 per batch, by email to a real local SMTP server. Its third batch pauses inside its transaction,
after the batch's messages are enqueued and its recipients marked queued but before the commit,
and says so: the kill lands there, from observed progress, on any machine. That batch rolls back
(nothing of it was sent), the first two stay done, and a second process sends the remaining 40.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.campaigns.members import add_segment

from storeflow.app import Storeflow
from storeflow.clock import SystemClock
from storeflow.settings import Settings
from storeflow.simulate.mailbox import Mailbox
from storeflow.store.sql.tx import sql_connection
from storeflow.store.tables import campaign_recipients, outbox

pytestmark = pytest.mark.slow

PEOPLE = 60
BATCH = 10
PAUSE_AT = 3

CHILD = r"""
import json, sys, threading
from storeflow.app import Storeflow
from storeflow.clock import SystemClock
from storeflow.settings import Settings

config = json.loads(sys.argv[1])
pause_at = config.pop("pause_at_batch", None)
sf = Storeflow(Settings(**config), clock=SystemClock())
if pause_at is not None:
    import storeflow.campaigns.sender as sender_module

    queue_batch, batches = sender_module.CampaignSender._queue, [0]

    def pausing_queue(self, tx, defn, claimed, now):
        queue_batch(self, tx, defn, claimed, now)  # enqueued and marked queued: not committed yet
        batches[0] += 1
        if batches[0] == pause_at:
            print(f"paused in batch {pause_at}", flush=True)
            threading.Event().wait()

    sender_module.CampaignSender._queue = pausing_queue
print("ready", flush=True)
sf.serve_worker(threading.Event())
"""


class Child:
    """A child process whose stdout lines arrive on a queue."""

    def __init__(self, config: dict[str, Any], cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFLOW_")}
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(config)], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    pytest.fail(f"the child exited with {self.proc.returncode}: {self.seen}")
                continue
            self.seen.append(line)
            if text in line:
                return
        pytest.fail(f"no {text!r} from the child within {timeout:.0f}s: {self.seen[-20:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def children(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Child]]:
    started: list[Child] = []

    def start(config: dict[str, Any]) -> Child:
        child = Child(config, tmp_path)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()
        if child.proc.stdout:
            child.proc.stdout.close()


def _wait(check: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f}s: {what()}")
        time.sleep(0.05)


def test_a_campaign_killed_mid_send_resumes_and_messages_nobody_twice(
        db_url: str, tmp_path: Path, children: Callable[[dict[str, Any]], Child]) -> None:
    mailbox = Mailbox(tmp_path / "mail")
    mailbox.start()
    config: dict[str, Any] = {"database_url": db_url, "signing_secret": "s" * 32, "smtp_host": "127.0.0.1",
                              "smtp_port": mailbox.port, "campaign_batch_size": BATCH, "outbox_lease_s": 2}
    sf = Storeflow(Settings(**config), clock=SystemClock())
    try:
        results = sf.ingest([{"type": "identified", "email": f"p{i}@example.com", "id": f"p-{i}",
                              "profile": {"consent": {"email": "subscribed"}}} for i in range(PEOPLE)])
        add_segment(sf.store, "subscribers", [str(r.profile_id) for r in results], sf.clock.now())
        defn = sf.campaigns.validate("id: flash\nname: Flash sale\naudience: {include: [subscribers]}\n"
                                     "message: {channel: email, subject: Flash sale, text: '-30% today'}\n", "f.yaml")
        sf.campaigns.create(defn)
        sf.campaigns.schedule("flash", now=True)

        first = children({**config, "pause_at_batch": PAUSE_AT})
        first.wait_for(f"paused in batch {PAUSE_AT}", 60)
        first.kill()

        def recipients() -> Counter[str]:
            with sf.store.read() as tx:
                q = campaign_recipients.select().where(campaign_recipients.c.campaign_id == "flash")
                return Counter(r["status"] for r in sql_connection(tx).execute(q).mappings())

        def messages() -> list[dict[str, Any]]:
            with sf.store.read() as tx:
                q = outbox.select().where(outbox.c.campaign_id == "flash")
                return [dict(r) for r in sql_connection(tx).execute(q).mappings()]

        done_before = (PAUSE_AT - 1) * BATCH
        assert recipients() == {"queued": done_before, "pending": PEOPLE - done_before}  # batch 3 rolled back
        assert len(messages()) == done_before
        assert mailbox.count == done_before  # each earlier batch was dispatched before the next one

        second = children(config)
        _wait(lambda: Counter(m["status"] for m in messages()) == {"sent": PEOPLE}, 60,
              lambda: f"outbox {Counter(m['status'] for m in messages())}; {second.seen[-5:]}")
        _wait(lambda: sf.campaigns.get("flash")["status"] == "sent", 30, lambda: str(sf.campaigns.get("flash")))
        assert recipients() == {"queued": PEOPLE}
        keys = Counter(m["idempotency_key"] for m in messages())
        assert len(keys) == PEOPLE and set(keys.values()) == {1}
    finally:
        sf.close()
        mailbox.stop()
    delivered = Counter(p.name.split("-", 2)[2].removesuffix(".eml") for p in mailbox.files())
    assert delivered == Counter({f"p{i}@example.com": 1 for i in range(PEOPLE)})
