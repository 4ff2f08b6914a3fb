"""Speaker playback: 48 kHz PCM in, through a small jitter buffer, out to an ALSA PCM.

``push`` may be called from any thread with PCM stamped by sample position. A worker writes
one period of silence, then one period per clock tick: what the buffer holds for that position,
silence where it holds nothing (a gap), so the card is never starved. Late audio is dropped,
underruns are recovered and counted, and a failing device becomes an :class:`AudioError` event.
A card whose own clock runs faster than ours is fed early instead of running dry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hardware.audio.devices import AudioError, AudioSpec, open_mixer
from hardware.audio.worker import PcmWorker
from hardware.errors import HardwareError

if TYPE_CHECKING:  # numpy loads with the first playback, not when this module is imported
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)


class JitterBuffer:
    """Pure: PCM chunks keyed by sample position, read back period by period in order.

    Positions count samples per channel. Reading a range takes what overlaps it and leaves
    zeros (silence) elsewhere. Not thread-safe; :class:`AudioPlayback` locks around it.
    """

    def __init__(self, channels: int, max_samples: int) -> None:
        self.channels = channels
        self.max_samples = max_samples
        self._chunks: dict[int, npt.NDArray[np.int16]] = {}
        self.read_pos: int | None = None
        self.late = 0
        self.overflow = 0
        self.gap_samples = 0

    def put(self, pos: int, samples: npt.NDArray[np.int16]) -> None:
        """Store interleaved ``samples`` starting at sample ``pos``."""
        n = len(samples) // self.channels
        if self.read_pos is not None and pos + n <= self.read_pos:
            self.late += 1
            return
        self._chunks[pos] = samples
        while self.buffered() > self.max_samples:
            del self._chunks[min(self._chunks)]
            self.overflow += 1

    def buffered(self) -> int:
        """Samples stored ahead of the read position."""
        start = self.read_pos if self.read_pos is not None else self.first()
        if start is None:
            return 0
        end = max(p + len(c) // self.channels for p, c in self._chunks.items())
        return max(0, end - start)

    def first(self) -> int | None:
        """Position of the earliest chunk, if any."""
        return min(self._chunks) if self._chunks else None

    def read(self, n: int) -> npt.NDArray[np.int16]:
        """The next ``n`` samples (interleaved), silence where nothing was stored."""
        import numpy as np

        if self.read_pos is None:
            self.read_pos = self.first() or 0
        start, end = self.read_pos, self.read_pos + n
        out = np.zeros(n * self.channels, dtype=np.int16)
        covered = 0
        for pos in sorted(self._chunks):
            chunk = self._chunks[pos]
            c_end = pos + len(chunk) // self.channels
            if c_end <= start:
                del self._chunks[pos]
                continue
            if pos >= end:
                break
            lo, hi = max(pos, start), min(c_end, end)
            out[(lo - start) * self.channels : (hi - start) * self.channels] = chunk[
                (lo - pos) * self.channels : (hi - pos) * self.channels
            ]
            covered += hi - lo
            if c_end <= end:
                del self._chunks[pos]
        self.gap_samples += n - covered
        self.read_pos = end
        return out


class AudioPlayback(PcmWorker):
    """Plays PCM pushed with :meth:`push` on ``spec.playback_device``; playout begins
    ``jitter_ms`` after :meth:`start`."""

    def __init__(self, spec: AudioSpec, on_error: Callable[[AudioError], None] | None = None):
        super().__init__(spec, "playback", spec.playback_device)
        self._on_error = on_error
        self._buf = JitterBuffer(spec.channels, spec.rate * spec.max_buffer_ms // 1000)
        self._lock = threading.Lock()
        self._next_pos = 0
        self._mixer: Any = None
        self.underruns = 0
        self.resyncs = 0
        self.periods_written = 0
        self.silent_periods = 0

    @property
    def late_dropped(self) -> int:
        """Chunks that arrived after their position was played."""
        return self._buf.late

    @property
    def gap_samples(self) -> int:
        """Samples of silence written because nothing was buffered for them."""
        return self._buf.gap_samples

    def push(self, pcm: bytes | npt.NDArray[np.int16], pos: int | None = None) -> None:
        """Queue S16 interleaved PCM at sample position ``pos`` (default: right after the last).

        Callable from any thread. Positions let a mixer leave gaps that become silence. Without
        positions, audio that would already be late (after a pause in pushing) is placed one
        jitter delay ahead of the playout instead (counted in ``resyncs``).
        """
        import numpy as np

        samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, bytes) else pcm
        samples = np.ascontiguousarray(samples, dtype=np.int16).reshape(-1)
        with self._lock:
            start = self._next_pos if pos is None else pos
            read_pos = self._buf.read_pos
            if pos is None and read_pos is not None and start < read_pos:
                # A stream that starts (or resumes after a pause) behind the playout
                # position would be dropped as late, chunk after chunk: resync it to now
                # plus the jitter delay.
                start = read_pos + self.spec.rate * self.spec.jitter_ms // 1000
                self.resyncs += 1
            self._buf.put(start, samples)
            self._next_pos = start + len(samples) // self.spec.channels

    def _run(self) -> None:
        period_s = self.spec.period_ms / 1000
        # Start-up delay fills the jitter buffer before the first period goes out.
        if self._stop.wait(self.spec.jitter_ms / 1000):
            return
        t0 = time.monotonic()
        ticks = 0
        try:
            # One period of silence first: a card with its own clock then always has a
            # period in hand while the next is computed.
            self._write(bytes(self.spec.period_bytes))
            while not self._stop.is_set():
                self._play_one_period()
                ticks += 1
                delay = t0 + ticks * period_s - time.monotonic()
                if delay > 0 and self._card_is_ahead():
                    t0 -= delay  # the card's clock runs fast: feed it now, don't underrun
                elif delay > 0 and self._stop.wait(delay):
                    break
        except HardwareError as exc:
            self._fail(exc)

    def _play_one_period(self) -> None:
        with self._lock:
            gaps_before = self._buf.gap_samples
            out = self._buf.read(self.spec.period_frames)
            silent = self._buf.gap_samples - gaps_before == self.spec.period_frames
        self.silent_periods += silent
        self._write(out.tobytes())
        self.periods_written += 1

    def _card_is_ahead(self) -> bool:
        free = self._queued()
        # Less than half a period left queued in the card.
        return free is not None and self._buffer_frames - free < self.spec.period_frames // 2

    def _write(self, data: bytes) -> None:
        written: int = self._pcm_call(lambda pcm: pcm.write(data))
        if written < 0:
            # -EPIPE: the card ran dry; pyalsaaudio re-prepares it, the period is lost.
            self.underruns += 1

    def _fail(self, exc: HardwareError) -> None:
        log.warning("%s", exc)
        self._close_pcm()
        if self._on_error is not None:
            try:
                self._on_error(AudioError(str(exc), exc, self.spec.playback_device))
            except Exception:
                log.exception("audio error consumer failed")

    def set_volume(self, percent: int) -> None:
        """Set the card's volume (0-100); :class:`MixerUnavailableError` if it has no control."""
        if self._mixer is None:
            self._mixer = open_mixer(self.spec)
        self._mixer.setvolume(max(0, min(100, int(percent))))

    def volume(self) -> int:
        """The card's volume in percent (first channel)."""
        if self._mixer is None:
            self._mixer = open_mixer(self.spec)
        return int(self._mixer.getvolume()[0])
