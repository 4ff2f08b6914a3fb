"""Received bitrate per track and frame rate per layer, from the SFU's counters, between two
status polls."""

from __future__ import annotations

from collections.abc import Callable

from edge_sfu.stats import TrackStats

#: A bitrate is recomputed only over at least this long (seconds); polls in between repeat it.
MIN_RATE_INTERVAL = 0.5


class TrackRates:
    """Received bitrate per track since the previous poll, from the SFU's byte counters.

    ``source`` returns the SFU's counters (``edge_sfu.stats.track_stats`` of the running
    application); without one every track reads 0.
    """

    def __init__(self, source: Callable[[], TrackStats] | None = None) -> None:
        self._source = source
        #: Per track SID: (bytes at the last computation, its time, the bytes/s computed then).
        self._last: dict[str, tuple[int, float, float]] = {}
        #: The snapshot the latest ``sample`` read (per-subscriber figures for the status page).
        self.latest = TrackStats(0.0)
        #: Per (track SID, layer): (frames at the last computation, its time, the fps then).
        self._frames_last: dict[tuple[str, str], tuple[int, float, float]] = {}
        #: Frames per second received, by track SID and layer, as of the latest ``sample``.
        self.frame_rates: dict[str, dict[str, float]] = {}

    def sample(self) -> dict[str, float]:
        """kbit/s per track SID published now (0 on a track's first poll)."""
        if self._source is None:
            return {}
        stats = self._source()
        self.latest = stats
        now = stats.at
        rates: dict[str, float] = {}
        last: dict[str, tuple[int, float, float]] = {}
        frames_last: dict[tuple[str, str], tuple[int, float, float]] = {}
        frame_rates: dict[str, dict[str, float]] = {}
        for sid, counters in stats.tracks.items():
            last[sid], bytes_per_s = _rate(self._last.get(sid), counters.bytes_received, now)
            rates[sid] = float(round(bytes_per_s * 8 / 1000, 1))
            if counters.kind == "video":
                for name, layer in counters.layers.items():
                    key = (sid, name)
                    frames_last[key], fps = _rate(self._frames_last.get(key), layer.frames, now)
                    frame_rates.setdefault(sid, {})[name] = float(round(fps, 1))
        # tracks no longer published are forgotten
        self._last, self._frames_last, self.frame_rates = last, frames_last, frame_rates
        return rates


def _rate(
    last: tuple[int, float, float] | None, count: int, now: float
) -> tuple[tuple[int, float, float], float]:
    """The per-second rate of a counter since its last computation, recomputed only after
    ``MIN_RATE_INTERVAL`` (0 the first time); with the state to keep for the next one."""
    last_count, last_at, rate = last if last is not None else (count, now, 0.0)
    elapsed = now - last_at
    if elapsed >= MIN_RATE_INTERVAL:
        rate = (count - last_count) / elapsed
        last_count, last_at = count, now
    return (last_count, last_at, rate), rate
