"""What a real SFU does per subscriber, checked with real aiortc peers on this host."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
from typing import Any

import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import pylibsrtp
import pytest

from edge_sfu.media import Router
from tests.integration.media.peers import (
    AudioStreamTrack,
    Subscriber,
    SyntheticVideoTrack,
    answer_sending,
    new_pc,
    publish,
)
from tests.support.seam_probes import decoder_thread_running, transport_cc_negotiated
from tests.support.waiting import wait_for


class Counting:
    """Wraps an aiortc factory function and counts calls."""

    def __init__(self, module: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = getattr(module, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)


async def _room(
    subscribers: int, monkeypatch: pytest.MonkeyPatch | None = None
) -> tuple[Router, Any, Any, list[Any], list[Subscriber]]:
    router = Router("RM")
    pub_pc, pub_t, producers = await publish(
        router,
        "PA",
        [(SyntheticVideoTrack(320, 240), "video/H264"), (AudioStreamTrack(), "audio/opus")],
    )
    subs = [Subscriber(router, f"PS{i}") for i in range(subscribers)]
    for sub in subs:
        for producer in producers:
            router.consume(producer, sub.transport)
        await sub.negotiate()
    return router, pub_pc, pub_t, producers, subs


async def _teardown(router: Router, pub_pc: Any, subs: list[Subscriber]) -> None:
    for sub in subs:
        await sub.close()
    await pub_pc.close()
    await router.close()


async def test_no_decoder_or_encoder_runs_in_the_forwarding_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoders = Counting(aiortc.rtcrtpreceiver, "get_decoder", monkeypatch)
    encoders = Counting(aiortc.rtcrtpsender, "get_encoder", monkeypatch)
    router, pub_pc, _, producers, subs = await _room(2)
    try:
        await wait_for(lambda: all(s.video_count() >= 15 for s in subs), what="frames")
        await wait_for(lambda: all(s.audio_frames >= 20 for s in subs), what="audio")
        sfu_transports = list(router.transports.values())
        assert len(sfu_transports) == 3
        receivers = [t.receiver for tr in sfu_transports for t in tr.pc.getTransceivers()]
        assert len(receivers) == 2 + 2 * 2
        assert not any(decoder_thread_running(r) for r in receivers)
        # decoders: one per track per subscriber (the test's own peers), none for the SFU;
        # encoders: one per publisher track, none for the SFU's senders
        assert decoders.calls == 2 * 2
        assert encoders.calls == 2
        forwarded = sum(c.packets_sent for tr in sfu_transports for c in tr.consumers.values())
        received = sum(p.packets_received for p in producers)
        assert forwarded >= 2 * received - 50  # every packet went to both subscribers
    finally:
        await _teardown(router, pub_pc, subs)


@pytest.mark.usefixtures("send_mode")
async def test_keyframe_requested_from_publisher_when_a_subscriber_joins() -> None:
    router, pub_pc, _, producers, subs = await _room(1)
    video = next(p for p in producers if p.kind == "video")
    sender = next(s for s in pub_pc.getSenders() if s.kind == "video")
    plis = []
    original = sender._handle_rtcp_packet

    async def spy(packet: Any) -> None:
        # PLI only (fmt 1): the REMB the SFU also sends is a PSFB packet too (fmt 15)
        if type(packet).__name__ == "RtcpPsfbPacket" and packet.fmt == 1:
            plis.append(packet)
        await original(packet)

    sender._handle_rtcp_packet = spy
    try:
        await wait_for(lambda: subs[0].video_count() >= 5, what="first subscriber")
        await asyncio.sleep(0.6)  # past the keyframe-request rate limit
        before, requests_before = len(plis), video.keyframe_requests_sent
        late = Subscriber(router, "PLATE")
        subs.append(late)
        router.consume(video, late.transport)
        await late.negotiate()
        await wait_for(lambda: late.video_count() >= 5, what="late subscriber frames")
        assert video.keyframe_requests_sent == requests_before + 1
        await wait_for(lambda: len(plis) > before, what="PLI at publisher")
        assert plis[-1].media_ssrc == sender._ssrc
    finally:
        await _teardown(router, pub_pc, subs)


@pytest.mark.usefixtures("send_mode")
async def test_nack_answered_from_cache_and_sender_reports_sent() -> None:
    router, pub_pc, _, _producers, subs = await _room(1)
    sub = subs[0]
    try:
        await wait_for(lambda: sub.video_count() >= 10, what="frames")
        consumer = next(c for c in sub.transport.consumers.values() if c.kind == "video")
        top = consumer._max_out_seq
        assert top is not None
        lost = [(top - i) & 0xFFFF for i in (8, 5, 3)]
        video_receiver = next(r for r in sub.pc.getReceivers() if r.track.kind == "video")
        await video_receiver._send_rtcp_nack(consumer._ssrc, lost)
        await wait_for(lambda: consumer.retransmitted >= 3, what="retransmissions")
        assert consumer.nacks_received == 1 and consumer.retransmitted == 3
        # sender reports reach the subscriber: its remote-outbound stats fill in
        await wait_for(lambda: consumer.sender_reports_sent >= 2, timeout=10, what="SR")
        stats = await video_receiver.getStats()
        remote = [s for s in stats.values() if s.type == "remote-outbound-rtp"]
        assert remote and remote[0].packetsSent > 0 and remote[0].ssrc == consumer._ssrc
    finally:
        await _teardown(router, pub_pc, subs)


def _media_port(transport: Any) -> tuple[str, int]:
    dtls = transport.pc.getTransceivers()[0].receiver.transport
    pair = dtls.transport._connection._nominated[1]
    return pair.local_candidate.host, pair.local_candidate.port


def _garbage() -> list[bytes]:
    rtp = struct.pack("!BBHII", 0x80, 102, 1, 1, 1)
    rtcp = struct.pack("!BBHI", 0x81, 201, 7, 1)
    return [
        b"",
        b"\x80",
        os.urandom(1),
        os.urandom(200),
        rtp,
        rtp + os.urandom(1000),  # looks like SRTP, fails authentication
        rtcp + os.urandom(30),  # looks like SRTCP
        b"\x80\xc8\xff\xff",
        b"\x17\xfe\xfd" + os.urandom(60),  # DTLS record
        b"\x00\x01\x00\x08" + os.urandom(24),  # STUN-ish
        b"\x00\x01\x00\x00\x21\x12\xa4\x42" + os.urandom(12),  # STUN binding, no auth
        b"\xff" * 1500,
    ]


async def test_malformed_rtp_and_rtcp_at_the_media_port() -> None:
    router, pub_pc, pub_t, _producers, subs = await _room(2)
    try:
        await wait_for(lambda: all(s.video_count() >= 5 for s in subs), what="frames")
        targets = [_media_port(pub_t), *(_media_port(s.transport) for s in subs)]
        # ICE may nominate an IPv4 pair for one transport and an IPv6 pair for another
        socks = {
            family: socket.socket(family, socket.SOCK_DGRAM)
            for family in (socket.AF_INET, socket.AF_INET6)
        }
        counts = [s.video_count() for s in subs]
        try:
            for _ in range(20):
                for host, port in targets:
                    sock = socks[socket.AF_INET6 if ":" in host else socket.AF_INET]
                    for datagram in _garbage():
                        sock.sendto(datagram, (host, port))
                await asyncio.sleep(0.05)
        finally:
            for sock in socks.values():
                sock.close()
        # authenticated but malformed RTP/RTCP from the publisher itself
        pub_dtls = pub_pc.getTransceivers()[0].sender.transport
        for bad in (
            struct.pack("!BBHI", 0x80, 200, 1, 1),  # SR too short
            struct.pack("!BBHI", 0x9F, 201, 1, 1),  # RR claiming 31 reports
            struct.pack("!BBHII", 0x81, 205, 2, 1, 2),  # NACK without FCI
            struct.pack("!BBHII", 0xA0, 96, 1, 1, 1) + b"\x00",  # padding bigger than packet
            struct.pack("!BBHII", 0x90, 96, 2, 1, 1) + b"\xbe\xde\x00\x09",  # truncated extension
        ):
            with contextlib.suppress(pylibsrtp.Error):  # libsrtp refuses some of these
                await pub_dtls._send_rtp(bad)
        await wait_for(
            lambda: all(s.video_count() >= c + 15 for s, c in zip(subs, counts, strict=True)),
            what="frames after the garbage",
        )
        assert all(t.connection_state == "connected" for t in router.transports.values())
    finally:
        await _teardown(router, pub_pc, subs)


async def test_mute_state_forwarded_as_event_and_close_cascades() -> None:
    router, pub_pc, pub_t, producers, subs = await _room(1)
    try:
        events: list[bool] = []
        for consumer in subs[0].transport.consumers.values():
            consumer.on_producer_enabled = events.append
        producers[0].set_enabled(False)
        producers[0].set_enabled(False)
        producers[0].set_enabled(True)
        assert events == [False, True]
        await pub_t.close()
        assert all(p.closed for p in producers)
        assert subs[0].transport.consumers == {}
        assert router.producers == {}
    finally:
        await _teardown(router, pub_pc, subs)


async def test_publication_while_a_subscription_is_pending() -> None:
    """A publication slot and a pending consumer go in one SFU offer: the consumer's m-line
    must not be taken for the publication, nor the publication's for the consumer."""
    router = Router("RM-glare")
    pub_pc, _, producers = await publish(
        router, "PA", [(SyntheticVideoTrack(320, 240), "video/H264")]
    )
    # PB is subscribed to PA, and asks to publish before the SFU offered the subscription
    pb_producers: list[Any] = []
    sub = Subscriber(router, "PB")
    consumer = router.consume(producers[0], sub.transport)
    slot = sub.transport.add_publication_slot("video", codec="H264")
    offer = await sub.transport.create_offer()
    await answer_sending(sub.pc, offer, {slot: (SyntheticVideoTrack(160, 120), "video/H264")})
    await sub.transport.handle_answer(sub.pc.localDescription.sdp)
    try:
        incoming = list(sub.transport.incoming.values())
        assert len(incoming) == 1 and incoming[0].kind == "video"
        pb_producers.append(router.produce(sub.transport, incoming[0]))
        await sub.negotiate()  # a later SFU offer changes nothing of either m-line
        await wait_for(lambda: sub.video_count() >= 5, what="subscription frames")
        assert {s for f in sub.frames.values() for s in f} == {(320, 240)}
        await wait_for(lambda: pb_producers[0].packets_received > 20, what="PB publishing")
        assert consumer.packets_sent > 0
    finally:
        await _teardown(router, pub_pc, [sub])


