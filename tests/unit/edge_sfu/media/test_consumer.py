"""Header rewriting, layer switching, NACK answers and sender reports, without sockets."""

from __future__ import annotations

import itertools
import struct
import time
from typing import Any

import pytest

from edge_sfu.media import producer as producer_module
from edge_sfu.media import seam
from edge_sfu.media.consumer import BASE_RTT_WINDOW_S, Consumer
from edge_sfu.media.errors import UnsupportedCodec
from edge_sfu.media.layers import LayerSpec
from edge_sfu.media.packet import H264, OPUS, VP8, CodecInfo, MediaPacket, vp8_rewrite_ids
from edge_sfu.media.producer import Producer
from tests.support.seam_probes import parse_rtcp


class FakePath:
    """Records what a consumer sends, in clear."""

    def __init__(self) -> None:
        self.rtp: list[tuple[int, int, int, int, int, bytes]] = []
        self.rtcp: list[bytes] = []
        self.probes = 0
        self.urgent = 0
        self.pacer: QueuedFor | None = None

    def send_rtp_parts(
        self, header: bytes, payload: bytes, probe: bool = False, urgent: bool = False
    ) -> bool:
        b0, b1, seq, ts, ssrc = struct.unpack("!BBHII", header)
        self.rtp.append((b1 >> 7, b1 & 0x7F, seq, ts, ssrc, payload))
        self.urgent += urgent
        if probe:
            assert b0 & 0x20 and payload[-1] == len(payload)  # padding only
            self.probes += 1
        return True

    def send_rtcp(self, data: bytes) -> bool:
        self.rtcp.append(data)
        return True


