"""Network quality's downlink loss: over the whole interval between two samples."""

from __future__ import annotations

import pytest

from edge_sfu.media.estimator import PacketResult, SendSideEstimator
from edge_sfu.signaling.signals import MIN_LOSS_PACKETS, interval_loss


def test_one_lost_in_two_hundred_is_half_a_per_cent_not_the_estimators_five() -> None:
    # The estimator judges loss over its own short windows (about 20 packets): one lost
    # packet in the last window reads 5 % there, 0.5 % over the interval's 200.
    estimator = SendSideEstimator(1_000_000, 50_000, 10_000_000)
    before = (estimator.lost_total, estimator.reported_total)
    sent = [PacketResult(i * 0.005, 1200, i * 0.005 + 0.02, False) for i in range(200)]
    sent[190] = PacketResult(190 * 0.005, 1200, None, False)
    estimator.update(sent[:180], 1.0)
    estimator.update(sent[180:], 1.1)
    assert estimator.loss == pytest.approx(0.05)
    now = (estimator.lost_total, estimator.reported_total)
    assert now == (1, 200)
    assert interval_loss(before, now, None) == pytest.approx(0.005)


def test_too_few_packets_say_nothing_and_no_feedback_falls_back_to_reports() -> None:
    assert interval_loss((1, 200), (2, 200 + MIN_LOSS_PACKETS - 1), 0.3) is None
    assert interval_loss((1, 200), (2, 200 + MIN_LOSS_PACKETS), 0.3) == pytest.approx(0.02)
    # a subscriber that never sent transport-cc feedback: its receiver reports speak
    assert interval_loss((0, 0), (0, 0), 0.3) == 0.3
    assert interval_loss((0, 0), (0, 0), None) is None
