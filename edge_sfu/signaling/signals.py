"""Room signals derived from media: the dominant speaker and each participant's network quality.

``RoomSignals`` belongs to the ``SignalingService``. A fast timer (every ``SPEAKER_TICK_S``)
reads each live room's audio level meters (fed on the forwarding path, see
``media.speech``) into a ``DominantSpeaker`` per room; a slow one (every
``QUALITY_TICK_S``) samples every participant's transport into ``media.quality`` levels.
What the figures say goes to the sessions that asked at join (``dominant_speaker``,
``network_quality``); the latest levels are also kept for the REST API and status pages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from edge_common.lifecycle import TaskSet

from ..context import LiveSignals
from ..media.allocation import layer_options
from ..media.layers import sending_layers
from ..media.quality import (
    WANTED_BPS,
    LinkSample,
    NetworkQuality,
    link_jitter,
    network_quality,
    wanted_bps,
)
from ..media.speech import DominantSpeaker, LevelMeter
from . import protocol as p

if TYPE_CHECKING:
    from ..media import Producer, Router, Transport
    from ..media.producer import Layer

logger = logging.getLogger(__name__)

SPEAKER_TICK_S: Final = 0.1
QUALITY_TICK_S: Final = 2.0
#: The fewest packets the downlink feedback must report on between two samples for their
#: loss to count (fewer: one lost packet would read as several per cent).
MIN_LOSS_PACKETS: Final = 50


@dataclass
class Listener:
    """What one signaling session asked for, and what it was last told."""

    sid: str
    room_sid: str
    send: Callable[[dict[str, Any]], None]
    dominant_speaker: bool
    #: (local, remote) verbosity, 0 to 3; None: no network quality at all.
    network_quality: tuple[int, int] | None
    told_quality: dict[str, dict[str, object]]


def wanted_uplink(producers: Sequence[Producer], publisher_cap: int | None) -> dict[str, int]:
    """What a participant's published tracks ask of its uplink (bit/s by kind): what the SFU
    asks of each, as ``quality.wanted_bps`` bounds it. A simulcast track is asked for the
    layers it is told to send (``sending_layers``: none once every subscriber switched it
    off), at what each costs (``layer_options``); single-layer video together at most the
    ``publisher_cap`` its subscribers' allocations gave (None: not capped)."""
    wanted: dict[str, int] = {}
    for producer in producers:
        asked: int | None = None
        if _simulcast(producer):
            asked = sum(cost for _, cost in _asked_layers(producer))
        wanted[producer.kind] = wanted.get(producer.kind, 0) + wanted_bps(producer.kind, asked)
    if "video" in wanted and publisher_cap is not None:
        # the cap only exists while every video track has a single layer (``publisher_cap``)
        wanted["video"] = min(wanted["video"], max(0, publisher_cap))
    return wanted


def uplink_shortfall(producers: Sequence[Producer]) -> int:
    """How much of what its simulcast tracks are asked for a publisher stopped sending
    (bit/s): a browser whose own estimate of its uplink can no longer carry a layer stops
    sending it, and pads up to that estimate instead. What arrives from it then overstates
    its uplink by what the stopped layers sent while they flowed (a layer that never flowed
    is not counted: a source may never start one), up to what the track is short of its
    ``wanted_bps``."""
    short = 0
    for producer in producers:
        if _simulcast(producer):
            asked = _asked_layers(producer)
            wanted = wanted_bps(producer.kind, sum(cost for _, cost in asked))
            missing = wanted - sum(layer.bitrate_bps for layer, _ in asked)
            stopped = sum(layer.flowing_bps for layer, _ in asked if not layer.bitrate_bps)
            short += max(0, min(missing, stopped))
    return short


