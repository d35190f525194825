"""TransactionPort on both backends: savepoints, ping, notifications, and the batch view's refusal
of savepoints."""

from __future__ import annotations

import time

import pytest
from tests.contract.helpers import event_row

from storeflow.errors import StorageError
from storeflow.store import Store, StoreTx


def _fail_inside_savepoint(tx: StoreTx) -> None:
    with tx.savepoint():
        tx.insert_event(event_row("inside"))
        raise RuntimeError("boom")


def test_a_savepoint_rolls_back_only_its_own_writes(store: Store) -> None:
    with store.transaction() as tx:
        tx.insert_event(event_row("before"))
        with pytest.raises(RuntimeError, match="boom"):
            _fail_inside_savepoint(tx)
        with tx.savepoint():
            tx.insert_event(event_row("kept"))
    with store.read() as tx:
        tx.ping()
        assert tx.existing_idempotency_keys(["before", "inside", "kept"]) == {"before", "kept"}


def test_notify_after_commit_wakes_listeners_where_the_backend_has_them(store: Store) -> None:
    listener = store.listen("storeflow_test", timeout=0.2)
    if listener is None:
        assert store.backend == "sqlite"  # no notifications: pollers find the work instead
    else:
        assert next(listener) is False  # listening now, nothing sent yet
    with store.transaction() as tx:
        tx.notify_after_commit("storeflow_test")
        tx.notify_after_commit("storeflow_test")  # once per transaction and channel
        tx.insert_event(event_row("k"))
    if listener is not None:
        deadline = time.monotonic() + 10
        while not next(listener):
            assert time.monotonic() < deadline, "the notification never arrived"
        listener.close()  # type: ignore[attr-defined]
    with store.read() as tx:
        assert tx.count_events() == 1


def test_the_write_behind_view_refuses_savepoints(store: Store) -> None:
    with store.transaction() as tx:
        view = tx.write_behind()
        view.insert_event(event_row("k"))
        with pytest.raises(StorageError, match="savepoint"):
            view.savepoint().__enter__()
        view.flush()
    with store.read() as tx:
        assert tx.count_events() == 1
