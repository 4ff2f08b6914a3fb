"""What an incoming track counts lost (expected less received) and its interarrival jitter,
as its receiver reports say."""

from __future__ import annotations

import itertools
import struct

import pytest
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from edge_sfu.media import seam
from edge_sfu.media.incoming import IncomingTrack
from edge_sfu.media.packet import OPUS
from edge_sfu.media.producer import Producer


def test_gaps_count_as_lost_until_the_packet_arrives_late() -> None:
    track = IncomingTrack("0", "audio", None, lambda _data: True)
    opus = RTCRtpCodecParameters(
        mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111
    )
    track.set_negotiated_codecs([opus])
    producer = Producer(producer_id="MT1", participant_id="PA", codec=OPUS)
    track.attach(producer)

    def rtp(seq: int) -> None:
        track.handle_rtp(seam.LightRtpPacket(111, 0, seq & 0xFFFF, seq * 960, 0x1111, b"\x01"))

    for seq in (65533, 65534, 65535, 2, 3):  # 0 and 1 missing, across the wrap
        rtp(seq)
    assert producer.packets_received == 5
    assert track.packets_lost == 2
    rtp(0)  # late, not lost after all
    assert track.packets_lost == 1


def test_jitter_follows_rfc_3550_and_goes_into_the_receiver_report(monkeypatch) -> None:
    track = IncomingTrack("0", "audio", None, lambda _data: True)
    opus = RTCRtpCodecParameters(
        mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111
    )
    track.set_negotiated_codecs([opus])
    track.attach(Producer(producer_id="MT1", participant_id="PA", codec=OPUS))
    # Packets every 20 ms of media, arriving unevenly; then the clock stands still.
    clock = itertools.chain([0.0, 0.020, 0.050, 0.060], itertools.repeat(1.0))
    monkeypatch.setattr("edge_sfu.media.incoming.time.monotonic", lambda: next(clock))
    assert track.jitter_s is None
    for i in range(4):
        track.handle_rtp(seam.LightRtpPacket(111, 0, 10 + i, i * 960, 0x2222, b"\x01"))
    # D = 0, 10 ms, 10 ms late/early (in 48 kHz units: 0, 480, 480): J = 30 + 28.125 = 58.125
    assert track.jitter_s == pytest.approx((480 / 16 + (480 - 30) / 16) / 48000)
    report = track.receiver_report()
    assert report is not None
    jitter_field = struct.unpack_from("!I", report, 8 + 12)[0]
    assert jitter_field == int(480 / 16 + (480 - 30) / 16)
