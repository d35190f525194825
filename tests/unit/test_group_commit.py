"""GroupCommit: items handed in while a write is in progress share the next write; each submitter
returns only after its own item was written, and a failed write fails every item in it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from storeflow.engine.group_commit import GroupCommit


def _wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.001)


def test_items_handed_in_during_a_write_share_the_next_one() -> None:
    writes: list[list[int]] = []
    first_started, release = threading.Event(), threading.Event()

    def write(items: list[int]) -> None:
        if not writes:
            first_started.set()
            assert release.wait(10)
        writes.append(list(items))

    gc: GroupCommit[int] = GroupCommit(write)
    threads = [threading.Thread(target=gc.submit, args=(1,))]
    threads[0].start()
    assert first_started.wait(10)
    threads += [threading.Thread(target=gc.submit, args=(n,)) for n in (2, 3)]
    for t in threads[1:]:
        t.start()
    _wait_for(lambda: len(gc._pending) == 2, "the two later items were not handed in")
    release.set()
    for t in threads:
        t.join(10)
    assert writes[0] == [1]
    assert sorted(writes[1]) == [2, 3] and len(writes) == 2


def test_a_failed_write_fails_its_submitter_and_the_next_write_goes_on() -> None:
    def write(items: list[str]) -> None:
        if "bad" in items:
            raise RuntimeError("disk full")

    gc: GroupCommit[str] = GroupCommit(write)
    with pytest.raises(RuntimeError, match="disk full"):
        gc.submit("bad")
    gc.submit("good")  # not stuck behind the failed write
