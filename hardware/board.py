"""What board this is and which video devices it has, read from the kernel (no vendor imports)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MODEL_PATH = Path("/proc/device-tree/model")
HW_ENCODER_DEVICE = Path("/dev/video11")
V4L2_SYSFS = Path("/sys/class/video4linux")

# Boards whose VideoCore has the H.264 encoder behind /dev/video11. The Pi 5 has none; the
# Pi 3 has one too, but it is too slow for two layers and is not a supported kiosk.
_HW_ENCODER_MODELS = (
    (re.compile(r"Raspberry Pi 4 Model"), "pi4"),
    (re.compile(r"Raspberry Pi 400"), "pi400"),
    (re.compile(r"Raspberry Pi Compute Module 4"), "cm4"),
    (re.compile(r"Raspberry Pi Zero 2 W"), "zero2w"),
)
_OTHER_PI = (
    (re.compile(r"Raspberry Pi 5"), "pi5"),
    (re.compile(r"Raspberry Pi Compute Module 5"), "cm5"),
    (re.compile(r"Raspberry Pi 500"), "pi500"),
    (re.compile(r"Raspberry Pi 3"), "pi3"),
)
# Video nodes that belong to the Pi's own ISP/codec/capture blocks, not to a webcam.
_INTERNAL_V4L2 = (
    "bcm2835-codec",
    "bcm2835-isp",
    "pispbe",
    "rpi-hevc",
    "unicam",
    "rp1-cfe",
    "rpivid",
)


@dataclass(frozen=True)
class BoardInfo:
    """The board model and what it implies for video encoding."""

    model: str
    family: str
    is_pi: bool
    hw_encoder_model: bool
    hw_encoder_device: bool

    @property
    def hw_encoder(self) -> bool:
        """Whether the V4L2 M2M H.264 encoder should be used (right model and device present)."""
        return self.hw_encoder_model and self.hw_encoder_device

    def hw_encoder_reason(self) -> str:
        """A short "yes/no — why" for the doctor report."""
        if self.hw_encoder:
            return f"yes — {self.model} with {HW_ENCODER_DEVICE}"
        if not self.hw_encoder_device:
            return f"no — {HW_ENCODER_DEVICE} absent"
        return f"no — {self.model or 'this board'} has no supported H.264 encoder block"


def classify(model: str, hw_encoder_device: bool) -> BoardInfo:
    """Pure: turn a device-tree model string into a :class:`BoardInfo`."""
    for pattern, family in _HW_ENCODER_MODELS:
        if pattern.search(model):
            return BoardInfo(model, family, True, True, hw_encoder_device)
    for pattern, family in _OTHER_PI:
        if pattern.search(model):
            return BoardInfo(model, family, True, False, hw_encoder_device)
    is_pi = model.startswith("Raspberry Pi")
    return BoardInfo(model, "pi" if is_pi else "other", is_pi, False, hw_encoder_device)


def read_model(path: Path = MODEL_PATH) -> str:
    """The device-tree model string, or ``""`` where there is none (x86, containers)."""
    try:
        return path.read_bytes().rstrip(b"\0\n").decode("utf-8", "replace")
    except OSError:
        return ""


def detect(model_path: Path = MODEL_PATH, encoder_device: Path = HW_ENCODER_DEVICE) -> BoardInfo:
    """Detect this machine's board."""
    return classify(read_model(model_path), encoder_device.exists())


@dataclass(frozen=True)
class V4L2Device:
    """A video node that looks like a webcam's capture node."""

    path: str
    name: str


def find_webcams(sysfs: Path = V4L2_SYSFS, dev: Path = Path("/dev")) -> list[V4L2Device]:
    """Webcam capture nodes: index 0 of each device, excluding the Pi's internal blocks."""
    found = []
    try:
        nodes = sorted(sysfs.iterdir(), key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
    except OSError:
        return []
    for node in nodes:
        try:
            name = (node / "name").read_text().strip()
            index = (node / "index").read_text().strip() if (node / "index").exists() else "0"
        except OSError:
            continue
        if index != "0" or any(name.startswith(i) for i in _INTERNAL_V4L2):
            continue
        path = dev / node.name
        if os.path.exists(path):
            found.append(V4L2Device(str(path), name))
    return found
