"""Live status over server-sent events, from one shared collector.

However many pages are open, the backend and ``/proc`` are read once per interval by a
single task, and every subscriber gets the same JSON; that avoids a polling storm of
browsers each triggering its own collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from edge_common.lifecycle import TaskSet

from .sysinfo import SysInfo

log = logging.getLogger(__name__)
MAX_SUBSCRIBERS = 16


class StatusHub:
    """Collects a snapshot every ``interval_s`` while anyone is subscribed, and fans it out."""

    def __init__(
        self,
        source: Callable[[], Mapping[str, Any]],
        sysinfo: SysInfo,
        *,
        interval_s: float = 2.0,
    ) -> None:
        self._source = source
        self._sysinfo = sysinfo
        self.interval_s = interval_s
        self._queues: set[asyncio.Queue[str]] = set()
        self._tasks = TaskSet("status hub")
        #: The collector, while one runs (it ends by itself when nobody listens).
        self._task: asyncio.Task[None] | None = None
        self._latest: str | None = None

    def collect(self) -> dict[str, Any]:
        """One snapshot: the appliance's state plus system metrics; never raises."""
        try:
            app_state = dict(self._source())
        except Exception as exc:  # a status page must keep working when the backend fails
            log.warning("status snapshot failed: %s", type(exc).__name__)
            app_state = {"state": "unknown", "last_errors": [f"status: {type(exc).__name__}"]}
        return {"time": time.time(), "app": app_state, "system": self._sysinfo.snapshot()}

    def subscribe(self) -> asyncio.Queue[str] | None:
        """A queue of JSON strings, or ``None`` when too many pages are open."""
        if len(self._queues) >= MAX_SUBSCRIBERS:
            return None
        q: asyncio.Queue[str] = asyncio.Queue(maxsize=2)
        if self._latest is not None:
            q.put_nowait(self._latest)
        self._queues.add(q)
        if self._task is None or self._task.done():
            self._task = self._tasks.spawn(self._run(), name="provisioning-status")
        return q

    def unsubscribe(self, q: asyncio.Queue[str]) -> None:
        """Stop feeding ``q``; the collector stops once nobody listens."""
        self._queues.discard(q)

    async def _run(self) -> None:
        while self._queues:
            data = json.dumps(self.collect(), default=str)
            self._latest = data
            for q in list(self._queues):
                if q.full():  # a slow reader gets the newest state, not a backlog
                    with contextlib.suppress(asyncio.QueueEmpty):
                        q.get_nowait()
                q.put_nowait(data)
            await asyncio.sleep(self.interval_s)
        self._task = None

    async def close(self) -> None:
        """End every stream (an empty item tells a stream to finish) and stop the collector."""
        for q in list(self._queues):
            with contextlib.suppress(asyncio.QueueEmpty):
                q.get_nowait()
            q.put_nowait("")
        self._queues.clear()
        self._task = None
        await self._tasks.close()
