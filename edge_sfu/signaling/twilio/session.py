"""Sessions of twilio-video.js participants, on the same rooms and SFU as the unit's own.

``TwilioService`` listens to the ``RoomService`` like ``SignalingService`` does and turns
room events into the SDK's ``update`` messages (full participant states with rising
revisions); subscribe rules are reconciled by ``SignalingService`` for these participants
too (``foreign``). A ``TwilioSession`` outlives its WebSocket for ``session_timeout``
seconds: the SDK resumes with ``sync`` and gets ``synced``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edge_common.lifecycle import TaskSet

from ...errors import NotFound, TwilioError
from ...media import Producer
from ...rooms import Participant, PublishedTrack
from ...rooms import events as ev
from ...tokens import verify_access_token
from .. import protocol as p
from ..service import SignalingService
from ..session import Link
from . import msp, rsp

if TYPE_CHECKING:
    from ...media import DataChannel, IncomingTrack

logger = logging.getLogger(__name__)

#: Updates a client may send per second (a burst twice that): more get ``bad``.
UPDATES_PER_SECOND = 20.0
#: After this many ``bad`` frames the client is disconnected (53004).
MAX_BAD = 100
#: In-band codes for participants removed by the room, by reason.
REMOVED = {
    ev.REMOVED_BY_REST: (53204, "Participant removed from the room"),
    ev.DUPLICATE_IDENTITY: (53205, "Participant disconnected because of duplicate identity"),
    ev.SESSION_LENGTH_EXCEEDED: (53216, "Participant session length exceeded"),
}


def track_json(track: PublishedTrack, priority: str = "standard") -> dict[str, Any]:
    """A publication as the SDK reads it (``priority``: its publisher's, for SDK
    publishers; others publish at ``standard``)."""
    return {
        "sid": track.sid,
        "name": track.name,
        "kind": track.kind,
        "enabled": track.enabled,
        "priority": priority,
    }


EXCLUDE_ALL: dict[str, object] = {"type": "exclude", "all": True}


def _subscribes_to_nothing(subscribe: object) -> bool:
    return isinstance(subscribe, dict) and subscribe.get("rules") == [EXCLUDE_ALL]


class TwilioSession:
    """One SDK participant: its room membership, media and current socket."""

    def __init__(self, service: TwilioService, participant: Participant) -> None:
        self.service = service
        self.sid = participant.sid
        self.room_sid = participant.room_sid
        self.identity = participant.identity
        self.key = secrets.token_urlsafe(24)
        self.link: Link | None = None
        self.closed = False
        self.last_seen = time.monotonic()
        self.bad_count = 0
        self._updates = rsp.TokenBucket(UPDATES_PER_SECOND)
        self.tracks: dict[str, rsp.TrackState] = {}  # client track id -> state
        self.sids: dict[str, str] = {}  # client track id -> track SID
        self.failed: dict[str, dict[str, Any]] = {}
        self.published_revision = 0
        self.participant_revision = 0  # the client's, from participant.revision
        # the media stack loads with the first session, not with the daemon (lazy imports)
        from .channels import MediaChannels
        from .media import TwilioMedia

        self.media = TwilioMedia(
            service.signaling.router(participant.room_sid),
            participant.sid,
            self._started,
            self._media_changed,
        )
        self.channels = MediaChannels(self.media, service.signaling.signals, self._room_sids)
        self._tasks = TaskSet(f"twilio session {participant.sid}")

    def _room_sids(self) -> list[str]:
        room = self.service.rooms.live_room(self.room_sid)
        return list(room.participants) if room is not None else []

    # -- messages to the client -------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Send a framing message if a socket is attached."""
        if self.link is not None:
            self.link.send(message)

    def send_body(self, body: dict[str, Any]) -> None:
        """Send an RSP body (``msg``)."""
        self.send(rsp.msg({"version": rsp.RSP_VERSION, "session": self.key, **body}))

    def state(self, kind: str, answer: dict[str, Any] | None = None) -> dict[str, Any]:
        """``connected`` or ``synced``: the whole room as this participant sees it."""
        rooms = self.service.rooms
        room = rooms.live_room(self.room_sid)
        if room is None:
            raise NotFound("the room is over", code=53118)
        pcs = [answer] if answer else []
        if self.media.outstanding is not None:
            pcs.append(self.media.outstanding["entry"])
        if not pcs and self.media.pc_id is not None:
            pcs.append({"id": self.media.pc_id})  # listed: the client keeps its connection
        return {
            "type": kind,
            "version": rsp.RSP_VERSION,
            "session": self.key,
            "sid": room.sid,
            "name": room.unique_name,
            "participant": {"sid": self.sid, "identity": self.identity},
            "participants": [
                self.service.participant_state(other)
                for other in room.participants.values()
                if other.sid != self.sid
            ],
            "peer_connections": pcs,
            "published": self.published(),
            "subscribed": self.media.subscribed(),
            "recording": {"is_recording": False, "revision": 1},
            "options": {
                "session_timeout": int(self.service.session_timeout),
                "signaling_region": "local",
                "media_region": "local",
            },
            # the channels asked for that the unit serves (publisher hints are not among
            # them: the SDK runs without what is not advertised)
            "media_signaling": msp.advertised(self.channels.names),
        }

    def published(self) -> dict[str, Any]:
        """``published``: the client's tracks that have a SID (or failed)."""
        tracks = [{"id": i, "sid": sid, "state": "ready"} for i, sid in self.sids.items()]
        return {"revision": self.published_revision, "tracks": tracks + list(self.failed.values())}

    def _media_changed(self) -> None:
        pcs = self.media.pending_out
        self.media.pending_out = []
        body: dict[str, Any] = {"type": "update", "subscribed": self.media.subscribed()}
        if pcs:
            body["peer_connections"] = pcs
        self.send_body(body)

    # -- messages from the client -----------------------------------------------------

    def allow_update(self) -> bool:
        """Token bucket for updates (a flood gets ``bad``, nothing else happens)."""
        return self._updates.allow()

    async def apply(self, body: rsp.Body, *, resync: bool = False) -> list[dict[str, Any]]:
        """A connect/update/sync body's tracks and descriptions; returns answers to send."""
        if body.tracks is not None:
            revision = body.revision or 0
            if revision < self.participant_revision:
                raise rsp.FrameError(
                    f"participant revision {revision} is older than {self.participant_revision}"
                )
            self.participant_revision = revision
            await self._apply_tracks(body.tracks)
        answers = []
        for pc in body.peer_connections:
            if self.media.pc_id is None:
                self.media.pc_id = pc.id
            elif pc.id != self.media.pc_id:
                raise rsp.FrameError("one peer connection per participant")
            if pc.description is not None:
                entry = await self._description(pc.description, resync)
                if entry is not None:
                    answers.append(entry)
            if pc.candidates:
                await self.media.candidates(pc.candidates)
        return answers

    async def _description(
        self, description: rsp.Description, resync: bool
    ) -> dict[str, Any] | None:
        if description.sdp is not None:
            try:
                p.validate_sdp(description.sdp)  # the unit's own structural limits
            except p.ProtocolError as exc:
                raise rsp.FrameError(exc.message) from None
        try:
            return await self.media.client_description(description, resync=resync)
        except rsp.FrameError:
            raise
        except Exception as exc:  # aiortc refused the SDP: the connection cannot be trusted
            raise TwilioError(
                f"the server could not apply the description: {str(exc)[:200]}",
                code=rsp.SERVER_REMOTE_DESC_FAILED,
            ) from exc

    async def _apply_tracks(self, tracks: tuple[rsp.TrackState, ...]) -> None:
        rooms = self.service.rooms
        wanted = {t.id: t for t in tracks}
        for track_id in list(self.tracks):
            if track_id not in wanted:
                del self.tracks[track_id]
                self.failed.pop(track_id, None)
                sid = self.sids.pop(track_id, None)
                self.published_revision += 1
                if sid is not None:
                    await rooms.unpublish_track(self.sid, sid)
        for track_id, track in wanted.items():
            before = self.tracks.get(track_id)
            self.tracks[track_id] = track
            sid = self.sids.get(track_id)
            if before is None:
                self._maybe_start(track_id)
            elif sid is not None and before.enabled != track.enabled:
                await rooms.set_track_enabled(self.sid, sid, track.enabled)
            if sid is not None and (before is None or before.priority != track.priority):
                self.service.set_priority(self.sid, sid, track.priority)

    def _started(self, track_id: str, _what: IncomingTrack | DataChannel) -> None:
        self._maybe_start(track_id)

    def _maybe_start(self, track_id: str) -> None:
        track = self.tracks.get(track_id)
        if track is None or track_id in self.sids or track_id in self.failed:
            return
        if track.kind == "data":
            ready = track_id in self.media.channels and (
                self.media.channels[track_id].readyState == "open"
            )
        else:
            incoming = self.media.incoming.get(track_id)
            ready = incoming is not None and incoming.started
        if ready:
            self._tasks.spawn(self._publish(track))

    async def _publish(self, track: rsp.TrackState) -> None:
        if track.id in self.sids or self.closed:
            return
        rooms = self.service.rooms
        try:
            published = await rooms.publish_track(
                self.sid, track.kind, track.name, enabled=track.enabled
            )
        except TwilioError as exc:
            self.failed[track.id] = {
                "id": track.id,
                "state": "failed",
                "error": {"code": exc.code, "message": exc.message},
            }
            self.published_revision += 1
            self.send_body({"type": "update", "published": self.published()})
            return
        self.sids[track.id] = published.sid
        producer = self.media.produce(track.id, published.sid)
        if track.priority != "standard":
            self.service.set_priority(self.sid, published.sid, track.priority)
        if producer is not None and track.kind != "data":
            producer.set_enabled(published.enabled)  # type: ignore[union-attr]
        self.published_revision += 1
        self.send_body({"type": "update", "published": self.published()})
        if isinstance(producer, Producer):
            self.channels.publishing(published.sid, producer)

    # -- lifetime ---------------------------------------------------------------------

    async def close(self, in_band: dict[str, Any] | None = None) -> None:
        """End the session once: tell the client (in-band), leave the room, close media."""
        if self.closed:
            return
        self.closed = True
        link, self.link = self.link, None
        if link is not None:
            if in_band is not None:
                link.send(in_band)
            await link.close(1000, "")
        self.service.forget(self)
        await self._tasks.close()
        try:
            if self.service.rooms.live_participant(self.sid) is not None:
                await self.service.rooms.disconnect(self.sid)
        finally:
            await self.media.close()


