"""The compiled fan-out against the Python loop it replaces: the same datagrams, numbers and
state, on real send paths (aiortc's DTLS transport, aioice's pair on a real socket, real
SRTP sessions), through layer switches, late packets, oversized ones and pacing."""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pylibsrtp
import pytest
from aioice import Candidate
from aioice.ice import CandidatePair, StunProtocol
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_sfu.media import seam
from edge_sfu.media.consumer import Consumer
from edge_sfu.media.layers import LayerSpec
from edge_sfu.media.packet import H264, VP8, CodecInfo, MediaPacket
from edge_sfu.media.producer import Producer
from edge_sfu.media.seam import egress

KEY = bytes(range(30))
TWCC_ID = 5
LAYERS = [LayerSpec("lo", 320, 180), LayerSpec("hi", 1280, 720)]
CERTIFICATE = RTCCertificate.generateCertificate()

pytestmark = pytest.mark.skipif(
    not egress.fast_path_available(), reason="the compiled helper is not built here"
)


@dataclass
class Route:
    """One producer, one consumer, one real send path, and what left it."""

    producer: Producer
    consumer: Consumer
    path: seam.SendPath
    receiver: socket.socket
    sent: list[tuple[int, int, bool]] = field(default_factory=list)

    @property
    def writer(self) -> egress.BatchWriter:
        writer = self.path._writer
        assert writer is not None
        return writer

    def queued(self) -> list[bytes]:
        writer = self.writer
        return [bytes(writer._slot_views[i][:n]) for i, n in enumerate(writer._lens)]

    def state(self) -> dict[str, Any]:
        c = self.consumer
        return {
            "queued": self.queued(),
            "numbered": list(self.writer._numbered),
            "twcc_seq": self.path._twcc_seq,
            "dropped": self.path.packets_dropped,
            "current": c.current_layer,
            **{
                name: getattr(c, name)
                for name in (
                    "packets_sent",
                    "octets_sent",
                    "_max_out_seq",
                    "_last_out_ts",
                    "_last_arrival",
                    "_frame_end",
                    "_last_vp8",
                    "_seq_off",
                    "_ts_off",
                    "_epoch_first",
                    "layer_switches",
                )
            },
        }


async def _ready_path(pure: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """A SendPath whose DTLS transport is connected with a real SRTP session and whose ICE
    pair is a real aioice pair on a loopback socket, towards ``receiver``."""
    gatherer = RTCIceGatherer()
    dtls = RTCDtlsTransport(RTCIceTransport(gatherer), [CERTIFICATE])
    connection = dtls.transport._connection
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: StunProtocol(connection), local_addr=("127.0.0.1", 0)
    )
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    host, port = receiver.getsockname()
    remote = Candidate("1", 1, "udp", 1, host, port, "host")
    connection._nominated[1] = CandidatePair(protocol, remote)
    dtls._state = State.CONNECTED
    dtls._tx_srtp = pylibsrtp.Session(
        pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    )
    path = seam.SendPath(dtls)
    monkeypatch.setenv(egress.PURE_PYTHON_ENV, "1" if pure else "0")
    monkeypatch.setenv(egress.PLAIN_SEND_ENV, "0")
    assert path._ready()  # the writer is made now, with this setting
    assert path._writer is not None and path._writer.compiled is not pure
    return path, receiver, transport


def _route(path: seam.SendPath, receiver: socket.socket, codec: CodecInfo, compiled: bool) -> Route:
    producer = Producer(
        producer_id="MT1",
        participant_id="PA",
        codec=codec,
        layers=LAYERS,
        request_keyframe=lambda layer: None,
        request_retransmission=lambda layer, seqs: None,
        cache_size=64,
        keyframe_interval_s=0.0,
    )
    producer._fan_out = egress.fan_out() if compiled else None
    assert (producer._fan_out is not None) is compiled
    random.seed(1234)  # both consumers draw the same offsets
    consumer = Consumer(producer, "CO1", lambda: path)
    params = RTCRtpCodecParameters(mimeType=codec.mime_type, clockRate=90000, payloadType=102)
    # an SSRC above 2**31: every field takes its full 32 bits
    consumer.send_started(seam.SendParams(mid="0", ssrc=0xFEDCBA98, codec=params, cname="c"))
    consumer.set_preferred_size(320, 180)
    consumer.start()
    route = Route(producer, consumer, path, receiver)
    path.enable_transport_cc(TWCC_ID, lambda _at, packets: route.sent.extend(packets))
    return route


@pytest.fixture
async def routes(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Route, Route]]:
    codec: CodecInfo = getattr(request, "param", H264)
    made = []
    closers: list[Any] = []
    for compiled in (True, False):
        path, receiver, transport = await _ready_path(not compiled, monkeypatch)
        closers += [receiver.close, transport.close]
        made.append(_route(path, receiver, codec, compiled))
    try:
        yield made[0], made[1]
    finally:
        for close in closers:
            close()


