"""End-to-end helpers: storeflow workers as real child processes that a test can SIGKILL.

A child is ``python -c WORKER_SCRIPT <config json>``: it builds ``Storeflow(Settings(**config),
clock=SystemClock())`` and then either serves (``serve_worker``, the ``storeflow serve`` loop) or,
in ``batches`` mode, waits for ``go`` on stdin and calls ``worker.run_batch()`` in a loop, counting
what it did. SIGTERM stops either loop cleanly; a ``batches`` child then writes its counts as JSON.
The child sees no ``STOREFLOW_*`` variables and runs in the test's tmp dir (no stray storeflow.toml),
so its configuration is exactly what the test passes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

WORKER_SCRIPT = r"""
import json, signal, sys, threading, time
from storeflow.app import Storeflow
from storeflow.clock import SystemClock
from storeflow.settings import Settings

config = json.loads(sys.argv[1])
mode, result_path = config.pop("mode"), config.pop("result_path")
pause_at = config.pop("pause_at_run", None)
sf = Storeflow(Settings(**config), clock=SystemClock())
stop = threading.Event()

if pause_at is not None:
    # A progress-triggered kill point: the worker advances runs one after another inside its batch's
    # open transaction; at the pause_at-th run it says so and blocks there, so a SIGKILL sent after
    # that line lands mid-batch on any machine, however fast or loaded.
    import storeflow.engine.worker as worker_module

    advance, advanced = worker_module.advance, [0]

    def counting_advance(*args, **kwargs):
        advanced[0] += 1
        if advanced[0] == pause_at:
            print(f"paused mid-batch at run {pause_at}", flush=True)
            threading.Event().wait()
        return advance(*args, **kwargs)

    worker_module.advance = counting_advance


def on_term(signum, frame):
    stop.set()
    sf.wake()


signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
if mode == "serve":
    sf.serve_worker(stop)
else:
    sys.stdin.readline()  # the start barrier: every worker of the test begins at the same moment
    totals = {"batches": 0, "claimed": 0, "completed": 0, "failed": 0, "retried": 0, "steps": 0}
    started = time.monotonic()
    while not stop.is_set():
        batch = sf.worker.run_batch()
        if not batch.claimed:
            stop.wait(0.02)
            continue
        totals["batches"] += 1
        for name in ("claimed", "completed", "failed", "retried", "steps"):
            totals[name] += getattr(batch, name)
    totals["seconds"] = round(time.monotonic() - started, 3)
    with open(result_path, "w") as out:
        json.dump(totals, out)
sf.close()
print("stopped", flush=True)
"""


class WorkerProcess:
    """One child worker; output goes to a log file (never a pipe that could fill up and block it)."""

    def __init__(self, name: str, config: dict[str, Any], mode: str, workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.result_path = workdir / f"{name}.json"
        self._log: IO[bytes] = self.log_path.open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFLOW_")}
        payload = json.dumps({**config, "mode": mode, "result_path": str(self.result_path)})
        self.proc: subprocess.Popen[bytes] = subprocess.Popen(
            [sys.executable, "-c", WORKER_SCRIPT, payload],
            stdin=subprocess.PIPE if mode == "batches" else subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir, env=env,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "ready" not in self.log():
            if self.proc.poll() is not None:
                pytest.fail(f"worker {self.name} exited with {self.proc.returncode} before it was ready:\n"
                            f"{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker {self.name} not ready after {timeout}s:\n{self.log()}")
            time.sleep(0.02)

    def go(self) -> None:
        """Release a ``batches`` worker from its start barrier."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def wait_for_line(self, text: str, timeout: float = 60.0) -> None:
        """Wait until the child has printed ``text`` (observed progress, not elapsed time)."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.proc.poll() is not None:
                pytest.fail(f"worker {self.name} exited with {self.proc.returncode} before {text!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker {self.name} did not print {text!r} within {timeout}s:\n{self.log()}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no commit, no atexit; the open transaction dies with the process."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for the clean exit; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            pytest.fail(f"worker {self.name} ignored SIGTERM for {timeout}s:\n{self.log()}")

    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.result_path.read_text())
        return data

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self._log.close()


StartWorker = Callable[..., WorkerProcess]
