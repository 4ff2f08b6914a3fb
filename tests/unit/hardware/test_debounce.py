"""Pure button logic driven by explicit timestamps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware.errors import ConfigError
from hardware.gpio.debounce import ButtonEventKind, DebounceConfig, Debouncer

CFG = DebounceConfig(debounce_s=0.02, long_press_s=1.0, stuck_s=5.0, storm_presses=3)


def _kinds(events: list) -> list[ButtonEventKind]:  # type: ignore[type-arg]
    return [e.kind for e in events]


def _press(d: Debouncer, t: float, hold: float) -> list:  # type: ignore[type-arg]
    out = d.edge(True, t)
    out += d.poll(t + hold / 2)
    out += d.edge(False, t + hold)
    out += d.poll(t + hold + 0.05)
    return out


@given(
    down=st.lists(st.floats(0, 0.019), min_size=1, max_size=30),
    up=st.lists(st.floats(0, 0.019), min_size=1, max_size=30),
    hold=st.floats(0.05, 0.9),
)
def test_any_burst_of_edges_is_one_press(down: list[float], up: list[float], hold: float) -> None:
    d = Debouncer("b", CFG)
    events = []
    level = False
    for dt in sorted(down):  # chatter within the debounce window, ending pressed
        level = not level
        events += d.edge(level, dt)
    if not level:
        events += d.edge(True, 0.0195)
    t_up = 0.02 + hold
    level = True
    for dt in sorted(up):
        level = not level
        events += d.edge(level, t_up + dt)
    if level:
        events += d.edge(False, t_up + 0.0199)
    events += d.poll(t_up + 0.1)
    assert _kinds(events) == [ButtonEventKind.PRESS]


def test_long_press_fires_while_held_and_not_again_at_release() -> None:
    d = Debouncer("b", CFG)
    assert d.edge(True, 0.0) == []
    assert d.poll(0.5) == []
    held = d.poll(1.01)
    assert _kinds(held) == [ButtonEventKind.LONG_PRESS] and held[0].held_s == pytest.approx(1.01)
    assert d.edge(False, 1.5) == [] and d.poll(1.6) == []


def test_long_press_is_classified_at_release_when_poll_was_late() -> None:
    d = Debouncer("b", CFG)
    d.edge(True, 0.0)
    d.edge(False, 1.2)  # no poll in between (a starved timer thread)
    events = d.poll(1.3)
    assert _kinds(events) == [ButtonEventKind.LONG_PRESS]
    assert events[0].held_s == pytest.approx(1.2)


def test_stuck_is_reported_once() -> None:
    d = Debouncer("b", CFG)
    d.edge(True, 0.0)
    events = [e for t in range(1, 40) for e in d.poll(t * 0.25)]
    assert _kinds(events) == [ButtonEventKind.LONG_PRESS, ButtonEventKind.STUCK]
    assert d.edge(False, 11.0) == [] and d.poll(11.1) == []
    assert _kinds(_press(d, 12.0, 0.1)) == [ButtonEventKind.PRESS]  # works again


def test_storm_reported_once_then_quiet_restores_presses() -> None:
    d = Debouncer("b", CFG)
    events = []
    for i in range(10):
        events += _press(d, i * 0.1, 0.04)
    assert _kinds(events) == [ButtonEventKind.PRESS] * 3 + [ButtonEventKind.STORM]
    assert _kinds(_press(d, 1.5, 0.04)) == []  # still within the window of the last press
    assert _kinds(_press(d, 5.0, 0.04)) == [ButtonEventKind.PRESS]


def test_bad_timings_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        DebounceConfig(debounce_s=0.5, long_press_s=0.2)
    with pytest.raises(ValueError):
        DebounceConfig(storm_presses=0)


def test_stuck_threshold_follows_a_long_long_press() -> None:
    assert DebounceConfig().stuck_s == 10.0
    assert DebounceConfig(long_press_s=10.0).stuck_s == 30.0
    assert DebounceConfig(long_press_s=2.0, stuck_s=4.0).stuck_s == 4.0
