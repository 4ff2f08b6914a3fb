"""``seam.tap_transport_sequence``: each RTP packet's transport-wide number reaches the hook
with the time the kernel received its datagram (kept across aiortc's queue by SSRC and RTP
sequence number), or the time it is handed on where there was none."""

from __future__ import annotations

import struct
import time
from types import SimpleNamespace
from typing import Any

from edge_sfu.media import seam
from edge_sfu.media.seam import downlink, ingress

EXT_ID = 3


def _packet(ssrc: int, seq: int, twcc: int) -> bytes:
    # fixed header with X set, a one-byte-form extension carrying the transport-wide number
    header = struct.pack("!BBHII", 0x90, 96, seq, 1000, ssrc)
    extension = b"\xbe\xde\x00\x01" + bytes(((EXT_ID << 4) | 1, twcc >> 8, twcc & 0xFF, 0))
    return header + extension + b"payload"


class _Connection:
    def __init__(self) -> None:
        self._protocols: list[Any] = []
        self.got: list[bytes] = []

    def data_received(self, data: bytes, component: int) -> None:
        self.got.append(data)


def _dtls() -> Any:
    handed: list[bytes] = []

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        handed.append(data)

    connection = _Connection()
    return SimpleNamespace(
        transport=SimpleNamespace(_connection=connection),
        _handle_rtp_data=handle_rtp_data,
        handed=handed,
    )


async def test_the_kernel_stamp_of_each_datagram_reaches_the_hook() -> None:
    dtls = _dtls()
    heard: list[tuple[int, float, int]] = []
    assert seam.tap_transport_sequence(dtls, EXT_ID, lambda *a: heard.append(a))
    assert not seam.tap_transport_sequence(dtls, EXT_ID, lambda *a: None)  # once
    connection = dtls.transport._connection
    # datagrams as the burst reader hands them on, each with its kernel stamp (SRTP leaves
    # the header in the clear; the payload here stands for the ciphertext)
    stamps = {7: 100.25, 8: 100.5}
    for seq, at in stamps.items():
        ingress._ARRIVAL.at = at
        try:
            connection.data_received(_packet(0xABC, seq, 500 + seq), 1)
        finally:
            ingress._ARRIVAL.at = None
    assert len(connection.got) == 2  # aiortc's own handling goes on
    # aiortc hands the decrypted packets on later, one of them never (lost to a replay check)
    await dtls._handle_rtp_data(_packet(0xABC, 8, 508), 0)
    before = time.monotonic()
    await dtls._handle_rtp_data(_packet(0xABC, 9, 509), 0)  # no stamp: handed-on time
    assert heard[0] == (508, 100.5, 0xABC)
    assert heard[1][0] == 509 and heard[1][1] >= before
    assert len(dtls.handed) == 2


async def test_stamps_are_bounded() -> None:
    dtls = _dtls()
    seam.tap_transport_sequence(dtls, EXT_ID, lambda *a: None)
    connection = dtls.transport._connection
    for seq in range(downlink.MAX_STAMPS + 100):
        connection.data_received(_packet(1, seq & 0xFFFF, seq & 0xFFFF), 1)
    stamps = next(
        cell.cell_contents
        for cell in (connection.data_received.__closure__ or ())
        if isinstance(cell.cell_contents, dict)
    )
    assert len(stamps) == downlink.MAX_STAMPS
    assert (1, 0) not in stamps and (1, downlink.MAX_STAMPS + 99) in stamps
    # RTCP and non-RTP datagrams are not kept
    connection.data_received(b"\x80\xc8" + bytes(30), 1)
    connection.data_received(b"\x16" + bytes(30), 1)
    assert len(stamps) == downlink.MAX_STAMPS
