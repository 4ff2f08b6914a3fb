"""``SignalingService``: every signaling session of the unit, and the room events they see.

It listens to the ``RoomService`` and turns each event into protocol messages for the
participants concerned; it applies subscribe rules (``reconcile``: the control plane says
which tracks a participant may receive, this decides when to subscribe) and owns one media
``Router`` per live room. Local (in-process) participants join through ``connect_local``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edge_common.lifecycle import TaskSet

from ..context import SfuContext
from ..errors import NotFound, TwilioError
from ..media.settings import MediaSettings
from ..rooms import Room
from ..rooms import events as ev
from ..tokens import verify_access_token
from . import protocol as p
from .local import LocalParticipant
from .member import RoomMember
from .session import Link, SignalingSession, SignalingSettings, State
from .signals import RoomSignals

if TYPE_CHECKING:
    from ..media import Router

logger = logging.getLogger(__name__)

#: What a participant removed by the server is told, by reason code.
REASONS = {
    ev.ROOM_COMPLETED: "Room completed",
    ev.DUPLICATE_IDENTITY: "Participant disconnected because of duplicate identity",
    ev.REMOVED_BY_REST: "Participant removed from the room",
    ev.SESSION_LENGTH_EXCEEDED: "Participant session length exceeded",
}


class SignalingService:
    """Sessions by participant SID and reconnect token; routers by room SID."""

    def __init__(
        self,
        context: SfuContext,
        media: MediaSettings | None = None,
        settings: SignalingSettings | None = None,
        *,
        tick_interval: float = 0.5,
    ) -> None:
        self.context = context
        self.rooms = context.rooms
        self.media = media or MediaSettings()
        self.settings = settings or SignalingSettings()
        self.routers: dict[str, Router] = {}
        self.sessions: dict[str, SignalingSession] = {}
        self.locals: dict[str, LocalParticipant] = {}
        self._by_token: dict[str, SignalingSession] = {}
        #: Remote participants whose sessions another endpoint holds (the Twilio-compatible
        #: one): subscribe rules are reconciled for them too, their media is theirs.
        self.foreign: set[str] = set()
        self._tick_interval = tick_interval
        self._tasks = TaskSet("signaling service")
        self._ticking = False
        self._unlisten: Callable[[], None] | None = None
        #: Dominant speaker and network quality of every live room.
        self.signals = RoomSignals(
            self.routers, self._participant_sids, self._reconnecting, context.signals
        )
        self._unlisten_recordings: Callable[[], None] | None = None

    # -- lifetime --------------------------------------------------------------------

    async def start(self) -> None:
        """Listen to the rooms and start the heartbeat / reconnect-window timer."""
        if self._unlisten is None:
            self._unlisten = self.rooms.add_listener(self._on_event)
            # recorders consume from this service's routers; clients hear what is recorded
            self.context.recordings.attach_media(self.routers.get)
            self._unlisten_recordings = self.context.recordings.add_listener(self._on_recording)
        if not self._ticking:
            self._ticking = True
            self._tasks.spawn(self._tick_forever(), name="signaling-ticker")
        self.signals.start()

    async def shutdown(self) -> None:
        """Close every session's socket (the unit is stopping); participants leave."""
        for session in list(self.sessions.values()):
            await session.close(p.SIGNALING_DISCONNECTED, "server shutting down", code=1001)

    async def close(self) -> None:
        """Stop listening, end sessions and local participants, close the routers."""
        await self.shutdown()
        for local in list(self.locals.values()):
            await local.disconnect()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._unlisten_recordings is not None:
            self._unlisten_recordings()
            self._unlisten_recordings = None
        self._ticking = False
        await self.signals.close()
        await self._tasks.close()
        for router in list(self.routers.values()):
            await router.close()
        self.routers.clear()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self._tick_interval)
            for session in list(self.sessions.values()):
                try:
                    await session.tick()
                except Exception:  # one session's failure must not stop the others' timers
                    logger.exception("signaling timer of %s failed", session.sid)

    def router(self, room_sid: str) -> Router:
        """The media router of a live room (made on first use)."""
        router = self.routers.get(room_sid)
        if router is None or router.closed:
            # aiortc/PyAV load on the first WebRTC session, not at start.
            from ..media import Router

            router = Router(room_sid, self.media)
            self.routers[room_sid] = router
        return router

    # -- joining ---------------------------------------------------------------------

    async def join(
        self, link: Link, message: p.Join, query_token: str | None
    ) -> SignalingSession | None:
        """Admit the first message of a socket: a new participant or a returning one.

        Returns the session, or None after telling the client why it was refused.
        """
        if message.reconnect_token is not None:
            return await self._resume(link, message.reconnect_token)
        try:
            return await self._admit(link, message, message.token or query_token)
        except TwilioError as exc:
            await refuse(link, exc.code, exc.message, p.CLOSE_REFUSED)
            return None

    async def _admit(
        self, link: Link, message: p.Join, token: str | None
    ) -> SignalingSession | None:
        if not token:
            await refuse(link, 20101, "Invalid Access Token: none given", p.CLOSE_AUTH)
            return None
        ctx = self.context
        claims = verify_access_token(token, ctx.keys, ctx.identity.account_sid, room=message.room)
        room_name = message.room or claims.room
        if room_name is None:
            await refuse(
                link, 53100, "no room: name one or use a room-bound token", p.CLOSE_REFUSED
            )
            return None
        participant = await self.rooms.connect(claims.identity, room_name)
        try:
            member = RoomMember(
                self.rooms,
                participant,
                self.router(participant.room_sid),
                self.media,
                self._sender(participant.sid),
            )
        except Exception:
            await self.rooms.disconnect(participant.sid, p.SIGNALING_ERROR)
            raise
        if message.bandwidth_profile is not None:
            member.bridge.set_bandwidth_profile(message.bandwidth_profile)
        member.on_publish_priority = functools.partial(
            self.publish_priority_changed, participant.room_sid, participant.sid
        )
        session = SignalingSession(
            member, secrets.token_urlsafe(32), self.settings, on_closed=self._forget
        )
        self.sessions[participant.sid] = session
        self._by_token[session.reconnect_token] = session
        try:
            session.attach(link)
        except Exception:  # e.g. the room ended meanwhile: leave no participant behind
            await session.close(p.SIGNALING_ERROR, "could not join")
            raise
        self.signals.listen(
            participant.sid,
            participant.room_sid,
            self._sender(participant.sid),
            dominant_speaker=message.dominant_speaker,
            network_quality=message.network_quality,
        )
        await self.reconcile(participant.sid)
        if self.context.recordings.is_recording(participant.room_sid):
            session.send(p.recording_started_message())
        return session

    def _participant_sids(self, room_sid: str) -> list[str] | None:
        room = self.rooms.live_room(room_sid)
        return list(room.participants) if room is not None else None

    def _reconnecting(self, participant_sid: str) -> bool:
        try:
            return self.rooms.participant(participant_sid).status == "reconnecting"
        except NotFound:
            return False

    async def _resume(self, link: Link, reconnect_token: str) -> SignalingSession | None:
        session = self._by_token.get(reconnect_token)
        if session is None or session.state is State.CLOSED:
            await refuse(
                link,
                p.SIGNALING_TIMEOUT,
                "unknown reconnect token, or the reconnect window is over",
                p.CLOSE_REFUSED,
            )
            return None
        old = session.link
        session.attach(link)
        if old is not None and old is not link:
            await old.close(p.CLOSE_REPLACED, "replaced by a newer connection")
        member = session.participation
        if isinstance(member, RoomMember):
            await member.resumed()
            # messages to a session are dropped while it reconnects: a recording that
            # started or stopped meanwhile is told now (clients act on a change only)
            recording = self.context.recordings.is_recording(member.room_sid)
            build = p.recording_started_message if recording else p.recording_stopped_message
            session.send(build())
        return session

    def _sender(self, participant_sid: str) -> Callable[[dict[str, Any]], None]:
        def send(message: dict[str, Any]) -> None:
            session = self.sessions.get(participant_sid)
            if session is not None:
                session.send(message)

        return send

    def _forget(self, session: SignalingSession) -> None:
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]
        self._by_token.pop(session.reconnect_token, None)

    # -- local participants ----------------------------------------------------------

    async def connect_local(self, room_name: str, identity: str) -> LocalParticipant:
        """Join ``room_name`` in-process (a kiosk's own camera and microphone)."""
        participant = await self.rooms.connect(identity, room_name)
        local = LocalParticipant(self.rooms, participant, self.router(participant.room_sid))
        local.on_published = lambda _track: self._reconcile_later(local.room_sid)
        self.locals[participant.sid] = local
        return local

    # -- subscribe rules -------------------------------------------------------------

    def _reconcile_later(self, room_sid: str) -> None:
        self._tasks.spawn(self._reconcile_room(room_sid))

    async def reconcile(self, participant_sid: str) -> None:
        """Subscribe a remote participant to what its rules allow, and only that."""
        if participant_sid not in self.sessions and participant_sid not in self.foreign:
            return  # local participants receive nothing unless they consume themselves
        try:
            participant = self.rooms.participant(participant_sid)
        except NotFound:
            return
        router = self.routers.get(participant.room_sid)
        allowed = {
            track.sid
            for track in self.rooms.allowed_tracks(participant_sid)
            if router is not None
            and (track.sid in router.producers or track.sid in router.data_producers)
        }
        current = set(participant.subscribed)
        try:
            for track_sid in sorted(allowed - current):
                await self.rooms.subscribe(participant_sid, track_sid)
            for track_sid in sorted(current - allowed):
                await self.rooms.unsubscribe(participant_sid, track_sid)
        except TwilioError as exc:  # the track or participant went away meanwhile
            logger.debug("reconcile %s: %s", participant_sid, exc.message)

    async def _reconcile_room(self, room_sid: str) -> None:
        room = self.rooms.live_room(room_sid)
        if room is not None:
            for sid in list(room.participants):
                await self.reconcile(sid)

    # -- room events -----------------------------------------------------------------

    def _on_recording(self, room_sid: str, recording: bool) -> None:
        room = self.rooms.live_room(room_sid)
        if room is not None:
            build = p.recording_started_message if recording else p.recording_stopped_message
            self._broadcast(room, build(), exclude="")

    def _broadcast(self, room: Room, message: dict[str, Any], exclude: str) -> None:
        for sid in list(room.participants):
            session = self.sessions.get(sid)
            if sid != exclude and session is not None:
                session.send(message)

    def _on_event(self, event: ev.RoomEvent) -> None:
        match event:
            case ev.ParticipantConnected(room=room, participant=who):
                self._broadcast(room, p.participant_connected_message(who), who.sid)
            case ev.ParticipantDisconnected(room=room, participant=who, reason_code=code):
                self._broadcast(room, p.participant_disconnected_message(who.sid), who.sid)
                self.signals.forget(who.sid)
                self._gone(who.sid, code)
            case ev.ParticipantReconnecting(room=room, participant=who):
                self._broadcast(room, p.participant_reconnecting_message(who.sid), who.sid)
            case ev.ParticipantReconnected(room=room, participant=who):
                self._broadcast(room, p.participant_reconnected_message(who.sid), who.sid)
            case _:
                self._on_track_event(event)

    def _on_track_event(self, event: ev.RoomEvent) -> None:
        match event:
            case ev.TrackPublished(room=room, participant=who, track=track):
                self._broadcast(room, p.track_published_message(who.sid, track), who.sid)
                self._tasks.spawn(self._reconcile_room(room.sid))
            case ev.TrackUnpublished(room=room, participant=who, track=track):
                message = p.track_unpublished_message(who.sid, track.sid)
                self._broadcast(room, message, who.sid)
                self._media_of(who.sid, lambda bridge: bridge.unpublished(track.sid))
            case (
                ev.TrackEnabled(room=room, participant=who, track=track)
                | ev.TrackDisabled(room=room, participant=who, track=track)
            ):
                build = p.track_enabled_message if track.enabled else p.track_disabled_message
                self._broadcast(room, build(who.sid, track.sid), who.sid)
                self._set_producer_enabled(room.sid, track.sid, track.enabled)
            case ev.TrackSubscribed(room=room, subscriber=who, track=sub):
                media = self.router(room.sid)
                producer = media.producers.get(sub.sid)
                data = media.data_producers.get(sub.sid)
                if producer is not None:
                    self._media_of(who.sid, lambda bridge: bridge.subscribe(sub.sid, producer))
                elif data is not None:
                    self._media_of(who.sid, lambda bridge: bridge.subscribe_data(sub.sid, data))
            case ev.TrackUnsubscribed(subscriber=who, track=sub):
                self._unsubscribed(who.sid, sub.publisher_sid, sub.sid)
            case ev.SubscribeRulesChanged(participant=who):
                self._tasks.spawn(self.reconcile(who.sid))
            case ev.RoomCompleted(room=room):
                router = self.routers.pop(room.sid, None)
                if router is not None:
                    self._tasks.spawn(router.close())
            case _:
                pass

    def _media_of(self, participant_sid: str, action: Callable[[Any], object]) -> None:
        session = self.sessions.get(participant_sid)
        member = session.participation if session is not None else None
        if isinstance(member, RoomMember):
            try:
                action(member.bridge)
            except TwilioError as exc:
                logger.warning("media of %s: %s", participant_sid, exc.message)

    def publish_priority_changed(
        self, room_sid: str, publisher_sid: str, track_sid: str, priority: str
    ) -> None:
        """A publisher's track priority changed: its subscribers on the unit's protocol are
        told, and every subscriber's allocation is run again."""
        room = self.rooms.live_room(room_sid)
        if room is not None:
            message = p.track_priority_changed_message(publisher_sid, track_sid, priority)
            self._broadcast(room, message, publisher_sid)
        router = self.routers.get(room_sid)
        for transport in list(router.transports.values()) if router is not None else []:
            transport.reallocate()

    def _set_producer_enabled(self, room_sid: str, track_sid: str, enabled: bool) -> None:
        router = self.routers.get(room_sid)
        producer = router.producers.get(track_sid) if router is not None else None
        if producer is not None:
            producer.set_enabled(enabled)

    def _unsubscribed(self, subscriber_sid: str, publisher_sid: str, track_sid: str) -> None:
        session = self.sessions.get(subscriber_sid)
        member = session.participation if session is not None else None
        if session is None or not isinstance(member, RoomMember):
            return
        if member.bridge.unsubscribe(track_sid):
            session.send(p.track_unsubscribed_message(publisher_sid, track_sid))

    def _gone(self, participant_sid: str, reason_code: int | None) -> None:
        local = self.locals.pop(participant_sid, None)
        if local is not None:
            local.closed_by_room()
        session = self.sessions.get(participant_sid)
        if session is None or session.state is State.CLOSED:
            return
        if reason_code == ev.ROOM_COMPLETED:
            session.send(p.room_completed_message())
        why = REASONS.get(reason_code or 0, "Participant disconnected")
        self._tasks.spawn(session.close(reason_code, why))


async def refuse(link: Link, code: int, message: str, close_code: int) -> None:
    """Tell a client why it cannot join, then close its socket."""
    link.send(p.disconnected_message(code, message))
    await link.close(close_code, f"{code} {message}"[:120])