class QueuedFor:
    """Stands in for a path's pacer: a packet queued now waits ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def wait_s(self, urgent: bool = False) -> float:
        return self.seconds


class Upstream:
    def __init__(self) -> None:
        self.keyframes: list[str] = []
        self.nacks: list[tuple[str, list[int]]] = []


def make(
    layers: list[LayerSpec], codec_info: CodecInfo = H264
) -> tuple[Producer, Consumer, FakePath, Upstream]:
    up = Upstream()
    producer = Producer(
        producer_id="MT1",
        participant_id="PA",
        codec=codec_info,
        layers=layers,
        request_keyframe=up.keyframes.append,
        request_retransmission=lambda layer, seqs: up.nacks.append((layer, seqs)),
        cache_size=64,
        keyframe_interval_s=0.0,
    )
    path = FakePath()
    consumer = Consumer(producer, "CO1", lambda: path)  # type: ignore[arg-type,return-value]
    codec = type("Codec", (), {"mimeType": codec_info.mime_type, "payloadType": 102})()
    consumer.send_started(seam.SendParams(mid="0", ssrc=0xABCD, codec=codec, cname="c"))  # type: ignore[arg-type]
    return producer, consumer, path, up


def frame(layer: str, seq: int, ts: int, n: int, key: bool, t: float) -> list[MediaPacket]:
    return [
        MediaPacket(bytes([i]), (seq + i) & 0xFFFF, ts, int(i == n - 1), key and i == 0, layer, t)
        for i in range(n)
    ]


def feed(producer: Producer, packets: list[MediaPacket]) -> None:
    for p in packets:
        producer.receive(p)


def test_waits_for_keyframe_then_forwards_with_our_ssrc_and_pt() -> None:
    producer, _consumer, path, up = make([LayerSpec("default")])
    assert up.keyframes == ["default"]  # asked on start
    feed(producer, frame("default", 100, 9000, 3, False, 0.0))
    assert path.rtp == []  # no keyframe yet
    feed(producer, frame("default", 103, 12000, 3, True, 0.033))
    feed(producer, frame("default", 106, 15000, 2, False, 0.066))
    assert len(path.rtp) == 5
    seqs = [p[2] for p in path.rtp]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    assert {p[4] for p in path.rtp} == {0xABCD} and {p[1] for p in path.rtp} == {102}
    assert [p[0] for p in path.rtp] == [0, 0, 1, 0, 1]
    ts = [p[3] for p in path.rtp]
    assert (ts[3] - ts[0]) & 0xFFFFFFFF == 3000


def test_layer_switch_is_continuous_and_on_a_keyframe() -> None:
    producer, consumer, path, up = make([LayerSpec("lo", 320, 180), LayerSpec("hi", 1280, 720)])
    wanted: list[frozenset[str]] = []
    producer.on_wanted_layers = wanted.append
    consumer.set_preferred_size(320, 180)
    assert consumer.target_layer == "lo"
    feed(producer, frame("lo", 5000, 1000, 2, True, 1.0))
    feed(producer, frame("hi", 60000, 777000, 4, True, 1.0))  # not our layer: ignored
    assert consumer.current_layer == "lo" and len(path.rtp) == 2
    consumer.set_preferred_size(1280, 720)
    assert up.keyframes[-1] == "hi"
    assert producer.wanted_layers == {"lo", "hi"}
    feed(producer, frame("hi", 60004, 780000, 2, False, 1.033))  # not a keyframe: wait
    feed(producer, frame("lo", 5002, 4000, 2, False, 1.033))  # still on lo meanwhile
    feed(producer, frame("hi", 60006, 783000, 3, True, 1.066))  # switch here
    feed(producer, frame("lo", 5004, 7000, 2, False, 1.066))  # old layer: dropped now
    assert consumer.current_layer == "hi" and consumer.layer_switches == 1
    assert len(path.rtp) == 2 + 2 + 3
    seqs = [p[2] for p in path.rtp]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    ts = [p[3] for p in path.rtp]
    # after the switch the timestamp moves on by the elapsed wall time (33 ms)
    assert (ts[4] - ts[3]) & 0xFFFFFFFF == int(0.033 * 90000)
    assert producer.wanted_layers == {"hi"} and wanted[-1] == frozenset({"hi"})
    # a late packet of the new layer from before the switch point is not forwarded
    feed(producer, [MediaPacket(b"z", 60005, 780000, 1, False, "hi", 1.07)])
    assert len(path.rtp) == 7


def test_nack_is_answered_from_the_cache_or_passed_upstream() -> None:
    producer, consumer, path, up = make([LayerSpec("default")])
    feed(producer, frame("default", 65530, 0, 10, True, 0.0))  # wraps past 65535
    sent = list(path.rtp)
    assert path.urgent == 0  # video is not urgent for a pacer
    wanted = [sent[2][2], sent[7][2]]
    nack = parse_rtcp(_nack(0xABCD, wanted))[0]
    consumer.handle_rtcp(nack)
    assert consumer.retransmitted == 2
    assert path.urgent == 2  # retransmissions are
    assert [p[2] for p in path.rtp[-2:]] == wanted
    assert path.rtp[-1][5] == sent[7][5]
    # something no longer cached goes to the publisher, in its own numbering
    missing_out = (sent[0][2] - 200) & 0xFFFF
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, [missing_out]))[0])
    assert up.nacks == []  # older than this consumer's first packet: ignored
    producer.layers["default"].cache.clear()
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, [sent[3][2]]))[0])
    assert up.nacks == [("default", [(65530 + 3) & 0xFFFF])]


def test_a_nack_across_the_wrap_as_aiortc_parses_it_is_answered() -> None:
    # aiortc's parser adds a bitmask's offsets to the packet id without wrapping: a NACK
    # for 65534 and 1 comes as [65534, 65537]. Packing 65537 into a header raised, in the
    # DTLS transport's receive loop, and ended the subscriber's connection.
    producer, consumer, path, _up = make([LayerSpec("default")])
    feed(producer, frame("default", 1000, 0, 10, True, 0.0))
    sent = [p[2] for p in path.rtp]
    nack = seam.RtcpRtpfbPacket(fmt=1, ssrc=1, media_ssrc=0xABCD, lost=[sent[4] + 0x10000])
    consumer.handle_rtcp(nack)
    assert consumer.retransmitted == 1 and path.rtp[-1][2] == sent[4]


def test_a_packet_missing_upstream_is_asked_for_at_most_every_interval_and_three_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each subscriber asks again every round trip; the publisher is asked once per
    ``UPSTREAM_NACK_INTERVAL_S`` and ``UPSTREAM_NACK_TRIES`` times at most per packet."""
    clock = [100.0]
    monkeypatch.setattr(producer_module.time, "monotonic", lambda: clock[0])
    producer, consumer, path, up = make([LayerSpec("default")])
    feed(producer, frame("default", 1000, 0, 10, True, 0.0))
    out = [p[2] for p in path.rtp]
    producer.layers["default"].cache.clear()  # nothing the SFU could answer itself

    def ask(who: Consumer, ssrc: int, seqs: list[int]) -> None:
        who.handle_rtcp(parse_rtcp(_nack(ssrc, seqs))[0])

    ask(consumer, 0xABCD, [out[2], out[3]])
    assert up.nacks == [("default", [1002, 1003])]
    # asked again by the same subscriber, or by another (its consumer passes on the source's
    # numbers), within the interval: not passed on
    clock[0] += producer_module.UPSTREAM_NACK_INTERVAL_S / 2
    ask(consumer, 0xABCD, [out[2]])
    producer.request_retransmission("default", [1003])
    assert len(up.nacks) == 1
    assert producer.upstream_nacks_skipped == 2
    # after it, once more; a packet not asked for before goes at once
    clock[0] += producer_module.UPSTREAM_NACK_INTERVAL_S
    ask(consumer, 0xABCD, [out[2], out[5]])
    assert up.nacks[-1] == ("default", [1002, 1005])
    clock[0] += producer_module.UPSTREAM_NACK_INTERVAL_S
    ask(consumer, 0xABCD, [out[2]])
    assert up.nacks[-1] == ("default", [1002])
    # three times asked: given up (the subscriber's keyframe request takes over)
    for _ in range(3):
        clock[0] += producer_module.UPSTREAM_NACK_INTERVAL_S
        ask(consumer, 0xABCD, [out[2]])
    assert len(up.nacks) == 3
    assert producer_module.UPSTREAM_NACK_TRIES == 3


