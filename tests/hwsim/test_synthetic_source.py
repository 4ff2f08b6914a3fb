"""The synthetic camera on real PyAV/libx264: layers, sizes, rates, keyframes, layer stop."""

from __future__ import annotations

import itertools
import statistics

from hardware.camera.base import AccessUnit, CameraLayerSpec, CameraSpec
from hardware.camera.h264 import NAL_IDR, NAL_PPS, NAL_SPS, nal_types
from hardware.camera.synthetic import SyntheticSource
from tests.support.waiting import wait_for_sync

from .conftest import Events, decode_h264

SPEC = CameraSpec(
    layers=(
        CameraLayerSpec("high", 1280, 720, 1_000_000),
        CameraLayerSpec("low", 320, 180, 150_000),
    ),
    framerate=15,
    keyframe_interval=0,
)


def test_both_layers_at_configured_sizes_and_rate(events: Events) -> None:
    src = SyntheticSource(SPEC, events)
    src.start()
    try:
        events.wait_count(AccessUnit, 30, layer="low")
        events.wait_count(AccessUnit, 30, layer="high")
    finally:
        src.stop()
    assert not src.running
    for layer in SPEC.layers:
        units = events.of(AccessUnit, layer=layer.name)
        frames = decode_h264([u.data for u in units])
        assert len(frames) == len(units)
        assert {(f.width, f.height) for f in frames} == {(layer.width, layer.height)}
        assert {(u.width, u.height) for u in units} == {(layer.width, layer.height)}
        # Frame spacing from capture stamps: the median is immune to a stall on a busy machine.
        gaps = [b.capture_us - a.capture_us for a, b in itertools.pairwise(units)]
        assert abs(statistics.median(gaps) - 1e6 / 15) < 0.15 * 1e6 / 15
        # The first access unit is an IDR with SPS and PPS in front; no others without a request.
        assert units[0].keyframe
        assert nal_types(units[0].data)[:2] == [NAL_SPS, NAL_PPS]
        assert NAL_IDR in nal_types(units[0].data)
        assert sum(u.keyframe for u in units) == 1


def test_keyframe_on_request_is_the_next_frame_of_that_layer(events: Events) -> None:
    src = SyntheticSource(SPEC, events)
    src.start()
    try:
        events.wait_count(AccessUnit, 10, layer="low")
        before = len(events.of(AccessUnit, layer="low"))
        src.request_keyframe("low")
        events.wait_count(AccessUnit, before + 5, layer="low")
    finally:
        src.stop()
    low = events.of(AccessUnit, layer="low")
    later_keys = [i for i, u in enumerate(low) if u.keyframe and i > 0]
    # The request lands on the next frame, or on the one after if a frame was mid-encode.
    assert len(later_keys) == 1 and later_keys[0] - before <= 1
    key = low[later_keys[0]]
    assert {NAL_SPS, NAL_PPS, NAL_IDR} <= set(nal_types(key.data))
    assert sum(u.keyframe for u in events.of(AccessUnit, layer="high")) == 1


def test_stopping_a_layer_stops_its_encoder_while_the_other_continues(events: Events) -> None:
    src = SyntheticSource(SPEC, events)
    src.start()
    try:
        events.wait_count(AccessUnit, 10, layer="high")
        src.stop_layer("high")
        n_low = len(events.wait_count(AccessUnit, 1, layer="low"))
        events.wait_count(AccessUnit, n_low + 3, layer="low")  # the stop has been applied
        high_stopped = src.stats("high")
        n_low = len(events.of(AccessUnit, layer="low"))
        events.wait_count(AccessUnit, n_low + 20, layer="low")
        high_later = src.stats("high")
        low_later = src.stats("low")
        src.start_layer("high")
        n_high = len(events.of(AccessUnit, layer="high"))
        resumed = events.wait_count(AccessUnit, n_high + 3, layer="high")
    finally:
        src.stop()
    assert not high_stopped.active and not high_later.active
    assert high_later.frames == high_stopped.frames  # no high frames while low made 20
    assert high_later.cpu_seconds == high_stopped.cpu_seconds  # its encoding CPU went to zero
    assert low_later.active and low_later.cpu_seconds > 0
    assert resumed[n_high].keyframe  # a restarted layer opens on an IDR


def test_restart_after_stop(events: Events) -> None:
    src = SyntheticSource(
        CameraSpec(layers=(CameraLayerSpec("only", 320, 180),), framerate=30), events
    )
    src.start()
    events.wait_count(AccessUnit, 3)
    src.stop()
    n = len(events.of(AccessUnit))
    src.start()
    try:
        units = events.wait_count(AccessUnit, n + 3)
    finally:
        src.close()
    assert units[n].keyframe


def test_with_every_layer_stopped_nothing_is_encoded_until_one_starts(events: Events) -> None:
    src = SyntheticSource(SPEC, events)
    for layer in SPEC.layers:
        src.stop_layer(layer.name)
    src.start()
    try:
        wait_for_sync(lambda: src.frames_captured >= 10, timeout=10)
        assert src.frames_captured >= 10 and not events.items
        src.start_layer("low")
        units = events.wait_count(AccessUnit, 3, layer="low")
    finally:
        src.stop()
    assert units[0].keyframe and not events.of(AccessUnit, layer="high")
    assert src.stats("high").cpu_seconds == 0
