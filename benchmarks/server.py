"""A real ``storeflow serve`` process for the scenarios that go through HTTP.

The server runs in its own process (as in production), so the client's JSON encoding and the
server's work use different cores, and the server's CPU time is read from /proc at the end.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from benchmarks.common import BenchmarkError

_LISTENING = re.compile(r"listening on (http://\S+)")


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[str]
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    output: list[str] = field(default_factory=list)

    def cpu_now(self) -> float:
        """User plus system CPU seconds of the server process so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return self.cpu_seconds
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_peak_now(self) -> float:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return self.peak_rss_mb


def storeflow_cli() -> list[str]:
    """The ``storeflow`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("storeflow")
    if not script.exists():
        raise BenchmarkError(f"{script} not found; install storeflow into this environment (pip install -e .)")
    return [str(script)]


@contextmanager
def serve(database_url: str, *args: str, env: dict[str, str] | None = None,
          startup_timeout: float = 60.0) -> Iterator[Server]:
    """``storeflow --database-url URL serve --port 0 *args``; yields once /health answers."""
    cmd = [*storeflow_cli(), "--database-url", database_url, "serve", "--host", "127.0.0.1", "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    server = Server("", proc)
    drains: list[threading.Thread] = []
    try:
        server.base_url = _wait_listening(proc, server.output, startup_timeout, drains)
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                if httpx.get(f"{server.base_url}/health", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise BenchmarkError("storeflow serve did not become healthy:\n" + "".join(server.output[-20:]))
            time.sleep(0.05)
        yield server
        server.cpu_seconds = server.cpu_now()
        server.peak_rss_mb = server.rss_peak_now()
    finally:
        stop(proc, drains)


def stop(proc: subprocess.Popen[Any], drains: list[threading.Thread]) -> None:
    """SIGTERM (then SIGKILL after 30 s); then the threads reading its output, then the pipe."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for drain in drains:
        drain.join(timeout=10)  # the process is gone: its output ends
    if proc.stdout is not None:
        proc.stdout.close()


def bench_store(url: str) -> tuple[int, str]:
    """The 47 live flows and a private API key on a fresh database: (flows applied, key secret)."""
    from benchmarks.common import open_storeflow
    from benchmarks.flows47 import apply_all
    from storeflow.clock import SystemClock

    sf = open_storeflow(url, SystemClock())
    try:
        flows = apply_all(sf)
        _, key = sf.keys.create("private", "bench")
    finally:
        sf.close()
    return flows, key


def _wait_listening(proc: subprocess.Popen[str], output: list[str], timeout: float,
                    drains: list[threading.Thread]) -> str:
    assert proc.stdout is not None
    stream: IO[str] = proc.stdout
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        output.append(line)
        found = _LISTENING.search(line)
        if found:
            drains.append(_drain_in_background(stream, output))
            return found.group(1)
    raise BenchmarkError("storeflow serve did not start:\n" + "".join(output[-20:]))


def _drain_in_background(stream: IO[str], output: list[str]) -> threading.Thread:
    """Keep reading the server's output so a full pipe never blocks it; keep its last lines."""

    def drain() -> None:
        for line in stream:
            output.append(line)
            del output[:-200]

    thread = threading.Thread(target=drain, name="server-output", daemon=True)
    thread.start()
    return thread
