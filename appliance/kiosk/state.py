"""The kiosk's call state machine: pure, no I/O, no asyncio, no clock.

The daemon feeds it inputs (``appliance.kiosk.events``) and carries out the effects it
returns, in order. Keeping it pure lets every sequence of presses and outcomes be tested
exhaustively, and keeps the hard rules in one place:

- at most one join and at most one leave are ever in flight: presses while joining or
  leaving are *ignored* (a button storm coalesces into the operation already running);
- mute is only meaningful in a call: ``SetMute`` is only emitted into the ``IN_CALL`` state
  and the mute state resets when the call ends;
- a failed join (or a dropped call) goes to ``ERROR`` and retries automatically with
  exponential backoff up to a cap, jittered when the policy says so (many field units that
  lost the same hub must not all come back in the same instant); a press retries at once, a
  long press gives up;
- a ``persistent`` policy (a field unit) treats the room ending and a removal like a lost
  link: only a long press stops it.

Transitions (anything not listed is ignored and returns no effects)::

    IDLE     --JoinPressed------------------------------> JOINING  StartJoin
    JOINING  --JoinSucceeded----------------------------> IN_CALL  SetMute(start_muted)
    JOINING  --JoinFailed-------------------------------> ERROR    ScheduleRetry (unless exhausted)
    IN_CALL  --JoinPressed / LongPressed (per leave_on)-> LEAVING  StartLeave
    IN_CALL  --MutePressed------------------------------> IN_CALL  SetMute(toggled)
    IN_CALL  --RoomEnded / Kicked-----------------------> IDLE     (persistent: as Disconnected)
    IN_CALL  --Disconnected-----------------------------> ERROR    ScheduleRetry
    LEAVING  --Left-------------------------------------> IDLE
    ERROR    --JoinPressed------------------------------> JOINING  CancelRetry, StartJoin(1)
    ERROR    --LongPressed------------------------------> IDLE     CancelRetry
    ERROR    --RetryTimerFired(current generation)------> JOINING  StartJoin(n)

Every change of state also emits ``SetLed`` and ``ShowStatus``.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

from appliance.kiosk.events import (
    CancelRetry,
    Disconnected,
    JoinFailed,
    JoinPressed,
    JoinSucceeded,
    Kicked,
    KioskEffect,
    KioskInput,
    LedPattern,
    Left,
    LongPressed,
    MutePressed,
    RetryTimerFired,
    RoomEnded,
    ScheduleRetry,
    SetLed,
    SetMute,
    ShowStatus,
    StartJoin,
    StartLeave,
)

__all__ = ["KioskMachine", "KioskPolicy", "KioskState", "LeaveOn"]


class KioskState(enum.Enum):
    """Where the kiosk is in its call lifecycle."""

    IDLE = "idle"
    JOINING = "joining"
    IN_CALL = "in_call"
    LEAVING = "leaving"
    ERROR = "error"


class LeaveOn(enum.Enum):
    """Which gesture on the join button leaves a call.

    ``LONG_PRESS`` suits rooms where a stray tap must not end a meeting.
    """

    PRESS_AGAIN = "press"
    LONG_PRESS = "long_press"
    EITHER = "either"


@dataclass(frozen=True, slots=True)
class KioskPolicy:
    """How the kiosk behaves; built by the daemon from the ``[kiosk]`` config section.

    ``max_retries`` counts automatic retries after a failure; ``None`` retries forever,
    which is what an unattended room unit normally wants. ``retry_jitter`` (0 to 1) is the
    share of each delay that is random: the delay is drawn from
    ``[(1 - jitter) * d, d]`` where ``d`` is the capped exponential delay, so it never
    passes ``retry_max``. ``persistent`` rejoins after the room ended or a removal too.
    """

    room: str = ""
    leave_on: LeaveOn = LeaveOn.EITHER
    start_muted: bool = False
    retry_initial: float = 2.0
    retry_factor: float = 2.0
    retry_max: float = 60.0
    max_retries: int | None = None
    retry_jitter: float = 0.0
    persistent: bool = False

    def __post_init__(self) -> None:
        if not self.retry_initial > 0:
            raise ValueError(f"retry_initial must be > 0, got {self.retry_initial!r}")
        if not self.retry_factor >= 1:
            raise ValueError(f"retry_factor must be >= 1, got {self.retry_factor!r}")
        if not self.retry_max >= self.retry_initial:
            raise ValueError(
                f"retry_max ({self.retry_max!r}) must be >= retry_initial ({self.retry_initial!r})"
            )
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0 or None, got {self.max_retries!r}")
        if not 0 <= self.retry_jitter <= 1:
            raise ValueError(f"retry_jitter must be from 0 to 1, got {self.retry_jitter!r}")

    def retry_delay(self, failures: int, draw: float = 1.0) -> float:
        """Backoff before the retry that follows the ``failures``-th consecutive failure.

        ``draw`` in [0, 1] picks the jittered delay (1: the full capped delay)."""
        if failures < 1:
            raise ValueError("failures counts from 1")
        if not 0 <= draw <= 1:
            raise ValueError(f"draw must be from 0 to 1, got {draw!r}")
        # Cap the exponent first so a long outage cannot overflow the float.
        exponent = min(failures - 1, 64)
        full = float(min(self.retry_max, self.retry_initial * self.retry_factor**exponent))
        return full * (1 - self.retry_jitter * (1 - draw))


class KioskMachine:
    """The kiosk's call state machine. Not thread-safe: feed it from the event loop only."""

    def __init__(
        self, policy: KioskPolicy | None = None, draw: Callable[[], float] = random.random
    ) -> None:
        """``draw`` gives the retry jitter's random numbers in [0, 1] (a test fixes them)."""
        self.policy = policy or KioskPolicy()
        self._draw = draw
        self._delay = 0.0  # the pending retry's delay
        self._state = KioskState.IDLE
        self._muted = False
        self._failures = 0  # consecutive failed attempts in the current retry sequence
        self._generation = 0  # identifies the retry timer that is allowed to fire
        self._retry_pending = False
        self._last_reason = ""

    @property
    def state(self) -> KioskState:
        """The current state."""
        return self._state

    @property
    def muted(self) -> bool:
        """Whether the microphone is muted; always ``False`` outside a call."""
        return self._muted

    @property
    def retry_pending(self) -> bool:
        """Whether an automatic retry is scheduled (only ever true in ``ERROR``)."""
        return self._retry_pending

    @property
    def failures(self) -> int:
        """Consecutive failed attempts in the current retry sequence (0: none)."""
        return self._failures

    @property
    def retry_delay(self) -> float:
        """The delay of the pending retry, or of the last one scheduled (seconds)."""
        return self._delay

    @property
    def last_reason(self) -> str:
        """Why the last call or join ended badly ('' if it did not)."""
        return self._last_reason

    def initial_effects(self) -> list[KioskEffect]:
        """Effects that show the initial state; run them once at start-up."""
        return self._show()

    def handle(self, event: KioskInput) -> list[KioskEffect]:
        """Apply one input and return the effects to carry out, in order.

        An input that means nothing in the current state (a press while joining, a stale
        timer, a late outcome) returns ``[]`` and changes nothing.
        """
        match self._state:
            case KioskState.IDLE:
                return self._in_idle(event)
            case KioskState.JOINING:
                return self._in_joining(event)
            case KioskState.IN_CALL:
                return self._in_call(event)
            case KioskState.LEAVING:
                return self._in_leaving(event)
            case KioskState.ERROR:
                return self._in_error(event)

    # --- per-state handlers ---------------------------------------------------------------

    def _in_idle(self, event: KioskInput) -> list[KioskEffect]:
        if isinstance(event, JoinPressed):
            self._failures = 0
            return self._start_join()
        return []

    def _in_joining(self, event: KioskInput) -> list[KioskEffect]:
        # Presses are ignored here on purpose: a storm must not queue joins, and cancelling a
        # join half-way would leave the SFU with a half-made participant.
        if isinstance(event, JoinSucceeded):
            self._failures = 0
            self._last_reason = ""
            self._muted = self.policy.start_muted
            effects = self._enter(KioskState.IN_CALL)
            return [SetMute(self._muted), *effects]
        if isinstance(event, JoinFailed):
            return self._fail(event.reason)
        return []

    def _in_call(self, event: KioskInput) -> list[KioskEffect]:
        if isinstance(event, JoinPressed | LongPressed) and self._leaves(event):
            self._muted = False
            return [StartLeave(), *self._enter(KioskState.LEAVING)]
        if isinstance(event, MutePressed):
            self._muted = not self._muted
            return [SetMute(self._muted), *self._show()]
        if isinstance(event, RoomEnded | Kicked) and self.policy.persistent:
            self._muted = False
            self._failures = 0
            return self._fail(event.reason)
        if isinstance(event, RoomEnded | Kicked):
            self._muted = False
            self._last_reason = event.reason
            return self._enter(KioskState.IDLE)
        if isinstance(event, Disconnected):
            self._muted = False
            self._failures = 0  # a call that worked starts a fresh backoff sequence
            return self._fail(event.reason)
        return []

    def _in_leaving(self, event: KioskInput) -> list[KioskEffect]:
        # Only the leave's own completion moves on: whatever else the room says now, the
        # leave in flight reports ``Left`` regardless.
        if isinstance(event, Left):
            return self._enter(KioskState.IDLE)
        return []

    def _in_error(self, event: KioskInput) -> list[KioskEffect]:
        if isinstance(event, JoinPressed):
            # The user asked: try now, and start the backoff afresh.
            cancel = self._cancel_retry()
            self._failures = 0
            return [*cancel, *self._start_join()]
        if isinstance(event, LongPressed):
            cancel = self._cancel_retry()
            self._failures = 0
            self._last_reason = ""
            return [*cancel, *self._enter(KioskState.IDLE)]
        if (
            isinstance(event, RetryTimerFired)
            and self._retry_pending
            and event.generation == self._generation
        ):
            self._retry_pending = False
            return self._start_join()
        return []

    # --- helpers ----------------------------------------------------------------------------

    def _leaves(self, event: JoinPressed | LongPressed) -> bool:
        if self.policy.leave_on is LeaveOn.EITHER:
            return True
        if isinstance(event, JoinPressed):
            return self.policy.leave_on is LeaveOn.PRESS_AGAIN
        return self.policy.leave_on is LeaveOn.LONG_PRESS

    def _start_join(self) -> list[KioskEffect]:
        return [StartJoin(attempt=self._failures + 1), *self._enter(KioskState.JOINING)]

    def _fail(self, reason: str) -> list[KioskEffect]:
        self._failures += 1
        self._last_reason = reason
        limit = self.policy.max_retries
        if limit is not None and self._failures > limit:
            return self._enter(KioskState.ERROR)
        self._generation += 1
        self._retry_pending = True
        self._delay = self.policy.retry_delay(self._failures, self._draw())
        return [ScheduleRetry(self._delay, self._generation), *self._enter(KioskState.ERROR)]

    def _cancel_retry(self) -> list[KioskEffect]:
        if not self._retry_pending:
            return []
        self._retry_pending = False
        self._generation += 1  # a timer that fires anyway is now stale
        return [CancelRetry()]

    def _enter(self, state: KioskState) -> list[KioskEffect]:
        self._state = state
        return self._show()

    def _show(self) -> list[KioskEffect]:
        return [SetLed(self._led()), ShowStatus(self.status_text())]

    def _led(self) -> LedPattern:
        if self._state is KioskState.IN_CALL and self._muted:
            return LedPattern.IN_CALL_MUTED
        return _LED_FOR_STATE[self._state]

    def status_text(self) -> str:
        """The one-line status for the current state."""
        room = f" {self.policy.room}" if self.policy.room else ""
        match self._state:
            case KioskState.IDLE:
                ended = f"Call ended ({self._last_reason}). " if self._last_reason else ""
                return f"{ended}Press to join{room}"
            case KioskState.JOINING:
                attempt = f" (attempt {self._failures + 1})" if self._failures else ""
                return f"Joining{room}{attempt}"
            case KioskState.IN_CALL:
                return f"In call{room}" + (" (muted)" if self._muted else "")
            case KioskState.LEAVING:
                return f"Leaving{room}"
            case KioskState.ERROR:
                return self._error_text()

    def _error_text(self) -> str:
        base = f"Not connected: {self._last_reason}."
        if self._retry_pending:
            return f"{base} Retrying in {self._delay:.3g} s; press to retry now"
        return f"{base} Press to retry"


_LED_FOR_STATE = {
    KioskState.IDLE: LedPattern.IDLE,
    KioskState.JOINING: LedPattern.JOINING,
    KioskState.IN_CALL: LedPattern.IN_CALL,
    KioskState.LEAVING: LedPattern.LEAVING,
    KioskState.ERROR: LedPattern.ERROR,
}
