"""Test media: an aiortc video track of a given size and a tone, both paced by a clock."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import itertools
import math
import time
from typing import Any

import av
import numpy as np
from aiortc import MediaStreamTrack
from av import AudioFrame, VideoFrame
from av.video.frame import PictureType

from edge_sfu.client import EncodedVideoTrack
from edge_sfu.media import EncodedFrame, LocalProducer

VIDEO_CLOCK = 90000


def h264_encoder(width: int, height: int, fps: int, **options: str) -> Any:
    """A single-threaded low-latency baseline libx264 encoder (``options`` add to the x264 ones)."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = fractions.Fraction(1, fps)
    codec.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "profile": "baseline",
        "threads": "1",
        **options,
    }
    return codec


class PatternVideoTrack(MediaStreamTrack):
    """Raw frames of ``width`` x ``height`` with a moving bar, at ``fps`` (aiortc encodes)."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._start: float | None = None
        self._count = 0

    @property
    def pulled(self) -> int:
        """How many frames the sender has taken (each one it encodes)."""
        return self._count

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
    """A 440 Hz tone in 20 ms frames, paced by a clock; ``amplitude`` 0 sends silence."""

    kind = "audio"

    def __init__(self, amplitude: int = 8000) -> None:
        super().__init__()
        self.amplitude = amplitude
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._count * 0.02 - time.monotonic()))
        t = (np.arange(960) + self._count * 960) / 48000
        samples = (np.sin(2 * math.pi * 440 * t) * self.amplitude).astype(np.int16).reshape(1, -1)
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


async def frames_until(
    track: MediaStreamTrack, size: tuple[int, int], count: int = 5, timeout: float = 60.0
) -> list:
    """Decoded frames of a received track until ``count`` in a row are ``size`` (width,
    height): a layer switch waits for a keyframe, so when it lands depends on the source."""
    frames: list = []
    run = 0

    async def pull() -> None:
        nonlocal run
        while run < count:
            frame = await track.recv()
            frames.append(frame)
            run = run + 1 if (frame.width, frame.height) == size else 0

    try:
        await asyncio.wait_for(pull(), timeout)
    except TimeoutError:
        last = [(f.width, f.height) for f in frames[-5:]]
        raise AssertionError(f"no run of {count} frames at {size} in {timeout} s: {last}") from None
    return frames


class H264TestSource:
    """PyAV ``testsrc2`` through libx264 into a ``LocalProducer`` (in-process) or the Python
    client's ``EncodedVideoTrack``, paced by the clock."""

    def __init__(
        self,
        producer: LocalProducer | EncodedVideoTrack,
        width: int,
        height: int,
        fps: int = 15,
        layer: str = "default",
        lavfi: str = "testsrc2",
    ) -> None:
        """``lavfi`` is the picture: ``testsrc2``, or a known colour (``color=c=red``)."""
        self.producer = producer
        self.lavfi = lavfi
        self.layer = layer
        self.width, self.height, self.fps = width, height, fps
        self.frames = 0
        self._keyframe = True
        self.keyframe_requests = 0
        previous = producer.on_keyframe_request
        if isinstance(producer, EncodedVideoTrack):
            producer.on_keyframe_request = lambda: self._want_keyframe(layer)
        elif previous is None:
            producer.on_keyframe_request = self._want_keyframe
        else:  # several layers (one source each) share the producer's callback

            def both(layer: str) -> None:
                previous(layer)
                self._want_keyframe(layer)

            producer.on_keyframe_request = both
        self._task = asyncio.create_task(self._run())

    def _want_keyframe(self, layer: str) -> None:
        if layer == self.layer:
            self.keyframe_requests += 1
            self._keyframe = True

    def _encoder(self) -> Any:
        return h264_encoder(self.width, self.height, self.fps, g=str(self.fps * 2))

    async def _run(self) -> None:
        size = f"{self.width}x{self.height}"
        sep = ":" if "=" in self.lavfi else "="
        source = av.open(f"{self.lavfi}{sep}size={size}:rate={self.fps}", format="lavfi")
        encoder = self._encoder()
        start = time.monotonic()
        try:
            for frame in source.decode(video=0):
                await asyncio.sleep(max(0.0, start + self.frames / self.fps - time.monotonic()))
                frame = frame.reformat(format="yuv420p")
                # lavfi marks every frame as an I-frame: reset, or each one becomes an IDR.
                frame.pict_type = PictureType.I if self._keyframe else PictureType.NONE
                self._keyframe = False
                frame.pts = self.frames
                for packet in encoder.encode(frame):
                    self._push(bytes(packet), packet.is_keyframe, time.monotonic_ns() // 1000)
                self.frames += 1
        finally:
            source.close()

    def _push(self, data: bytes, keyframe: bool, now_us: int) -> None:
        if isinstance(self.producer, EncodedVideoTrack):
            self.producer.push(data, keyframe, now_us)
        else:
            self.producer.push(EncodedFrame(data, keyframe, now_us, self.layer))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class OpusMicrophone:
    """A tone through libopus into a local producer, 20 ms a packet, paced by the clock;
    ``pushed`` keeps each packet with its wall-clock push time."""

    def __init__(self, producer: LocalProducer, frequency: float = 440.0) -> None:
        self.producer = producer
        self.frequency = frequency
        self.pushed: list[tuple[bytes, float]] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        encoder = av.CodecContext.create("libopus", "w")
        encoder.sample_rate, encoder.layout, encoder.format = 48000, "mono", "s16"
        encoder.time_base = fractions.Fraction(1, 48000)
        start = time.monotonic()
        for n in itertools.count():
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
            t = (np.arange(960) + n * 960) / 48000
            pcm = (np.sin(2 * math.pi * self.frequency * t) * 8000).astype(np.int16)
            frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts = 48000, n * 960
            for packet in encoder.encode(frame):
                data = bytes(packet)
                self.pushed.append((data, time.time()))
                self.producer.push(EncodedFrame(data, True, time.monotonic_ns() // 1000))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
