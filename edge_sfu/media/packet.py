"""The unit the forwarder moves: one RTP payload with the header fields that matter.

A ``MediaPacket`` is made once per packet a producer receives (or packetizes) and shared,
read-only, by every consumer; each consumer writes its own 12-byte header in front of the
payload. Incoming header extensions are dropped: their ids were negotiated with the
publisher and mean something else (or nothing) to each subscriber.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

RTP_HEADER: Final = struct.Struct("!BBHII")
#: Bytes an RTP packet costs on the wire beyond itself: SRTP's tag, UDP and IPv4 headers.
TRANSPORT_OVERHEAD_BYTES: Final = 10 + 8 + 20
#: Bytes each forwarded packet costs on the wire beyond its payload (its RTP header too).
PACKET_OVERHEAD_BYTES: Final = 12 + TRANSPORT_OVERHEAD_BYTES
#: Seconds from the NTP epoch (1900) to the Unix epoch (1970), for RTCP sender reports.
NTP_EPOCH_OFFSET: Final = 2208988800

NAL_SPS: Final = 7
NAL_IDR: Final = 5
NAL_STAP_A: Final = 24
NAL_FU_A: Final = 28

# payload -> whether a decoder can start at this packet
KeyframeDetector = Callable[[bytes], bool]


@dataclass(frozen=True)
class CodecInfo:
    """An RTP codec as the forwarder sees it."""

    mime_type: str  # "video/H264", "video/VP8", "audio/opus"
    clock_rate: int
    channels: int | None = None
    parameters: dict[str, str | int | None] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"audio"`` or ``"video"``."""
        return self.mime_type.split("/", 1)[0].lower()

    @property
    def name(self) -> str:
        """Codec name in upper case: ``H264``, ``VP8``, ``OPUS``."""
        return self.mime_type.split("/", 1)[1].upper()


H264 = CodecInfo(
    "video/H264",
    90000,
    parameters={
        "level-asymmetry-allowed": "1",
        "packetization-mode": "1",
        "profile-level-id": "42e01f",
    },
)
VP8 = CodecInfo("video/VP8", 90000)
OPUS = CodecInfo("audio/opus", 48000, channels=2)


@dataclass(slots=True, eq=False)  # eq=False: packets compare and hash by identity
class MediaPacket:
    """One RTP payload plus the fields a consumer rewrites from."""

    payload: bytes
    seq: int
    ts: int
    marker: int
    keyframe_start: bool
    layer: str
    arrival: float

    def __repr__(self) -> str:
        return (
            f"MediaPacket(layer={self.layer!r}, seq={self.seq}, ts={self.ts}, "
            f"marker={self.marker}, key={self.keyframe_start}, {len(self.payload)} bytes)"
        )


def h264_keyframe_start(payload: bytes) -> bool:
    """Whether this RFC 6184 payload begins an IDR access unit (SPS, or first IDR slice)."""
    if not payload:
        return False
    nal = payload[0] & 0x1F
    if nal in (NAL_SPS, NAL_IDR):
        return True
    if nal == NAL_STAP_A:
        pos = 1
        end = len(payload)
        while pos + 2 < end:
            size = (payload[pos] << 8) | payload[pos + 1]
            inner = payload[pos + 2] & 0x1F
            if inner in (NAL_SPS, NAL_IDR):
                return True
            pos += 2 + size
        return False
    if nal == NAL_FU_A and len(payload) > 1:
        fu = payload[1]
        return bool(fu & 0x80) and (fu & 0x1F) == NAL_IDR
    return False


