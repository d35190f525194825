"""Durability end to end: real worker processes, killed with SIGKILL at awkward moments.

What these prove, on the real database (SQLite file and PostgreSQL):

* a worker killed in the middle of a batch loses nothing and repeats nothing: its uncommitted batch
  rolls back, a new worker picks those runs up, and every step runs exactly once (counters are 1);
* two workers claiming the same due runs on PostgreSQL never take the same run (SKIP LOCKED);
* a worker killed between sending a webhook and recording the result makes the message go out again
  after the lease, with the same ``webhook-id``: delivery is at-least-once with a stable key;
* two healthy workers do not send a message twice, even when a batch outlasts the lease (each
  message's lease is renewed by compare-and-set right before its send).

Sizes are small (hundreds of runs, batches of 25-50) so each test stays well under a minute on two
cores: the point is several committed batches before the kill and several after, not volume.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from worker_processes import StartWorker, WorkerProcess

from storeflow.app import Storeflow
from storeflow.clock import SystemClock
from storeflow.settings import Settings
from storeflow.store.factory import normalize_url
from storeflow.store.tables import delivery_attempts, outbox, profiles, run_steps, runs

pytestmark = pytest.mark.slow

TRIGGER = "durability_check"
COUNTING_FLOW = f"""
id: counting
name: Counting (every step adds to its own counter)
status: live
trigger:
  event: {TRIGGER}
steps:
  - action: set_property
    property: a
    increment: 1
  - action: tag
    tags: [durable]
  - action: set_property
    property: b
    increment: 1
  - if: {{field: profile.properties.a, eq: 1}}
    then:
      - action: set_property
        property: c
        increment: 1
    else:
      - action: set_property
        property: a_was_not_1
        increment: 1
  - action: set_property
    property: d
    increment: 1
  - action: note
    text: counted
