"""Cameras and H.264 encoders: sources that yield encoded layers (see :mod:`.base`)."""

from hardware.camera.base import (
    AccessUnit,
    CameraEvent,
    CameraLayerSpec,
    CameraSpec,
    LayerStats,
    SourceError,
    VideoSource,
)

__all__ = [
    "AccessUnit",
    "CameraEvent",
    "CameraLayerSpec",
    "CameraSpec",
    "LayerStats",
    "SourceError",
    "VideoSource",
]
