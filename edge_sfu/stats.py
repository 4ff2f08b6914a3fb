"""Counters of the media the SFU receives, for status pages and support tools.

A caller outside the SFU asks here instead of walking the signaling service's routers and
producers, whose shape is the media engine's own business. Taking a snapshot costs one pass
over the live producers and imports nothing heavy (no aiortc): a status page may poll it on a
unit that has not loaded the media stack yet.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web

from edge_sfu.signaling.routes import SIGNALING

__all__ = ["TrackCounters", "TrackStats", "track_stats"]


@dataclass(frozen=True, slots=True)
class TrackCounters:
    """What one published track has delivered to the SFU since it was published."""

    bytes_received: int
    packets_received: int


@dataclass(frozen=True, slots=True)
class TrackStats:
    """Counters of every track published now, by track SID, taken at ``at``.

    ``at`` is ``time.monotonic()``: two snapshots give each track's bitrate in between.
    """

    at: float
    tracks: Mapping[str, TrackCounters] = field(default_factory=dict)


def track_stats(app: web.Application) -> TrackStats:
    """A snapshot of the counters of every track published in any room of ``app``.

    Empty before the signaling service runs (and after it stopped).
    """
    now = time.monotonic()
    service = app.get(SIGNALING)
    if service is None:
        return TrackStats(now)
    tracks = {
        track_sid: TrackCounters(producer.bytes_received, producer.packets_received)
        for router in service.routers.values()
        for track_sid, producer in router.producers.items()
    }
    return TrackStats(now, tracks)
