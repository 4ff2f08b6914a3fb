"""Buttons on GPIO pins through gpiozero, filtered by :mod:`.debounce`.

gpiozero calls back on the thread that saw the edge; a small poll thread drives the long-press
and stuck timers. Every event goes to one ``sink`` -- pass ``ThreadBridge.post`` to receive them
on the asyncio loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hardware.errors import ConfigError, GpioError
from hardware.gpio.debounce import ButtonEvent, DebounceConfig, Debouncer

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.01


@dataclass(frozen=True)
class ButtonSpec:
    """One button: a name (``"call"``, ``"mute"``), a BCM pin, wiring and timings.

    Default wiring is active-low with the internal pull-up: the button shorts the pin to ground.
    """

    name: str
    pin: int | str
    active_low: bool = True
    pull_up: bool = True
    timing: DebounceConfig = field(default_factory=DebounceConfig)

    def __post_init__(self) -> None:
        if self.pull_up and not self.active_low:
            # With the internal pull-up the idle level is high, so "pressed" can only be low.
            raise ConfigError(f"button {self.name!r}: an active-high button needs pull_up=False")


def default_buttons() -> tuple[ButtonSpec, ...]:
    """The kiosk's two buttons: join/leave on GPIO17, mute on GPIO27."""
    return (ButtonSpec("call", 17), ButtonSpec("mute", 27))


class ButtonPanel:
    """Watches every configured button and reports :class:`ButtonEvent` to ``sink``."""

    def __init__(
        self,
        buttons: Sequence[ButtonSpec],
        sink: Callable[[ButtonEvent], None],
        pin_factory: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [b.name for b in buttons]
        if len(set(names)) != len(names):
            raise ConfigError(f"button names must be unique, got {names}")
        self._sink = sink
        self._clock = clock
        self._lock = threading.Lock()
        self._debouncers = {b.name: Debouncer(b.name, b.timing) for b in buttons}
        self._devices: dict[str, Any] = {}
        self._stop = threading.Event()
        try:
            for spec in buttons:
                self._devices[spec.name] = self._open(spec, pin_factory)
        except Exception:
            self.close()
            raise
        self._thread = threading.Thread(target=self._poll_loop, name="buttons", daemon=True)
        self._thread.start()

    def _open(self, spec: ButtonSpec, pin_factory: Any) -> Any:
        from gpiozero import DigitalInputDevice, GPIOZeroError

        # bounce_time stays None: debouncing is ours (see debounce.py).
        pull_up: bool | None = spec.pull_up if spec.pull_up else None
        active_state = None if pull_up is not None else not spec.active_low
        try:
            device = DigitalInputDevice(
                spec.pin,
                pull_up=pull_up,
                active_state=active_state,
                bounce_time=None,
                pin_factory=pin_factory,
            )
        except GPIOZeroError as exc:
            raise GpioError(f"button {spec.name!r} on pin {spec.pin}: {exc}") from exc
        device.when_activated = lambda: self._edge(spec.name, True)
        device.when_deactivated = lambda: self._edge(spec.name, False)
        return device

    def _edge(self, name: str, pressed: bool) -> None:
        with self._lock:
            events = self._debouncers[name].edge(pressed, self._clock())
        self._emit(events)

    def _poll_loop(self) -> None:
        while not self._stop.wait(POLL_INTERVAL_S):
            now = self._clock()
            with self._lock:
                events = [e for d in self._debouncers.values() for e in d.poll(now)]
            self._emit(events)

    def _emit(self, events: list[ButtonEvent]) -> None:
        for event in events:
            try:
                self._sink(event)
            except Exception:
                log.exception("button event consumer failed")

    def device(self, name: str) -> Any:
        """The gpiozero device of button ``name`` (tests drive its ``pin``)."""
        return self._devices[name]

    def is_pressed(self, name: str) -> bool:
        """Debounced state of button ``name``."""
        with self._lock:
            return self._debouncers[name].pressed

    def close(self) -> None:
        """Stop the timer thread and release the pins. Idempotent."""
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(2.0)
        for device in self._devices.values():
            device.close()
        self._devices.clear()
