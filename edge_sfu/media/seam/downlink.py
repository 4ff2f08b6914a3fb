"""What a decoding aiortc peer (the Python client) needs to send transport-cc feedback.

aiortc negotiates the transport-wide sequence number (the seam adds it to its tables) but
never reads it on arrival nor sends the feedback. Without feedback the SFU estimates such a
subscriber from its receiver reports' loss alone, which finds a link's capacity only by
overflowing it. ``tap_transport_sequence`` reports each RTP packet's transport-wide sequence
number as aiortc's DTLS transport hands it on; ``send_rtcp`` sends a compound RTCP packet
(SRTCP-protected) on that transport.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiortc.rtcdtlstransport import RTCDtlsTransport

from edge_sfu.media.seam.extensions import transport_sequence

#: (transport-wide sequence number, arrival on the monotonic clock, SSRC)
SequenceHook = Callable[[int, float, int], None]


def tap_transport_sequence(dtls: RTCDtlsTransport, ext_id: int, hook: SequenceHook) -> bool:
    """Call ``hook`` for every RTP packet ``dtls`` receives carrying a transport-wide
    sequence number under ``ext_id``, before aiortc routes it. Once per transport: returns
    whether it was installed."""
    if not ext_id or getattr(dtls, "_edge_sfu_twcc_tap", False):
        return False
    original: Any = dtls._handle_rtp_data

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        if len(data) >= 12 and data[0] & 0x10:
            seq = transport_sequence(data, ext_id)
            if seq is not None:
                hook(seq, time.monotonic(), int.from_bytes(data[8:12], "big"))
        await original(data, arrival_time_ms=arrival_time_ms)

    dtls._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]
    dtls._edge_sfu_twcc_tap = True  # type: ignore[attr-defined]
    return True


async def send_rtcp(dtls: RTCDtlsTransport, data: bytes) -> bool:
    """Send serialized RTCP on ``dtls``; False when it is not connected."""
    try:
        await dtls._send_rtp(data)
    except ConnectionError:
        return False
    return True


__all__ = ["SequenceHook", "send_rtcp", "tap_transport_sequence"]
