"""Status LEDs: one pattern per appliance state, through gpiozero ``PWMLED``."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import Any

from hardware.errors import GpioError


class LedState(enum.Enum):
    """What the unit is doing, as the LEDs show it."""

    OFF = "off"
    IDLE = "idle"
    CONNECTING = "connecting"
    IN_CALL = "in_call"
    MUTED = "muted"
    ERROR = "error"


@dataclass(frozen=True)
class LedPattern:
    """``steady`` at ``value``, or ``blink`` ``on_s``/``off_s`` at ``value``, or ``pulse``."""

    kind: str
    value: float = 1.0
    on_s: float = 0.0
    off_s: float = 0.0


# The status LED's pattern per state; the mute LED (if fitted) is simply on while muted.
PATTERNS: dict[LedState, LedPattern] = {
    LedState.OFF: LedPattern("steady", 0.0),
    LedState.IDLE: LedPattern("steady", 0.15),
    LedState.CONNECTING: LedPattern("blink", 1.0, 0.25, 0.25),
    LedState.IN_CALL: LedPattern("steady", 1.0),
    LedState.MUTED: LedPattern("pulse", 1.0, 0.8, 0.8),
    LedState.ERROR: LedPattern("blink", 1.0, 0.1, 0.1),
}


@dataclass(frozen=True)
class LedSpec:
    """BCM pins of the status LED and of an optional mute LED (``None`` if not fitted)."""

    status_pin: int | str = 22
    mute_pin: int | str | None = 23


class StatusLeds:
    """Shows a :class:`LedState` on the LEDs; ``set_state`` may be called from any thread."""

    def __init__(self, spec: LedSpec, pin_factory: Any = None) -> None:
        from gpiozero import PWMLED, GPIOZeroError

        self._lock = threading.Lock()
        self.state = LedState.OFF
        try:
            self.status = PWMLED(spec.status_pin, pin_factory=pin_factory)
            self.mute = (
                PWMLED(spec.mute_pin, pin_factory=pin_factory)
                if spec.mute_pin is not None
                else None
            )
        except GPIOZeroError as exc:
            raise GpioError(f"status LEDs on pins {spec}: {exc}") from exc

    def set_state(self, state: LedState) -> None:
        """Switch to ``state``'s pattern (blinking runs on gpiozero's own thread)."""
        with self._lock:
            self.state = state
            pattern = PATTERNS[state]
            led = self.status
            if pattern.kind == "steady":
                led.value = pattern.value
            elif pattern.kind == "blink":
                led.blink(pattern.on_s, pattern.off_s, background=True)
            else:
                led.pulse(pattern.on_s, pattern.off_s, background=True)
            if self.mute is not None:
                self.mute.value = 1.0 if state is LedState.MUTED else 0.0

    def close(self) -> None:
        """Turn the LEDs off and release the pins."""
        with self._lock:
            for led in (self.status, self.mute):
                if led is not None:
                    led.close()
