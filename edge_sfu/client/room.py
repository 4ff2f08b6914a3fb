"""The Python client's room: signaling over aiohttp, media over aiortc, Twilio-like events.

Events (``room.on(name, handler)`` or ``await room.wait_for(name, predicate)``):

=========================  ==============================================================
participant_connected      (RemoteParticipant)
participant_disconnected   (RemoteParticipant)
participant_reconnecting   (RemoteParticipant)
participant_reconnected    (RemoteParticipant)
track_published            (RemoteTrackPublication, RemoteParticipant)
track_unpublished          (RemoteTrackPublication, RemoteParticipant)
track_subscribed           (MediaStreamTrack or RemoteDataTrack, RemoteTrackPublication,
                           RemoteParticipant)
track_unsubscribed         (MediaStreamTrack or RemoteDataTrack, RemoteTrackPublication,
                           RemoteParticipant)
track_enabled              (RemoteTrackPublication, RemoteParticipant)
track_disabled             (RemoteTrackPublication, RemoteParticipant)
published                  (LocalTrackPublication or LocalDataTrack)
publish_failed             (client_id, code, message)
reconnecting / reconnected ()
room_completed             ()
recording_started          (): the room is being recorded (``room.is_recording``)
recording_stopped          (): no track of the room is recorded any more
disconnected               (code or None, message)
error                      (code, message): the server refused one of our messages
=========================  ==============================================================

Asked for at ``connect`` (``dominant_speaker=True``, ``network_quality=...``), as
twilio-video.js's ``dominantSpeakerChanged`` and ``networkQualityLevelChanged``:
``dominant_speaker_changed`` (a ``RemoteParticipant``, our own ``local_sid`` when we speak,
or None) and ``network_quality_level_changed`` (the ``RemoteParticipant`` or None for
ourselves, the level 0 to 5, and the further fields at the verbosity asked for, or None).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from ssl import SSLContext
from typing import Any

from aiortc import MediaStreamTrack

from ..media.allocator import PRIORITIES, VideoBandwidthProfile
from ..rooms.events import ROOM_COMPLETED
from ..signaling.protocol import (
    CLIENT_REMOTE_DESC_FAILED,
    MAX_TRACKS_PER_MESSAGE,
    MSG_ANSWER,
    MSG_DISCONNECTED,
    MSG_DOMINANT_SPEAKER,
    MSG_ERROR,
    MSG_NETWORK_QUALITY,
    MSG_OFFER,
    MSG_PUBLISH,
    MSG_PUBLISH_FAILED,
    MSG_PUBLISHED,
    MSG_RECORDING_STARTED,
    MSG_RECORDING_STOPPED,
    MSG_ROOM_COMPLETED,
    MSG_SET_ENABLED,
    MSG_SET_PRIORITY,
    MSG_SET_PUBLISH_PRIORITY,
    MSG_SET_RENDER_SIZE,
    MSG_SET_SWITCHED_OFF,
    MSG_UNPUBLISH,
    parse_bandwidth_profile,
)
from .connection import Connection, ConnectionState
from .data import DEFAULT_MAX_MESSAGE_BYTES, LocalDataTrack, RemoteDataTrack, open_negotiated
from .events import Emitter
from .media import EncodedVideoTrack, PeerSession
from .model import (
    LocalTrackPublication,
    RemoteParticipant,
    RemoteParticipants,
    RemoteTrackPublication,
)

logger = logging.getLogger(__name__)


class PublishError(Exception):
    """The server refused to publish one of our tracks; ``code`` is the Twilio code."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Room(Emitter):
    """A connected room. Build with ``edge_sfu.client.connect``."""

    def __init__(
        self,
        url: str,
        *,
        reconnect: bool = True,
        heartbeat: bool = True,
        ssl: SSLContext | bool = True,
    ) -> None:
        super().__init__()
        self.url = url
        self.sid = ""
        self.name = ""
        self.local_sid = ""
        self.local_identity = ""
        self.local_tracks: dict[str, LocalTrackPublication] = {}
        self.local_data: dict[str, LocalDataTrack] = {}
        self.max_data_message_bytes = DEFAULT_MAX_MESSAGE_BYTES
        #: The bandwidth profile given to ``connect`` (the defaults when none was).
        self.bandwidth_profile = VideoBandwidthProfile()
        self.media: PeerSession | None = None
        self.errors: list[tuple[int, str]] = []
        #: The room's dominant speaker: a remote participant, our ``local_sid``, or None.
        self.dominant_speaker: RemoteParticipant | str | None = None
        #: Our own network quality (0 to 5, None until told) and its further fields.
        self.local_network_quality_level: int | None = None
        self.local_network_quality_stats: dict[str, Any] | None = None
        #: Whether the room is being recorded (``recording_started`` / ``recording_stopped``).
        self.is_recording = False
        self._connection = Connection(
            url,
            on_joined=self._joined,
            on_message=self._handle,
            emit=self.emit,
            reconnect=reconnect,
            heartbeat=heartbeat,
            ssl=ssl,
        )
        self._remote = RemoteParticipants(self.emit, self._receive)
        self._ids = itertools.count(1)
        #: Why the session ended (code, message), once it has.
        self._ended: tuple[int, str] | None = None
        self.on("disconnected", self._session_ended)

    @property
    def state(self) -> ConnectionState:
        """``connecting``, ``connected``, ``reconnecting`` or ``disconnected``."""
        return self._connection.state

    @property
    def participants(self) -> dict[str, RemoteParticipant]:
        """The other participants by SID."""
        return self._remote.by_sid

    @property
    def reconnect_enabled(self) -> bool:
        """Whether a lost connection is re-established within the reconnect window."""
        return self._connection.reconnect_enabled

    @reconnect_enabled.setter
    def reconnect_enabled(self, enabled: bool) -> None:
        self._connection.reconnect_enabled = enabled

    @property
    def heartbeat_enabled(self) -> bool:
        """Whether we ping the server (and give it up when it goes silent)."""
        return self._connection.heartbeat_enabled

    @heartbeat_enabled.setter
    def heartbeat_enabled(self, enabled: bool) -> None:
        self._connection.heartbeat_enabled = enabled

    def send(self, message: dict[str, Any]) -> None:
        """Send a raw protocol message (best effort; dropped while reconnecting)."""
        self._connection.send(message)

    # -- what the connection tells us ------------------------------------------------

    def _joined(self, msg: dict[str, Any], *, reconnect: bool) -> None:
        self.sid, self.name = msg["room"]["sid"], msg["room"]["name"]
        self.local_sid = msg["participant"]["sid"]
        self.local_identity = msg["participant"]["identity"]
        self.max_data_message_bytes = int(
            msg.get("max_data_message_bytes", DEFAULT_MAX_MESSAGE_BYTES)
        )
        if self.media is None:
            self.media = PeerSession(msg.get("ice_servers", []))
        self._remote.sync(msg["participants"], emit=reconnect)
        self._remote.sync_subscriptions(msg.get("subscriptions", []))

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == MSG_OFFER:
            await self._answer(msg)
        elif kind == MSG_DISCONNECTED:
            if msg.get("code") == ROOM_COMPLETED:
                self.emit("room_completed")
            await self._connection.finish(msg.get("code"), str(msg.get("message")))
        elif kind == MSG_ERROR:
            self.errors.append((int(msg.get("code", 0)), str(msg.get("message"))))
            self.emit("error", msg.get("code"), msg.get("message"))
        elif kind == MSG_ROOM_COMPLETED:
            self.emit("room_completed")
        elif kind in (MSG_RECORDING_STARTED, MSG_RECORDING_STOPPED):
            recording = kind == MSG_RECORDING_STARTED
            if recording != self.is_recording:  # a resumed session is told the state again
                self.is_recording = recording
                self.emit("recording_started" if recording else "recording_stopped")
        elif kind == MSG_PUBLISHED:
            self._published(msg)
        elif kind == MSG_PUBLISH_FAILED:
            self._publish_failed(msg)
        elif kind == MSG_DOMINANT_SPEAKER:
            self._dominant_speaker(msg)
        elif kind == MSG_NETWORK_QUALITY:
            self._network_quality(msg)
        else:
            self._remote.apply(str(kind), msg)

    def _dominant_speaker(self, msg: dict[str, Any]) -> None:
        sid = msg.get("participant_sid")
        speaker: RemoteParticipant | str | None = None
        if isinstance(sid, str):
            speaker = sid if sid == self.local_sid else self._remote.by_sid.get(sid)
            if speaker is None:
                return  # not announced to us yet: its participant-connected follows
        self.dominant_speaker = speaker
        self.emit("dominant_speaker_changed", speaker)

    def _network_quality(self, msg: dict[str, Any]) -> None:
        level = msg.get("level")
        if not isinstance(level, int):
            return
        stats = {k: v for k, v in msg.items() if k not in ("type", "participant_sid", "level")}
        sid = msg.get("participant_sid")
        who = None
        if sid == self.local_sid:
            self.local_network_quality_level = level
            self.local_network_quality_stats = stats or None
        else:
            who = self._remote.by_sid.get(str(sid))
            if who is None:
                return
            who.network_quality_level = level
            who.network_quality_stats = stats or None
        self.emit("network_quality_level_changed", who, level, stats or None)

    # -- media -----------------------------------------------------------------------

    def _receive(
        self, msg: dict[str, Any], pub: RemoteTrackPublication
    ) -> MediaStreamTrack | RemoteDataTrack | None:
        if self.media is None:
            return None
        channel = msg.get("channel")
        if isinstance(channel, dict):  # a data track: open our side of its channel
            return RemoteDataTrack(
                pub.sid, pub.name, open_negotiated(self.media.pc, pub.name, channel)
            )
        transceiver = self.media.transceiver(str(msg.get("mid")))
        return None if transceiver is None else transceiver.receiver.track

    async def _answer(self, msg: dict[str, Any]) -> None:
        assert self.media is not None
        publish = {}
        for mid, client_id in (msg.get("publish") or {}).items():
            local = self.local_tracks.get(client_id)
            if local is not None:
                publish[mid] = local.track
        try:
            sdp = await self.media.answer(msg["sdp"], publish)
        except Exception as exc:  # aiortc raises many types for a description it refuses
            logger.exception("could not answer the offer")
            await self._connection.finish(
                CLIENT_REMOTE_DESC_FAILED, f"could not apply the offer: {exc}"
            )
            return
        # unpublished while the answer was being made: it was attached after detach ran
        current = {id(local.track) for local in self.local_tracks.values()}
        for track in publish.values():
            if id(track) not in current:
                self.media.detach(track)
        self.send({"type": MSG_ANSWER, "negotiation": msg["negotiation"], "sdp": sdp})

    # -- our publications ------------------------------------------------------------

    def _published(self, msg: dict[str, Any]) -> None:
        for info in msg.get("tracks", []):
            local = self._local(info["client_id"])
            if local is None:
                continue
            if isinstance(local, LocalDataTrack) and self.media is not None:
                local.max_message_bytes = self.max_data_message_bytes
                local._open(self.media.pc, info["channel"])
            local.sid = info["sid"]
            local.published.set()
            self.emit("published", local)

    def _publish_failed(self, msg: dict[str, Any]) -> None:
        code, why = msg.get("code"), str(msg.get("message"))
        local = self._local(str(msg.get("client_id")))
        if local is not None:
            local.failure = (int(code or 0), why)
            local.published.set()  # wake publish_track / publish_data: they raise
        self.emit("publish_failed", msg.get("client_id"), code, why)

    def _local(self, client_id: str) -> LocalTrackPublication | LocalDataTrack | None:
        return self.local_tracks.get(client_id) or self.local_data.get(client_id)

    def _send_publish(self, tracks: list[LocalTrackPublication | LocalDataTrack]) -> None:
        requests = [local.request() for local in tracks]
        for start in range(0, len(requests), MAX_TRACKS_PER_MESSAGE):
            self.send(
                {"type": MSG_PUBLISH, "tracks": requests[start : start + MAX_TRACKS_PER_MESSAGE]}
            )

    def _session_ended(self, code: int | None, message: str) -> None:
        # No answer comes after the end: a publish still waiting for one fails now.
        self._ended = (int(code or 0), f"the session ended: {message}")
        pending: list[LocalTrackPublication | LocalDataTrack] = [
            *self.local_tracks.values(),
            *self.local_data.values(),
        ]
        for local in pending:
            if not local.published.is_set():
                local.failure = self._ended
                local.published.set()

    async def _wait_published(self, local: LocalTrackPublication | LocalDataTrack) -> None:
        if self._ended is not None and not local.published.is_set():
            local.failure = self._ended
            local.published.set()
        await asyncio.wait_for(local.published.wait(), 30)
        if local.failure is not None:
            self.local_tracks.pop(local.client_id, None)
            self.local_data.pop(local.client_id, None)
            raise PublishError(*local.failure)

    def _add_local(
        self, track: MediaStreamTrack, name: str, codec: str | None
    ) -> LocalTrackPublication:
        if isinstance(track, EncodedVideoTrack):
            codec = "H264"  # aiortc only packetizes pre-encoded H.264
        local = LocalTrackPublication(f"t{next(self._ids)}", name, track, codec=codec)
        self.local_tracks[local.client_id] = local
        return local

    # -- public API ------------------------------------------------------------------

    async def publish_track(
        self,
        track: MediaStreamTrack,
        name: str | None = None,
        *,
        codec: str | None = None,
        priority: str = "standard",
    ) -> LocalTrackPublication:
        """Publish an aiortc track (raw frames are encoded by aiortc); returns once the
        server has published it (``LocalTrackPublication.sid`` set). ``priority``
        (``low``, ``standard``, ``high``) is the one its subscribers give it by default."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {list(PRIORITIES)}")
        local = self._add_local(track, name or track.kind, codec)
        local.priority = priority
        if self.state == "connected":
            self._send_publish([local])
        await self._wait_published(local)
        return local

    async def publish_data(
        self,
        name: str = "data",
        *,
        ordered: bool = True,
        max_retransmits: int | None = None,
        max_packet_life_time: int | None = None,
    ) -> LocalDataTrack:
        """Publish a data track; returns once the server has published it (``send`` works).

        Reliable and ordered by default; ``max_retransmits=0`` (with ``ordered=False``) makes
        a lossy track for state that is soon stale (cursor positions, telemetry).
        Raises ``PublishError`` when the server refuses it.
        """
        local = LocalDataTrack(
            f"t{next(self._ids)}",
            name,
            ordered=ordered,
            max_retransmits=max_retransmits,
            max_packet_life_time=max_packet_life_time,
        )
        self.local_data[local.client_id] = local
        if self.state == "connected":
            self._send_publish([local])
        await self._wait_published(local)
        return local

    async def publish_encoded_video(self, name: str = "camera") -> EncodedVideoTrack:
        """Publish pre-encoded H.264: push access units into the returned track."""
        track = EncodedVideoTrack()
        await self.publish_track(track, name, codec="H264")
        return track

    def set_track_enabled(self, local: LocalTrackPublication, enabled: bool) -> None:
        """Mute (False) or unmute one of our tracks; the others get track_disabled/enabled."""
        local.enabled = enabled
        if local.sid is not None:
            self.send({"type": MSG_SET_ENABLED, "track_sid": local.sid, "enabled": enabled})

    def unpublish_track(self, local: LocalTrackPublication | LocalDataTrack) -> None:
        """Stop publishing one of our tracks; the others get track_unpublished."""
        self.local_tracks.pop(local.client_id, None)
        if isinstance(local, LocalDataTrack):
            self.local_data.pop(local.client_id, None)
            local.close()
        elif self.media is not None:
            self.media.detach(local.track)
        if local.sid is not None:
            self.send({"type": MSG_UNPUBLISH, "track_sid": local.sid})

    def set_track_priority(self, track_sid: str, priority: str | None) -> None:
        """``RemoteVideoTrack.setPriority``: our priority for a subscribed track, or None to
        go back to the publisher's. Lower-priority tracks lose layers, then are switched
        off, first when our downlink is short."""
        if priority is not None and priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {[*PRIORITIES, None]}")
        self.send({"type": MSG_SET_PRIORITY, "track_sid": track_sid, "priority": priority})

    def set_publish_priority(self, local: LocalTrackPublication, priority: str) -> None:
        """``LocalTrackPublication.setPriority``: the priority subscribers give our track."""
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {list(PRIORITIES)}")
        local.priority = priority
        if local.sid is not None:
            self.send(
                {"type": MSG_SET_PUBLISH_PRIORITY, "track_sid": local.sid, "priority": priority}
            )

    def switch_off(self, track_sid: str) -> None:
        """Ask the server to stop sending a subscribed video track (``RemoteVideoTrack.
        switchOff``; needs ``client_track_switch_off_control: manual``, as with Twilio)."""
        self._switch(track_sid, True)

    def switch_on(self, track_sid: str) -> None:
        """Ask the server to send a track switched off with ``switch_off`` again."""
        self._switch(track_sid, False)

    def _switch(self, track_sid: str, off: bool) -> None:
        if self.bandwidth_profile.client_track_switch_off_control != "manual":
            raise RuntimeError(
                "switch_off/switch_on need bandwidth_profile video "
                "client_track_switch_off_control 'manual'"
            )
        self.send({"type": MSG_SET_SWITCHED_OFF, "track_sid": track_sid, "switched_off": off})

    def set_render_size(self, track_sid: str, width: int, height: int) -> None:
        """Ask for the layer of a subscribed video track that fits ``width`` x ``height``."""
        self.send(
            {"type": MSG_SET_RENDER_SIZE, "track_sid": track_sid, "width": width, "height": height}
        )

    async def disconnect(self) -> None:
        """Leave the room for good and release everything."""
        await self._connection.leave()
        await self._connection.finish(None, "left")
        await self.close()

    async def close(self) -> None:
        """Close sockets, the peer connection and tasks without saying goodbye."""
        if self._ended is None:
            self._session_ended(None, "closed")
        await self._connection.close()
        if self.media is not None:
            await self.media.close()

    async def _start(self, join: dict[str, Any]) -> None:
        await self._connection.start(join)
        self._send_publish([*self.local_tracks.values(), *self.local_data.values()])


async def connect(
    url: str,
    token: str,
    *,
    room: str | None = None,
    tracks: list[MediaStreamTrack] | None = None,
    reconnect: bool = True,
    ssl: SSLContext | bool = True,
    bandwidth_profile: dict[str, Any] | None = None,
    dominant_speaker: bool = False,
    network_quality: bool | dict[str, str] = False,
) -> Room:
    """Join a room over ``url`` (``ws://unit:port/v1/signaling``) with an access token.

    ``tracks`` are published right away. ``bandwidth_profile`` is Twilio's
    ``bandwidthProfile`` in snake case, e.g. ``{"video": {"mode": "presentation",
    "max_subscription_bitrate": 1_000_000}}``; a bad one raises ``ProtocolError`` (a
    ``ValueError``) before anything is sent. ``dominant_speaker`` and ``network_quality``
    ask for those events as twilio-video.js's options do: ``network_quality`` True for the
    defaults (our own level, minimal), or ``{"local": ..., "remote": ...}`` with ``none``,
    ``minimal``, ``moderate`` or ``detailed``. ``ssl`` is for ``wss://``: an ``SSLContext``
    that trusts the other unit's certificate (units use self-signed ones), or False to skip
    verification on a trusted LAN. Raises ``ConnectError`` with Twilio's code when
    the server refuses (20101 bad token, 53105 room full, 53118 room completed ...).
    """
    profile = parse_bandwidth_profile(bandwidth_profile)
    client = Room(url, reconnect=reconnect, ssl=ssl)
    for track in tracks or []:
        client._add_local(track, track.kind, None)
    join: dict[str, Any] = {"token": token}
    if room is not None:
        join["room"] = room
    if dominant_speaker:
        join["dominant_speaker"] = True
    if network_quality:
        join["network_quality"] = {} if network_quality is True else dict(network_quality)
    if profile is not None:
        client.bandwidth_profile = profile
        join["bandwidth_profile"] = bandwidth_profile
    try:
        await client._start(join)
    except BaseException:
        await client.close()
        raise
    return client
