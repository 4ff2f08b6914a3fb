"""Looks into aiortc that only tests need: is a decoder running, what does this RTCP say;
and transport-cc negotiated for the length of a test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiortc import RTCRtpReceiver
from aiortc.rtp import AnyRtcpPacket, RtcpPacket

from edge_sfu.media import seam


@contextlib.contextmanager
def transport_cc_negotiated() -> Iterator[None]:
    """Offers and answers of this process negotiate transport-cc inside the block, whatever
    ``seam.OFFER_TRANSPORT_CC`` says; as it says again after it."""
    seam.negotiate_header_extensions(transport_cc=True)
    try:
        yield
    finally:
        seam.negotiate_header_extensions()


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
