"""Errors raised by the hardware layer.

One root, :class:`HardwareError`; each subclass also subclasses the builtin it most resembles
(in the style of gpiozero's ``exc.py``) so callers can catch either.
"""

from __future__ import annotations


class HardwareError(Exception):
    """Base class for every error raised by :mod:`hardware`."""


class ConfigError(HardwareError, ValueError):
    """A hardware setting is invalid (bad size, unknown layer, unknown backend)."""


class DeviceNotFoundError(HardwareError, FileNotFoundError):
    """A configured device (camera, PCM, mixer) does not exist on this machine."""


class DeviceLostError(HardwareError, OSError):
    """A device that was working stopped answering (unplugged, closed, stream ended)."""


class EncoderUnavailableError(HardwareError, RuntimeError):
    """An encoder could not be opened (for example the V4L2 M2M encoder without /dev/video11)."""


class UnknownLayerError(ConfigError, KeyError):
    """A layer name that the source was not configured with."""

    def __str__(self) -> str:  # KeyError quotes its message; a plain sentence reads better
        return str(self.args[0]) if self.args else ""


class AudioDeviceError(HardwareError, OSError):
    """An ALSA PCM failed in a way that cannot be recovered by re-preparing it."""


class MixerUnavailableError(HardwareError, LookupError):
    """The sound card has no mixer control for volume."""


class GpioError(HardwareError, RuntimeError):
    """A GPIO pin could not be set up."""