"""
# (step_path, kind) of one run, in order: what every run's step log must be, exactly.
EXPECTED_STEPS = [
    ("steps[0]", "action:set_property"),
    ("steps[1]", "action:tag"),
    ("steps[2]", "action:set_property"),
    ("steps[3]", "if"),
    ("steps[3].then[0]", "action:set_property"),
    ("steps[4]", "action:set_property"),
    ("steps[5]", "action:note"),
]
EXPECTED_PROPERTIES = {"a": 1, "b": 1, "c": 1, "d": 1}


# -- helpers ---------------------------------------------------------------------------------------


def ingest_triggers(sf: Storeflow, count: int, event_type: str = TRIGGER) -> list[str]:
    """``count`` triggering events for distinct profiles; the ids of the runs they started."""
    run_ids: list[str] = []
    for start in range(0, count, 1000):
        batch = [{"type": event_type, "id": f"trigger-{i}", "customer_id": f"cust-{i}",
                  "properties": {"n": i}} for i in range(start, min(count, start + 1000))]
        for result in sf.ingest(batch):
            assert result.status == "accepted", result
            assert len(result.runs_started) == 1, result
            run_ids += result.runs_started
    return run_ids


@dataclass
class Progress:
    """Committed state, as any other connection sees it."""

    statuses: dict[str, int]
    steps: int
    touched_profiles: int  # profiles with any counter set

    @property
    def completed(self) -> int:
        return self.statuses.get("completed", 0)


@contextmanager
def reader(db_url: str) -> Iterator[Engine]:
    """A plain read connection pool. Not ``Storeflow.store.transaction()``: on SQLite that takes the
    write lock (BEGIN IMMEDIATE), and a poller queueing for it behind a busy worker starves."""
    engine = create_engine(normalize_url(db_url))
    try:
        yield engine
    finally:
        engine.dispose()


def completed(db: Engine) -> int:
    """Committed completed runs (the cheap poll)."""
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(runs).where(runs.c.status == "completed"))
                   .scalar_one())


def progress(db: Engine) -> Progress:
    with db.connect() as conn:
        rows = conn.execute(select(runs.c.status, func.count()).group_by(runs.c.status)).all()
        statuses = {status: int(n) for status, n in rows}
        steps = conn.execute(select(func.count()).select_from(run_steps)).scalar_one()
        touched = sum(1 for (props,) in conn.execute(select(profiles.c.properties)) if props)
        return Progress(statuses, int(steps), touched)


def wait_until(check: Callable[[], bool], timeout: float, describe: Callable[[], str],
               workers: tuple[WorkerProcess, ...] = (), interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for worker in workers:
            if worker.proc.poll() is not None:
                pytest.fail(f"{worker.name} exited with {worker.proc.returncode} ({describe()}):\n{worker.log()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.name}:\n{w.log()[-3000:]}" for w in workers)
            pytest.fail(f"gave up after {timeout:.0f}s: {describe()}\n{logs}")
        time.sleep(interval)


def assert_each_step_ran_once(db: Engine, run_ids: list[str]) -> None:
    """Every run completed; each logged exactly the expected steps, once each, in order; every
    profile's counters are exactly 1 and its tag is there once."""
    with db.connect() as conn:
        run_rows = conn.execute(select(runs.c.id, runs.c.status, runs.c.profile_id)).all()
        logged: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        for run_id, seq, path, kind in conn.execute(
            select(run_steps.c.run_id, run_steps.c.seq, run_steps.c.step_path, run_steps.c.kind)
            .order_by(run_steps.c.run_id, run_steps.c.seq)
        ):
            logged[run_id].append((seq, path, kind))
        profile_rows = conn.execute(select(profiles.c.id, profiles.c.properties, profiles.c.tags)).all()

    assert sorted(r.id for r in run_rows) == sorted(run_ids)
    not_completed = [(r.id, r.status) for r in run_rows if r.status != "completed"]
    assert not not_completed, f"{len(not_completed)} runs did not complete, e.g. {not_completed[:3]}"
    expected = [(i + 1, path, kind) for i, (path, kind) in enumerate(EXPECTED_STEPS)]
    wrong = {run_id: steps for run_id, steps in logged.items() if steps != expected}
    assert not wrong, f"{len(wrong)} runs have a wrong step log, e.g. {next(iter(wrong.items()))}"
    assert set(logged) == set(run_ids)

    assert len({r.profile_id for r in run_rows}) == len(run_ids)  # one run per profile
    assert len(profile_rows) == len(run_ids)
    bad = [(pid, props, tags) for pid, props, tags in profile_rows
           if props != EXPECTED_PROPERTIES or tags != ["durable"]]
    assert not bad, f"{len(bad)} profiles show a step applied twice (or never), e.g. {bad[:3]}"


def open_engine(db_url: str) -> Storeflow:
    return Storeflow(Settings(database_url=db_url), clock=SystemClock())


# -- (a) SIGKILL in the middle of a batch -----------------------------------------------------------

KILL_RUNS = 800
KILL_BATCH = 50


