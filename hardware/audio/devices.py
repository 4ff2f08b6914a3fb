"""ALSA device settings and lookup through pyalsaaudio (imported only when a device is opened).

alsa-lib prints its own errors straight to stderr ("ALSA lib pcm.c:...: Unknown PCM ..."), a
dozen lines for one missing card, on top of the clear error this package raises. pyalsaaudio
offers no way to stop it, so :func:`alsa` installs a handler through alsa-lib's
``snd_lib_error_set_handler`` that sends those messages to this module's debug log instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from hardware.errors import ConfigError, DeviceNotFoundError, HardwareError, MixerUnavailableError

SAMPLE_RATE = 48_000
# Mixer controls tried in order when none is configured.
MIXER_CONTROLS = ("PCM", "Master", "Speaker", "Headphone", "Digital")


@dataclass(frozen=True)
class AudioSpec:
    """Audio settings; the appliance maps its TOML ``[audio]`` table onto this.

    Device names are ALSA PCM names as ``arecord -L`` lists them (``default``,
    ``plughw:CARD=Device,DEV=0``, or a PCM with arguments such as ``filecap:INFILE=/x.raw``).
    """

    capture_device: str = "default"
    playback_device: str = "default"
    rate: int = SAMPLE_RATE
    channels: int = 1
    period_ms: int = 20
    #: Opus's average bitrate (bit/s), constrained VBR: what the network carries.
    opus_bitrate: int = 32_000
    jitter_ms: int = 60
    max_buffer_ms: int = 1000
    mixer_control: str = ""
    mixer_card: int = -1

    def __post_init__(self) -> None:
        if self.rate != SAMPLE_RATE:
            raise ConfigError(
                f"audio rate must be {SAMPLE_RATE} (Opus and WebRTC), not {self.rate}"
            )
        if self.period_ms not in (10, 20):
            raise ConfigError(f"audio period_ms must be 10 or 20, not {self.period_ms}")
        if self.channels not in (1, 2):
            raise ConfigError(f"audio channels must be 1 or 2, not {self.channels}")
        if not 0 <= self.jitter_ms <= self.max_buffer_ms:
            raise ConfigError("jitter_ms must be between 0 and max_buffer_ms")

    @property
    def period_frames(self) -> int:
        """Samples per channel in one period."""
        return self.rate * self.period_ms // 1000

    @property
    def period_bytes(self) -> int:
        """Bytes of S16_LE audio in one period."""
        return self.period_frames * self.channels * 2


@dataclass(frozen=True, slots=True)
class AudioError:
    """An audio device failed (vanished, closed) and its worker stopped; ``start()`` again."""

    message: str
    error: HardwareError
    device: str = field(default="")


def queued_frames(avail: int, buffer_frames: int) -> int | None:
    """Frames the card itself is holding, from ``snd_pcm_avail``; ``None`` for unpaced PCMs.

    For capture, ``avail`` is what waits to be read; for playback, the free space, so the
    queued audio is ``buffer_frames - avail``. A ``file``/``null`` PCM reports the whole buffer
    all the time: it has no clock of its own, and only our clock can pace it.
    """
    if avail < 0 or avail >= buffer_frames:
        return None
    return avail


def buffer_frames(pcm: Any, spec: AudioSpec) -> int:
    """The PCM's buffer size in frames (what was negotiated, if pyalsaaudio can say)."""
    try:
        return int(pcm.info()["buffer_size"])
    except Exception:  # older pyalsaaudio has no info()
        return 4 * spec.period_frames


log = logging.getLogger(__name__)

# void (*)(const char *file, int line, const char *function, int err, const char *fmt, ...):
# the variadic arguments are never read, and the fixed ones arrive as declared on the ABIs
# the unit runs on (x86-64 and AArch64 Linux pass them as for a plain function).
_ERROR_HANDLER_T = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)
_quiet_lock = threading.Lock()
#: The installed handler. alsa-lib keeps only a C pointer to it: without this reference the
#: callback would be garbage-collected and alsa-lib would call freed memory.
_error_handler: Any = None


def _log_alsa_error(
    file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None
) -> None:
    # Only the format string is known (its arguments are C varargs): enough for a debug trace;
    # the error that matters reaches the admin through the exception this package raises.
    where = (function or b"?").decode(errors="replace")
    text = (fmt or b"").decode(errors="replace")
    log.debug("alsa-lib %s: %s (error %d)", where, text, err)


def quiet_alsa_errors() -> bool:
    """Send alsa-lib's own error printing to the debug log; whether the handler is in place.

    Idempotent and thread-safe. Returns False when alsa-lib cannot be loaded (then nothing
    prints anyway) or lacks the function.
    """
    global _error_handler
    with _quiet_lock:
        if _error_handler is not None:
            return True
        name = ctypes.util.find_library("asound") or "libasound.so.2"
        try:
            lib = ctypes.CDLL(name)  # the same library pyalsaaudio links: dlopen shares it
            set_handler = lib.snd_lib_error_set_handler
        except (OSError, AttributeError):
            return False
        set_handler.argtypes = [_ERROR_HANDLER_T]
        set_handler.restype = ctypes.c_int
        handler = _ERROR_HANDLER_T(_log_alsa_error)
        if set_handler(handler) != 0:
            return False
        _error_handler = handler
        return True


def alsa() -> Any:
    """pyalsaaudio, with alsa-lib's own error printing routed to the log (see the module doc)."""
    import alsaaudio

    quiet_alsa_errors()
    return alsaaudio


def list_pcms(kind: str) -> list[str]:
    """PCM names ALSA offers for ``kind`` (``"capture"`` or ``"playback"``)."""
    alsaaudio = alsa()

    pcm_type = alsaaudio.PCM_CAPTURE if kind == "capture" else alsaaudio.PCM_PLAYBACK
    return list(alsaaudio.pcms(pcm_type))


def open_pcm(kind: str, device: str, spec: AudioSpec) -> Any:
    """Open ``device`` for ``kind`` as blocking S16_LE at the spec's rate, channels and period.

    An unknown device raises :class:`DeviceNotFoundError` naming it and listing what ALSA has.
    """
    alsaaudio = alsa()

    pcm_type = alsaaudio.PCM_CAPTURE if kind == "capture" else alsaaudio.PCM_PLAYBACK
    try:
        return alsaaudio.PCM(
            pcm_type,
            alsaaudio.PCM_NORMAL,
            rate=spec.rate,
            channels=spec.channels,
            format=alsaaudio.PCM_FORMAT_S16_LE,
            periodsize=spec.period_frames,
            periods=4,
            device=device,
        )
    except alsaaudio.ALSAAudioError as exc:
        offered = ", ".join(list_pcms(kind)) or "none"
        raise DeviceNotFoundError(
            f"ALSA {kind} device {device!r} cannot be opened ({exc}); ALSA offers: {offered}"
        ) from exc


def open_mixer(spec: AudioSpec) -> Any:
    """The card's volume control (configured, or the first of :data:`MIXER_CONTROLS`)."""
    alsaaudio = alsa()

    controls = (spec.mixer_control,) if spec.mixer_control else MIXER_CONTROLS
    errors = []
    for control in controls:
        try:
            return alsaaudio.Mixer(control, cardindex=spec.mixer_card)
        except alsaaudio.ALSAAudioError as exc:
            errors.append(f"{control}: {exc}")
    raise MixerUnavailableError(f"no mixer control for volume ({'; '.join(errors)})")
