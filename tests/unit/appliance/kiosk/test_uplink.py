"""The camera layer a kiosk sends to another unit follows that unit's bitrate hints."""

from __future__ import annotations

import pytest

from appliance.kiosk.uplink import (
    STEP_UP_HOLD_S,
    TRIAL_AFTER_S,
    TRIAL_GROW_S,
    TRIAL_S,
    UplinkLayerChoice,
    layer_cost,
)
from hardware.camera.base import CameraLayerSpec

HIGH = CameraLayerSpec("high", 1280, 720, 1_500_000)
MID = CameraLayerSpec("mid", 640, 360, 500_000)
LOW = CameraLayerSpec("low", 320, 180, 150_000)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def choice(clock: Clock) -> UplinkLayerChoice:
    return UplinkLayerChoice([LOW, HIGH, MID], 30.0, clock=clock)  # any order in


def test_starts_on_the_largest_and_steps_down_at_once() -> None:
    clock = Clock()
    uplink = choice(clock)
    assert uplink.layer == "high"
    assert uplink.on_hint(2_000_000) is None
    assert uplink.on_hint(400_000) == "low"  # 0.85 x 400k covers low, not mid
    assert uplink.layer == "low"
    assert uplink.on_hint(700_000) is None  # up only after the hold


def test_steps_up_only_after_the_hint_covered_the_larger_layer_for_the_hold() -> None:
    clock = Clock()
    uplink = choice(clock)
    uplink.on_hint(300_000)
    assert uplink.layer == "low"
    assert uplink.on_hint(700_000) is None
    clock.now += STEP_UP_HOLD_S - 0.5
    assert uplink.on_hint(700_000) is None
    clock.now += 1.0
    assert uplink.on_hint(700_000) == "mid"
    assert uplink.layer == "mid"


def test_a_dip_during_the_hold_starts_it_again() -> None:
    clock = Clock()
    uplink = choice(clock)
    uplink.on_hint(300_000)
    uplink.on_hint(700_000)
    clock.now += STEP_UP_HOLD_S - 1
    assert uplink.on_hint(300_000) is None  # still low: the hold is reset
    clock.now += 2
    assert uplink.on_hint(700_000) is None
    clock.now += STEP_UP_HOLD_S + 0.1
    assert uplink.on_hint(700_000) == "mid"


def test_nothing_fits_means_the_smallest_and_zero_hints_are_ignored() -> None:
    uplink = choice(Clock())
    assert uplink.on_hint(10_000) == "low"
    assert uplink.on_hint(0) is None
    assert uplink.on_hint(-5) is None
    assert uplink.layer == "low" and uplink.hint == 10_000


def test_a_layer_without_a_bitrate_costs_what_its_size_needs() -> None:
    assert layer_cost(HIGH, 30) == 1_500_000
    unset = CameraLayerSpec("x", 640, 360)
    assert layer_cost(unset, 30) == pytest.approx(640 * 360 * 30 * 0.05, rel=0.01)
    assert layer_cost(CameraLayerSpec("tiny", 16, 16), 5) == 50_000


def test_a_camera_without_layers_is_refused() -> None:
    with pytest.raises(ValueError):
        UplinkLayerChoice([], 30.0)


def steady(uplink: UplinkLayerChoice, clock: Clock, bps: int, seconds: float) -> list[str]:
    """One hint of ``bps`` a second for ``seconds``; the switches it caused."""
    out = []
    for _ in range(int(seconds)):
        clock.now += 1.0
        switched = uplink.on_hint(bps)
        if switched is not None:
            out.append(switched)
    return out


def test_steady_hints_on_a_small_layer_try_the_next_larger_one_which_stays_if_covered() -> None:
    clock = Clock()
    uplink = choice(clock)
    uplink.on_hint(160_000)  # low: what REMB says of 150 kbit/s arriving, at most 1.5 times
    assert uplink.layer == "low"
    assert steady(uplink, clock, 200_000, TRIAL_AFTER_S - 1) == []
    assert steady(uplink, clock, 200_000, 1) == ["mid"]  # tried
    assert steady(uplink, clock, 230_000, 3) == []  # the estimate grows: the try goes on
    assert steady(uplink, clock, 300_000, 5) == []
    assert steady(uplink, clock, 600_000, 1) == []  # covers mid: it stays
    assert uplink.layer == "mid"
    # it tries high next; a hint that stays flat ends that try
    assert steady(uplink, clock, 600_000, TRIAL_AFTER_S) == ["high", "mid"]


def test_a_try_backs_off_at_once_when_the_hint_falls_and_waits_longer_next_time() -> None:
    clock = Clock()
    uplink = choice(clock)
    uplink.on_hint(200_000)
    assert steady(uplink, clock, 200_000, TRIAL_AFTER_S) == ["mid"]
    assert uplink.on_hint(150_000) == "low"  # the link is still short
    assert steady(uplink, clock, 200_000, 2 * TRIAL_AFTER_S - 1) == []
    assert steady(uplink, clock, 200_000, 1) == ["mid"]


def test_a_try_ends_when_the_hint_does_not_grow_enough_in_time() -> None:
    clock = Clock()
    uplink = choice(clock)
    uplink.on_hint(200_000)
    assert steady(uplink, clock, 200_000, TRIAL_AFTER_S) == ["mid"]
    assert steady(uplink, clock, 240_000, TRIAL_S - 1) == []
    assert steady(uplink, clock, 240_000, 1) == ["low"]


def test_a_try_ends_soon_when_the_hint_stays_flat() -> None:
    clock = Clock()
    uplink = choice(clock)
    uplink.on_hint(200_000)  # a receiver's fixed cap, say
    assert steady(uplink, clock, 200_000, TRIAL_AFTER_S) == ["mid"]
    assert steady(uplink, clock, 200_000, TRIAL_GROW_S - 1) == []
    assert steady(uplink, clock, 200_000, 1) == ["low"]


def test_falling_hints_or_a_layer_that_does_not_fit_start_no_try() -> None:
    clock = Clock()
    uplink = choice(clock)
    uplink.on_hint(300_000)
    switches = []
    for bps in range(290_000, 190_000, -10_000):  # a slow slide is not steady
        clock.now += 1.0
        switches.append(uplink.on_hint(bps))
    assert switches == [None] * 10
    starved = choice(clock)
    assert starved.on_hint(50_000) == "low"  # nothing fits: the smallest, and no try
    assert steady(starved, clock, 50_000, 3 * TRIAL_AFTER_S) == []
