"""``RoomService``: the live rooms of the unit, their participants and tracks.

The service is the only writer of the room model. Every change is saved to the ``Store`` (so
history survives a restart) and then announced to listeners as a typed event (see
``events``): signaling closes connections and wires media from them, ``callbacks`` turns them
into Twilio status callbacks. All methods run on the event loop; the ``async`` ones are
coroutines so an implementation may later await I/O without changing callers.

Twilio's lifecycle, as implemented here:

* a room is created by ``POST /v1/Rooms`` or ad hoc by the first ``connect`` to a name that
  has no room in progress (settings from ``RoomDefaults``); a name is unique among rooms in
  progress and free again once its room completes;
* a room nobody joined ends after ``unused_room_timeout`` minutes, a room that became empty
  after ``empty_room_timeout`` minutes, any room after ``max_room_duration`` seconds, and a
  participant is disconnected (53216) after ``max_participant_duration`` seconds;
* a full room refuses a join (53105), a completed room refuses one (53118), and a second
  connection with the same identity disconnects the first (53205).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from edge_common.lifecycle import TaskSet

from ..errors import InvalidParameter, NotFound, RoomError
from ..sids import PARTICIPANT, ROOM, TRACK, is_sid, new_sid
from ..text import is_clean
from . import events as ev
from .model import (
    MAX_ROOM_NAME,
    TRACK_KINDS,
    Participant,
    PublishedTrack,
    Room,
    RoomDefaults,
    RoomSettings,
    SubscribedTrack,
    utcnow,
)
from .rules import Rules, rules_allow

if TYPE_CHECKING:  # the store imports the model: importing it here would be a cycle
    from ..store import Store

log = logging.getLogger(__name__)

MAX_TRACK_NAME = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_room_name(name: str) -> None:
    """The one rule for a room name, wherever it comes from (REST, signaling, invites).

    1 to 128 characters (53102), printable (``edge_sfu.text``: no controls, bidirectional
    controls, zero-width or line-separator characters), no ``/``, and not ``.`` or ``..``,
    which URL normalization would turn into another path, so the room could be created but
    never fetched (53101).
    """
    if not name or len(name) > MAX_ROOM_NAME:
        raise InvalidParameter(f"Room name must be 1 to {MAX_ROOM_NAME} characters", code=53102)
    if not is_clean(name) or "/" in name or name in (".", ".."):
        raise InvalidParameter("Room name contains invalid characters", code=53101)


def _check_track_name(name: str) -> None:
    if not name:
        raise InvalidParameter("Track name is invalid: empty", code=53301)
    if len(name) > MAX_TRACK_NAME:
        raise InvalidParameter(f"Track name is longer than {MAX_TRACK_NAME} characters", code=53302)
    if _CONTROL.search(name):
        raise InvalidParameter("Track name contains invalid characters", code=53303)


class RoomService:
    """Owns the live rooms; backed by ``store`` for history.

    Call ``start()`` once (it ends rooms a dead daemon left in progress and starts the
    timeout sweeper) and ``close()`` at shutdown (it completes the live rooms and stops the
    sweeper).
    """

    def __init__(
        self,
        store: Store,
        defaults: RoomDefaults | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        sweep_interval: float = 1.0,
    ) -> None:
        """``clock`` and ``sweep_interval`` exist for tests."""
        self.store = store
        self.defaults = defaults or RoomDefaults()
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._listeners: list[ev.Listener] = []
        self._rooms: dict[str, Room] = {}
        self._names: dict[str, str] = {}
        self._participants: dict[str, Participant] = {}
        self._tracks: dict[str, PublishedTrack] = {}
        self._tasks = TaskSet("room service")

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """End rooms left in progress by a previous run, then start the timeout sweeper."""
        for sid in self.store.end_interrupted_rooms(self._clock()):
            room = self.store.get_room(sid)
            if room is not None:
                log.info("room %s was in progress at the last shutdown: ended", sid)
                self._emit(ev.RoomCompleted(room))
        if not self._tasks:
            self._tasks.spawn(self._sweep_forever(), name="room-sweeper")

    async def close(self) -> None:
        """Complete every live room (participants get 53118), then stop the sweeper."""
        for sid in list(self._rooms):
            await self.complete_room(sid)
        await self._tasks.close()

    def add_listener(self, listener: ev.Listener) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; returns a function that stops it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # -- rooms -----------------------------------------------------------------------------

    async def create_room(self, unique_name: str | None, settings: RoomSettings) -> Room:
        """Create a room (REST). Its name defaults to its SID; 53113 if the name is taken."""
        sid = new_sid(ROOM)
        name = sid if unique_name is None else unique_name
        validate_room_name(name)
        if name in self._names:
            raise RoomError(f"Room exists: {name!r} is in progress", code=53113)
        now = self._clock()
        room = Room(sid, name, "in-progress", settings, now, now, empty_since=now)
        self._rooms[sid] = room
        self._names[name] = sid
        self.store.save_room(room)
        self._emit(ev.RoomCreated(room))
        return room

    async def complete_room(self, room_sid: str) -> Room:
        """End a room: disconnect everyone (53118), mark it completed. Idempotent."""
        room = self._rooms.get(room_sid)
        if room is None:
            stored = self.store.get_room(room_sid)
            if stored is None:
                raise NotFound(f"Room {room_sid} not found")
            return stored
        for participant_sid in list(room.participants):
            await self.disconnect(participant_sid, ev.ROOM_COMPLETED)
        now = self._clock()
        room.status = "completed"
        room.end_time = room.date_updated = now
        room.duration = int((now - room.date_created).total_seconds())
        del self._rooms[room_sid]
        if self._names.get(room.unique_name) == room_sid:
            del self._names[room.unique_name]
        self.store.save_room(room)
        self._emit(ev.RoomCompleted(room))
        return room

    async def set_recording_rules(self, room_sid: str, rules: Rules) -> Room:
        """Replace a live room's recording rules (validated with ``parse_recording_rules``)."""
        room = self._live_room(room_sid)
        room.recording_rules = list(rules)
        room.rules_updated = room.date_updated = self._clock()
        self.store.save_room(room)
        self._emit(ev.RecordingRulesChanged(room))
        return room

    def live_room(self, room_sid: str) -> Room | None:
        """The room in progress with ``room_sid``, or None."""
        return self._rooms.get(room_sid)

    def live_room_by_name(self, name: str) -> Room | None:
        """The room in progress named ``name``, or None."""
        sid = self._names.get(name)
        return None if sid is None else self._rooms[sid]

    def live_rooms(self) -> list[Room]:
        """All rooms in progress."""
        return list(self._rooms.values())

    def find_room(self, sid_or_name: str) -> Room | None:
        """A room by SID (live or from history) or by the name of a room in progress."""
        if is_sid(sid_or_name, ROOM):
            return self._rooms.get(sid_or_name) or self.store.get_room(sid_or_name)
        return self.live_room_by_name(sid_or_name)

    # -- participants ----------------------------------------------------------------------

    async def connect(
        self, identity: str, room_name: str, *, create_ok: bool = True
    ) -> Participant:
        """Connect ``identity`` to the room ``room_name`` (a name, or a room SID).

        Creates the room ad hoc when the name has none in progress and ``create_ok``.
        Raises ``RoomError`` 53105 (full), 53118 (completed), ``NotFound`` 53106 (no such
        room). An identity already in the room is disconnected first, with 53205.
        """
        room = self._room_to_join(room_name, create_ok)
        previous = room.by_identity(identity)
        if previous is not None:
            await self.disconnect(previous.sid, ev.DUPLICATE_IDENTITY)
        if len(room.participants) >= room.settings.max_participants:
            raise RoomError("Room contains too many Participants", code=53105)
        now = self._clock()
        participant = Participant(
            new_sid(PARTICIPANT), room.sid, identity, "connected", now, now, now
        )
        room.participants[participant.sid] = participant
        room.ever_joined, room.empty_since = True, None
        self._participants[participant.sid] = participant
        self.store.save_participant(participant)
        self._emit(ev.ParticipantConnected(room, participant))
        return participant

    def _room_to_join(self, room_name: str, create_ok: bool) -> Room:
        if is_sid(room_name, ROOM):
            room = self._rooms.get(room_name)
            if room is not None:
                return room
            if self.store.get_room(room_name) is not None:
                raise RoomError("Room completed: it cannot be joined", code=53118)
            raise NotFound(f"Room {room_name} not found", code=53106)
        validate_room_name(room_name)
        room = self.live_room_by_name(room_name)
        if room is not None:
            return room
        if not create_ok:
            raise NotFound(f"Room {room_name!r} not found", code=53106)
        return self._create_ad_hoc(room_name)

    def _create_ad_hoc(self, name: str) -> Room:
        now = self._clock()
        settings = RoomSettings.from_defaults(self.defaults)
        room = Room(new_sid(ROOM), name, "in-progress", settings, now, now, empty_since=now)
        self._rooms[room.sid] = room
        self._names[name] = room.sid
        self.store.save_room(room)
        self._emit(ev.RoomCreated(room))
        return room

    async def disconnect(self, participant_sid: str, reason_code: int | None = None) -> None:
        """Disconnect a participant (its tracks are unpublished first). Idempotent.

        ``reason_code`` is None when the participant left by itself; otherwise it is the
        Twilio code its connection should be closed with (see ``events``).
        """
        participant = self._participants.pop(participant_sid, None)
        if participant is None:
            return
        room = self._rooms[participant.room_sid]
        for track_sid in list(participant.subscribed):
            self._drop_subscription(room, participant, track_sid)
        for track_sid in list(participant.published):
            self._drop_track(room, participant, track_sid)
        now = self._clock()
        participant.status = "disconnected"
        participant.end_time = participant.date_updated = now
        participant.duration = int((now - participant.start_time).total_seconds())
        del room.participants[participant_sid]
        if not room.participants:
            room.empty_since = now
        self.store.save_participant(participant)
        self._emit(ev.ParticipantDisconnected(room, participant, reason_code))

    async def set_reconnecting(self, participant_sid: str) -> None:
        """Mark a participant whose connection dropped as ``reconnecting``."""
        self._set_status(participant_sid, "reconnecting")

    async def set_reconnected(self, participant_sid: str) -> None:
        """Mark a reconnecting participant ``connected`` again."""
        self._set_status(participant_sid, "connected")

    def _set_status(self, participant_sid: str, status: str) -> None:
        participant = self.participant(participant_sid)
        if participant.status == status:
            return
        participant.status = "reconnecting" if status == "reconnecting" else "connected"
        participant.date_updated = self._clock()
        self.store.save_participant(participant)
        room = self._rooms[participant.room_sid]
        if status == "reconnecting":
            self._emit(ev.ParticipantReconnecting(room, participant))
        else:
            self._emit(ev.ParticipantReconnected(room, participant))

    def participant(self, participant_sid: str) -> Participant:
        """The connected participant with ``participant_sid``; ``NotFound`` otherwise."""
        participant = self._participants.get(participant_sid)
        if participant is None:
            raise NotFound(f"Participant {participant_sid} not found")
        return participant

    def live_participant(self, participant_sid: str) -> Participant | None:
        """The participant with ``participant_sid`` if it is in a room now, else None."""
        return self._participants.get(participant_sid)

    def find_participant(self, room_sid: str, sid_or_identity: str) -> Participant | None:
        """A participant of ``room_sid`` by SID (live or history), or a live one by identity."""
        if is_sid(sid_or_identity, PARTICIPANT):
            live = self._participants.get(sid_or_identity)
            if live is not None and live.room_sid == room_sid:
                return live
            return self.store.get_participant(room_sid, sid_or_identity)
        room = self._rooms.get(room_sid)
        return None if room is None else room.by_identity(sid_or_identity)

    # -- subscribe rules -------------------------------------------------------------------

    def subscribe_rules(self, participant_sid: str) -> Rules:
        """The subscribe rules of a connected participant."""
        return self.participant(participant_sid).subscribe_rules

    async def set_subscribe_rules(self, participant_sid: str, rules: Rules) -> Participant:
        """Replace a participant's subscribe rules (validated with ``parse_subscribe_rules``)."""
        participant = self.participant(participant_sid)
        participant.subscribe_rules = list(rules)
        participant.rules_updated = participant.date_updated = self._clock()
        self.store.save_participant(participant)
        self._emit(ev.SubscribeRulesChanged(self._rooms[participant.room_sid], participant))
        return participant

    def allowed_tracks(self, subscriber_sid: str) -> list[PublishedTrack]:
        """Tracks of others in the room that ``subscriber_sid``'s rules select."""
        subscriber = self.participant(subscriber_sid)
        room = self._rooms[subscriber.room_sid]
        return [
            track
            for other in room.participants.values()
            if other.sid != subscriber.sid
            for track in other.published.values()
            if rules_allow(subscriber.subscribe_rules, other.identity, track)
        ]

    # -- tracks ----------------------------------------------------------------------------

    async def publish_track(
        self, participant_sid: str, kind: str, name: str, *, enabled: bool = True
    ) -> PublishedTrack:
        """Publish a track.

        Refusals: a kind other than audio/video/data (53300), a name that is empty (53301),
        too long (53302), has control characters (53303) or is already published by this
        participant (53304), video in an audio-only room (53125).
        """
        participant = self.participant(participant_sid)
        if kind not in TRACK_KINDS:
            raise InvalidParameter(
                f"track kind must be one of {', '.join(TRACK_KINDS)}", code=53300
            )
        _check_track_name(name)
        if kind == "video" and self._rooms[participant.room_sid].settings.audio_only:
            raise RoomError("The track kind is not supported by the Room (audio only)", code=53125)
        if any(t.name == name for t in participant.published.values()):
            raise RoomError(f"Track name {name!r} is already published", code=53304)
        now = self._clock()
        room_sid = participant.room_sid
        track = PublishedTrack(
            new_sid(TRACK), participant.sid, room_sid, name, kind, enabled, now, now
        )
        participant.published[track.sid] = track
        self._tracks[track.sid] = track
        self._emit(ev.TrackPublished(self._rooms[participant.room_sid], participant, track))
        return track

    async def unpublish_track(self, participant_sid: str, track_sid: str) -> None:
        """Unpublish a track (its subscriptions end first). Idempotent."""
        participant = self.participant(participant_sid)
        if track_sid in participant.published:
            self._drop_track(self._rooms[participant.room_sid], participant, track_sid)

    async def set_track_enabled(self, participant_sid: str, track_sid: str, enabled: bool) -> None:
        """Enable (unmute) or disable (mute) a published track."""
        participant = self.participant(participant_sid)
        track = participant.published.get(track_sid)
        if track is None:
            raise NotFound(f"Track {track_sid} not found")
        if track.enabled == enabled:
            return
        track.enabled = enabled
        track.date_updated = self._clock()
        room = self._rooms[participant.room_sid]
        for other in room.participants.values():
            if track_sid in other.subscribed:
                other.subscribed[track_sid].enabled = enabled
        event = ev.TrackEnabled if enabled else ev.TrackDisabled
        self._emit(event(room, participant, track))

    def track(self, track_sid: str) -> PublishedTrack | None:
        """A live published track by SID."""
        return self._tracks.get(track_sid)

    async def subscribe(self, subscriber_sid: str, track_sid: str) -> SubscribedTrack:
        """Record that ``subscriber_sid`` receives ``track_sid`` (same room, not its own)."""
        subscriber = self.participant(subscriber_sid)
        track = self._tracks.get(track_sid)
        if track is None or track.room_sid != subscriber.room_sid:
            raise NotFound(f"Track {track_sid} not found")
        if track.participant_sid == subscriber_sid:
            raise InvalidParameter("a participant cannot subscribe to its own track")
        existing = subscriber.subscribed.get(track_sid)
        if existing is not None:
            return existing
        now = self._clock()
        sub = SubscribedTrack(
            track.sid, subscriber.sid, track.participant_sid, track.room_sid, track.name,
            track.kind, track.enabled, now, now,
        )  # fmt: skip
        subscriber.subscribed[track_sid] = sub
        self._emit(ev.TrackSubscribed(self._rooms[subscriber.room_sid], subscriber, sub))
        return sub

    async def unsubscribe(self, subscriber_sid: str, track_sid: str) -> None:
        """Stop ``subscriber_sid`` receiving ``track_sid``. Idempotent."""
        subscriber = self.participant(subscriber_sid)
        if track_sid in subscriber.subscribed:
            self._drop_subscription(self._rooms[subscriber.room_sid], subscriber, track_sid)

    def _drop_subscription(self, room: Room, subscriber: Participant, track_sid: str) -> None:
        sub = subscriber.subscribed.pop(track_sid)
        self._emit(ev.TrackUnsubscribed(room, subscriber, sub))

    def _drop_track(self, room: Room, participant: Participant, track_sid: str) -> None:
        for other in room.participants.values():
            if track_sid in other.subscribed:
                self._drop_subscription(room, other, track_sid)
        track = participant.published.pop(track_sid)
        self._tracks.pop(track_sid, None)
        self._emit(ev.TrackUnpublished(room, participant, track))

    # -- timeouts --------------------------------------------------------------------------

    async def sweep(self, now: datetime | None = None) -> None:
        """Apply the room and participant timeouts as of ``now`` (the sweeper calls this)."""
        now = now or self._clock()
        for room in list(self._rooms.values()):
            if self._room_expired(room, now):
                await self.complete_room(room.sid)
                continue
            limit = timedelta(seconds=room.settings.max_participant_duration)
            for participant in list(room.participants.values()):
                if now - participant.start_time >= limit:
                    await self.disconnect(participant.sid, ev.SESSION_LENGTH_EXCEEDED)

    def _room_expired(self, room: Room, now: datetime) -> bool:
        if now - room.date_created >= timedelta(seconds=self.defaults.max_room_duration):
            return True
        if room.participants or room.empty_since is None:
            return False
        minutes = (
            room.settings.empty_room_timeout
            if room.ever_joined
            else room.settings.unused_room_timeout
        )
        return now - room.empty_since >= timedelta(minutes=minutes)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except Exception:  # one bad room must not stop the timeouts of the others
                log.exception("room sweep failed")

    def _live_room(self, room_sid: str) -> Room:
        room = self._rooms.get(room_sid)
        if room is None:
            if self.store.get_room(room_sid) is not None:
                raise RoomError("Room completed", code=53118)
            raise NotFound(f"Room {room_sid} not found")
        return room

    def _emit(self, event: ev.RoomEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not corrupt the room model
                log.exception("room event listener failed on %s", type(event).__name__)
