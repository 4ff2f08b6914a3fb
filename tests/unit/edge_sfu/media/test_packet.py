"""Keyframe detection, layer choice and the retransmission cache."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_sfu.media.layers import LayerSpec, choose_layer
from edge_sfu.media.packet import (
    MediaPacket,
    h264_keyframe_start,
    vp8_keyframe_size,
    vp8_keyframe_start,
)
from edge_sfu.media.retransmission import RetransmissionCache


def test_h264_keyframe_start() -> None:
    assert h264_keyframe_start(b"\x67\x42")  # SPS
    assert h264_keyframe_start(b"\x65\x88")  # IDR slice
    assert not h264_keyframe_start(b"\x41\x9a")  # non-IDR slice
    stap = b"\x18" + b"\x00\x02\x67\x42" + b"\x00\x02\x68\xce"
    assert h264_keyframe_start(stap)
    assert not h264_keyframe_start(b"\x18" + b"\x00\x02\x06\x05")  # STAP-A with SEI only
    assert h264_keyframe_start(b"\x7c\x85")  # FU-A start of IDR
    assert not h264_keyframe_start(b"\x7c\x45")  # FU-A end of IDR
    assert not h264_keyframe_start(b"\x7c\x81")  # FU-A start of non-IDR
    assert not h264_keyframe_start(b"")


def test_vp8_keyframe_start() -> None:
    assert vp8_keyframe_start(b"\x10\x00")  # S=1, PID=0, P=0
    assert not vp8_keyframe_start(b"\x10\x01")  # inter frame
    assert not vp8_keyframe_start(b"\x00\x00")  # not a start
    # X=1, I=1 with 15-bit picture id, then the payload header
    assert vp8_keyframe_start(b"\x90\x80\x81\x23\x00")
    assert not vp8_keyframe_start(b"\x90\x80\x81\x23\x01")
    assert not vp8_keyframe_start(b"\x90")


def test_vp8_keyframe_size() -> None:
    # frame tag (keyframe), start code, 14-bit width and height (upper 2 bits: scaling)
    keyframe = b"\x50\x02\x00\x9d\x01\x2a" + (640 | 0x4000).to_bytes(2, "little")
    keyframe += (480).to_bytes(2, "little")
    assert vp8_keyframe_size(b"\x10" + keyframe) == (640, 480)
    assert vp8_keyframe_size(b"\x90\x80\x81\x23" + keyframe) == (640, 480)  # picture id
    assert vp8_keyframe_size(b"\x10\x51" + keyframe[1:]) is None  # an inter frame
    assert vp8_keyframe_size(b"\x00" + keyframe) is None  # not a frame's first packet
    assert vp8_keyframe_size(b"\x10" + keyframe[:3] + b"\x9d\x01\x2b" + keyframe[6:]) is None
    assert vp8_keyframe_size(b"\x10" + keyframe[:9]) is None  # cut short


@given(st.binary(max_size=40))
def test_detectors_never_raise(data: bytes) -> None:
    h264_keyframe_start(data)
    vp8_keyframe_start(data)
    vp8_keyframe_size(data)


LAYERS = [LayerSpec("lo", 320, 180), LayerSpec("mid", 640, 360), LayerSpec("hi", 1280, 720)]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((None, None), "hi"),  # nothing asked yet: the best layer
        ((160, 90), "lo"),
        ((320, 180), "lo"),
        ((321, 180), "mid"),
        ((640, 200), "mid"),
        ((1280, 720), "hi"),
        ((1920, 1080), "hi"),
    ],
)
def test_choose_layer(size: tuple[int | None, int | None], expected: str) -> None:
    spec = choose_layer(LAYERS, *size)
    assert spec is not None and spec.name == expected


def test_choose_layer_edge_cases() -> None:
    assert choose_layer([], 100, 100) is None
    only = LayerSpec("default")
    assert choose_layer([only], 100, 100) == only
    assert choose_layer([LAYERS[0]], 1280, 720) == LAYERS[0]


def _packet(seq: int) -> MediaPacket:
    return MediaPacket(b"x", seq, 0, 0, False, "default", 0.0)


def test_retransmission_cache() -> None:
    cache = RetransmissionCache(8)
    for seq in range(65530, 65536):
        cache.put(_packet(seq))
    cache.put(_packet(0))
    got = cache.get(65535)
    assert got is not None and got.seq == 65535
    assert cache.get(0) is not None
    cache.put(_packet(65530 + 8))  # wraps to slot of 65530 modulo 8? no: different seq
    assert cache.get(7) is None
    for seq in range(8, 16):
        cache.put(_packet(seq))
    assert cache.get(0) is None  # overwritten by 8
    assert cache.get(15) is not None
    cache.clear()
    assert cache.get(15) is None
    with pytest.raises(ValueError):
        RetransmissionCache(1000)
