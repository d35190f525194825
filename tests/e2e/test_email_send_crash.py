"""A worker killed between sending an email and recording it never causes a second send.

The SMTP server stores the message and then holds its 250 reply; the test kills the worker with
SIGKILL in that window. SMTP has no idempotency key, so after the lease runs out the next worker
records the message as "delivery state unknown" instead of sending it again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from storeflow.app import Storeflow
from storeflow.clock import SystemClock
from storeflow.settings import Settings
from storeflow.simulate.mailbox import EphemeralController

FLOW = """
id: crash-mail
name: Crash mail
trigger: {event: checkout_started}
steps:
  - action: email
    subject: "Your cart"
    text: "Come back"
"""


class SlowInbox:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope.content)
        await asyncio.sleep(4)  # the message is here; the sender has not heard back yet
        return "250 OK"


def _worker(db_url: str, smtp_port: int) -> subprocess.Popen[str]:
    code = textwrap.dedent(f"""
        import threading
        from storeflow.app import Storeflow
        from storeflow.clock import SystemClock
        from storeflow.settings import Settings
        sf = Storeflow(Settings(database_url={db_url!r}, smtp_port={smtp_port}, outbox_lease_s=2,
                                signing_secret="s" * 32), clock=SystemClock())
        print("ready", flush=True)
        sf.serve_worker(threading.Event())
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _wait(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_killed_between_send_and_record_sends_once(db_url: str, tmp_path: Path) -> None:
    inbox = SlowInbox()
    controller = EphemeralController(inbox, hostname="127.0.0.1", port=0)
    controller.start()
    port = int(controller.port)
    sf = Storeflow(Settings(database_url=db_url, signing_secret="s" * 32), clock=SystemClock())
    procs: list[subprocess.Popen[str]] = []
    try:
        sf.flows.apply(sf.flows.validate(FLOW, "crash.yaml"), status="live")
        sf.ingest([{"type": "checkout_started", "email": "once@example.com", "id": "c1",
                    "properties": {"checkout_id": "c1"}}])
        procs.append(_worker(db_url, port))
        _wait(lambda: len(inbox.received) == 1, 20, "the SMTP server to receive the message")
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait(10)
        with sf.store.transaction() as tx:
            (message,) = tx.list_messages(flow_id="crash-mail")
        assert message["status"] == "sending"  # sent, never recorded

        procs.append(_worker(db_url, port))

        def settled() -> bool:
            with sf.store.transaction() as tx:
                return tx.list_messages(flow_id="crash-mail")[0]["status"] != "sending"

        _wait(settled, 20, "the second worker to settle the message")
        time.sleep(1.0)
        with sf.store.transaction() as tx:
            (message,) = tx.list_messages(flow_id="crash-mail")
        assert message["status"] == "failed"
        assert "delivery state unknown" in message["last_error"]
        assert len(inbox.received) == 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
            if proc.stdout:
                proc.stdout.close()
        sf.close()
        controller.stop()
