"""Choosing a camera backend and encoder: automatic, or forced in config, always with a reason."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from hardware.board import HW_ENCODER_DEVICE, BoardInfo, detect, find_webcams
from hardware.camera.base import CameraSink, CameraSpec, VideoSource
from hardware.camera.pyav_encoder import HARDWARE_CODEC, SOFTWARE_CODEC, probe_encoder
from hardware.errors import EncoderUnavailableError

log = logging.getLogger(__name__)

Probe = Callable[[str], tuple[bool, str]]


@dataclass(frozen=True)
class CameraChoice:
    """Which backend and encoder a camera gets, and why (the doctor prints ``reason``)."""

    backend: str
    encoder: str  # "hardware" or "software"
    codec: str  # what actually encodes
    device: str
    reason: str
    encoder_reason: str


def pi_cameras() -> tuple[int, str]:
    """(number of libcamera cameras, why) — imports picamera2 only on a Pi that has it."""
    try:
        from picamera2 import Picamera2
    except Exception as exc:  # ImportError, or libcamera failing to load
        return 0, f"picamera2 unavailable ({type(exc).__name__}: {exc})"
    try:
        cameras = Picamera2.global_camera_info()
    except Exception as exc:
        return 0, f"libcamera failed: {exc}"
    if not cameras:
        return 0, "libcamera sees no camera"
    return len(cameras), f"libcamera sees {cameras[0].get('Model', 'a camera')}"


def _pick_backend(spec: CameraSpec, board: BoardInfo) -> tuple[str, str, str]:
    """(backend, device, reason)."""
    if spec.backend != "auto":
        return spec.backend, spec.device, f"forced by config (camera.backend = {spec.backend})"
    if board.is_pi:
        count, why = pi_cameras()
        if count:
            return "picamera2", "camera 0", why
    else:
        why = "not a Raspberry Pi"
    webcams = find_webcams()
    if webcams:
        cam = webcams[0]
        return "v4l2", cam.path, f"{why}; USB camera {cam.name!r} at {cam.path}"
    return "synthetic", "testsrc2", f"no camera found ({why}; no V4L2 webcam)"


def _pick_encoder(
    spec: CameraSpec, backend: str, board: BoardInfo, probe: Probe
) -> tuple[str, str, str]:
    """(encoder, codec, reason)."""
    want = spec.encoder
    if backend == "picamera2":
        if want == "software" or (want == "auto" and not board.hw_encoder):
            why = "forced by config" if want == "software" else board.hw_encoder_reason()
            return "software", "picamera2 LibavH264Encoder (libx264)", f"hardware encoder: {why}"
        if not HW_ENCODER_DEVICE.exists():
            why = f"forced by config but {HW_ENCODER_DEVICE} absent"
            return "hardware", "picamera2 H264Encoder", f"hardware encoder: {why}"
        return "hardware", "picamera2 H264Encoder (V4L2 M2M)", board.hw_encoder_reason()
    if want == "software":
        return "software", SOFTWARE_CODEC, "software encoder forced by config"
    ok, why = probe(HARDWARE_CODEC)
    if ok:
        return "hardware", HARDWARE_CODEC, f"hardware encoder: yes — {why}"
    if not os.path.exists(HW_ENCODER_DEVICE):
        why = f"{HW_ENCODER_DEVICE} absent"
    return "software", SOFTWARE_CODEC, f"hardware encoder: no — {why}"


def choose_camera(
    spec: CameraSpec, board: BoardInfo | None = None, probe: Probe = probe_encoder
) -> CameraChoice:
    """Decide backend and encoder for ``spec`` on this machine."""
    board = board or detect()
    backend, device, reason = _pick_backend(spec, board)
    encoder, codec, encoder_reason = _pick_encoder(spec, backend, board, probe)
    return CameraChoice(backend, encoder, codec, device, reason, encoder_reason)


def open_camera(
    spec: CameraSpec, sink: CameraSink, choice: CameraChoice | None = None
) -> VideoSource:
    """Build (not start) the source ``choice`` (default: :func:`choose_camera`) describes."""
    choice = choice or choose_camera(spec)
    log.info("camera: %s (%s); encoder: %s", choice.backend, choice.reason, choice.encoder_reason)
    hardware = choice.encoder == "hardware"
    if choice.backend == "picamera2":
        from hardware.camera.picamera2_backend import Picamera2Source

        if hardware and not HW_ENCODER_DEVICE.exists():
            raise EncoderUnavailableError(choice.encoder_reason)
        return Picamera2Source(spec, sink, hardware_encoder=hardware)
    codec = HARDWARE_CODEC if hardware else SOFTWARE_CODEC
    if choice.backend == "v4l2":
        from hardware.camera.v4l2 import V4L2Source

        return V4L2Source(dataclasses.replace(spec, device=choice.device), sink, codec=codec)
    from hardware.camera.synthetic import SyntheticSource

    return SyntheticSource(spec, sink, codec=codec)
