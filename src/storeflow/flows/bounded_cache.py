"""A thread-safe LRU cache bounded by entries and by the total size of what it holds (compiled
templates and their checks, keyed by source)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """A thread-safe LRU cache of values made from template sources, bounded both by the number
    of entries and by the total length of their sources (a compiled template is several times
    the size of its source)."""

    def __init__(self, max_entries: int, max_chars: int) -> None:
        self.max_entries, self.max_chars = max_entries, max_chars
        self._items: OrderedDict[Any, tuple[V, int]] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def get(self, key: Any, size: int, make: Callable[[], V]) -> V:
        """The cached value for ``key``, or ``make()`` (cached when ``size`` fits)."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found[0]
        value = make()
        if size > self.max_chars:
            return value
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, size)
                self._chars += size
            while len(self._items) > self.max_entries or self._chars > self.max_chars:
                _, (_, dropped) = self._items.popitem(last=False)
                self._chars -= dropped
        return value

    def __len__(self) -> int:
        return len(self._items)

    @property
    def chars(self) -> int:
        """Total source length of the cached entries."""
        return self._chars

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._chars = 0
