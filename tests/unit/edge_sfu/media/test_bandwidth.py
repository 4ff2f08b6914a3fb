"""One transport's bandwidth state: subscriber RTCP in, estimates and REMB values out."""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_sfu.media.bandwidth import (
    PROBE_TICK_S,
    SENDER_ESTIMATE_TTL_S,
    START_BPS,
    TransportBandwidth,
    parse_remb,
)
from edge_sfu.media.consumer import PADDING_BYTES
from edge_sfu.media.estimator import ProbeRequest, Usage
from edge_sfu.media.packet import PACKET_OVERHEAD_BYTES
from edge_sfu.media.settings import MediaSettings
from edge_sfu.media.twcc import FeedbackBuilder


def _remb(bps: int, ssrcs: tuple[int, ...] = (1,)) -> bytes:
    exp, mantissa = 0, bps
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exp += 1
    fci = b"REMB" + struct.pack(
        "!BBH", len(ssrcs), (exp << 2) | (mantissa >> 16), mantissa & 0xFFFF
    )
    fci += b"".join(struct.pack("!I", s) for s in ssrcs)
    body = struct.pack("!II", 9, 0) + fci
    return struct.pack("!BBH", 0x8F, 206, len(body) // 4) + body


def _rr(fraction_lost: float) -> bytes:
    block = struct.pack("!IB3sIIII", 1, int(fraction_lost * 256), b"\0\0\0", 0, 0, 0, 0)
    body = struct.pack("!I", 9) + block
    return struct.pack("!BBH", 0x81, 201, len(body) // 4) + body


def test_remb_parses_what_the_sfu_sends() -> None:
    for bps in (0, 1, 300_000, 2_500_000, 123_456_789):
        value = parse_remb(_remb(bps))
        assert value is not None and value <= bps and value >= bps * 0.999
    assert parse_remb(b"\x8f\xce\x00\x04" + b"\0" * 8 + b"XXXX" + b"\0" * 4) is None


def test_receiver_reports_cut_and_remb_caps_the_downlink() -> None:
    bw = TransportBandwidth(MediaSettings())
    changes: list[int | None] = []
    bw.on_estimate = lambda: changes.append(
        None if bw.estimate is None else bw.estimate.available_outgoing_bps
    )
    assert bw.outgoing_bps is None and not bw.refresh()
    bw.on_rtcp(_rr(0.0), 0.0)
    assert bw.refresh() and changes == [START_BPS]
    for i in range(1, 6):  # 30 % loss, each report two seconds apart
        bw.on_rtcp(_rr(0.3), 2.0 * i)
    cut = bw.outgoing_bps
    assert cut is not None and cut < START_BPS * 0.85**4
    assert bw.refresh() and changes[-1] == cut
    assert not bw.refresh()  # nothing moved: no notification
    # a report soon after a cut speaks of the rate before it: no second cut
    bw.on_rtcp(_rr(0.3), 11.0)
    assert bw.outgoing_bps == cut
    bw.on_rtcp(_rr(0.0) + _remb(100_000), 13.0)  # a compound: the REMB is a ceiling
    assert bw.outgoing_bps is not None and bw.outgoing_bps <= 100_000


def test_a_report_only_estimate_is_cut_from_what_was_sent_and_not_below_what_got_through() -> None:
    """Without transport-cc, receiver reports' loss drives the estimate: a long call with
    little loss grows it far above what is sent, and the first heavy loss must bring it to
    the rate that caused the loss at once; heavy loss goes on while the rate stays, but the
    estimate keeps most of what got through (a link capped at 960 kbit/s while 1.2 Mbit/s
    are sent must not be estimated at half of it)."""
    bw = TransportBandwidth(MediaSettings())
    sent = 0
    bw.sent_bytes = lambda: sent
    t = 0.0
    for _ in range(30):  # 30 s at 1.2 Mbit/s, no loss: the estimate runs ahead
        t += 1.0
        sent += 150_000
        bw.on_rtcp(_rr(0.0), t)
    ahead = bw.outgoing_bps
    assert ahead is not None and ahead > 3 * 1_200_000
    t += 1.0
    sent += 150_000
    bw.on_rtcp(_rr(0.2), t)
    first = bw.outgoing_bps
    assert first is not None and first <= 1_200_000 * 0.9 * 1.01
    for _ in range(20):  # the sender goes on at 1.2 Mbit/s with 20 % loss
        t += 1.0
        sent += 150_000
        bw.on_rtcp(_rr(0.2), t)
    held = bw.outgoing_bps
    assert held is not None and 0.99 * 0.7 * 960_000 <= held < first
    # without a count of what is sent, the old rule: only the cuts
    plain = TransportBandwidth(MediaSettings())
    for i in range(1, 21):
        plain.on_rtcp(_rr(0.2), float(i))
    assert plain.outgoing_bps is not None and plain.outgoing_bps < 0.7 * 960_000 * 0.5


def test_transport_cc_feedback_moves_the_downlink_and_replaces_report_loss() -> None:
    bw = TransportBandwidth(MediaSettings())
    builder = FeedbackBuilder()
    for seq in range(200):  # 1200-byte packets every 5 ms, arriving 20 ms later
        bw.on_sent(seq * 0.005, [(seq, 1200, False)])
        if seq % 10:  # every tenth lost
            builder.on_packet(seq, int((seq * 0.005 + 0.02) * 1e6))
        if seq % 20 == 19:
            for fb in builder.build(9, 1):
                bw.on_rtcp(fb.serialize(), seq * 0.005 + 0.03)
    assert bw.feedback_received >= 9
    assert 0.05 < bw.downlink.loss < 0.15
    bw.on_rtcp(_rr(0.9), 2.0)  # ignored for the estimate once transport-cc is there
    assert bw.outgoing_bps == bw.downlink.estimate_bps


def test_the_publisher_cap_is_shared_among_video_tracks_and_the_maximum_holds() -> None:
    bw = TransportBandwidth(MediaSettings(publisher_max_bitrate=2_000_000))
    one, two = bw.track_estimator(), bw.track_estimator()
    assert bw.remb_bitrate(one) == 2_000_000
    bw.set_publisher_cap(600_000)
    assert bw.remb_bitrate(one) == 300_000 and bw.remb_bitrate(two) == 300_000
    bw.drop_track_estimator(two)
    assert bw.remb_bitrate(one) == 600_000
    bw.set_publisher_cap(10_000_000)
    assert bw.remb_bitrate(one) == 2_000_000
    bw.set_publisher_cap(None)
    # a publisher with transport-cc: REMB is only the ceiling, its own estimator does the rest
    one.estimate_bps = 100_000
    assert bw.remb_bitrate(one) == 100_000
    bw.on_rtp_arrival(7, 0.0, 1000, 1)
    assert bw.uplink_twcc and bw.remb_bitrate(one) == 2_000_000
    bw.set_publisher_cap(600_000)  # a ceiling on the whole uplink, not shared per track
    assert bw.remb_bitrate(one) == 600_000 and bw.remb_bitrate(None) == 600_000
    assert [len(p) % 4 for p in bw.feedback_packets()] == [0]


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_rtcp_is_taken_without_raising(data: bytes) -> None:
    # on_rtcp also guards against its own bugs (logged): none may be hit by any input
    errors = _Errors()
    logger = logging.getLogger("edge_sfu.media.bandwidth")
    logger.addHandler(errors)
    try:
        bw = TransportBandwidth(MediaSettings())
        bw.on_rtcp(data, 1.0)
        bw.on_rtcp(b"\x8f\xcd" + data[2:], 1.0)  # as transport-cc feedback
        bw.on_rtcp(b"\x8f\xce" + data[2:], 1.0)  # as REMB
        bw.on_rtcp(b"\x81\xc9" + data[2:], 1.0)  # as a receiver report
        bw.refresh()
    finally:
        logger.removeHandler(errors)
    assert errors.records == []


def test_a_senders_own_estimate_holds_only_while_fresh() -> None:
    bw = TransportBandwidth(MediaSettings())
    assert bw.sender_estimate(0.0) is None
    bw.set_sender_estimate(700_000, 100.0)
    assert bw.sender_estimate(100.0) == 700_000
    assert bw.sender_estimate(100.0 + SENDER_ESTIMATE_TTL_S) == 700_000
    assert bw.sender_estimate(100.1 + SENDER_ESTIMATE_TTL_S) is None  # the reports stopped
    assert bw.sender_estimate(99.0) is None  # a clock that went back trusts nothing
    bw.set_sender_estimate(700_000, 200.0)
    bw.set_sender_estimate(None, 201.0)
    assert bw.sender_estimate(201.0) is None


def _fed_back() -> TransportBandwidth:
    """A transport whose first 20 packets were fed back (a downlink estimate exists)."""
    bw = TransportBandwidth(MediaSettings())
    builder = FeedbackBuilder()
    for seq in range(20):
        bw.on_sent(seq * 0.005, [(seq, 1200, False)])
        builder.on_packet(seq, int((seq * 0.005 + 0.02) * 1e6))
    for fb in builder.build(9, 1):
        bw.on_rtcp(fb.serialize(), 0.2)
    return bw


def test_a_probe_nothing_was_reported_about_is_judged_failed_and_the_next_one_may_start() -> None:
    # Every stream to the participant is off (no audio either): a probe's padding may be all
    # that was sent, and if none of it got through no feedback comes at all. The probe is
    # judged on time, not left running forever with every later probe blocked.
    bw = _fed_back()
    probe = bw.downlink.start_probe(10 * bw.downlink.estimate_bps, 1.0)
    assert probe is not None
    for seq in range(20, 60):  # its padding, all lost: no feedback
        bw.on_sent(1.0 + (seq - 20) * 0.01, [(seq, 250, True)])
    bw.tick(probe.until + 0.5)  # feedback might still come
    assert bw.downlink.probe is probe
    bw.tick(probe.until + 1.0)
    assert bw.downlink.probe is None and bw.downlink.probes.failed == 1
    # after the failure's wait, probing goes on
    assert bw.downlink.start_probe(10 * bw.downlink.estimate_bps, probe.until + 4.0) is not None


class _PaddedStream:
    """A video consumer as ``run_probe`` sees it: its counters, and the padding it sends
    (when, and the bytes on the link)."""

    ready = True
    producer = SimpleNamespace(kind="video")

    def __init__(self) -> None:
        self.octets_sent = 0
        self.packets_sent = 0
        self.padded: list[float] = []
        self.wire: list[int] = []

    def send_padding(self, count: int) -> int:
        self.padded.append(time.monotonic())
        self.wire.append(count * (PADDING_BYTES + PACKET_OVERHEAD_BYTES))
        return count * (PADDING_BYTES + 12)


async def test_a_probe_stops_padding_once_the_feedback_shows_a_queue() -> None:
    # Behind a short link a probe that goes on after the queue builds only overflows it, and
    # the media's packets are lost with its padding: it stops at the detector's overuse.
    bw = _fed_back()
    stream = _PaddedStream()
    padded = stream.padded
    request = bw.downlink.start_probe(10 * bw.downlink.estimate_bps, time.monotonic())
    assert request is not None and request.until - time.monotonic() > 0.3
    task = asyncio.ensure_future(bw.run_probe(request, lambda: [stream]))  # type: ignore[list-item]
    await asyncio.sleep(0.1)
    assert padded  # padding while the link keeps up
    bw.downlink._delay.detector.usage = Usage.OVERUSING
    overused = time.monotonic()
    await asyncio.wait_for(task, 1.0)
    assert time.monotonic() < request.until  # it ended early
    assert not [at for at in padded if at > overused + 0.001]


async def test_a_probe_sends_its_rate_as_the_link_counts_it_media_included() -> None:
    # Media at 200 kbit/s in 1000-byte packets, a probe at 600 kbit/s: the padding makes up
    # the difference, headers counted on both, not one padding packet more each tick.
    bw = _fed_back()
    stream = _PaddedStream()
    wire = stream.wire  # bytes on the link (payload and headers), padding and media

    async def media() -> None:
        while True:
            await asyncio.sleep(1000 * 8 / 200_000)
            stream.octets_sent += 1000 - PACKET_OVERHEAD_BYTES
            stream.packets_sent += 1
            wire.append(1000)

    request = bw.downlink.start_probe(10 * bw.downlink.estimate_bps, time.monotonic())
    assert request is not None
    request = ProbeRequest(600_000, time.monotonic() + 0.5)
    sender = asyncio.ensure_future(media())
    try:
        await bw.run_probe(request, lambda: [stream])  # type: ignore[list-item]
    finally:
        sender.cancel()
    assert sum(wire) * 8 / 0.5 == pytest.approx(600_000, rel=0.12)


async def test_a_probe_does_not_make_up_for_a_stall_in_a_burst() -> None:
    # The SFU's loop stalls 300 ms in the middle of a probe at 600 kbit/s: the padding then
    # goes on at the probe's rate (a tick's worth, and what the last tick could not pad),
    # not 300 ms of it at once into a short link's queue.
    bw = _fed_back()
    stream = _PaddedStream()
    request = bw.downlink.start_probe(10 * bw.downlink.estimate_bps, time.monotonic())
    assert request is not None
    request = ProbeRequest(600_000, time.monotonic() + 0.6)
    task = asyncio.ensure_future(bw.run_probe(request, lambda: [stream]))  # type: ignore[list-item]
    await asyncio.sleep(0.15)
    before = len(stream.wire)
    time.sleep(0.3)  # the stall
    await asyncio.sleep(0.01)
    await asyncio.wait_for(task, 1.0)
    after_stall = stream.wire[before]
    assert after_stall <= 600_000 * 2 * PROBE_TICK_S / 8 + PADDING_BYTES + PACKET_OVERHEAD_BYTES
