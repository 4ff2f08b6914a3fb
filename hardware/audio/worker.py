"""What capture and playback share: one ALSA PCM, driven period by period on a worker thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from hardware.audio.devices import AudioSpec, buffer_frames, open_pcm, queued_frames
from hardware.errors import AudioDeviceError

T = TypeVar("T")


class PcmWorker:
    """Opens ``device`` for ``kind`` (``"capture"`` or ``"playback"``) on ``start`` and runs
    ``_run`` on a daemon thread until ``stop``; ``start`` again reopens it (after an error or
    ``stop``). Subclasses give ``_run``, which returns soon after ``_stop`` is set.
    """

    def __init__(self, spec: AudioSpec, kind: str, device: str) -> None:
        self.spec = spec
        self._kind = kind
        self._device = device
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # Held around every PCM call so close() never races a read or write in progress.
        self._pcm_lock = threading.Lock()
        self._pcm: Any = None
        self._buffer_frames = 4 * spec.period_frames

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Open the device and start the worker, unless it is running."""
        if self.running:
            return
        pcm = open_pcm(self._kind, self._device, self.spec)
        with self._pcm_lock:
            self._pcm = pcm
            self._buffer_frames = buffer_frames(pcm, self.spec)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"audio-{self._kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker and close the device. Idempotent; waits at most 5 s."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
        self._close_pcm()

    close = stop

    def _close_pcm(self) -> None:
        with self._pcm_lock:
            pcm, self._pcm = self._pcm, None
            if pcm is not None:
                pcm.close()

    def _queued(self) -> int | None:
        """What the card's ``avail`` says (see ``queued_frames``); None when it cannot say."""
        with self._pcm_lock:
            if self._pcm is None:
                return None
            try:
                return queued_frames(self._pcm.avail(), self._buffer_frames)
            except Exception:  # avail() on a failing device: the next read or write reports it
                return None

    def _pcm_call(self, call: Callable[[Any], T]) -> T:
        """``call(pcm)`` under the PCM lock; an ALSA error or a closed device raises
        :class:`AudioDeviceError`."""
        import alsaaudio

        with self._pcm_lock:
            if self._pcm is None:
                raise AudioDeviceError(f"{self._kind} device {self._device!r} was closed")
            try:
                return call(self._pcm)
            except alsaaudio.ALSAAudioError as exc:
                raise AudioDeviceError(
                    f"{self._kind} device {self._device!r} failed: {exc}"
                ) from exc

    def _run(self) -> None:
        raise NotImplementedError