def _sent_a_frame(
    monkeypatch: pytest.MonkeyPatch, rtt_s: float
) -> tuple[list[float], Consumer, FakePath, list[int]]:
    """A consumer that sent one 10-packet keyframe (their sequence numbers), its RTT
    ``rtt_s``, on a clock the test moves (``now[0]``)."""
    now = [100.0]
    monkeypatch.setattr("edge_sfu.media.consumer.time.monotonic", lambda: now[0])
    producer, consumer, path, _up = make([LayerSpec("default")])
    feed(producer, frame("default", 100, 0, 10, True, 0.0))
    consumer.rtt_s = rtt_s
    return now, consumer, path, [p[2] for p in path.rtp]


def test_a_packet_asked_for_again_within_a_round_trip_is_not_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # aiortc lists every packet still missing with each new gap, Chromium repeats its NACK
    # every round trip: on a congested link, answering every repeat multiplies the load
    now, consumer, path, sent = _sent_a_frame(monkeypatch, rtt_s=0.2)
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, sent[2:4]))[0])
    assert consumer.retransmitted == 2
    now[0] += 0.1  # the same two and a new one, before the retransmissions could arrive
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, sent[2:5]))[0])
    assert consumer.retransmitted == 3 and consumer.resends_skipped == 2
    assert [p[2] for p in path.rtp[-3:]] == [sent[2], sent[3], sent[4]]
    now[0] += 0.15  # a round trip after: a retransmission that was lost is sent again
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, sent[2:3]))[0])
    assert consumer.retransmitted == 4 and path.rtp[-1][2] == sent[2]
    # the memory of what was resent stays bounded
    for i in range(600):
        now[0] += 0.01
        consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, [sent[i % 10]]))[0])
    assert len(consumer._resent) <= 513


