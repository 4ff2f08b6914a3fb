"""Looks into aiortc that only tests need: is a decoder running, what does this RTCP say."""

from __future__ import annotations

from aiortc import RTCRtpReceiver
from aiortc.rtp import AnyRtcpPacket, RtcpPacket


def decoder_thread_running(receiver: RTCRtpReceiver) -> bool:
    """Whether aiortc started its decoder thread for ``receiver`` (the SFU never should)."""
    thread = getattr(receiver, "_RTCRtpReceiver__decoder_thread", None)
    return thread is not None


def parse_rtcp(data: bytes) -> list[AnyRtcpPacket]:
    """Parse a compound RTCP packet with aiortc's parser (raises ValueError)."""
    try:
        return RtcpPacket.parse(data)
    except Exception as exc:  # struct.error and IndexError escape aiortc's checks
        raise ValueError(str(exc)) from exc
