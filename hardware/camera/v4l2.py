"""USB webcams (any V4L2 capture device) through PyAV, encoded per layer with PyAV.

The encoder is FFmpeg's ``h264_v4l2m2m`` when it opens (a Pi's M2M block without picamera2)
and libx264 otherwise. The same class reads any FFmpeg input (``input_format``), which is how
the tests feed it raw frames through a FIFO and then pull the plug.
"""

from __future__ import annotations

import os
from typing import Any

from hardware.camera.base import CameraSink, CameraSpec, monotonic_us
from hardware.camera.pyav_encoder import SOFTWARE_CODEC, ThreadedFrameSource
from hardware.errors import DeviceLostError, DeviceNotFoundError

# Read timeout: a webcam that stops delivering for this long counts as gone.
READ_TIMEOUT_S = 3.0


class V4L2Source(ThreadedFrameSource):
    """Frames from ``spec.device`` at the largest layer's size, scaled down for smaller layers.

    ``demuxer`` is FFmpeg's input format (``video4linux2`` for webcams); ``pixel_format``
    is requested from the device (for example ``mjpeg`` or ``yuyv422``; empty lets it choose).
    """

    backend_name = "v4l2"

    def __init__(
        self,
        spec: CameraSpec,
        sink: CameraSink,
        codec: str = SOFTWARE_CODEC,
        demuxer: str = "video4linux2",
    ) -> None:
        super().__init__(spec, sink, codec)
        biggest = max(spec.layers, key=lambda lay: lay.width * lay.height)
        self.width, self.height = biggest.width, biggest.height
        self.demuxer = demuxer
        self._container: Any = None
        self._frames: Any = None

    def _options(self) -> dict[str, str]:
        opts = {
            "video_size": f"{self.width}x{self.height}",
            "framerate": f"{self.spec.framerate:g}",
        }
        if self.spec.input_format:
            key = "input_format" if self.demuxer == "video4linux2" else "pixel_format"
            opts[key] = self.spec.input_format
        return opts

    def _open_input(self) -> None:
        import av

        if not os.path.exists(self.spec.device):
            raise DeviceNotFoundError(f"camera device {self.spec.device} does not exist")
        try:
            self._container = av.open(
                self.spec.device,
                format=self.demuxer,
                options=self._options(),
                timeout=(READ_TIMEOUT_S, READ_TIMEOUT_S),
            )
        except av.FFmpegError as exc:
            raise DeviceNotFoundError(f"cannot open camera {self.spec.device}: {exc}") from exc
        self._frames = self._container.decode(video=0)

    def _read_frame(self) -> tuple[Any, int]:
        try:
            frame = next(self._frames)
        except StopIteration as exc:
            raise DeviceLostError(f"camera {self.spec.device} stopped delivering frames") from exc
        except OSError as exc:  # av.FFmpegError is an OSError: ENODEV when unplugged
            raise DeviceLostError(f"camera {self.spec.device} failed: {exc}") from exc
        return frame, monotonic_us()

    def _close_input(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._frames = None
