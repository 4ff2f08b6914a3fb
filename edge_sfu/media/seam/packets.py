"""RTP and RTCP packets: aiortc's classes the engine dispatches on, and a light RTP parser."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from aiortc.rtp import (
    AnyRtcpPacket,
    RtcpPacket,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    is_rtcp,
)

__all__ = [
    "AnyRtcpPacket",
    "LightRtpPacket",
    "RtcpPacket",
    "RtcpPsfbPacket",
    "RtcpReceiverInfo",
    "RtcpRrPacket",
    "RtcpRtpfbPacket",
    "RtcpSrPacket",
    "RtpPacket",
    "is_rtcp",
    "parse_rtp_light",
]


@dataclass(slots=True, eq=False)  # eq=False: packets compare and hash by identity
class LightRtpPacket:
    """The RTP header fields the forwarder and aiortc's ``RtpRouter`` read, and the payload.

    Parsing only these (no header-extension objects) is most of what aiortc's
    ``RtpPacket.parse`` costs per packet; forwarded packets drop extensions anyway.
    Fields in construction order, as ``parse_rtp_light`` passes them.
    """

    payload_type: int
    marker: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes


_RTP_FIXED = struct.Struct("!BBHII")


def parse_rtp_light(data: bytes) -> LightRtpPacket:
    """Parse an RTP packet's fixed header, skipping CSRCs, extension and padding.

    Raises ValueError on anything malformed.
    """
    size = len(data)
    if size < 12:
        raise ValueError("RTP packet too short")
    b0, b1, seq, ts, ssrc = _RTP_FIXED.unpack_from(data)
    if b0 >> 6 != 2:
        raise ValueError("RTP version is not 2")
    pos = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if size < pos + 4:
            raise ValueError("RTP extension header truncated")
        pos += 4 + 4 * ((data[pos + 2] << 8) | data[pos + 3])
    end = size
    if b0 & 0x20:
        if size <= pos:
            raise ValueError("RTP padding without payload")
        end -= data[-1]
    if end < pos:
        raise ValueError("RTP packet truncated")
    return LightRtpPacket(b1 & 0x7F, b1 >> 7, seq, ts, ssrc, data[pos:end])
