"""Fixtures of the end-to-end tests (see worker_processes.py for the child worker)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from worker_processes import StartWorker, WorkerProcess


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """``start_worker(name, mode="serve", **settings)``: a child worker process, always reaped at
    teardown (killed if the test left it running)."""
    started: list[WorkerProcess] = []

    def start(name: str, mode: str = "serve", **settings: Any) -> WorkerProcess:
        worker = WorkerProcess(name, settings, mode, tmp_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()
