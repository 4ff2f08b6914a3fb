"""The GCC-style estimators against simulated links: a sender that sends what the estimate
allows, a bottleneck with a queue, feedback every 100 ms through the transport-cc wire format."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from edge_sfu.media.estimator import (
    FEEDBACK_TIMEOUT_CUT,
    PROBE_CONFIRM_S,
    PROBE_GAIN,
    PROBE_LONG_S,
    PROBE_LOSS_S,
    PROBE_MAX_BACKOFF_S,
    PROBE_OVERAGE,
    PROBE_RETRY_GAIN,
    AimdRateControl,
    OveruseDetector,
    ProbeController,
    ProbeRequest,
    ReceiveSideEstimator,
    SendSideEstimator,
    TrendlineFilter,
    Usage,
    drain_rate,
    sustained_rate,
)
from edge_sfu.media.twcc import FeedbackBuilder, TransportFeedback

PACKET = 1200
MAX_BPS = 2_500_000


class Link:
    """A bottleneck of ``capacity`` bit/s (None: unlimited) with a FIFO queue (unbounded, or
    dropping what would wait more than ``queue_s``, as tbf does), 20 ms of propagation, and
    random loss."""

    def __init__(
        self,
        capacity: float | None,
        loss: float = 0.0,
        seed: int = 1,
        queue_s: float | None = None,
        bucket: int = 0,
    ) -> None:
        self.capacity = capacity
        self.loss = loss
        self.queue_s = queue_s
        self.free_at = 0.0
        self.rng = random.Random(seed)
        # tbf's bucket (bytes): after a quiet spell, this much passes at once over the rate
        self.bucket = bucket
        self.tokens = float(bucket)
        self.filled_at = 0.0

    def carry(self, now: float, size: int) -> float | None:
        if self.rng.random() < self.loss:
            return None
        if self.capacity is None:
            return now + 0.020
        if self.bucket:
            # tbf: a packet leaves once the bucket holds its size; the bucket fills at the
            # rate, up to its size, so only a quiet spell lets a burst through at once
            start = max(now, self.free_at)
            tokens = min(self.bucket, self.tokens + (start - self.filled_at) * self.capacity / 8)
            leave = start + max(0.0, size - tokens) * 8 / self.capacity
            if self.queue_s is not None and leave - now > self.queue_s:
                return None
            self.tokens = max(0.0, tokens - size)
            self.filled_at = self.free_at = leave
            return leave + 0.020
        start = max(now, self.free_at)
        if self.queue_s is not None and start - now > self.queue_s:
            return None
        self.free_at = start + size * 8 / self.capacity
        return self.free_at + 0.020


def run(
    estimator: SendSideEstimator,
    link: Link,
    seconds: float,
    *,
    wanted_bps: int | None = None,
    t0: float = 0.0,
    media_bps: int | Callable[[SendSideEstimator], int] | None = None,
) -> list[tuple[float, int]]:
    """Send at the estimate (or at ``media_bps`` when less: an app-limited sender; a
    callable: what an allocation sends given the estimator) for
    ``seconds``, with a probe's padding on top; returns (time, estimate) after each
    feedback."""
    builder = FeedbackBuilder()
    in_flight: list[tuple[int, float]] = []  # (seq, arrival) not yet fed back
    history: list[tuple[float, int]] = []
    seq = 0
    credit = 0.0
    now = t0
    step = 0.005
    next_feedback = t0 + 0.1
    while now < t0 + seconds:
        rate = estimator.estimate_bps
        if media_bps is not None:
            rate = min(rate, media_bps if isinstance(media_bps, int) else media_bps(estimator))
        probe = estimator.probe
        if wanted_bps is not None and probe is None:
            probe = estimator.start_probe(wanted_bps, now)
        if probe is not None and now < probe.until:
            rate = max(rate, probe.bitrate_bps)
        credit += rate * step / 8
        while credit >= PACKET:
            credit -= PACKET
            wire_seq = seq & 0xFFFF
            estimator.on_sent(wire_seq, now, PACKET, probe=probe is not None and now < probe.until)
            arrival = link.carry(now, PACKET)
            if arrival is not None:
                in_flight.append((wire_seq, arrival))
            seq += 1
        now += step
        if now >= next_feedback:
            next_feedback += 0.1
            due = [(s, a) for s, a in in_flight if a <= now]
            in_flight = [(s, a) for s, a in in_flight if a > now]
            for s, a in due:
                builder.on_packet(s, int(a * 1_000_000))
            for fb in builder.build(1, 2):
                parsed = TransportFeedback.parse(fb.serialize())
                estimator.on_feedback(
                    ((s, None if at is None else at / 1e6) for s, at in parsed.arrivals()), now
                )
            history.append((now, estimator.estimate_bps))
    return history


def test_a_link_capped_at_400_kbps_is_estimated_below_450_within_a_few_seconds() -> None:
    estimator = SendSideEstimator(1_000_000, 50_000, MAX_BPS)
    history = run(estimator, Link(400_000), 20.0)
    settled = [bps for t, bps in history if t >= 4.0]
    first_below = next(t for t, bps in history if bps < 450_000)
    assert first_below < 4.0
    assert max(settled) < 450_000
    # and it does not collapse either: the link is used
    assert sum(settled) / len(settled) > 200_000


def test_an_uncapped_link_grows_to_the_configured_maximum() -> None:
    estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
    history = run(estimator, Link(None), 40.0)
    assert history[-1][1] == MAX_BPS
    assert estimator.usage is not Usage.OVERUSING


def test_twenty_percent_loss_cuts_the_estimate() -> None:
    estimator = SendSideEstimator(1_000_000, 50_000, MAX_BPS)
    history = run(estimator, Link(None, loss=0.2), 5.0)
    assert history[-1][1] < 500_000


def test_one_percent_loss_does_not_cut() -> None:
    estimator = SendSideEstimator(1_000_000, 50_000, MAX_BPS)
    history = run(estimator, Link(None, loss=0.01), 5.0)
    assert history[-1][1] > 1_000_000


def test_one_overuse_is_one_decrease_not_one_per_falling_rate() -> None:
    # the allocation sheds a track after the first decrease: what gets through falls while
    # the detector still says overuse; cutting again to 0.85 of each falling figure would
    # collapse the estimate
    aimd = AimdRateControl(400_000, 50_000, MAX_BPS)
    assert aimd.update(Usage.OVERUSING, 376_000, 10.0) == pytest.approx(0.85 * 376_000)
    assert aimd.update(Usage.OVERUSING, 263_000, 10.1) == pytest.approx(0.85 * 376_000)
    assert aimd.update(Usage.OVERUSING, 170_000, 10.5) == pytest.approx(0.85 * 376_000)
    # an overuse that lasts on is cut again, a second later
    assert aimd.update(Usage.OVERUSING, 300_000, 11.0) == pytest.approx(0.85 * 300_000)
    # and a new overuse after the queue drained is a new decrease at once
    aimd.update(Usage.UNDERUSING, 250_000, 11.2)
    assert aimd.update(Usage.OVERUSING, 200_000, 11.3) == pytest.approx(0.85 * 200_000)


def test_a_probe_that_gets_through_lifts_the_estimate_faster_than_growth() -> None:
    def reach(wanted: int | None) -> float:
        estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
        history = run(estimator, Link(2_000_000), 20.0, wanted_bps=wanted)
        return next((t for t, bps in history if bps >= 1_000_000), 99.0)

    assert reach(1_200_000) < reach(None) - 3.0


def test_a_probe_into_a_capped_link_fails_and_backs_off() -> None:
    estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
    history = run(estimator, Link(400_000), 20.0, wanted_bps=1_500_000)
    assert max(bps for t, bps in history if t >= 6.0) < 500_000
    assert estimator.probes.failed >= 2 and estimator.probes.succeeded == 0
    controller = ProbeController()
    assert controller.request(1_000_000, 300_000, 0.0) is not None
    controller.result(False, 1.0)
    assert controller.request(1_000_000, 300_000, 2.5) is None
    assert controller.request(1_000_000, 300_000, 3.1) is not None
    assert controller.request(300_000, 300_000, 100.0) is None  # nothing to step up to
    # given what probes proved, that is what a step up must exceed to be probed for
    assert controller.request(300_000, 500_000, 150.0, proven_bps=300_000) is None
    asked = controller.request(400_000, 500_000, 160.0, proven_bps=300_000)
    assert asked is not None and asked.bitrate_bps == int(400_000 * PROBE_OVERAGE)
    # a target just above the estimate (the allocator's headroom) is probed for too, and
    # over it: the estimate a probe lifts is a little under the rate it showed
    probe = controller.request(1_000_000, 960_000, 200.0)
    assert probe is not None and probe.bitrate_bps == int(1_000_000 * PROBE_OVERAGE)
    # never over the gain
    probe = controller.request(10_000_000, 300_000, 300.0)
    assert probe is not None and probe.bitrate_bps == int(300_000 * PROBE_GAIN)


def test_a_probe_that_fills_the_link_brings_an_estimate_grown_above_it_down() -> None:
    # An app-limited subscriber's estimate grew to 600 kbit/s (1.5 times what its media
    # needed) on a 400 kbit/s link. A probe at 900 kbit/s meets a drop-tail queue that is
    # already full: the delay does not grow (no overuse), more than half is dropped, and
    # what arrives comes at the link's rate. That rate is what the link carries.
    estimator = SendSideEstimator(600_000, 50_000, MAX_BPS)
    probe = estimator.start_probe(2_000_000, 0.0)
    assert probe is not None and probe.bitrate_bps == 900_000
    gap = PACKET * 8 / 900_000
    sent = [(seq, seq * gap) for seq in range(int(probe.until / gap))]
    kept = {seq for seq, _ in sent if int(seq * 4 / 9) != int((seq - 1) * 4 / 9)}
    for seq, at in sent:
        estimator.on_sent(seq, at, PACKET, probe=True)
    for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
        estimator.on_feedback(
            [(seq, at + 0.02 if seq in kept else None) for seq, at in sent if t - 0.1 <= at < t],
            t,
        )
    # media after the probe, judged once its packets had time to be reported
    for seq in range(len(sent), len(sent) + 10):
        at = 0.6 + (seq - len(sent)) * 0.02
        estimator.on_sent(seq, at, PACKET)
        estimator.on_feedback([(seq, at + 0.02)], at + 0.05)
    assert estimator.probe is None and estimator.probes.failed == 1
    assert estimator.usage is not Usage.OVERUSING
    assert 0.85 * 400_000 < estimator.estimate_bps < 400_000  # without the probe: 420 kbit/s


def test_an_estimate_floating_over_a_capped_link_is_not_proven_until_a_probe_shows_it() -> None:
    # An app-limited subscriber on a 400 kbit/s link with tbf's 16 kB bucket, sent 280
    # kbit/s: its estimate grows over the link, and the link is proven only by a probe.
    estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
    link = Link(400_000, bucket=16_000, queue_s=0.05)
    history = run(estimator, link, 20.0, media_bps=280_000)
    assert max(bps for _, bps in history) > 400_000  # the estimate floats over the link
    assert estimator.proven_bps == 0  # and nothing says the link carries it
    # no estimate is an answer to a step up: a probe is asked for, though the estimate
    # covers what is wanted
    assert estimator.estimate_bps > 390_000
    assert estimator.start_probe(390_000, 20.0) is not None
    # probes for more than a link without a bucket fail and prove nothing over it (a full
    # bucket lets a short probe through whole: a limit of probing behind a shaper)
    capped = SendSideEstimator(300_000, 50_000, MAX_BPS)
    run(capped, Link(400_000, queue_s=0.1), 20.0, media_bps=280_000, wanted_bps=600_000)
    assert capped.probes.failed >= 1
    assert capped.estimate_bps > 400_000 > capped.proven_bps
    # a probe that gets through proves what it showed, and an estimate that falls under
    # that brings it down (a congestion's cut is what the link carries now)
    fast = SendSideEstimator(300_000, 50_000, MAX_BPS)
    run(fast, Link(2_000_000), 10.0, wanted_bps=800_000)
    assert fast.probes.succeeded >= 1 and fast.proven_bps >= 800_000
    run(fast, Link(300_000), 10.0, t0=10.0)
    assert fast.proven_bps <= fast.estimate_bps < 330_000


def test_a_probe_a_bucket_let_through_is_taken_back_and_the_next_ones_are_long() -> None:
    # tbf's 16 kB bucket, left full by media under the link, lets a half-second probe at
    # 1.3 times a 400 kbit/s link through whole. The allocation steps up on it to 430
    # kbit/s, which overflows the link: that congestion takes the success back, and from
    # then on probes last long enough to empty the bucket, and fail. Without it, the step
    # up was taken again after every fooled probe, an overflow every 7 s.
    estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
    stepped_up_at: list[float] = []
    clock = [0.0]

    def allocation(e: SendSideEstimator) -> int:
        clock[0] += 0.005
        if e.proven_bps >= 430_000:
            stepped_up_at.append(clock[0])
            return 430_000
        return 280_000

    link = Link(400_000, bucket=16_000, queue_s=0.1)
    run(estimator, link, 60.0, media_bps=allocation, wanted_bps=430_000)
    assert estimator.probes.refuted == 1 and estimator.probes.long
    assert stepped_up_at and max(stepped_up_at) < 10.0  # one overflow, at the start
    assert estimator.probes.failed >= 3  # the long probes kept asking, and failed
    assert estimator.proven_bps < 400_000


def test_long_probes_end_with_a_long_one_that_gets_through() -> None:
    controller = ProbeController()
    assert controller.request(500_000, 400_000, 0.0) is not None
    controller.result(True, 1.0)
    controller.congested(1.0 + PROBE_CONFIRM_S + 0.1)  # too late to say anything of it
    assert not controller.long and controller.refuted == 0
    first = controller.request(700_000, 500_000, 10.0)
    assert first is not None and first.until == 10.0 + controller.duration
    controller.result(True, 11.0)
    controller.congested(12.0)
    assert controller.long and controller.refuted == 1
    long = controller.request(700_000, 500_000, 20.0)
    assert long is not None and long.until == 20.0 + PROBE_LONG_S
    controller.result(False, 23.0)  # a long one that fails keeps them long
    assert controller.long
    again = controller.request(700_000, 500_000, 40.0)
    assert again is not None and again.until == 40.0 + PROBE_LONG_S
    controller.result(True, 43.0)  # one long enough to empty a bucket got through
    assert not controller.long
    short = controller.request(900_000, 700_000, 50.0)
    assert short is not None and short.until == 50.0 + controller.duration


def test_a_probe_whose_padding_stopped_is_judged_then_not_at_its_planned_end() -> None:
    estimator = SendSideEstimator(400_000, 50_000, MAX_BPS)
    estimator.probes.long = True
    probe = estimator.start_probe(800_000, 0.0)
    assert probe is not None and probe.until == PROBE_LONG_S
    gap = PACKET * 8 / probe.bitrate_bps
    sent = [(seq, seq * gap) for seq in range(int(0.3 / gap))]
    for seq, at in sent:
        estimator.on_sent(seq, at, PACKET, probe=True)
    estimator.end_probe(0.3)  # the padding stopped at an overuse
    # what it sent arrived at the link's 400 kbit/s: judged a few round trips later
    arrivals = [(seq, 0.02 + seq * PACKET * 8 / 400_000) for seq, _ in sent]
    estimator.on_feedback(arrivals, 0.8)
    assert estimator.probe is None and estimator.probes.failed == 1
    estimator.end_probe(1.0)  # no probe: nothing to end


def test_a_probe_stopped_at_an_overuse_after_a_bucket_burst_fails_at_the_links_rate() -> None:
    # An estimate a bucket-fooled probe lifted to 520k over a 400 kbit/s link; the next
    # probe, at 1.5 times it, first drains tbf's full 16 kB bucket (its packets arrive as
    # sent), then queues, and its padding stops at the overuse 0.45 s in. The second half of
    # its arrivals still holds part of the burst (440k): taken as what the link carries, it
    # held the estimate over the link until the next probe, seconds later.
    estimator = SendSideEstimator(520_000, 50_000, MAX_BPS)
    probe = estimator.start_probe(800_000, 0.0)
    assert probe is not None and probe.bitrate_bps == int(1.5 * 520_000)
    link = Link(400_000, bucket=16_000)
    gap = PACKET * 8 / probe.bitrate_bps
    arrivals = []
    for seq in range(int(0.45 / gap)):
        estimator.on_sent(seq, seq * gap, PACKET, probe=True)
        arrivals.append((seq, link.carry(seq * gap, PACKET)))
    burst = sustained_rate([(at, PACKET) for _, at in arrivals])
    assert burst > 430_000  # what the arrivals' second half says
    estimator.end_probe(0.45)
    estimator.on_feedback(arrivals, 0.9)
    assert estimator.probe is None and estimator.probes.failed == 1
    # the queue drained at the link's rate: the estimate comes down under it
    assert estimator.estimate_bps <= 400_000
    assert estimator.proven_bps <= 400_000


def test_a_failure_showing_less_than_a_recent_success_proved_takes_it_back() -> None:
    # Under steady probing no congestion comes with no probe running: the next probe's
    # failure, showing the link carries less than the success proved, refutes it.
    controller = ProbeController()
    controller.result(True, 10.0)
    controller.result(False, 11.0, contradicts=True)
    assert controller.long and controller.refuted == 1
    # a failure that shows more than the success proved (a climb that went on too far)
    # refutes nothing, nor one after PROBE_CONFIRM_S
    controller = ProbeController()
    controller.result(True, 10.0)
    controller.result(False, 11.0, contradicts=False)
    controller.result(True, 20.0)
    controller.result(False, 20.0 + PROBE_CONFIRM_S + 0.1, contradicts=True)
    assert not controller.long and controller.refuted == 0


def test_what_left_a_queue_left_it_at_the_links_rate() -> None:
    link = Link(400_000, bucket=16_000)
    packets = [(link.carry(i * 0.012, PACKET), i * 0.012, PACKET) for i in range(60)]
    assert drain_rate(packets) == pytest.approx(400_000, rel=0.05)
    # nothing waited (a link with room): no figure, nor from too few packets
    assert drain_rate([(t + 0.02, t, PACKET) for t in (i * 0.02 for i in range(60))]) is None
    assert drain_rate(packets[:7]) is None


def test_an_overuse_decrease_that_would_not_lower_the_rate_waits_for_the_next_verdict() -> None:
    # A probe's start passed at once through a bucket (tbf's burst): the last half second
    # acknowledged 585 kbit/s of a 400 kbit/s link. 0.85 of it is over the estimate: no
    # decrease. The queue still says overuse a moment later, when what gets through shows
    # the link: that is the decrease, not one a second later.
    aimd = AimdRateControl(474_000, 50_000, MAX_BPS)
    assert aimd.update(Usage.OVERUSING, 585_000, 10.0) == 474_000
    assert aimd.update(Usage.OVERUSING, 445_000, 10.2) == pytest.approx(0.85 * 445_000)
    # and that one decrease is the overuse's one (no second from a falling rate)
    assert aimd.update(Usage.OVERUSING, 300_000, 10.4) == pytest.approx(0.85 * 445_000)


def test_a_probe_is_judged_on_the_rate_it_kept_up_not_on_a_burst_at_its_start() -> None:
    # tbf lets its bucket through at once after a quiet spell: a probe's first packets
    # arrive as fast as they were sent, the rest at the link's rate. 800 kbit/s sent into a
    # 400 kbit/s link whose 16 kB bucket was full: the first 0.32 s arrive at 800 kbit/s.
    arrivals = []
    t = 0.0
    while t < 0.32:
        arrivals.append((t, 1200))
        t += 1200 * 8 / 800_000
    while t < 0.5 + 0.32:
        arrivals.append((t, 1200))
        t += 1200 * 8 / 400_000
    whole = sum(size for _, size in arrivals[1:]) * 8 / (arrivals[-1][0] - arrivals[0][0])
    assert whole > 500_000  # over the whole span, far more than the link carries
    assert sustained_rate(arrivals) == pytest.approx(400_000, rel=0.05)
    assert sustained_rate(arrivals[:3]) == 0.0  # too few to tell


def test_after_a_long_cap_a_lifted_link_is_found_again_within_seconds() -> None:
    # A subscriber capped for a while (its probes failing, their wait growing) whose link
    # then recovers: the failed probes' wait is bounded, so the estimate climbs back soon.
    estimator = SendSideEstimator(1_000_000, 50_000, MAX_BPS)
    link = Link(300_000)
    run(estimator, link, 90.0, wanted_bps=1_500_000)
    assert estimator.estimate_bps < 400_000 and estimator.probes.failed >= 5
    link.capacity = None
    history = run(estimator, link, 40.0, wanted_bps=1_500_000, t0=90.0)
    recovered = next(t for t, bps in history if bps >= 1_400_000)
    assert recovered - 90.0 < 15.0, recovered
    controller = ProbeController()
    for i in range(10):  # the wait doubles, and stops growing at its bound
        controller.result(False, float(i))
    assert controller.request(1_000_000, 300_000, 9.0 + PROBE_MAX_BACKOFF_S) is not None


def test_a_probe_for_much_less_than_the_one_that_failed_need_not_wait_out_the_backoff() -> None:
    # A probe for a step up failed; the allocation then switched a track off, and the probe
    # to switch it on again is for far less: it goes a second after the failure.
    controller = ProbeController()
    first = controller.request(2_000_000, 300_000, 0.0)
    assert first is not None and first.bitrate_bps == 450_000
    controller.result(False, 1.0)
    assert controller.request(2_000_000, 300_000, 1.5) is None  # the same question waits
    # ... also when the failure cut the estimate, so that its rate is lower (360k)
    assert controller.request(2_000_000, 240_000, 2.0) is None
    assert controller.request(290_000, 250_000, 1.5) is None  # a smaller one, a second
    smaller = controller.request(290_000, 250_000, 2.0)
    assert smaller is not None and smaller.bitrate_bps == int(290_000 * PROBE_OVERAGE)
    controller.result(False, 2.7)
    # not much smaller than that one: the backoff (now 4 s) holds
    assert controller.request(330_000, 280_000, 4.0) is None
    assert controller.request(330_000, 280_000, 6.8) is not None
    # a success forgets the failure
    controller.result(True, 8.0)
    assert controller.request(2_000_000, 300_000, 8.2) is None
    assert controller.request(2_000_000, 300_000, 8.5) is not None


def _probe_at_450(estimator: SendSideEstimator, sent_bps: int, arrived_bps: int) -> int:
    """Start a probe (450 kbit/s, for half a second, from an estimate of 300) whose packets
    go out at ``sent_bps`` and arrive at ``arrived_bps``, all reported at 0.6 s; returns how
    many were sent."""
    probe = estimator.start_probe(2_000_000, 0.0)
    assert probe is not None and probe.bitrate_bps == 450_000
    gap, arrive = PACKET * 8 / sent_bps, PACKET * 8 / arrived_bps
    count = int(probe.until / gap)
    for seq in range(count):
        estimator.on_sent(seq, seq * gap, PACKET, probe=True)
    estimator.on_feedback([(seq, 0.02 + seq * arrive) for seq in range(count)], 0.6)
    return count


def test_a_probe_that_filled_the_link_is_a_failure_though_most_of_it_arrived() -> None:
    # 450 kbit/s sent into a 400 kbit/s link: 89 % arrives, over the 80 % a success needs,
    # but it arrived slower than it was sent: the link is full, there is no more room. As
    # a success it lifted nothing and let the next probe go at once.
    estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
    count = _probe_at_450(estimator, sent_bps=450_000, arrived_bps=400_000)
    # media after the probe, at the estimate, judged once its packets had time to be reported
    for seq in range(count, count + 10):
        at = 0.6 + (seq - count) * 0.03
        estimator.on_sent(seq, at, PACKET)
        estimator.on_feedback([(seq, at + 0.02)], at + 0.05)
    assert estimator.probe is None
    assert estimator.probes.failed == 1 and estimator.probes.succeeded == 0
    # what it carried is the estimate now, up from where it was
    assert estimator.estimate_bps == pytest.approx(0.95 * 400_000, rel=0.03)
    # loss now and for a moment after may be the probe's own overshoot
    assert estimator.probe_overshoot(1.5)
    assert not estimator.probe_overshoot(0.8 + PROBE_LOSS_S)
    # and the next waits out the backoff
    assert estimator.start_probe(2_000_000, 1.6) is None
    assert estimator.start_probe(2_000_000, 3.0) is not None


def test_a_probe_sent_in_a_burst_lifts_the_estimate_no_higher_than_its_own_rate() -> None:
    # The SFU stalled and its pacer caught up: the probe's packets went out at 3 Mbit/s,
    # and a bucket's burst let them arrive at 1.75: "saturated" (it went out over 1.5 times
    # its rate, so what went out is the measure), but what it measured is the burst, not
    # the link; it asked about 450 kbit/s and shows no more than that.
    estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
    count = _probe_at_450(estimator, sent_bps=3_000_000, arrived_bps=1_750_000)
    for seq in range(count, count + 10):  # media after it, as in the test above
        at = 0.6 + (seq - count) * 0.03
        estimator.on_sent(seq, at, PACKET)
        estimator.on_feedback([(seq, at + 0.02)], at + 0.05)
    assert estimator.probe is None and estimator.probes.failed == 1
    assert "saturated" in estimator.last_probe
    assert estimator.estimate_bps <= 0.95 * 450_000 + 1


def test_a_probe_that_went_out_faster_than_its_rate_and_arrived_at_it_got_through() -> None:
    # The pacer caught up after a late loop: a probe at 450k went out at 620k, and a busy
    # receiver stamped its last packet 60 ms late, so it "arrived" at ~480k: under 90 % of
    # what went out, but over the rate the probe asked about. The link carried that rate;
    # as a "saturated" failure (a probe at 621k that went out at 851k and arrived at 743k,
    # on a link with no cap) it cost a climb after a lifted cap seconds of backoff.
    estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
    probe = estimator.start_probe(2_000_000, 0.0)
    assert probe is not None and probe.bitrate_bps == 450_000
    gap = PACKET * 8 / 620_000
    count = int(probe.until / gap)
    for seq in range(count):
        estimator.on_sent(seq, seq * gap, PACKET, probe=True)
    arrivals = [(seq, 0.02 + seq * gap) for seq in range(count)]
    arrivals[-1] = (count - 1, arrivals[-1][1] + 0.06)
    estimator.on_feedback(arrivals, 0.6)
    for seq in range(count, count + 10):  # media after it, judged as in the tests above
        at = 0.6 + (seq - count) * 0.03
        estimator.on_sent(seq, at, PACKET)
        estimator.on_feedback([(seq, at + 0.02)], at + 0.05)
    assert estimator.probe is None
    assert estimator.last_probe.startswith("ok at 450k"), estimator.last_probe
    assert estimator.probes.succeeded == 1 and estimator.probes.failed == 0
    assert estimator.estimate_bps >= 0.95 * 450_000 - 1


def test_a_probe_that_never_sent_at_its_rate_is_no_success_and_asks_again() -> None:
    # Its padding found little room between frames: 380 kbit/s went out of 450, all of it
    # arrived. That shows nothing of 450 kbit/s, though over 80 % of it arrived: a success
    # here let a bolder probe follow at once, into a link that was already full. Nor is it
    # a failure: the link carried all it was given. It shows 380k, and the same question
    # is asked again a second later, no bolder, with no longer wait.
    estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
    count = _probe_at_450(estimator, sent_bps=380_000, arrived_bps=380_000)
    for seq in range(count, count + 10):  # media after it, judged as in the tests above
        at = 0.6 + (seq - count) * 0.03
        estimator.on_sent(seq, at, PACKET)
        estimator.on_feedback([(seq, at + 0.02)], at + 0.05)
    assert estimator.probe is None
    assert estimator.probes.failed == 0 and estimator.probes.succeeded == 0
    assert estimator.probes.undersent == 1
    assert estimator.last_probe.startswith("undersent at 450k"), estimator.last_probe
    assert estimator.proven_bps == pytest.approx(0.95 * 380_000, rel=0.02)
    assert estimator.estimate_bps >= estimator.proven_bps
    assert estimator.start_probe(2_000_000, 1.3) is None  # a second, not half of one
    again = estimator.start_probe(2_000_000, 2.0)
    # the estimate it lifted would allow 1.5 times 361k: no, the same 450k
    assert again is not None and again.bitrate_bps == 450_000


def test_a_probe_whose_sends_cannot_be_measured_is_no_undersent_one() -> None:
    # All its packets left in one burst (the loop stalled for the whole probe): no rate of
    # sending can be told, so nothing says the link carried what it was given.
    estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
    probe = estimator.start_probe(2_000_000, 0.0)
    assert probe is not None
    for seq in range(20):
        estimator.on_sent(seq, 0.45 + seq * 0.0001, PACKET, probe=True)
    estimator.on_feedback([(seq, 0.47 + seq * 0.01) for seq in range(20)], 0.7)
    estimator.on_tick(2.0)
    assert estimator.probe is None
    assert estimator.probes.undersent == 0 and estimator.probes.failed == 1


def test_a_probe_that_can_never_send_at_its_rate_is_a_failure_after_two_tries() -> None:
    # A loop that cannot pace a probe at all gets the backoff after all.
    estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
    t = 0.0
    for _ in range(3):
        probe = estimator.start_probe(2_000_000, t)
        assert probe is not None and probe.bitrate_bps == 450_000
        gap = PACKET * 8 / 300_000  # 300k of 450k goes out, all of it arrives
        base = 1000 * int(t)
        count = int((probe.until - t) / gap)
        for n in range(count):
            estimator.on_sent((base + n) & 0xFFFF, t + n * gap, PACKET, probe=True)
        estimator.on_feedback(
            [((base + n) & 0xFFFF, t + 0.02 + n * gap) for n in range(count)], t + 0.6
        )
        estimator.on_tick(t + 2.0)  # judged; an undersent one is asked again a second later
        assert estimator.probe is None
        t += 3.0
    assert estimator.probes.undersent == 2 and estimator.probes.failed == 1
    assert estimator.last_probe.startswith("failed at 450k"), estimator.last_probe
    assert estimator.start_probe(2_000_000, t + 0.5) is None  # the backoff (2 s) holds
    assert estimator.start_probe(2_000_000, t + 1.0) is not None


def test_after_an_undersent_probe_no_smaller_one_goes_within_the_second() -> None:
    # A failure on record lets a probe for much less go a second after it
    # (``PROBE_SMALLER``); after an undersent one, that second counts again.
    controller = ProbeController()
    first = controller.request(2_000_000, 1_000_000, 0.0)
    assert first is not None and first.bitrate_bps == 1_500_000
    controller.result(False, 0.7)  # backoff: 2 s
    smaller = controller.request(900_000, 700_000, 1.8)
    assert smaller is not None  # for far less than the failed one: a second after it
    controller.undersent_result(2.5, raised=False)
    assert controller.request(700_000, 500_000, 2.55) is None
    assert controller.request(700_000, 500_000, 3.0) is None
    again = controller.request(700_000, 500_000, 3.6)
    assert again is not None and again.bitrate_bps <= smaller.bitrate_bps


def test_an_undersent_probes_ceiling_holds_until_the_next_verdict() -> None:
    # The retry asks the same question, no bolder; once any probe is judged, a step up for
    # far more is not held to the small one's rate.
    controller = ProbeController()
    small = controller.request(300_000, 250_000, 0.0)
    assert small is not None and small.bitrate_bps == 360_000
    controller.undersent_result(0.7, raised=True)
    # the estimate it lifted is higher, and the allocation wants a little more now
    retry = controller.request(400_000, 600_000, 1.8, proven_bps=342_000)
    assert retry is not None and retry.bitrate_bps == 360_000
    controller.result(False, 2.5)  # (a failure that showed no rate: no ceiling of its own)
    bigger = controller.request(2_000_000, 1_000_000, 4.6)
    assert bigger is not None and bigger.bitrate_bps == 1_500_000


class StalledReader(Link):
    """A fast link into a receiver that reads its socket late: every ``period`` seconds it
    does not read for ``stall`` seconds, then reads what queued all at once, stamping each
    packet ``READ_S`` after the one before (a starved network thread on a busy host)."""

    READ_S = 0.00005

    def __init__(self, period: float = 0.3, stall: float = 0.06) -> None:
        super().__init__(None)
        self.period = period
        self.stall = stall
        self.read = 0.0  # when the last packet was read

    def carry(self, now: float, size: int) -> float | None:
        arrival = now + 0.020
        into = arrival % self.period
        if into < self.stall:
            arrival += self.stall - into
        self.read = max(arrival, self.read + self.READ_S)
        return self.read


def test_a_receiver_that_reads_late_in_batches_is_no_queue() -> None:
    # What queued while it did not read arrives as one burst: one group, not a delay that
    # grew by the whole stall and shrank again group by group.
    estimator = SendSideEstimator(1_000_000, 50_000, MAX_BPS)
    history = run(estimator, StalledReader(), 20.0)
    assert estimator.last_overuse == -math.inf  # never saw a queue
    assert min(bps for _, bps in history) >= 1_000_000
    assert history[-1][1] == MAX_BPS


def test_a_growing_queue_is_overuse_and_a_steady_one_is_not() -> None:
    trend, detector = TrendlineFilter(), OveruseDetector()
    usage = Usage.NORMAL
    for i in range(60):  # each 10 ms group arrives 2 ms later than the last
        t = i * 0.010
        value = trend.update(0.010, 0.012, t + 0.002 * i)
        usage = detector.detect(value, 0.010, trend.deltas, t)
    assert usage is Usage.OVERUSING
    trend, detector = TrendlineFilter(), OveruseDetector()
    for i in range(60):
        value = trend.update(0.010, 0.010, i * 0.010)
        usage = detector.detect(value, 0.010, trend.deltas, i * 0.010)
    assert usage is Usage.NORMAL


def _publish(estimator: ReceiveSideEstimator, rate: float, capacity: float, seconds: float) -> None:
    """A publisher at ``rate`` through a ``capacity`` bottleneck, 30 frames/s."""
    link = Link(capacity)
    for frame in range(int(seconds * 30)):
        t = frame / 30
        size = int(rate / 30 / 8)
        while size > 0:
            part = min(size, PACKET)
            size -= part
            arrival = link.carry(t, part)
            assert arrival is not None
            estimator.on_packet(t, arrival, part)


def test_the_receive_side_estimate_falls_below_a_capped_uplink() -> None:
    estimator = ReceiveSideEstimator(2_500_000, 50_000, MAX_BPS)
    _publish(estimator, 1_000_000, 400_000, 5.0)
    assert estimator.estimate_bps < 450_000


def test_the_receive_side_estimate_holds_on_a_fast_uplink() -> None:
    estimator = ReceiveSideEstimator(2_500_000, 50_000, MAX_BPS)
    _publish(estimator, 1_000_000, 10_000_000, 5.0)
    assert estimator.estimate_bps >= 1_000_000


class _Steady:
    """Sends 1200-byte packets at about 1 Mbit/s whatever the estimate (one every 10 ms)
    through a ``Link``, feedback every 100 ms."""

    def __init__(self, estimator: SendSideEstimator) -> None:
        self.estimator = estimator
        self.builder = FeedbackBuilder()
        self.seq = 0
        self.t = 0.0

    def send(self, seconds: float, link: Link) -> None:
        for _ in range(round(seconds / 0.1)):
            for _ in range(10):
                self.estimator.on_sent(self.seq & 0xFFFF, self.t, PACKET)
                arrival = link.carry(self.t, PACKET)
                if arrival is not None:
                    self.builder.on_packet(self.seq & 0xFFFF, int(arrival * 1e6))
                self.seq += 1
                self.t += 0.01
            for fb in self.builder.build(1, 2):
                self.estimator.on_feedback(
                    ((s, None if a is None else a / 1e6) for s, a in fb.arrivals()), self.t + 0.05
                )


def test_heavy_loss_from_flooding_does_not_cut_below_what_gets_through() -> None:
    # a sender that keeps sending 1 Mbit/s into a 400 kbit/s link whatever the estimate
    estimator = SendSideEstimator(1_000_000, 50_000, MAX_BPS)
    _Steady(estimator).send(10.0, Link(None, loss=0.6))
    acked = estimator.acked_bps
    assert acked is not None and 300_000 < acked < 500_000
    assert estimator.loss > 0.4
    assert 0.6 * acked < estimator.estimate_bps < acked


def test_the_receive_side_estimate_follows_loss_a_full_queue_shows_no_delay_for() -> None:
    estimator = ReceiveSideEstimator(2_500_000, 50_000, MAX_BPS)
    _publish(estimator, 1_000_000, 10_000_000, 2.0)  # fast: no loss, estimate from arrivals
    before = estimator.estimate_bps
    estimator.on_counts(0, 100, 2.0)
    estimator.on_counts(60, 140, 3.0)  # 60 % of the last second's packets lost
    assert estimator.loss == 0.6
    assert estimator.estimate_bps < 0.75 * before
    estimator.on_counts(60, 340, 4.0)  # none lost since: no further cut
    assert estimator.estimate_bps >= 0.7 * 1_000_000 * 0.9


def test_the_overshoot_reported_after_a_stream_is_shed_does_not_cut_under_what_got_through() -> (
    None
):
    # 1 Mbit/s gets through; then 60 % of it is reported lost (the overshoot of a short
    # link, reported after the stream it was for was switched off): the floor is the most
    # that got through lately, not the little that gets through now. Once that is long
    # past, the floor follows what gets through.
    estimator = SendSideEstimator(1_000_000, 50_000, MAX_BPS)
    sender = _Steady(estimator)
    sender.send(2.0, Link(None))  # all through
    peak = estimator.acked_bps
    assert peak is not None and peak > 900_000
    sender.send(1.2, Link(None, loss=0.6, seed=3))  # the overshoot's loss, as reported
    assert estimator.estimate_bps >= 0.7 * peak * 0.95
    sender.send(3.0, Link(None, loss=0.6, seed=4))  # the link really lost that much
    acked = estimator.acked_bps
    assert acked is not None and estimator.estimate_bps < 0.7 * peak


def test_feedback_that_stops_while_packets_go_out_cuts_the_estimate() -> None:
    # A link flooded both ways drops the subscriber's feedback too: with none for a second
    # while packets went out, everything since is as good as lost.
    estimator = SendSideEstimator(1_000_000, 50_000, MAX_BPS)
    seq = 0
    for i in range(20):  # 20 ms apart, reported at once
        estimator.on_sent(seq, i * 0.02, PACKET)
        estimator.on_feedback([(seq, i * 0.02 + 0.01)], i * 0.02 + 0.02)
        seq += 1
    before = estimator.estimate_bps
    estimator.on_tick(1.0)  # nothing sent since the last feedback: no timeout
    assert estimator.estimate_bps == before and estimator.feedback_timeouts == 0
    for i in range(50):  # sent, never reported
        estimator.on_sent(seq, 0.4 + i * 0.02, PACKET)
        seq += 1
    estimator.on_tick(1.3)  # under a second since the last feedback
    assert estimator.feedback_timeouts == 0
    estimator.on_tick(1.45)
    assert estimator.feedback_timeouts == 1
    assert estimator.estimate_bps == int(before * FEEDBACK_TIMEOUT_CUT)
    assert estimator.loss == 1.0 and estimator.last_overuse == 1.45
    estimator.on_tick(2.0)  # once per span
    assert estimator.feedback_timeouts == 1
    estimator.on_tick(2.5)
    assert estimator.feedback_timeouts == 2
    assert estimator.estimate_bps == int(before * FEEDBACK_TIMEOUT_CUT**2)
    # a participant that never sent feedback has no timeout
    silent = SendSideEstimator(1_000_000, 50_000, MAX_BPS)
    silent.on_sent(0, 0.0, PACKET)
    silent.on_tick(5.0)
    assert silent.feedback_timeouts == 0 and silent.estimate_bps == 1_000_000


def test_the_drain_of_a_saturated_probes_queue_cuts_no_lower_than_its_wake_floor() -> None:
    # 450 kbit/s into a 400 kbit/s link: the estimate goes to what it carried (380k). The
    # queue it built then drains while only the media (200 kbit/s) is sent: the detector
    # reads overuse, and each cut from the acked rate (the media's) went far under the link.
    estimator = SendSideEstimator(300_000, 50_000, MAX_BPS)
    count = _probe_at_450(estimator, sent_bps=450_000, arrived_bps=400_000)
    gap = PACKET * 8 / 200_000
    seq, at = count, 0.6
    while at < 2.0:  # each packet's delay 5 ms more than the last one's: a queue, overuse
        estimator.on_sent(seq, at, PACKET)
        estimator.on_feedback([(seq, at + 0.02 + 0.005 * (seq - count))], at + 0.05)
        seq, at = seq + 1, at + gap
    assert "saturated" in estimator.last_probe and estimator.usage is Usage.OVERUSING
    assert estimator.estimate_bps >= 0.85 * 0.95 * 400_000 * 0.97


def test_after_a_probe_fills_the_link_the_next_ones_go_little_over_what_it_carried() -> None:
    # A subscriber behind 400 kbit/s whose media need 300k (app-limited: the estimate floats
    # over the link) and whose allocation wants far more. Probes go on, to find a lifted
    # cap, but after one filled the link each later one goes at most PROBE_RETRY_GAIN times
    # what it carried: the part of a probe over the link is what a short queue drops, media
    # with it. A probe that gets through lifts the ceiling.
    estimator = SendSideEstimator(600_000, 50_000, MAX_BPS)
    probes: list[tuple[float, int]] = []
    start_probe = estimator.start_probe

    def recorded(wanted_bps: int, now: float) -> ProbeRequest | None:
        request = start_probe(wanted_bps, now)
        if request is not None:
            probes.append((now, request.bitrate_bps))
        return request

    estimator.start_probe = recorded  # type: ignore[method-assign]
    link = Link(400_000, queue_s=0.1)
    run(estimator, link, 40.0, wanted_bps=1_500_000, media_bps=300_000)
    assert probes[0][1] >= 1.4 * 400_000  # the first: 1.5 times an estimate of 600k
    later = [rate for _, rate in probes[1:]]
    assert len(later) >= 3, probes  # still probing, backing off
    assert max(later) <= PROBE_RETRY_GAIN * 400_000 * 1.05, probes
    assert estimator.probes.succeeded == 0
    link.capacity = None
    history = run(estimator, link, 30.0, wanted_bps=1_500_000, t0=40.0, media_bps=2_000_000)
    recovered = next(t for t, bps in history if bps >= 1_400_000)
    assert recovered - 40.0 < 15.0, recovered
    assert max(rate for at, rate in probes if at > 40.0) > 2 * 400_000  # climbing again


def test_a_probe_controller_keeps_under_its_ceiling_until_a_probe_gets_through() -> None:
    controller = ProbeController()
    first = controller.request(2_000_000, 600_000, 0.0)
    assert first is not None and first.bitrate_bps == 900_000
    controller.result(False, 1.0, carried_bps=400_000)
    retry = controller.request(2_000_000, 600_000, 10.0)
    assert retry is not None and retry.bitrate_bps == int(PROBE_RETRY_GAIN * 400_000)
    controller.result(True, 11.0)
    free = controller.request(2_000_000, 600_000, 12.0)
    assert free is not None and free.bitrate_bps == 900_000
    # a failure that showed nothing of the link (not saturated) sets no ceiling
    controller.result(False, 13.0)
    again = controller.request(2_000_000, 600_000, 30.0)
    assert again is not None and again.bitrate_bps == 900_000