def test_a_round_trip_counts_from_when_the_last_copy_left_the_pacer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # on a congested link the retransmission waits in the pacer behind others: a NACK that
    # repeats it a round trip after it was queued came before the copy could even leave
    now, consumer, path, sent = _sent_a_frame(monkeypatch, rtt_s=0.1)
    path.pacer = QueuedFor(0.2)
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, sent[2:3]))[0])
    assert consumer.retransmitted == 1
    path.pacer.seconds = 0.0
    now[0] += 0.25  # a round trip after the push, but the copy left only 0.05 s ago
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, sent[2:3]))[0])
    assert consumer.retransmitted == 1 and consumer.resends_skipped == 1
    now[0] += 0.06  # a round trip after the copy left: it was lost, so again
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, sent[2:3]))[0])
    assert consumer.retransmitted == 2 and path.rtp[-1][2] == sent[2]


def test_pli_from_subscriber_becomes_a_keyframe_request() -> None:
    producer, consumer, _path, up = make([LayerSpec("default")])
    feed(producer, frame("default", 1, 0, 1, True, 0.0))
    before = len(up.keyframes)
    pli = parse_rtcp(struct.pack("!BBHII", 0x81, 206, 2, 1, 0xABCD))[0]
    consumer.handle_rtcp(pli)
    assert len(up.keyframes) == before + 1 and consumer.plis_received == 1


def test_sender_report_uses_the_source_clock_in_our_timestamp_space() -> None:
    producer, consumer, path, _up = make([LayerSpec("default")])
    feed(producer, frame("default", 1, 90000, 2, True, 10.0))
    producer.set_sync("default", 3_900_000_000.5, 90000)
    sync = producer.layers["default"].sync
    assert sync is not None
    sr = consumer.sender_report(now=sync.local + 1.0)
    assert sr is not None
    packets = parse_rtcp(sr)
    report = packets[0]
    assert type(report).__name__ == "RtcpSrPacket" and report.ssrc == 0xABCD
    info: Any = report.sender_info
    first_ts = path.rtp[0][3]
    assert (info.rtp_timestamp - first_ts) & 0xFFFFFFFF == 90000
    assert abs((info.ntp_timestamp >> 32) - 3_900_000_001) <= 1
    assert info.packet_count == 2 and info.octet_count == 2
    assert type(packets[1]).__name__ == "RtcpSdesPacket"


def test_close_cascades_once() -> None:
    producer, consumer, _path, _up = make([LayerSpec("default")])
    closed: list[str] = []
    consumer.on_close(lambda c: closed.append("consumer"))
    producer.on_close(lambda p: closed.append("producer"))
    producer.close()
    producer.close()
    consumer.close()
    assert closed == ["consumer", "producer"]
    assert producer.consumers == []


def _nack(media_ssrc: int, seqs: list[int]) -> bytes:
    from edge_sfu.media.incoming import nack_packet

    return nack_packet(1, media_ssrc, seqs)


def test_continuous_across_a_change_of_publisher() -> None:
    producer, consumer, path, _up = make([LayerSpec("default")])
    feed(producer, frame("default", 40000, 5000, 3, True, 2.0))
    other_up = Upstream()
    other = Producer(
        producer_id="MT2",
        participant_id="PC",
        codec=H264,
        request_keyframe=other_up.keyframes.append,
        keyframe_interval_s=0.0,
    )
    consumer.replace_producer(other)
    assert other_up.keyframes == ["default"]
    assert producer.consumers == [] and other.consumers == [consumer]
    feed(producer, frame("default", 40003, 8000, 2, True, 2.033))  # old publisher: ignored
    feed(other, frame("default", 7, 123456, 2, False, 2.05))  # waits for a keyframe
    feed(other, frame("default", 9, 126456, 3, True, 2.1))
    assert len(path.rtp) == 3 + 3
    seqs = [p[2] for p in path.rtp]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    assert (path.rtp[3][3] - path.rtp[2][3]) & 0xFFFFFFFF == int(0.1 * 90000)
    opus = Producer(producer_id="MT3", participant_id="PC", codec=OPUS)
    with pytest.raises(UnsupportedCodec):
        consumer.replace_producer(opus)


