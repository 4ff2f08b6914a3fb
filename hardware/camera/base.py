"""What every camera source yields and how it is configured.

A source captures one picture and encodes it into one or more *layers* (simulcast encodings of
the same picture at different sizes). Each layer is a stream of H.264 access units in Annex B
form with SPS/PPS in front of every keyframe. Sources run their own threads and hand events
(:class:`AccessUnit` or :class:`SourceError`) to a callback; pass ``ThreadBridge.post`` as that
callback to receive them on an asyncio loop.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from hardware.errors import ConfigError, HardwareError, UnknownLayerError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "picamera2", "v4l2", "synthetic")
ENCODERS = ("auto", "hardware", "software")
PROFILES = ("baseline", "constrained baseline", "main", "high")


def monotonic_us() -> int:
    """The clock every capture and output timestamp in this package uses (CLOCK_MONOTONIC, µs).

    libcamera's SensorTimestamp is on the same kernel clock, so Pi camera timestamps compare
    directly with it.
    """
    return time.monotonic_ns() // 1000


@dataclass(frozen=True)
class CameraLayerSpec:
    """One encoding of the picture: a name, a size and a target bitrate (bits/s, 0 = default)."""

    name: str
    width: int
    height: int
    bitrate: int = 0

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a layer needs a name")
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise ConfigError(
                f"layer {self.name!r}: size {self.width}x{self.height} must be positive and even"
            )
        if self.bitrate < 0:
            raise ConfigError(f"layer {self.name!r}: bitrate must not be negative")


def _default_layers() -> tuple[CameraLayerSpec, ...]:
    return (
        CameraLayerSpec("high", 1280, 720, 1_500_000),
        CameraLayerSpec("low", 320, 180, 150_000),
    )


@dataclass(frozen=True)
class CameraSpec:
    """Camera and encoder settings; the appliance maps its TOML ``[camera]`` table onto this.

    ``layers`` go from largest to smallest: on a Pi camera the first is the ISP's ``main``
    stream and the second its ``lores`` stream. ``keyframe_interval`` is in frames (0 = only
    on request). ``backend`` and ``encoder`` force a choice; ``"auto"`` detects.
    """

    layers: tuple[CameraLayerSpec, ...] = field(default_factory=_default_layers)
    framerate: float = 30.0
    keyframe_interval: int = 60
    profile: str = "baseline"
    backend: str = "auto"
    encoder: str = "auto"
    device: str = "/dev/video0"
    input_format: str = ""

    def __post_init__(self) -> None:
        if not self.layers:
            raise ConfigError("camera needs at least one layer")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            raise ConfigError(f"layer names must be unique, got {names}")
        if not 1 <= self.framerate <= 120:
            raise ConfigError(f"framerate {self.framerate} is outside 1..120")
        if self.keyframe_interval < 0:
            raise ConfigError("keyframe_interval must not be negative")
        if self.profile.lower() not in PROFILES:
            raise ConfigError(f"profile {self.profile!r} is not one of {PROFILES}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"camera backend {self.backend!r} is not one of {BACKENDS}")
        if self.encoder not in ENCODERS:
            raise ConfigError(f"encoder {self.encoder!r} is not one of {ENCODERS}")

    @property
    def frame_interval_us(self) -> int:
        """Microseconds between frames."""
        return round(1_000_000 / self.framerate)

    def layer(self, name: str) -> CameraLayerSpec:
        """The layer called ``name``; :class:`UnknownLayerError` if there is none."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise UnknownLayerError(
            f"no layer {name!r}; configured layers: {[lay.name for lay in self.layers]}"
        )


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One encoded picture of one layer.

    ``data`` is Annex B H.264 (start codes; SPS and PPS precede every keyframe).
    ``capture_us`` is when the frame was captured and ``output_us`` when the encoder handed the
    access unit over, both on :func:`monotonic_us`'s clock.
    """

    layer: str
    data: bytes
    keyframe: bool
    capture_us: int
    output_us: int
    width: int
    height: int

    @property
    def latency_us(self) -> int:
        """Capture-to-access-unit latency."""
        return self.output_us - self.capture_us


@dataclass(frozen=True, slots=True)
class SourceError:
    """The source failed (device vanished, stream ended, encoder broke) and has stopped.

    Delivered through the same callback as access units; ``start()`` may be called again.
    """

    message: str
    error: HardwareError
    layer: str | None = None
    at_us: int = field(default_factory=monotonic_us)


CameraEvent = AccessUnit | SourceError
CameraSink = Callable[[CameraEvent], None]


@dataclass
class LayerStats:
    """Counters for one layer, updated by the encoding thread."""

    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    cpu_seconds: float = 0.0
    active: bool = False


class VideoSource(ABC):
    """A camera with per-layer encoders. All methods may be called from any thread.

    ``sink`` receives :class:`AccessUnit` and :class:`SourceError` events on the source's own
    threads; it must be quick (``ThreadBridge.post`` is).
    """

    backend_name = "abstract"

    def __init__(self, spec: CameraSpec, sink: CameraSink) -> None:
        self.spec = spec
        self._sink = sink
        self._lock = threading.Lock()
        self._active = {layer.name: True for layer in spec.layers}
        self._keyframe_wanted = {layer.name: False for layer in spec.layers}
        self._stats = {layer.name: LayerStats() for layer in spec.layers}

    @abstractmethod
    def start(self) -> None:
        """Start capturing and encoding every active layer."""

    @abstractmethod
    def stop(self) -> None:
        """Stop capturing; ``start()`` resumes. Idempotent."""

    def close(self) -> None:
        """Stop and release the device for good. Idempotent."""
        self.stop()

    @property
    @abstractmethod
    def running(self) -> bool:
        """Whether the capture thread is running."""

    def start_layer(self, name: str) -> None:
        """Resume encoding layer ``name`` (its first access unit is a keyframe)."""
        self.spec.layer(name)
        with self._lock:
            self._active[name] = True
            self._keyframe_wanted[name] = True

    def stop_layer(self, name: str) -> None:
        """Stop encoding layer ``name`` while the others go on; its encoder is closed."""
        self.spec.layer(name)
        with self._lock:
            self._active[name] = False

    def request_keyframe(self, name: str) -> None:
        """Make the next access unit of layer ``name`` a keyframe (IDR with SPS/PPS)."""
        self.spec.layer(name)
        with self._lock:
            self._keyframe_wanted[name] = True

    def layer_active(self, name: str) -> bool:
        """Whether layer ``name`` is wanted (started)."""
        with self._lock:
            return self._active[name]

    def stats(self, name: str) -> LayerStats:
        """A snapshot of layer ``name``'s counters."""
        self.spec.layer(name)
        with self._lock:
            s = self._stats[name]
            return LayerStats(s.frames, s.keyframes, s.bytes, s.cpu_seconds, s.active)

    def _take_keyframe_request(self, name: str) -> bool:
        with self._lock:
            wanted = self._keyframe_wanted[name]
            self._keyframe_wanted[name] = False
            return wanted

    def _count(self, au: AccessUnit, cpu_seconds: float = 0.0) -> None:
        with self._lock:
            s = self._stats[au.layer]
            s.frames += 1
            s.keyframes += au.keyframe
            s.bytes += len(au.data)
            s.cpu_seconds += cpu_seconds

    def _add_cpu(self, name: str, cpu_seconds: float) -> None:
        with self._lock:
            self._stats[name].cpu_seconds += cpu_seconds

    def _set_encoding(self, name: str, encoding: bool) -> None:
        with self._lock:
            self._stats[name].active = encoding

    def _emit(self, event: CameraEvent) -> None:
        # A failing consumer must not kill the capture thread.
        try:
            self._sink(event)
        except Exception:
            log.exception("camera event consumer failed")
