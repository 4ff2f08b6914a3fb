"""Buttons and LEDs on gpiozero's MockFactory (real gpiozero devices, mock pins)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from edge_common.bridge import ThreadBridge
from hardware.gpio.buttons import ButtonPanel, ButtonSpec
from hardware.gpio.debounce import ButtonEvent, ButtonEventKind, DebounceConfig
from hardware.gpio.factory import MOCK_PIN_HISTORY, make_pin_factory
from hardware.gpio.leds import LedSpec, LedState, StatusLeds
from tests.support.waiting import wait_for_sync

from .conftest import Events

TIMING = DebounceConfig(debounce_s=0.02, long_press_s=0.6, stuck_s=1.5, storm_presses=6)


def _bouncy_press(pin: Any, hold_s: float, bounces: int = 12) -> None:
    """Contacts chatter on the way down and on the way up; mock edges are instantaneous."""
    for _ in range(bounces):
        pin.drive_low()
        pin.drive_high()
    pin.drive_low()
    time.sleep(hold_s)
    for _ in range(bounces):
        pin.drive_high()
        pin.drive_low()
    pin.drive_high()
    time.sleep(0.08)


def _panel(events: Events, factory: Any) -> ButtonPanel:
    buttons = [ButtonSpec("call", 17, timing=TIMING), ButtonSpec("mute", 27, timing=TIMING)]
    return ButtonPanel(buttons, events, pin_factory=factory)


def test_bouncing_presses_give_one_event_each(mock_factory: Any, events: Events) -> None:
    panel = _panel(events, mock_factory)
    try:
        pin = panel.device("call").pin
        for _ in range(4):
            _bouncy_press(pin, 0.1)
        _bouncy_press(panel.device("mute").pin, 0.1)
        events.wait_count(ButtonEvent, 5, timeout=5)
        time.sleep(0.2)  # nothing more may trickle in
    finally:
        panel.close()
    assert [(e.button, e.kind) for e in events.of(ButtonEvent)] == [
        ("call", ButtonEventKind.PRESS)
    ] * 4 + [("mute", ButtonEventKind.PRESS)]
    assert all(0.08 < e.held_s < 0.5 for e in events.of(ButtonEvent))


def test_long_press_is_told_apart(mock_factory: Any, events: Events) -> None:
    panel = _panel(events, mock_factory)
    try:
        pin = panel.device("call").pin
        _bouncy_press(pin, 0.1)
        _bouncy_press(pin, 0.9)
        _bouncy_press(pin, 0.1)
        events.wait_count(ButtonEvent, 3, timeout=5)
    finally:
        panel.close()
    kinds = [e.kind for e in events.of(ButtonEvent)]
    assert kinds == [ButtonEventKind.PRESS, ButtonEventKind.LONG_PRESS, ButtonEventKind.PRESS]


def test_stuck_button_is_reported_once(mock_factory: Any, events: Events) -> None:
    panel = _panel(events, mock_factory)
    try:
        pin = panel.device("mute").pin
        pin.drive_low()
        events.wait_count(ButtonEvent, 2, timeout=10)  # long press, then stuck
        time.sleep(0.5)
        assert panel.is_pressed("mute")
        pin.drive_high()
        time.sleep(0.1)
    finally:
        panel.close()
    kinds = [e.kind for e in events.of(ButtonEvent)]
    assert kinds == [ButtonEventKind.LONG_PRESS, ButtonEventKind.STUCK]


def test_press_storm_is_reported_once_and_presses_suppressed(
    mock_factory: Any, events: Events
) -> None:
    panel = _panel(events, mock_factory)
    try:
        pin = panel.device("call").pin
        for _ in range(15):
            pin.drive_low()
            time.sleep(0.04)
            pin.drive_high()
            time.sleep(0.04)
        time.sleep(0.1)
    finally:
        panel.close()
    kinds = [e.kind for e in events.of(ButtonEvent)]
    # On a slow machine fewer presses fit in the window; never more than the limit, one storm.
    assert kinds.count(ButtonEventKind.STORM) <= 1
    assert kinds.count(ButtonEventKind.PRESS) <= TIMING.storm_presses
    assert len(kinds) <= TIMING.storm_presses + 1
    if kinds.count(ButtonEventKind.PRESS) == TIMING.storm_presses:
        assert kinds[-1] is ButtonEventKind.STORM


async def test_events_reach_asyncio_through_the_bridge(mock_factory: Any) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[ButtonEvent] = asyncio.Queue()
    bridge: ThreadBridge[ButtonEvent] = ThreadBridge(loop, queue.put_nowait)
    panel = ButtonPanel([ButtonSpec("call", 17, timing=TIMING)], bridge.post, mock_factory)
    try:
        pin = panel.device("call").pin
        await asyncio.to_thread(_bouncy_press, pin, 0.1)
        event = await asyncio.wait_for(queue.get(), 5)
    finally:
        panel.close()
        bridge.close()
    assert (event.button, event.kind) == ("call", ButtonEventKind.PRESS)


def test_led_patterns(mock_factory: Any) -> None:
    leds = StatusLeds(LedSpec(status_pin=22, mute_pin=23), pin_factory=mock_factory)
    try:
        leds.set_state(LedState.IN_CALL)
        assert leds.status.value == 1.0 and leds.mute is not None and leds.mute.value == 0
        leds.set_state(LedState.IDLE)
        assert 0 < leds.status.value < 0.5
        leds.set_state(LedState.MUTED)
        assert leds.mute.value == 1.0
        for state, min_toggles in ((LedState.CONNECTING, 3), (LedState.ERROR, 3)):
            leds.set_state(state)
            pin = leds.status.pin
            pin.clear_states()
            wait_for_sync(lambda p=pin, n=min_toggles: len(p.states) >= n, timeout=10)
            values = {s.state for s in pin.states}
            assert values >= {0, 1}, f"{state} should blink, saw {values}"
        leds.set_state(LedState.OFF)
        assert leds.status.value == 0
    finally:
        leds.close()


def test_active_high_button_with_external_pull_down(mock_factory: Any, events: Events) -> None:
    spec = ButtonSpec("call", 17, active_low=False, pull_up=False, timing=TIMING)
    panel = ButtonPanel([spec], events, pin_factory=mock_factory)
    try:
        pin = panel.device("call").pin
        pin.drive_low()  # idle
        time.sleep(0.05)
        pin.drive_high()
        time.sleep(0.1)
        pin.drive_low()
        events.wait_count(ButtonEvent, 1, timeout=5)
    finally:
        panel.close()
    assert [e.kind for e in events.of(ButtonEvent)] == [ButtonEventKind.PRESS]


def test_contradictory_wiring_is_a_config_error() -> None:
    import pytest

    from hardware.errors import ConfigError

    with pytest.raises(ConfigError, match="active-high"):
        ButtonSpec("call", 17, active_low=False, pull_up=True)


def test_simulated_pins_keep_a_bounded_history() -> None:
    # the daemon's own factory off a Pi: a blinking LED must not grow the pin's record forever
    from gpiozero import LED

    factory, _ = make_pin_factory("mock")
    led = LED(22, pin_factory=factory)
    try:
        for _ in range(MOCK_PIN_HISTORY * 3):
            led.toggle()
        pin = led.pin
        assert len(pin.states) == MOCK_PIN_HISTORY
        assert pin.states[-1].state == led.is_lit  # the latest changes are the ones kept
        pin.clear_states()
        led.toggle()
        assert [s.state for s in pin.states] == [not led.is_lit, led.is_lit]
    finally:
        led.close()
        factory.reset()