def _vp8_header_at(payload: bytes) -> int | None:
    # Where the VP8 payload header starts in an RFC 7741 payload that begins a frame (S
    # bit set, partition index 0), past the payload descriptor; None for any other packet.
    size = len(payload)
    if size < 1:
        return None
    b0 = payload[0]
    # S bit set and partition index 0: this packet starts a frame
    if not (b0 & 0x10) or (b0 & 0x0F) != 0:
        return None
    pos = 1
    if b0 & 0x80:  # X: extension byte follows
        if size <= pos:
            return None
        x = payload[pos]
        pos += 1
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if size <= pos:
                return None
            pos += 2 if payload[pos] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            pos += 1
        if x & 0x20 or x & 0x10:  # T or K: TID/KEYIDX byte
            pos += 1
    if size <= pos:
        return None
    return pos


def vp8_rewrite_ids(
    payload: bytes, pid_off: int, tl0_off: int
) -> tuple[bytes, int | None, int | None]:
    """An RFC 7741 payload with ``pid_off`` added to its PictureID (modulo its 7 or 15 bits)
    and ``tl0_off`` to its TL0PICIDX (modulo 256), and the two values it then carries (None
    where its descriptor has no such field). The payload itself when nothing changes (no
    copy: the forwarding hot path).

    Each simulcast encoding numbers its pictures on its own: a receiver that is switched
    from one to another must see them go on from where they were, or its reference
    tracking (libwebrtc's ``RtpVp8RefFinder``) takes the new pictures for old ones or for
    ones after a gap, and waits for a keyframe it then asks for (mediasoup and LiveKit
    rewrite them likewise)."""
    size = len(payload)
    if size < 2 or not payload[0] & 0x80:
        return payload, None, None
    x = payload[1]
    pos = 2
    pid: int | None = None
    tl0: int | None = None
    pid_pos = tl0_pos = -1
    wide = False
    if x & 0x80:  # I: PictureID
        if size <= pos:
            return payload, None, None
        wide = bool(payload[pos] & 0x80)
        if wide:
            if size <= pos + 1:
                return payload, None, None
            pid = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
        else:
            pid = payload[pos]
        pid_pos = pos
        pos += 2 if wide else 1
    if x & 0x40 and size > pos:  # L: TL0PICIDX
        tl0 = payload[pos]
        tl0_pos = pos
    if pid is not None and pid_off:
        pid = (pid + pid_off) & (0x7FFF if wide else 0x7F)
    else:
        pid_pos = -1
    if tl0 is not None and tl0_off:
        tl0 = (tl0 + tl0_off) & 0xFF
    else:
        tl0_pos = -1
    if pid_pos < 0 and tl0_pos < 0:
        return payload, pid, tl0
    out = bytearray(payload)
    if pid_pos >= 0 and pid is not None:
        if wide:
            out[pid_pos] = 0x80 | (pid >> 8)
            out[pid_pos + 1] = pid & 0xFF
        else:
            out[pid_pos] = pid
    if tl0_pos >= 0 and tl0 is not None:
        out[tl0_pos] = tl0
    return bytes(out), pid, tl0


def vp8_keyframe_start(payload: bytes) -> bool:
    """Whether this RFC 7741 payload is the first packet of a VP8 keyframe."""
    pos = _vp8_header_at(payload)
    # VP8 payload header: P bit (inverse keyframe flag) is bit 0 of the first byte
    return pos is not None and not (payload[pos] & 0x01)


def vp8_keyframe_size(payload: bytes) -> tuple[int, int] | None:
    """(width, height) of the picture of an RFC 7741 payload that starts a VP8 keyframe; None
    for any other packet."""
    pos = _vp8_header_at(payload)
    return None if pos is None else vp8_frame_size(payload[pos : pos + 10])


def vp8_frame_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) of a VP8 keyframe (its start code and size fields, RFC 6386 section
    9.1), or None if ``frame`` does not start one."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None


def keyframe_detector(codec: CodecInfo) -> KeyframeDetector:
    """The function telling, for ``codec``, where a decoder can start."""
    name = codec.name
    if name == "H264":
        return h264_keyframe_start
    if name == "VP8":
        return vp8_keyframe_start
    return _always


def _always(payload: bytes) -> bool:
    return True
