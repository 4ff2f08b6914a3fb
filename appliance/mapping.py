"""Maps the config's hardware tables onto ``hardware``'s own spec dataclasses."""

from __future__ import annotations

from hardware.audio.devices import AudioSpec
from hardware.camera.base import CameraLayerSpec, CameraSpec

from .settings import Settings


def camera_spec(settings: Settings) -> CameraSpec | None:
    """The ``[camera]`` table as a ``CameraSpec``; None when the camera is turned off."""
    c = settings.camera
    if c.backend == "none":
        return None
    return CameraSpec(
        layers=tuple(CameraLayerSpec(x.name, x.width, x.height, x.bitrate) for x in c.layers),
        framerate=float(c.framerate),
        keyframe_interval=c.keyframe_interval,
        profile=c.profile,
        backend=c.backend,
        encoder=c.encoder,
        device=c.device,
    )


def audio_spec(settings: Settings) -> AudioSpec | None:
    """The ``[audio]`` table as an ``AudioSpec``; None when audio is turned off."""
    a = settings.audio
    if not a.enabled:
        return None
    return AudioSpec(
        capture_device=a.capture_device,
        playback_device=a.playback_device,
        period_ms=a.period_ms,
        mixer_control=a.mixer,
    )
