"""Pure button logic: debounce, short versus long press, press storms, stuck buttons.

gpiozero's ``bounce_time`` is not simulated by its ``MockFactory`` and lives in the pin
backends, so the appliance does its own filtering here, driven only by edge timestamps and
``poll`` calls, which makes it testable with plain numbers.

Rules: a level counts once it has held for ``debounce_s`` (a burst of edges is one press). A
press is reported at release as ``press``, or as ``long_press`` once the hold reaches
``long_press_s`` (then not again at release). A hold past ``stuck_s`` (default: the larger of
10 s and three long presses) is reported once as ``stuck``. More than ``storm_presses``
presses within ``storm_window_s`` is reported once as ``storm``; presses are ignored until a
quiet ``storm_window_s`` passes.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from hardware.errors import ConfigError


class ButtonEventKind(enum.Enum):
    """What happened to a button."""

    PRESS = "press"
    LONG_PRESS = "long_press"
    STUCK = "stuck"
    STORM = "storm"


@dataclass(frozen=True, slots=True)
class ButtonEvent:
    """A filtered button event; ``held_s`` is how long it was held (0 where not applicable)."""

    button: str
    kind: ButtonEventKind
    at: float
    held_s: float = 0.0


@dataclass(frozen=True)
class DebounceConfig:
    """Timings in seconds (see the module docstring)."""

    debounce_s: float = 0.03
    long_press_s: float = 1.0
    stuck_s: float = 0.0  # 0: the larger of 10 s and three long presses
    storm_presses: int = 6
    storm_window_s: float = 2.0

    def __post_init__(self) -> None:
        if self.stuck_s == 0:
            object.__setattr__(self, "stuck_s", max(10.0, 3 * self.long_press_s))
        if not 0 <= self.debounce_s < self.long_press_s < self.stuck_s:
            raise ConfigError("need 0 <= debounce_s < long_press_s < stuck_s")
        if self.storm_presses < 1 or self.storm_window_s <= 0:
            raise ConfigError("storm_presses and storm_window_s must be positive")


class Debouncer:
    """Filters one button's raw edges (``pressed`` True/False with a timestamp) into events."""

    def __init__(self, name: str, config: DebounceConfig | None = None) -> None:
        self.name = name
        self.config = config or DebounceConfig()
        self._raw = False
        self._raw_since = float("-inf")
        self._stable = False
        self._pressed_at = 0.0
        self._long_sent = False
        self._stuck_sent = False
        self._presses: deque[float] = deque()
        self._storm = False
        self.edges = 0

    @property
    def pressed(self) -> bool:
        """The debounced level."""
        return self._stable

    def edge(self, pressed: bool, now: float) -> list[ButtonEvent]:
        """Record a raw edge at ``now``; return events that became certain."""
        self.edges += 1
        # The level before this edge may have lasted long enough to count: settle it first,
        # so the result never depends on when poll() last ran.
        events = self._settle(now)
        if pressed != self._raw:
            self._raw = pressed
            self._raw_since = now
        return events

    def poll(self, now: float) -> list[ButtonEvent]:
        """Advance time to ``now``; return events that became certain (long press, stuck)."""
        events = self._settle(now)
        if self._stable:
            held = now - self._pressed_at
            if held >= self.config.stuck_s and not self._stuck_sent:
                self._stuck_sent = True
                events.append(ButtonEvent(self.name, ButtonEventKind.STUCK, now, held))
            elif held >= self.config.long_press_s and not self._long_sent:
                self._long_sent = True
                events += self._counted(ButtonEventKind.LONG_PRESS, now, held)
        return events

    def _settle(self, now: float) -> list[ButtonEvent]:
        if self._raw == self._stable or now - self._raw_since < self.config.debounce_s:
            return []
        self._stable = self._raw
        at = self._raw_since
        if self._stable:
            self._pressed_at = at
            self._long_sent = self._stuck_sent = False
            return []
        held = at - self._pressed_at
        if self._stuck_sent or self._long_sent:
            return []
        if held >= self.config.stuck_s:
            return [ButtonEvent(self.name, ButtonEventKind.STUCK, at, held)]
        if held >= self.config.long_press_s:
            return self._counted(ButtonEventKind.LONG_PRESS, at, held)
        return self._counted(ButtonEventKind.PRESS, at, held)

    def _counted(self, kind: ButtonEventKind, at: float, held: float) -> list[ButtonEvent]:
        window = self.config.storm_window_s
        if self._storm and self._presses and at - self._presses[-1] >= window:
            self._storm = False  # quiet long enough: accept presses again
            self._presses.clear()
        self._presses.append(at)
        while self._presses and at - self._presses[0] > window:
            self._presses.popleft()
        if self._storm:
            return []
        if len(self._presses) > self.config.storm_presses:
            self._storm = True
            return [ButtonEvent(self.name, ButtonEventKind.STORM, at, 0.0)]
        return [ButtonEvent(self.name, kind, at, held)]
