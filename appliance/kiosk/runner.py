"""Runs the kiosk state machine on the event loop: turns its effects into actions.

``KioskMachine`` decides; ``KioskRunner`` does. It owns the retry timer and the one join or
leave task in flight, applies deadlines to them, and feeds their outcomes back as inputs,
so the daemon only supplies the actions (``KioskActions``) and reports what the call does
on its own (``RoomEnded``, ``Kicked``, ``Disconnected``) through ``feed``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from appliance.kiosk.events import (
    CancelRetry,
    JoinFailed,
    JoinPressed,
    JoinSucceeded,
    KioskEffect,
    KioskInput,
    LedPattern,
    Left,
    LongPressed,
    MutePressed,
    RetryTimerFired,
    ScheduleRetry,
    SetLed,
    SetMute,
    ShowStatus,
    StartJoin,
    StartLeave,
)
from appliance.kiosk.state import KioskMachine, KioskState

__all__ = ["KioskActions", "KioskRunner"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def _ignore(*_: object) -> None:
    return None


@dataclass
class KioskActions:
    """What the daemon does for the kiosk.

    ``join(attempt)`` returns once the kiosk is in the room and raises (any exception, its
    message is the reason shown) if it cannot get in; the runner cancels it after
    ``join_timeout``. ``leave()`` leaves and releases the call; failures are logged, since
    the call is gone either way. The other three are quick, synchronous and must not raise
    (a failure there is logged and ignored: a broken LED must not end a call).
    """

    join: Callable[[int], Awaitable[None]]
    leave: Callable[[], Awaitable[None]]
    set_mute: Callable[[bool], None] = _ignore
    set_led: Callable[[LedPattern], None] = _ignore
    show_status: Callable[[str], None] = _ignore


class KioskRunner:
    """Drives a ``KioskMachine`` with real tasks and timers. Use from the event loop only."""

    def __init__(
        self,
        machine: KioskMachine,
        actions: KioskActions,
        *,
        join_timeout: float = 30.0,
        leave_timeout: float = 10.0,
    ) -> None:
        self.machine = machine
        self._actions = actions
        self._join_timeout = join_timeout
        self._leave_timeout = leave_timeout
        self._retry: asyncio.TimerHandle | None = None
        self._operation: asyncio.Task[None] | None = None
        self._pending: collections.deque[KioskInput] = collections.deque()
        self._feeding = False
        self._closed = False

    @property
    def state(self) -> KioskState:
        """The machine's current state."""
        return self.machine.state

    @property
    def status(self) -> str:
        """The current one-line status."""
        return self.machine.status_text()

    async def start(self) -> None:
        """Show the initial state (LED and status)."""
        self._execute(self.machine.initial_effects())

    def press(self, button: Literal["join", "mute"], *, long: bool = False) -> None:
        """A button press from GPIO or the control socket."""
        if button == "mute":
            self.feed(MutePressed())
        else:
            self.feed(LongPressed() if long else JoinPressed())

    def feed(self, event: KioskInput) -> None:
        """Apply one input and carry out its effects.

        Re-entrant calls (an action reporting back synchronously) are queued and applied in
        order after the current one, so effects never interleave.
        """
        if self._closed:
            return
        self._pending.append(event)
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._pending:
                current = self._pending.popleft()
                effects = self.machine.handle(current)
                if effects:
                    log.debug("kiosk: %s -> %s", current, effects)
                self._execute(effects)
        finally:
            self._feeding = False

    async def close(self) -> None:
        """Leave a call in progress (within the leave deadline), then stop everything."""
        if self._closed:
            return
        self._closed = True
        self._cancel_retry()
        operation, self._operation = self._operation, None
        if operation is not None:
            if self.machine.state is not KioskState.LEAVING:
                operation.cancel()
            # A leave in flight is allowed to finish: it has its own deadline.
            with contextlib.suppress(asyncio.CancelledError):
                await operation
        if self.machine.state in (KioskState.IN_CALL, KioskState.JOINING):
            # A join cancelled half-way may have got in: leave either way.
            await self._leave_quietly()

    # --- effects ------------------------------------------------------------------------------

    def _execute(self, effects: list[KioskEffect]) -> None:
        for effect in effects:
            match effect:
                case StartJoin(attempt=attempt):
                    self._spawn(self._join(attempt), "kiosk-join")
                case StartLeave():
                    self._spawn(self._leave(), "kiosk-leave")
                case ScheduleRetry(delay=delay, generation=generation):
                    self._cancel_retry()
                    loop = asyncio.get_running_loop()
                    self._retry = loop.call_later(delay, self.feed, RetryTimerFired(generation))
                case CancelRetry():
                    self._cancel_retry()
                case SetMute(muted=muted):
                    self._safely(self._actions.set_mute, muted)
                case SetLed(pattern=pattern):
                    self._safely(self._actions.set_led, pattern)
                case ShowStatus(text=text):
                    self._safely(self._actions.show_status, text)

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        # The machine never starts an operation while one is in flight; this guards the rule.
        if self._operation is not None and not self._operation.done():
            raise RuntimeError("kiosk: an operation is already in flight")
        self._operation = asyncio.ensure_future(coro)
        self._operation.set_name(name)

    async def _join(self, attempt: int) -> None:
        try:
            await asyncio.wait_for(self._actions.join(attempt), self._join_timeout)
        except TimeoutError:
            outcome: KioskInput = JoinFailed(f"no answer in {self._join_timeout:g} s")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("kiosk: join attempt %d failed: %s", attempt, exc)
            outcome = JoinFailed(str(exc) or type(exc).__name__)
        else:
            outcome = JoinSucceeded()
        self._operation = None
        self.feed(outcome)

    async def _leave(self) -> None:
        await self._leave_quietly()
        self._operation = None
        self.feed(Left())

    async def _leave_quietly(self) -> None:
        try:
            await asyncio.wait_for(self._actions.leave(), self._leave_timeout)
        except TimeoutError:
            log.warning("kiosk: leave took over %g s; dropping the call", self._leave_timeout)
        except Exception:
            log.exception("kiosk: leave failed; dropping the call")

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    @staticmethod
    def _safely(action: Callable[[T], None], value: T) -> None:
        try:
            action(value)
        except Exception:
            log.exception("kiosk: %r(%r) failed", action, value)
