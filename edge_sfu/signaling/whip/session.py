"""WHIP publishers and WHEP viewers: participants of the unit's rooms over plain HTTP.

A session is one participant of a room, joined through ``RoomService.connect`` like every
other (so capacity, duplicate identities, REST, status callbacks and recordings treat it
the same), with one ``Transport`` on the room's router. The client offers once and never
renegotiates (RFC 9725; draft-ietf-wish-whep):

* a **publisher** (WHIP) sends; each m-line it sends on becomes a track of the room once
  its media starts (``audio``, ``video``, then ``video-2`` ...), forwarded by a producer like
  any browser's;
* a **viewer** (WHEP) receives; each of its receive-only m-lines is given a track of the room
  (or of one participant) of that kind, in publication order, when it offers. It is a
  participant that publishes nothing, listed while connected; its subscriptions show in
  REST. Tracks published later do not reach it (WHEP has no server offer): it posts again.

A session ends with DELETE, when the room removes its participant, when its media fails, or
when it has not connected within ``WhipSettings.connect_timeout``: everything is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge_common.lifecycle import TaskSet

from ...errors import NotFound, TwilioError
from ...media.errors import MediaError
from ...rooms import Participant, PublishedTrack
from ...rooms import events as ev
from ..service import SignalingService
from .sdp import FORWARDED, Offer

if TYPE_CHECKING:
    from ...media import IncomingTrack, Producer, Transport

logger = logging.getLogger(__name__)

#: Codes of refusals after the offer was accepted as SDP.
NO_SUPPORTED_MEDIA = 53404
DESCRIPTION_FAILED = 53403
#: The unit has as many sessions as ``WhipSettings.max_sessions`` allows (503, Retry-After).
TOO_MANY_SESSIONS = 20503


@dataclass(frozen=True)
class WhipSettings:
    """Timers of WHIP/WHEP sessions (seconds)."""

    #: A session whose media has not connected this long after its POST ends.
    connect_timeout: float = 30.0
    #: How often sessions are checked for failed or never-connected media.
    check_interval: float = 0.5
    #: Sessions (WHIP and WHEP together) the unit holds at once; 0: as many as rooms take.
    max_sessions: int = 0


class WhipSession:
    """One WHIP publisher or WHEP viewer: its participant, transport and resource id."""

    def __init__(
        self,
        service: WhipService,
        participant: Participant,
        transport: Transport,
        *,
        publisher: bool,
    ) -> None:
        self.service = service
        self.participant_sid = participant.sid
        self.room_sid = participant.room_sid
        self.identity = participant.identity
        self.transport = transport
        self.publisher = publisher
        #: The resource id (the secret part of its URL) and its entity tag.
        self.id = secrets.token_urlsafe(18)
        self.etag = f'"{secrets.token_hex(8)}"'
        self.ice_ufrag: str | None = None
        self.ice_pwd: str | None = None
        self.created = time.monotonic()
        self.connected_once = False
        self.closed = False
        self._incoming: dict[str, IncomingTrack] = {}  # by mid
        self._published: set[str] = set()  # mids whose track is in the room
        self._tasks = TaskSet(f"whip session {participant.sid}")

    @property
    def kind(self) -> str:
        """``whip`` or ``whep``, the protocol (and URL prefix) of the session."""
        return "whip" if self.publisher else "whep"

    # -- publishing ------------------------------------------------------------------

    def on_incoming(self, track: IncomingTrack) -> None:
        """A new m-line of the publisher's offer: publish it once its media starts."""
        if not self.publisher:
            return
        self._incoming[track.mid] = track
        if track.started:
            self._started(track)
        else:
            track.on_started = self._started

    def _started(self, track: IncomingTrack) -> None:
        if track.mid not in self._published and not self.closed:
            self._published.add(track.mid)
            self._tasks.spawn(self._publish(track), name=f"whip publish {track.mid}")

    def _track_name(self, kind: str) -> str:
        me = self.service.rooms.live_participant(self.participant_sid)
        taken = {t.name for t in me.published.values()} if me is not None else set()
        name, number = kind, 1
        while name in taken:
            number += 1
            name = f"{kind}-{number}"
        return name

    async def _publish(self, track: IncomingTrack) -> None:
        rooms = self.service.rooms
        if track.codec is None or self.closed:
            return
        try:
            published = await rooms.publish_track(
                self.participant_sid, track.kind, self._track_name(track.kind)
            )
        except TwilioError as exc:
            logger.warning("%s %s: track %s refused: %s", self.kind, self.id, track.mid, exc)
            return
        router = self.service.signaling.router(self.room_sid)
        try:
            producer = router.produce(self.transport, track, producer_id=published.sid)
        except MediaError as exc:
            logger.warning("%s %s: cannot forward %s: %s", self.kind, self.id, track.mid, exc)
            await rooms.unpublish_track(self.participant_sid, published.sid)
            return
        producer.set_enabled(published.enabled)

    # -- lifetime --------------------------------------------------------------------

    def problem(self, now: float, connect_timeout: float) -> str | None:
        """Why this session must end now, if it must."""
        state = self.transport.connection_state
        if state == "connected":
            self.connected_once = True
            return None
        if state in ("failed", "closed"):
            return f"media connection {state}"
        if not self.connected_once and now - self.created > connect_timeout:
            return "media did not connect in time"
        return None

    async def close(self, reason_code: int | None = None) -> None:
        """Leave the room (if still in it) and release the transport. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.service.forget(self)
        await self._tasks.close()
        try:
            if self.service.rooms.live_participant(self.participant_sid) is not None:
                await self.service.rooms.disconnect(self.participant_sid, reason_code)
        finally:
            await self.transport.close()


class WhipService:
    """Every WHIP and WHEP session of the unit, by resource id."""

    def __init__(self, signaling: SignalingService, settings: WhipSettings | None = None) -> None:
        self.signaling = signaling
        self.rooms = signaling.rooms
        self.context = signaling.context
        self.settings = settings or WhipSettings()
        self.sessions: dict[str, WhipSession] = {}
        self._by_participant: dict[str, WhipSession] = {}
        self._starting = 0  # POSTs between the admission check and their session
        self._tasks = TaskSet("whip")
        self._unlisten: Callable[[], None] | None = None

    async def start(self) -> None:
        """Listen to the rooms and check sessions' media now and then."""
        self._unlisten = self.rooms.add_listener(self._on_event)
        self._tasks.spawn(self._check_forever(), name="whip-expiry")

    async def close(self) -> None:
        """End every session and stop."""
        for session in list(self.sessions.values()):
            await session.close()
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        await self._tasks.close()

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.check_interval)
            now = time.monotonic()
            for session in list(self.sessions.values()):
                why = session.problem(now, self.settings.connect_timeout)
                if why is not None:
                    logger.info("%s session %s ends: %s", session.kind, session.id, why)
                    try:
                        await session.close()
                    except Exception:  # one session's failure must not stop the others'
                        logger.exception("closing %s session %s failed", session.kind, session.id)

    def forget(self, session: WhipSession) -> None:
        """Drop a closed session from the indexes."""
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        if self._by_participant.get(session.participant_sid) is session:
            del self._by_participant[session.participant_sid]

    def _on_event(self, event: ev.RoomEvent) -> None:
        # Removed through REST, replaced by a newer connection with its identity, the room
        # completed, the session length exceeded: the session ends with its participant.
        if isinstance(event, ev.ParticipantDisconnected):
            session = self._by_participant.get(event.participant.sid)
            if session is not None and not session.closed:
                self._tasks.spawn(session.close(), name=f"whip end {session.id}")

    # -- starting sessions -------------------------------------------------------------

    async def publish(
        self, identity: str, room_name: str, offer_sdp: str
    ) -> tuple[WhipSession, str]:
        """A WHIP publisher joins ``room_name``: its session and the SDP answer."""
        with self._admitted():
            participant = await self.rooms.connect(identity, room_name)
            transport = self._transport(participant)
            session = WhipSession(self, participant, transport, publisher=True)
            transport.on_incoming_track = session.on_incoming
            return session, await self._answer(session, offer_sdp, fill=False)

    @contextlib.contextmanager
    def _admitted(self) -> Iterator[None]:
        # Counted from the check until the session is registered (or refused), so that
        # POSTs arriving together cannot pass the cap between them.
        cap = self.settings.max_sessions
        if cap and len(self.sessions) + self._starting >= cap:
            raise TwilioError(
                f"the unit holds as many WHIP/WHEP sessions as it takes ({cap}): try again later",
                code=TOO_MANY_SESSIONS,
                status=503,
            )
        self._starting += 1
        try:
            yield
        finally:
            self._starting -= 1

    async def view(
        self,
        identity: str,
        room_name: str,
        source: str | None,
        offer: Offer,
        offer_sdp: str,
        track_name: str | None = None,
    ) -> tuple[WhipSession, str]:
        """A WHEP viewer joins ``room_name`` to receive the room's tracks, ``source``'s (an
        identity), or only ``source``'s track ``track_name`` (its name, or its SID): its session
        and the SDP answer."""
        with self._admitted():
            return await self._view(identity, room_name, source, offer, offer_sdp, track_name)

    async def _view(
        self,
        identity: str,
        room_name: str,
        source: str | None,
        offer: Offer,
        offer_sdp: str,
        track_name: str | None,
    ) -> tuple[WhipSession, str]:
        room = self.rooms.live_room_by_name(room_name) or self.rooms.find_room(room_name)
        live = room is not None and room.status == "in-progress"
        # (a completed room is refused by ``connect`` with its own code)
        publisher = room.by_identity(source) if room is not None and source is not None else None
        if source is not None and (room is None or live) and publisher is None:
            raise NotFound(f"Participant {source!r} is not in room {room_name!r}", code=20404)
        wanted: PublishedTrack | None = None
        if track_name is not None and publisher is not None:
            wanted = _named_track(publisher, track_name)
            if wanted is None:
                raise NotFound(
                    f"Participant {source!r} publishes no track {track_name!r}", code=20404
                )
            self._check_receivable(wanted, offer)
        participant = await self.rooms.connect(identity, room_name)
        transport = self._transport(participant)
        session = WhipSession(self, participant, transport, publisher=False)
        try:
            chosen = self._tracks_for(participant, source, offer, wanted)
            router = self.signaling.router(participant.room_sid)
            for _track, producer in chosen:
                router.consume(producer, transport, consumer_id=f"CO{producer.id}")
        except BaseException:
            await session.close()
            raise
        answer = await self._answer(session, offer_sdp, fill=True)
        for track, _producer in chosen:
            try:
                await self.rooms.subscribe(participant.sid, track.sid)
            except TwilioError as exc:  # the track went away meanwhile
                logger.debug("whep %s: %s", session.id, exc.message)
        return session, answer

    def _check_receivable(self, track: PublishedTrack, offer: Offer) -> None:
        # A session for one track that could not carry it is refused before anything
        # is made for it (406, as for an offer with no media the unit forwards).
        router = self.signaling.routers.get(track.room_sid)
        producer = router.producers.get(track.sid) if router is not None else None
        codecs = {producer.codec.name} if producer is not None else FORWARDED.get(track.kind, set())
        if not any(
            line.receives and line.kind == track.kind and line.forwarded_codecs & codecs
            for line in offer.media
        ):
            raise TwilioError(
                f"the offer has no receiving {track.kind} m-line that can carry track "
                f"{track.name!r} ({', '.join(sorted(codecs))})",
                code=NO_SUPPORTED_MEDIA,
                status=406,
            )

    def _tracks_for(
        self,
        viewer: Participant,
        source: str | None,
        offer: Offer,
        only: PublishedTrack | None = None,
    ) -> list[tuple[PublishedTrack, Producer]]:
        # Each receive-only m-line takes the next track of its kind that its codecs can
        # carry, in publication order; subscribe rules apply as to any participant.
        router = self.signaling.routers.get(viewer.room_sid)
        if router is None:
            return []
        candidates: list[tuple[PublishedTrack, Producer]] = []
        for track in sorted(
            self.rooms.allowed_tracks(viewer.sid), key=lambda t: (t.date_created, t.sid)
        ):
            producer = router.producers.get(track.sid)
            publisher = self.rooms.live_participant(track.participant_sid)
            if producer is None or producer.closed or publisher is None:
                continue
            if source is not None and publisher.identity != source:
                continue
            if only is not None and track.sid != only.sid:
                continue
            candidates.append((track, producer))
        chosen: list[tuple[PublishedTrack, Producer]] = []
        for line in offer.media:
            if not line.receives:
                continue
            for entry in candidates:
                track, producer = entry
                if track.kind == line.kind and producer.codec.name in line.forwarded_codecs:
                    chosen.append(entry)
                    candidates.remove(entry)
                    break
        return chosen

    def _transport(self, participant: Participant) -> Transport:
        try:
            return self.signaling.router(participant.room_sid).create_transport(participant.sid)
        except BaseException:
            self._tasks.spawn(self.rooms.disconnect(participant.sid), name="whip undo join")
            raise

    async def _answer(self, session: WhipSession, offer_sdp: str, *, fill: bool) -> str:
        try:
            answer = await session.transport.handle_client_offer(offer_sdp, fill_receive_lines=fill)
        except BaseException as exc:
            await session.close()
            if isinstance(exc, Exception) and not isinstance(exc, TwilioError):
                raise TwilioError(
                    f"the offer could not be applied: {str(exc)[:200]}",
                    code=DESCRIPTION_FAILED,
                    status=400,
                ) from exc
            raise
        self.sessions[session.id] = session
        self._by_participant[session.participant_sid] = session
        return answer

    def get(self, kind: str, session_id: str) -> WhipSession:
        """A live session of ``kind`` (``whip``/``whep``) by resource id; ``NotFound``."""
        session = self.sessions.get(session_id)
        if session is None or session.kind != kind or session.closed:
            raise NotFound("No such session (it ended or never existed)", code=20404)
        return session


def _named_track(publisher: Participant, name_or_sid: str) -> PublishedTrack | None:
    """``publisher``'s track named ``name_or_sid`` (names are unique per participant), else
    the one with that SID."""
    tracks = list(publisher.published.values())
    for track in tracks:
        if track.name == name_or_sid:
            return track
    for track in tracks:
        if track.sid == name_or_sid:
            return track
    return None