async def test_publisher_gets_receiver_reports() -> None:
    router, pub_pc, _, _producers, subs = await _room(1)
    try:
        sender = next(s for s in pub_pc.getSenders() if s.kind == "video")

        async def remote_inbound() -> list[Any]:
            stats = await sender.getStats()
            return [s for s in stats.values() if s.type == "remote-inbound-rtp"]

        found = await wait_for(
            remote_inbound,
            lambda f: f and f[0].roundTripTime is not None,
            timeout=10,
            what="a receiver report with a round-trip time",
        )
        assert found, "no receiver report reached the publisher"
        assert found[0].packetsLost == 0 and found[0].packetsReceived > 0
        assert found[0].roundTripTime is not None and 0 <= found[0].roundTripTime < 1.0
    finally:
        await _teardown(router, pub_pc, subs)


async def test_continuous_for_the_subscriber_across_a_change_of_publisher() -> None:
    router = Router("RM-switch")
    pc_a, _, (video_a,) = await publish(
        router, "PA", [(SyntheticVideoTrack(320, 240), "video/H264")]
    )
    pc_b, _, (video_b,) = await publish(
        router, "PB", [(SyntheticVideoTrack(160, 120), "video/H264")]
    )
    sub = Subscriber(router, "PS")
    consumer = router.consume(video_a, sub.transport)
    await sub.negotiate()
    try:
        await wait_for(lambda: sub.video_count() >= 8, what="frames from A")
        consumer.replace_producer(video_b)
        await wait_for(
            lambda: [s for f in sub.frames.values() for s in f][-1] == (160, 120),
            what="frames from B",
        )
        n = sub.video_count()
        await wait_for(lambda: sub.video_count() >= n + 5, what="more frames from B")
        sizes = [s for f in sub.frames.values() for s in f]
        switch = sizes.index((160, 120))
        assert set(sizes[:switch]) == {(320, 240)} and set(sizes[switch:]) == {(160, 120)}
        assert len(sub.frames) == 1  # one track at the subscriber throughout
        stats = await sub.pc.getReceivers()[0].getStats()
        inbound = [s for s in stats.values() if s.type == "inbound-rtp"]
        assert len(inbound) == 1 and inbound[0].packetsLost == 0
        assert video_a.consumers == [] and video_b.consumers == [consumer]
    finally:
        await sub.close()
        await pc_a.close()
        await pc_b.close()
        await router.close()


