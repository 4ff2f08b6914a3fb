"""aiortc's RTP (de)packetizers for H.264 and VP8, used without its encoders and decoders."""

from __future__ import annotations

from aiortc.codecs import h264 as _h264
from aiortc.codecs import vpx as _vpx


def h264_packetize(access_unit: bytes) -> list[bytes]:
    """Split an Annex B access unit into RFC 6184 payloads (STAP-A / FU-A), no encoder."""
    enc = _h264.H264Encoder
    return enc._packetize(enc._split_bitstream(access_unit))


def h264_depayload(payload: bytes) -> bytes:
    """One RTP payload back to Annex B bytes (start codes included)."""
    return _h264.h264_depayload(payload)


def vp8_depayload(payload: bytes) -> bytes:
    """One RTP payload back to VP8 bitstream bytes."""
    return _vpx.vp8_depayload(payload)
