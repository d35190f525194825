"""The scenarios, by name. Each module has ``run(target, quick) -> list[Figure]``: it runs on fresh
databases of one target (``quick``: tiny sizes, a few seconds) and returns its figures.

The engine runs on a ``VirtualClock`` where a scenario allows it, so the same events start the same
runs on every machine; figures are wall-clock time (``time.perf_counter``), and each also records the
CPU time of this process (``cpu_seconds``): where wall time is well above it, the process waited for
the database server or for a CPU that something else was using.
"""

from __future__ import annotations

from benchmarks import (
    bulk_import,
    campaign,
    email,
    ingest,
    latency,
    month,
    segment_eval,
    segment_ingest,
    segment_time,
    steps,
    timers,
)
from benchmarks.common import Figure, Scenario

SCENARIOS: dict[str, Scenario] = {
    "ingest": ingest.run,
    "import": bulk_import.run,
    "latency": latency.run,
    "steps": steps.run,
    "timers": timers.run,
    "email": email.run,
    "month": month.run,
    "segment_eval": segment_eval.run,
    "segment_ingest": segment_ingest.run,
    "segment_time": segment_time.run,
    "campaign": campaign.run,
}

__all__ = ["SCENARIOS", "Figure", "Scenario"]
