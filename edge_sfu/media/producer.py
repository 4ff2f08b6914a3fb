"""A producer: one published track, fanned out to its consumers.

The producer does not know where its packets come from. A remote WebRTC sender
(``edge_sfu.media.incoming.IncomingTrack``) and an in-process source
(``edge_sfu.media.local.LocalProducer``) both call ``Producer.receive`` with
``MediaPacket``s and give the producer two functions to reach back upstream: ask for a
keyframe, ask for retransmissions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from edge_common.lifecycle import Closeable
from edge_sfu.media.errors import MediaClosed
from edge_sfu.media.layers import DEFAULT_LAYER, LayerSpec
from edge_sfu.media.packet import PACKET_OVERHEAD_BYTES, CodecInfo, MediaPacket
from edge_sfu.media.retransmission import RetransmissionCache
from edge_sfu.media.speech import LevelMeter

if TYPE_CHECKING:
    from edge_sfu.media.consumer_base import ConsumerBase
    from edge_sfu.media.seam import FanOut

logger = logging.getLogger(__name__)

KeyframeRequester = Callable[[str], None]
RetransmissionRequester = Callable[[str, list[int]], None]
WantedLayersCallback = Callable[[frozenset[str]], None]


@dataclass
class SyncPoint:
    """Ties a layer's RTP clock to wall-clock time, for sender reports.

    ``ntp`` is the source's NTP time (seconds, float) at RTP time ``rtp``, learned at local
    monotonic time ``local``. From a remote publisher's sender report, or made up by a
    local producer from its own clock.
    """

    ntp: float
    rtp: int
    local: float


#: The layer bitrate is measured over the last two of these periods (seconds): the one under
#: way and the one before.
BITRATE_PERIOD_S: Final = 0.5
#: A packet missing upstream is asked for again at most this often (seconds), and at most
#: ``UPSTREAM_NACK_TRIES`` times. Every subscriber asks for it each round trip until it
#: comes; each request passed on made the publisher send it again, and behind a short uplink
#: the copies crowd out new packets, whose loss brings more requests (a Python publisher
#: behind 400 kbit/s: half of what it sent were copies of packets the SFU had).
UPSTREAM_NACK_INTERVAL_S: Final = 0.4
UPSTREAM_NACK_TRIES: Final = 3
#: Requests remembered at most (the oldest forgotten first).
_UPSTREAM_NACK_MEMORY: Final = 512


class Layer:
    """Runtime state of one layer: its spec, cache, clock and bitrate."""

    __slots__ = (
        "_period_bytes",
        "_period_start",
        "_previous_bytes",
        "cache",
        "flowing_bps",
        "frames",
        "last_arrival",
        "last_ts",
        "packets",
        "spec",
        "sync",
    )

    def __init__(self, spec: LayerSpec, cache_size: int) -> None:
        self.spec = spec
        self.cache = RetransmissionCache(cache_size)
        self.sync: SyncPoint | None = None
        self.last_arrival = 0.0
        self.last_ts = 0
        self.packets = 0
        #: Video frames received (packets with the RTP marker bit: a frame's last packet).
        self.frames = 0
        self._period_start = 0.0
        self._period_bytes = 0
        self._previous_bytes = 0
        #: What the layer sends while it flows (bit/s on the wire, smoothed over its periods; 0
        #: before a period completed): kept while the layer is paused, so what it would cost
        #: to resume it is known.
        self.flowing_bps = 0

    def count(self, size: int, arrival: float) -> None:
        """Add a packet of ``size`` bytes (on the wire), arrived at ``arrival`` (monotonic)."""
        elapsed = arrival - self._period_start
        if elapsed >= BITRATE_PERIOD_S:
            if elapsed < 2 * BITRATE_PERIOD_S:
                self._previous_bytes = self._period_bytes
                self._period_start += BITRATE_PERIOD_S
                if self._period_bytes:
                    rate = int(self._period_bytes * 8 / BITRATE_PERIOD_S)
                    flowing = self.flowing_bps
                    self.flowing_bps = rate if not flowing else (7 * flowing + 3 * rate) // 10
            else:  # a gap: nothing arrived during the last full period
                self._previous_bytes = 0
                self._period_start = arrival
            self._period_bytes = 0
        self._period_bytes += size

    def bitrate_at(self, now: float) -> int:
        """Bit/s over the period under way at ``now`` and the one before it; 0 once
        nothing arrived for a whole period (a paused layer)."""
        elapsed = now - self._period_start
        if elapsed >= 2 * BITRATE_PERIOD_S or elapsed < 0:
            return 0
        if elapsed >= BITRATE_PERIOD_S:  # the period under way has had no packet yet
            return int(self._period_bytes * 8 / elapsed)
        return int((self._previous_bytes + self._period_bytes) * 8 / (BITRATE_PERIOD_S + elapsed))

    @property
    def bitrate_bps(self) -> int:
        """What the source sends on this layer now (bit/s with each packet's headers, a
        sliding window of 0.5 to 1 s)."""
        return self.bitrate_at(time.monotonic())


def _compiled_fan_out() -> FanOut | None:
    """``seam.fan_out()``, once the consumer class has told it what it copies for (it does
    so on import). Both imported here, lazily: the consumer module imports this one, and
    the seam is aiortc, which what imports this module without forwarding must not load."""
    import edge_sfu.media.consumer  # noqa: F401
    from edge_sfu.media import seam

    return seam.fan_out()


class Producer(Closeable):
    """One published track (audio or video), with one or more layers.

    ``on_wanted_layers`` is called with the set of layer names some consumer is receiving
    or waiting for, each time that set changes: a local camera stops encoding the others.

    ``attach_consumer``, ``detach_consumer`` and ``update_wanted_layers`` are the engine's
    internal API, for ``ConsumerBase`` only.
    """

    def __init__(
        self,
        *,
        producer_id: str,
        participant_id: str,
        codec: CodecInfo,
        layers: Iterable[LayerSpec] = (LayerSpec(DEFAULT_LAYER),),
        request_keyframe: KeyframeRequester | None = None,
        request_retransmission: RetransmissionRequester | None = None,
        cache_size: int = 1024,
        keyframe_interval_s: float = 0.5,
    ) -> None:
        super().__init__()
        self.id = producer_id
        self.participant_id = participant_id
        self.codec = codec
        self.kind = codec.kind
        self.layers: dict[str, Layer] = {s.name: Layer(s, cache_size) for s in layers}
        if not self.layers:
            raise ValueError("a producer needs at least one layer")
        self._request_keyframe = request_keyframe
        self._request_retransmission = request_retransmission
        self._keyframe_interval = keyframe_interval_s
        self._last_keyframe_request: dict[str, float] = {}
        #: By (layer, source seq): when the packet was last asked for upstream, and how often.
        self._asked_upstream: dict[tuple[str, int], tuple[float, int]] = {}
        #: Requests for missing packets not passed upstream (asked too recently or too often).
        self.upstream_nacks_skipped = 0
        self._consumers: list[ConsumerBase] = []
        # the loop over them in C where the helper is built (``seam.fan_out``)
        self._fan_out = _compiled_fan_out()
        self._wanted: frozenset[str] = frozenset()
        self.on_wanted_layers: WantedLayersCallback | None = None
        self.enabled = True
        #: The publisher's track priority (Twilio's ``low``/``standard``/``high``): the
        #: priority its subscribers give it unless they set their own.
        self.priority = "standard"
        #: Whether the publisher is the room's dominant speaker (raises the priority to the
        #: subscriber's ``dominantSpeakerPriority``).
        self.dominant_speaker = False
        self.keyframe_requests_sent = 0
        self.packets_received = 0
        #: Packets that arrived again (retransmitted or resent as padding) and were not
        #: forwarded twice.
        self.duplicates_dropped = 0
        #: Payload bytes received, for bitrate figures on the status page.
        self.bytes_received = 0
        #: An audio producer's recent level (RFC 6464 levels from the publisher's packets,
        #: or from a local encoder), read by the room's dominant-speaker timer.
        self.level: LevelMeter | None = LevelMeter() if self.kind == "audio" else None
        # layers the publisher said it stopped sending (``set_paused_layers``)
        self._paused: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"Producer({self.id!r}, {self.codec.mime_type}, layers={list(self.layers)})"

    # -- packets in ------------------------------------------------------------------

    def receive(self, packet: MediaPacket) -> None:
        """Take one packet from the source and hand it to every consumer."""
        layer = self.layers.get(packet.layer)
        if layer is None or self.closed:
            return
        cache = layer.cache
        held = cache.get(packet.seq)
        if held is not None and held.ts == packet.ts:
            # A copy of a packet already forwarded: a browser's bandwidth probes and padding
            # resend recent packets ("redundant payloads" over RTX). Forwarded again, the
            # subscriber's SRTP drops it as a replay, and its transport-cc feedback then
            # reports a packet lost that was never lost: its downlink would look congested.
            self.duplicates_dropped += 1
            return
        if self._paused and packet.keyframe_start and packet.layer in self._paused:
            # A resumed encoding starts with a keyframe: should the publisher's word that it
            # resumed cross its media, the media says it.
            self.set_paused_layers(self._paused - {packet.layer})
        cache.put(packet)
        layer.last_arrival = packet.arrival
        layer.last_ts = packet.ts
        layer.packets += 1
        # counted as it costs a subscriber's link, headers included: what the allocation
        # compares with the estimate, which is of whole packets too
        layer.count(len(packet.payload) + PACKET_OVERHEAD_BYTES, packet.arrival)
        if packet.marker:
            layer.frames += 1
        self.packets_received += 1
        self.bytes_received += len(packet.payload)
        fan_out = self._fan_out
        if fan_out is not None:
            fan_out(packet, self._consumers)
            return
        for consumer in self._consumers:
            consumer.deliver(packet)

    def set_sync(self, layer: str, ntp: float, rtp: int) -> None:
        """Record the source's RTP/NTP correspondence for ``layer`` (from a sender report)."""
        state = self.layers.get(layer)
        if state is not None:
            state.sync = SyncPoint(ntp=ntp, rtp=rtp, local=time.monotonic())

    # -- requests upstream -----------------------------------------------------------

    def request_keyframe(self, layer: str, *, force: bool = False) -> bool:
        """Ask the source for a keyframe on ``layer``; rate-limited per layer.

        Returns whether a request went upstream.
        """
        if self.kind != "video" or self._request_keyframe is None or self.closed:
            return False
        if layer not in self.layers:
            return False
        now = time.monotonic()
        last = self._last_keyframe_request.get(layer)
        if not force and last is not None and now - last < self._keyframe_interval:
            return False
        self._last_keyframe_request[layer] = now
        self.keyframe_requests_sent += 1
        try:
            self._request_keyframe(layer)
        except Exception:
            logger.exception("keyframe request for %s/%s failed", self.id, layer)
        return True

    def request_retransmission(self, layer: str, seqs: list[int]) -> None:
        """Pass a NACK the cache could not answer to the source (source sequence numbers),
        each packet at most every ``UPSTREAM_NACK_INTERVAL_S`` and ``UPSTREAM_NACK_TRIES``
        times, whichever subscribers ask."""
        if self._request_retransmission is None or not seqs or self.closed:
            return
        now = time.monotonic()
        asked = self._asked_upstream
        if len(asked) > _UPSTREAM_NACK_MEMORY:
            # dicts keep insertion order: the oldest requests go first
            for key in list(asked)[: len(asked) - _UPSTREAM_NACK_MEMORY // 2]:
                del asked[key]
        wanted: list[int] = []
        for seq in seqs:
            at, tries = asked.get((layer, seq), (-UPSTREAM_NACK_INTERVAL_S, 0))
            if tries >= UPSTREAM_NACK_TRIES or now - at < UPSTREAM_NACK_INTERVAL_S:
                self.upstream_nacks_skipped += 1
                continue
            asked.pop((layer, seq), None)  # re-inserted as the newest
            asked[(layer, seq)] = (now, tries + 1)
            wanted.append(seq)
        if wanted:
            self._request_retransmission(layer, wanted)

    # -- layers ----------------------------------------------------------------------

    def available_layers(self) -> list[LayerSpec]:
        """Layers a consumer may choose from now."""
        return [layer.spec for layer in self.layers.values()]

    def set_layer_size(self, name: str, width: int, height: int) -> None:
        """Engine-internal: layer ``name``'s picture size, learnt from the media (a source
        whose signaling does not say it); every consumer chooses its layer again."""
        layer = self.layers.get(name)
        if layer is None or (layer.spec.width, layer.spec.height) == (width, height):
            return
        layer.spec = replace(layer.spec, width=width, height=height)
        for consumer in list(self._consumers):
            consumer.layers_changed()

    @property
    def paused_layers(self) -> frozenset[str]:
        """Layers the publisher said it stopped sending (a browser whose uplink carries only
        its lowest simulcast layer): nobody waits on them."""
        return self._paused

    def set_paused_layers(self, names: Iterable[str]) -> None:
        """The publisher stopped sending ``names`` (and sends the other layers): each consumer
        forwarding or awaiting one of them moves to the best layer still sent at once, at
        its next keyframe (requested now), not after the layer's silence (the pictures of a
        paused layer stop at once). Names that are no layer of this producer are ignored; a
        paused layer counts as sent again from its next keyframe."""
        paused = frozenset(name for name in names if name in self.layers)
        if paused == self._paused:
            return
        self._paused = paused
        for consumer in list(self._consumers):
            consumer.layers_changed()

    @property
    def wanted_layers(self) -> frozenset[str]:
        """Names of the layers some consumer receives or waits for."""
        return self._wanted

    def update_wanted_layers(self) -> None:
        """Engine-internal: a consumer's layer needs changed; recompute, tell the source."""
        wanted: set[str] = set()
        for consumer in self._consumers:
            wanted.update(consumer.wanted_layers())
        frozen = frozenset(wanted)
        if frozen != self._wanted:
            self._wanted = frozen
            if self.on_wanted_layers is not None:
                try:
                    self.on_wanted_layers(frozen)
                except Exception:
                    logger.exception("wanted-layers callback of %s failed", self.id)

    # -- mute ------------------------------------------------------------------------

    def set_enabled(self, enabled: bool) -> None:
        """Record the publisher's ``enabled`` (mute) state and tell every consumer."""
        if enabled == self.enabled:
            return
        self.enabled = enabled
        for consumer in list(self._consumers):
            consumer.producer_enabled_changed(enabled)

    # -- consumers (engine-internal API) -------------------------------------------

    def attach_consumer(self, consumer: ConsumerBase) -> None:
        """Engine-internal: ``consumer`` receives this producer's packets from now on."""
        if self.closed:
            raise MediaClosed(f"producer {self.id} is closed")
        self._consumers.append(consumer)

    def detach_consumer(self, consumer: ConsumerBase) -> None:
        """Engine-internal: ``consumer`` stops receiving (it closed or moved on)."""
        if consumer in self._consumers:
            self._consumers.remove(consumer)
            self.update_wanted_layers()

    @property
    def consumers(self) -> list[ConsumerBase]:
        """The consumers now attached (a copy)."""
        return list(self._consumers)

    def _on_close(self) -> None:
        # Consumers closed by their producer do not detach one by one; the source hears
        # once that no layer is wanted any more.
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            consumer.close_from_parent(self)
        self.update_wanted_layers()
