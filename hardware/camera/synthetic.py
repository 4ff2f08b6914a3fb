"""A camera that needs no camera: FFmpeg's ``testsrc2`` pattern, paced in real time.

Each frame carries its number and the wall clock (see :mod:`.overlay`), and is encoded per
layer with libx264 (``ultrafast``, ``zerolatency``, one thread). The default where no camera is
found, and what the tests use.
"""

from __future__ import annotations

import time
from typing import Any

from hardware.camera.base import CameraSink, CameraSpec, monotonic_us
from hardware.camera.pyav_encoder import SOFTWARE_CODEC, CaptureStopped, ThreadedFrameSource
from hardware.errors import DeviceLostError

# How far behind schedule the generator may fall before it skips frames instead of bursting.
MAX_LAG_FRAMES = 2


class SyntheticSource(ThreadedFrameSource):
    """Generated frames at the largest layer's size and the configured rate."""

    backend_name = "synthetic"

    def __init__(self, spec: CameraSpec, sink: CameraSink, codec: str = SOFTWARE_CODEC) -> None:
        super().__init__(spec, sink, codec)
        biggest = max(spec.layers, key=lambda lay: lay.width * lay.height)
        self.width, self.height = biggest.width, biggest.height
        self._container: Any = None
        self._frames: Any = None
        self._t0 = 0.0
        self._n = 0

    def _open_input(self) -> None:
        import av

        rate = f"{self.spec.framerate:g}"
        self._container = av.open(
            f"testsrc2=size={self.width}x{self.height}:rate={rate}", format="lavfi"
        )
        self._frames = self._container.decode(video=0)
        self._t0 = time.monotonic()
        self._n = 0

    def _read_frame(self) -> tuple[Any, int]:
        import av

        from hardware.camera.overlay import draw_text, overlay_text  # numpy: not before capture

        interval = 1.0 / self.spec.framerate
        due = self._t0 + self._n * interval
        now = time.monotonic()
        if now - due > MAX_LAG_FRAMES * interval:
            # Fell behind (a busy machine): drop the missed slots rather than burst them out.
            missed = int((now - due) / interval)
            self.frames_dropped += missed
            self._n += missed
            due = self._t0 + self._n * interval
        if due > now and self._stop.wait(due - now):
            raise CaptureStopped
        self._n += 1
        if not any(self.layer_active(layer.name) for layer in self.spec.layers):
            return None, monotonic_us()  # nobody wants a picture: don't draw one
        try:
            src = next(self._frames)
        except StopIteration as exc:
            raise DeviceLostError("synthetic pattern ended") from exc
        yuv = src.to_ndarray(format="yuv420p")
        draw_text(yuv[: self.height], overlay_text(self._n), max(1, self.height // 90), 8, 8)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        # "Captured" is when the picture exists, as with a camera's completed request.
        return frame, monotonic_us()

    def _close_input(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._frames = None
