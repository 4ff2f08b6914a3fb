"""Hand-written stand-in for pykms (picamera2's DRM preview imports it). Not the real library."""

from __future__ import annotations

from typing import Any

import libcamera


def __getattr__(name: str) -> Any:
    return libcamera.__getattr__(name)
