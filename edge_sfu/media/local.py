"""In-process producers and consumers: encoded frames in and out, no loopback WebRTC.

The kiosk's camera and speaker join a room through these. A ``LocalProducer`` turns
H.264 access units (Annex B) and Opus packets into RTP payloads, the same
``MediaPacket``s a remote publisher's packets become; a ``LocalConsumer`` puts a
producer's packets back together into frames. Neither encodes nor decodes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge_sfu.media import seam
from edge_sfu.media.consumer_base import ConsumerBase
from edge_sfu.media.errors import UnsupportedCodec
from edge_sfu.media.layers import DEFAULT_LAYER, LayerSpec
from edge_sfu.media.packet import NTP_EPOCH_OFFSET, CodecInfo, MediaPacket
from edge_sfu.media.producer import Producer, SyncPoint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedFrame:
    """One encoded frame: an H.264 access unit (Annex B) or one Opus packet.

    ``timestamp_us`` is a capture time in microseconds on one clock shared by all the
    sources of a participant (``time.monotonic_ns() // 1000`` is what the SFU assumes
    when it writes sender reports, so audio and video stay in sync). ``layer`` names the
    encoding for multi-layer video; single-layer sources leave it at the default.
    """

    data: bytes
    keyframe: bool
    timestamp_us: int
    layer: str = DEFAULT_LAYER
    #: Audio only: the level of the sound it encodes in -dBov (RFC 6464: 0 loudest, 127
    #: silence), computed where the audio is encoded; None: not known.
    audio_level: int | None = None


class _LayerPacketizer:
    __slots__ = ("seq", "ts_base")

    def __init__(self) -> None:
        self.seq = random.getrandbits(16)
        self.ts_base = random.getrandbits(32)


class LocalProducer(Producer):
    """A producer fed in-process with ``push``, on the event loop.

    A source producing on its own thread hands frames over with a
    ``edge_common.bridge.ThreadBridge``. ``on_keyframe_request(layer)`` runs on the event
    loop when a consumer needs a keyframe; ``on_wanted_layers`` (inherited) when the set of
    layers anyone receives changes, so the source can stop encoding the others.
    """

    def __init__(
        self,
        *,
        producer_id: str,
        participant_id: str,
        codec: CodecInfo,
        layers: Iterable[LayerSpec] = (LayerSpec(DEFAULT_LAYER),),
        cache_size: int = 1024,
        keyframe_interval_s: float = 0.5,
    ) -> None:
        if codec.name not in ("H264", "OPUS"):
            raise UnsupportedCodec(f"local sources publish H.264 or Opus, not {codec.name}")
        super().__init__(
            producer_id=producer_id,
            participant_id=participant_id,
            codec=codec,
            layers=layers,
            request_keyframe=self._keyframe_wanted,
            cache_size=cache_size,
            keyframe_interval_s=keyframe_interval_s,
        )
        self.on_keyframe_request: Callable[[str], None] | None = None
        self._packetizers = {name: _LayerPacketizer() for name in self.layers}
        self._clock = codec.clock_rate
        self._is_video = codec.kind == "video"
        # maps the shared monotonic clock onto wall-clock (NTP) time for sender reports
        self._wall_minus_mono = time.time() - time.monotonic()

    def _keyframe_wanted(self, layer: str) -> None:
        if self.on_keyframe_request is not None:
            self.on_keyframe_request(layer)

    def push(self, frame: EncodedFrame) -> None:
        """Packetize ``frame`` and forward it. Must run on the event loop."""
        if self.closed:
            return
        packetizer = self._packetizers.get(frame.layer)
        if packetizer is None:
            logger.warning("%s: frame for unknown layer %r dropped", self.id, frame.layer)
            return
        ts = (packetizer.ts_base + frame.timestamp_us * self._clock // 1_000_000) & 0xFFFFFFFF
        payloads = seam.h264_packetize(frame.data) if self._is_video else [frame.data]
        if not payloads:
            return
        now = time.monotonic()
        if frame.audio_level is not None and self.level is not None:
            self.level.add(frame.audio_level, now)  # the dominant speaker hears the kiosk too
        layer = self.layers[frame.layer]
        capture_mono = frame.timestamp_us / 1_000_000
        layer.sync = SyncPoint(
            ntp=self._wall_minus_mono + capture_mono + NTP_EPOCH_OFFSET, rtp=ts, local=now
        )
        last = len(payloads) - 1
        seq = packetizer.seq
        for i, payload in enumerate(payloads):
            marker = 1 if (i == last and self._is_video) else 0
            key = frame.keyframe and i == 0
            self.receive(MediaPacket(payload, seq, ts, marker, key, frame.layer, now))
            seq = (seq + 1) & 0xFFFF
        packetizer.seq = seq


class LocalConsumer(ConsumerBase):
    """Delivers a producer's media as ``EncodedFrame``s to ``on_frame`` (on the loop).

    H.264 and VP8 packets are reassembled into whole frames by timestamp and marker bit;
    a frame with a hole is dropped and a keyframe requested. Opus packets are delivered one
    by one. ``timestamp_us`` counts from the first frame delivered.
    """

    def __init__(
        self,
        producer: Producer,
        consumer_id: str,
        on_frame: Callable[[EncodedFrame], None],
    ) -> None:
        super().__init__(producer, consumer_id)
        self._on_frame = on_frame
        name = producer.codec.name
        self._depayload: Callable[[bytes], bytes] | None
        if name == "H264":
            self._depayload = seam.h264_depayload
        elif name == "VP8":
            self._depayload = seam.vp8_depayload
        else:
            self._depayload = None
        self._clock = producer.codec.clock_rate
        self._parts: list[bytes] = []
        self._frame_ts: int | None = None
        self._frame_key = False
        self._next_seq: int | None = None
        self._broken = False
        self._ts_origin: int | None = None
        self._ts_last = 0
        self._ts_unwrapped = 0
        self.frames_dropped = 0

    def _on_switch(self, packet: MediaPacket, previous: str | None) -> None:
        self._parts = []
        self._frame_ts = None
        self._next_seq = None
        self._broken = False

    def _timestamp_us(self, ts: int) -> int:
        if self._ts_origin is None:
            self._ts_origin = ts
            self._ts_last = ts
        self._ts_unwrapped += (ts - self._ts_last + 0x80000000) % 0x100000000 - 0x80000000
        self._ts_last = ts
        return self._ts_unwrapped * 1_000_000 // self._clock

    def _forward(self, packet: MediaPacket) -> None:
        if self._depayload is None:
            self._deliver(packet.payload, True, packet.ts, packet.layer)
            return
        expected = self._next_seq
        self._next_seq = (packet.seq + 1) & 0xFFFF
        if self._frame_ts is not None and packet.ts != self._frame_ts:
            # a new frame began before the marker of the last one: it lost its end
            self._drop_partial()
        if expected is not None and packet.seq != expected:
            self._broken = True
        if self._frame_ts is None:
            self._frame_ts = packet.ts
            self._frame_key = packet.keyframe_start
        try:
            self._parts.append(self._depayload(packet.payload))
        except ValueError:
            self._broken = True
        if packet.marker:
            if self._broken:
                self._drop_partial()
            else:
                self._deliver(b"".join(self._parts), self._frame_key, packet.ts, packet.layer)
            self._parts = []
            self._frame_ts = None
            self._broken = False

    def _drop_partial(self) -> None:
        self.frames_dropped += 1
        self._parts = []
        self._frame_ts = None
        self._broken = False
        if self._current is not None:
            self.producer.request_keyframe(self._current)

    def _deliver(self, data: bytes, keyframe: bool, ts: int, layer: str) -> None:
        frame = EncodedFrame(data, keyframe, self._timestamp_us(ts), layer)
        try:
            self._on_frame(frame)
        except Exception:
            logger.exception("frame callback of local consumer %s failed", self.id)
