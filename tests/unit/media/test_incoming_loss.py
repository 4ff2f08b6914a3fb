"""What an incoming track counts lost: expected less received, as its receiver reports say."""

from __future__ import annotations

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
