"""The allocation pass: one subscriber's estimate shared over its consumers, and applied.

Each ``Transport`` has one ``SubscriberAllocation``. ``run`` reads the transport's
downlink estimate (``Transport.estimate``; None, or an estimate without a figure, means
unlimited), describes every consumer to the pure ``allocator`` and tells each video
consumer the most it may get (``ConsumerBase.set_allowed_layer``). It runs on every
estimate change (``Transport.on_estimate``), on the transport's RTCP timer (a step up that
waited for its hold time happens there), and when the subscriber changes a render size,
a priority or a switch. ``publisher_cap`` turns the allocations of every subscriber into
the most a single-layer publisher is told it may send.
"""

from __future__ import annotations

import itertools
import logging
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge_sfu.media.allocator import (
    KEEP_ON_MAX_LOSS,
    PRIORITIES,
    REASON_HOLD,
    REASON_NETWORK,
    Allocation,
    Allocator,
    Demand,
    LayerOption,
    Priority,
    VideoBandwidthProfile,
)
from edge_sfu.media.estimator import WindowMax
from edge_sfu.media.layers import ordered_layers
from edge_sfu.media.packet import PACKET_OVERHEAD_BYTES

if TYPE_CHECKING:
    from edge_sfu.media.consumer_base import ConsumerBase
    from edge_sfu.media.producer import Producer

logger = logging.getLogger(__name__)

#: The estimate binds the allocation once it has dropped by this share below its peak while
#: at least ``CONGESTION_LOSS`` of what was sent was being lost, for at least
#: ``CONGESTION_SUSTAIN_S`` (congestion seen), see ``SubscriberAllocation``.
CONGESTION_DROP = 0.05
CONGESTION_LOSS = 0.02
#: ... its peak being the highest estimate of this many seconds (the estimate before an
#: overuse's cut counts, though the loss showed only after it).
CONGESTION_PEAK_S = 5.0
#: A burst of loss shorter than this (seconds) is not congestion: when several streams start
#: at once a busy receiver's socket overflows for a moment, on any link. Loss while a queue
#: builds up on the way (the delay-based detector's overuse) is congestion at once.
CONGESTION_SUSTAIN_S = 1.0
#: Once the estimate has held nothing back, with no loss, for this long (seconds), it stops
#: binding again until the next congestion: the link recovered, and a delay spike on a busy
#: host must not switch tracks off on it.
CONGESTION_CLEAR_S = 5.0

#: A single-layer publisher is never capped below this (bps): its subscribers' shares may
#: be tiny while they are switched off, and a publisher starved to nothing never recovers.
MIN_PUBLISHER_CAP_BPS = 100_000


_PRIORITY_NAMES: dict[str, Priority] = {name: name for name in PRIORITIES}


#: A producer's bitrate is sampled at most this often (seconds), during allocation passes...
RATE_SAMPLE_S = 0.5
#: ... and is the median of the rates between samples over this window (seconds): a keyframe
#: (several times a frame's size, e.g. after a subscriber's PLI) must not make a track look
#: dearer than it is, or the allocation would switch it off for it.
RATE_WINDOW_S = 4.0


