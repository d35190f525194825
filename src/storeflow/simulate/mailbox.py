"""A local SMTP server that keeps every message it receives as an ``.eml`` file.

    with Mailbox(folder / "mail", now=clock.now) as box:   # 127.0.0.1, an ephemeral port
        settings = Settings(smtp_host=box.host, smtp_port=box.port, ...)

One file per message and recipient, named by the time it arrived (``now``: the virtual clock in the
demo) and the recipient, e.g. ``20260302T101500Z-00017-ana.souza@correio.example.eml``. The files
are the exact bytes the server received; any mail program opens them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from aiosmtpd.controller import Controller

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")
_LOGGER = "mail.log"  # aiosmtpd's logger: one line per connection and command at INFO


def _now() -> datetime:
    return datetime.now(UTC)


class _Keeper:
    """The aiosmtpd handler: write the DATA of each message to a file per recipient."""

    def __init__(self, folder: Path, now: Callable[[], datetime]) -> None:
        self.folder, self.now = folder, now
        self.count = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        stamp = self.now().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        for rcpt in envelope.rcpt_tos:
            with self._lock:
                self.count += 1
                seq = self.count
            name = f"{stamp}-{seq:05d}-{_UNSAFE.sub('_', str(rcpt))[:120]}.eml"
            tmp = self.folder / f".{name}.tmp"
            tmp.write_bytes(data)
            tmp.replace(self.folder / name)
        return "250 Message accepted for delivery"


class EphemeralController(Controller):
    """aiosmtpd's Controller with ``port=0``: learns the port the OS picked before its self-test."""

    def _trigger_server(self) -> None:
        server = cast("asyncio.Server | None", self.server)
        if self.port == 0 and server is not None:
            self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class Mailbox:
    """An SMTP server on ``host`` (an ephemeral port) that stores every message in ``folder``."""

    def __init__(self, folder: Path, *, now: Callable[[], datetime] = _now, host: str = "127.0.0.1") -> None:
        self.folder = folder
        self.host = host
        self._keeper = _Keeper(folder, now)
        self._controller: EphemeralController | None = None
        self._log_level: int | None = None

    @property
    def now(self) -> Callable[[], datetime]:
        """The clock that names the files (the demo switches from virtual to wall time)."""
        return self._keeper.now

    @now.setter
    def now(self, now: Callable[[], datetime]) -> None:
        self._keeper.now = now

    @property
    def port(self) -> int:
        if self._controller is None:
            raise RuntimeError("the mailbox is not running; call start() first")
        return int(self._controller.port)

    @property
    def count(self) -> int:
        """Messages stored (one per recipient) since start."""
        return self._keeper.count

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.eml"))

    def start(self) -> Mailbox:
        if self._controller is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        logger = logging.getLogger(_LOGGER)
        self._log_level = logger.level
        logger.setLevel(logging.ERROR)
        controller = EphemeralController(self._keeper, hostname=self.host, port=0, ready_timeout=10.0)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
        if self._log_level is not None:
            logging.getLogger(_LOGGER).setLevel(self._log_level)
            self._log_level = None

    def __enter__(self) -> Mailbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
