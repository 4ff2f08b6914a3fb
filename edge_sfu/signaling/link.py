"""``WebSocketLink``: one signaling WebSocket with a bounded outbound queue.

Room events arrive from synchronous listeners, so sending must never block or await: a
message is queued and a writer task drains the queue. A client too slow to keep up (its
queue full) is closed rather than allowed to grow memory or delay anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from edge_common.lifecycle import AsyncCloseable, TaskSet

from . import protocol as p

logger = logging.getLogger(__name__)


class WebSocketLink(AsyncCloseable):
    """Queue-backed sender over an aiohttp ``WebSocketResponse``."""

    def __init__(self, ws: web.WebSocketResponse, queue_size: int, peer: str = "") -> None:
        super().__init__()
        self.ws = ws
        self.peer = peer
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=queue_size)
        #: The close code and reason the socket closes with, once decided (the writer may
        #: still be flushing: an overflow decides it before anyone calls ``close``).
        self.close_reason: tuple[int, str] | None = None
        self._tasks = TaskSet(f"signaling link {peer}")
        self._writer = self._tasks.spawn(self._write(), name=f"signaling-writer {peer}")
        self._finished = asyncio.Event()

    @property
    def sending(self) -> bool:
        """Whether the link still sends."""
        return self.close_reason is None and not self.ws.closed

    def send(self, message: dict[str, Any]) -> bool:
        """Queue ``message``; on overflow the link closes (the client is too slow)."""
        if not self.sending:
            return False
        try:
            self._queue.put_nowait(p.encode(message))
        except asyncio.QueueFull:
            logger.warning("signaling %s: send queue full, closing", self.peer)
            self._decide_close(p.CLOSE_GOING_AWAY, f"{p.SIGNALING_ERROR} client too slow")
            return False
        return True

    def _decide_close(self, code: int, reason: str) -> None:
        if self.close_reason is not None:
            return
        self.close_reason = (code, reason)
        if self._queue.full():
            # Overflow: what is queued will never be read in time; drop it.
            while not self._queue.empty():
                self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def close(self, code: int = p.CLOSE_NORMAL, reason: str = "") -> None:
        """Flush what is queued, then close the socket with ``code`` and ``reason``.

        The first decision wins: a link closing on overflow keeps that code and reason.
        Every caller returns only once the socket is closed, not just the first: the
        route's handler closes the link when its reader ends, and aiohttp drops the
        connection as soon as the handler returns, so a handler that returned while
        another caller's close still flushed (a ``disconnected`` 53118 on a busy
        machine) would cut that message off and make the client reconnect.
        """
        self._decide_close(code, reason)
        await super().close()
        await self._finished.wait()

    async def _on_close(self) -> None:
        try:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._writer), 10.0)
            await self._tasks.close()  # a writer stuck past the flush time is cancelled
            await self._close_socket()
        finally:
            self._finished.set()

    async def _close_socket(self) -> None:
        code, reason = self.close_reason or (p.CLOSE_NORMAL, "")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.ws.close(code=code, message=reason.encode("utf-8")[:120]), 5.0
            )

    async def _write(self) -> None:
        try:
            while (text := await self._queue.get()) is not None:
                await asyncio.wait_for(self.ws.send_str(text), 10.0)
        except (ConnectionError, RuntimeError, TimeoutError):
            self.close_reason = self.close_reason or (p.CLOSE_GOING_AWAY, "send failed")
        # Ends the reader loop of the route too, which then reports the link lost.
        await self._close_socket()
