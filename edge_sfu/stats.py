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

__all__ = ["LayerCounters", "SubscriberCounters", "TrackCounters", "TrackStats", "track_stats"]


@dataclass(frozen=True, slots=True)
class LayerCounters:
    """One layer of a published track: its picture size (0x0 when the publisher did not
    say, as a browser sending one layer does not) and the video frames received on it."""

    width: int
    height: int
    frames: int


@dataclass(frozen=True, slots=True)
class SubscriberCounters:
    """What the SFU has sent one subscriber of a track, and what its receiver reports say.

    ``fraction_lost`` (0..1), ``jitter_s`` and ``rtt_s`` come from the subscriber's latest
    RTCP receiver report and are None until one arrived (or, for the RTT, until a report
    echoed one of our sender reports).

    The allocation of the subscriber's downlink (``available_outgoing_bps``, None: not known,
    so unlimited): the ``priority`` the track has for it, the layer its render
    size asks for (``preferred_layer``), the most the allocation gives (``allowed_layer``),
    whether it is ``switched_off`` and why (``reason``: ``render-size`` when it gets what it
    asks for, ``network-congestion``, ``max-bandwidth-reached``, ``disabled-by-subscriber``,
    ``stepping-up`` while a higher layer waits for the estimate to hold).
    """

    participant_sid: str
    layer: str | None
    packets_sent: int
    bytes_sent: int
    nacks_received: int
    plis_received: int
    retransmitted: int
    layer_switches: int
    packets_lost: int
    fraction_lost: float | None
    jitter_s: float | None
    rtt_s: float | None
    #: The subscriber's downlink estimate: what the SFU may send it (bit/s), None before
    #: its feedback said.
    available_outgoing_bps: int | None = None
    priority: str = "standard"
    preferred_layer: str | None = None
    allowed_layer: str | None = None
    switched_off: bool = False
    reason: str | None = None
    #: The rate the SFU paces what it sends the subscriber at while its estimate binds
    #: (bit/s; None: not paced).
    pacing_bps: int | None = None


@dataclass(frozen=True, slots=True)
class TrackCounters:
    """What one published track has delivered to the SFU since it was published, and what
    the SFU forwarded of it to each remote subscriber."""

    bytes_received: int
    packets_received: int
    room_sid: str = ""
    kind: str = ""
    keyframe_requests_sent: int = 0
    #: Packets missing from what the publisher sent (0 for a local source).
    packets_lost: int = 0
    #: Interarrival jitter of what the publisher sends (seconds; None for a local source).
    jitter_s: float | None = None
    subscribers: tuple[SubscriberCounters, ...] = ()
    #: The publisher's uplink estimate (bit/s; None for a local source or before a second
    #: of media).
    available_incoming_bps: int | None = None
    #: By layer name.
    layers: Mapping[str, LayerCounters] = field(default_factory=dict)


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
    tracks: dict[str, TrackCounters] = {}
    for room_sid, router in list(service.routers.items()):
        subscribers: dict[str, list[SubscriberCounters]] = {}
        upstream: dict[str, tuple[int, float | None]] = {}
        uplink: dict[str, int | None] = {}
        for transport in list(router.transports.values()):
            estimate = transport.estimate
            incoming_bps = None if estimate is None else estimate.available_incoming_bps
            outgoing_bps = None if estimate is None else estimate.available_outgoing_bps
            for incoming in list(transport.incoming.values()):
                if incoming.producer is not None:
                    upstream[incoming.producer.id] = (incoming.packets_lost, incoming.jitter_s)
                    uplink[incoming.producer.id] = incoming_bps
            for consumer in list(transport.consumers.values()):
                allocation = transport.allocation.last.get(consumer.id)
                subscribers.setdefault(consumer.producer.id, []).append(
                    SubscriberCounters(
                        participant_sid=transport.participant_id,
                        layer=consumer.current_layer,
                        packets_sent=consumer.packets_sent,
                        bytes_sent=consumer.octets_sent,
                        nacks_received=consumer.nacks_received,
                        plis_received=consumer.plis_received,
                        retransmitted=consumer.retransmitted,
                        layer_switches=consumer.layer_switches,
                        packets_lost=consumer.packets_lost,
                        fraction_lost=consumer.fraction_lost,
                        jitter_s=consumer.jitter_s,
                        rtt_s=consumer.rtt_s,
                        available_outgoing_bps=outgoing_bps,
                        priority=transport.allocation.priority_of(consumer),
                        preferred_layer=consumer.preferred_layer,
                        allowed_layer=None if allocation is None else allocation.layer,
                        switched_off=consumer.switched_off,
                        reason=None if allocation is None else allocation.reason,
                        pacing_bps=transport.pacing_bps,
                    )
                )
        for track_sid, producer in list(router.producers.items()):
            tracks[track_sid] = TrackCounters(
                producer.bytes_received,
                producer.packets_received,
                room_sid=room_sid,
                kind=producer.kind,
                keyframe_requests_sent=producer.keyframe_requests_sent,
                packets_lost=upstream.get(track_sid, (0, None))[0],
                jitter_s=upstream.get(track_sid, (0, None))[1],
                subscribers=tuple(subscribers.get(track_sid, ())),
                available_incoming_bps=uplink.get(track_sid),
                layers={
                    name: LayerCounters(layer.spec.width, layer.spec.height, layer.frames)
                    for name, layer in producer.layers.items()
                },
            )
    return TrackStats(now, tracks)
