"""Real aiortc peers for the media tests: a publisher encoding testsrc2 with libx264, and
subscribers that decode what the SFU forwards."""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import av
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from edge_common.bridge import ThreadBridge
from edge_sfu.media import PublicationSlot, Router, Transport
from tests.support.media import h264_encoder

VIDEO_CLOCK = 90000


class SyntheticVideoTrack(VideoStreamTrack):
    """testsrc2 frames at ``fps``, paced from the clock (lavfi is unpaced)."""

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        self._container = av.open(f"testsrc2=size={width}x{height}:rate={fps}", format="lavfi")
        self._frames = self._container.decode(video=0)
        self._fps = fps
        self._n = 0
        self._t0: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self._t0 is None:
            self._t0 = time.monotonic()
        due = self._t0 + self._n / self._fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = next(self._frames)
        frame.pts = self._n * (VIDEO_CLOCK // self._fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        frame.pict_type = av.video.frame.PictureType.NONE
        self._n += 1
        return frame

    def stop(self) -> None:
        super().stop()
        self._container.close()


def codec_caps(kind: str, mime: str) -> list[Any]:
    return [c for c in RTCRtpSender.getCapabilities(kind).codecs if c.mimeType == mime]


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def publish(
    router: Router,
    participant: str,
    tracks: list[tuple[Any, str]],
) -> tuple[RTCPeerConnection, Transport, list[Any]]:
    """A publisher pc sending ``tracks`` [(track, mime)] to a new SFU transport.

    As in production the SFU offers (a receive-only m-line per track) and the publisher
    answers, sending each track on its m-line.
    """
    pc = new_pc()
    transport = router.create_transport(participant)
    slots = [
        transport.add_publication_slot(track.kind, codec=mime.split("/", 1)[1])
        for track, mime in tracks
    ]
    await answer_sending(pc, await transport.create_offer(), dict(zip(slots, tracks, strict=True)))
    await transport.handle_answer(pc.localDescription.sdp)
    producers = [router.produce(transport, transport.incoming[slot.mid]) for slot in slots]
    return pc, transport, producers


async def answer_sending(
    pc: RTCPeerConnection, offer: str, tracks: dict[PublicationSlot, tuple[Any, str]]
) -> None:
    """Apply an SFU offer on ``pc`` and answer it, sending each track on its slot's m-line."""
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    for slot, (track, mime) in tracks.items():
        tx = next(t for t in pc.getTransceivers() if t.mid == slot.mid)
        tx.sender.replaceTrack(track)
        tx.direction = "sendonly"
        tx.setCodecPreferences(codec_caps(track.kind, mime))
    await pc.setLocalDescription(await pc.createAnswer())


class Subscriber:
    """A subscriber pc; keeps decoded frames' sizes and counts per track."""

    def __init__(self, router: Router, participant: str) -> None:
        self.pc = new_pc()
        self.transport = router.create_transport(participant)
        self.frames: dict[str, list[tuple[int, int]]] = {}
        self.audio_frames = 0
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._read(track)))

    async def _read(self, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.frames.setdefault(track.id, []).append((frame.width, frame.height))
                else:
                    self.audio_frames += 1
        except Exception:
            return

    async def negotiate(self) -> None:
        offer = await self.transport.create_offer()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.transport.handle_answer(self.pc.localDescription.sdp)

    def video_count(self) -> int:
        return sum(len(v) for v in self.frames.values())

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.pc.close()


__all__ = ["AudioStreamTrack", "Subscriber", "SyntheticVideoTrack", "publish"]


class LayeredCamera:
    """A stand-in for the kiosk camera: testsrc2 through one libx264 encoder per layer.

    Runs on its own thread (as hardware encoders do) and hands ``EncodedFrame``s to the
    producer's ``push`` through a ``ThreadBridge``, as the appliance's sources do.
    Honors keyframe requests and stops encoding unwanted layers.
    """

    def __init__(self, sizes: dict[str, tuple[int, int]], fps: int = 15) -> None:
        import threading

        self.sizes = sizes
        self.fps = fps
        self.encoded: dict[str, int] = dict.fromkeys(sizes, 0)
        self.keyframes: dict[str, int] = dict.fromkeys(sizes, 0)
        self.wanted: set[str] = set(sizes)
        self.wanted_history: list[frozenset[str]] = []
        self._force: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.producer: Any = None
        self._bridge: Any = None

    def on_keyframe_request(self, layer: str) -> None:
        with self._lock:
            self._force.add(layer)

    def on_wanted_layers(self, layers: frozenset[str]) -> None:
        with self._lock:
            self.wanted = set(layers)
            self.wanted_history.append(layers)
            self._force |= set(layers)  # a restarted encoder starts with a keyframe

    def start(self, producer: Any) -> None:
        import threading

        self.producer = producer
        self._bridge = ThreadBridge(asyncio.get_running_loop(), producer.push)
        self._thread = threading.Thread(target=self._run, name="fake-camera", daemon=True)
        self._thread.start()

    def _encoders(self) -> dict[str, Any]:
        encoders = {}
        for name, (w, h) in self.sizes.items():
            x264 = {"x264-params": "keyint=600:scenecut=0"}
            encoders[name] = h264_encoder(w, h, self.fps, **x264)
        return encoders

    def _run(self) -> None:
        from edge_sfu.media import EncodedFrame

        encoders = self._encoders()
        big = max(self.sizes.values())
        src = av.open(f"testsrc2=size={big[0]}x{big[1]}:rate={self.fps}", format="lavfi")
        frames = src.decode(video=0)
        t0 = time.monotonic()
        n = 0
        try:
            while not self._stop.is_set():
                delay = t0 + n / self.fps - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                picture = next(frames)
                ts_us = time.monotonic_ns() // 1000
                with self._lock:
                    wanted = set(self.wanted)
                    force = self._force & wanted
                    self._force -= force
                for name, codec in encoders.items():
                    if name not in wanted:
                        continue
                    w, h = self.sizes[name]
                    frame = picture.reformat(width=w, height=h, format="yuv420p")
                    frame.pts = n
                    frame.pict_type = (
                        av.video.frame.PictureType.I
                        if name in force or self.encoded[name] == 0
                        else av.video.frame.PictureType.NONE
                    )
                    for packet in codec.encode(frame):
                        self.encoded[name] += 1
                        self.keyframes[name] += int(packet.is_keyframe)
                        self._bridge.post(
                            EncodedFrame(bytes(packet), packet.is_keyframe, ts_us, name)
                        )
                n += 1
        finally:
            src.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._bridge is not None:
            self._bridge.close()


class H264Decoder:
    """Decodes ``EncodedFrame``s in the test (the consumer side may decode; the SFU never)."""

    def __init__(self) -> None:
        self.codec = av.CodecContext.create("h264", "r")
        self.sizes: list[tuple[int, int]] = []
        self.keyframes = 0
        self.errors = 0

    def __call__(self, frame: Any) -> None:
        self.keyframes += int(frame.keyframe)
        try:
            for picture in self.codec.decode(av.Packet(frame.data)):
                self.sizes.append((picture.width, picture.height))
        except av.FFmpegError:
            self.errors += 1
