"""The transport-cc feedback wire format: known packets, round trips, junk, the builder."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sfu.media.twcc import (
    DELTA_TICK_US,
    REFERENCE_TICK_US,
    FeedbackBuilder,
    MalformedFeedback,
    TransportFeedback,
    split_compound,
)

# Sent by Chromium (kept in pion/rtcp's tests, "example1"): one packet, run-length chunk,
# a small delta of 148 ticks (37 ms), one byte of RFC 3550 padding.
CHROMIUM_ONE_PACKET = bytes.fromhex("afcd0005fa17fa17 43032fa0 00990001 3de80217 20019401")
# Decoded by Wireshark (webrtc-analysis test data): nine packets, one run-length chunk,
# nine small deltas (7, 3, 11, 14, 0, 1, 0, 2, 6 ms), one byte of padding.
WIRESHARK_NINE_PACKETS = bytes.fromhex(
    "afcd0007 00000001 dd586eb6 00010009 5e911000 20091c0c 2c380004 00081801"
)


def test_a_chromium_packet_parses_and_serializes_to_the_same_bytes() -> None:
    fb = TransportFeedback.parse(CHROMIUM_ONE_PACKET)
    assert (fb.sender_ssrc, fb.media_ssrc) == (4195875351, 1124282272)
    assert (fb.base_sequence, fb.reference_time, fb.feedback_count) == (153, 4057090, 23)
    assert fb.deltas == (148,)
    assert list(fb.arrivals()) == [(153, 4057090 * REFERENCE_TICK_US + 37_000)]
    assert fb.serialize() == CHROMIUM_ONE_PACKET


def test_a_packet_decoded_by_wireshark_gives_its_deltas() -> None:
    fb = TransportFeedback.parse(WIRESHARK_NINE_PACKETS)
    assert fb.base_sequence == 1
    assert fb.reference_time == 6197520
    assert fb.feedback_count == 0
    assert [d * DELTA_TICK_US / 1000 for d in fb.deltas if d is not None] == [
        7,
        3,
        11,
        14,
        0,
        1,
        0,
        2,
        6,
    ]
    assert fb.serialize() == WIRESHARK_NINE_PACKETS


def test_vectors_lost_packets_and_large_negative_deltas_round_trip() -> None:
    deltas = (4, None, None, -300, 255, 256, None, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9) + (None,) * 20
    fb = TransportFeedback(1, 2, 65530, (1 << 24) - 1, 255, (*deltas, 12))
    data = fb.serialize()
    assert len(data) % 4 == 0
    assert TransportFeedback.parse(data) == fb


deltas_strategy = st.lists(
    st.one_of(st.none(), st.integers(0, 255), st.integers(-0x8000, 0x7FFF)),
    min_size=1,
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(
    deltas=deltas_strategy,
    base=st.integers(0, 0xFFFF),
    reference=st.integers(0, (1 << 24) - 1),
    count=st.integers(0, 255),
)
def test_every_feedback_round_trips(
    deltas: list[int | None], base: int, reference: int, count: int
) -> None:
    fb = TransportFeedback(0xDEADBEEF, 7, base, reference, count, tuple(deltas))
    assert TransportFeedback.parse(fb.serialize()) == fb


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_junk_either_parses_or_raises_malformed_feedback(data: bytes) -> None:
    with contextlib.suppress(MalformedFeedback):
        TransportFeedback.parse(data)


@settings(max_examples=300, deadline=None)
@given(deltas=deltas_strategy, cut=st.integers(1, 40), flip=st.integers(0, 10_000))
def test_damaged_feedback_never_raises_anything_else(
    deltas: list[int | None], cut: int, flip: int
) -> None:
    data = bytearray(TransportFeedback(1, 2, 3, 4, 5, tuple(deltas)).serialize())
    data[flip % len(data)] ^= 0xFF
    for damaged in (bytes(data), bytes(data[:-cut])):
        with contextlib.suppress(MalformedFeedback):
            TransportFeedback.parse(damaged)


def test_header_errors_are_malformed_feedback() -> None:
    good = bytearray(CHROMIUM_ONE_PACKET)
    for index, value in ((0, 0x4F), (1, 206), (0, 0xA1), (3, 0x09), (23, 0x00), (23, 0x20)):
        bad = bytearray(good)
        bad[index] = value
        with pytest.raises(MalformedFeedback):
            TransportFeedback.parse(bytes(bad))
    zero_count = bytearray(good)
    zero_count[14:16] = b"\x00\x00"
    with pytest.raises(MalformedFeedback):
        TransportFeedback.parse(bytes(zero_count))


def test_the_builder_reports_arrivals_to_the_tick_and_losses_between_feedbacks() -> None:
    builder = FeedbackBuilder()
    t0 = 10 * REFERENCE_TICK_US + 1234
    arrivals = {65534: t0, 65535: t0 + 5_000, 1: t0 + 9_999, 2: t0 + 30_000_000}
    for seq, at in arrivals.items():
        builder.on_packet(seq, at)
    packets = builder.build(11, 22)
    # 30 s between two arrivals does not fit one packet's 16-bit delta: two packets
    assert len(packets) == 2
    got: dict[int, int | None] = {}
    for fb in packets:
        for seq, arrival in TransportFeedback.parse(fb.serialize()).arrivals():
            got[seq] = arrival
    assert got.pop(0) is None  # lost, and said so
    for seq, at in arrivals.items():
        received = got[seq]
        assert received is not None
        assert abs(received - at) < DELTA_TICK_US  # within one tick
    assert [fb.feedback_count for fb in packets] == [0, 1]
    # the next feedback starts where this one ended: 3 and 4 were lost
    builder.on_packet(5, t0 + 30_100_000)
    late = builder.build(11, 22)
    assert late[0].base_sequence == 3
    assert late[0].deltas[:2] == (None, None)
    builder.on_packet(4, t0 + 30_200_000)  # too late: already reported lost
    assert builder.build(11, 22) == []


def test_the_builder_is_bounded_under_a_flood() -> None:
    builder = FeedbackBuilder(max_packets=100)
    for seq in range(1000):
        builder.on_packet(seq, seq * 1000)
    assert builder.pending <= 100
    packets = builder.build(1, 2)
    assert sum(len(p.deltas) for p in packets) <= 100
    assert all(len(p.serialize()) < 1200 for p in packets)


def test_split_compound_frames_packets_and_stops_at_junk() -> None:
    rr = bytes.fromhex("80c90001 00000001")
    parts = list(split_compound(rr + CHROMIUM_ONE_PACKET + b"\x00\x01"))
    assert [(pt, fmt) for pt, fmt, _ in parts] == [(201, 0), (205, 15)]
    assert parts[1][2] == CHROMIUM_ONE_PACKET
    assert list(split_compound(b"\x80\xc9\x00\x09")) == []


def test_the_sequence_extension_parses_with_aiortc() -> None:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    from edge_sfu.media import seam

    uri = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(headerExtensions=[RTCRtpHeaderExtensionParameters(id=5, uri=uri)])
    )
    header = bytes.fromhex("80e01234 00000064 0badcafe")
    numbered = seam.with_transport_sequence(header, 5, 0xABCD)
    assert numbered is not None
    packet = RtpPacket.parse(numbered + b"payload", extensions)
    assert packet.extensions.transport_sequence_number == 0xABCD
    assert (packet.sequence_number, packet.timestamp, packet.ssrc) == (0x1234, 100, 0x0BADCAFE)
    assert packet.payload == b"payload"
    assert seam.with_transport_sequence(numbered, 5, 1) is None  # already has an extension
    with_csrc = seam.with_transport_sequence(
        bytes.fromhex("81e01234000000640badcafe00000007"), 5, 9
    )
    assert with_csrc is not None
    packet = RtpPacket.parse(with_csrc + b"x", extensions)
    assert packet.csrc == [7] and packet.extensions.transport_sequence_number == 9
