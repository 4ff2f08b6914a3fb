"""Test media: an aiortc video track of a given size and a tone, both paced by a clock."""

from __future__ import annotations

import asyncio
import fractions
import math
import time

import numpy as np
from aiortc import MediaStreamTrack
from av import AudioFrame, VideoFrame

VIDEO_CLOCK = 90000


class PatternVideoTrack(MediaStreamTrack):
    """Raw frames of ``width`` x ``height`` with a moving bar, at ``fps`` (aiortc encodes)."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        target = self._start + self._count / self.fps
        await asyncio.sleep(max(0.0, target - time.monotonic()))
        image = np.full((self.height, self.width, 3), 64, dtype=np.uint8)
        x = (self._count * 8) % self.width
        image[:, x : x + 16] = 230
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = int(self._count * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A 440 Hz tone in 20 ms frames, paced by a clock."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._count * 0.02 - time.monotonic()))
        t = (np.arange(960) + self._count * 960) / 48000
        samples = (np.sin(2 * math.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._count * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self._count += 1
        return frame


async def receive_frames(track: MediaStreamTrack, count: int, timeout: float = 30.0) -> list:
    """The next ``count`` decoded frames of a received track (bounded in time)."""
    frames = []

    async def pull() -> None:
        while len(frames) < count:
            frames.append(await track.recv())

    await asyncio.wait_for(pull(), timeout)
    return frames