# what the source does next: a packet of a layer (keyframe start?, marker?, payload size,
# how far its number moves: 1 in order, 0 a repeat, negative a late one), a change of the
# preferred size (a layer switch once its keyframe comes), pacing on or off, a flush
packets = st.tuples(
    st.just("packet"),
    st.sampled_from(["lo", "hi"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([1, 200, 1100, 1400]),  # 1400: too large for a slot with the extension
    st.sampled_from([1, 1, 1, 1, 2, 0, -3]),
)
events = st.one_of(
    packets,
    st.tuples(st.just("size"), st.sampled_from([(320, 180), (1280, 720)])),
    st.tuples(st.just("pacing"), st.sampled_from([None, 2_000_000])),
    st.tuples(st.just("flush")),
)


def _apply(route: Route, event: tuple[Any, ...], clock: dict[str, Any]) -> None:
    kind = event[0]
    if kind == "packet":
        _, layer, key, marker, size, step = event
        seq = clock[layer] = (clock[layer] + step) & 0xFFFF
        clock["t"] += 0.001
        payload = bytes([seq & 0xFF]) * size
        ts = (seq * 300) & 0xFFFFFFFF
        route.producer.receive(MediaPacket(payload, seq, ts, int(marker), key, layer, clock["t"]))
    elif kind == "size":
        route.consumer.set_preferred_size(*event[1])
    elif kind == "pacing":
        route.path.set_pacing(event[1])
    else:
        route.path.flush()
        _drain(route.receiver)


def _drain(receiver: socket.socket) -> None:
    try:
        while True:
            receiver.recv(2048)
    except BlockingIOError:
        return


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(script=st.lists(events, min_size=1, max_size=60))
@pytest.mark.parametrize("routes", [H264, VP8], indirect=True)
async def test_the_compiled_fan_out_sends_what_the_python_loop_sends(
    routes: tuple[Route, Route], script: list[tuple[Any, ...]]
) -> None:
    compiled, python = routes
    clocks = [{"lo": 1000, "hi": 50000, "t": 10.0} for _ in routes]
    # a keyframe on the preferred layer first, so that most scripts forward something
    opening = ("packet", "lo", True, True, 200, 1)
    for event in [opening, *script]:
        for route, clock in zip(routes, clocks, strict=True):
            _apply(route, event, clock)
        assert compiled.state() == python.state(), event
        assert compiled.sent == python.sent
    for route in routes:
        route.path.set_pacing(None)
        route.path.flush()
        _drain(route.receiver)


async def test_the_steady_state_is_copied_in_c(routes: tuple[Route, Route]) -> None:
    compiled, python = routes
    before = egress.compiled_copies()
    for route in routes:
        for i in range(6):
            seq = (0xFFFE + i) & 0xFFFF  # numbers and timestamps that wrap
            ts = (0xFFFFF000 + i * 3000) & 0xFFFFFFFF
            route.producer.receive(
                MediaPacket(b"p" * 500, seq, ts, int(i % 3 == 2), i == 0, "lo", 1.0 + i)
            )
    assert compiled.state() == python.state()
    assert compiled.consumer.packets_sent == 6
    # all but the keyframe that switched the layer on (through ``deliver``); none of the
    # python route's
    assert egress.compiled_copies() - before == 5
    compiled.path.flush()
    rx = pylibsrtp.Session(pylibsrtp.Policy(key=KEY, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND))
    out = [rx.unprotect(compiled.receiver.recv(2048)) for _ in range(6)]
    assert [len(p) for p in out] == [12 + 8 + 500] * 6
    assert [p[:2] for p in out] == [b"\x90\x66", b"\x90\x66", b"\x90\xe6"] * 2
    assert {p[8:12] for p in out} == {bytes.fromhex("fedcba98")}
    stamps = [int.from_bytes(p[4:8], "big") for p in out]
    assert [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(stamps)] == [3000] * 5


async def test_a_subclass_and_a_paced_path_are_handed_to_deliver(
    routes: tuple[Route, Route],
) -> None:
    compiled, _ = routes
    delivered: list[MediaPacket] = []

    class Watched(Consumer):
        def deliver(self, packet: MediaPacket) -> None:
            delivered.append(packet)
            super().deliver(packet)

    compiled.consumer.close()
    watched = Watched(compiled.producer, "CO2", lambda: compiled.path)
    params = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
    watched.send_started(seam.SendParams(mid="0", ssrc=0xBCDE, codec=params, cname="c"))
    watched.set_preferred_size(320, 180)
    watched.start()
    before = egress.compiled_copies()
    key = MediaPacket(b"k" * 100, 7, 700, 1, True, "lo", 2.0)
    compiled.producer.receive(key)
    assert delivered == [key] and watched.packets_sent == 1
    assert egress.compiled_copies() == before


def test_the_fan_out_refuses_what_it_cannot_take() -> None:
    fast = egress._fast()
    assert fast is not None
    with pytest.raises(TypeError):
        fast.fan_out(object())  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        fast.fan_out(object(), ())  # a tuple, not a list
    with pytest.raises(ValueError):
        fast.configure(int, State.CONNECTED, print, 0, 1536, 0.5)
    # a packet without the fields: each consumer is handed it, and what it raises comes out
    with pytest.raises(AttributeError):
        fast.fan_out(object(), [Consumer.__new__(Consumer)])
    fast.fan_out(object(), [])  # nobody to hand it to
