"""Limits that keep idle or hostile TCP clients from taking the unit down.

Three defences, all below the application:

- a header deadline: a connection that has not completed a request's headers within
  ``header_timeout`` seconds of connecting (or of its previous response) is closed. aiohttp's
  ``keepalive_timeout`` is exactly that timer: it starts when the connection is made, is
  re-armed after each response and only fires while the handler waits for a request, so a
  WebSocket or a long request in progress is never cut by it.
- a cap on simultaneous connections per client address and in total, enforced when the
  connection is accepted (the excess is reset at once, before aiohttp sees it), so one client
  cannot use up the process's file descriptors;
- accept errors (``EMFILE`` and friends) logged once per interval: asyncio logs one per
  attempt, which under pressure is thousands of tracebacks a second.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

log = logging.getLogger("edge_appliance.net")

#: The message asyncio's selector loop reports when ``accept()`` fails for lack of resources.
ACCEPT_ERROR = "socket.accept() out of system resource"


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to send its headers and how many connections it may hold."""

    #: Seconds a connection may stay open without a complete request (headers) in flight.
    header_timeout: float = 5.0
    #: Simultaneous connections from one client address (a browser uses about 7).
    per_client: int = 64
    #: Simultaneous HTTP connections in all; ``0`` derives it from ``RLIMIT_NOFILE``.
    total: int = 0
    #: At most one log line per this many seconds for repeated accept errors.
    accept_log_interval: float = 10.0

    def total_cap(self) -> int:
        """``total``, or three quarters of the descriptor limit (the rest is for media, files)."""
        if self.total > 0:
            return self.total
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return max(64, soft * 3 // 4)

    def handler_args(self) -> dict[str, Any]:
        """Keyword arguments for aiohttp's request handler (``web.AppRunner(**...)``)."""
        return {"keepalive_timeout": self.header_timeout}


class ConnectionGuard:
    """Counts open connections per client address and refuses those over the caps."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.total_cap = limits.total_cap()
        self.per_client: dict[str, int] = {}
        self.total = 0
        self.refused = 0
        self._last_refusal_log = 0.0

    def admit(self, host: str) -> bool:
        """Count a new connection from ``host``; False (and nothing counted) if over a cap."""
        held = self.per_client.get(host, 0)
        if held >= self.limits.per_client or self.total >= self.total_cap:
            self.refused += 1
            now = time.monotonic()
            if now - self._last_refusal_log >= self.limits.accept_log_interval:
                self._last_refusal_log = now
                log.warning(
                    "refusing connections: %s holds %d (cap %d), %d open in all (cap %d); "
                    "%d refused so far",
                    host,
                    held,
                    self.limits.per_client,
                    self.total,
                    self.total_cap,
                    self.refused,
                )
            return False
        self.per_client[host] = held + 1
        self.total += 1
        return True

    def release(self, host: str) -> None:
        """Forget one connection from ``host``."""
        held = self.per_client.get(host, 0) - 1
        if held <= 0:
            self.per_client.pop(host, None)
        else:
            self.per_client[host] = held
        self.total -= 1

    def protocol_factory(
        self, inner: Callable[[], asyncio.Protocol], tls: ssl.SSLContext | None = None
    ) -> Callable[[], asyncio.Protocol]:
        """Wrap aiohttp's protocol factory so every connection passes :meth:`admit` first
        (and, with ``tls``, its TLS handshake within ``header_timeout``)."""
        return lambda: _GuardedProtocol(self, inner(), tls)


class _GuardedProtocol(asyncio.Protocol):
    """Admits or resets a connection, does the TLS handshake, then hands every event to
    aiohttp's protocol.

    The handshake happens here, not in ``create_server(ssl=...)``, so that a connection is
    counted (and capped) from the moment it is accepted and a client that never completes
    the handshake is dropped after ``header_timeout`` rather than asyncio's 60 s.
    """

    def __init__(
        self, guard: ConnectionGuard, inner: asyncio.Protocol, tls: ssl.SSLContext | None
    ) -> None:
        self._guard = guard
        self._inner = inner
        self._tls = tls
        self._host: str | None = None
        self._started = False
        # Bytes decrypted between the end of the handshake and start_tls() returning.
        self._early: list[bytes] = []
        self._handshake: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self._guard.admit(host):
            # abort(): a reset frees the descriptor now, without a FIN handshake to wait for.
            cast(asyncio.Transport, transport).abort()
            return
        self._host = host
        if self._tls is None:
            self._start(transport)
        else:
            self._handshake = asyncio.ensure_future(
                self._start_tls(cast(asyncio.Transport, transport), self._tls)
            )

    async def _start_tls(self, transport: asyncio.Transport, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self._guard.limits.header_timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.debug("TLS handshake with %s failed: %s", self._host, exc)
            transport.abort()
            self._release()
            return
        if tls is None or self._host is None:
            return
        self._start(tls)

    def _start(self, transport: asyncio.BaseTransport) -> None:
        self._started = True
        self._inner.connection_made(transport)
        early, self._early = self._early, []
        for data in early:
            self._inner.data_received(data)

    def data_received(self, data: bytes) -> None:
        if self._started:
            self._inner.data_received(data)
        elif self._host is not None:
            self._early.append(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._started else None

    def pause_writing(self) -> None:
        if self._started:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._started:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._release() and self._started:
            self._inner.connection_lost(exc)

    def _release(self) -> bool:
        """Uncount the connection, once; False if it was never counted or already was."""
        host, self._host = self._host, None
        if host is None:
            return False
        self._guard.release(host)
        return True


class GuardedTCPSite(web.TCPSite):
    """``web.TCPSite`` whose connections pass a :class:`ConnectionGuard` (TLS included)."""

    __slots__ = ("_guard",)

    def __init__(self, runner: web.BaseRunner, *args: Any, guard: ConnectionGuard, **kw: Any):
        super().__init__(runner, *args, **kw)
        self._guard = guard

    async def start(self) -> None:
        """As ``TCPSite.start``, with the guard around aiohttp's protocol factory."""
        # BaseSite.start registers the site with the runner; TCPSite.start would then bind
        # with the bare factory, so bind here instead (same arguments as aiohttp's, except
        # that TLS is the guard's job: see _GuardedProtocol).
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.protocol_factory(server, self._ssl_context),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


class AcceptErrorLimiter:
    """A loop exception handler that reports each repeated accept error once per interval.

    Everything else goes to the handler that was installed before (or the default one).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop = loop
        self._interval = interval
        self._previous = loop.get_exception_handler()
        self._last = -interval
        self._suppressed = 0

    def install(self) -> None:
        """Become the loop's exception handler."""
        self._loop.set_exception_handler(self)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != ACCEPT_ERROR:
            self._forward(context)
            return
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        self._last = now
        exc = context.get("exception")
        log.error(
            "%s: %s (%d more in the last %.0f s not logged; asyncio retries every second)",
            ACCEPT_ERROR,
            exc,
            self._suppressed,
            self._interval,
        )
        self._suppressed = 0

    def _forward(self, context: dict[str, Any]) -> None:
        if self._previous is not None:
            self._previous(self._loop, context)
        else:
            self._loop.default_exception_handler(context)
