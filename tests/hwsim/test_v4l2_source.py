"""The webcam backend on real PyAV, fed raw frames through a FIFO that the test then closes."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hardware.camera.base import AccessUnit, CameraLayerSpec, CameraSpec, SourceError
from hardware.camera.v4l2 import V4L2Source
from hardware.errors import DeviceNotFoundError

from .conftest import Events, decode_h264

W, H = 640, 360


def _feed(fifo: Path, frames: int, stop: threading.Event) -> threading.Thread:
    """Write ``frames`` raw YUV420 frames at 30 fps, then close (the camera "vanishes")."""

    def run() -> None:
        with open(fifo, "wb") as f:
            for i in range(frames):
                if stop.is_set():
                    return
                f.write(np.full(W * H * 3 // 2, 16 + i % 200, np.uint8).tobytes())
                f.flush()
                time.sleep(1 / 30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "video0"
    os.mkfifo(path)
    return path


def test_device_vanishing_gives_an_error_event_and_the_source_restarts(
    fifo: Path, events: Events
) -> None:
    spec = CameraSpec(
        layers=(CameraLayerSpec("mid", W, H), CameraLayerSpec("low", 320, 180)),
        device=str(fifo),
        input_format="yuv420p",
    )
    src = V4L2Source(spec, events, demuxer="rawvideo")
    stop = threading.Event()
    try:
        _feed(fifo, 20, stop)
        src.start()
        errors = events.wait_count(SourceError, 1, timeout=30)
        assert str(fifo) in errors[0].message and isinstance(errors[0].error, OSError)
        events.wait_for(lambda: not src.running, timeout=10)
        first = len(events.of(AccessUnit, layer="low"))
        assert first == 20 and len(events.of(AccessUnit, layer="mid")) == 20

        _feed(fifo, 10, stop)
        src.start()
        events.wait_count(SourceError, 2, timeout=30)
    finally:
        stop.set()
        src.close()
    low = events.of(AccessUnit, layer="low")
    assert len(low) == 30 and low[first].keyframe  # the restart opens on an IDR
    frames = decode_h264([u.data for u in low])
    assert {(f.width, f.height) for f in frames} == {(320, 180)}


def test_missing_device_is_a_clear_error(tmp_path: Path, events: Events) -> None:
    spec = CameraSpec(device=str(tmp_path / "video9"))
    src = V4L2Source(spec, events)
    with pytest.raises(DeviceNotFoundError, match="video9"):
        src.start()
    assert not src.running and not events.items


def test_packed_yuyv_input_is_converted_before_encoding(fifo: Path, events: Events) -> None:
    """Webcams often deliver YUYV 4:2:2; the encoder wants planar 4:2:0 at the same size."""
    spec = CameraSpec(
        layers=(CameraLayerSpec("mid", W, H),), device=str(fifo), input_format="yuyv422"
    )

    def run() -> None:
        with open(fifo, "wb") as f:
            for i in range(5):
                f.write(np.full(W * H * 2, 60 + i, np.uint8).tobytes())

    writer = threading.Thread(target=run, daemon=True)
    writer.start()
    src = V4L2Source(spec, events, demuxer="rawvideo")
    src.start()
    try:
        events.wait_count(SourceError, 1, timeout=30)
    finally:
        src.close()
        writer.join(5)
    frames = decode_h264([u.data for u in events.of(AccessUnit)])
    assert len(frames) == 5 and {(f.width, f.height) for f in frames} == {(W, H)}