def wanted_downlink(producer: Producer, preferred_layer: str | None) -> int:
    """What one subscription asks of the subscriber's downlink (bit/s): audio as
    ``WANTED_BPS``; video the best layer the source sends now, or the layer the render size
    prefers where that costs less (``layer_options``), at least a quarter of ``WANTED_BPS``."""
    if producer.kind != "video":
        return WANTED_BPS.get(producer.kind, 0)
    best = max((layer.bitrate_bps for layer in producer.layers.values()), default=0)
    if preferred_layer is not None:
        for option in layer_options(producer):
            if option.name == preferred_layer:
                best = min(best, option.cost)
    return max(best, WANTED_BPS["video"] // 4)


def interval_loss(
    before: tuple[int, int], now: tuple[int, int], last_report: float | None
) -> float | None:
    """The loss between two (lost, reported) counts of transport-cc feedback, when they
    are at least ``MIN_LOSS_PACKETS`` apart; ``last_report`` (a receiver report's fraction
    lost) where there has been no transport-cc feedback at all; else None (not known)."""
    lost, reported = now[0] - before[0], now[1] - before[1]
    if reported >= MIN_LOSS_PACKETS:
        return max(0, lost) / reported
    if now[1] == 0:
        return last_report
    return None


def _simulcast(producer: Producer) -> bool:
    return producer.kind == "video" and len(producer.layers) > 1


def _asked_layers(producer: Producer) -> list[tuple[Layer, int]]:
    # the layers a simulcast source is told to send, with what each costs
    sending = set(sending_layers(list(producer.layers), producer.wanted_layers))
    return [
        (producer.layers[option.name], option.cost)
        for option in layer_options(producer)
        if option.name in sending and option.name in producer.layers
    ]


class RoomSignals:
    """Dominant speaker and network quality of every live room (see the module docstring)."""

    def __init__(
        self,
        routers: Mapping[str, Router],
        room_participants: Callable[[str], Iterable[str] | None],
        is_reconnecting: Callable[[str], bool],
        live: LiveSignals | None = None,
        *,
        speaker_tick_s: float = SPEAKER_TICK_S,
        quality_tick_s: float = QUALITY_TICK_S,
    ) -> None:
        self._routers = routers
        self._room_participants = room_participants
        self._is_reconnecting = is_reconnecting
        #: Where the REST API and status pages read the latest figures.
        self.live = live or LiveSignals()
        self._speaker_tick_s = speaker_tick_s
        self._quality_tick_s = quality_tick_s
        self._speakers: dict[str, DominantSpeaker] = {}
        self._listeners: dict[str, Listener] = {}
        #: The latest network quality of each participant, by participant SID.
        self.quality: dict[str, NetworkQuality] = {}
        self._uplink_counts: dict[int, tuple[int, int]] = {}
        # per transport: (lost, reported) of its downlink feedback at the last sample
        self._downlink_counts: dict[int, tuple[int, int]] = {}
        self._tasks = TaskSet("room signals")
        self._running = False
        #: Called with (room SID, participant SID or None) when a room's speaker changes
        #: (local participants, status pages).
        self.on_dominant_speaker: Callable[[str, str | None], None] | None = None

    # -- lifetime --------------------------------------------------------------------

    def start(self) -> None:
        """Start both timers."""
        if not self._running:
            self._running = True
            self._tasks.spawn(
                self._every(self._speaker_tick_s, self.update_speakers), name="speakers"
            )
            self._tasks.spawn(
                self._every(self._quality_tick_s, self.update_quality), name="quality"
            )

    async def close(self) -> None:
        """Stop the timers."""
        self._running = False
        await self._tasks.close()

    async def _every(self, interval: float, step: Callable[[float], None]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                step(time.monotonic())
            except Exception:  # a bug in one update must not stop the next ones
                logger.exception("room signals update failed")

    # -- listeners -------------------------------------------------------------------

    def listen(
        self,
        sid: str,
        room_sid: str,
        send: Callable[[dict[str, Any]], None],
        *,
        dominant_speaker: bool,
        network_quality: tuple[int, int] | None,
    ) -> None:
        """A session that asked at join; it is told the current state at once."""
        if not dominant_speaker and network_quality is None:
            return
        listener = Listener(sid, room_sid, send, dominant_speaker, network_quality, {})
        self._listeners[sid] = listener
        speaker = self._speakers.get(room_sid)
        if dominant_speaker and speaker is not None and speaker.dominant is not None:
            send(p.dominant_speaker_message(speaker.dominant))
        self._tell_quality(listener)

    def forget(self, sid: str) -> None:
        """The participant left: no more messages to it, none about it."""
        self._listeners.pop(sid, None)
        self.quality.pop(sid, None)
        self.live.network_quality.pop(sid, None)
        for listener in self._listeners.values():
            listener.told_quality.pop(sid, None)

    def dominant_speaker(self, room_sid: str) -> str | None:
        """The room's dominant speaker now, or None."""
        speaker = self._speakers.get(room_sid)
        return speaker.dominant if speaker is not None else None

    # -- dominant speaker ------------------------------------------------------------

    def update_speakers(self, now: float) -> None:
        """Read every room's level meters; announce changes of dominant speaker."""
        for room_sid in list(self._speakers):
            if room_sid not in self._routers:
                del self._speakers[room_sid]
                self.live.dominant_speakers.pop(room_sid, None)
        for room_sid, router in list(self._routers.items()):
            meters: dict[str, LevelMeter] = {}
            for producer in list(router.producers.values()):
                level = producer.level
                if level is not None and producer.enabled and not producer.closed:
                    # a participant with two microphones speaks through the louder one
                    held = meters.get(producer.participant_id)
                    if held is None or level.current_dbov(now) < held.current_dbov(now):
                        meters[producer.participant_id] = level
            speaker = self._speakers.get(room_sid)
            if speaker is None:
                if not meters:
                    continue
                speaker = self._speakers[room_sid] = DominantSpeaker()
            if speaker.update(meters, now):
                self._announce_speaker(room_sid, speaker.dominant)

    def _announce_speaker(self, room_sid: str, sid: str | None) -> None:
        if sid is None:
            self.live.dominant_speakers.pop(room_sid, None)
        else:
            self.live.dominant_speakers[room_sid] = sid
        message = p.dominant_speaker_message(sid)
        for listener in list(self._listeners.values()):
            if listener.room_sid == room_sid and listener.dominant_speaker:
                listener.send(message)
        self._mark_speaker(room_sid, sid)
        if self.on_dominant_speaker is not None:
            self.on_dominant_speaker(room_sid, sid)

    def _mark_speaker(self, room_sid: str, sid: str | None) -> None:
        # A subscriber's bandwidth profile may rank the dominant speaker's tracks higher
        # (``dominant_speaker_priority``): share each downlink again with the new flags.
        router = self._routers.get(room_sid)
        if router is None:
            return
        for producer in list(router.producers.values()):
            producer.dominant_speaker = sid is not None and producer.participant_id == sid
        for transport in list(router.transports.values()):
            if transport.consumers and not transport.closed:
                transport.reallocate()

    # -- network quality -------------------------------------------------------------

    def update_quality(self, now: float) -> None:
        """Sample every participant's link; tell listeners of changed levels."""
        seen: set[int] = set()
        for room_sid, router in list(self._routers.items()):
            transports = {t.participant_id: t for t in list(router.transports.values())}
            for sid in list(self._room_participants(room_sid) or ()):
                transport = transports.get(sid)
                if transport is None:  # in-process, or no media yet: no link to judge
                    quality = network_quality({}, {})
                else:
                    quality = self._sample(transport, router, sid, seen)
                self.quality[sid] = quality
                self.live.network_quality[sid] = quality.level
        for counts in (self._uplink_counts, self._downlink_counts):
            for key in list(counts):
                if key not in seen:
                    del counts[key]
        for listener in list(self._listeners.values()):
            self._tell_quality(listener)

    def _sample(
        self, transport: Transport, router: Router, sid: str, seen: set[int]
    ) -> NetworkQuality:
        estimate = transport.estimate
        # the link's base RTT: a late report from a busy receiver costs no latency level
        rtt = transport.base_rtt_s()
        send: dict[str, LinkSample] = {}
        published: list[Producer] = []
        actual: dict[str, int] = {}
        lost = received = 0
        jitters: list[tuple[str, float | None]] = []
        for track in list(transport.incoming.values()):
            producer = track.producer
            if producer is None or producer.closed or not producer.enabled:
                continue
            kind = producer.kind
            published.append(producer)
            actual[kind] = actual.get(kind, 0) + sum(
                layer.bitrate_bps for layer in producer.layers.values()
            )
            key = id(track)
            seen.add(key)
            counts = (track.packets_lost, track.packets_received)
            before = self._uplink_counts.get(key, (0, 0))
            self._uplink_counts[key] = counts
            lost += max(0, counts[0] - before[0])
            received += max(0, counts[1] - before[1])
            jitters.append((kind, track.jitter_s))
        uplink_loss = lost / (lost + received) if lost + received > 0 else None
        jitter = link_jitter(jitters)
        wanted = wanted_uplink(published, router.publisher_caps.get(transport.id))
        # The sender's own estimate where its client reports one (a browser's, which its
        # encoder follows); else what arrives, less what the sender stopped sending for
        # want of uplink.
        uplink = transport.sender_estimate()
        if uplink is None and estimate is not None and estimate.available_incoming_bps is not None:
            uplink = max(0, estimate.available_incoming_bps - uplink_shortfall(published))
        for kind, bps in wanted.items():
            send[kind] = LinkSample(
                bps,
                actual.get(kind),
                uplink,
                uplink_loss,
                rtt,
                jitter,
            )
        recv: dict[str, LinkSample] = {}
        downlink_loss = self._downlink_loss(transport, seen)
        downlink_jitter = link_jitter(
            (c.producer.kind, c.jitter_s) for c in list(transport.consumers.values())
        )
        switched_off = transport.allocation.switched_off_by_client
        for consumer in list(transport.consumers.values()):
            producer = consumer.producer
            if consumer.closed or producer.closed or not producer.enabled:
                continue
            if consumer.id in switched_off:  # the subscriber asks for none of it now
                continue
            kind = producer.kind
            bps = wanted_downlink(producer, consumer.preferred_layer)
            previous = recv.get(kind)
            recv[kind] = LinkSample(
                bps + (previous.wanted_bps if previous is not None else 0),
                None,
                estimate.available_outgoing_bps if estimate is not None else None,
                downlink_loss,
                rtt,
                downlink_jitter,
            )
        connected = transport.connection_state == "connected" and not self._is_reconnecting(sid)
        if not send and not recv:
            connected = connected or transport.connection_state == "new"
        return network_quality(send, recv, connected=connected)

    def _downlink_loss(self, transport: Transport, seen: set[int]) -> float | None:
        # Loss over the whole interval since the last sample, from transport-cc feedback:
        # the estimator's own loss covers its last 20-odd packets, where one lost packet
        # reads as 5 %. Without transport-cc, what the receiver reports last.
        downlink = transport.bandwidth.downlink
        key = id(transport)
        seen.add(key)
        counts = (downlink.lost_total, downlink.reported_total)
        before = self._downlink_counts.get(key, (0, 0))
        self._downlink_counts[key] = counts
        estimate = transport.estimate
        return interval_loss(before, counts, estimate.loss if estimate is not None else None)

    def _tell_quality(self, listener: Listener) -> None:
        if listener.network_quality is None:
            return
        local, remote = listener.network_quality
        for sid in list(self._room_participants(listener.room_sid) or ()):
            quality = self.quality.get(sid)
            if quality is None:
                continue
            report = quality.report(local if sid == listener.sid else remote)
            if report is None or listener.told_quality.get(sid) == report:
                continue
            listener.told_quality[sid] = report
            listener.send(p.network_quality_message(sid, report))
