"""Group commit: threads hand in items to be written, and each returns only once its item is
committed; whoever finds no write in progress writes everything handed in so far, in one go.

The dispatcher's sending threads record each send's outcome this way. A thread never starts its
next send before its last outcome is committed (so a crash can repeat at most one send per thread),
yet the outcomes of sends that finish together share one transaction instead of queueing, one
transaction each, for the database's write lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Ticket:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = False
        self.error: BaseException | None = None


class GroupCommit(Generic[T]):
    """``submit(item)`` returns once ``write`` has committed a list holding ``item``; if that
    ``write`` raised, every thread whose item was in it gets the exception."""

    def __init__(self, write: Callable[[list[T]], None]) -> None:
        self._write = write
        self._cond = threading.Condition()
        self._pending: list[tuple[T, _Ticket]] = []
        self._writing = False

    def submit(self, item: T) -> None:
        ticket = _Ticket()
        with self._cond:
            self._pending.append((item, ticket))
            while self._writing and not ticket.done:
                self._cond.wait()
            if ticket.done:
                if ticket.error is not None:
                    raise ticket.error
                return
            self._writing = True  # this thread writes what is pending, its own item included
            group, self._pending = self._pending, []
        error: BaseException | None = None
        try:
            self._write([it for it, _ in group])
        except BaseException as exc:
            error = exc
        with self._cond:
            for _, t in group:
                t.done, t.error = True, error
            self._writing = False
            self._cond.notify_all()
        if error is not None:
            raise error
