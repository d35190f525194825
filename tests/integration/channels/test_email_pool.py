"""SmtpPool against a real SMTP server: reuse, the idle NOOP check, reconnects, the size bound, close."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from test_email_support import SmtpRecorder

from storeflow.channels.base import OutboundMessage
from storeflow.channels.email import EmailChannel
from storeflow.channels.smtp_pool import PoolClosedError, PoolTimeoutError, SmtpConfig, SmtpPool

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def message(n: int = 0) -> OutboundMessage:
    payload = {"to": "ana@example.com", "subject": "Pedido", "text": "Rp 150.000", "kind": "transactional"}
    return OutboundMessage(id=f"run_{n}:steps[0]", channel="email", payload=payload)


@pytest.fixture
def smtp() -> Iterator[SmtpRecorder]:
    server = SmtpRecorder().start()
    try:
        yield server
    finally:
        server.stop()


def make_pool(port: int, clock: FakeMonotonic | None = None, size: int = 2) -> SmtpPool:
    cfg = SmtpConfig("127.0.0.1", port, timeout_s=5.0, pool_size=size)
    if clock is None:
        return SmtpPool(cfg, local_hostname="worker.test")
    return SmtpPool(cfg, local_hostname="worker.test", monotonic=clock)


def test_a_released_connection_is_reused_without_a_check_while_fresh(smtp: SmtpRecorder) -> None:
    clock = FakeMonotonic()
    pool = make_pool(smtp.port, clock)
    try:
        first = pool.acquire()
        pool.release(first, reusable=True)
        clock.now += 29
        second = pool.acquire()
        assert second is first
        assert second.reused
        pool.release(second, reusable=True)
    finally:
        pool.close()
    assert smtp.handler.noops == 0
    assert smtp.connection_count == 1
    assert pool.opened == 1


def test_an_idle_connection_is_checked_with_noop_before_reuse(smtp: SmtpRecorder) -> None:
    clock = FakeMonotonic()
    pool = make_pool(smtp.port, clock)
    try:
        first = pool.acquire()
        pool.release(first, reusable=True)
        clock.now += 31
        second = pool.acquire()
        assert second is first
        pool.release(second, reusable=True)
    finally:
        pool.close()
    assert smtp.handler.noops == 1
    assert smtp.connection_count == 1


def test_an_idle_connection_the_server_dropped_is_replaced() -> None:
    server = SmtpRecorder(timeout=0.3).start()  # aiosmtpd hangs up on connections idle for 0.3 s
    clock = FakeMonotonic()
    pool = make_pool(server.port, clock)
    try:
        first = pool.acquire()
        pool.release(first, reusable=True)
        time.sleep(0.6)
        clock.now += 31
        second = pool.acquire()
        assert second is not first
        assert not second.reused
        assert first.smtp.sock is None  # the stale one was closed
        pool.release(second, reusable=True)
    finally:
        pool.close()
        server.stop()
    assert pool.opened == 2
    assert server.connection_count == 2


def test_send_retries_on_a_fresh_connection_when_the_server_dropped_the_pooled_one() -> None:
    # aiosmtpd closes a connection idle for longer than `timeout` seconds, without a word.
    server = SmtpRecorder(timeout=0.3).start()
    try:
        with EmailChannel(
            SmtpConfig("127.0.0.1", server.port, timeout_s=5.0, pool_size=1), default_from="loja@shop.example.com"
        ) as channel:
            assert channel.send(message(1), NOW).status == "sent"
            time.sleep(0.6)
            result = channel.send(message(2), NOW)
        assert result.status == "sent", result.detail
        assert len(server.messages) == 2
        assert server.connection_count == 2
    finally:
        server.stop()


def test_the_pool_never_opens_more_than_its_size(smtp: SmtpRecorder) -> None:
    pool = make_pool(smtp.port, size=2)
    try:
        a, b = pool.acquire(), pool.acquire()
        started = time.perf_counter()
        with pytest.raises(PoolTimeoutError, match="all 2 SMTP connections"):
            pool.acquire(timeout_s=0.2)
        assert time.perf_counter() - started >= 0.2

        got: list[object] = []
        waiter = threading.Thread(target=lambda: got.append(pool.acquire(timeout_s=5)))
        waiter.start()
        pool.release(a, reusable=True)
        waiter.join(5)
        assert got == [a]  # the waiting thread got the released connection
        pool.release(b, reusable=False)
        pool.release(a, reusable=True)
    finally:
        pool.close()
    assert pool.opened == 2
    assert smtp.connection_count == 2


def test_close_quits_idle_connections_and_refuses_new_work(smtp: SmtpRecorder) -> None:
    pool = make_pool(smtp.port, size=2)
    a, b = pool.acquire(), pool.acquire()
    pool.release(a, reusable=True)
    pool.close()
    assert smtp.handler.quits == 1
    assert a.smtp.sock is None
    pool.release(b, reusable=True)  # in use during close: closed on release, not pooled
    assert smtp.handler.quits == 2
    assert pool.idle_count == 0
    with pytest.raises(PoolClosedError):
        pool.acquire()


def test_send_after_close_is_transient(smtp: SmtpRecorder) -> None:
    channel = EmailChannel(SmtpConfig("127.0.0.1", smtp.port), default_from="loja@shop.example.com")
    channel.close()
    result = channel.send(message(), NOW)
    assert result.status == "transient_failure"
    assert "closed" in result.detail
