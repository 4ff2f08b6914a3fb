"""A publisher's H.264/VP8/Opus reaches subscribers through the SFU, encoded."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from edge_sfu.media import H264, MediaSettings, Router, Transport
from edge_sfu.media.seam import egress
from tests.integration.media.peers import (
    AudioStreamTrack,
    Subscriber,
    SyntheticVideoTrack,
    codec_caps,
    new_pc,
    publish,
)
from tests.support.waiting import wait_for

# every test here runs with batched sends and with the plain fallback
pytestmark = pytest.mark.usefixtures("send_mode")


@pytest.mark.parametrize("mime", ["video/H264", "video/VP8"])
async def test_video_and_audio_reach_two_subscribers(mime: str, send_mode: str) -> None:
    fanned = egress.compiled_copies()
    router = Router("RM1")
    pub_pc, _pub_t, producers = await publish(
        router, "PA", [(SyntheticVideoTrack(320, 240), mime), (AudioStreamTrack(), "audio/opus")]
    )
    subs = [Subscriber(router, f"PS{i}") for i in range(2)]
    try:
        for sub in subs:
            for producer in producers:
                router.consume(producer, sub.transport)
            await sub.negotiate()
        await wait_for(lambda: all(s.video_count() >= 10 for s in subs), what="video frames")
        await wait_for(lambda: all(s.audio_frames >= 20 for s in subs), what="audio frames")
        for sub in subs:
            sizes = {size for frames in sub.frames.values() for size in frames}
            assert sizes == {(320, 240)}
        video = next(p for p in producers if p.kind == "video")
        assert video.codec.mime_type.lower() == mime.lower()
        assert video.keyframe_requests_sent >= 1
        sent = sum(c.packets_sent for p in producers for c in p.consumers)
        compiled = egress.compiled_copies() - fanned
        if send_mode == "compiled":
            # past each stream's first keyframe, every copy is the compiled fan-out's
            assert compiled > sent / 2, (compiled, sent)
        else:
            assert compiled == 0
    finally:
        for sub in subs:
            await sub.close()
        await pub_pc.close()
        await router.close()


async def test_sfu_offers_the_publishing_m_line() -> None:
    """The SFU may offer the m-line a client publishes on (the signaling layer does)."""
    router = Router("RM2")
    transport = router.create_transport("PA")
    recv = transport.pc.addTransceiver("video", direction="recvonly")
    recv.setCodecPreferences(codec_caps("video", "video/H264"))
    offer = await transport.create_offer()
    client = new_pc()
    await client.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    tx = client.getTransceivers()[0]
    tx.direction = "sendonly"
    tx.sender.replaceTrack(SyntheticVideoTrack(320, 240))
    await client.setLocalDescription(await client.createAnswer())
    sub = Subscriber(router, "PB")
    try:
        await transport.handle_answer(client.localDescription.sdp)
        track = next(iter(transport.incoming.values()))
        assert track.codec is not None and track.codec.name == "H264"
        await wait_for(lambda: track.started, what="receiver started")
        producer = router.produce(transport, track)
        assert producer.codec.name == "H264"
        router.consume(producer, sub.transport)
        await sub.negotiate()
        await wait_for(lambda: sub.video_count() >= 5, what="frames")
        assert {s for f in sub.frames.values() for s in f} == {(320, 240)}
    finally:
        await sub.close()
        await client.close()
        await router.close()


async def test_udp_port_range_is_honoured() -> None:
    low = _ports_no_ephemeral_port_takes(21)
    settings = MediaSettings(udp_port_range=(low, low + 20))
    async with _forwarding("RM3", settings, what="frames") as (pub_pc, pub_t, sub):
        for transport in (pub_t, sub.transport):
            ports = {int(p) for _, p in _udp_candidates(transport.pc.localDescription.sdp)}
            assert ports and all(low <= p <= low + 20 for p in ports), ports
        # the test's own peers are not restricted
        client_ports = {int(p) for _, p in _udp_candidates(pub_pc.localDescription.sdp)}
        assert not any(low <= p <= low + 20 for p in client_ports)


async def test_closing_a_transport_does_not_call_it_back_from_its_consumers() -> None:
    router = Router("RM-close")
    camera = router.produce_local("PK", H264)
    transport = router.create_transport("PS")
    negotiations: list[str] = []
    transport.on_negotiation_needed = lambda: negotiations.append("needed")
    kept = router.consume(camera, transport)
    dropped = router.consume(camera, transport)
    await transport.create_offer()  # gives both consumers their m-line
    negotiations.clear()
    seen: list[str] = []
    kept.on_close(lambda c: seen.append(c.id))
    # a consumer the user closes: its m-line goes inactive, renegotiation is asked for
    dropped.close()
    assert negotiations == ["needed"] and dropped.id not in transport.consumers
    # the transport closing its consumers: nobody calls the closing transport back
    await transport.close()
    assert negotiations == ["needed"]
    assert kept.closed and kept.closed_by is transport and seen == [kept.id]
    assert camera.consumers == [] and not camera.closed
    assert transport.id not in router.transports
    await router.close()
    assert camera.closed and router.producers == {}


async def test_host_addresses_confine_the_sfu_candidates() -> None:
    settings = MediaSettings(host_addresses=("127.0.0.1",), udp_port_range=(52000, 52999))
    async with _forwarding("RM4", settings, what="frames over loopback") as (_pc, pub_t, sub):
        for transport in (pub_t, sub.transport):
            found = _udp_candidates(transport.pc.localDescription.sdp)
            assert found and {a for a, _ in found} == {"127.0.0.1"}, found
            assert all(52000 <= int(p) <= 52999 for _, p in found)  # both restrictions hold


def _ports_no_ephemeral_port_takes(count: int) -> int:
    """The first of ``count`` ports outside the kernel's ephemeral range, chosen at random:
    the test's own peers bind ephemeral ports, which must never fall in the SFU's range."""
    import random

    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            first, last = (int(n) for n in f.read().split())
    except (OSError, ValueError):
        first, last = 32768, 60999  # Linux's default
    if first - count > 20000:
        return random.randrange(20000, first - count)
    assert last + count < 65535, "no ports outside the ephemeral range"
    return random.randrange(last + 1, 65536 - count)


def _udp_candidates(sdp: str) -> list[tuple[str, str]]:
    """The (address, port) of every RTP UDP candidate in an SDP."""
    return re.findall(r"a=candidate:\S+ 1 udp \d+ (\S+) (\d+)", sdp)


@asynccontextmanager
async def _forwarding(
    name: str, settings: MediaSettings, what: str
) -> AsyncIterator[tuple[RTCPeerConnection, Transport, Subscriber]]:
    """A router with one synthetic H.264 publisher and one subscriber receiving its frames."""
    router = Router(name, settings)
    pub_pc, pub_t, producers = await publish(
        router, "PA", [(SyntheticVideoTrack(320, 240), "video/H264")]
    )
    sub = Subscriber(router, "PB")
    try:
        router.consume(producers[0], sub.transport)
        await sub.negotiate()
        await wait_for(lambda: sub.video_count() >= 5, what=what)
        yield pub_pc, pub_t, sub
    finally:
        await sub.close()
        await pub_pc.close()
        await router.close()