class _RateMeter:
    """A producer's received bytes and packets, sampled: its bitrate over the window."""

    __slots__ = ("samples",)

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()

    def sample(self, now: float, producer: Producer) -> int | None:
        wire = producer.bytes_received + producer.packets_received * PACKET_OVERHEAD_BYTES
        samples = self.samples
        if not samples or now - samples[-1][0] >= RATE_SAMPLE_S:
            samples.append((now, wire))
            while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW_S:
                samples.popleft()
        if len(samples) < 2:
            return None
        rates = sorted(
            (b1 - b0) * 8 / (t1 - t0)
            for (t0, b0), (t1, b1) in itertools.pairwise(samples)
            if t1 > t0
        )
        return int(rates[len(rates) // 2]) if rates else None


# One meter per producer, shared by every subscriber's pass; gone with the producer.
_METERS: weakref.WeakKeyDictionary[Producer, _RateMeter] = weakref.WeakKeyDictionary()


def measured_bitrate(producer: Producer, now: float) -> int | None:
    """What ``producer`` receives (bps, headers counted): the median rate of the last
    ``RATE_WINDOW_S``, None until two samples ``RATE_SAMPLE_S`` apart exist. Sampled when
    called."""
    meter = _METERS.get(producer)
    if meter is None:
        meter = _METERS[producer] = _RateMeter()
    return meter.sample(now, producer)


def _bitrate(layer: object) -> int | None:
    # ``Layer.bitrate_bps`` where the engine measures each layer itself (simulcast).
    value = getattr(layer, "bitrate_bps", None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def layer_options(producer: Producer, now: float | None = None) -> tuple[LayerOption, ...]:
    """A producer's layers, low to high, with what each costs where it is measured: for a
    single-layer producer what it receives in all (measured here over ``RATE_WINDOW_S``,
    headers counted, ``now`` being the time of the pass), else a layer's own measurement
    (``Layer.bitrate_bps``, over a shorter window) or what it sent while it flowed
    (``Layer.flowing_bps``, smoothed, kept while the layer is paused), whichever is larger,
    and for a paused layer at least what its publisher declared it may spend; else the
    allocator's default for the layer's size, or what the publisher said the
    layer spends at most if that is less."""
    specs = ordered_layers(producer.available_layers())
    whole = None
    if len(specs) == 1 and now is not None:
        whole = measured_bitrate(producer, now)
    options = []
    for spec in specs:
        layer = producer.layers.get(spec.name)
        # the larger of now and its smoothed rate: a layer measured low for a moment (an
        # encoder's dip after a keyframe) must not look cheap enough to step up to
        now_bps = _bitrate(layer) or 0
        own = max(now_bps, getattr(layer, "flowing_bps", 0) or 0) or None
        if own is not None and now_bps == 0 and spec.bitrate:
            # Paused: what it sent while it flowed may be from its first seconds, as the
            # publisher's encoder ramped up (a browser's top layer nobody took since looked
            # like 200 kbit/s, was stepped up to behind 400 and flooded the link when it
            # resumed at 650). Resuming it costs what its publisher declared it may spend.
            own = max(own, spec.bitrate)
        options.append(LayerOption(spec.name, spec.width, spec.height, whole or own, spec.bitrate))
    return tuple(options)


@dataclass(frozen=True)
class AllocationStatus:
    """One consumer's allocation as the status page shows it."""

    consumer_id: str
    kind: str
    priority: str
    preferred_layer: str | None
    allowed_layer: str | None
    current_layer: str | None
    switched_off: bool
    reason: str
    bitrate_bps: int


class SubscriberAllocation:
    """Shares one subscriber's downlink over its consumers (see the module docstring).

    ``profile`` is the subscriber's bandwidth profile, ``priorities`` its ``setPriority``
    overrides and ``switched_off_by_client`` the tracks it switched off itself (manual
    ``clientTrackSwitchOffControl``), all by consumer id.

    The estimate binds only once it has come down while packets were being lost for a while,
    or while a queue was building up (``overused``) (``congested``; ``loss`` None, not
    known, counts as lost): an estimator starts from a
    guess (1 Mbit/s) and ramps up while nothing is lost, and its delay-based part also backs
    off when a busy host delays packets on a link with room to spare; before a real
    congestion its figure says too little of the link and would switch tracks off on a good
    network. A short link loses packets as soon as more is sent than it carries, and goes on
    losing them; a moment's loss as streams start is not that (LiveKit's allocator likewise
    waits for a sustained congestion signal before it limits anything).
    """

    def __init__(
        self,
        consumers: Callable[[], Iterable[ConsumerBase]],
        available_bps: Callable[[], int | None],
        *,
        loss: Callable[[], float | None] = lambda: None,
        overused: Callable[[], bool] = lambda: False,
        probe_overshoot: Callable[[], bool] = lambda: False,
        proven_bps: Callable[[], int | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        hold_s: float = 2.0,
    ) -> None:
        self._consumers = consumers
        #: Where the downlink estimate comes from (the transport's estimator; None:
        #: unlimited). Replaceable, e.g. by a test that stands in for the network.
        self.available_bps = available_bps
        #: The share of packets to the subscriber lost lately (0..1, None: not known).
        self.loss = loss
        #: Whether the delay-based estimator saw a queue build up on the way lately.
        self.overused = overused
        #: Whether loss now may be the transport's own probe's overshoot: such loss does
        #: not take switching off's leeway away (``KEEP_ON_MAX_LOSS``); the probe failed,
        #: and the media that fitted before it fits again once its queue drains.
        self.probe_overshoot = probe_overshoot
        #: What probes showed the downlink carries (bps; None: the subscriber cannot be
        #: probed): while the estimate binds, a step up goes no further (the estimate of a
        #: subscriber sent less than it may grows over its link).
        self.proven_bps = proven_bps
        self._clock = clock
        self.profile = VideoBandwidthProfile()
        self.priorities: dict[str, Priority] = {}
        self.switched_off_by_client: set[str] = set()
        self.allocator = Allocator(hold_s=hold_s)
        #: The latest allocation, by consumer id.
        self.last: dict[str, Allocation] = {}
        self.last_available_bps: int | None = None
        #: Whether the estimate binds: it came down with loss (congestion), and has not yet
        #: held nothing back for ``CONGESTION_CLEAR_S``.
        self.congested = False
        #: How long loss must last to count as congestion (seconds).
        self.congestion_sustain_s = CONGESTION_SUSTAIN_S
        # since when the loss has been at or above CONGESTION_LOSS
        self._lossy_since: float | None = None
        # the highest estimate of the last CONGESTION_PEAK_S
        self._peaks = WindowMax(CONGESTION_PEAK_S)
        self._peak_bps = 0.0
        self._clear_since: float | None = None
        self._demands: list[Demand] = []
        #: Whether the last pass lowered a track (a layer down, or switched off).
        self.stepped_down = False

    def set_priority(self, consumer_id: str, priority: Priority | None) -> None:
        """The subscriber's priority for one consumer (None: the publisher's again)."""
        if priority is None:
            self.priorities.pop(consumer_id, None)
        elif priority in PRIORITIES:
            self.priorities[consumer_id] = priority
        else:
            raise ValueError(f"priority must be one of {PRIORITIES}, not {priority!r}")

    def set_switched_off(self, consumer_id: str, off: bool) -> None:
        """The subscriber switches one of its tracks off or on itself."""
        if off:
            self.switched_off_by_client.add(consumer_id)
        else:
            self.switched_off_by_client.discard(consumer_id)

    def priority_of(self, consumer: ConsumerBase) -> Priority:
        """The effective priority: the subscriber's, else the publisher's."""
        own = self.priorities.get(consumer.id)
        if own is not None:
            return own
        return _PRIORITY_NAMES.get(consumer.producer.priority, "standard")

    def demand(self, consumer: ConsumerBase, now: float | None = None) -> Demand:
        """How the allocator sees one consumer (``now``: the pass's time, to measure)."""
        width, height = consumer.render_size
        pixels = width * height if width and height else None
        producer = consumer.producer
        audio = consumer.kind == "audio"
        return Demand(
            consumer_id=consumer.id,
            kind=consumer.kind,
            layers=layer_options(producer, now) if consumer.kind == "video" else (),
            # what the audio costs on the link, headers counted (Opus at 50 packets a second
            # pays about as much for headers as for itself at a low bitrate)
            bitrate_bps=measured_bitrate(producer, now) if audio and now is not None else None,
            wanted=consumer.preferred_layer,
            priority=self.priority_of(consumer),
            dominant_speaker=producer.dominant_speaker,
            render_pixels=pixels,
            switched_off_by_subscriber=consumer.id in self.switched_off_by_client,
        )

    def run(self) -> dict[str, Allocation]:
        """Allocate now and apply it to every video consumer."""
        consumers = [c for c in self._consumers() if not c.closed]
        estimate = self.available_bps()
        now = self._clock()
        if estimate is not None:
            self._peak_bps = self._peaks.add(now, estimate)
            if not self.congested:
                self._watch_congestion(estimate, now)
        available = estimate if self.congested else None
        self.last_available_bps = available
        demands = [self.demand(c, now) for c in consumers]
        loss = self.loss()
        keep_on = loss is None or loss < KEEP_ON_MAX_LOSS or self.probe_overshoot()
        proven = self.proven_bps() if available is not None else None
        before = self.allocator.levels()
        result = self.allocator.update(
            now, available, demands, self.profile, keep_on=keep_on, proven_bps=proven
        )
        after = self.allocator.levels()
        self.stepped_down = any(after.get(cid, level) < level for cid, level in before.items())
        self._demands = demands
        for consumer in consumers:
            allocation = result.get(consumer.id)
            if allocation is None or consumer.kind != "video":
                continue
            try:
                consumer.set_allowed_layer(
                    allocation.layer,
                    switched_off=allocation.switched_off,
                    reason=allocation.reason,
                )
            except Exception:  # one consumer's failure must not stop the others' allocation
                logger.exception("allocation of consumer %s failed", consumer.id)
        gone = set(self.last) - set(result)
        self.allocator.forget(gone)
        for cid in gone:
            self.priorities.pop(cid, None)
            self.switched_off_by_client.discard(cid)
        self.last = result
        if self.congested:
            self._watch_recovery(now)
        return result

    def _watch_recovery(self, now: float) -> None:
        loss = self.loss()
        if loss is None or loss >= CONGESTION_LOSS or self.probe_target() is not None:
            self._clear_since = None
        elif self._clear_since is None:
            self._clear_since = now
        elif now - self._clear_since >= CONGESTION_CLEAR_S:
            self.congested = False
            self._clear_since = self._lossy_since = None

    def _watch_congestion(self, estimate: int, now: float) -> None:
        loss = self.loss()
        if loss is not None and loss < CONGESTION_LOSS:
            self._lossy_since = None
            return
        if self._lossy_since is None:
            self._lossy_since = now
        # The peak is not the estimate when the loss began: behind a short link the
        # delay-based cut comes first and the loss shows a feedback later, and against the
        # cut estimate no drop would ever show (the link's both directions flooded, its
        # feedback then starved, and nothing was stepped down for seconds).
        sustained = now - self._lossy_since >= self.congestion_sustain_s or self.overused()
        self.congested = sustained and estimate < self._peak_bps * (1 - CONGESTION_DROP)

    def probe_target(self) -> int | None:
        """The downlink (bps) the next step up of a track the *estimate* holds back would
        need (everything allocated now, plus the cheapest such step, over the allocator's
        ``up_headroom``), None when the
        estimate holds nothing back: what to probe for before stepping up (as LiveKit's
        allocator probes for its next layer)."""
        spent = sum(a.bitrate_bps for a in self.last.values())
        steps = []
        for demand in self._demands:
            allocation = self.last.get(demand.consumer_id)
            if allocation is None or allocation.reason not in (REASON_NETWORK, REASON_HOLD):
                continue
            names = [layer.name for layer in demand.layers]
            if not names:
                continue
            level = names.index(allocation.layer) if allocation.layer in names else -1
            if level + 1 < len(names):
                steps.append(demand.layers[level + 1].cost - allocation.bitrate_bps)
        if not steps:
            return None
        # a step up is taken once the estimate covers it with the allocator's headroom to
        # spare: the probe must show that much, or it would succeed and change nothing
        headroom = self.allocator.up_headroom
        target = int((spent + max(0, min(steps))) / headroom)
        if any(a.reason == REASON_HOLD for a in self.last.values()):
            # What the estimate allows now is a different mix (one track up, another down
            # to make room) that the hold takes only once an estimate over it, with the
            # headroom, held: an estimate just under that, which nothing makes grow (a
            # subscriber's estimate grows only so far over what it is sent), kept both
            # tracks where they were for good (a kiosk's top layer for 15 s after a cap
            # was lifted, with a probe for the cheapest step already shown to fit).
            target = max(target, int(self.allocator.unheld_bps / headroom) + 1)
        return target

    def status(self) -> list[AllocationStatus]:
        """Per consumer: its priority, the layers wanted, allowed and sent, and why."""
        out = []
        for consumer in self._consumers():
            allocation = self.last.get(consumer.id)
            out.append(
                AllocationStatus(
                    consumer_id=consumer.id,
                    kind=consumer.kind,
                    priority=self.priority_of(consumer),
                    preferred_layer=consumer.preferred_layer,
                    allowed_layer=allocation.layer if allocation is not None else None,
                    current_layer=consumer.current_layer,
                    switched_off=consumer.switched_off,
                    reason=allocation.reason if allocation is not None else "not-allocated",
                    bitrate_bps=allocation.bitrate_bps if allocation is not None else 0,
                )
            )
        return out


def publisher_cap(
    producers: Iterable[Producer], allocations: Mapping[str, list[tuple[str, Allocation]]]
) -> int | None:
    """The most a publisher's senders may send in total (bps), or None for no cap.

    ``allocations``: by producer id, ``(subscriber, allocation)`` for each of its
    subscribers. Only a publisher whose every video track has a single layer is capped: the
    same stream goes to all its subscribers, so more than the most one subscriber can take
    of this publisher (its allocated tracks of it, plus what its allocation left unused, once)
    is wasted on the way, except that each track may always send what its best-served
    subscriber is allocated. A track with an unlimited subscriber (or none at all, or an
    in-process one) leaves the publisher uncapped; a simulcast publisher is steered by its
    layers instead.
    """
    video = [p for p in producers if p.kind == "video" and not p.closed]
    if not video:
        return None
    per_subscriber: dict[str, int] = {}
    best_per_track = 0
    for producer in video:
        if len(producer.layers) > 1:
            return None
        entries = allocations.get(producer.id, [])
        if not producer.consumers or len(entries) < len(producer.consumers):
            return None  # no subscriber, an in-process one, or one not allocated yet
        track_best = 0
        for subscriber, allocation in entries:
            if allocation.share_bps is None:
                return None
            unused = max(0, allocation.share_bps - allocation.bitrate_bps)
            per_subscriber[subscriber] = per_subscriber.get(subscriber, unused) + (
                allocation.bitrate_bps
            )
            track_best = max(track_best, allocation.bitrate_bps)
        best_per_track += track_best
    return max(MIN_PUBLISHER_CAP_BPS, best_per_track, *per_subscriber.values())


__all__ = [
    "AllocationStatus",
    "SubscriberAllocation",
    "layer_options",
    "measured_bitrate",
    "publisher_cap",
]
