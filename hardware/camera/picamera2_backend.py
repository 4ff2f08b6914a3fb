"""Raspberry Pi cameras through picamera2: one video configuration, one encoder per layer.

The first layer is the ISP's ``main`` stream and the second its ``lores`` stream (both
YUV420). Each layer gets its own picamera2 encoder, started with
``Picamera2.start_encoder(encoder, output, name=stream)``, and a :class:`LayerOutput` that turns
what the encoder writes into :class:`AccessUnit` events. On boards with the V4L2 M2M hardware
encoder (``/dev/video11``: Pi 4, 400, CM4, Zero 2 W) that is picamera2's ``H264Encoder``; on
the Pi 5, which has none, it is picamera2's software ``LibavH264Encoder`` with the
``force_key_frame`` fix below.

picamera2 and libcamera are imported only when this backend is used.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from hardware.camera.base import (
    AccessUnit,
    CameraLayerSpec,
    CameraSink,
    CameraSpec,
    SourceError,
    VideoSource,
    monotonic_us,
)
from hardware.camera.h264 import ParameterSetKeeper
from hardware.errors import ConfigError, DeviceLostError, DeviceNotFoundError

log = logging.getLogger(__name__)

STREAM_NAMES = ("main", "lores")
# No frame for this many frame intervals (and at least this many seconds) means the camera is gone.
WATCHDOG_FRAMES = 15
WATCHDOG_MIN_S = 1.0


class _KeyframeStream:
    """Stands in for the PyAV stream inside ``LibavH264Encoder`` to force keyframes correctly.

    picamera2 0.3.38 forces a keyframe with ``frame.pict_type = "I"``; PyAV 18 accepts only
    ``PictureType`` members and raises ``TypeError`` there, inside the camera thread. The encoder
    below takes pending requests away from that code and this proxy sets ``PictureType.I`` on the
    frame on its way into the real stream. Everything else is delegated.
    """

    def __init__(self, stream: Any, encoder: Any) -> None:
        self._stream = stream
        self._encoder = encoder

    def encode(self, frame: Any = None) -> Any:
        if frame is not None and self._encoder._force_next_keyframe:
            import av

            self._encoder._force_next_keyframe = False
            frame.pict_type = av.video.frame.PictureType.I
        return self._stream.encode(frame)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@functools.cache
def keyframe_safe_libav_encoder() -> type[Any]:
    """picamera2's ``LibavH264Encoder`` with a ``force_key_frame`` that works on PyAV 18.

    A subclass (not a patch of the upstream class) so other users of picamera2 in the same
    process are unaffected; it also stays correct if a later picamera2 fixes the bug, because
    upstream never sees a pending request.
    """
    from picamera2.encoders.libav_h264_encoder import LibavH264Encoder

    class KeyframeSafeLibavH264Encoder(LibavH264Encoder):  # type: ignore[misc]
        _force_next_keyframe = False
        _stream: Any
        _key_frames_requested: int
        _key_frames_generated: int

        def _start(self) -> None:
            super()._start()
            self._stream = _KeyframeStream(self._stream, self)

        def _encode(self, stream: Any, request: Any) -> None:
            if self._key_frames_requested > self._key_frames_generated:
                self._key_frames_generated = self._key_frames_requested
                self._force_next_keyframe = True
            super()._encode(stream, request)

    return KeyframeSafeLibavH264Encoder


def make_encoder(layer: CameraLayerSpec, spec: CameraSpec, hardware: bool) -> Any:
    """A picamera2 H.264 encoder for ``layer`` with rate, GOP and profile from ``spec``."""
    iperiod = spec.keyframe_interval or 0
    bitrate = layer.bitrate or None
    profile = spec.profile.lower()
    if hardware:
        from picamera2.encoders.h264_encoder import H264Encoder

        return H264Encoder(
            bitrate=bitrate,
            repeat=True,  # SPS/PPS before every IDR
            iperiod=iperiod,
            framerate=spec.framerate,
            profile=profile,
        )
    # PyAV's add_stream takes an int or Fraction rate, not a float.
    rate = Fraction(spec.framerate).limit_denominator(1001)
    encoder = keyframe_safe_libav_encoder()(
        bitrate=bitrate, repeat=True, iperiod=iperiod, framerate=rate, profile=profile
    )
    encoder.threads = 1  # frame threads add a frame of delay per thread
    encoder.drop_final_frames = True  # nothing is buffered with zerolatency; don't flush on stop
    if "baseline" in profile:
        encoder.preset = "ultrafast"
    return encoder


@functools.cache
def _output_base() -> type[Any]:
    from picamera2.outputs import Output

    return Output  # type: ignore[no-any-return]


def layer_output(source: Picamera2Source, layer: CameraLayerSpec, encoder: Any) -> Any:
    """A picamera2 ``Output`` that hands each access unit of ``layer`` to ``source``."""

    class LayerOutput(_output_base()):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.keeper = ParameterSetKeeper()

        def outputframe(
            self,
            frame: Any,
            keyframe: bool = True,
            timestamp: int | None = None,
            packet: Any = None,
            audio: bool = False,
        ) -> None:
            if audio or frame is None:
                return
            # Output timestamps are µs since the encoder's first frame; the first frame's sensor
            # timestamp (CLOCK_MONOTONIC) turns them back into capture times.
            first = encoder.firsttimestamp or 0
            capture_us = first + (timestamp or 0)
            data = self.keeper.fix(bytes(frame), bool(keyframe))
            au = AccessUnit(
                layer.name, data, bool(keyframe), capture_us, monotonic_us(), *layer_size(layer)
            )
            source._deliver(au)

    return LayerOutput()


def layer_size(layer: CameraLayerSpec) -> tuple[int, int]:
    """(width, height) of a layer."""
    return layer.width, layer.height


class Picamera2Source(VideoSource):
    """A Pi camera with up to two hardware- or software-encoded layers.

    ``camera_factory`` returns a ``Picamera2``-like object; the default opens
    ``Picamera2(camera_num)``. Tests pass a stand-in that feeds synthetic frames to the real
    picamera2 encoders.
    """

    backend_name = "picamera2"

    def __init__(
        self,
        spec: CameraSpec,
        sink: CameraSink,
        hardware_encoder: bool,
        camera_factory: Callable[[], Any] | None = None,
        camera_num: int = 0,
    ) -> None:
        if len(spec.layers) > len(STREAM_NAMES):
            raise ConfigError(f"picamera2 gives at most {len(STREAM_NAMES)} layers (main, lores)")
        if len(spec.layers) == 2:
            main, lores = spec.layers
            if lores.width > main.width or lores.height > main.height:
                raise ConfigError("the lores layer must not be larger than the main layer")
        super().__init__(spec, sink)
        self.hardware_encoder = hardware_encoder
        self._factory = camera_factory or functools.partial(_open_picamera2, camera_num)
        self._camera: Any = None
        self._encoders: dict[str, Any] = {}
        self._cam_lock = threading.RLock()
        self._last_frame_us = 0
        self._watchdog: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def running(self) -> bool:
        """Whether the camera is started."""
        return self._camera is not None

    def stream_name(self, layer_name: str) -> str:
        """The picamera2 stream (``main`` or ``lores``) that feeds a layer."""
        index = self.spec.layers.index(self.spec.layer(layer_name))
        return STREAM_NAMES[index]

    def video_configuration(self, camera: Any) -> Any:
        """The picamera2 video configuration: ``main`` (and ``lores``) in YUV420 at the rate."""
        streams: dict[str, Any] = {}
        for layer, stream in zip(self.spec.layers, STREAM_NAMES, strict=False):
            streams[stream] = {"size": (layer.width, layer.height), "format": "YUV420"}
        frame_us = self.spec.frame_interval_us
        return camera.create_video_configuration(
            **streams, controls={"FrameDurationLimits": (frame_us, frame_us)}
        )

    def start(self) -> None:
        """Open, configure and start the camera, then the encoder of every active layer."""
        with self._cam_lock:
            if self._camera is not None:
                return
            camera = self._factory()
            try:
                camera.configure(self.video_configuration(camera))
                camera.start()
            except Exception:
                camera.close()
                raise
            self._camera = camera
            self._last_frame_us = monotonic_us()
            for layer in self.spec.layers:
                if self.layer_active(layer.name):
                    self._start_encoder(layer)
            self._stopping.clear()
            self._watchdog = threading.Thread(target=self._watch, name="camera-watchdog")
            self._watchdog.daemon = True
            self._watchdog.start()

    def _start_encoder(self, layer: CameraLayerSpec) -> None:
        if layer.name in self._encoders:
            return
        encoder = make_encoder(layer, self.spec, self.hardware_encoder)
        output = layer_output(self, layer, encoder)
        self._camera.start_encoder(encoder, output, name=self.stream_name(layer.name))
        self._encoders[layer.name] = encoder
        self._set_encoding(layer.name, True)

    def _stop_encoder(self, name: str) -> None:
        encoder = self._encoders.pop(name, None)
        if encoder is not None:
            self._camera.stop_encoder(encoder)
            self._set_encoding(name, False)

    def start_layer(self, name: str) -> None:
        """Start layer ``name``'s encoder; its first access unit is a keyframe."""
        super().start_layer(name)
        self._take_keyframe_request(name)  # a fresh encoder starts on an IDR anyway
        with self._cam_lock:
            if self._camera is not None:
                self._start_encoder(self.spec.layer(name))

    def stop_layer(self, name: str) -> None:
        """Stop layer ``name``'s encoder; the camera and the other layer go on."""
        super().stop_layer(name)
        with self._cam_lock:
            if self._camera is not None:
                self._stop_encoder(name)

    def request_keyframe(self, name: str) -> None:
        """Ask layer ``name``'s encoder for an IDR on the next frame."""
        self.spec.layer(name)
        with self._cam_lock:
            encoder = self._encoders.get(name)
            if encoder is not None:
                encoder.force_key_frame()

    def stop(self) -> None:
        """Stop every encoder and the camera, and close it (``start()`` reopens)."""
        self._stopping.set()
        with self._cam_lock:
            camera, self._camera = self._camera, None
            if camera is None:
                return
            for name in list(self._encoders):
                encoder = self._encoders.pop(name)
                try:
                    camera.stop_encoder(encoder)
                except Exception:  # a vanished camera may fail here; we are tearing down
                    log.exception("stopping the %s encoder failed", name)
                self._set_encoding(name, False)
            for step in (camera.stop, camera.close):
                try:
                    step()
                except Exception:
                    log.exception("closing the camera failed")
        watchdog = self._watchdog
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join(5.0)

    def _deliver(self, au: AccessUnit) -> None:
        self._last_frame_us = au.output_us
        self._count(au)
        self._emit(au)

    def _watch(self) -> None:
        # picamera2 has no error callback: a camera that goes away just stops completing
        # requests. Silence on every running encoder is the only signal, so turn it into an event.
        limit_s = max(WATCHDOG_MIN_S, WATCHDOG_FRAMES / self.spec.framerate)
        while not self._stopping.wait(limit_s / 4):
            with self._cam_lock:
                idle_s = (monotonic_us() - self._last_frame_us) / 1e6
                if not self._encoders:
                    self._last_frame_us = monotonic_us()
                    continue
            if idle_s > limit_s:
                err = DeviceLostError(f"no frames from the Pi camera for {idle_s:.1f} s")
                self.stop()
                self._emit(SourceError(str(err), err))
                return


def _open_picamera2(camera_num: int) -> Any:
    from picamera2 import Picamera2

    try:
        return Picamera2(camera_num)
    except IndexError as exc:
        raise DeviceNotFoundError(f"no Pi camera number {camera_num}") from exc
