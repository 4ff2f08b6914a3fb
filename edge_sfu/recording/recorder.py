"""``TrackRecorder``: one recorded track, a local consumer writing a Matroska file.

The recorder is one more subscriber of the track's producer (``Router.consume_local``): it
gets the forwarded frames (the top layer of a layered publication, since it asks for no
render size), never decodes them, and appends them to an ``MkvWriter`` on the event loop
(one ``write`` per finished cluster, to the page cache). A worker thread fsyncs the file
every second, so a power cut loses at most the last two seconds.

Times: a frame's time on the file is milliseconds since the room started. The first frame
anchors the track's RTP clock to the wall clock at its arrival; later frames follow their
own timestamps, so jitter does not move them, and audio and video of one publisher line up
as they arrived. A jump of the source's clock (a layer switch, a restarted encoder) anchors
it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edge_common.lifecycle import TaskSet

from .mkv import MkvWriter

if TYPE_CHECKING:
    from ..media import EncodedFrame, LocalConsumer, Producer, Router

log = logging.getLogger(__name__)

#: How often the file is fsynced (seconds).
SYNC_INTERVAL = 1.0
#: A source timestamp this far from the wall clock (ms) is re-anchored.
MAX_DRIFT_MS = 5000


class TrackRecorder:
    """Records one producer into ``path`` (see the module docstring).

    ``on_first_frame(offset_ms)`` runs once the file exists; ``on_tick()`` every second
    (the service checks the disk there). ``stop()`` finishes the file and returns its
    duration in seconds and size in bytes.
    """

    def __init__(
        self,
        path: Path,
        codec: str,
        room_started: float,
        *,
        on_first_frame: Callable[[int], None],
        on_tick: Callable[[TrackRecorder], None],
    ) -> None:
        """``room_started`` is the room's start as a Unix time."""
        self.path = path
        self.writer = MkvWriter(path, codec)
        self._room_started = room_started
        self._anchor_ms: int | None = None
        self._on_first_frame = on_first_frame
        self._on_tick = on_tick
        self._consumer: LocalConsumer | None = None
        self._tasks = TaskSet(f"recorder {path.name}")
        self._stopped = False
        self._sync_lock = asyncio.Lock()

    def start(self, router: Router, producer: Producer) -> None:
        """Subscribe to ``producer`` and start the periodic fsync."""
        self._consumer = router.consume_local(producer, self._on_frame)
        self._tasks.spawn(self._sync_forever(), name=f"sync-{self.path.name}")

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self.writer.size

    def _now_ms(self) -> int:
        return int((time.time() - self._room_started) * 1000)

    def _on_frame(self, frame: EncodedFrame) -> None:
        if self._stopped:
            return
        source_ms = frame.timestamp_us // 1000
        if self._anchor_ms is None or abs(self._anchor_ms + source_ms - self._now_ms()) > (
            MAX_DRIFT_MS
        ):
            self._anchor_ms = self._now_ms() - source_ms
        started = self.writer.started
        try:
            self.writer.add(frame.data, frame.keyframe, self._anchor_ms + source_ms)
        except OSError as exc:  # the disk is full or gone: keep what is there
            log.warning("recording %s stopped: %s", self.path.name, exc)
            self._detach()
            return
        if not started and self.writer.started and self.writer.first_ms is not None:
            self._on_first_frame(self.writer.first_ms)

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            if self._anchor_ms is not None:
                self.writer.flush_stale(self._now_ms())
            async with self._sync_lock:
                await asyncio.to_thread(self.writer.sync)
            self._on_tick(self)

    def _detach(self) -> None:
        self._stopped = True
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    async def stop(self) -> tuple[float, int]:
        """Unsubscribe and finish the file; ``(duration in seconds, size in bytes)``."""
        self._detach()
        await self._tasks.close()
        async with self._sync_lock:
            duration = await asyncio.to_thread(self.writer.finish)
        return duration, self.writer.size
