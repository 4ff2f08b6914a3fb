"""Bandwidth estimation in the spirit of Google Congestion Control (draft-ietf-rmcat-gcc-02).

Pure: no I/O, no clock of its own; every call takes ``now`` (seconds, monotonic) and times
of the packets it is told about. Two estimators share the pieces:

* ``SendSideEstimator``: what the SFU may send to a participant (downlink). It remembers what
  it sent (transport-wide sequence number, send time, size) and learns from the
  participant's transport-cc feedback when each packet arrived: delay-based (inter-group
  delay variation, trendline filter, adaptive-threshold overuse detector, AIMD) and
  loss-based; the estimate is the smaller of the two. ``ProbeController`` says when to probe
  with padding before a step up, and probes that arrive at their rate lift the estimate.
* ``ReceiveSideEstimator``: what a publisher that cannot use transport-cc may send (its
  uplink), from arrival times against RTP timestamps of its packets: the same delay-based
  pieces, told to the publisher in REMB.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final

#: Packets sent within this of a group's first packet belong to the group (a frame burst).
GROUP_SPAN_S: Final = 0.005
#: A packet that arrived within this of the group's last one (seconds), sooner after it
#: than it was sent, belongs to that group too, as long as the group arrived within
#: ``BURST_MAX_S``: a receiver that did not read its socket for a while (its network thread
#: starved on a busy host, a wireless link's power save) reads what queued all at once, and
#: stamps it so. Split into the groups they were sent in, such a batch is a delay that grew
#: by the whole stall and then shrank group by group, which the trendline can take for a
#: queue building; as one group it is no delay at all (libwebrtc's ``BelongsToBurst``).
BURST_S: Final = 0.005
BURST_MAX_S: Final = 0.100
TRENDLINE_WINDOW: Final = 20
TRENDLINE_SMOOTHING: Final = 0.9
TRENDLINE_GAIN: Final = 4.0
OVERUSE_TIME_S: Final = 0.010
THRESHOLD_INITIAL_MS: Final = 12.5
K_UP: Final = 0.0087
K_DOWN: Final = 0.039
BETA: Final = 0.85
#: One overuse is answered by one decrease; while the detector keeps saying overuse, the next
#: comes after this long (seconds). The detector's verdict lags the queue it measures: once a
#: decrease made the sender shed load (an allocation switching a track off), what gets
#: through falls at once while the verdict still says overuse for a few hundred ms, and
#: cutting again to a fraction of that falling rate each time collapses the estimate far
#: below the link (libwebrtc likewise reduces at most once per round trip).
REDUCE_AGAIN_S: Final = 1.0
#: Loss fractions above which the loss-based estimate decreases, below which it may grow.
LOSS_HIGH: Final = 0.10
LOSS_LOW: Final = 0.02
#: The loss-based estimate stays at least this fraction of the acknowledged rate.
LOSS_FLOOR: Final = 0.7
#: For a send-side estimate, the acknowledged rate the floor is taken from is the highest of
#: this many seconds: once the allocation sheds a stream, less is sent and less gets through,
#: and the floor must not fall with it while the loss of the overshoot is still reported.
ACKED_PEAK_S: Final = 2.0
#: A loss fraction of fewer packets (sent since the last cut) does not move the estimate.
MIN_FRESH_PACKETS: Final = 10


class Usage(Enum):
    """What the overuse detector concluded from the delay trend."""

    NORMAL = "normal"
    OVERUSING = "overusing"
    UNDERUSING = "underusing"


@dataclass(frozen=True, slots=True)
class PacketResult:
    """One packet as the estimator sees it: sent when and how big, arrived when (or not)."""

    send_time: float
    size: int
    arrival: float | None
    probe: bool = False


class InterArrival:
    """Groups packets into bursts by send time (and what arrived as one burst, ``BURST_S``)
    and yields the deltas between groups."""

    __slots__ = ("_current", "_previous")

    def __init__(self) -> None:
        # (first send, last send, last arrival, size, first arrival) of the group being
        # filled / of the one before it
        self._current: list[float] | None = None
        self._previous: list[float] | None = None

    def add(self, send_time: float, arrival: float, size: int) -> tuple[float, float] | None:
        """(send delta, arrival delta) in seconds when a group completes, else None."""
        current = self._current
        if current is None:
            self._current = [send_time, send_time, arrival, float(size), arrival]
            return None
        if send_time < current[0]:
            return None  # reordered from an older group: ignored, as libwebrtc does
        if (
            send_time - current[0] <= GROUP_SPAN_S
            or arrival < current[2]
            or _arrived_in_burst(current, send_time, arrival)
        ):
            current[1] = max(current[1], send_time)
            current[2] = max(current[2], arrival)
            current[3] += size
            return None
        previous, self._previous = self._previous, current
        self._current = [send_time, send_time, arrival, float(size), arrival]
        if previous is None:
            return None
        return current[1] - previous[1], current[2] - previous[2]


def _arrived_in_burst(group: list[float], send_time: float, arrival: float) -> bool:
    # sent with the group's last packet; or came right after it, sooner than it was sent
    # after it, and the group is not yet a long one (``BURST_S``, ``BURST_MAX_S``)
    send_delta = send_time - group[1]
    if send_delta == 0:
        return True
    arrival_delta = arrival - group[2]
    return (
        arrival_delta - send_delta < 0
        and arrival_delta <= BURST_S
        and arrival - group[4] < BURST_MAX_S
    )


class TrendlineFilter:
    """Least-squares slope of the smoothed accumulated delay over the last groups."""

    __slots__ = ("_accumulated", "_first_arrival", "_samples", "_smoothed", "deltas", "trend")

    def __init__(self) -> None:
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._first_arrival: float | None = None
        self._samples: deque[tuple[float, float]] = deque(maxlen=TRENDLINE_WINDOW)
        self.deltas = 0
        self.trend = 0.0

    def update(self, send_delta: float, arrival_delta: float, arrival: float) -> float:
        """Add one group delta; returns the modified trend (ms, gain applied)."""
        if self._first_arrival is None:
            self._first_arrival = arrival
        self.deltas += 1
        self._accumulated += (arrival_delta - send_delta) * 1000.0
        self._smoothed = (
            TRENDLINE_SMOOTHING * self._smoothed + (1 - TRENDLINE_SMOOTHING) * self._accumulated
        )
        self._samples.append(((arrival - self._first_arrival) * 1000.0, self._smoothed))
        if len(self._samples) == TRENDLINE_WINDOW:
            slope = _slope(self._samples)
            if slope is not None:
                self.trend = slope
        return min(self.deltas, 60) * self.trend * TRENDLINE_GAIN


def _slope(points: Iterable[tuple[float, float]]) -> float | None:
    pts = list(points)
    n = len(pts)
    mean_x = sum(x for x, _ in pts) / n
    mean_y = sum(y for _, y in pts) / n
    num = sum((x - mean_x) * (y - mean_y) for x, y in pts)
    den = sum((x - mean_x) ** 2 for x, _ in pts)
    return None if den == 0 else num / den


class OveruseDetector:
    """Compares the trend with an adaptive threshold (it follows the trend, so a loaded
    link that is not getting worse is not called overused forever)."""

    __slots__ = ("_count", "_last_update", "_over_time", "_previous", "threshold", "usage")

    def __init__(self) -> None:
        self.threshold = THRESHOLD_INITIAL_MS
        self.usage = Usage.NORMAL
        self._over_time = -1.0
        self._count = 0
        self._previous = 0.0
        self._last_update: float | None = None

    def detect(self, trend: float, send_delta: float, deltas: int, now: float) -> Usage:
        """Classify ``trend`` (the trendline's modified trend, ms)."""
        if deltas < 2:
            return self.usage
        if trend > self.threshold:
            if self._over_time < 0:
                self._over_time = send_delta / 2
            else:
                self._over_time += send_delta
            self._count += 1
            if self._over_time > OVERUSE_TIME_S and self._count > 1 and trend >= self._previous:
                self._over_time = 0.0
                self._count = 0
                self.usage = Usage.OVERUSING
        elif trend < -self.threshold:
            self._over_time = -1.0
            self._count = 0
            self.usage = Usage.UNDERUSING
        else:
            self._over_time = -1.0
            self._count = 0
            self.usage = Usage.NORMAL
        self._previous = trend
        self._adapt(trend, now)
        return self.usage

    def _adapt(self, trend: float, now: float) -> None:
        last, self._last_update = self._last_update, now
        if last is None or abs(trend) > self.threshold + 15.0:
            return  # a spike (e.g. a route change) must not drag the threshold up
        k = K_DOWN if abs(trend) < self.threshold else K_UP
        dt_ms = min((now - last) * 1000.0, 100.0)
        self.threshold = min(
            max(self.threshold + k * (abs(trend) - self.threshold) * dt_ms, 6.0), 600.0
        )


class AimdRateControl:
    """Additive-increase near the last known capacity, multiplicative (8 %/s) far from it;
    multiplicative decrease to ``BETA`` x the acknowledged rate on overuse."""

    __slots__ = (
        "_capacity",
        "_capacity_var",
        "_cut_at",
        "_last_change",
        "bitrate",
        "max_bps",
        "min_bps",
        "rtt",
    )

    def __init__(self, start_bps: int, min_bps: int, max_bps: int) -> None:
        self.bitrate = float(start_bps)
        self.min_bps = min_bps
        self.max_bps = max_bps
        self.rtt = 0.1
        self._capacity: float | None = None  # averaged rate at past decreases
        self._capacity_var = 0.4
        self._last_change: float | None = None
        self._cut_at: float | None = None  # the decrease of the overuse under way

    def update(self, usage: Usage, acked_bps: float | None, now: float) -> float:
        """Apply one detector verdict at ``now``; returns the new rate (bit/s)."""
        last, self._last_change = self._last_change, now
        dt = 0.0 if last is None else min(now - last, 1.0)
        if usage is Usage.OVERUSING:
            cut_at = self._cut_at
            if cut_at is None or now - cut_at >= REDUCE_AGAIN_S:
                base = acked_bps if acked_bps is not None else self.bitrate
                decreased = BETA * base
                # A decrease that would not lower the rate is no decrease: what got through
                # lately was inflated (a bucket's burst at the start of a probe passes at
                # once), and the next verdict, while the queue still says overuse, decreases
                # from what the link now shows.
                if decreased < self.bitrate:
                    self.bitrate = decreased
                    self._cut_at = now
                    self._learn_capacity(base)
        else:
            self._cut_at = None
        if usage is Usage.NORMAL:
            increased = self.bitrate + self._increase(dt)
            if acked_bps is not None:
                # no increase far above what actually got through (a sender that sends
                # less than it may does not learn the link); no decrease for that either
                limit = 1.5 * acked_bps + 10_000
                if increased > limit:
                    increased = max(self.bitrate, limit)
            self.bitrate = increased
        # UNDERUSING: hold, the queues are draining
        self.bitrate = min(max(self.bitrate, self.min_bps), self.max_bps)
        return self.bitrate

    def _increase(self, dt: float) -> float:
        capacity = self._capacity
        if capacity is not None:
            std = math.sqrt(self._capacity_var * capacity)
            if self.bitrate > capacity + 3 * std:
                self._capacity = None  # the link got better: search again
            elif self.bitrate > capacity - 3 * std:
                # near the known capacity: about one packet per response time
                frame_bits = self.bitrate / 30.0
                packets = max(1.0, math.ceil(frame_bits / (1200 * 8)))
                response = self.rtt + 0.1
                return max(4000.0, frame_bits / packets / response) * dt
        return self.bitrate * (math.pow(1.08, dt) - 1.0)

    def _learn_capacity(self, acked: float) -> None:
        kbps = acked / 1000.0
        if self._capacity is None:
            self._capacity, self._capacity_var = acked, 0.4
            return
        avg = self._capacity / 1000.0
        if kbps < avg - 3 * math.sqrt(self._capacity_var * avg):
            self._capacity, self._capacity_var = acked, 0.4
            return
        avg = 0.95 * avg + 0.05 * kbps
        norm = max(avg, 1.0)
        var = 0.95 * self._capacity_var + 0.05 * (avg - kbps) ** 2 / norm
        self._capacity, self._capacity_var = avg * 1000.0, min(max(var, 0.4), 2.5)

    def set_estimate(self, bps: float) -> None:
        """Jump to ``bps`` (a probe got through at that rate)."""
        self.bitrate = min(max(bps, self.min_bps), self.max_bps)
        self._capacity = None

    def limit_to(self, bps: float, capacity_bps: float) -> None:
        """A probe filled the link at ``capacity_bps``: a rate above ``bps`` comes down to
        it, and grows from there as near a known capacity (slowly)."""
        if bps < self.bitrate:
            self.bitrate = max(bps, float(self.min_bps))
            self._learn_capacity(capacity_bps)


class LossBasedControl:
    """Loss above ``LOSS_HIGH`` cuts the rate by half the loss fraction (at most once per
    RTT + 300 ms); loss below ``LOSS_LOW`` lets it grow 8 % per second; in between holds."""

    __slots__ = ("_last_cut", "_last_update", "bitrate", "loss", "max_bps", "min_bps")

    def __init__(self, start_bps: int, min_bps: int, max_bps: int) -> None:
        self.bitrate = float(start_bps)
        self.min_bps = min_bps
        self.max_bps = max_bps
        self.loss = 0.0
        self._last_cut = -math.inf
        self._last_update: float | None = None

    def update(self, loss: float, rtt: float, now: float, sent_bps: float | None = None) -> bool:
        """Apply a loss fraction (0..1) measured over the last interval; True if it cut.

        ``sent_bps``: the rate that met the loss, when known; a cut starts from it if the
        estimate ran above it (it grows while the sender sends less)."""
        last, self._last_update = self._last_update, now
        dt = 0.0 if last is None else min(now - last, 1.0)
        self.loss = loss
        cut = False
        if loss > LOSS_HIGH:
            if now - self._last_cut >= rtt + 0.3:
                if sent_bps is not None:
                    self.bitrate = min(self.bitrate, sent_bps)
                self.bitrate *= 1.0 - 0.5 * loss
                self._last_cut = now
                cut = True
        elif loss < LOSS_LOW:
            self.bitrate *= math.pow(1.08, dt)
        self.bitrate = min(max(self.bitrate, self.min_bps), self.max_bps)
        return cut


class RateWindow:
    """Bytes over a sliding window of times: a throughput in bit/s."""

    __slots__ = ("_bytes", "_items", "_start", "window")

    def __init__(self, window: float = 0.5) -> None:
        self.window = window
        self._items: deque[tuple[float, int]] = deque()
        self._bytes = 0
        self._start = 0.0  # when the current run of counted bytes began

    def add(self, at: float, size: int) -> None:
        """Count ``size`` bytes at ``at`` (times need not be strictly ordered)."""
        if not self._items:
            self._start = at
        self._items.append((at, size))
        self._bytes += size
        self._expire(at)

    def _expire(self, now: float) -> None:
        items = self._items
        while items and items[0][0] < now - self.window:
            self._bytes -= items.popleft()[1]

    def rate(self, now: float) -> float | None:
        """bit/s over the window ending at ``now`` (over what has elapsed of it, at first);
        None until half a window has elapsed."""
        self._expire(now)
        span = min(self.window, now - self._start)
        if not self._items or span < self.window / 2:
            return None
        return self._bytes * 8 / span


class WindowMax:
    """The highest value added over a sliding window of times (a deque kept decreasing, so
    each value is added and dropped once)."""

    __slots__ = ("_items", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._items: deque[tuple[float, float]] = deque()

    def add(self, at: float, value: float) -> float:
        """Add ``value`` at ``at`` (times in order); returns the highest of the window."""
        items = self._items
        while items and items[-1][1] <= value:
            items.pop()
        items.append((at, value))
        while items[0][0] < at - self.window:
            items.popleft()
        return items[0][1]

    def clear(self) -> None:
        """Forget every value."""
        self._items.clear()


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """Send padding so that the total goes out at ``bitrate_bps`` until ``until``."""

    bitrate_bps: int
    until: float


#: A probe sends at most this times the estimate: a probe into a short link loses what
#: exceeds it, media included. One right after a probe that got through is no bolder: at
#: twice the estimate, such a probe into a link just over it cost a subscriber's
#: high-priority track most of a second's frames, and a lifted cap is found about as fast
#: in steps of 1.5 (the next probe follows a success after half a second).
PROBE_GAIN: Final = 1.5
#: A probe aims this much above what it is for: a probe that gets through lifts the estimate
#: to a little under the rate it showed, which must still cover the step it was for (as
#: LiveKit's allocator probes 20 % over its goal).
PROBE_OVERAGE: Final = 1.2
#: A probe whose packets arrived slower than this fraction of the rate they were sent at
#: filled the link: the rate they arrived at is what the link carries ...
PROBE_SATURATED: Final = 0.9
#: ... and the estimate goes no higher than this fraction of it (libwebrtc's target
#: utilisation of a probe's result), whatever it had grown to.
PROBE_UTILISATION: Final = 0.95
#: A probe is judged this long after its end (seconds) even if no feedback came for as long.
PROBE_UNREPORTED_S: Final = 1.0
#: No feedback for this long (seconds) while packets went out after the last one: the link
#: swallows everything (a queue flooded both ways drops the feedback too), and the estimate
#: is cut by ``FEEDBACK_TIMEOUT_CUT`` for each such span, as libwebrtc does when its
#: feedback times out. Feedback normally comes every 100 ms or so.
FEEDBACK_TIMEOUT_S: Final = 1.0
FEEDBACK_TIMEOUT_CUT: Final = 0.8
#: The longest wait between failed probes (seconds): a probe costs a capped link half a
#: second of a little loss, and a link that recovers is found again within this. Each failed
#: probe into a link its media nearly fill cost a picture there a short freeze (a kiosk's
#: room behind 400 kbit/s, before ``PROBE_RETRY_GAIN``: 5 s let five or six into a 30 s
#: window, 2-3 s frozen in all). Since failed probes go no faster than 1.25 times what the
#: link carried they cost far less (0-0.3 s of freeze each), and at 8 s the wait was the
#: largest part of finding a lifted cap: a kiosk's room, its cap lifted just after a
#: failure, sent its first probe 7 s later and was on the 640x360 layer only after 24 s.
PROBE_MAX_BACKOFF_S: Final = 6.0
#: A probe at most this fraction of the last one, which failed, in both its goal (what the
#: allocation wants) and its rate, asks a smaller question and need not wait out the
#: backoff, only ``PROBE_SMALLER_AFTER_S`` after that failure: once a track is switched off,
#: the probe to switch it on again is for far less than the one for the step up that failed
#: (its picture stayed off for the whole backoff, seconds, where a probe at 1.5 times the
#: estimate would have shown the room at once). The goal counts: the same step up asked
#: again, at a rate lower only because the failure cut the estimate, went a second after
#: the failure into a queue still full of it and cost the pictures behind a 400 kbit/s cap
#: a second's freeze.
PROBE_SMALLER: Final = 0.8
PROBE_SMALLER_AFTER_S: Final = 1.0
#: After a probe that filled the link (saturated: it showed what the link carries), the
#: probes until one gets through go at most this times that rate, not ``PROBE_GAIN`` times
#: an estimate that may have floated over it. A probe is the only way to find a lifted cap,
#: so they go on (backing off), but each one into a link still capped overflows it by what
#: it sends over the link: at 1.5 times an estimate 10 % over a 400 kbit/s link, a
#: half-second probe sent 12 kB into a 5 kB queue, and the media lost with it froze a
#: picture each time. At 1.25 times the link the excess fits such a queue; a lifted cap
#: costs one step more to climb (the ceiling goes with the first probe that gets through).
PROBE_RETRY_GAIN: Final = 1.25
#: A probe that could not send at its rate (its padding found no room between frames, or
#: the SFU's loop was late) but whose packets all arrived at the rate they went out failed
#: nothing: it showed the link carries what it sent, and is no reason to wait longer for
#: the next (``ProbeController.undersent``). Under load it is the commonest verdict of a
#: climb after a lifted cap (a probe at 2 Mbit/s that sent 1.36 Mbit/s, all of it arriving),
#: and counted a failure each one doubled the wait, seconds of a climb. Only this many in a
#: row: a loop that cannot pace a probe for good gets the backoff after all.
PROBE_UNDERSENT_RETRIES: Final = 2
#: A probe whose packets went out more than this times its rate (the pacer catching up
#: after a stall) is saturated if they arrived slower than 90 % of what went out; one that
#: went out at up to this over its rate, if slower than 90 % of its rate.
PROBE_OVERSENT: Final = 1.5
#: Loss measured up to this long (seconds) after a probe was found failed may be that
#: probe's overshoot, not the media's (``SendSideEstimator.probe_overshoot``): behind a
#: 400 kbit/s link, what a probe lost was still being reported 1.8 s after its verdict.
PROBE_LOSS_S: Final = 3.0
#: Congestion this soon (seconds) after a probe got through, with no probe running, says the
#: probe was not what it seemed: a shaper's bucket (tbf's, a home router's) left full by media
#: under the link passes a half-second probe well over the link whole (16 kB: a probe at up
#: to 1.6 times a 400 kbit/s link), and the step up it proved overflows the link ...
PROBE_CONFIRM_S: Final = 5.0
#: ... so from then on a probe lasts this long (seconds), until one that long gets through:
#: long enough to empty such a bucket and be judged on what the link carries after it (its
#: padding stops at the first overuse the feedback shows, so one into a full link costs
#: little more than a short one).
PROBE_LONG_S: Final = 2.0
#: A probe's packet whose one-way delay is this much (seconds) over the least of its probe's
#: waited in a queue on the way (``drain_rate``).
QUEUED_S: Final = 0.008


class ProbeController:
    """Decides when to probe before stepping up: the allocation wants more than the
    estimate, no probe is running, and the last failed one is long enough ago (the wait
    doubles after each failure, up to ``PROBE_MAX_BACKOFF_S``) or was for much more
    (``PROBE_SMALLER``). A success that congestion soon contradicts (``congested``) makes
    the probes after it long (``PROBE_LONG_S``) until a long one gets through."""

    __slots__ = (
        "_backoff",
        "_ceiling",
        "_confirm_until",
        "_failed_at",
        "_failed_goal",
        "_failed_rate",
        "_goal",
        "_last_long",
        "_next_allowed",
        "_rate",
        "_retry_ceiling",
        "_undersent_run",
        "duration",
        "failed",
        "long",
        "refuted",
        "succeeded",
        "undersent",
    )

    def __init__(self, duration: float = 0.5) -> None:
        self.duration = duration
        self._backoff = 2.0
        self._next_allowed = -math.inf
        self._rate = 0  # the rate of the last probe
        self._goal = 0  # ... and what it was for (the rate before the estimate's bound)
        self._failed_rate: int | None = None  # ... if it failed
        self._failed_goal = 0
        self._failed_at = -math.inf
        #: The highest rate a probe may have (``PROBE_RETRY_GAIN``) until one gets through.
        self._ceiling: int | None = None
        #: Probes that got through at their rate, and those that did not.
        self.succeeded = 0
        self.failed = 0
        #: Successes (and undersent probes' lifts) that congestion soon after took back
        #: (successes are counted in ``succeeded`` too).
        self.refuted = 0
        #: Probes that could not send at their rate, all of what they sent arriving
        #: (``PROBE_UNDERSENT_RETRIES``): neither a success nor a failure.
        self.undersent = 0
        self._undersent_run = 0
        #: An undersent probe's rate: the next goes no higher, until any verdict.
        self._retry_ceiling: int | None = None
        #: Whether probes last ``PROBE_LONG_S`` (a success was taken back).
        self.long = False
        self._last_long = False  # whether the last probe was long
        self._confirm_until = -math.inf

    def request(
        self, wanted_bps: int, estimate_bps: int, now: float, proven_bps: int | None = None
    ) -> ProbeRequest | None:
        """A probe towards ``wanted_bps`` (``PROBE_OVERAGE`` over it, at most
        ``PROBE_GAIN`` times the estimate), or None. None also when ``wanted_bps`` is
        covered: by ``proven_bps`` when given (what probes showed), else by the estimate."""
        if wanted_bps <= (estimate_bps if proven_bps is None else proven_bps):
            return None
        goal = int(wanted_bps * PROBE_OVERAGE)
        rate = min(goal, int(PROBE_GAIN * estimate_bps))
        if self._ceiling is not None:
            rate = min(rate, self._ceiling)
        if self._retry_ceiling is not None:
            rate = min(rate, self._retry_ceiling)
        if now < self._next_allowed:
            failed = self._failed_rate
            smaller = (
                failed is not None
                and rate <= PROBE_SMALLER * failed
                and goal <= PROBE_SMALLER * self._failed_goal
                and now >= self._failed_at + PROBE_SMALLER_AFTER_S
            )
            if not smaller:
                return None
        duration = PROBE_LONG_S if self.long else self.duration
        self._next_allowed = now + duration + 1.0
        self._rate, self._goal = rate, goal
        self._last_long = self.long
        return ProbeRequest(rate, now + duration)

    def result(
        self,
        succeeded: bool,
        now: float,
        contradicts: bool = False,
        carried_bps: float | None = None,
    ) -> None:
        """Tell how the last probe went: a failure backs off the next one. ``contradicts``:
        it failed with the link carrying less than a success before it showed, which is then
        taken back as congestion would take it back (``congested``) if it came less than
        ``PROBE_CONFIRM_S`` ago: under steady probing no congestion ever comes with no probe
        running, and every success a bucket let through went unanswered. ``carried_bps``:
        it filled the link, which carried that much; the probes after it go no faster than
        ``PROBE_RETRY_GAIN`` times that until one gets through."""
        if not succeeded and contradicts and now < self._confirm_until:
            self.refuted += 1
            self.long = True
        self._confirm_until = -math.inf
        self._undersent_run = 0
        self._retry_ceiling = None
        if succeeded:
            self.succeeded += 1
            self._ceiling = None
            self._backoff = 2.0
            self._next_allowed = now + 0.5
            self._failed_rate = None
            if self._last_long:
                self.long = False  # one long enough to empty a bucket got through
            self._confirm_until = now + PROBE_CONFIRM_S
        else:
            self.failed += 1
            self._failed_rate, self._failed_goal, self._failed_at = self._rate, self._goal, now
            if carried_bps is not None and carried_bps > 0:
                self._ceiling = int(PROBE_RETRY_GAIN * carried_bps)
            self._next_allowed = now + self._backoff
            self._backoff = min(self._backoff * 2, PROBE_MAX_BACKOFF_S)

    @property
    def may_be_undersent(self) -> bool:
        """Whether the last probe may be judged undersent: fewer than
        ``PROBE_UNDERSENT_RETRIES`` in a row so far (after that, one is a failure)."""
        return self._undersent_run < PROBE_UNDERSENT_RETRIES

    def undersent_result(self, now: float, raised: bool) -> None:
        """Tell that the last probe could not send at its rate, all of what it sent arriving
        (only while ``may_be_undersent``): the next may follow a second from now, at no
        higher a rate, with no longer backoff. ``raised``: what it showed lifted the
        estimate, which congestion soon after takes back as it would a success's."""
        self._undersent_run += 1
        self.undersent += 1
        self._next_allowed = now + 1.0
        # nor sooner by ``PROBE_SMALLER``'s exemption for a smaller question after a failure
        self._failed_at = now
        # the same question again, not a bolder one: the estimate it lifted would allow
        # one, into a link nothing showed had room for it
        rate = self._rate
        self._retry_ceiling = (
            rate if self._retry_ceiling is None else min(self._retry_ceiling, rate)
        )
        if raised:
            self._confirm_until = now + PROBE_CONFIRM_S

    def congested(self, now: float) -> None:
        """The link showed congestion (an overuse, a loss cut, a feedback timeout) with no
        probe running: a success less than ``PROBE_CONFIRM_S`` ago is taken back, and the
        probes after it are long."""
        if now < self._confirm_until:
            self._confirm_until = -math.inf
            self.refuted += 1
            self.long = True


class _DelayBased:
    """Inter-arrival groups -> trendline -> overuse detector -> AIMD, as one unit."""

    def __init__(self, start_bps: int, min_bps: int, max_bps: int) -> None:
        self.inter_arrival = InterArrival()
        self.trendline = TrendlineFilter()
        self.detector = OveruseDetector()
        self.aimd = AimdRateControl(start_bps, min_bps, max_bps)

    def add(self, send_time: float, arrival: float, size: int) -> None:
        deltas = self.inter_arrival.add(send_time, arrival, size)
        if deltas is not None:
            send_delta, arrival_delta = deltas
            trend = self.trendline.update(send_delta, arrival_delta, arrival)
            self.detector.detect(trend, send_delta, self.trendline.deltas, arrival)

    def update(self, acked_bps: float | None, now: float) -> float:
        return self.aimd.update(self.detector.usage, acked_bps, now)


class SendSideEstimator:
    """The downlink estimate of one transport, from transport-cc feedback and RTT.

    ``on_sent`` for every packet sent with a transport-wide sequence number,
    ``on_feedback`` with each feedback's (sequence, arrival) pairs; ``estimate_bps`` is
    min(delay-based, loss-based) between ``min_bps`` and ``max_bps``.
    """

    HISTORY: Final = 4096
    MASK: Final = HISTORY - 1

    def __init__(self, start_bps: int, min_bps: int, max_bps: int) -> None:
        self.min_bps = min_bps
        self.max_bps = max_bps
        self._delay = _DelayBased(start_bps, min_bps, max_bps)
        self._loss = LossBasedControl(start_bps, min_bps, max_bps)
        self._acked = RateWindow(0.5)
        # the most acknowledged (bit/s) over the last ACKED_PEAK_S
        self._acked_peaks = WindowMax(ACKED_PEAK_S)
        # a ring of the last ``HISTORY`` packets sent, by 16-bit sequence number (-1: free);
        # arrays, not a dict: this is written once per packet sent
        self._seqs = array("l", [-1]) * self.HISTORY
        self._times = array("d", [0.0]) * self.HISTORY
        self._sizes = array("l", [0]) * self.HISTORY
        self._probes = bytearray(self.HISTORY)
        self.probes = ProbeController()
        self.probe: ProbeRequest | None = None
        # (arrival, size) of what was sent while probing, as feedback reports it, and
        # (send time, size) of all of it, lost or not
        self._probe_arrivals: list[tuple[float, int]] = []
        self._probe_sends: list[tuple[float, int]] = []
        # (arrival, send time, size) of what of it arrived: the rate a queue drained at
        self._probe_packets: list[tuple[float, float, int]] = []
        # whether the running probe's padding stopped at an overuse (``end_probe``)
        self._probe_stopped = False
        self._probe_start = 0.0
        self._failed_probe_at = -math.inf
        # (rate, until): in a saturated probe's wake, overuse cuts no lower than the rate
        self._wake_floor = (0.0, -math.inf)
        #: How the last probe was judged, in words (for traces and support): its rate, what
        #: it sent and what got through, and why it failed if it did.
        self.last_probe = ""
        # what probes showed the link carries (bit/s), lowered with the estimate
        self._probed_bps = 0.0
        self.rtt = 0.1
        #: Loss fraction over the last measured interval.
        self.loss = 0.0
        self._lost = 0
        self._counted = 0
        # ... of those, the ones sent after the loss-based estimate was last cut
        self._fresh_lost = 0
        self._fresh_counted = 0
        self._cut_sent_by = -math.inf
        self._loss_since = -math.inf
        self._last_feedback = -math.inf  # when feedback last came
        self._last_send = -math.inf  # when a packet last went out
        self._last_timeout = -math.inf  # when the estimate was last cut for no feedback
        #: Times the feedback timed out (``FEEDBACK_TIMEOUT_S``).
        self.feedback_timeouts = 0
        #: When the delay-based detector last saw a queue building (-inf: never).
        self.last_overuse = -math.inf
        #: Packets the feedback reported on since the start, and of those the lost ones:
        #: loss over any interval a caller chooses (network quality), where ``loss`` is
        #: the estimator's own short window.
        self.reported_total = 0
        self.lost_total = 0
        self.estimate_bps = start_bps

    @property
    def usage(self) -> Usage:
        """The delay-based detector's last verdict."""
        return self._delay.detector.usage

    @property
    def acked_bps(self) -> float | None:
        """What got through lately (bit/s), or None before enough feedback."""
        return self._acked.rate(self._acked_now)

    _acked_now = 0.0

    @property
    def proven_bps(self) -> int:
        """The most a probe has shown the link to carry (bit/s), brought down with the
        estimate whenever that falls under it; 0 before any probe got through.

        A step up beyond it waits for a probe (``start_probe``), whatever the estimate says:
        a sender that sends less than the estimate lets it grow to 1.5 times what gets
        through (libwebrtc's rule), over a capped link, and a step up to such an estimate
        overflows the link (a kiosk's room behind 400 kbit/s: its middle layer taken at an
        estimate of 520k, 2.6 s of a picture frozen). LiveKit's allocator likewise commits a
        higher channel capacity only from a probe."""
        return int(self._probed_bps)

    def _lower_proven(self) -> None:
        if self._probed_bps > self.estimate_bps:
            self._probed_bps = float(self.estimate_bps)

    def on_sent(self, sequence: int, send_time: float, size: int, probe: bool = False) -> None:
        """Remember a sent packet (16-bit transport-wide sequence number)."""
        self.on_sent_many(send_time, [(sequence, size, probe)])

    def on_sent_many(
        self, send_time: float, packets: list[tuple[int, int, bool]], overhead: int = 0
    ) -> None:
        """Remember packets that left together: (sequence, size, probe?), each ``overhead``
        bytes larger on the link. ``on_sent`` for a batch, in one call (the hot path)."""
        if not packets:
            return
        mask, seqs, times, sizes, probes = (
            self.MASK,
            self._seqs,
            self._times,
            self._sizes,
            self._probes,
        )
        for sequence, size, probe in packets:
            i = sequence & mask
            seqs[i] = sequence
            times[i] = send_time
            sizes[i] = size + overhead
            probes[i] = probe
        self._last_send = send_time

    def set_rtt(self, rtt: float) -> None:
        """A round-trip time measured elsewhere (receiver reports)."""
        if 0 < rtt < 10:
            self.rtt = rtt
            self._delay.aimd.rtt = rtt

    def on_feedback(self, arrivals: Iterable[tuple[int, float | None]], now: float) -> int:
        """Learn from one feedback: (sequence, arrival seconds on the receiver's clock, or
        None when lost). Returns the new estimate (bit/s)."""
        results: list[PacketResult] = []
        seqs = self._seqs
        for seq, arrival in arrivals:
            i = seq & self.MASK
            if seqs[i] == seq:
                seqs[i] = -1  # each packet is learnt from once
                results.append(
                    PacketResult(self._times[i], self._sizes[i], arrival, bool(self._probes[i]))
                )
        self._last_feedback = now
        if not results:
            return self.estimate_bps
        return self.update(results, now)

    def update(self, results: list[PacketResult], now: float) -> int:
        """Learn from packet results (send order); returns the new estimate (bit/s)."""
        lost = fresh_lost = fresh = 0
        cut_sent_by = self._cut_sent_by
        probe = self.probe
        for r in sorted(results, key=lambda r: r.send_time):
            if r.send_time > cut_sent_by:
                fresh += 1
                fresh_lost += r.arrival is None
            # everything sent while probing counts, media and padding: the probe's rate is
            # the total's
            probing = probe is not None and self._probe_start <= r.send_time <= probe.until
            if probing:
                self._probe_sends.append((r.send_time, r.size))
            if r.arrival is None:
                lost += 1
                continue
            self._acked.add(r.arrival, r.size)
            self._acked_now = max(self._acked_now, r.arrival)
            self._delay.add(r.send_time, r.arrival, r.size)
            if probing:
                self._probe_arrivals.append((r.arrival, r.size))
                self._probe_packets.append((r.arrival, r.send_time, r.size))
        self.reported_total += len(results)
        self.lost_total += lost
        # loss over at least 20 packets or a second: one feedback at a low rate is too few
        self._lost += lost
        self._counted += len(results)
        self._fresh_lost += fresh_lost
        self._fresh_counted += fresh
        if self._counted >= 20 or now - self._loss_since >= 1.0:
            self.loss = self._lost / self._counted
            self._lost = self._counted = 0
            self._loss_since = now
            # Packets sent before the last cut went out at the rate that was cut: their loss
            # says nothing of the lower rate, and cutting for it again (a link's queue and
            # the feedback's delay report the overshoot for a while) would drive the
            # estimate far below the link, as one overshoot cut again and again.
            if self._fresh_counted >= MIN_FRESH_PACKETS:
                fresh_loss = self._fresh_lost / self._fresh_counted
                self._fresh_lost = self._fresh_counted = 0
                # as libwebrtc: loss acts on the current estimate, not on a value run ahead
                self._loss.bitrate = min(self._loss.bitrate, self.estimate_bps)
                if self._loss.update(fresh_loss, self.rtt, now):
                    self._cut_sent_by = now
                    if probe is None:
                        self.probes.congested(now)
        acked = self.acked_bps
        before = self._delay.aimd.bitrate
        delay_bps = self._delay.update(acked, now)
        if self.usage is Usage.OVERUSING:
            self.last_overuse = now
            # The queue a saturated probe built drains for a while after its verdict, and
            # the detector reads that drain as overuse, cutting from what arrives meanwhile
            # (the media alone, under the link): behind 400 kbit/s, 572k -> 382k (the
            # verdict) -> 220k, under what the tracks kept on needed, and a picture was off
            # for 6 s. The probe showed what the link carries; its wake cuts no lower than
            # ``BETA`` of that.
            floor, until = self._wake_floor
            aimd = self._delay.aimd
            if now < until:  # a cut stops at the floor; a rate already under it stays
                aimd.bitrate = max(aimd.bitrate, min(floor, before))
            if probe is None:
                self.probes.congested(now)
        self._check_probe(now)
        delay_bps = self._delay.aimd.bitrate  # as the probe's verdict left it
        if acked is not None:
            # what got through did fit: heavy loss from sending far too much must not drive
            # the estimate below it (it would take half a minute to climb back at 8 %/s).
            # The most that got through lately: behind a short link, the overshoot's loss is
            # reported for a while after a stream was switched off for it, and a floor under
            # what is sent now cut the estimate under the stream that stayed (its picture
            # then off for seconds until a probe found the room again).
            peak = self._acked_peaks.add(now, acked)
            self._loss.bitrate = max(self._loss.bitrate, LOSS_FLOOR * peak)
        loss_bps = self._loss.bitrate
        self.estimate_bps = int(min(max(min(delay_bps, loss_bps), self.min_bps), self.max_bps))
        self._lower_proven()
        return self.estimate_bps

    def start_probe(self, wanted_bps: int, now: float) -> ProbeRequest | None:
        """Ask for a probe towards ``wanted_bps``: the sender pads up to the request's rate
        until it ends (and marks those packets ``probe``), or None (no probe now)."""
        if self.probe is not None:
            return None
        request = self.probes.request(wanted_bps, self.estimate_bps, now, self.proven_bps)
        if request is not None:
            self.probe = request
            self._probe_arrivals = []
            self._probe_sends = []
            self._probe_packets = []
            self._probe_stopped = False
            self._probe_start = now
        return request

    def end_probe(self, now: float) -> None:
        """End the running probe now (its padding stopped at an overuse): it is judged as
        soon as what it sent had time to be reported, not when it was meant to end. A long
        probe (``PROBE_LONG_S``) judged at its end held an estimate a bucket had lifted over
        the link for 2.5 s after its padding stopped."""
        probe = self.probe
        if probe is not None and now < probe.until:
            self.probe = ProbeRequest(probe.bitrate_bps, now)
            self._probe_stopped = True

    def on_tick(self, now: float) -> None:
        """Time passes (called a few times a second, with or without feedback): a probe
        ``PROBE_UNREPORTED_S`` over, with no feedback for that long, is judged now (as
        failed, if nothing of it was reported). Feedback comes only for what was sent;
        once every stream to the participant is off, a probe's padding may be all that
        was, and a probe never judged would block every later one (the link could never
        be found again). Feedback that stops while packets go out cuts the estimate
        (``FEEDBACK_TIMEOUT_S``)."""
        probe = self.probe
        silent = now - self._last_feedback >= PROBE_UNREPORTED_S
        if probe is not None and silent and now >= probe.until + PROBE_UNREPORTED_S:
            self._check_probe(now)
        self._check_feedback_timeout(now)

    def _check_feedback_timeout(self, now: float) -> None:
        # Only once feedback has come (a participant that never sends it has no timeout),
        # only for packets sent since, and once per span.
        last = max(self._last_feedback, self._last_timeout)
        if (
            self._last_feedback == -math.inf
            or self._last_send <= self._last_feedback
            or now - last < FEEDBACK_TIMEOUT_S
        ):
            return
        self._last_timeout = now
        self.feedback_timeouts += 1
        if self.probe is None:
            self.probes.congested(now)
        # Everything since is as good as lost, on a queue that overflows: both estimates
        # come down, and the congestion is as sure as an overuse.
        self.loss = 1.0
        self.last_overuse = now
        self._cut_sent_by = now  # the loss of what went out before is this cut's
        aimd = self._delay.aimd
        aimd.bitrate = max(aimd.min_bps, aimd.bitrate * FEEDBACK_TIMEOUT_CUT)
        self._loss.bitrate = max(self._loss.min_bps, self._loss.bitrate * FEEDBACK_TIMEOUT_CUT)
        self._acked_peaks.clear()  # what got through before says nothing of the link now
        self.estimate_bps = int(
            min(max(min(aimd.bitrate, self._loss.bitrate), self.min_bps), self.max_bps)
        )
        self._lower_proven()

    def _check_probe(self, now: float) -> None:
        probe = self.probe
        if probe is None or now < probe.until + max(self.rtt, 0.1) * 2:
            return
        self.probe = None
        received = sustained_rate(self._probe_arrivals)
        sent = sustained_rate(self._probe_sends)
        drained = drain_rate(self._probe_packets)
        stopped = self._probe_stopped
        self._probe_arrivals = []
        self._probe_sends = []
        self._probe_packets = []
        self._probe_stopped = False
        proven_before = self._probed_bps
        if drained is not None and 0 < drained < received:
            # What left a queue on the way left it at the link's rate; the arrivals' second
            # half may still hold a bucket's burst, the more so for a probe whose padding
            # stopped early at an overuse (a capped page's estimate held at 1.25 times its
            # link for 4.5 s by the "carried" rate of such probes).
            received = drained
        # A probe whose packets arrived slower than they were sent filled the link: there
        # is no more room than what it carried, however close to its rate that came.
        # Counted a success, such a probe lifted nothing (0.95 of what arrived is about
        # the estimate it started from) yet cleared the way for the next at once. Slower
        # than its own rate, when more went out (the pacer catching up after the loop was
        # late): what arrived at the rate the probe asks about or faster filled nothing (a
        # probe at 621k that went out at 851k on a link with no cap arrived at 743k, and
        # was a "saturated" failure that cost a climb seconds). Not when far more went out
        # (``PROBE_OVERSENT``): such a burst may arrive inflated by a shaper's bucket.
        basis = sent if sent > PROBE_OVERSENT * probe.bitrate_bps else min(sent, probe.bitrate_bps)
        saturated = 0 < received < PROBE_SATURATED * basis
        # ... and one that never sent at its rate (its padding found no room between
        # frames) showed nothing of that rate: taken for a success, it let a bolder one
        # follow at once, into a link already full (``undersent`` below: it shows what it
        # sent, and the next goes at the same bounds).
        # A probe whose padding stopped at an overuse failed, whatever the detector says
        # by its verdict (a queue drains in a round trip once the padding stops).
        ok = (
            not stopped
            and received >= 0.8 * probe.bitrate_bps
            and sent >= PROBE_SATURATED * probe.bitrate_bps
            and self.usage is not Usage.OVERUSING
            and not saturated
        )
        # ... and one that went out slower than its rate, all of it arriving as fast as it
        # went, with no queue building, showed the link carries what it sent, nothing more
        # (``PROBE_UNDERSENT_RETRIES``)
        undersent = (
            not ok
            and not stopped
            and not saturated
            and received > 0
            and 0 < sent < PROBE_SATURATED * probe.bitrate_bps
            and self.usage is not Usage.OVERUSING
            and self.probes.may_be_undersent
        )
        proved_more = False
        if ok or undersent:
            lifted = min(received, probe.bitrate_bps, sent if undersent else math.inf)
            lifted *= PROBE_UTILISATION
            proved_more = lifted > self._probed_bps
            if lifted > self._delay.aimd.bitrate:
                self._delay.aimd.set_estimate(lifted)
            self._loss.bitrate = max(self._loss.bitrate, lifted)
            self._probed_bps = max(self._probed_bps, lifted)
        elif saturated:
            # What it kept arriving at is what the link carries. An estimate that grew
            # above that (a sender that sends less than it may grows it to 1.5 times what
            # gets through, and a bucket's burst at a probe's start inflates what got
            # through, so the overuse's decrease from it may not bring it under) comes down
            # to it now, as libwebrtc takes a saturated probe's result; one under it rises,
            # but no higher than the probe's own rate: a probe that went out far faster
            # than that (the pacer catching up after the SFU stalled: 3 Mbit/s for a probe
            # at 547k) measured how fast a bucket's burst passed, not the link (1.75 Mbit/s
            # "carried" by a 400 kbit/s link set an estimate of 1.66 Mbit/s, and the step
            # up it allowed flooded the link for seconds).
            carried = received * PROBE_UTILISATION
            raised = min(received, probe.bitrate_bps) * PROBE_UTILISATION
            self._wake_floor = (BETA * raised, now + PROBE_LOSS_S)
            self._probed_bps = max(self._probed_bps, raised)
            if raised > self._delay.aimd.bitrate:
                self._delay.aimd.set_estimate(raised)
                self._loss.bitrate = max(self._loss.bitrate, raised)
            self._delay.aimd.limit_to(carried, received)
        verdict = "ok" if ok else "undersent" if undersent else "failed"
        self.last_probe = (
            f"{verdict} at {probe.bitrate_bps // 1000}k: sent {sent / 1000:.0f}k"
            f" received {received / 1000:.0f}k"
            f"{'' if drained is None else f' (drained {drained / 1000:.0f}k)'}"
            f"{' stopped' if stopped else ''}{' saturated' if saturated else ''}"
            f"{' overusing' if self.usage is Usage.OVERUSING else ''}"
        )
        if undersent:
            self.probes.undersent_result(now, proved_more)
            return
        contradicts = False
        if not ok:
            self._failed_probe_at = now
            contradicts = saturated and received * PROBE_UTILISATION < proven_before
        self.probes.result(ok, now, contradicts, received if saturated else None)

    def probe_overshoot(self, now: float) -> bool:
        """Whether loss now may be our own probe's: one runs or awaits its verdict, or one
        was found failed less than ``PROBE_LOSS_S`` ago. A short link loses what a probe
        sends over its capacity, media and padding alike, and the feedback tells of it
        for a while after the verdict (the loss is measured over 20 packets or more)."""
        return self.probe is not None or now < self._failed_probe_at + PROBE_LOSS_S


def sustained_rate(arrivals: list[tuple[float, int]]) -> float:
    """The rate (bit/s) the second half of a probe's arrivals came in at (or of its sends,
    given send times), or 0 when too few arrived. A link's bucket lets a burst through at
    once after a quiet spell, so the start of a probe overstates what it carries; the second
    half shows the sustained rate. The first packet of that half starts the span (n packets
    over n - 1 gaps)."""
    if len(arrivals) < 4:
        return 0.0
    arrivals.sort()
    first, last = arrivals[0][0], arrivals[-1][0]
    middle = first + (last - first) / 2
    half = [(at, size) for at, size in arrivals if at >= middle]
    span = half[-1][0] - half[0][0]
    if len(half) < 2 or span < 0.05:
        return 0.0
    return sum(size for _, size in half[1:]) * 8 / span


def drain_rate(packets: list[tuple[float, float, int]]) -> float | None:
    """The rate (bit/s) a probe's packets left a queue on the way at, or None when too few
    waited in one. ``packets``: (arrival, send time, size), arrival on the receiver's clock.

    A packet whose one-way delay is ``QUEUED_S`` over the least of them waited behind
    others, and while a queue stands the link sends without pause: the longest run of such
    packets, in arrival order, arrived at what the link carries (packet-train dispersion).
    Unlike the arrivals' rate, it holds no burst that a shaper's bucket let through at once
    before its queue formed."""
    if len(packets) < 8:
        return None
    packets = sorted(packets)
    base = min(arrival - sent for arrival, sent, _ in packets)
    queued = [arrival - sent > base + QUEUED_S for arrival, sent, _ in packets]
    best = (0, 0)  # the longest run of queued packets: [start, end)
    start = 0
    for i, waited in enumerate([*queued, False]):
        if not waited:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = i + 1
    run = packets[best[0] : best[1]]
    if len(run) < 8:
        return None
    span = run[-1][0] - run[0][0]
    if span < 0.05:
        return None
    return sum(size for _, _, size in run[1:]) * 8 / span


class ReceiveSideEstimator:
    """The uplink estimate of a publisher without transport-cc, from its packets' arrival
    against their RTP timestamps (GCC's receive side, single stream): what to put in REMB.
    """

    def __init__(self, start_bps: int, min_bps: int, max_bps: int) -> None:
        self._delay = _DelayBased(start_bps, min_bps, max_bps)
        self._loss = LossBasedControl(max_bps, min_bps, max_bps)
        self._counts: tuple[int, int] | None = None
        self._incoming = RateWindow(1.0)
        self._valid = False
        self._last_update = -math.inf
        self.estimate_bps = start_bps

    @property
    def incoming_bps(self) -> float | None:
        """What arrives (bit/s), or None before a second of it."""
        return self._incoming.rate(self._now)

    _now = 0.0

    def on_packet(self, send_time: float, arrival: float, size: int) -> None:
        """One packet: ``send_time`` is its RTP timestamp in seconds (unwrapped by the
        caller, any origin), ``arrival`` a monotonic time in seconds."""
        self._now = arrival
        self._incoming.add(arrival, size)
        self._delay.add(send_time, arrival, size)
        if not self._valid:
            # as libwebrtc: the estimate starts from what arrives once that is measured
            incoming = self._incoming.rate(arrival)
            if incoming is None:
                return
            self._valid = True
            self._delay.aimd.set_estimate(incoming)
            self.estimate_bps = int(self._delay.aimd.bitrate)
        usage = self._delay.detector.usage
        # update on every overuse at once, otherwise a few times a second
        if usage is Usage.OVERUSING or arrival - self._last_update >= 0.2:
            self._last_update = arrival
            delay_bps = self._delay.update(self.incoming_bps, arrival)
            self.estimate_bps = int(min(delay_bps, self._loss.bitrate))

    def on_counts(self, lost: int, received: int, now: float) -> None:
        """The publisher's cumulative packets lost and received so far (receiver-report
        figures), about once a second. A drop-tail queue that is always full shows no delay
        variation, only loss: its share over the interval drives a loss-based estimate
        (as ``SendSideEstimator``'s, floored at 0.7 times what arrives), and the REMB says
        the smaller of the two, as a sender's own loss-based control would."""
        previous, self._counts = self._counts, (lost, received)
        if previous is None:
            return
        interval_lost = max(0, lost - previous[0])
        total = interval_lost + max(0, received - previous[1])
        if total < 10:
            return
        self._loss.bitrate = min(self._loss.bitrate, self.estimate_bps)
        self._loss.update(interval_lost / total, self._delay.aimd.rtt, now)
        incoming = self.incoming_bps
        if incoming is not None:
            self._loss.bitrate = max(self._loss.bitrate, LOSS_FLOOR * incoming)
        if self._valid:
            self.estimate_bps = int(min(self._delay.aimd.bitrate, self._loss.bitrate))

    @property
    def loss(self) -> float:
        """The loss fraction of the last interval ``on_counts`` measured."""
        return self._loss.loss

    def on_rtp(self, timestamp: int, clock_rate: int, arrival: float, size: int) -> None:
        """One RTP packet: its 32-bit timestamp is unwrapped here; packets older than the
        newest by more than half the timestamp space (reordered far back) are skipped."""
        if clock_rate <= 0:
            return
        last = self._last_ts
        if last is None:
            self._ts_base = timestamp
            unwrapped = timestamp
        else:
            unwrapped = last + (((timestamp - last + 0x80000000) & 0xFFFFFFFF) - 0x80000000)
        if last is None or unwrapped > last:
            self._last_ts = unwrapped
        self.on_packet((unwrapped - self._ts_base) / clock_rate, arrival, size)

    _last_ts: int | None = None
    _ts_base = 0

    def set_rtt(self, rtt: float) -> None:
        """Round-trip time to the publisher, which sets how fast the rate may grow."""
        if 0 < rtt < 10:
            self._delay.aimd.rtt = rtt