def test_sigkill_mid_batch_loses_nothing_and_repeats_nothing(db_url: str, start_worker: StartWorker) -> None:
    """Kill -9 a worker while it is advancing a batch; a second worker finishes the job.

    The worker commits a whole batch (up to ``worker_batch_size`` runs, each in a savepoint) in one
    transaction. At the kill, the committed state must be whole batches only (every completed run has
    its 7 steps, no other run has any, no profile outside them was touched); after the second worker,
    every step of every run has run exactly once.
    """
    sf = open_engine(db_url)
    try:
        sf.flows.apply(sf.flows.validate(COUNTING_FLOW, "counting.yaml"))
        run_ids = ingest_triggers(sf, KILL_RUNS)
    finally:
        sf.close()
    with reader(db_url) as db:
        # Pause the worker inside its fifth batch, half-way through it: four batches committed, the
        # fifth's transaction open with half its runs advanced. The kill follows the worker's own word
        # that it got there, never a guess of how long that takes.
        pause_at = KILL_RUNS // 4 + KILL_BATCH // 2 + 1
        first = start_worker("worker-1", database_url=db_url, worker_batch_size=KILL_BATCH, pause_at_run=pause_at)
        first.wait_for_line(f"paused mid-batch at run {pause_at}", timeout=120)
        first.kill()

        at_kill = progress(db)  # nothing can commit any more: this is what survived the kill
        assert at_kill.completed == KILL_RUNS // 4, f"the kill did not land mid-way: {at_kill}"
        assert at_kill.statuses == {"completed": at_kill.completed, "active": KILL_RUNS - at_kill.completed}
        assert at_kill.completed % KILL_BATCH == 0, f"a partial batch was committed: {at_kill}"
        assert at_kill.steps == at_kill.completed * len(EXPECTED_STEPS), at_kill
        assert at_kill.touched_profiles == at_kill.completed, at_kill

        second = start_worker("worker-2", database_url=db_url, worker_batch_size=KILL_BATCH)
        wait_until(lambda: completed(db) == KILL_RUNS, 120,
                   lambda: f"not all runs completed: {progress(db)} (at the kill: {at_kill})", (second,))
        assert second.stop() == 0, second.log()
        assert "Traceback" not in second.log(), second.log()
        assert_each_step_ran_once(db, run_ids)


# -- (b) two workers, one PostgreSQL, the same due runs --------------------------------------------

RACE_RUNS = 800
RACE_BATCH = 25


def test_two_workers_on_postgres_never_take_the_same_run(pg_url: str, start_worker: StartWorker) -> None:
    """Two worker processes released at the same moment against the same due runs: each run is
    claimed by exactly one of them (FOR UPDATE SKIP LOCKED), both do a share, and every step runs
    once. A run claimed twice would show in the claimed total and in doubled counters."""
    sf = open_engine(pg_url)
    try:
        sf.flows.apply(sf.flows.validate(COUNTING_FLOW, "counting.yaml"))
        run_ids = ingest_triggers(sf, RACE_RUNS)  # all due now; no worker is running yet
    finally:
        sf.close()
    workers = [start_worker(f"racer-{i}", mode="batches", database_url=pg_url, worker_batch_size=RACE_BATCH)
               for i in (1, 2)]
    for worker in workers:
        worker.wait_ready()
    for worker in workers:
        worker.go()
    with reader(pg_url) as db:
        wait_until(lambda: completed(db) == RACE_RUNS, 120,
                   lambda: f"not all runs completed: {progress(db)}", tuple(workers))
        for worker in workers:
            assert worker.stop() == 0, worker.log()
        counts = [worker.result() for worker in workers]

        assert all(c["completed"] > 0 for c in counts), f"one worker did nothing: {counts}"
        assert sum(c["claimed"] for c in counts) == RACE_RUNS, f"a run was claimed twice (or never): {counts}"
        assert sum(c["completed"] for c in counts) == RACE_RUNS, counts
        assert sum(c["steps"] for c in counts) == RACE_RUNS * len(EXPECTED_STEPS), counts
        assert all(c["failed"] == c["retried"] == 0 for c in counts), counts
        assert_each_step_ran_once(db, run_ids)


# -- (c) the outbox: killed between sending and recording ------------------------------------------


