"""The camera layer a kiosk sends to another unit follows that unit's bitrate hints."""

from __future__ import annotations

import pytest

from appliance.kiosk.uplink import STEP_UP_HOLD_S, UplinkLayerChoice, layer_cost
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
