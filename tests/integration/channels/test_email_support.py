"""A real SMTP server for the email channel tests (no tests here; the name only fits test_email*).

:class:`SmtpRecorder` runs ``aiosmtpd`` on 127.0.0.1 with an ephemeral port in its own thread. Its
handler stores every accepted message, counts connections (one aiosmtpd protocol object per TCP
connection, so STARTTLS does not count twice), counts NOOPs and QUITs, and can be told to answer a
recipient or DATA with a given reply (``"451 ..."``, ``"550 ..."``).
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from storeflow.simulate.mailbox import EphemeralController


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    connection: int  # index of the connection it came over
    tls: bool
    login: bytes | None

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


class RecordingHandler:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.connections: list[Any] = []  # aiosmtpd SMTP objects, one per connection
        self.rcpt_replies: dict[str, str] = {}
        self.data_reply: str | None = None
        self.noops = 0
        self.quits = 0

    def _connection(self, server: Any) -> int:
        with self.lock:
            for index, seen in enumerate(self.connections):
                if seen is server:
                    return index
            self.connections.append(server)
            return len(self.connections) - 1

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self._connection(server)
        return responses

    async def handle_NOOP(self, server: Any, session: Any, envelope: Any, arg: str) -> str:
        with self.lock:
            self.noops += 1
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.quits += 1
        return "221 Bye"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply is not None:
            return self.data_reply
        auth = session.auth_data
        received = Received(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=envelope.original_content,
            connection=self._connection(server),
            tls=session.ssl is not None,
            login=getattr(auth, "login", None),
        )
        with self.lock:
            self.messages.append(received)
        return "250 2.0.0 Ok: queued as Q123"


class SmtpRecorder:
    """Start with :meth:`start`, always :meth:`stop` (a fixture's ``finally``)."""

    def __init__(
        self, *, port: int = 0, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1", **smtp_kwargs: Any
    ) -> None:
        self.handler = RecordingHandler()
        self.host = host
        smtp_kwargs.setdefault("server_hostname", "smtp.test")
        self._controller = EphemeralController(
            self.handler, hostname=host, port=port, ssl_context=ssl_context, **smtp_kwargs
        )
        self.port = port
        self.running = False

    def start(self) -> SmtpRecorder:
        self._controller.start()
        self.port = self._controller.port
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.running = False
            self._controller.stop()

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def connection_count(self) -> int:
        with self.handler.lock:
            return len(self.handler.connections)
