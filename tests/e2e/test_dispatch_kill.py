"""A worker SIGKILLed in the middle of a dispatch batch re-sends at most the webhooks that were in
flight at that instant (at most ``dispatch_concurrency``): each send's outcome is recorded as it
completes, not once per batch after all its sends.

The receiver answers the first ``ANSWERED`` deliveries at once, then holds every later request
unanswered. Once it holds ``CONCURRENCY`` of them, every sending thread of the worker is stuck on
one, and each had recorded the sends before it: the kill lands there, from observed progress, on
any machine. A second worker then finishes the batch.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from worker_processes import StartWorker, WorkerProcess

from storeflow.app import Storeflow
from storeflow.clock import SystemClock
from storeflow.settings import Settings

pytestmark = pytest.mark.slow

SECRET = "whsec_" + base64.b64encode(bytes(range(24))).decode()
MESSAGES = 40
ANSWERED = 12
CONCURRENCY = 4


class HoldingReceiver:
    """Answers 200 to the first ``answer_first`` requests, holds later ones until ``release``."""

    def __init__(self, answer_first: int) -> None:
        self.webhook_ids: list[str] = []
        self.answer_first = answer_first
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.path = f"/hooks/{uuid.uuid4().hex}"
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = self.rfile.read(length)
                except OSError:
                    return
                if self.path != owner.path or len(body) < length:
                    return  # a stray, or a request torn by the kill: not a delivery
                with owner.lock:
                    owner.webhook_ids.append(self.headers.get("webhook-id", ""))
                    hold = len(owner.webhook_ids) > owner.answer_first
                if hold and not owner.released.is_set():
                    owner.released.wait()
                    return  # the sender is dead by now: nobody to answer
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{self.path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def seen(self) -> int:
        with self.lock:
            return len(self.webhook_ids)

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[HoldingReceiver]:
    srv = HoldingReceiver(ANSWERED)
    try:
        yield srv
    finally:
        srv.close()


def _wait(check: Callable[[], bool], timeout: float, what: Callable[[], str], worker: WorkerProcess) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if worker.proc.poll() is not None:
            pytest.fail(f"{worker.name} exited with {worker.proc.returncode} ({what()}):\n{worker.log()}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f}s: {what()}\n{worker.log()[-3000:]}")
        time.sleep(0.02)


def test_sigkill_mid_dispatch_resends_at_most_the_sends_in_flight(
        db_url: str, start_worker: StartWorker, receiver: HoldingReceiver) -> None:
    flow = f"""
id: kill-dispatch
name: Kill during dispatch
status: live
trigger: {{event: kill_dispatch}}
steps:
  - action: webhook
    url: {receiver.url}
    timeout: 3s
"""
    settings: dict[str, Any] = {"database_url": db_url, "webhook_allow_private": True, "webhook_secret": SECRET,
                                "outbox_lease_s": 1, "dispatch_batch_size": 100,
                                "dispatch_concurrency": CONCURRENCY}
    sf = Storeflow(Settings(**settings), clock=SystemClock())
    try:
        sf.flows.apply(sf.flows.validate(flow, "kill.yaml"))
        results = sf.ingest([{"type": "kill_dispatch", "id": f"k-{i}", "customer_id": f"c-{i}"}
                             for i in range(MESSAGES)])
        assert all(len(r.runs_started) == 1 for r in results)

        first = start_worker("dispatch-1", **settings)
        # Every sending thread is now stuck on a held request, each having recorded its sends before.
        _wait(lambda: receiver.seen() >= ANSWERED + CONCURRENCY, 30,
              lambda: f"the receiver saw {receiver.seen()} requests", first)
        first.kill()
        in_flight = receiver.seen() - ANSWERED
        receiver.answer_first = MESSAGES * 10  # from now on every request is answered
        receiver.released.set()

        second = start_worker("dispatch-2", **settings)

        def counts() -> dict[str, int]:
            with sf.store.read() as tx:
                return tx.outbox_counts()

        # The held sends' leases (their 3 s timeout + 5 s) run out, then the second worker sends them.
        _wait(lambda: counts() == {"sent": MESSAGES}, 45, lambda: f"outbox: {counts()}", second)
        assert second.stop() == 0, second.log()
    finally:
        sf.close()

    per_id = Counter(receiver.webhook_ids)
    assert len(per_id) == MESSAGES  # none lost
    repeated = {key: n for key, n in per_id.items() if n > 1}
    resent = sum(n - 1 for n in repeated.values())
    assert in_flight == CONCURRENCY
    assert resent <= CONCURRENCY, f"{resent} re-deliveries after the kill (at most {CONCURRENCY} in flight): {repeated}"
    assert all(n == 2 for n in repeated.values()), repeated
