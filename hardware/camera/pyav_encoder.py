"""Encoding layers with PyAV (libx264 or FFmpeg's V4L2 M2M encoder) on a capture thread.

Shared by the synthetic and USB-webcam backends: a subclass supplies frames; this module
scales each frame to every active layer, encodes it and hands out access units.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import abstractmethod
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
from hardware.errors import DeviceLostError, EncoderUnavailableError, HardwareError

log = logging.getLogger(__name__)

SOFTWARE_CODEC = "libx264"
HARDWARE_CODEC = "h264_v4l2m2m"
JOIN_TIMEOUT_S = 5.0


class CaptureStopped(Exception):
    """Raised inside ``_read_frame`` when ``stop()`` interrupts a wait; ends the thread quietly."""


class LayerEncoder:
    """One PyAV H.264 encoder for one layer. Used only from the capture thread."""

    def __init__(
        self, layer: CameraLayerSpec, spec: CameraSpec, codec: str = SOFTWARE_CODEC
    ) -> None:
        import av

        self.layer = layer
        self.codec = codec
        self._pict_i = av.video.frame.PictureType.I
        self._pict_none = av.video.frame.PictureType.NONE
        try:
            self._ctx = _open_context(av, layer, spec, codec)
        except (av.FFmpegError, ValueError) as exc:
            raise EncoderUnavailableError(f"{codec} did not open: {exc}") from exc
        self._keeper = ParameterSetKeeper(bytes(self._ctx.extradata or b""))

    def encode(self, frame: Any, capture_us: int, keyframe: bool) -> list[AccessUnit]:
        """Encode ``frame`` (scaled to this layer if needed); return the access units out."""
        size = (self.layer.width, self.layer.height)
        if (frame.width, frame.height) != size or frame.format.name != "yuv420p":
            # Webcams give MJPEG (yuvj422p) or YUYV; smaller layers need scaling.
            frame = frame.reformat(*size, "yuv420p")
        # lavfi and decoded frames arrive marked as I-frames: clear that or every frame is IDR.
        frame.pict_type = self._pict_i if keyframe else self._pict_none
        frame.pts = capture_us
        out = []
        for packet in self._ctx.encode(frame):
            data = self._keeper.fix(bytes(packet), packet.is_keyframe)
            out.append(
                AccessUnit(
                    layer=self.layer.name,
                    data=data,
                    keyframe=bool(packet.is_keyframe),
                    capture_us=int(packet.pts) if packet.pts is not None else capture_us,
                    output_us=monotonic_us(),
                    width=self.layer.width,
                    height=self.layer.height,
                )
            )
        return out

    def close(self) -> None:
        """Release the codec (no flush: zero-latency settings hold no frames back)."""
        self._ctx = None


def _open_context(av: Any, layer: CameraLayerSpec, spec: CameraSpec, codec: str) -> Any:
    from fractions import Fraction

    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = layer.width, layer.height
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, 1_000_000)
    ctx.framerate = Fraction(spec.framerate).limit_denominator(1001)
    ctx.gop_size = spec.keyframe_interval or (1 << 30)
    if layer.bitrate:
        ctx.bit_rate = layer.bitrate
    if codec == SOFTWARE_CODEC:
        # One thread and zerolatency: every frame comes out of encode() at once.
        ctx.thread_count = 1
        profile = "baseline" if "baseline" in spec.profile.lower() else spec.profile.lower()
        ctx.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": profile,
            "x264-params": "repeat-headers=1",
        }
    ctx.open()
    return ctx


def probe_encoder(codec: str, width: int = 640, height: int = 360) -> tuple[bool, str]:
    """Try to open ``codec`` for real; return (works, reason). A capability probe, not a guess."""
    spec = CameraSpec(layers=(CameraLayerSpec("probe", width, height),))
    try:
        enc = LayerEncoder(spec.layers[0], spec, codec)
    except EncoderUnavailableError as exc:
        return False, str(exc)
    enc.close()
    return True, f"{codec} opens"


class ThreadedFrameSource(VideoSource):
    """A source whose subclass reads raw frames; layers are encoded here with PyAV.

    The capture thread owns the encoders, so ``start_layer``/``stop_layer`` from other threads
    only flip flags and the thread opens or closes the encoder at the next frame.
    """

    def __init__(self, spec: CameraSpec, sink: CameraSink, codec: str = SOFTWARE_CODEC) -> None:
        super().__init__(spec, sink)
        self.codec = codec
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.frames_captured = 0
        self.frames_dropped = 0

    @abstractmethod
    def _open_input(self) -> None:
        """Open the device (called by ``start()``, so open failures raise to the caller)."""

    @abstractmethod
    def _read_frame(self) -> tuple[Any, int]:
        """Return the next ``(av.VideoFrame, capture_us)``; raise :class:`DeviceLostError`.

        A source may return ``None`` for the frame while no layer is active.
        """

    @abstractmethod
    def _close_input(self) -> None:
        """Release the device (on the capture thread, or in ``start()`` if opening failed)."""

    @property
    def running(self) -> bool:
        """Whether the capture thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Open the device and start the capture thread (again, after an error or ``stop``).

        Raises :class:`DeviceNotFoundError` (or another :class:`HardwareError`) if the device
        cannot be opened; failures after that arrive as :class:`SourceError` events.
        """
        if self.running:
            return
        self._stop.clear()
        try:
            self._open_input()
        except BaseException:
            self._close_input()
            raise
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.backend_name}")
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        """Stop the capture thread and wait (bounded) for it."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("%s capture thread did not stop within %ss", self, JOIN_TIMEOUT_S)

    def _run(self) -> None:
        encoders: dict[str, LayerEncoder] = {}
        try:
            while not self._stop.is_set():
                frame, capture_us = self._read_frame()
                if self._stop.is_set():
                    break
                self.frames_captured += 1
                self._encode_layers(encoders, frame, capture_us)
        except CaptureStopped:
            pass
        except HardwareError as exc:
            self._emit(SourceError(str(exc), exc))
        except Exception as exc:  # av errors and OSErrors from a vanished device
            lost = DeviceLostError(f"{self.backend_name} camera failed: {exc}")
            log.warning("%s", lost)
            self._emit(SourceError(str(lost), lost))
        finally:
            for name, enc in encoders.items():
                enc.close()
                self._set_encoding(name, False)
            self._close_input()

    def _encode_layers(self, encoders: dict[str, LayerEncoder], frame: Any, cap_us: int) -> None:
        for layer in self.spec.layers:
            name = layer.name
            enc = encoders.get(name)
            if not self.layer_active(name):
                if enc is not None:
                    enc.close()
                    del encoders[name]
                    self._set_encoding(name, False)
                continue
            if frame is None:  # the source skipped an idle frame; the layer starts next time
                continue
            t0 = time.thread_time()
            if enc is None:
                enc = encoders[name] = LayerEncoder(layer, self.spec, self.codec)
                self._set_encoding(name, True)
            units = enc.encode(frame, cap_us, self._take_keyframe_request(name))
            cpu = time.thread_time() - t0
            self._add_cpu(name, cpu)
            for au in units:
                self._count(au)
                self._emit(au)
