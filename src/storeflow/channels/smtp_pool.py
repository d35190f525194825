"""SMTP configuration and a thread-safe pool of open, logged-in ``smtplib`` connections.

The pool never holds more than ``pool_size`` connections (in use plus idle). A thread takes one with
:meth:`SmtpPool.acquire` (waiting up to ``timeout_s`` when all are busy), uses it for one transaction
and gives it back with :meth:`SmtpPool.release`, saying whether it is still fit for reuse. A connection
that sat idle longer than ``idle_check_s`` is checked with ``NOOP`` before it is handed out, and
replaced when the server has dropped it.

Connection problems surface as the ``OSError`` / ``smtplib.SMTPException`` that caused them; the email
channel classifies them. The password is only ever handed to ``SMTP.login``; it is not part of any
repr, message or log line.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

from storeflow.errors import ConfigError, DeliveryError

if TYPE_CHECKING:
    from storeflow.settings import Settings

log = logging.getLogger("storeflow.channels.email")

SmtpSecurity = Literal["none", "starttls", "tls"]
IDLE_CHECK_S = 30.0
MAX_POOL_SIZE = 100


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to submit mail. ``security``: ``none`` (plain), ``starttls`` or ``tls`` (implicit).

    A login (``username``) over ``none`` would send the password in clear text: it is refused
    unless ``allow_plaintext_auth`` is set, whatever the host (a relay on this machine included:
    saying so once in the settings costs little, and a host name that resolves to loopback today
    may not tomorrow).
    """

    host: str
    port: int
    security: SmtpSecurity = "none"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    pool_size: int = 4
    allow_plaintext_auth: bool = False

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() for c in self.host):
            raise ConfigError(f"smtp_host must be a host name or address, got {self.host!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"smtp_port must be in 1..65535, got {self.port}")
        if self.security not in get_args(SmtpSecurity):
            raise ConfigError(f"smtp_security must be none, starttls or tls, got {self.security!r}")
        if not 0 < self.timeout_s <= 300:
            raise ConfigError(f"smtp_timeout_s must be in (0, 300], got {self.timeout_s}")
        if not 1 <= self.pool_size <= MAX_POOL_SIZE:
            raise ConfigError(f"smtp_pool_size must be in 1..{MAX_POOL_SIZE}, got {self.pool_size}")
        if self.username is not None and self.password is None:
            raise ConfigError("smtp_username is set but smtp_password is not")
        if self.password is not None and not self.username:
            raise ConfigError("smtp_password is set but smtp_username is not")
        in_clear = self.security == "none" and self.username is not None
        if in_clear and not self.allow_plaintext_auth:
            raise ConfigError(
                f"smtp_security = none would send the SMTP password in clear text to {self.where}; "
                "use smtp_security = starttls or tls, or set smtp_allow_plaintext_auth = true "
                "(STOREFLOW_SMTP_ALLOW_PLAINTEXT_AUTH) if the network to the server is trusted"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password is not None else None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username or None,
            password=password,
            timeout_s=settings.smtp_timeout_s,
            pool_size=settings.smtp_pool_size,
            allow_plaintext_auth=settings.smtp_allow_plaintext_auth,
        )

    @property
    def where(self) -> str:
        """``host:port`` for messages (no credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class PoolTimeoutError(DeliveryError):
    """Every pooled connection stayed busy for the whole wait."""


class PoolClosedError(DeliveryError):
    """The pool was closed (the channel is shutting down)."""


@dataclass(eq=False)
class PooledConnection:
    """One open connection. ``uses`` counts transactions started on it before this checkout."""

    smtp: smtplib.SMTP
    opened_at: float
    last_used: float
    uses: int = 0

    @property
    def reused(self) -> bool:
        return self.uses > 0


class SmtpPool:
    def __init__(
        self,
        config: SmtpConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        idle_check_s: float = IDLE_CHECK_S,
        local_hostname: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``ssl_context`` defaults to ``ssl.create_default_context()`` (verifies the server name)."""
        self.config = config
        self._ssl_context = ssl_context
        self._idle_check_s = idle_check_s
        self._local_hostname = local_hostname
        self._monotonic = monotonic
        self._slots = threading.BoundedSemaphore(config.pool_size)
        self._lock = threading.Lock()
        self._idle: list[PooledConnection] = []  # most recently used last
        self._closed = False
        self.opened = 0  # connections opened over the pool's life (for tests and metrics)

    # -- taking and returning -------------------------------------------------------------------

    def acquire(self, timeout_s: float | None = None) -> PooledConnection:
        """An open, logged-in connection for the caller's exclusive use; hand it back with release()."""
        wait = self.config.timeout_s if timeout_s is None else timeout_s
        if self._closed:
            raise PoolClosedError("the email channel is closed")
        if not self._slots.acquire(timeout=wait):
            raise PoolTimeoutError(
                f"all {self.config.pool_size} SMTP connections to {self.config.where} stayed busy for {wait:g}s"
            )
        try:
            return self._checkout()
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn: PooledConnection, *, reusable: bool) -> None:
        """Give ``conn`` back; it is kept for the next message only if ``reusable`` and still open."""
        try:
            conn.uses += 1
            conn.last_used = self._monotonic()
            keep = reusable and conn.smtp.sock is not None
            if keep:
                with self._lock:
                    if not self._closed:
                        self._idle.append(conn)
                        return
            _quit(conn.smtp)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Quit every idle connection; connections in use are closed when they are released."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            _quit(conn.smtp)

    @property
    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    # -- internals ------------------------------------------------------------------------------

    def _checkout(self) -> PooledConnection:
        while True:
            with self._lock:
                if self._closed:
                    raise PoolClosedError("the email channel is closed")
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._open()
            if self._monotonic() - conn.last_used <= self._idle_check_s or _alive(conn.smtp):
                return conn
            log.debug("pooled SMTP connection to %s went stale; reconnecting", self.config.where)
            _quit(conn.smtp)

    def _open(self) -> PooledConnection:
        cfg = self.config
        context = self._ssl_context
        if context is None and cfg.security != "none":
            context = ssl.create_default_context()
        # Connecting in the constructor sets the name TLS verifies the certificate against; if it fails,
        # smtplib has already closed the socket.
        smtp: smtplib.SMTP
        if cfg.security == "tls":
            smtp = smtplib.SMTP_SSL(
                cfg.host, cfg.port, local_hostname=self._local_hostname, timeout=cfg.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, local_hostname=self._local_hostname, timeout=cfg.timeout_s)
        try:
            smtp.ehlo_or_helo_if_needed()
            if cfg.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if cfg.username is not None and cfg.password is not None:
                smtp.login(cfg.username, cfg.password)
        except BaseException:
            smtp.close()
            raise
        now = self._monotonic()
        with self._lock:
            self.opened += 1
        return PooledConnection(smtp, opened_at=now, last_used=now)


def _alive(smtp: smtplib.SMTP) -> bool:
    try:
        code, _ = smtp.noop()
    except (smtplib.SMTPException, OSError):
        return False
    return code == 250


def _quit(smtp: smtplib.SMTP) -> None:
    """QUIT politely when the connection is open; always close the socket."""
    try:
        if smtp.sock is not None:
            smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()