async def test_a_closed_publication_slot_is_reused_only_by_a_matching_publication() -> None:
    """The m-line of an unpublished track goes to the next publication of the same kind and
    codec restriction; any other publication gets an m-line of its own."""
    router = Router("RM-slots")
    transport = router.create_transport("PA")
    try:
        h264 = transport.add_publication_slot("video", codec="H264")
        assert not h264.fits("video", "H264")  # open, and not offered yet
        await transport.create_offer()
        h264.close()
        assert h264.mid is not None and h264.fits("video", "h264")
        others = [
            transport.add_publication_slot("video"),
            transport.add_publication_slot("video", codec="VP8"),
            transport.add_publication_slot("audio", codec="opus"),
        ]
        assert all(slot is not h264 for slot in others)
        again = transport.add_publication_slot("video", codec="h264")
        assert again is h264 and not h264.closed
        offer = await transport.create_offer()
        assert sum(line.startswith("m=") for line in offer.splitlines()) == 4
        assert h264.transceiver.direction == "recvonly"
        assert transport.incoming[h264.mid].kind == "video"
    finally:
        await router.close()


async def test_each_received_packet_reaches_the_arrival_hook_with_its_transport_seq(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The answer negotiates transport-cc; every packet the publisher sends is reported to
    ``Transport.on_rtp_arrival`` with the transport-wide sequence number it carried."""
    from aiortc.rtp import RtpPacket

    from edge_sfu.media import Transport

    arrivals: list[tuple[int | None, float, int, int]] = []
    monkeypatch.setattr(
        Transport,
        "on_rtp_arrival",
        lambda self, seq, arrival, size, ssrc: arrivals.append((seq, arrival, size, ssrc)),
    )
    # aiortc negotiates the extension but does not number packets: number them as it sends
    serialize = RtpPacket.serialize
    counter = iter(range(1 << 30))

    def numbered(self: RtpPacket, extensions_map: Any = None) -> bytes:
        if extensions_map is not None:
            self.extensions.transport_sequence_number = next(counter) & 0xFFFF
        return serialize(self, extensions_map)

    monkeypatch.setattr(RtpPacket, "serialize", numbered)
    with transport_cc_negotiated():
        router, pub_pc, _pub_t, _producers, subs = await _room(0)
    try:
        assert "a=extmap:4 http://www.ietf.org/id/draft-holmer" in pub_pc.localDescription.sdp
        await wait_for(lambda: len(arrivals) >= 100, what="packets at the hook")
        seqs = [seq for seq, _, _, _ in arrivals]
        assert None not in seqs
        assert len(set(seqs)) == len(seqs)  # one call per packet
        senders = {s.kind: s._ssrc for s in pub_pc.getSenders()}
        assert {ssrc for *_, ssrc in arrivals} <= set(senders.values())
        assert all(size > 12 for _, _, size, _ in arrivals)
        times = [t for _, t, _, _ in arrivals]
        assert times == sorted(times)
    finally:
        await _teardown(router, pub_pc, subs)


async def test_streams_unsignalled_in_the_sdp_are_routed_by_their_mid() -> None:
    """Two video m-lines share payload types and the answer names no SSRC (as a browser's
    simulcast answer does): each stream reaches its own m-line by its mid extension."""
    import re

    router = Router("RM-mid")
    pc = new_pc()
    transport = router.create_transport("PA")
    tracks = [
        (SyntheticVideoTrack(320, 240), "video/H264"),
        (SyntheticVideoTrack(160, 120), "video/H264"),
    ]
    slots = [transport.add_publication_slot("video", codec="H264") for _ in tracks]
    sub = Subscriber(router, "PS")
    try:
        await answer_sending(
            pc, await transport.create_offer(), dict(zip(slots, tracks, strict=True))
        )
        answer = re.sub(r"a=ssrc(-group)?:[^\r\n]*\r\n", "", pc.localDescription.sdp)
        assert "a=ssrc" not in answer and "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid" in answer
        await transport.handle_answer(answer)
        producers = [router.produce(transport, transport.incoming[slot.mid]) for slot in slots]
        for producer in producers:
            router.consume(producer, sub.transport)
        await sub.negotiate()
        await wait_for(
            lambda: len(sub.frames) == 2 and all(len(f) >= 5 for f in sub.frames.values()),
            what="both tracks",
        )
        assert sorted({size for f in sub.frames.values() for size in f}) == [(160, 120), (320, 240)]
        assert all(len({size for size in f}) == 1 for f in sub.frames.values())  # not mixed
    finally:
        await sub.close()
        await pc.close()
        await router.close()


async def test_simulcast_m_lines_in_offers_and_their_reuse() -> None:
    """A simulcast slot's offer lists its rids (paused ones marked); an answer that sends no
    simulcast leaves one layer; the m-line keeps its rids and is reused by a publication
    with the same rids or with none, never by one with other rids."""
    from edge_sfu.media import LayerSpec

    router = Router("RM-simulcast")
    transport = router.create_transport("PA")
    layers = [LayerSpec("h", 320, 240), LayerSpec("f", 640, 480)]
    pc = new_pc()
    try:
        for bad in ([LayerSpec("a b")], [LayerSpec("h"), LayerSpec("h")]):
            with pytest.raises(ValueError):
                transport.add_publication_slot("video", simulcast=bad)
        with pytest.raises(ValueError):
            transport.add_publication_slot("audio", simulcast=layers)
        slot = transport.add_publication_slot("video", codec="H264", simulcast=layers)
        offer = await transport.create_offer()
        assert "a=rid:h recv" in offer and "a=simulcast:recv h;f" in offer
        # aiortc answers without simulcast: the track is one stream, one layer
        await answer_sending(pc, offer, {slot: (SyntheticVideoTrack(160, 120), "video/H264")})
        await transport.handle_answer(pc.localDescription.sdp)
        track = transport.incoming[slot.mid]
        assert [s.name for s in track.layers] == ["default"]
        slot.close()
        offer = await transport.create_offer()
        assert "a=simulcast:recv h;f" in offer  # the rids stay with the m-line
        other = transport.add_publication_slot(
            "video", codec="H264", simulcast=[LayerSpec("q", 1, 1), LayerSpec("f", 2, 2)]
        )
        assert other is not slot
        same = transport.add_publication_slot("video", codec="H264", simulcast=layers)
        assert same is slot
        offer = await transport.create_offer()
        assert offer.count("a=simulcast:recv h;f") == 1 and "a=simulcast:recv q;f" in offer
        same.close()
        other.close()
        await transport.create_offer()
        one = transport.add_publication_slot("video", codec="H264")  # no layers: the lowest rid
        assert one is slot
        offer = await transport.create_offer()
        assert "a=simulcast:recv h;~f" in offer
    finally:
        await pc.close()
        await router.close()
