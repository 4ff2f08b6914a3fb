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

from . import protocol as p

logger = logging.getLogger(__name__)


class WebSocketLink:
    """Queue-backed sender over an aiohttp ``WebSocketResponse``."""

    def __init__(self, ws: web.WebSocketResponse, queue_size: int, peer: str = "") -> None:
        self.ws = ws
        self.peer = peer
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=queue_size)
        self._closing: tuple[int, str] | None = None
        self._writer = asyncio.create_task(self._write(), name=f"signaling-writer {peer}")

    @property
    def closed(self) -> bool:
        """Whether the link no longer sends."""
        return self._closing is not None or self.ws.closed

    def send(self, message: dict[str, Any]) -> bool:
        """Queue ``message``; on overflow the link closes (the client is too slow)."""
        if self.closed:
            return False
        try:
            self._queue.put_nowait(p.encode(message))
        except asyncio.QueueFull:
            logger.warning("signaling %s: send queue full, closing", self.peer)
            self._begin_close(p.CLOSE_GOING_AWAY, f"{p.SIGNALING_ERROR} client too slow")
            return False
        return True

    def _begin_close(self, code: int, reason: str) -> None:
        if self._closing is not None:
            return
        self._closing = (code, reason)
        if self._queue.full():
            # Overflow: what is queued will never be read in time; drop it.
            while not self._queue.empty():
                self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def close(self, code: int, reason: str) -> None:
        """Flush what is queued, then close the socket with ``code`` and ``reason``."""
        self._begin_close(code, reason)
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._writer), 10.0)
        if not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._close_socket()

    async def _close_socket(self) -> None:
        code, reason = self._closing or (p.CLOSE_NORMAL, "")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.ws.close(code=code, message=reason.encode("utf-8")[:120]), 5.0
            )

    async def _write(self) -> None:
        try:
            while (text := await self._queue.get()) is not None:
                await asyncio.wait_for(self.ws.send_str(text), 10.0)
        except (ConnectionError, RuntimeError, TimeoutError):
            self._closing = self._closing or (p.CLOSE_GOING_AWAY, "send failed")
        # Ends the reader loop of the route too, which then reports the link lost.
        await self._close_socket()
