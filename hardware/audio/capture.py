"""Microphone capture: an ALSA PCM read on a worker thread, encoded to Opus with PyAV.

The worker paces itself from the monotonic clock, one period at a time: a real card would block
in ``read`` anyway, but ALSA's ``file`` PCMs (used in tests) return at once, and a clock is what
keeps both the same. Where the card has a clock of its own and it runs faster than ours (its
``avail`` shows two periods waiting), the worker follows the card rather than overrun.
Overruns are recovered and counted; any other ALSA error means the device is gone, which
becomes an :class:`AudioError` event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from hardware.audio.devices import AudioError, AudioSpec
from hardware.audio.worker import PcmWorker
from hardware.errors import AudioDeviceError, HardwareError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpusPacket:
    """One Opus packet: ``pts`` and ``duration`` in samples at 48 kHz since capture started."""

    data: bytes
    pts: int
    duration: int
    capture_us: int
    #: The level of the PCM it encodes, in -dBov (0 loudest, 127 silence) as RFC 6464
    #: carries it, so the SFU learns who speaks without decoding.
    level_dbov: int = 127


AudioEvent = OpusPacket | AudioError


def level_dbov(pcm: bytes) -> int:
    """The RMS level of S16_LE ``pcm`` in -dBov, 0 (full scale) to 127 (silence), as RFC 6464
    defines it (the root mean square of the samples against a full-scale square wave)."""
    import math

    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return 127
    rms = math.sqrt(float(np.mean(samples * samples))) / 32768.0
    if rms <= 0:
        return 127
    return max(0, min(127, round(-20 * math.log10(rms))))


class OpusEncoder:
    """libopus through PyAV: one packet per period of S16 PCM."""

    def __init__(self, spec: AudioSpec) -> None:
        import av

        self._av = av
        self.spec = spec
        ctx = av.CodecContext.create("libopus", "w")
        ctx.sample_rate = spec.rate
        ctx.layout = "mono" if spec.channels == 1 else "stereo"
        ctx.format = "s16"
        ctx.bit_rate = spec.opus_bitrate
        ctx.time_base = Fraction(1, spec.rate)
        # Constrained VBR: the configured rate is what the link carries on average. libopus's
        # free VBR spent 45.6 kbit/s on a steady tone at a 32 kbit/s target, and a kiosk
        # behind a short link (or a subscriber behind one) pays for every bit of it.
        ctx.options = {
            "frame_duration": str(spec.period_ms),
            "application": "audio",
            "vbr": "constrained",
        }
        ctx.open()
        self._ctx = ctx

    def encode(self, pcm: bytes, pts: int) -> list[tuple[bytes, int]]:
        """Encode one period; return ``(data, duration)`` for each packet out."""
        import numpy as np  # like PyAV: loaded when audio is first captured, not at start

        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = self._av.AudioFrame.from_ndarray(
            samples, format="s16", layout="mono" if self.spec.channels == 1 else "stereo"
        )
        frame.sample_rate = self.spec.rate
        frame.pts = pts
        return [
            (bytes(p), int(p.duration or self.spec.period_frames)) for p in self._ctx.encode(frame)
        ]


class AudioCapture(PcmWorker):
    """Captures ``spec.capture_device`` and hands :class:`OpusPacket` events to ``sink``.

    ``on_pcm``, if given, also receives each raw period (bytes, S16_LE) on the worker thread,
    for a local level meter or echo reference.
    """

    def __init__(
        self,
        spec: AudioSpec,
        sink: Callable[[AudioEvent], None],
        on_pcm: Callable[[bytes], None] | None = None,
    ) -> None:
        super().__init__(spec, "capture", spec.capture_device)
        self._sink = sink
        self._on_pcm = on_pcm
        self.overruns = 0
        self.periods = 0
        self.packets = 0

    def _card_is_ahead(self) -> bool:
        waiting = self._queued()
        return waiting is not None and waiting >= 2 * self.spec.period_frames

    def _read_period(self) -> bytes:
        length, data = self._pcm_call(lambda pcm: pcm.read())
        if length < 0:
            # -EPIPE: the card overran; pyalsaaudio has already re-prepared the PCM.
            self.overruns += 1
            return b""
        return bytes(data)

    def _run(self) -> None:
        period_s = self.spec.period_ms / 1000
        try:
            encoder = OpusEncoder(self.spec)
            pending = b""
            t0 = time.monotonic()
            ticks = 0
            while not self._stop.is_set():
                ticks += 1
                due = t0 + ticks * period_s
                delay = due - time.monotonic()
                if delay > 0 and self._card_is_ahead():
                    # A real card whose clock runs fast: follow it instead of overrunning.
                    t0 -= delay
                elif delay > 0 and self._stop.wait(delay):
                    break
                pending += self._read_period()
                while len(pending) >= self.spec.period_bytes:
                    pcm, pending = (
                        pending[: self.spec.period_bytes],
                        pending[self.spec.period_bytes :],
                    )
                    self._deliver(encoder, pcm)
        except HardwareError as exc:
            self._fail(exc)
        except Exception as exc:
            self._fail(AudioDeviceError(f"audio capture failed: {exc}"))

    def _deliver(self, encoder: OpusEncoder, pcm: bytes) -> None:
        capture_us = time.monotonic_ns() // 1000 - self.spec.period_ms * 1000
        pts = self.periods * self.spec.period_frames
        self.periods += 1
        if self._on_pcm is not None:
            self._on_pcm(pcm)
        # Opus frames equal periods, so each packet belongs to the period just read; the
        # encoder's own pts starts negative (pre-skip), which RTP timestamps don't want.
        level = level_dbov(pcm)
        for data, duration in encoder.encode(pcm, pts):
            self.packets += 1
            self._emit(OpusPacket(data, pts, duration, capture_us, level))

    def _fail(self, exc: HardwareError) -> None:
        log.warning("%s", exc)
        self._close_pcm()
        self._emit(AudioError(str(exc), exc, self.spec.capture_device))

    def _emit(self, event: AudioEvent) -> None:
        try:
            self._sink(event)
        except Exception:
            log.exception("audio event consumer failed")
