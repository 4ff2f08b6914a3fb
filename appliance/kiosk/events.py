"""Inputs and effects of the kiosk state machine (see ``appliance.kiosk.state``).

Inputs are what happened (a button, the outcome of a join, the room going away, a timer);
effects are what the daemon must do next. Both are frozen dataclasses so they can be logged,
compared in tests and passed across threads without surprises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# --- inputs -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JoinPressed:
    """A short press of the join button (released before the hold time).

    The button adapter must classify a press as short *or* long, never both: report this on
    release when the hold time was not reached, and ``LongPressed`` when it was.
    """


@dataclass(frozen=True, slots=True)
class LongPressed:
    """The join button was held for the hold time."""


@dataclass(frozen=True, slots=True)
class MutePressed:
    """A press of the mute button."""


@dataclass(frozen=True, slots=True)
class JoinSucceeded:
    """The join started by ``StartJoin`` completed: the kiosk is in the room."""


@dataclass(frozen=True, slots=True)
class JoinFailed:
    """The join started by ``StartJoin`` failed (including the daemon's own join timeout)."""

    reason: str


@dataclass(frozen=True, slots=True)
class RoomEnded:
    """The room was completed by its owner while the kiosk was in it.

    The daemon reports this after it has released the call's resources; no leave follows.
    """

    reason: str = "room ended"


@dataclass(frozen=True, slots=True)
class Kicked:
    """The kiosk's participant was removed from the room (e.g. through the REST API).

    The daemon reports this after it has released the call's resources; no leave follows.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The call was lost without anyone ending it (network, SFU restart).

    Unlike ``RoomEnded`` and ``Kicked`` nobody meant this, so the kiosk rejoins with backoff.
    The daemon reports this after it has released the call's resources.
    """

    reason: str


@dataclass(frozen=True, slots=True)
class Left:
    """The leave started by ``StartLeave`` finished. The daemon reports it exactly once per
    ``StartLeave``, even when leaving failed, since the call is gone either way."""


@dataclass(frozen=True, slots=True)
class RetryTimerFired:
    """The timer of a ``ScheduleRetry`` fired; ``generation`` is copied from that effect so a
    stale timer (one the machine has since replaced or cancelled) is recognised and ignored."""

    generation: int


KioskInput = (
    JoinPressed
    | LongPressed
    | MutePressed
    | JoinSucceeded
    | JoinFailed
    | RoomEnded
    | Kicked
    | Disconnected
    | Left
    | RetryTimerFired
)

# --- effects ----------------------------------------------------------------------------


class LedPattern(enum.Enum):
    """What the status LED should say; the daemon maps each meaning to a blink pattern."""

    IDLE = "idle"  # off, or a dim heartbeat
    JOINING = "joining"  # slow blink
    IN_CALL = "in_call"  # solid on
    IN_CALL_MUTED = "in_call_muted"  # solid on, mute LED on
    LEAVING = "leaving"  # fast blink
    ERROR = "error"  # double blink


@dataclass(frozen=True, slots=True)
class StartJoin:
    """Join the room. The daemon reports exactly one ``JoinSucceeded`` or ``JoinFailed``
    back, and must give up with ``JoinFailed("timeout")`` after its own deadline, because
    presses are ignored while a join is in flight."""

    attempt: int  # 1 for a join the user asked for, 2.. for automatic retries


@dataclass(frozen=True, slots=True)
class StartLeave:
    """Leave the room; the daemon reports ``Left`` exactly once when done."""


@dataclass(frozen=True, slots=True)
class SetMute:
    """Mute or unmute the kiosk's microphone (only emitted while in a call)."""

    muted: bool


@dataclass(frozen=True, slots=True)
class ScheduleRetry:
    """Start a timer that reports ``RetryTimerFired(generation)`` after ``delay`` seconds,
    replacing any earlier retry timer."""

    delay: float
    generation: int


@dataclass(frozen=True, slots=True)
class CancelRetry:
    """Cancel the pending retry timer, if any. Tidiness only: a late timer is ignored anyway."""


@dataclass(frozen=True, slots=True)
class SetLed:
    """Show ``pattern`` on the status LED."""

    pattern: LedPattern


@dataclass(frozen=True, slots=True)
class ShowStatus:
    """A one-line, human-readable status (screen, ``edge-appliance status``, systemd STATUS=)."""

    text: str


KioskEffect = StartJoin | StartLeave | SetMute | ScheduleRetry | CancelRetry | SetLed | ShowStatus