class TwilioService:
    """Every SDK session of the unit; room events become ``update`` messages."""

    def __init__(self, signaling: SignalingService, *, session_timeout: float = 30.0) -> None:
        self.signaling = signaling
        self.rooms = signaling.rooms
        self.context = signaling.context
        self.session_timeout = session_timeout
        self.sessions: dict[str, TwilioSession] = {}  # by participant SID
        self.by_key: dict[str, TwilioSession] = {}
        self._revisions: dict[str, int] = {}
        #: Publish priorities SDK publishers set (track SID -> low/standard/high); the
        #: others see them, and allocations rank the tracks by them.
        self.priorities: dict[str, str] = {}
        self._tasks = TaskSet("twilio signaling")
        self._unlisten: Callable[[], None] | None = None
        #: Messages the optional insights sink received (nothing else is kept).
        self.insights_messages = 0

    async def start(self) -> None:
        """Listen to the rooms and run the session-timeout timer."""
        self._unlisten = self.rooms.add_listener(self._on_event)
        self._tasks.spawn(self._tick_forever(), name="twilio-ticker")

    async def close(self) -> None:
        """End every session and stop listening."""
        for session in list(self.sessions.values()):
            await session.close(rsp.error(53001, "server shutting down"))
        if self._unlisten is not None:
            self._unlisten()
        await self._tasks.close()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                failure = session.media.failure
                if failure is not None:
                    await session.close(rsp.error(*failure))
                elif session.link is None and now - session.last_seen > self.session_timeout:
                    await session.close()

    # -- connect / sync ---------------------------------------------------------------

    async def connect(self, link: Link, body: rsp.Body) -> TwilioSession:
        """Admit a ``connect``: verify the token, join the room, answer the offer."""
        if not body.token:
            raise TwilioError("Invalid Access Token: none given", code=20101)
        ctx = self.context
        claims = verify_access_token(body.token, ctx.keys, ctx.identity.account_sid, room=body.name)
        room_name = body.name or claims.room
        if room_name is None:
            raise TwilioError("no room: name one or use a room-bound token", code=53100)
        participant = await self.rooms.connect(claims.identity, room_name)
        session = TwilioSession(self, participant)
        self.sessions[session.sid] = session
        self.by_key[session.key] = session
        self.signaling.foreign.add(session.sid)
        session.link = link
        try:
            if _subscribes_to_nothing(body.raw.get("subscribe")):
                # automaticSubscription: false. The app subscribes through REST rules.
                await self.rooms.set_subscribe_rules(session.sid, [EXCLUDE_ALL])
            try:
                profile = msp.bandwidth_profile(body.raw.get("bandwidth_profile"))
            except p.ProtocolError as exc:
                raise TwilioError(exc.message, code=exc.code) from None
            if profile is not None:
                session.media.transport.allocation.profile = profile
            answers = await session.apply(body)
            session.channels.open(msp.requested(body.raw.get("media_signaling")), session.room_sid)
            link.send(rsp.msg(session.state("connected", answers[0] if answers else None)))
        except BaseException:
            session.link = None  # the caller tells the client why, on this socket
            await session.close()
            raise
        await self.signaling.reconcile(session.sid)
        return session

    async def sync(self, link: Link, body: rsp.Body) -> TwilioSession:
        """Resume a session on a new socket within ``session_timeout``: ``synced``."""
        session = self.by_key.get(body.session or "")
        if session is None or session.closed:
            raise TwilioError("Participant not found", code=rsp.PARTICIPANT_NOT_FOUND)
        old, session.link = session.link, link
        if old is not None and old is not link:
            await old.close(1000, "replaced")
        session.last_seen = time.monotonic()
        if self.rooms.live_participant(session.sid) is not None:
            await self.rooms.set_reconnected(session.sid)
        answers = await session.apply(body, resync=True)
        link.send(rsp.msg(session.state("synced", answers[0] if answers else None)))
        return session

    async def link_lost(self, session: TwilioSession, link: Link) -> None:
        """The socket closed without ``disconnect``: the participant is reconnecting."""
        if session.link is not link or session.closed:
            return
        session.link = None
        session.last_seen = time.monotonic()
        if self.rooms.live_participant(session.sid) is not None:
            await self.rooms.set_reconnecting(session.sid)

    def forget(self, session: TwilioSession) -> None:
        """Drop a closed session from the indexes."""
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]
        self.by_key.pop(session.key, None)
        self.signaling.foreign.discard(session.sid)

    # -- room events ------------------------------------------------------------------

    def participant_state(self, who: Participant, state: str | None = None) -> dict[str, Any]:
        """A remote participant as the SDK reads it; its revision rises on every change."""
        return {
            "sid": who.sid,
            "identity": who.identity,
            "revision": self._revisions.setdefault(who.sid, 1),
            "state": state or who.status,
            "tracks": [
                track_json(t, self.priorities.get(t.sid, "standard"))
                for t in who.published.values()
            ],
        }

    def set_priority(self, participant_sid: str, track_sid: str, priority: str) -> None:
        """An SDK publisher changed a track's publish priority: the others are told, and
        their allocations rank the track by it (unless they set their own)."""
        if self.priorities.get(track_sid, "standard") == priority:
            return
        self.priorities[track_sid] = priority
        who = self.rooms.live_participant(participant_sid)
        if who is None:
            return
        self._changed(who.room_sid, who)
        router = self.signaling.routers.get(who.room_sid)
        producer = router.producers.get(track_sid) if router is not None else None
        if producer is not None and producer.participant_id == participant_sid:
            producer.priority = priority
            self.signaling.publish_priority_changed(
                who.room_sid, participant_sid, track_sid, priority
            )

    def _changed(self, room_sid: str, who: Participant, state: str | None = None) -> None:
        self._revisions[who.sid] = self._revisions.get(who.sid, 0) + 1
        body = {"type": "update", "participants": [self.participant_state(who, state)]}
        for session in list(self.sessions.values()):
            if session.room_sid == room_sid and session.sid != who.sid:
                session.send_body(body)

    def _on_event(self, event: ev.RoomEvent) -> None:
        match event:
            case (
                ev.ParticipantConnected(room=room, participant=who)
                | ev.ParticipantReconnecting(room=room, participant=who)
                | ev.ParticipantReconnected(room=room, participant=who)
                | ev.TrackPublished(room=room, participant=who)
                | ev.TrackUnpublished(room=room, participant=who)
                | ev.TrackEnabled(room=room, participant=who)
                | ev.TrackDisabled(room=room, participant=who)
            ):
                self._changed(room.sid, who)
                if isinstance(event, ev.TrackUnpublished) and who.sid in self.sessions:
                    self.sessions[who.sid].media.unpublished(event.track.sid)
            case ev.ParticipantDisconnected(room=room, participant=who, reason_code=code):
                self._changed(room.sid, who, "disconnected")
                self._revisions.pop(who.sid, None)
                for track_sid in who.published:
                    self.priorities.pop(track_sid, None)
                self._gone(who.sid, code)
            case ev.TrackSubscribed(room=room, subscriber=who, track=sub):
                session = self.sessions.get(who.sid)
                router = self.signaling.routers.get(room.sid)
                if session is None or router is None:
                    return
                producer = router.producers.get(sub.sid)
                data = router.data_producers.get(sub.sid)
                if producer is not None:
                    session.media.subscribe(sub.sid, producer)
                elif data is not None:
                    session.media.subscribe_data(sub.sid, data)
            case ev.TrackUnsubscribed(subscriber=who, track=sub):
                session = self.sessions.get(who.sid)
                if session is not None:
                    session.media.unsubscribe(sub.sid)
            case _:
                pass

    def _gone(self, participant_sid: str, reason_code: int | None) -> None:
        session = self.sessions.get(participant_sid)
        if session is None or session.closed:
            return
        if reason_code == ev.ROOM_COMPLETED:
            message = rsp.msg({"type": "disconnected", "status": "completed"})
        elif reason_code in REMOVED:
            message = rsp.error(*REMOVED[reason_code])
        else:
            message = rsp.msg({"type": "disconnected", "status": "disconnected"})
        self._tasks.spawn(session.close(message))
