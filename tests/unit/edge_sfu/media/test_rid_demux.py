"""Simulcast demultiplexing: an m-line's SSRCs mapped to layers by rid, RTX by repaired rid,
anything else ignored with one log line; and each layer's measured bitrate."""

from __future__ import annotations

import logging

import pytest
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from hypothesis import given
from hypothesis import strategies as st

from edge_sfu.media import DEFAULT_LAYER, LayerSpec, Producer, seam, sending_layers
from edge_sfu.media.incoming import IncomingTrack
from edge_sfu.media.packet import MediaPacket
from edge_sfu.media.producer import Layer

VP8, RTX = 97, 98
CODECS = [
    RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=VP8),
    RTCRtpCodecParameters(
        mimeType="video/rtx", clockRate=90000, payloadType=RTX, parameters={"apt": VP8}
    ),
]
LAYERS = (LayerSpec("h", 320, 240), LayerSpec("f", 640, 480))


def _track(layers: tuple[LayerSpec, ...] = LAYERS) -> tuple[IncomingTrack, Producer, list[bytes]]:
    sent: list[bytes] = []

    def send_rtcp(data: bytes) -> bool:
        sent.append(data)
        return True

    track = IncomingTrack("1", "video", None, send_rtcp, layers=layers)
    track.set_negotiated_codecs(CODECS)
    assert track.codec is not None
    producer = Producer(
        producer_id="MT1",
        participant_id="PA1",
        codec=track.codec,
        layers=track.layers,
        request_keyframe=track.request_keyframe,
    )
    track.attach(producer)
    return track, producer, sent


def _rtp(
    ssrc: int, seq: int, pt: int = VP8, payload: bytes = b"\x10\x00vp8"
) -> seam.LightRtpPacket:
    return seam.LightRtpPacket(pt, 0, seq, seq * 3000, ssrc, payload)


def _packets(producer: Producer) -> dict[str, int]:
    return {name: layer.packets for name, layer in producer.layers.items()}


def test_each_rid_is_its_layer() -> None:
    track, producer, sent = _track()
    assert [s.name for s in producer.available_layers()] == ["h", "f"]
    assert track.handle_stream(111, "h", None) and track.handle_stream(222, "f", None)
    for seq in range(5):
        track.handle_rtp(_rtp(111, seq))
    track.handle_rtp(_rtp(222, 1))
    assert _packets(producer) == {"h": 5, "f": 1}
    track.request_keyframe("f")
    assert sent and int.from_bytes(sent[-1][8:12], "big") == 222  # PLI for f's SSRC


def test_rtx_is_tied_to_its_layer_by_repaired_rid() -> None:
    track, producer, _ = _track()
    track.handle_stream(111, "h", None)
    track.handle_rtp(_rtp(111, 10))
    assert track.handle_stream(333, None, "h")
    track.handle_rtp(_rtp(333, 500, RTX, b"\x00\x07" + b"\x10\x00vp8"))
    assert _packets(producer) == {"h": 2, "f": 0}
    cached = producer.layers["h"].cache.get(7)
    assert cached is not None and cached.payload == b"\x10\x00vp8"
    # retransmissions of a layer whose stream has not arrived, or of no layer: dropped
    track.handle_stream(444, None, "f")
    track.handle_stream(555, None, "zz")
    track.handle_rtp(_rtp(444, 1, RTX, b"\x00\x01xx"))
    track.handle_rtp(_rtp(555, 1, RTX, b"\x00\x01xx"))
    assert _packets(producer) == {"h": 2, "f": 0}


def test_unknown_rids_and_ssrcs_are_ignored_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    track, producer, _ = _track()
    track.handle_stream(111, "h", None)
    track.handle_rtp(_rtp(111, 1))
    assert track.handle_stream(666, "x", None)  # a rid the offer did not list
    assert not track.handle_stream(777, None, None)  # no rid yet: ask again next packet
    track.handle_stream(888, "h", None)  # a second SSRC for a rid
    with caplog.at_level(logging.INFO, logger="edge_sfu.media.incoming"):
        for seq in range(20):
            for ssrc in (666, 777, 888, 999):  # 999: never announced at all
                track.handle_rtp(_rtp(ssrc, seq))
    assert _packets(producer) == {"h": 1, "f": 0}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines
    assert any("'x' not offered" in line for line in lines)
    # a late rid for the SSRC that had none settles it
    assert track.handle_stream(777, "f", None)
    track.handle_rtp(_rtp(777, 30))
    assert _packets(producer) == {"h": 1, "f": 1}


def test_one_stream_per_m_line_without_simulcast() -> None:
    track, producer, _ = _track(())
    assert track.layers == (LayerSpec(DEFAULT_LAYER),)
    assert track.handle_stream(111, None, None)
    track.handle_rtp(_rtp(111, 1))
    track.handle_rtp(_rtp(222, 1))  # a second stream on a one-stream m-line
    assert _packets(producer) == {DEFAULT_LAYER: 1}
    # one stream sent on the lowest rid of a simulcast m-line: RTX by that rid
    track2, producer2, _ = _track(())
    track2.handle_stream(111, "h", None)
    track2.handle_rtp(_rtp(111, 1))
    track2.handle_stream(333, None, "h")
    track2.handle_rtp(_rtp(333, 9, RTX, b"\x00\x02\x10\x00vp8"))
    assert _packets(producer2) == {DEFAULT_LAYER: 2}


