"""Sharing one subscriber's downlink over its subscriptions: which layer each consumer gets.

Pure: no I/O, no clock of its own, no engine objects. The transport's allocation pass
(``edge_sfu.media.allocation``) feeds it the subscriber's estimate and a ``Demand`` per
consumer and applies the ``Allocation`` it returns.

The order, as Twilio's Network Bandwidth Profile API describes it and as LiveKit's
``StreamAllocator`` and mediasoup's ``Transport::DistributeAvailableOutgoingBitrate`` do:

1. audio first, always (it is cheap and a call without it is no call);
2. every video track its lowest layer, in order of priority (``high``, ``standard``,
   ``low``; the dominant speaker at least ``dominantSpeakerPriority``), then render size;
   a track whose lowest layer does not fit is **switched off** (unless the profile's
   ``trackSwitchOffMode`` is ``disabled``);
3. higher layers, one step at a time in turns, up to the layer the subscriber's render size
   asks for: in ``grid`` mode all tracks share the turns, in ``collaboration`` mode a
   priority tier is served before the next one, and in ``presentation`` mode a tier gets
   its lowest *and* its higher layers before the next tier gets anything, so high-priority
   tracks keep their quality while the others are switched off first.

Hysteresis (``Allocator``): a step down applies at once; a step up only to what the
estimate has covered for ``hold_s`` seconds, with ``up_headroom`` to spare (the allocation
is computed again with the smallest estimate of that window, times the headroom), so an
estimate that wavers around a layer's bitrate does not flip the layer back and forth; and,
for a subscriber that can be probed, a track above its lowest layer no further than a probe
has shown the link to carry.
Switching a track off is the one step down with leeway: while every track is on its
lowest layer or off, one that was on (on any layer) stays on, on its lowest, as long as the
estimate of the last ``KEEP_ON_SPAN_S`` covers ``KEEP_ON_FRACTION`` of what the lowest
layers cost (see there).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

Priority = Literal["low", "standard", "high"]
Mode = Literal["grid", "collaboration", "presentation"]
SwitchOffMode = Literal["detected", "predicted", "disabled"]
Control = Literal["auto", "manual"]

PRIORITIES: Final[tuple[Priority, ...]] = ("low", "standard", "high")
MODES: Final[tuple[Mode, ...]] = ("grid", "collaboration", "presentation")
SWITCH_OFF_MODES: Final[tuple[SwitchOffMode, ...]] = ("detected", "predicted", "disabled")
CONTROLS: Final[tuple[Control, ...]] = ("auto", "manual")
_RANK: Final = {name: rank for rank, name in enumerate(PRIORITIES)}

#: Assumed bitrate of an audio track (Opus voice) until a measurement says otherwise.
AUDIO_BITRATE_BPS: Final = 40_000
#: Assumed bitrate of a video layer by picture area (pixels, bps), smallest first, until the
#: layer's measured bitrate is known. Roughly what browsers send for VP8/H.264 camera video.
DEFAULT_VIDEO_BITRATES: Final = (
    (320 * 180, 150_000),
    (640 * 360, 500_000),
    (960 * 540, 900_000),
    (1280 * 720, 1_500_000),
)
#: Above 720p.
LARGE_VIDEO_BITRATE_BPS: Final = 2_500_000
#: A layer of unknown size (a single-layer publication, 0x0) before its bitrate is measured
#: (within a second or two): optimistic, so a call does not start with tracks switched off;
#: the measurement corrects it.
UNKNOWN_SIZE_BITRATE_BPS: Final = 300_000
#: While every video track is on its lowest layer (or off), a track that is on is switched
#: off only when the estimate falls under this fraction of what it and the tracks kept
#: before it cost, audio included. A congestion controller's decrease goes to 85 % of what
#: got through (``estimator.BETA``), so one decrease on a link that carries the lowest
#: layers with room to spare (a delay trend just over its threshold, from a busy receiver's
#: timing) would otherwise switch a track off at once, and the picture stayed off for
#: seconds until a probe found the room again. A link that really cannot carry the layers
#: loses packets, and the loss-based estimate then falls under this too.
KEEP_ON_FRACTION: Final = 0.7
#: ... but not while the subscriber loses this share of its packets or more: a link that
#: drops them is short, not noisy, and with every track kept on beside the retransmissions
#: its loss fed on itself (a capped page's cameras frozen for 15 s while the estimate sat
#: just above the leeway).
KEEP_ON_MAX_LOSS: Final = 0.1
#: ... and the estimate that counts for it is the highest of this many seconds: a dip for a
#: moment (the loss around a probe's overshoot, a feedback that came late) that switched a
#: track off cost its picture seconds, for switching it on again waits for the estimate to
#: hold, with headroom, for ``Allocator.hold_s``.
KEEP_ON_SPAN_S: Final = 1.0
#: An estimate or bitrate above this is treated as this (a client may claim anything).
MAX_BPS: Final = 10_000_000_000

# Why a consumer got what it got (``Allocation.reason``). Switch-off reasons are Twilio's
# ``RemoteVideoTrack.switchOffReason`` values.
REASON_AUDIO: Final = "audio"
REASON_WANTED: Final = "render-size"
REASON_NETWORK: Final = "network-congestion"
REASON_MAX_BITRATE: Final = "max-bandwidth-reached"
REASON_SUBSCRIBER: Final = "disabled-by-subscriber"
REASON_HOLD: Final = "stepping-up"
REASON_NO_LAYERS: Final = "no-layers"


def default_video_bitrate(width: int, height: int) -> int:
    """The bitrate assumed for a video layer of this size (0x0: unknown size)."""
    pixels = max(0, width) * max(0, height)
    if pixels == 0:
        return UNKNOWN_SIZE_BITRATE_BPS
    for area, bps in DEFAULT_VIDEO_BITRATES:
        if pixels <= area:
            return bps
    return LARGE_VIDEO_BITRATE_BPS


@dataclass(frozen=True)
class VideoBandwidthProfile:
    """A subscriber's ``bandwidthProfile.video`` (Twilio's names, snake case).

    ``max_subscription_bitrate`` (bps, None: no limit) caps the video it receives in total.
    ``track_switch_off_mode``: ``predicted`` switches a track off as soon as the budget
    (estimate or ``max_subscription_bitrate``) cannot carry its lowest layer; ``detected``
    only when the downlink *estimate* cannot (the configured maximum then lowers layers but
    switches nothing off); ``disabled`` never switches a track off for bandwidth.
    ``client_track_switch_off_control`` ``manual`` lets the subscriber switch tracks off and
    on itself; ``content_preferences_mode`` ``manual`` means the render sizes the subscriber
    sends are set by the application rather than measured from its video elements (the
    server treats both alike).
    """

    mode: Mode = "collaboration"
    max_subscription_bitrate: int | None = None
    dominant_speaker_priority: Priority = "standard"
    track_switch_off_mode: SwitchOffMode = "predicted"
    client_track_switch_off_control: Control = "auto"
    content_preferences_mode: Control = "auto"


@dataclass(frozen=True)
class LayerOption:
    """One layer a video consumer may get, with what it costs (bps): ``bitrate_bps`` as
    measured, ``declared_bps`` the most its publisher says it spends on it."""

    name: str
    width: int = 0
    height: int = 0
    bitrate_bps: int | None = None
    declared_bps: int | None = None

    @property
    def cost(self) -> int:
        """The measured bitrate, else the default for the layer's size or the declared
        maximum, whichever is less. A layer nobody took yet (a kiosk camera's smallest,
        declared at 50 kbit/s) must not look as dear as the table's smallest size (150):
        the allocation would switch a track off rather than give it that layer."""
        if self.bitrate_bps is not None and self.bitrate_bps > 0:
            return min(self.bitrate_bps, MAX_BPS)
        default = default_video_bitrate(self.width, self.height)
        declared = self.declared_bps
        if declared is not None and 0 < declared < default:
            return declared
        return default


@dataclass(frozen=True)
class Demand:
    """One consumer of the subscriber, as the allocation sees it.

    ``layers`` low to high. ``wanted`` is the layer its render size asks for (None: the top
    one). ``priority`` is the effective track priority (the subscriber's ``setPriority`` or
    else the publisher's). ``render_pixels`` orders tracks of one priority (bigger first;
    None: not said, counted as big). ``bitrate_bps`` is an audio track's measured bitrate.
    """

    consumer_id: str
    kind: str
    layers: tuple[LayerOption, ...] = ()
    wanted: str | None = None
    priority: Priority = "standard"
    dominant_speaker: bool = False
    render_pixels: int | None = None
    switched_off_by_subscriber: bool = False
    bitrate_bps: int | None = None


@dataclass(frozen=True)
class Allocation:
    """What one consumer may receive: ``layer`` (None when switched off or audio with no
    layer choice), whether it is ``switched_off``, why, and what it is expected to cost.

    ``share_bps`` is what this consumer could take at most: its cost plus what the
    allocation left unused (None: unlimited). A single-layer publisher is never told it may
    send more than the largest share among its subscribers.
    """

    layer: str | None
    switched_off: bool
    reason: str
    bitrate_bps: int = 0
    share_bps: int | None = None


def _budget(value: int | None) -> float:
    if value is None:
        return math.inf
    return float(min(max(0, value), MAX_BPS))


def effective_priority(demand: Demand, profile: VideoBandwidthProfile) -> int:
    """The rank a track is served at: the dominant speaker's is raised to the profile's
    ``dominant_speaker_priority`` (never lowered)."""
    rank = _RANK.get(demand.priority, _RANK["standard"])
    if demand.dominant_speaker:
        rank = max(rank, _RANK[profile.dominant_speaker_priority])
    return rank


def _wanted_index(demand: Demand) -> int:
    if demand.wanted is not None:
        for index, layer in enumerate(demand.layers):
            if layer.name == demand.wanted:
                return index
    return len(demand.layers) - 1


class _Plan:
    """Levels (-1: off, else an index into ``layers``) and the budgets left."""

    def __init__(self, budget: float, estimate_budget: float) -> None:
        self.remaining = budget
        self.estimate_remaining = estimate_budget
        self.level: dict[str, int] = {}

    def spend(self, amount: int) -> None:
        self.remaining -= amount
        self.estimate_remaining -= amount


def allocate(
    available_bps: int | None,
    demands: Iterable[Demand],
    profile: VideoBandwidthProfile | None = None,
) -> dict[str, Allocation]:
    """Share ``available_bps`` (None: unlimited) over ``demands``; one result per consumer."""
    profile = profile or VideoBandwidthProfile()
    demands = list(demands)
    estimate = _budget(available_bps)
    out: dict[str, Allocation] = {}
    for demand in demands:
        if demand.kind != "video":
            cost = min(max(0, demand.bitrate_bps or AUDIO_BITRATE_BPS), MAX_BPS)
            estimate -= cost
            out[demand.consumer_id] = Allocation(None, False, REASON_AUDIO, cost)
    estimate = max(0.0, estimate)
    cap = _budget(profile.max_subscription_bitrate)
    plan = _Plan(min(estimate, cap), estimate)
    videos = [d for d in demands if d.kind == "video"]
    for demand in videos:
        if demand.switched_off_by_subscriber or not demand.layers:
            plan.level[demand.consumer_id] = -1
    active = [d for d in videos if d.consumer_id not in plan.level]

    def key(d: Demand) -> tuple[int, float, str]:
        pixels = math.inf if d.render_pixels is None else d.render_pixels
        return (-effective_priority(d, profile), -pixels, d.consumer_id)

    active.sort(key=key)
    tiers: list[list[Demand]] = []
    for demand in active:
        rank = effective_priority(demand, profile)
        if tiers and effective_priority(tiers[-1][0], profile) == rank:
            tiers[-1].append(demand)
        else:
            tiers.append([demand])
    if profile.mode == "presentation":
        for tier in tiers:
            _give_lowest(plan, tier, profile)
            _step_up(plan, tier)
    else:
        _give_lowest(plan, active, profile)
        for group in [active] if profile.mode == "grid" else tiers:
            _step_up(plan, group)
    limiter = REASON_NETWORK if estimate <= cap else REASON_MAX_BITRATE
    leftover = None if math.isinf(plan.remaining) else max(0, int(plan.remaining))
    for demand in videos:
        out[demand.consumer_id] = _result(demand, plan, limiter, leftover)
    return out


def _give_lowest(plan: _Plan, group: Sequence[Demand], profile: VideoBandwidthProfile) -> None:
    for demand in group:
        cost = demand.layers[0].cost
        fits = cost <= plan.remaining
        if (
            fits
            or profile.track_switch_off_mode == "disabled"
            or (profile.track_switch_off_mode == "detected" and cost <= plan.estimate_remaining)
        ):
            plan.level[demand.consumer_id] = 0
            plan.spend(cost)
        else:
            plan.level[demand.consumer_id] = -1
    plan.remaining = max(0.0, plan.remaining)
    plan.estimate_remaining = max(0.0, plan.estimate_remaining)


def _step_up(plan: _Plan, group: Sequence[Demand]) -> None:
    # One layer per track per turn, in order, until no track can go further: the cost of a
    # step is the next layer's bitrate less the current one's (only one layer is sent).
    progressed = True
    while progressed:
        progressed = False
        for demand in group:
            level = plan.level[demand.consumer_id]
            if level < 0 or level >= _wanted_index(demand):
                continue
            step = demand.layers[level + 1].cost - demand.layers[level].cost
            if step <= plan.remaining:
                plan.level[demand.consumer_id] = level + 1
                plan.spend(max(0, step))
                progressed = True


def _result(demand: Demand, plan: _Plan, limiter: str, leftover: int | None) -> Allocation:
    level = plan.level[demand.consumer_id]
    if demand.switched_off_by_subscriber:
        return Allocation(None, True, REASON_SUBSCRIBER, 0, 0)
    if not demand.layers:
        return Allocation(None, True, REASON_NO_LAYERS, 0, 0)
    if level < 0:
        return Allocation(None, True, limiter, 0, leftover)
    layer = demand.layers[level]
    share = None if leftover is None else layer.cost + leftover
    if level >= _wanted_index(demand):
        return Allocation(layer.name, False, REASON_WANTED, layer.cost, share)
    return Allocation(layer.name, False, limiter, layer.cost, share)


@dataclass
class Allocator:
    """``allocate`` with hysteresis, for one subscriber: remembers each consumer's level.

    ``update`` is called with the time (monotonic seconds) whenever the estimate or the
    demands change, and at least every second or so: a step up that waits for its hold time
    happens at a later call.
    """

    hold_s: float = 2.0
    up_headroom: float = 0.9
    #: What the allocation the estimate allows now, before any hold, spends (bit/s): the
    #: held steps are taken once an estimate held over it, with the headroom, for
    #: ``hold_s`` (see ``SubscriberAllocation.probe_target``).
    unheld_bps: int = 0
    _history: deque[tuple[float, float]] = field(default_factory=deque)
    _levels: dict[str, int] = field(default_factory=dict)

    def update(
        self,
        now: float,
        available_bps: int | None,
        demands: Iterable[Demand],
        profile: VideoBandwidthProfile | None = None,
        *,
        keep_on: bool = True,
        proven_bps: int | None = None,
    ) -> dict[str, Allocation]:
        """The allocation now: a drop at once, a rise only as far as the estimate held.
        ``keep_on`` False: no leeway for switching off (``KEEP_ON_MAX_LOSS``).
        ``proven_bps``: what a probe showed the link carries (None: not known, the subscriber
        cannot be probed); while the estimate binds, no track steps up beyond it above its
        lowest layer (switching on is the hold's alone)."""
        demands = list(demands)
        budget = _budget(available_bps)
        self._remember(now, budget)
        down = allocate(available_bps, demands, profile)
        self.unheld_bps = sum(a.bitrate_bps for a in down.values())
        held = min(b for _, b in self._history)
        up_bps = None if math.isinf(held) else int(held * self.up_headroom)
        up = allocate(up_bps, demands, profile)
        # Above its lowest layer, a track steps up no further than probes proved. Switching
        # a track on is the hold's alone: a probe is 1.2 times its target, itself over the
        # headroom, and where the lowest layer fits a link with less to spare than that, no
        # probe could ever prove it (a capped subscriber's view of a camera stayed off for
        # the whole window, its switch-on fitting and every probe for it failing).
        proven = (
            None
            if up_bps is None or proven_bps is None
            else allocate(min(up_bps, max(0, proven_bps)), demands, profile)
        )
        levels: dict[str, int] = {}
        stepped = False
        for demand in demands:
            if demand.kind != "video":
                continue
            cid = demand.consumer_id
            target = _level(demand, down[cid])
            previous = self._levels.get(cid)
            if previous is None or target <= previous or demand.switched_off_by_subscriber:
                levels[cid] = target
            else:
                level = min(target, _level(demand, up[cid]))
                if proven is not None and level > 0:
                    level = min(level, max(0, _level(demand, proven[cid])))
                levels[cid] = max(previous, level)
                stepped = stepped or levels[cid] > previous
        if stepped and not self._affordable(demands, levels, up_bps, profile):
            # The steps up would not all fit what the estimate held: none is taken yet.
            for demand in demands:
                cid = demand.consumer_id
                previous = self._levels.get(cid)
                if cid in levels and previous is not None and levels[cid] > previous:
                    levels[cid] = previous
        self._keep_displaced(demands, levels, down, available_bps, profile)
        kept = self._keep_on(now, demands, levels, available_bps, profile) if keep_on else set()
        out: dict[str, Allocation] = {}
        for demand in demands:
            cid = demand.consumer_id
            now_alloc = down[cid]
            if demand.kind != "video" or levels[cid] == _level(demand, now_alloc):
                out[cid] = now_alloc
            elif cid in kept:
                layer = demand.layers[0]
                out[cid] = Allocation(
                    layer.name, False, REASON_NETWORK, layer.cost, now_alloc.share_bps
                )
            else:
                out[cid] = _held(demand, levels[cid], now_alloc)
        self._levels = levels
        return out

    def _keep_on(
        self,
        now: float,
        demands: list[Demand],
        levels: dict[str, int],
        available_bps: int | None,
        profile: VideoBandwidthProfile | None,
    ) -> set[str]:
        # Only when every video track is at its lowest layer or off (or steps up from it
        # now, see below): a track above it would have stepped down first, and in
        # ``presentation`` mode the others are switched off so that a high-priority track
        # keeps its layer, a promise this must not break.
        # Only for the estimate: ``max_subscription_bitrate`` is a limit the subscriber set.
        kept: set[str] = set()
        if available_bps is None:
            return kept
        videos = [
            d
            for d in demands
            if d.kind == "video" and d.layers and not d.switched_off_by_subscriber
        ]
        profile = profile or VideoBandwidthProfile()
        # A track cut from a higher layer straight to off has the leeway too: the cut that
        # took its step up back may leave its lowest layer just short (a kiosk's camera off
        # for a capped page for 5 s, where its lowest layer fitted).
        off = [
            d
            for d in videos
            if levels[d.consumer_id] < 0 and self._levels.get(d.consumer_id, -1) >= 0
        ]
        if not off:
            return kept
        # A track that steps up from its lowest layer in this very pass is set back to it
        # for the leeway (outside ``presentation``): its step would spend what switching the
        # other off gave up (a capped page's view of one camera off for 8 s while the other
        # camera took its middle layer with the room).
        above = [d for d in videos if levels[d.consumer_id] > 0]
        stepping = {d.consumer_id: levels[d.consumer_id] for d in above}
        if above and (
            profile.mode == "presentation"
            or any(self._levels.get(cid, -1) != 0 for cid in stepping)
        ):
            return kept
        for cid in stepping:
            levels[cid] = 0
        off.sort(key=lambda d: (-effective_priority(d, profile), d.consumer_id))
        recent = max(b for t, b in self._history if t >= now - KEEP_ON_SPAN_S)
        leeway = int(min(recent, MAX_BPS) / KEEP_ON_FRACTION)
        for demand in off:
            cid = demand.consumer_id
            levels[cid] = 0
            # ``_affordable`` holds ``max_subscription_bitrate`` as it is, with no leeway
            if self._affordable(demands, levels, leeway, profile):
                kept.add(cid)
            else:
                levels[cid] = -1
        if not kept:
            levels.update(stepping)  # nothing kept on: the steps up stand
        return kept

    def _keep_displaced(
        self,
        demands: list[Demand],
        levels: dict[str, int],
        down: Mapping[str, Allocation],
        available_bps: int | None,
        profile: VideoBandwidthProfile | None,
    ) -> None:
        # A track that the allocation lowers only to make room for another one's step up
        # (a priority change, a render size growing) keeps its level while that step up
        # waits for its hold: otherwise both would be off or low meanwhile, and for good
        # when the held estimate never covers the step. Highest priority first, one layer
        # at a time, only as far as the estimate now carries.
        held_back = any(
            d.kind == "video" and levels[d.consumer_id] < _level(d, down[d.consumer_id])
            for d in demands
        )
        if not held_back:
            return
        profile = profile or VideoBandwidthProfile()
        lowered = [
            d
            for d in demands
            if d.kind == "video"
            and not d.switched_off_by_subscriber
            and levels[d.consumer_id] < min(self._levels.get(d.consumer_id, -1), _wanted_index(d))
        ]
        lowered.sort(key=lambda d: -effective_priority(d, profile))
        for demand in lowered:
            cid = demand.consumer_id
            ceiling = min(self._levels[cid], _wanted_index(demand))
            while levels[cid] < ceiling:
                levels[cid] += 1
                if not self._affordable(demands, levels, available_bps, profile):
                    levels[cid] -= 1
                    break

    @staticmethod
    def _affordable(
        demands: list[Demand],
        levels: Mapping[str, int],
        budget: int | None,
        profile: VideoBandwidthProfile | None,
    ) -> bool:
        video = sum(
            d.layers[levels[d.consumer_id]].cost
            for d in demands
            if d.kind == "video" and levels[d.consumer_id] >= 0
        )
        audio = sum(
            min(max(0, d.bitrate_bps or AUDIO_BITRATE_BPS), MAX_BPS)
            for d in demands
            if d.kind != "video"
        )
        cap = _budget((profile or VideoBandwidthProfile()).max_subscription_bitrate)
        return video <= cap and video + audio <= _budget(budget)

    def _remember(self, now: float, budget: float) -> None:
        history = self._history
        history.append((now, budget))
        # keep the newest sample older than the window: it was in force at its start
        while len(history) > 1 and history[1][0] <= now - self.hold_s:
            history.popleft()

    def trust_estimate(self) -> None:
        """The estimate was just shown to hold (a probe got through at it): the next step up
        need not wait for its hold time."""
        self._history.clear()

    def forget(self, consumer_ids: Iterable[str]) -> None:
        """Drop the memory of consumers that are gone."""
        for cid in consumer_ids:
            self._levels.pop(cid, None)

    def levels(self) -> Mapping[str, int]:
        """Each consumer's level (-1 off, else the layer index), for tests and status."""
        return dict(self._levels)


def _level(demand: Demand, allocation: Allocation) -> int:
    if allocation.switched_off or allocation.layer is None:
        return -1
    for index, layer in enumerate(demand.layers):
        if layer.name == allocation.layer:
            return index
    return -1


def _held(demand: Demand, level: int, current: Allocation) -> Allocation:
    if level < 0:
        return Allocation(None, True, REASON_HOLD, 0, current.share_bps)
    layer = demand.layers[level]
    return Allocation(layer.name, False, REASON_HOLD, layer.cost, current.share_bps)
