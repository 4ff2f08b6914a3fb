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
class RoomCreated:
    """A room was created (by REST or ad hoc by a first connection)."""

    room: Room


@dataclass(frozen=True)
class RoomCompleted:
    """A room ended; its participants were disconnected first (each with its own event)."""

    room: Room


@dataclass(frozen=True)
class ParticipantConnected:
    """A participant joined a room."""

    room: Room
    participant: Participant


@dataclass(frozen=True)
class ParticipantDisconnected:
    """A participant left. ``reason_code`` is None when it left by itself."""

    room: Room
    participant: Participant
    reason_code: int | None


@dataclass(frozen=True)
class ParticipantReconnecting:
    """A participant's connection dropped; it may come back."""

    room: Room
    participant: Participant


@dataclass(frozen=True)
class ParticipantReconnected:
    """A reconnecting participant is back."""

    room: Room
    participant: Participant


@dataclass(frozen=True)
class TrackPublished:
    """A participant published a track (Twilio's ``track-added``)."""

    room: Room
    participant: Participant
    track: PublishedTrack


@dataclass(frozen=True)
class TrackUnpublished:
    """A track was unpublished, or its publisher left (Twilio's ``track-removed``)."""

    room: Room
    participant: Participant
    track: PublishedTrack


@dataclass(frozen=True)
class TrackEnabled:
    """A published track was enabled (unmuted)."""

    room: Room
    participant: Participant
    track: PublishedTrack


@dataclass(frozen=True)
class TrackDisabled:
    """A published track was disabled (muted)."""

    room: Room
    participant: Participant
    track: PublishedTrack


@dataclass(frozen=True)
class TrackSubscribed:
    """``subscriber`` now receives ``track``."""

    room: Room
    subscriber: Participant
    track: SubscribedTrack


@dataclass(frozen=True)
class TrackUnsubscribed:
    """``subscriber`` no longer receives ``track``."""

    room: Room
    subscriber: Participant
    track: SubscribedTrack


@dataclass(frozen=True)
class SubscribeRulesChanged:
    """A participant's subscribe rules changed (signaling re-evaluates its subscriptions)."""

    room: Room
    participant: Participant


@dataclass(frozen=True)
class RecordingRulesChanged:
    """A room's recording rules changed."""

    room: Room


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
