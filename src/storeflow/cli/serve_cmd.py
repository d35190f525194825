"""``storeflow serve``: the HTTP API and the worker in one process (or either alone).

SIGINT/SIGTERM shut down cleanly: the API stops taking requests, the stop event is set, the worker
finishes its batch and its thread is joined. A second Ctrl+C stops the API without waiting for open
connections.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from storeflow.cli.context import CliError, state
from storeflow.cli.output import line, warn

if TYPE_CHECKING:
    import uvicorn

    from storeflow.app import Storeflow

WORKER_JOIN_TIMEOUT_S = 30.0


def example_event(currency: str) -> str:
    """A first event to send, as JSON for the curl line."""
    return json.dumps({"type": "checkout_started", "email": "ana@example.com",
                       "properties": {"cart_id": "cart-1", "total": "120000", "currency": currency}})


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def _setup_logging() -> None:
    logger = logging.getLogger("storeflow")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def bind_socket(host: str, port: int) -> socket.socket:
    """Listen before printing where: a taken port is one clear error, and port 0 shows the real port."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # connections made before the server loop starts wait in the backlog
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


@contextmanager
def _signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """Route SIGINT/SIGTERM to ``handler`` (main thread only), restoring the old handlers after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def _api_server(sf: Storeflow, host: str, port: int) -> uvicorn.Server:
    import uvicorn

    try:
        from storeflow.api import create_app
    except ImportError as exc:
        raise CliError(f"the HTTP API is not available: {exc}") from exc

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            # storeflow handles SIGINT/SIGTERM itself (see serve); uvicorn must not re-raise them.
            yield

    # proxy_headers off: X-Forwarded-For is honoured by storeflow itself, only from trusted_proxies.
    config = uvicorn.Config(create_app(sf), host=host, port=port, log_level="info", lifespan="on",
                            proxy_headers=False)
    return Server(config)


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on [default: host setting, 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535,
                                             help="Port to listen on [default: port setting, 8787].")] = None,
    api_only: Annotated[bool, typer.Option("--api-only", help="Run only the HTTP API (no worker).")] = False,
    worker_only: Annotated[bool, typer.Option("--worker-only", help="Run only the worker, in the foreground.")] = False,
) -> None:
    """Run the HTTP API and the worker (steps, schedules, message delivery) in one process."""
    if api_only and worker_only:
        raise typer.BadParameter("use --api-only or --worker-only, not both", param_hint="--api-only/--worker-only")
    _setup_logging()
    with state(ctx).open() as sf:
        sf.warm_up()
        if worker_only:
            _run_worker_foreground(sf)
        else:
            _run_api(sf, host or sf.settings.host, sf.settings.port if port is None else port, with_worker=not api_only)


def _run_worker_foreground(sf: Storeflow) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        sf.wake()

    line("storeflow worker running (no API). Press Ctrl+C to stop.")
    with _signals(on_signal):
        sf.serve_worker(stop)
    line("worker stopped")


def _run_api(sf: Storeflow, host: str, port: int, *, with_worker: bool) -> None:
    server = _api_server(sf, host, port)
    sock = bind_socket(host, port)
    stop = threading.Event()
    worker: threading.Thread | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            server.force_exit = True
        stop.set()
        sf.wake()
        server.should_exit = True

    bound_port = sock.getsockname()[1]
    base = f"http://{_url_host(host)}:{bound_port}"
    worker_note = "worker running" if with_worker else "no worker"
    line(f"storeflow API listening on {base} (docs {base}/docs); {worker_note}")
    line("Send a first event with a key from `storeflow init` or `storeflow keys create --kind public`:")
    line(f"  curl -X POST {base}/v1/events -H \"Authorization: Bearer $STOREFLOW_KEY\" "
         f"-H 'Content-Type: application/json' -d '{example_event(sf.settings.currency)}'")
    line("Press Ctrl+C to stop.")
    try:
        with _signals(on_signal):
            if with_worker:
                worker = threading.Thread(target=sf.serve_worker, args=(stop,), name="storeflow-worker", daemon=True)
                worker.start()
            try:
                server.run(sockets=[sock])
            except SystemExit as exc:
                raise CliError(f"the API stopped while starting (exit {exc.code}); see the log above") from None
    finally:
        stop.set()
        sf.wake()
        sock.close()
        if worker is not None:
            worker.join(WORKER_JOIN_TIMEOUT_S)
            if worker.is_alive():
                warn(f"the worker did not stop within {WORKER_JOIN_TIMEOUT_S:.0f}s; exiting anyway")
    line("storeflow stopped")
