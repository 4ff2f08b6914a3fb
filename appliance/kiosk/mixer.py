"""Mixes the other participants' audio for the kiosk's speaker.

This is the one place the appliance decodes media: Opus from each remote audio track is
decoded (libopus through PyAV), turned into 48 kHz mono S16, summed with clipping every
period and handed to the ALSA playback. Inputs that fall behind are padded with silence;
inputs that run ahead are trimmed so one late talker cannot grow the speaker's latency.

PyAV and numpy are imported where they are used: the mixer runs from start-up, but has
nothing to mix (and needs neither) until the first call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edge_common.lifecycle import TaskSet

if TYPE_CHECKING:
    import av
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

RATE = 48_000
#: Most audio one input may queue before its oldest samples are dropped (200 ms).
MAX_QUEUED = RATE // 5


class _Input:
    """One remote track's decoded samples, waiting to be mixed."""

    def __init__(self) -> None:
        import av

        self.chunks: list[npt.NDArray[np.int16]] = []
        self.queued = 0
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self.decoder: Any = None
        #: Loudest sample seen in the last frame (a level meter for the status page).
        self.peak = 0

    def add_frame(self, frame: av.AudioFrame) -> None:
        import numpy as np

        for out in self.resampler.resample(frame):
            samples = out.to_ndarray().reshape(-1).astype(np.int16, copy=False)
            self.peak = int(np.abs(samples.astype(np.int32)).max()) if len(samples) else 0
            self.chunks.append(samples)
            self.queued += len(samples)
        while self.queued > MAX_QUEUED and self.chunks:
            self.queued -= len(self.chunks.pop(0))

    def take(self, n: int) -> npt.NDArray[np.int16] | None:
        import numpy as np

        if self.queued == 0:
            return None
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        while filled < n and self.chunks:
            chunk = self.chunks[0]
            use = min(n - filled, len(chunk))
            out[filled : filled + use] = chunk[:use]
            filled += use
            if use == len(chunk):
                self.chunks.pop(0)
            else:
                self.chunks[0] = chunk[use:]
        self.queued -= filled
        return out


class AudioMixer:
    """Sums every remote input into one stream, one period at a time, on the event loop."""

    def __init__(self, sink: Callable[[bytes], None], period_ms: int = 20) -> None:
        self._sink = sink
        self._period = RATE * period_ms // 1000
        self._interval = period_ms / 1000
        self._inputs: dict[str, _Input] = {}
        self._tasks = TaskSet("audio mixer")
        self.periods_mixed = 0

    def add_opus(self, key: str, packet: bytes) -> None:
        """Decode one Opus packet of input ``key`` (created on first use)."""
        import av

        source = self._inputs.setdefault(key, _Input())
        if source.decoder is None:
            source.decoder = av.CodecContext.create("opus", "r")
            source.decoder.sample_rate = RATE
        try:
            for frame in source.decoder.decode(av.Packet(packet)):
                source.add_frame(frame)
        except av.error.FFmpegError as exc:  # a corrupt packet costs one packet, not the call
            log.debug("opus packet of %s dropped: %s", key, exc)

    def add_frame(self, key: str, frame: av.AudioFrame) -> None:
        """Add an already decoded frame (from aiortc's receiver) of input ``key``."""
        self._inputs.setdefault(key, _Input()).add_frame(frame)

    def add_tone(self, key: str, seconds: float, hz: float = 440.0) -> None:
        """Mix a sine tone as input ``key`` (the status page's speaker test)."""
        import numpy as np

        n = min(int(RATE * seconds), MAX_QUEUED * 5)
        t = np.arange(n) / RATE
        fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)  # no clicks at either end
        tone = (np.sin(2 * np.pi * hz * t) * fade * 8000).astype(np.int16)
        source = self._inputs.setdefault(key, _Input())
        source.chunks.append(tone)
        source.queued += len(tone)

    def levels(self) -> dict[str, int]:
        """The latest peak level of each input (0 to 32767)."""
        return {key: source.peak for key, source in self._inputs.items()}

    def remove(self, key: str) -> None:
        """Forget input ``key`` (its track went away)."""
        self._inputs.pop(key, None)

    def mix_once(self) -> npt.NDArray[np.int16]:
        """One period of the mix (silence when nobody talks)."""
        import numpy as np

        acc = np.zeros(self._period, dtype=np.int32)
        for source in self._inputs.values():
            samples = source.take(self._period)
            if samples is not None:
                acc += samples
        self.periods_mixed += 1
        return np.clip(acc, -32768, 32767).astype(np.int16)

    def start(self) -> None:
        """Start mixing on the running loop."""
        if not self._tasks:
            self._tasks.spawn(self._run(), name="audio-mixer")

    async def close(self) -> None:
        """Stop mixing and forget every input."""
        await self._tasks.close()
        self._inputs.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            # Paced by the loop's clock: ALSA file PCMs are not paced, and the playback
            # jitter buffer absorbs the loop's small scheduling jitter.
            if self._inputs:
                self._sink(self.mix_once().tobytes())
            next_at += self._interval
            delay = next_at - loop.time()
            if delay < -0.2:  # the loop stalled; don't burst to catch up
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(max(delay, 0))
