"""The Pi camera backend on picamera2's real encoder and output classes.

picamera2 runs against the hand-written stand-in ``libcamera`` (stub_libcamera/) and a stand-in
camera object (picamera2_standin.py) that feeds synthetic YUV420 frames. The encoders
(``LibavH264Encoder`` and our keyframe-safe subclass), ``Output``, ``MappedArray`` and
``Helpers`` are picamera2's own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from hardware.board import detect
from hardware.camera.base import AccessUnit, CameraLayerSpec, CameraSpec, SourceError
from hardware.camera.h264 import NAL_IDR, NAL_PPS, NAL_SPS, nal_types

from .conftest import Events, decode_h264
from .picamera2_standin import StandInPicamera2, use_standin_libcamera

SPEC = CameraSpec(
    layers=(CameraLayerSpec("high", 640, 360, 600_000), CameraLayerSpec("low", 320, 180, 150_000)),
    framerate=30,
    keyframe_interval=0,
)


@pytest.fixture
def picam() -> Iterator[Any]:
    with use_standin_libcamera():
        import hardware.camera.picamera2_backend as backend

        backend.keyframe_safe_libav_encoder.cache_clear()
        backend._output_base.cache_clear()
        yield backend
        backend.keyframe_safe_libav_encoder.cache_clear()
        backend._output_base.cache_clear()


def _configured_camera() -> StandInPicamera2:
    cam = StandInPicamera2()
    cam.configure(
        cam.create_video_configuration(
            main={"size": (320, 180), "format": "YUV420"},
            controls={"FrameDurationLimits": (33333, 33333)},
        )
    )
    return cam


def _collecting_output() -> Any:
    from picamera2.outputs import Output

    class Collect(Output):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.frames: list[tuple[bytes, bool]] = []

        def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):  # type: ignore[no-untyped-def]
            self.frames.append((bytes(frame), keyframe))

    return Collect()


def test_upstream_force_key_frame_fails_on_pyav_18(picam: Any) -> None:
    """The bug the workaround exists for; if this starts passing, picamera2 fixed it."""
    from picamera2.encoders import LibavH264Encoder

    cam = _configured_camera()
    encoder = LibavH264Encoder(bitrate=200_000, iperiod=0, framerate=30)
    cam.start_encoder(encoder, _collecting_output(), name="main")
    try:
        encoder.encode("main", cam.request(0))
        encoder.force_key_frame()
        try:
            encoder.encode("main", cam.request(1))  # sets frame.pict_type = "I"
        except TypeError as exc:
            assert "integer" in str(exc)
        else:
            pytest.skip("this picamera2 sets pict_type correctly; the workaround is inert")
    finally:
        cam.stop_encoder(encoder)


def test_keyframe_safe_encoder_forces_an_idr_on_the_next_frame(picam: Any) -> None:
    cam = _configured_camera()
    encoder = picam.make_encoder(SPEC.layers[1], SPEC, hardware=False)
    output = _collecting_output()
    cam.start_encoder(encoder, output, name="main")
    try:
        for n in range(5):
            encoder.encode("main", cam.request(n))
        encoder.force_key_frame()
        for n in range(5, 8):
            encoder.encode("main", cam.request(n))
    finally:
        cam.stop_encoder(encoder)
    keys = [i for i, (_, key) in enumerate(output.frames) if key]
    assert keys == [0, 5]
    assert {NAL_SPS, NAL_PPS, NAL_IDR} <= set(nal_types(output.frames[5][0]))
    assert len(decode_h264([f for f, _ in output.frames])) == 8


def _run_source(picam: Any, events: Events, cameras: list[StandInPicamera2]) -> Any:
    def factory() -> StandInPicamera2:
        cameras.append(StandInPicamera2())
        return cameras[-1]

    return picam.Picamera2Source(SPEC, events, hardware_encoder=False, camera_factory=factory)


def test_layers_keyframes_and_layer_stop_through_start_encoder(picam: Any, events: Events) -> None:
    cameras: list[StandInPicamera2] = []
    src = _run_source(picam, events, cameras)
    src.start()
    try:
        events.wait_count(AccessUnit, 10, layer="low")
        config = cameras[0].config
        assert config["main"]["size"] == (640, 360) and config["lores"]["size"] == (320, 180)
        assert {e.name for e in cameras[0].encoders} == {"main", "lores"}
        before = len(events.of(AccessUnit, layer="low"))
        src.request_keyframe("low")
        events.wait_count(AccessUnit, before + 4, layer="low")
        src.stop_layer("high")
        assert {e.name for e in cameras[0].encoders} == {"lores"}
        n_high = len(events.of(AccessUnit, layer="high"))
        n_low = len(events.of(AccessUnit, layer="low"))
        events.wait_count(AccessUnit, n_low + 15, layer="low")
        assert len(events.of(AccessUnit, layer="high")) == n_high
    finally:
        src.close()
    assert cameras[0].closed
    low = events.of(AccessUnit, layer="low")
    keys = [i for i, u in enumerate(low) if u.keyframe]
    assert keys[0] == 0 and len(keys) == 2 and keys[1] - before <= 1
    for layer in SPEC.layers:
        units = events.of(AccessUnit, layer=layer.name)
        frames = decode_h264([u.data for u in units])
        assert {(f.width, f.height) for f in frames} == {(layer.width, layer.height)}
        # Capture times come back from the first sensor timestamp plus the encoder's offsets.
        assert all(0 <= u.latency_us < 2_000_000 for u in units)
        stamps = [u.capture_us for u in units]
        assert stamps == sorted(stamps)


def test_camera_that_stops_delivering_gives_an_error_and_restarts(
    picam: Any, events: Events
) -> None:
    cameras: list[StandInPicamera2] = []
    src = _run_source(picam, events, cameras)
    src.start()
    try:
        events.wait_count(AccessUnit, 5, layer="low")
        cameras[0].unplug()
        errors = events.wait_count(SourceError, 1, timeout=15)
        assert "no frames" in errors[0].message and not src.running
        assert cameras[0].closed
        n = len(events.of(AccessUnit, layer="low"))
        src.start()
        events.wait_count(AccessUnit, n + 5, layer="low")
        assert len(cameras) == 2
    finally:
        src.close()


@pytest.mark.pi
@pytest.mark.skipif(not detect().is_pi, reason="needs a Raspberry Pi with a camera")
def test_real_pi_camera_two_layers(events: Events) -> None:  # pragma: no cover - Pi only
    from hardware.camera.select import choose_camera, open_camera

    choice = choose_camera(SPEC)
    if choice.backend != "picamera2":
        pytest.skip(f"no Pi camera: {choice.reason}")
    src = open_camera(SPEC, events, choice)
    src.start()
    try:
        events.wait_count(AccessUnit, 30, layer="low")
        events.wait_count(AccessUnit, 30, layer="high")
        src.request_keyframe("high")
        n = len(events.of(AccessUnit, layer="high"))
        events.wait_count(AccessUnit, n + 3, layer="high")
    finally:
        src.close()
    high = events.of(AccessUnit, layer="high")
    assert any(u.keyframe for u in high[n : n + 2])


def test_hardware_encoder_gets_rate_gop_bitrate_and_profile_from_config(picam: Any) -> None:
    """On the Pi 4 path the encoder is picamera2's V4L2 H264Encoder (not started here)."""
    from picamera2.encoders.h264_encoder import H264Encoder

    spec = CameraSpec(framerate=25, keyframe_interval=50, profile="main")
    encoder = picam.make_encoder(spec.layers[0], spec, hardware=True)
    assert type(encoder) is H264Encoder
    assert (encoder.bitrate, encoder.iperiod, encoder.profile) == (1_500_000, 50, "main")
    assert encoder.repeat and encoder.framerate == 25
    soft = picam.make_encoder(spec.layers[1], spec, hardware=False)
    assert (soft.bitrate, soft.iperiod, soft.profile, soft.threads) == (150_000, 50, "main", 1)
