"""The room model: rooms, participants and tracks, with Twilio's statuses and field names.

These are plain mutable dataclasses owned by ``RoomService``; everything outside the service
reads them and never mutates them (the service is the only writer, so its invariants and the
events it emits stay true). Times are UTC ``datetime``s; durations are whole seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

RoomStatus = Literal["in-progress", "completed", "failed"]
ParticipantStatus = Literal["connected", "disconnected", "reconnecting"]
TrackKind = Literal["audio", "video", "data"]
TRACK_KINDS: tuple[TrackKind, ...] = ("audio", "video", "data")

#: Room types Twilio still accepts; every one of them now behaves as ``group``.
ROOM_TYPE_ALIASES = frozenset({"group", "group-small", "peer-to-peer"})
VIDEO_CODECS = frozenset({"VP8", "H264"})
MAX_ROOM_NAME = 128
#: Twilio's ceiling for a group room.
MAX_PARTICIPANTS_LIMIT = 50
#: Twilio's bounds for MaxParticipantDuration (seconds).
MIN_PARTICIPANT_DURATION = 600
MAX_PARTICIPANT_DURATION = 86400
#: Twilio's bounds for EmptyRoomTimeout / UnusedRoomTimeout (minutes).
MIN_ROOM_TIMEOUT = 1
MAX_ROOM_TIMEOUT = 60


def utcnow() -> datetime:
    """The current time in UTC, whole seconds (Twilio's timestamps carry no fraction)."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class RoomDefaults:
    """What a room gets when its creator does not say (ad-hoc rooms get all of it).

    The appliance fills this from its config. Timeouts are in minutes and durations in
    seconds, as in Twilio's API.
    """

    type: str = "group"
    max_participants: int = MAX_PARTICIPANTS_LIMIT
    empty_room_timeout: int = 5
    unused_room_timeout: int = 5
    max_participant_duration: int = 14400
    #: A room ends this many seconds after it started, whatever happens (Twilio: 24 h).
    max_room_duration: int = 86400
    status_callback: str | None = None
    status_callback_method: str = "POST"
    record_participants_on_connect: bool = False
    video_codecs: tuple[str, ...] = ("VP8", "H264")
    audio_only: bool = False


@dataclass(frozen=True)
class RoomSettings:
    """The settings of one room, fixed at creation (``RoomDefaults`` plus the request)."""

    type: str
    max_participants: int
    empty_room_timeout: int
    unused_room_timeout: int
    max_participant_duration: int
    status_callback: str | None
    status_callback_method: str
    record_participants_on_connect: bool
    video_codecs: tuple[str, ...]
    audio_only: bool

    @classmethod
    def from_defaults(cls, defaults: RoomDefaults) -> RoomSettings:
        """The settings of an ad-hoc room."""
        return cls(
            type="group",
            max_participants=defaults.max_participants,
            empty_room_timeout=defaults.empty_room_timeout,
            unused_room_timeout=defaults.unused_room_timeout,
            max_participant_duration=defaults.max_participant_duration,
            status_callback=defaults.status_callback,
            status_callback_method=defaults.status_callback_method,
            record_participants_on_connect=defaults.record_participants_on_connect,
            video_codecs=defaults.video_codecs,
            audio_only=defaults.audio_only,
        )


@dataclass
class PublishedTrack:
    """A track a participant publishes (Twilio's PublishedTrack, SID ``MT...``)."""

    sid: str
    participant_sid: str
    room_sid: str
    name: str
    kind: TrackKind
    enabled: bool
    date_created: datetime
    date_updated: datetime


@dataclass
class SubscribedTrack:
    """A track a participant receives (Twilio's SubscribedTrack); ``sid`` is the published
    track's SID, as in Twilio, and ``publisher_sid`` its publisher."""

    sid: str
    participant_sid: str
    publisher_sid: str
    room_sid: str
    name: str
    kind: TrackKind
    enabled: bool
    date_created: datetime
    date_updated: datetime


@dataclass
class Participant:
    """A participant: one connection of one identity to one room."""

    sid: str
    room_sid: str
    identity: str
    status: ParticipantStatus
    date_created: datetime
    date_updated: datetime
    start_time: datetime
    end_time: datetime | None = None
    duration: int | None = None
    #: Published tracks by SID, in publication order.
    published: dict[str, PublishedTrack] = field(default_factory=dict)
    #: Tracks this participant receives, by (published) track SID.
    subscribed: dict[str, SubscribedTrack] = field(default_factory=dict)
    #: Subscribe rules as given (validated) and when they last changed.
    subscribe_rules: list[dict[str, object]] = field(
        default_factory=lambda: [{"type": "include", "all": True}]
    )
    rules_updated: datetime | None = None

    @property
    def connected(self) -> bool:
        """Still in the room (connected or reconnecting)."""
        return self.status != "disconnected"


@dataclass
class Room:
    """A room (Twilio's Room, SID ``RM...``)."""

    sid: str
    unique_name: str
    status: RoomStatus
    settings: RoomSettings
    date_created: datetime
    date_updated: datetime
    end_time: datetime | None = None
    duration: int | None = None
    #: Recording rules as given (validated); default records nothing unless the room records
    #: participants on connect.
    recording_rules: list[dict[str, object]] = field(default_factory=list)
    rules_updated: datetime | None = None
    #: Participants currently in the room (connected or reconnecting), by SID.
    participants: dict[str, Participant] = field(default_factory=dict)
    #: When the room last became empty (or was created, before anyone joined).
    empty_since: datetime | None = None
    #: Whether anyone has ever joined (decides unused vs empty timeout).
    ever_joined: bool = False

    @property
    def in_progress(self) -> bool:
        """Whether the room is still running."""
        return self.status == "in-progress"

    def by_identity(self, identity: str) -> Participant | None:
        """The connected participant with ``identity``, if any."""
        for participant in self.participants.values():
            if participant.identity == identity:
                return participant
        return None
