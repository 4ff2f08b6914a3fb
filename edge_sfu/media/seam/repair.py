"""A decoding aiortc video receiver (the Python client's) that recovers from loss as a
browser's does.

aiortc's video receiver NACKs only when a new gap appears (the whole missing set, once), and
its jitter buffer holds every later frame until the missing packet arrives or 512 packets
have piled up behind it: on a congested link, one retransmission lost is a freeze of
seconds. ``ReceiverRepair`` adds what libwebrtc's receiver does:

- the packets still missing are asked for again every ``RENACK_S`` (the SFU answers a
  packet at most once a round trip, so asking often costs the link nothing);
- once no frame has come out for ``STALL_S`` while later packets wait behind a hole, the
  buffer skips to the next keyframe: one already buffered behind the hole, else the one a
  picture loss indication (PLI, repeated every ``PLI_REPEAT_S``) asks for. The frames in
  between could not be decoded without the lost packet anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Final

from aiortc import RTCRtpReceiver

#: Missing packets are asked for again this often (seconds).
RENACK_S: Final = 0.15
#: No frame out for this long (seconds) with packets waiting behind a hole: skip to a keyframe.
STALL_S: Final = 0.5
#: A keyframe asked for is asked for again after this long (seconds) if none came.
PLI_REPEAT_S: Final = 1.0

#: Where a decoder can start, by codec MIME type (``video/VP8``): payload -> bool.
KeyframeDetectors = Callable[[str], Callable[[bytes], bool] | None]


#: Decoded frames a receiver's track keeps for its reader (``bound_decoded_frames``): a
#: third of a second of video, a second of audio.
DECODED_VIDEO_FRAMES: Final = 10
DECODED_AUDIO_FRAMES: Final = 50


def bound_decoded_frames(receiver: RTCRtpReceiver, limit: int) -> bool:
    """Keep at most ``limit`` decoded frames waiting in ``receiver``'s track; the oldest go.

    aiortc decodes whatever arrives, whether or not anything reads the track, into a queue
    with no bound: a client that reads only some of its subscribed tracks (or none, as a
    test's guests) grew by a decoded picture per frame, 27 clients of one 640x480 camera by
    gigabytes within seconds. A reader that falls behind gets the newest frames, as a
    player would show them. The decoder thread hands each frame over with ``put`` on the
    event loop, so the bound is applied there. Returns False (nothing done) for a receiver
    without a track yet: one that only sends has none until a remote description gives it
    one to receive."""
    track = receiver.track
    if track is None:
        return False
    queue: asyncio.Queue[Any] = track._queue  # type: ignore[attr-defined]

    async def put(item: Any) -> None:
        while queue.qsize() >= limit:
            queue.get_nowait()
        queue.put_nowait(item)

    queue.put = put  # type: ignore[method-assign]
    return True


def _after(seq: int, other: int) -> bool:
    """Whether 16-bit sequence number ``seq`` comes after ``other``."""
    return 0 < ((seq - other) & 0xFFFF) < 0x8000


class ReceiverRepair:
    """Re-NACKs and keyframe skips for one aiortc video ``RTCRtpReceiver`` (see the module
    docstring). ``detectors`` gives the keyframe test of a codec; ``tick`` is what ``run``
    does every ``RENACK_S``, exposed for tests with their own clock."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        detectors: KeyframeDetectors,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._receiver = receiver
        self._buffer: Any = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
        self._nacks: Any = receiver._RTCRtpReceiver__nack_generator  # type: ignore[attr-defined]
        self._codecs: dict[int, Any] = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        self._detectors = detectors
        self._clock = clock
        self._ssrc: int | None = None
        self._last_frame = clock()
        self._skipping = False
        self._pli_at = float("-inf")
        #: Counters: NACKs sent again, PLIs sent, skips to a keyframe.
        self.renacks = 0
        self.plis = 0
        self.skips = 0
        original = self._buffer.add

        def add(packet: Any) -> Any:
            self._ssrc = packet.ssrc
            if self._skipping and self._is_keyframe_start(packet):
                self._skip_to(packet.sequence_number)
            pli, frame = original(packet)
            if frame is not None:
                self._last_frame = self._clock()
            return pli, frame

        self._buffer.add = add

    def _is_keyframe_start(self, packet: Any) -> bool:
        codec = self._codecs.get(packet.payload_type)
        detector = self._detectors(codec.mimeType) if codec is not None else None
        return bool(packet.payload) and detector is not None and detector(packet.payload)

    def _skip_to(self, seq: int) -> None:
        buffer = self._buffer
        origin = buffer._origin
        if origin is not None:
            delta = (seq - origin) & 0xFFFF
            if 0 < delta < buffer.capacity:
                buffer.remove(delta)
        self._nacks.missing = {s for s in self._nacks.missing if _after(s, seq)}
        self._skipping = False
        self._last_frame = self._clock()
        self.skips += 1

    def _after_hole(self) -> list[Any] | None:
        """The packets waiting behind the buffer's first missing one, in order; None when
        nothing waits behind a hole."""
        buffer = self._buffer
        origin = buffer._origin
        if origin is None:
            return None
        capacity = buffer.capacity
        packets = [buffer._packets[(origin + i) % capacity] for i in range(capacity)]
        hole = next((i for i, packet in enumerate(packets) if packet is None), None)
        if hole is None:
            return None
        waiting = [packet for packet in packets[hole + 1 :] if packet is not None]
        return waiting or None

    async def tick(self, now: float) -> None:
        """Ask again for what is missing; skip to a keyframe once stalled."""
        ssrc = self._ssrc
        if ssrc is None:
            return
        missing = self._nacks.missing
        if missing:
            self.renacks += 1
            await self._receiver._send_rtcp_nack(ssrc, sorted(missing))
        if now - self._last_frame < STALL_S:
            return
        waiting = self._after_hole()
        if waiting is None:
            return
        keyframe = next((p for p in waiting if self._is_keyframe_start(p)), None)
        if keyframe is not None:
            self._skip_to(keyframe.sequence_number)
            return
        self._skipping = True
        if now - self._pli_at >= PLI_REPEAT_S:
            self._pli_at = now
            self.plis += 1
            await self._receiver._send_rtcp_pli(ssrc)

    async def run(self) -> None:
        """``tick`` every ``RENACK_S`` until cancelled."""
        while True:
            await asyncio.sleep(RENACK_S)
            await self.tick(self._clock())


__all__ = ["ReceiverRepair"]
