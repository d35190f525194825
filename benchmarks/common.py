"""What every scenario shares: the figure it reports, the error it raises when the engine did not do
what the scenario expects, and a counter of the SQL statements sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event

from benchmarks.targets import Target
from storeflow.app import Storeflow
from storeflow.clock import Clock
from storeflow.settings import Settings

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Figure:
    backend: str
    scenario: str
    count: int
    unit: str  # what was counted: events, rows, steps
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # one line for the printed table: what was measured, targets, ratios

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "scenario": self.scenario, "count": self.count, "unit": self.unit,
                "seconds": round(self.seconds, 4), "per_second": round(self.rate, 1), "note": self.note,
                "details": self.details}


class BenchmarkError(RuntimeError):
    """The engine did not do what the scenario expects: its figures would be meaningless."""


def open_storeflow(url: str, clock: Clock, **settings: Any) -> Storeflow:
    return Storeflow(Settings(database_url=url, **settings), clock=clock)


@contextmanager
def count_statements(sf: Storeflow) -> Iterator[list[int]]:
    """Counts the SQL statements the engine sends while the block runs (an executemany is one);
    yields a one-item list holding the count. Costs a Python call per statement, ~1 us."""
    engine: Engine = getattr(sf.store, "engine")  # noqa: B009 - SqlStore has it, the Store port does not
    counter = [0]

    def on_execute(*_args: Any) -> None:
        counter[0] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)



Scenario = Callable[[Target, bool], list[Figure]]
"""A scenario: runs on fresh databases of one target (quick: tiny sizes, seconds) and returns its figures."""
