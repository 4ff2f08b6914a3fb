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
from edge_sfu.media.seam.ingress import arrival_time, drain_socket_reads
from edge_sfu.media.seam.packets import is_rtcp

#: (transport-wide sequence number, arrival on the monotonic clock, SSRC)
SequenceHook = Callable[[int, float, int], None]


#: Kernel arrival stamps kept for datagrams not yet handed on by aiortc; more are dropped
#: (the oldest first: aiortc hands datagrams on in order, so those are the ones it lost).
MAX_STAMPS = 2048


def tap_transport_sequence(dtls: RTCDtlsTransport, ext_id: int, hook: SequenceHook) -> bool:
    """Call ``hook`` for every RTP packet ``dtls`` receives carrying a transport-wide
    sequence number under ``ext_id``, before aiortc routes it, with the time the kernel
    received its datagram. Once per transport: returns whether it was installed.

    aiortc hands a datagram on after an ``asyncio.Queue`` and several coroutines, and a
    decoding client's event loop shares the interpreter with its decoder threads: the time
    the hook runs would show a queue on the link where there is none (and the SFU, reading
    the feedback, would cut its estimate for it). So the ICE sockets are read as the SFU
    reads its own (``drain_socket_reads``, with ``SO_TIMESTAMPNS``), each SRTP datagram's
    stamp is kept by its SSRC and RTP sequence number (SRTP leaves the header in the clear),
    and taken back when aiortc hands the decrypted packet on. Where there is no stamp, the
    time it is handed on.
    """
    if not ext_id or getattr(dtls, "_edge_sfu_twcc_tap", False):
        return False
    original: Any = dtls._handle_rtp_data
    stamps: dict[tuple[int, int], float] = {}
    _stamp_arrivals(dtls, stamps)

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        if len(data) >= 12 and data[0] & 0x10:
            seq = transport_sequence(data, ext_id)
            if seq is not None:
                ssrc = int.from_bytes(data[8:12], "big")
                at = stamps.pop((ssrc, (data[2] << 8) | data[3]), None)
                hook(seq, at if at is not None else time.monotonic(), ssrc)
        await original(data, arrival_time_ms=arrival_time_ms)

    dtls._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]
    dtls._edge_sfu_twcc_tap = True  # type: ignore[attr-defined]
    return True


def _stamp_arrivals(dtls: RTCDtlsTransport, stamps: dict[tuple[int, int], float]) -> None:
    # Each SRTP (not SRTCP) datagram's kernel stamp, by SSRC and sequence number, as the
    # ICE connection receives it (``arrival_time`` inside the burst reader).
    connection: Any = dtls.transport._connection
    received = connection.data_received

    def data_received(data: bytes, component: int) -> None:
        if len(data) >= 12 and 127 < data[0] < 192 and not is_rtcp(data):
            if len(stamps) >= MAX_STAMPS:
                del stamps[next(iter(stamps))]
            stamps[(int.from_bytes(data[8:12], "big"), (data[2] << 8) | data[3])] = arrival_time()
        received(data, component)

    connection.data_received = data_received
    for protocol in list(connection._protocols):
        drain_socket_reads(protocol)


async def send_rtcp(dtls: RTCDtlsTransport, data: bytes) -> bool:
    """Send serialized RTCP on ``dtls``; False when it is not connected."""
    try:
        await dtls._send_rtp(data)
    except ConnectionError:
        return False
    return True


__all__ = ["SequenceHook", "send_rtcp", "tap_transport_sequence"]