def test_layers_are_fixed_once_a_producer_is_attached() -> None:
    track, _, _ = _track()
    track.set_layers([LayerSpec("q", 1, 1), LayerSpec("h", 2, 2)])
    assert [s.name for s in track.layers] == ["h", "f"]
    fresh = IncomingTrack("2", "video", None, lambda _: True, layers=LAYERS)
    fresh.set_layers([LAYERS[1]])  # the answer sends only f
    assert fresh.layers == (LAYERS[1],)
    fresh.set_layers([])  # the answer sends no simulcast
    assert fresh.layers == (LayerSpec(DEFAULT_LAYER),)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 2, 3, 4, 2**32 - 1]),
            st.sampled_from(["h", "f", "x", None]),
            st.sampled_from(["h", "f", "x", None]),
            st.sampled_from([VP8, RTX, 99, 0]),
            st.binary(max_size=8),
        ),
        max_size=40,
    )
)
def test_never_raises_on_any_mix(
    events: list[tuple[int, str | None, str | None, int, bytes]],
) -> None:
    track, producer, _ = _track()
    for ssrc, rid, repaired, pt, payload in events:
        track.handle_stream(ssrc, rid, repaired)
        track.handle_rtp(_rtp(ssrc, 1, pt, payload))
    assert sum(_packets(producer).values()) <= len(events)


def test_layer_bitrate_over_a_sliding_window() -> None:
    layer = Layer(LayerSpec("f"), 16)
    assert layer.bitrate_at(100.0) == 0
    t = 100.0
    for _ in range(100):  # 1000 bytes every 10 ms: 800 kbit/s
        layer.count(1000, t)
        t += 0.01
    assert 700_000 <= layer.bitrate_at(t) <= 900_000
    assert layer.bitrate_at(t + 0.4) > 0  # a short pause still shows the last period
    assert layer.bitrate_at(t + 1.1) == 0  # paused: nothing for a whole period
    # ... while what it sent when it flowed is kept: what resuming it would cost
    assert 700_000 <= layer.flowing_bps <= 900_000
    layer.count(500, t + 5.0)  # after a gap the window starts afresh
    assert layer.bitrate_at(t + 5.25) == int(500 * 8 / 0.75)


def test_producer_measures_each_layer() -> None:
    _, producer, _ = _track()
    import time

    now = time.monotonic()
    for i in range(50):
        producer.receive(MediaPacket(b"x" * 100, i, 0, 0, False, "h", now - 0.5 + i * 0.01))
    assert producer.layers["h"].bitrate_bps > 0
    assert producer.layers["f"].bitrate_bps == 0


def test_sending_layers() -> None:
    assert sending_layers(["q", "h", "f"], set()) == []
    assert sending_layers(["q", "h", "f"], {"f"}) == ["q", "f"]
    assert sending_layers(["q", "h", "f"], {"q"}) == ["q"]
    assert sending_layers(["q", "h", "f"], {"h", "f", "zz"}) == ["q", "h", "f"]
    assert sending_layers(["q", "h"], {"zz"}) == []


def test_ssrc_simulcast_layers_by_ssrc_and_sizes_from_keyframes() -> None:
    # twilio-video.js's VP8 simulcast: no rids, the SIM group's SSRCs are the layers
    sent: list[bytes] = []
    track = IncomingTrack("1", "video", None, lambda data: bool(sent.append(data)) or True)
    track.set_negotiated_codecs(CODECS)
    track.set_ssrc_layers(seam.SsrcSimulcast((11, 12, 13), {21: 11, 22: 12}))
    assert [s.name for s in track.layers] == ["s0", "s1", "s2"]
    producer = Producer(
        producer_id="MT2",
        participant_id="PA1",
        codec=track.codec,  # type: ignore[arg-type]
        layers=track.layers,
        request_keyframe=track.request_keyframe,
    )
    track.attach(producer)
    keyframe = b"\x10\x50\x02\x00\x9d\x01\x2a" + (320).to_bytes(2, "little")
    keyframe += (240).to_bytes(2, "little")
    for ssrc in (12, 11, 99):
        assert track.handle_stream(ssrc, None, None)  # settled by its SSRC
    track.handle_rtp(_rtp(12, 1))
    track.handle_rtp(_rtp(11, 1, payload=keyframe))
    track.handle_rtp(_rtp(99, 1))  # not in the group: dropped
    # a retransmission of layer s1 on its RTX SSRC (original sequence number first)
    track.handle_rtp(_rtp(22, 7, pt=RTX, payload=b"\x00\x02\x10\x00vp8"))
    assert _packets(producer) == {"s0": 1, "s1": 2, "s2": 0}
    assert producer.layers["s0"].spec == LayerSpec("s0", 320, 240)
    assert producer.layers["s1"].spec == LayerSpec("s1", 0, 0)  # no keyframe yet
    track.request_keyframe("s1")
    assert sent and int.from_bytes(sent[-1][8:12], "big") == 12
