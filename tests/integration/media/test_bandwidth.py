"""Bandwidth estimation between real aiortc peers on this host: the publisher's REMB carries
the receive-side estimate and the publisher cap, subscribers' reports give a downlink
estimate, and malformed feedback is ignored while media keeps flowing."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from aiortc.rtp import unpack_remb_fci

from edge_sfu.media import Router, seam
from edge_sfu.media.bandwidth import START_BPS
from edge_sfu.media.twcc import FeedbackBuilder, TransportFeedback
from tests.integration.media.peers import (
    AudioStreamTrack,
    Subscriber,
    SyntheticVideoTrack,
    publish,
)
from tests.support.waiting import wait_for

# every test here runs with batched sends and with the plain fallback
pytestmark = pytest.mark.usefixtures("send_mode")


async def _room() -> tuple[Router, Any, Any, Subscriber, list[int]]:
    router = Router("RM")
    pub_pc, pub_t, producers = await publish(
        router, "PA", [(SyntheticVideoTrack(320, 240), "video/H264")]
    )
    sender = pub_pc.getSenders()[0]
    rembs: list[int] = []
    original = sender._handle_rtcp_packet

    async def spy(packet: Any) -> None:
        if type(packet).__name__ == "RtcpPsfbPacket" and packet.fmt == 15:
            rembs.append(unpack_remb_fci(packet.fci)[0])
        await original(packet)

    sender._handle_rtcp_packet = spy
    sub = Subscriber(router, "PS")
    router.consume(producers[0], sub.transport)
    await sub.negotiate()
    return router, pub_pc, pub_t, sub, rembs


async def test_remb_carries_the_uplink_estimate_and_the_publisher_cap() -> None:
    router, pub_pc, pub_t, sub, rembs = await _room()
    changes: list[Any] = []
    pub_t.on_estimate = lambda: changes.append(pub_t.estimate)
    try:
        await wait_for(lambda: sub.video_count() >= 10, what="frames")
        await wait_for(lambda: len(rembs) >= 2, timeout=5, what="REMBs")
        estimate = pub_t.estimate
        assert estimate is not None and estimate.available_incoming_bps is not None
        assert changes  # announced once it appeared
        # REMB says the receive-side estimate (it starts from what arrives and grows from
        # there), not the constant maximum; the estimator's figures are for the unit tests
        # on simulated links (a loaded machine's scheduling delays read as queues)
        (track,) = pub_t.incoming.values()
        received = track.rate_estimator.incoming_bps
        assert received is not None and received > 50_000
        assert 0 < rembs[-1] < router.settings.publisher_max_bitrate
        assert abs(rembs[-1] - pub_t._remb_sent[track.mid]) <= 0.001 * rembs[-1]
        pub_t.set_publisher_cap(100_000)
        count = len(rembs)
        # a decrease goes out at once, not with the next regular report
        await wait_for(lambda: len(rembs) > count, timeout=0.5, what="REMB after the cap")
        assert rembs[-1] <= 100_000
        pub_t.set_publisher_cap(None)
        count = len(rembs)
        await wait_for(lambda: len(rembs) > count, timeout=5, what="REMB after the cap lifts")
        assert rembs[-1] > 100_000
    finally:
        await sub.close()
        await pub_pc.close()
        await router.close()


async def test_receiver_reports_give_a_downlink_estimate() -> None:
    router, pub_pc, _pub_t, sub, _ = await _room()
    try:
        await wait_for(lambda: sub.video_count() >= 10, what="frames")
        await wait_for(
            lambda: (
                sub.transport.estimate is not None
                and sub.transport.estimate.available_outgoing_bps is not None
            ),
            timeout=6,
            what="downlink estimate from receiver reports",
        )
        estimate = sub.transport.estimate
        assert estimate.loss is not None and estimate.loss < 0.1
        assert estimate.available_outgoing_bps >= START_BPS  # nothing lost on loopback
    finally:
        await sub.close()
        await pub_pc.close()
        await router.close()


async def test_malformed_feedback_is_ignored_and_media_keeps_flowing() -> None:
    router, pub_pc, _pub_t, sub, _ = await _room()
    try:
        await wait_for(lambda: sub.video_count() >= 5, what="frames")
        transceiver = sub.transport.pc.getTransceivers()[0]
        dtls = transceiver.sender.transport
        good = TransportFeedback(1, 2, 0, 0, 0, (1, None, 300)).serialize()
        junk = [
            good[:-4],  # truncated deltas
            good[:12] + b"\xff" * 8,  # nonsense counts and chunks
            b"\x8f\xcd\x00\x02" + b"\x00" * 8,  # feedback with nothing in it
            b"\x8f\xce\x00\x04\x00\x00\x00\x01\x00\x00\x00\x00REMB\x01",  # REMB cut short
            b"\x8f\xce\x00\x05\x00\x00\x00\x01\x00\x00\x00\x00REMB\x01\xff\xff\xff",
            b"\x81\xc9\x00\x07" + b"\x00" * 4,  # RR whose block is missing
            b"\xaf\xcd\x00\x05" + b"\x00" * 20 + b"\x00",  # padding of length zero
        ]
        for data in junk:
            await dtls._handle_rtcp_data(data)
        assert sub.transport.bandwidth.malformed_feedback >= 2  # the others do not frame
        before = sub.video_count()
        await wait_for(lambda: sub.video_count() >= before + 10, what="frames after junk")
        assert sub.transport.pc.connectionState == "connected"
        await asyncio.sleep(0)
    finally:
        await sub.close()
        await pub_pc.close()
        await router.close()


class TransportCcPeer:
    """Makes an aiortc subscriber speak transport-cc: it reads the sequence numbers of what
    arrives (extension ``EXT``) and sends feedback every 100 ms, as a browser does."""

    EXT = seam.EXT_TRANSPORT_CC

    def __init__(self, pc: Any) -> None:
        self.dtls = pc.getTransceivers()[0].receiver.transport
        self.builder = FeedbackBuilder()
        self.numbered = 0
        self.sequence: list[int] = []  # the numbers in the order they arrived
        original = self.dtls._handle_rtp_data

        async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
            seq = _transport_sequence(data, self.EXT)
            if seq is not None:
                self.numbered += 1
                self.sequence.append(seq)
                self.builder.on_packet(seq, int(time.monotonic() * 1_000_000))
            await original(data, arrival_time_ms)

        self.dtls._handle_rtp_data = handle_rtp_data
        self.task = asyncio.get_running_loop().create_task(self._feedback())

    async def _feedback(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            for fb in self.builder.build(1, 0):
                await self.dtls._send_rtp(fb.serialize())


def _transport_sequence(data: bytes, ext_id: int) -> int | None:
    if not data[0] & 0x10:
        return None
    pos = 12 + 4 * (data[0] & 0x0F)
    if data[pos : pos + 2] != b"\xbe\xde" or data[pos + 4] >> 4 != ext_id:
        return None
    return (data[pos + 5] << 8) | data[pos + 6]


async def test_what_the_sfu_sends_is_numbered_and_feedback_moves_the_downlink_estimate() -> None:
    router, pub_pc, _pub_t, sub, _ = await _room()
    try:
        await wait_for(lambda: sub.video_count() >= 5, what="frames")
        # the SFU offered transport-cc and aiortc's answer took it: packets are numbered
        peer = TransportCcPeer(sub.pc)
        bandwidth = sub.transport.bandwidth
        await wait_for(lambda: bandwidth.feedback_received >= 20, timeout=8, what="feedback")
        assert peer.numbered > 20
        estimate = sub.transport.estimate
        assert estimate is not None and estimate.available_outgoing_bps is not None
        # nothing is lost on loopback, and the estimate is not cut below what gets through
        # (a loaded machine's scheduling delays may read as a queue: 0.85 times it then)
        assert bandwidth.downlink.loss < 0.05
        acked = bandwidth.downlink.acked_bps
        assert acked is not None and acked > 50_000
        assert estimate.available_outgoing_bps >= 0.5 * acked
        before = sub.video_count()
        await wait_for(lambda: sub.video_count() >= before + 10, what="frames while numbered")
        peer.task.cancel()
    finally:
        await sub.close()
        await pub_pc.close()
        await router.close()


async def test_transport_wide_numbers_leave_in_the_order_they_were_given() -> None:
    """Video, audio and padding of one subscriber share one counter; batched or not, the
    numbers reach it in order, one after the other (loopback loses and reorders nothing)."""
    router = Router("RM")
    pub_pc, _pub_t, producers = await publish(
        router,
        "PA",
        [(SyntheticVideoTrack(320, 240), "video/H264"), (AudioStreamTrack(), "audio/opus")],
    )
    sub = Subscriber(router, "PS")
    for producer in producers:
        router.consume(producer, sub.transport)
    await sub.negotiate()
    try:
        await wait_for(lambda: sub.video_count() >= 5, what="frames")
        peer = TransportCcPeer(sub.pc)
        await wait_for(lambda: sub.transport.bandwidth.feedback_received >= 5, what="feedback")
        assert sub.transport.probe(4 * sub.transport.bandwidth.downlink.estimate_bps)
        await wait_for(lambda: peer.numbered >= 300, timeout=10, what="numbered packets")
        peer.task.cancel()
        seqs = peer.sequence
        steps = [(b - a) & 0xFFFF for a, b in itertools.pairwise(seqs)]
        assert steps.count(1) == len(steps), f"out of order: {sorted(set(steps))}"
    finally:
        await sub.close()
        await pub_pc.close()
        await router.close()


async def test_a_probe_pads_up_to_its_rate_and_lifts_the_estimate() -> None:
    router, pub_pc, _pub_t, sub, _ = await _room()
    try:
        await wait_for(lambda: sub.video_count() >= 5, what="frames")
        transport = sub.transport
        assert not transport.probe(3_000_000)  # no feedback yet: nothing to learn from
        peer = TransportCcPeer(sub.pc)
        bandwidth = transport.bandwidth
        await wait_for(lambda: bandwidth.feedback_received >= 10, timeout=8, what="feedback")
        before = bandwidth.downlink.estimate_bps
        wanted = 4 * before
        assert transport.probe(wanted)
        assert not transport.probe(wanted)  # one at a time
        numbered = peer.numbered

        def lifted() -> bool:
            # a probe spoilt by a loaded machine backs off and is tried again
            transport.probe(wanted)
            return bandwidth.downlink.estimate_bps > 1.5 * before

        await wait_for(lifted, timeout=20, what="a probe lifting the estimate")
        # about half a second at up to twice the estimate, in 267-byte packets
        assert peer.numbered - numbered > 0.4 * 2 * before / 8 / 267
        frames = sub.video_count()
        await wait_for(lambda: sub.video_count() >= frames + 10, what="frames after the probe")
        peer.task.cancel()
    finally:
        await sub.close()
        await pub_pc.close()
        await router.close()


async def test_a_paced_subscriber_is_paced_at_a_probes_rate_while_it_runs() -> None:
    # Paced at the estimate, a probe could show no more than the estimate: it "succeeded"
    # without lifting it, and the step up it was for waited for good.
    router, pub_pc, _pub_t, sub, _ = await _room()
    try:
        await wait_for(lambda: sub.video_count() >= 5, what="frames")
        transport = sub.transport
        peer = TransportCcPeer(sub.pc)
        bandwidth = transport.bandwidth
        await wait_for(lambda: bandwidth.feedback_received >= 10, timeout=8, what="feedback")
        transport.allocation.congested = True  # as if the estimate had come down with loss
        transport.reallocate()
        paced = transport.pacing_bps
        assert paced is not None
        assert transport.probe(4 * bandwidth.downlink.estimate_bps)
        probe = bandwidth.downlink.probe
        assert probe is not None and probe.bitrate_bps > paced
        assert transport.pacing_bps is not None and transport.pacing_bps >= probe.bitrate_bps
        # and back to the estimate once it is over
        await wait_for(
            lambda: transport.pacing_bps is not None and transport.pacing_bps < probe.bitrate_bps,
            timeout=5,
            what="pacing at the estimate again",
        )
        peer.task.cancel()
    finally:
        await sub.close()
        await pub_pc.close()
        await router.close()
