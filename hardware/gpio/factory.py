"""Choosing gpiozero's pin factory: the default one on a Pi, ``MockFactory`` elsewhere."""

from __future__ import annotations

from typing import Any

from hardware.board import detect
from hardware.errors import ConfigError

FACTORIES = ("auto", "default", "mock")


def make_pin_factory(kind: str = "auto") -> tuple[Any, str]:
    """Return ``(pin_factory, reason)``; ``None`` means gpiozero's default factory.

    ``auto`` uses the default on a Raspberry Pi and ``MockFactory(pin_class=MockPWMPin)``
    anywhere else, so buttons and LEDs exist (and can be driven from tests or the dev page).
    """
    if kind not in FACTORIES:
        raise ConfigError(f"gpio pin factory {kind!r} is not one of {FACTORIES}")
    board = detect()
    if kind == "default" or (kind == "auto" and board.is_pi):
        why = "forced by config" if kind == "default" else f"{board.model}"
        return None, f"gpiozero default pin factory ({why})"
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    why = "forced by config" if kind == "mock" else "not a Raspberry Pi"
    return MockFactory(pin_class=MockPWMPin), f"gpiozero MockFactory ({why})"