def _receiver_report(
    media_ssrc: int, fraction: int, lost: int, jitter: int, lsr: int, dlsr: int
) -> bytes:
    block = struct.pack("!IB", media_ssrc, fraction) + lost.to_bytes(3, "big")
    block += struct.pack("!IIII", 7000, jitter, lsr, dlsr)
    return struct.pack("!BBHI", 0x81, 201, 7, 0x5EED) + block


def test_receiver_reports_give_loss_jitter_and_rtt() -> None:
    producer, consumer, path, _up = make([LayerSpec("default")])
    feed(producer, frame("default", 1, 90000, 2, True, 10.0))
    assert consumer.fraction_lost is None and consumer.rtt_s is None
    assert consumer.send_sender_report()
    sr_ntp = struct.unpack_from("!Q", path.rtcp[-1], 8)[0]
    lsr = (sr_ntp >> 16) & 0xFFFFFFFF
    # Another stream's block is not ours.
    consumer.handle_rtcp(parse_rtcp(_receiver_report(0x1234, 128, 9, 900, lsr, 0))[0])
    assert consumer.fraction_lost is None
    # The subscriber held our report 0.25 s: the RTT is what is left of the time since.
    time.sleep(0.5)
    consumer.handle_rtcp(parse_rtcp(_receiver_report(0xABCD, 64, 12, 900, lsr, 16384))[0])
    assert consumer.fraction_lost == 0.25 and consumer.packets_lost == 12
    assert consumer.jitter_s == pytest.approx(0.01)  # 900 ticks of the 90 kHz clock
    assert consumer.rtt_s == pytest.approx(0.25, abs=0.05)
    # An LSR we never sent (the source's clock, a lost report) leaves the RTT as it was.
    consumer.handle_rtcp(parse_rtcp(_receiver_report(0xABCD, 0, 12, 0, lsr ^ 0xFFFF, 0))[0])
    assert consumer.rtt_s == pytest.approx(0.25, abs=0.05) and consumer.fraction_lost == 0


def test_the_base_rtt_is_the_least_of_the_recent_reports() -> None:
    # A report a busy receiver stamped late reads a round trip the link never had: the
    # base RTT is the least of the last few seconds' reports, the RTT the latest.
    producer, consumer, path, _up = make([LayerSpec("default")])
    feed(producer, frame("default", 1, 90000, 2, True, 10.0))
    assert consumer.base_rtt_s() is None
    assert consumer.send_sender_report()
    lsr = (struct.unpack_from("!Q", path.rtcp[-1], 8)[0] >> 16) & 0xFFFFFFFF
    time.sleep(0.5)
    for held_s in (0.25, 0.45, 0.05):  # round trips of about 0.25, 0.05, 0.45 s
        report = _receiver_report(0xABCD, 0, 0, 0, lsr, int(held_s * 65536))
        consumer.handle_rtcp(parse_rtcp(report)[0])
    assert consumer.rtt_s == pytest.approx(0.45, abs=0.05)
    assert consumer.base_rtt_s() == pytest.approx(0.05, abs=0.05)
    # none that recent: the latest
    later = time.monotonic() + BASE_RTT_WINDOW_S + 1
    assert consumer.base_rtt_s(later) == pytest.approx(0.45, abs=0.05)


def test_padding_goes_between_frames_and_the_stream_continues_after_it() -> None:
    producer, consumer, path, _up = make([LayerSpec("default")])
    feed(producer, frame("default", 100, 9000, 2, True, 0.0))
    sent_before = len(path.rtp)
    frame_end_ts = path.rtp[-1][3]
    assert consumer.send_padding(3) == 3 * (12 + 255)
    assert path.probes == 3
    padding = path.rtp[sent_before:]
    assert {p[3] for p in padding} == {frame_end_ts}  # the last frame's timestamp
    feed(producer, frame("default", 102, 12000, 2, False, 0.033))
    seqs = [p[2] for p in path.rtp]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    assert consumer.packets_sent == 4  # padding is not media
    # mid-frame (no marker yet) there is no padding
    feed(producer, [MediaPacket(b"x", 104, 15000, 0, False, "default", 0.066)])
    assert consumer.send_padding(3) == 0
    # a NACK of a packet sent after the padding is still answered with the right one
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, [path.rtp[-1][2]]))[0])
    assert path.rtp[-1][5] == b"x" and consumer.retransmitted == 1


