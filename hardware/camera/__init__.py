"""Cameras and H.264 encoders: sources that yield encoded layers (see :mod:`.base`)."""

from hardware.camera.base import (
    AccessUnit,
    CameraEvent,
    CameraSpec,
    LayerSpec,
    LayerStats,
    SourceError,
    VideoSource,
)

__all__ = [
    "AccessUnit",
    "CameraEvent",
    "CameraSpec",
    "LayerSpec",
    "LayerStats",
    "SourceError",
    "VideoSource",
]
