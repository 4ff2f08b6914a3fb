"""The one way events cross from a worker thread onto the asyncio event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Generic, TypeVar

from .lifecycle import Closeable

T = TypeVar("T")


class ThreadBridge(Closeable, Generic[T]):
    """Hands items produced on other threads to a callback running on ``loop``.

    Hardware callbacks (gpiozero, encoder outputs, ALSA workers) run on their own threads;
    nothing there may touch asyncio objects directly. ``post`` is safe from any thread and
    never blocks; after ``close`` (or once the loop is closed) items are dropped silently,
    because a device thread finishing late during shutdown is normal.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[T], None]) -> None:
        super().__init__()
        self._loop = loop
        self._callback = callback

    def post(self, item: T) -> None:
        """Schedule ``callback(item)`` on the loop. Callable from any thread."""
        if self.closed:
            return
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            self._loop.call_soon_threadsafe(self._deliver, item)

    def _deliver(self, item: T) -> None:
        if not self.closed:
            self._callback(item)

    # ``close`` (from Closeable) stops delivering: items already scheduled are dropped.