def test_packets_sent_before_padding_are_still_resent_and_padding_as_padding() -> None:
    # A probe fills a short link beyond what it carries: what is lost around the padding
    # must still be resent, or the subscriber waits frozen for the next keyframe.
    producer, consumer, path, up = make([LayerSpec("default")])
    sent: dict[int, bytes] = {}  # out seq -> payload, media only
    source = 100
    for run in range(3):
        for n in range(3):
            start = len(path.rtp)
            feed(producer, frame("default", source, 9000 + 3000 * n, 2, n == 0, run + n / 30))
            sent.update({p[2]: p[5] for p in path.rtp[start:]})
            source += 2
        start = len(path.rtp)
        consumer.send_padding(2)
        pads = [p[2] for p in path.rtp[start:]]
    # every media packet is resent as itself, from before, between and after the paddings
    for out_seq, payload in sent.items():
        consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, [out_seq]))[0])
        assert path.rtp[-1][2] == out_seq and path.rtp[-1][5] == payload
    assert consumer.retransmitted == len(sent) == 18
    # a NACK for padding is answered with the smallest padding packet under each number
    # and the padding's timestamp (a receiver that assembles frames in sequence waits for
    # it), and asks the publisher for nothing
    padded = {p[2]: p for p in path.rtp if p[2] in pads}
    before = len(path.rtp)
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, pads))[0])
    again = path.rtp[before:]
    assert [p[2] for p in again] == pads and up.nacks == []
    assert all(p[5] == b"\x01" and p[3] == padded[p[2]][3] for p in again)
    assert consumer.retransmitted == 18  # media retransmissions only
    # and not again within the resend interval
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, pads))[0])
    assert len(path.rtp) == before + len(pads)


def test_only_the_latest_paddings_are_remembered() -> None:
    producer, consumer, path, _up = make([LayerSpec("default")])
    feed(producer, frame("default", 10, 9000, 2, True, 0.0))
    oldest = path.rtp[0][2]
    for n in range(1, 20):
        consumer.send_padding(1)
        feed(producer, frame("default", 10 + 2 * n, 9000 + 3000 * n, 2, False, n / 30))
    latest = path.rtp[-1]
    # beyond the memory a packet is not mapped (nor resent as the wrong one)
    before = len(path.rtp)
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, [oldest]))[0])
    assert len(path.rtp) == before
    consumer.handle_rtcp(parse_rtcp(_nack(0xABCD, [latest[2]]))[0])
    assert path.rtp[-1][2] == latest[2] and path.rtp[-1][5] == latest[5]


def test_a_switched_off_stream_is_padded_and_resumes_after_the_padding() -> None:
    # A subscriber whose every video is switched off has only these streams to probe its
    # link with: padding goes on, mid-frame or not, and the next keyframe continues after it.
    producer, consumer, path, _up = make([LayerSpec("default")])
    feed(producer, frame("default", 100, 9000, 2, True, 0.0))
    feed(producer, [MediaPacket(b"x", 102, 12000, 0, False, "default", 0.033)])  # mid-frame
    consumer.set_allowed_layer(None, switched_off=True, reason="network-congestion")
    feed(producer, frame("default", 103, 15000, 2, False, 0.066))  # not forwarded
    assert len(path.rtp) == 3
    assert consumer.send_padding(4) == 4 * (12 + 255)
    assert path.probes == 4 and consumer.packets_sent == 3
    consumer.set_allowed_layer(None, switched_off=False)
    feed(producer, frame("default", 105, 18000, 2, True, 0.1))  # a keyframe: on again
    seqs = [p[2] for p in path.rtp]
    assert len(seqs) == 9
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))
    # a consumer that never sent starts its stream with the padding, and its first frame
    # follows it
    p2, fresh, fresh_path, _u2 = make([LayerSpec("default")])
    fresh.set_allowed_layer(None, switched_off=True, reason="network-congestion")
    assert fresh.send_padding(3) == 3 * (12 + 255)
    fresh.set_allowed_layer(None, switched_off=False)
    feed(p2, frame("default", 7000, 90000, 2, True, 1.0))
    seqs = [p[2] for p in fresh_path.rtp]
    assert len(seqs) == 5 and all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


