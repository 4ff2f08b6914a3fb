"""Received bitrate per track, from the SFU's byte counters, between two status polls."""

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
        #: Per track SID: (bytes at the last computation, its time, the kbps computed then).
        self._last: dict[str, tuple[int, float, float]] = {}
        #: The snapshot the latest ``sample`` read (per-subscriber figures for the status page).
        self.latest = TrackStats(0.0)

    def sample(self) -> dict[str, float]:
        """kbit/s per track SID published now (0 on a track's first poll)."""
        if self._source is None:
            return {}
        stats = self._source()
        self.latest = stats
        now = stats.at
        rates: dict[str, float] = {}
        last: dict[str, tuple[int, float, float]] = {}
        for sid, counters in stats.tracks.items():
            received = counters.bytes_received
            last_bytes, last_at, kbps = self._last.get(sid, (received, now, 0.0))
            elapsed = now - last_at
            if elapsed >= MIN_RATE_INTERVAL:
                kbps = (received - last_bytes) * 8 / elapsed / 1000
                last_bytes, last_at = received, now
            last[sid] = (last_bytes, last_at, kbps)
            rates[sid] = float(round(kbps, 1))
        self._last = last  # tracks no longer published are forgotten
        return rates
