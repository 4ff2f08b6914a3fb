"""Events a ``RoomService`` emits to its listeners, in the order things happened.

Each event carries the live model objects (read them, never mutate them). Listeners are
plain callables run synchronously, in registration order, right after the change: they must
not block (schedule a task for anything slow). ``reason_code`` is the Twilio error code a
signaling layer should close a participant's connection with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import Participant, PublishedTrack, Room, SubscribedTrack

#: Why a participant was disconnected by the server (Twilio error codes).
ROOM_COMPLETED = 53118
DUPLICATE_IDENTITY = 53205
#: Removed through the REST API (``Status=disconnected``).
REMOVED_BY_REST = 53204
SESSION_LENGTH_EXCEEDED = 53216


@dataclass(frozen=True)
class _RoomChange:
    """Something happened to ``room``."""

    room: Room


@dataclass(frozen=True)
class _ParticipantChange(_RoomChange):
    """Something happened to ``participant`` in ``room``."""

    participant: Participant


@dataclass(frozen=True)
class _TrackChange(_ParticipantChange):
    """Something happened to ``track``, published by ``participant``."""

    track: PublishedTrack


@dataclass(frozen=True)
class _SubscriptionChange(_RoomChange):
    """Something happened to ``subscriber``'s subscription ``track``."""

    subscriber: Participant
    track: SubscribedTrack


class RoomCreated(_RoomChange):
    """A room was created (by REST or ad hoc by a first connection)."""


class RoomCompleted(_RoomChange):
    """A room ended; its participants were disconnected first (each with its own event)."""


class ParticipantConnected(_ParticipantChange):
    """A participant joined a room."""


@dataclass(frozen=True)
class ParticipantDisconnected(_ParticipantChange):
    """A participant left. ``reason_code`` is None when it left by itself."""

    reason_code: int | None


class ParticipantReconnecting(_ParticipantChange):
    """A participant's connection dropped; it may come back."""


class ParticipantReconnected(_ParticipantChange):
    """A reconnecting participant is back."""


class TrackPublished(_TrackChange):
    """A participant published a track (Twilio's ``track-added``)."""


class TrackUnpublished(_TrackChange):
    """A track was unpublished, or its publisher left (Twilio's ``track-removed``)."""


class TrackEnabled(_TrackChange):
    """A published track was enabled (unmuted)."""


class TrackDisabled(_TrackChange):
    """A published track was disabled (muted)."""


class TrackSubscribed(_SubscriptionChange):
    """``subscriber`` now receives ``track``."""


class TrackUnsubscribed(_SubscriptionChange):
    """``subscriber`` no longer receives ``track``."""


class SubscribeRulesChanged(_ParticipantChange):
    """A participant's subscribe rules changed (signaling re-evaluates its subscriptions)."""


class RecordingRulesChanged(_RoomChange):
    """A room's recording rules changed."""


RoomEvent = (
    RoomCreated
    | RoomCompleted
    | ParticipantConnected
    | ParticipantDisconnected
    | ParticipantReconnecting
    | ParticipantReconnected
    | TrackPublished
    | TrackUnpublished
    | TrackEnabled
    | TrackDisabled
    | TrackSubscribed
    | TrackUnsubscribed
    | SubscribeRulesChanged
    | RecordingRulesChanged
)
Listener = Callable[[RoomEvent], None]