def test_a_packet_that_arrives_twice_is_forwarded_once() -> None:
    # A browser's probes resend recent packets over RTX ("redundant payloads"); a copy sent
    # on would be dropped by the subscriber's SRTP as a replay and read as lost.
    producer, _consumer, path, _up = make([LayerSpec("default")])
    first = frame("default", 100, 9000, 3, True, 0.0)
    feed(producer, first)
    feed(producer, [first[1]])  # the same packet again
    feed(producer, frame("default", 103, 12000, 1, False, 0.033))
    assert [p[2] for p in path.rtp] == sorted({p[2] for p in path.rtp})
    assert len(path.rtp) == 4 and producer.duplicates_dropped == 1
    # a late packet that was missing is forwarded (a retransmission the SFU asked for)
    feed(producer, frame("default", 105, 15000, 2, False, 0.066)[1:])
    feed(producer, frame("default", 105, 15000, 2, False, 0.066)[:1])
    assert len(path.rtp) == 6 and producer.duplicates_dropped == 1


def test_a_layer_that_does_not_flow_falls_back_to_one_that_does() -> None:
    # A browser whose uplink cannot carry its top simulcast layer stops sending it: the
    # subscriber gets the best layer that flows, and the top one as soon as it comes back.
    producer, consumer, path, _ = make([LayerSpec("lo", 320, 180), LayerSpec("hi", 1280, 720)])
    feed(producer, frame("lo", 100, 0, 2, True, 10.0))
    consumer.set_preferred_size(None, None)  # wants the best: hi
    assert consumer.preferred_layer == "hi" and consumer.target_layer == "lo"
    assert "hi" in producer.wanted_layers  # the publisher is still asked to send it
    feed(producer, frame("lo", 102, 3000, 2, True, 10.03))
    assert consumer.current_layer == "lo" and len(path.rtp) == 2
    feed(producer, frame("hi", 500, 3000, 2, False, 10.05))  # back, but mid-picture
    assert consumer.current_layer == "lo"
    feed(producer, frame("hi", 502, 6000, 2, True, 10.06))  # a keyframe: move up
    assert consumer.current_layer == "hi" and consumer.target_layer == "hi"
    # hi goes silent for over a second while lo flows: back down, at lo's next keyframe
    feed(producer, frame("lo", 104, 9000, 2, False, 10.5))
    assert consumer.current_layer == "hi"
    feed(producer, frame("lo", 106, 12000, 2, False, 11.2))
    assert consumer.target_layer == "lo"
    feed(producer, frame("lo", 108, 15000, 2, True, 11.3))
    assert consumer.current_layer == "lo"
    seqs = [p[2] for p in path.rtp]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


def test_a_layer_the_publisher_paused_is_left_at_once() -> None:
    # A browser whose uplink guard pauses its top layer says so (``sending-layers``): the
    # subscriber moves down at the lower layer's next keyframe, asked for now, without
    # waiting for the top layer's silence; a keyframe on the top layer resumes it.
    producer, consumer, path, up = make([LayerSpec("lo", 320, 180), LayerSpec("hi", 1280, 720)])
    consumer.set_preferred_size(None, None)
    feed(producer, frame("lo", 100, 0, 2, True, 10.0))
    feed(producer, frame("hi", 500, 0, 2, True, 10.0))
    assert consumer.current_layer == "hi"
    asked = len(up.keyframes)
    producer.set_paused_layers({"hi", "no-such-layer"})
    assert producer.paused_layers == {"hi"}
    assert consumer.target_layer == "lo" and up.keyframes[asked:] == ["lo"]
    assert "hi" in producer.wanted_layers  # still wanted: the publisher may resume it
    feed(producer, frame("hi", 502, 3000, 2, False, 10.03))  # in flight: still forwarded
    assert consumer.current_layer == "hi" and len(path.rtp) == 4
    feed(producer, frame("lo", 102, 3000, 2, True, 10.05))
    assert consumer.current_layer == "lo" and len(path.rtp) == 6
    feed(producer, frame("hi", 504, 6000, 2, False, 10.06))  # no keyframe: stays paused
    assert producer.paused_layers == {"hi"} and consumer.current_layer == "lo"
    feed(producer, frame("hi", 506, 9000, 2, True, 10.1))  # resumed with a keyframe
    assert producer.paused_layers == frozenset()
    assert consumer.current_layer == "hi" and consumer.target_layer == "hi"
    seqs = [p[2] for p in path.rtp]
    assert all((b - a) & 0xFFFF == 1 for a, b in itertools.pairwise(seqs))


