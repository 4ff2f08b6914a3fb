"""Hand-written stand-in for ``picamera2.Picamera2`` (the camera object only).

The real ``Picamera2`` needs libcamera and a camera. This stand-in does just what the Pi
backend asks of it -- create and apply a video configuration with ``main`` and ``lores``
YUV420 streams, start and stop encoders by stream name exactly as ``Picamera2.start_encoder``
does, and feed every running encoder synthetic frames at the configured rate through
``encoder.encode(encoder.name, request)`` -- so picamera2's *real* encoder and output classes
run on x86. The requests it builds satisfy picamera2's own ``MappedArray`` with its real
``Helpers``.

``use_standin_libcamera()`` puts the stand-in ``libcamera`` package first on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

STUB_DIR = Path(__file__).parent / "stub_libcamera"
_STUBBED = ("libcamera", "pykms", "picamera2")


@contextlib.contextmanager
def use_standin_libcamera() -> Iterator[None]:
    """Import picamera2 against the stand-in libcamera; forget both afterwards."""
    sys.path.insert(0, str(STUB_DIR))
    try:
        yield
    finally:
        sys.path.remove(str(STUB_DIR))
        for name in list(sys.modules):
            if name.split(".")[0] in _STUBBED:
                del sys.modules[name]


class _Allocator:
    def sync(self, _allocator: Any, buffer: Any, _write: bool) -> Any:
        return contextlib.nullcontext(buffer)


class _Request:
    def __init__(self, camera: StandInPicamera2, buffers: dict[str, Any], sensor_ns: int) -> None:
        self.picam2 = camera
        self.config = camera.config
        self.stream_map = {name: name for name in buffers}
        self.request = type("LibcameraRequest", (), {})()
        self.request.buffers = buffers
        self.request.metadata = {"SensorTimestamp": sensor_ns}
        self.refs = 0

    def acquire(self) -> None:
        self.refs += 1

    def release(self) -> None:
        self.refs -= 1


class StandInPicamera2:
    """Stand-in camera: synthetic YUV420 frames for each configured stream."""

    def __init__(self) -> None:
        from picamera2.request import Helpers

        self.helpers = Helpers(self)
        self.allocator = _Allocator()
        self.config: dict[str, Any] = {}
        self.encoders: set[Any] = set()
        self.frames = 0
        self.closed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._unplugged = threading.Event()
        self._thread: threading.Thread | None = None

    def create_video_configuration(
        self, main: dict[str, Any], lores: dict[str, Any] | None = None, controls: Any = None
    ) -> dict[str, Any]:
        config = {"main": dict(main), "controls": dict(controls or {})}
        if lores is not None:
            config["lores"] = dict(lores)
        for name in ("main", "lores"):
            if name in config:
                config[name]["stride"] = config[name]["size"][0]
        return config

    def configure(self, config: dict[str, Any]) -> None:
        self.config = config

    def camera_configuration(self) -> dict[str, Any]:
        return self.config

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="standin-camera")
        self._thread.start()

    def start_encoder(self, encoder: Any, output: Any, name: str) -> None:
        # What Picamera2.start_encoder does with a configured stream.
        stream = self.config[name]
        encoder.output = output
        encoder.name = name
        encoder.width, encoder.height = stream["size"]
        encoder.format = stream["format"]
        encoder.stride = stream["stride"]
        encoder.start()
        with self._lock:
            self.encoders.add(encoder)

    def stop_encoder(self, encoder: Any) -> None:
        encoder.stop()
        with self._lock:
            self.encoders.discard(encoder)

    def unplug(self) -> None:
        """Stop producing frames, as a camera whose cable was pulled."""
        self._unplugged.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def close(self) -> None:
        self.closed = True

    def _frame(self, name: str, n: int) -> Any:
        w, h = self.config[name]["size"]
        buf = np.full((h * 3 // 2, w), 128, dtype=np.uint8)
        ramp = (np.arange(w, dtype=np.uint16) + 8 * n) % 220 + 16
        buf[:h] = ramp.astype(np.uint8)[None, :]
        return buf.reshape(-1)

    def request(self, n: int) -> _Request:
        """A completed request holding frame ``n`` of every configured stream, stamped now."""
        names = [name for name in ("main", "lores") if name in self.config]
        return _Request(self, {name: self._frame(name, n) for name in names}, time.monotonic_ns())

    def _run(self) -> None:
        interval = self.config["controls"]["FrameDurationLimits"][0] / 1e6
        t0 = time.monotonic()
        while not self._stop.is_set() and not self._unplugged.is_set():
            request = self.request(self.frames)
            with self._lock:
                encoders = list(self.encoders)
            for encoder in encoders:
                encoder.encode(encoder.name, request)
            self.frames += 1
            self._stop.wait(max(0.0, t0 + self.frames * interval - time.monotonic()))