@dataclass
class Delivery:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class SlowReceiver:
    """An HTTP receiver on 127.0.0.1 that records each request as it arrives, then waits ``delay``
    seconds before answering 200 (so a sender can be killed while it waits for the answer).

    A request whose body stops short of its Content-Length (the sender died while writing it) is not
    a delivery, as for any HTTP server: it goes to ``torn`` and gets no answer. The path is unique to
    this receiver: a request for another path (a stray retry from some other process on the machine
    that once had this ephemeral port) goes to ``strays`` and gets a 404."""

    delay: float
    deliveries: list[Delivery] = field(default_factory=list)
    torn: list[Delivery] = field(default_factory=list)
    strays: list[Delivery] = field(default_factory=list)
    path: str = field(default_factory=lambda: f"/hooks/{uuid.uuid4().hex}")
    arrived: threading.Event = field(default_factory=threading.Event)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = self.rfile.read(length)
                except OSError:
                    body = b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                delivery = Delivery(headers.get("webhook-id", ""), headers, body, time.monotonic())
                if self.path != receiver.path:
                    receiver.strays.append(delivery)
                    self._answer(404, b"no")
                    return
                if len(body) < length:
                    receiver.torn.append(delivery)
                    return
                receiver.deliveries.append(delivery)
                receiver.arrived.set()
                if receiver.stopping.wait(receiver.delay):
                    return
                self._answer(200, b"ok")

            def _answer(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the sender is gone (killed): nobody to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{self.path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()  # joins the handler threads
        self.thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[SlowReceiver]:
    srv = SlowReceiver(delay=2.0)
    try:
        yield srv
    finally:
        srv.close()


OUTBOX_RUNS = 3
SECRET = "whsec_" + base64.b64encode(bytes(range(24))).decode()


def test_worker_killed_mid_send_resends_with_the_same_webhook_id(
    db_url: str, start_worker: StartWorker, receiver: SlowReceiver
) -> None:
    """A worker is SIGKILLed while a webhook is on the wire (the receiver has it, the answer has not
    come back, nothing is recorded). After the lease (the 3 s send timeout + 5 s) a second worker sends it again.

    The guarantee is at-least-once with a stable idempotency key: every request for one run carries
    the same ``webhook-id`` (``<run id>:<step path>``), signed per Standard Webhooks, and the outbox
    holds exactly one message per run and step, ending ``sent``. Exactly-once over HTTP cannot be had
    from the sender alone: the receiver must deduplicate by ``webhook-id`` (as Standard Webhooks
    asks), which is why the id never changes between attempts.
    """
    flow = f"""
id: outbox-durability
name: Outbox durability
status: live
trigger: {{event: outbox_check}}
steps:
  - id: hook
    action: webhook
    url: {receiver.url}
    timeout: 3s
  - action: note
    text: handed to the outbox
"""
    settings: dict[str, Any] = {"database_url": db_url, "webhook_allow_private": True,
                                "webhook_secret": SECRET, "outbox_lease_s": 2}
    sf = Storeflow(Settings(**settings), clock=SystemClock())
    try:
        sf.flows.apply(sf.flows.validate(flow, "outbox.yaml"))
        run_ids = ingest_triggers(sf, OUTBOX_RUNS, "outbox_check")

        first = start_worker("sender-1", **settings)
        wait_until(receiver.arrived.is_set, 30, lambda: "the first webhook never arrived", (first,))
        first.kill()  # the receiver holds the request(s); the worker never learns the answer
        time.sleep(0.5)  # anything the worker wrote to a socket before it died has arrived by now
        in_flight = {d.webhook_id for d in receiver.deliveries}
        with sf.store.transaction() as tx:
            at_kill = dict(tx.conn.execute(select(outbox.c.idempotency_key, outbox.c.status)).all())
        # Whatever reached the receiver is still "sending" (leased) in the outbox: nothing recorded.
        assert in_flight and all(at_kill[key] == "sending" for key in in_flight), (in_flight, at_kill)

        second = start_worker("sender-2", **settings)

        def outbox_counts() -> dict[str, int]:
            with sf.store.transaction() as tx:
                return tx.outbox_counts()

        wait_until(lambda: outbox_counts() == {"sent": OUTBOX_RUNS}, 45, lambda: f"outbox: {outbox_counts()}",
                   (second,), interval=0.1)
        assert second.stop() == 0, second.log()

        with sf.store.transaction() as tx:
            rows = tx.conn.execute(select(outbox.c.id, outbox.c.run_id, outbox.c.step_key, outbox.c.status,
                                          outbox.c.idempotency_key, outbox.c.attempts)).all()
            attempts = tx.conn.execute(select(delivery_attempts.c.outbox_id, delivery_attempts.c.attempt,
                                              delivery_attempts.c.status)).all()
    finally:
        sf.close()

    # The outbox: exactly one message per run and step, each sent, keyed by run and step.
    assert sorted((r.run_id, r.step_key) for r in rows) == sorted((run_id, "hook") for run_id in run_ids)
    assert all(r.status == "sent" and r.idempotency_key == f"{r.run_id}:steps[0]" for r in rows), rows
    # The first worker had claimed every message (attempt 1) and died before recording any attempt:
    # each message took 2 attempts, and only the second is in the log.
    for r in rows:
        assert r.attempts == 2, r
        assert [(a.attempt, a.status) for a in attempts if a.outbox_id == r.id] == [(2, "sent")], attempts

    # The receiver: at least once per run, and every request of one run has the same webhook-id.
    verifier = Webhook(SECRET)
    ids_by_run: dict[str, set[str]] = defaultdict(set)
    for delivery in receiver.deliveries:
        try:
            verifier.verify(delivery.body, delivery.headers)  # signed, and the signature matches
        except WebhookVerificationError as exc:
            pytest.fail(f"bad signature on {delivery.webhook_id} ({exc}): {delivery.headers} {delivery.body!r}; "
                        f"torn requests: {receiver.torn}; strays: {receiver.strays}")
        payload = json.loads(delivery.body)
        ids_by_run[payload["run_id"]].add(delivery.webhook_id)
    assert set(ids_by_run) == set(run_ids)
    assert all(ids == {f"{run_id}:steps[0]"} for run_id, ids in ids_by_run.items()), ids_by_run
    # Exactly what was in flight at the kill went out twice (at-least-once); with one surviving
    # worker nothing else repeated.
    received = [d.webhook_id for d in receiver.deliveries]
    expected = {f"{run_id}:steps[0]": 1 + (f"{run_id}:steps[0]" in in_flight) for run_id in run_ids}
    assert {key: received.count(key) for key in expected} == expected, received
    assert len(received) == sum(expected.values()), received


# -- (d) a batch that outlasts the lease: two healthy workers, no message sent twice ------------------

LEASE_MESSAGES = 20


def test_two_healthy_workers_do_not_send_a_message_twice(pg_url: str, start_worker: StartWorker) -> None:
    """No crash here: two live workers, a receiver that takes 1 s per request, a 2 s lease, 20
    messages. Whoever claims the batch needs several seconds for it (a few sends at a time), so the
    unsent rest of it expires while it waits its turn and the other worker claims it. Each message's
    lease is renewed by compare-and-set right before its send, so exactly one of the two sends it.
    (Before that fix, 36 requests went out for 20 messages here.) A single slow send cannot be
    taken over either: its lease is at least its own timeout plus 5 s."""
    slow = SlowReceiver(delay=1.0)
    try:
        flow = f"""
id: lease-check
name: Lease check
status: live
trigger: {{event: lease_check}}
steps:
  - action: webhook
    url: {slow.url}
"""
        settings: dict[str, Any] = {"database_url": pg_url, "webhook_allow_private": True,
                                    "webhook_secret": SECRET, "outbox_lease_s": 2}
        sf = Storeflow(Settings(**settings), clock=SystemClock())
        try:
            sf.flows.apply(sf.flows.validate(flow, "lease.yaml"))
            ingest_triggers(sf, LEASE_MESSAGES, "lease_check")
            workers = (start_worker("lease-1", **settings), start_worker("lease-2", **settings))

            def outbox_counts() -> dict[str, int]:
                with sf.store.transaction() as tx:
                    return tx.outbox_counts()

            wait_until(lambda: outbox_counts() == {"sent": LEASE_MESSAGES}, 45,
                       lambda: f"outbox: {outbox_counts()}", workers, interval=0.1)
            for worker in workers:
                assert worker.stop() == 0, worker.log()
        finally:
            sf.close()
    finally:
        slow.close()
    received = [d.webhook_id for d in slow.deliveries]
    repeated = {key for key in received if received.count(key) > 1}
    assert not repeated, f"{len(received)} requests for {LEASE_MESSAGES} messages; sent twice: {sorted(repeated)}"