def test_with_nothing_flowing_yet_the_desired_layer_is_awaited() -> None:
    # A camera that encodes only wanted layers sends nothing until asked.
    producer, consumer, _, up = make([LayerSpec("lo", 320, 180), LayerSpec("hi", 1280, 720)])
    consumer.set_preferred_size(1280, 720)
    assert consumer.target_layer == "hi" and up.keyframes[-1] == "hi"
    assert producer.wanted_layers == {"hi"}


def _vp8(pid: int, tl0: int, key: bool, start: bool = True) -> bytes:
    # RFC 7741 descriptor: X and S, then I and L; a 15-bit PictureID; TL0PICIDX; then the
    # VP8 payload header (P bit clear on a keyframe)
    return bytes([0x90 if start else 0x80, 0xC0, 0x80 | (pid >> 8), pid & 0xFF, tl0]) + bytes(
        [0x00 if key else 0x01, 0, 0]
    )


def _vp8_frame(layer: str, seq: int, ts: int, pid: int, tl0: int, key: bool, t: float):
    return [
        MediaPacket(_vp8(pid, tl0, key), seq, ts, 0, key, layer, t),
        MediaPacket(_vp8(pid, tl0, False, start=False), seq + 1, ts, 1, False, layer, t),
    ]


def test_vp8_picture_numbering_goes_on_across_a_layer_switch() -> None:
    # Each simulcast encoding numbers its pictures on its own: after a switch the subscriber
    # must see PictureID and TL0PICIDX go on from where they were (retransmissions too).
    producer, consumer, path, _ = make([LayerSpec("lo", 320, 180), LayerSpec("hi", 1280, 720)], VP8)
    consumer.set_preferred_size(320, 180)
    feed(producer, _vp8_frame("lo", 100, 0, 0x7FFE, 250, True, 10.0))
    feed(producer, _vp8_frame("lo", 102, 3000, 0x7FFF, 251, False, 10.03))
    consumer.set_preferred_size(None, None)  # up to hi, numbered far from lo
    feed(producer, _vp8_frame("hi", 500, 3000, 1234, 17, False, 10.05))  # not a keyframe
    feed(producer, _vp8_frame("hi", 502, 6000, 1235, 18, True, 10.06))
    feed(producer, _vp8_frame("hi", 504, 9000, 1236, 18, False, 10.1))
    ids = [vp8_rewrite_ids(p[5], 0, 0)[1:] for p in path.rtp]
    assert ids == [(0x7FFE, 250)] * 2 + [(0x7FFF, 251)] * 2 + [(0, 252)] * 2 + [(1, 252)] * 2
    # a NACK for a packet after the switch is answered with the numbering it was sent with
    out_seq = path.rtp[-1][2]
    consumer._answer_nack([out_seq])
    assert vp8_rewrite_ids(path.rtp[-1][5], 0, 0)[1:] == (1, 252)
    # a payload without those fields passes as it is
    plain = bytes([0x10, 0, 0, 0])
    assert vp8_rewrite_ids(plain, 5, 5) == (plain, None, None)
    seven = bytes([0x90, 0x80, 0x7F, 0x00])  # a 7-bit PictureID wraps at 128
    assert vp8_rewrite_ids(seven, 2, 0)[:2] == (bytes([0x90, 0x80, 0x01, 0x00]), 1)
