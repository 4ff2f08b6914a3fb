"""Choosing gpiozero's pin factory: the default one on a Pi, ``MockFactory`` elsewhere."""

from __future__ import annotations

from collections import deque
from typing import Any

from hardware.board import detect
from hardware.errors import ConfigError

FACTORIES = ("auto", "default", "mock")

#: State changes a simulated pin remembers. gpiozero's mock pins record every change (for
#: tests to inspect) in a list that never shrinks: a status LED blinking the error pattern
#: adds ten a second, about 80 MB a day in a daemon running on simulated hardware.
MOCK_PIN_HISTORY = 1000


def make_pin_factory(kind: str = "auto") -> tuple[Any, str]:
    """Return ``(pin_factory, reason)``; ``None`` means gpiozero's default factory.

    ``auto`` uses the default on a Raspberry Pi and ``MockFactory`` (PWM pins, bounded history)
    anywhere else, so buttons and LEDs exist (and can be driven from tests or the dev page).
    """
    if kind not in FACTORIES:
        raise ConfigError(f"gpio pin factory {kind!r} is not one of {FACTORIES}")
    board = detect()
    if kind == "default" or (kind == "auto" and board.is_pi):
        why = "forced by config" if kind == "default" else f"{board.model}"
        return None, f"gpiozero default pin factory ({why})"
    from gpiozero.pins.mock import MockFactory

    why = "forced by config" if kind == "mock" else "not a Raspberry Pi"
    return MockFactory(pin_class=bounded_mock_pin_class()), f"gpiozero MockFactory ({why})"


def bounded_mock_pin_class() -> Any:
    """gpiozero's ``MockPWMPin`` keeping only the last ``MOCK_PIN_HISTORY`` state changes."""
    from gpiozero.pins.mock import MockPWMPin

    class BoundedMockPWMPin(MockPWMPin):  # type: ignore[misc]
        def clear_states(self) -> None:
            super().clear_states()
            # gpiozero only appends to and iterates over ``states``: a deque does both
            self.states: deque[Any] = deque(self.states, maxlen=MOCK_PIN_HISTORY)

    return BoundedMockPWMPin
