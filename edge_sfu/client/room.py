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
disconnected               (code or None, message)
error                      (code, message): the server refused one of our messages
=========================  ==============================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Any

import aiohttp
from aiortc import MediaStreamTrack

from .data import LocalDataTrack, RemoteDataTrack, open_negotiated
from .events import Emitter
from .media import EncodedVideoTrack, PeerSession

logger = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
SUBPROTOCOL = "edge-sfu.v1"


class ConnectError(Exception):
    """The server refused the connection; ``code`` is the Twilio error code."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PublishError(Exception):
    """The server refused to publish one of our tracks; ``code`` is the Twilio code."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class RemoteTrackPublication:
    """A track another participant publishes; ``track`` is set while subscribed."""

    sid: str
    name: str
    kind: str
    enabled: bool
    track: MediaStreamTrack | RemoteDataTrack | None = None


@dataclass
class RemoteParticipant:
    """Another participant: identity, SID, state and publications by track SID."""

    sid: str
    identity: str
    state: str = "connected"
    tracks: dict[str, RemoteTrackPublication] = field(default_factory=dict)


@dataclass
class LocalTrackPublication:
    """One of our tracks: ``sid`` is set once the server published it."""

    client_id: str
    name: str
    track: MediaStreamTrack
    enabled: bool = True
    codec: str | None = None
    sid: str | None = None
    published: asyncio.Event = field(default_factory=asyncio.Event)
    failure: tuple[int, str] | None = None

    def request(self) -> dict[str, Any]:
        """The ``publish`` entry for this track."""
        out: dict[str, Any] = {
            "client_id": self.client_id,
            "kind": self.track.kind,
            "name": self.name,
            "enabled": self.enabled,
        }
        if self.codec is not None:
            out["codec"] = self.codec
        return out


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
        self._ssl = ssl
        self.sid = ""
        self.name = ""
        self.local_sid = ""
        self.local_identity = ""
        self.state = "connecting"
        self.participants: dict[str, RemoteParticipant] = {}
        self.local_tracks: dict[str, LocalTrackPublication] = {}
        self.local_data: dict[str, LocalDataTrack] = {}
        self.max_data_message_bytes = 16 * 1024
        self.media: PeerSession | None = None
        self.reconnect_enabled = reconnect
        self.heartbeat_enabled = heartbeat
        self.errors: list[tuple[int, str]] = []
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reconnect_token = ""
        self._timers: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._last_seen = time.monotonic()

    # -- connection ------------------------------------------------------------------

    async def _open(self, join: dict[str, Any]) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        ws = await self._session.ws_connect(
            self.url,
            ssl=self._ssl,
            protocols=(SUBPROTOCOL,),
            heartbeat=None,
            timeout=aiohttp.ClientWSTimeout(ws_close=5),
        )
        await ws.send_str(json.dumps({"type": "join", "version": PROTOCOL_VERSION, **join}))
        msg = await ws.receive(timeout=20)
        data = _json(msg)
        if data is None or data.get("type") != "joined":
            await ws.close()
            if data is not None and data.get("type") == "disconnected":
                raise ConnectError(data.get("code"), str(data.get("message")))
            raise ConnectError(53000, f"no joined message ({msg.type})")
        self._ws = ws
        self._last_seen = time.monotonic()
        return data

    async def _start(self, join: dict[str, Any]) -> None:
        joined = await self._open(join)
        self._on_joined(joined, reconnect=False)
        self._reader = asyncio.create_task(self._run(), name="edge-client-reader")
        self._send_publish([*self.local_tracks.values(), *self.local_data.values()])

    def _on_joined(self, msg: dict[str, Any], *, reconnect: bool) -> None:
        self.sid, self.name = msg["room"]["sid"], msg["room"]["name"]
        self.local_sid = msg["participant"]["sid"]
        self.local_identity = msg["participant"]["identity"]
        self._reconnect_token = msg["reconnect_token"]
        self._timers = {
            k: float(msg[k])
            for k in ("heartbeat_interval", "heartbeat_timeout", "reconnect_window")
        }
        self.max_data_message_bytes = int(msg.get("max_data_message_bytes", 16 * 1024))
        if self.media is None:
            self.media = PeerSession(msg.get("ice_servers", []))
        self._sync(msg["participants"], emit=reconnect)
        self._sync_subscriptions(msg.get("subscriptions", []))
        self.state = "connected"

    def _sync(self, participants: list[dict[str, Any]], *, emit: bool) -> None:
        seen = set()
        for info in participants:
            seen.add(info["sid"])
            if info["sid"] not in self.participants:
                self._participant_connected(info, emit=emit)
            else:
                self.participants[info["sid"]].state = info.get("state", "connected")
                self._sync_tracks(self.participants[info["sid"]], info.get("tracks", []))
        for sid in [s for s in self.participants if s not in seen]:
            self._participant_gone(sid)

    def _sync_tracks(self, who: RemoteParticipant, tracks: list[dict[str, Any]]) -> None:
        # Publications changed while we were away: replay what we missed as events.
        seen = {t["sid"] for t in tracks}
        for sid in [s for s in who.tracks if s not in seen]:
            self._on_track_event("track-unpublished", {"track_sid": sid}, who)
        for info in tracks:
            pub = who.tracks.get(info["sid"])
            if pub is None:
                self._add_publication(who, info, emit=True)
            elif pub.enabled != info["enabled"]:
                kind = "track-enabled" if info["enabled"] else "track-disabled"
                self._on_track_event(kind, {"track_sid": pub.sid}, who)

    def _sync_subscriptions(self, subscriptions: list[dict[str, Any]]) -> None:
        # After a reconnect: track-subscribed / -unsubscribed may have been sent while away.
        current = {(s["participant_sid"], s["track_sid"]): s for s in subscriptions}
        for who in list(self.participants.values()):
            for pub in list(who.tracks.values()):
                subscription = current.get((who.sid, pub.sid))
                if subscription is None:
                    self._unsubscribed(who, pub)
                elif pub.track is None:
                    self._on_track_event("track-subscribed", subscription, who)

    async def _run(self) -> None:
        while self.state != "disconnected":
            ws = self._ws
            if ws is not None:
                await self._read(ws)
            if self.state == "disconnected":
                return
            if not self.reconnect_enabled:
                await self._finish(53001, "signaling connection lost")
                return
            refusal = await self._reconnect()
            if refusal is not None:
                await self._finish(*refusal)
                return

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        beat = asyncio.create_task(self._heartbeat(ws)) if self.heartbeat_enabled else None
        try:
            async for msg in ws:
                data = _json(msg)
                self._last_seen = time.monotonic()
                if data is not None:
                    await self._handle(data)
                if self.state == "disconnected":
                    return
        finally:
            if beat is not None:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        interval = self._timers.get("heartbeat_interval", 5.0)
        timeout = self._timers.get("heartbeat_timeout", 12.0)
        while not ws.closed:
            await asyncio.sleep(interval)
            if time.monotonic() - self._last_seen > timeout:
                await ws.close()  # the server is gone silent: reconnect
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps({"type": "ping", "ref": next(self._ids)}))

    async def _reconnect(self) -> tuple[int | None, str] | None:
        """Come back with the reconnect token; None on success, else why not."""
        self.state = "reconnecting"
        self.emit("reconnecting")
        deadline = time.monotonic() + self._timers.get("reconnect_window", 30.0)
        delay = 0.25
        while time.monotonic() < deadline:
            try:
                joined = await self._open({"reconnect_token": self._reconnect_token})
            except ConnectError as exc:
                if exc.code != 53000:  # the server answered: no point in trying again
                    return (exc.code, exc.message)
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            else:
                self._on_joined(joined, reconnect=True)
                self.emit("reconnected")
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        return (53002, "could not reconnect within the reconnect window")

    async def _finish(self, code: int | None, message: str) -> None:
        if self.state == "disconnected":
            return
        self.state = "disconnected"
        self.emit("disconnected", code, message)

    def send(self, message: dict[str, Any]) -> None:
        """Send a raw protocol message (best effort; dropped while reconnecting)."""
        ws = self._ws
        if ws is not None and not ws.closed:
            task = asyncio.ensure_future(ws.send_str(json.dumps(message)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- messages --------------------------------------------------------------------

    async def _handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "ping":
            self.send({"type": "pong", "ref": msg.get("ref")})
        elif kind == "offer":
            await self._answer(msg)
        elif kind == "disconnected":
            if msg.get("code") == 53118:
                self.emit("room_completed")
            await self._finish(msg.get("code"), str(msg.get("message")))
        elif kind == "error":
            self.errors.append((int(msg.get("code", 0)), str(msg.get("message"))))
            self.emit("error", msg.get("code"), msg.get("message"))
        elif kind == "room-completed":
            self.emit("room_completed")
        else:
            self._on_room_event(str(kind), msg)

    def _on_room_event(self, kind: str, msg: dict[str, Any]) -> None:
        if kind == "participant-connected":
            self._participant_connected(msg["participant"], emit=True)
            return
        if kind == "published":
            self._published(msg)
            return
        if kind == "publish-failed":
            self._publish_failed(msg)
            return
        who = self.participants.get(str(msg.get("participant_sid")))
        if who is None:
            return
        if kind == "participant-disconnected":
            self._participant_gone(who.sid)
        elif kind in ("participant-reconnecting", "participant-reconnected"):
            who.state = "reconnecting" if kind.endswith("reconnecting") else "connected"
            self.emit(kind.replace("-", "_"), who)
        else:
            self._on_track_event(kind, msg, who)

    def _on_track_event(self, kind: str, msg: dict[str, Any], who: RemoteParticipant) -> None:
        if kind == "track-published":
            self._add_publication(who, msg["track"], emit=True)
            return
        pub = who.tracks.get(str(msg.get("track_sid")))
        if pub is None:
            return
        if kind == "track-unpublished":
            self._unsubscribed(who, pub)
            del who.tracks[pub.sid]
            self.emit("track_unpublished", pub, who)
        elif kind in ("track-enabled", "track-disabled"):
            pub.enabled = kind == "track-enabled"
            self.emit(kind.replace("-", "_"), pub, who)
        elif kind == "track-subscribed":
            self._subscribed(msg, pub, who)
        elif kind == "track-unsubscribed":
            self._unsubscribed(who, pub)

    def _participant_connected(self, info: dict[str, Any], *, emit: bool) -> None:
        who = RemoteParticipant(info["sid"], info["identity"], info.get("state", "connected"))
        self.participants[who.sid] = who
        if emit:
            self.emit("participant_connected", who)
        for track in info.get("tracks", []):
            self._add_publication(who, track, emit=emit)

    def _add_publication(self, who: RemoteParticipant, info: dict[str, Any], *, emit: bool) -> None:
        pub = RemoteTrackPublication(info["sid"], info["name"], info["kind"], info["enabled"])
        who.tracks[pub.sid] = pub
        if emit:
            self.emit("track_published", pub, who)

    def _participant_gone(self, sid: str) -> None:
        who = self.participants.pop(sid)
        for pub in list(who.tracks.values()):
            self._unsubscribed(who, pub)
        who.state = "disconnected"
        self.emit("participant_disconnected", who)

    def _subscribed(
        self, msg: dict[str, Any], pub: RemoteTrackPublication, who: RemoteParticipant
    ) -> None:
        if self.media is None or pub.track is not None:
            return
        channel = msg.get("channel")
        if isinstance(channel, dict):  # a data track: open our side of its channel
            pub.track = RemoteDataTrack(
                pub.sid, pub.name, open_negotiated(self.media.pc, pub.name, channel)
            )
        else:
            transceiver = self.media.transceiver(str(msg.get("mid")))
            if transceiver is None:
                return
            pub.track = transceiver.receiver.track
        self.emit("track_subscribed", pub.track, pub, who)

    def _unsubscribed(self, who: RemoteParticipant, pub: RemoteTrackPublication) -> None:
        if pub.track is not None:
            track, pub.track = pub.track, None
            if isinstance(track, RemoteDataTrack):
                track.close()
            self.emit("track_unsubscribed", track, pub, who)

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
            await self._finish(53402, f"could not apply the offer: {exc}")
            return
        self.send({"type": "answer", "negotiation": msg["negotiation"], "sdp": sdp})

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
        for start in range(0, len(requests), 16):  # the protocol's limit per message
            self.send({"type": "publish", "tracks": requests[start : start + 16]})

    async def _wait_published(self, local: LocalTrackPublication | LocalDataTrack) -> None:
        await asyncio.wait_for(local.published.wait(), 30)
        if local.failure is not None:
            self.local_tracks.pop(local.client_id, None)
            self.local_data.pop(local.client_id, None)
            raise PublishError(*local.failure)

    # -- public API ------------------------------------------------------------------

    async def publish_track(
        self, track: MediaStreamTrack, name: str | None = None, *, codec: str | None = None
    ) -> LocalTrackPublication:
        """Publish an aiortc track (raw frames are encoded by aiortc); returns once the
        server has published it (``LocalTrackPublication.sid`` set)."""
        local = self._add_local(track, name or track.kind, codec)
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

    def _add_local(
        self, track: MediaStreamTrack, name: str, codec: str | None
    ) -> LocalTrackPublication:
        if isinstance(track, EncodedVideoTrack):
            codec = "H264"  # aiortc only packetizes pre-encoded H.264
        local = LocalTrackPublication(f"t{next(self._ids)}", name, track, codec=codec)
        self.local_tracks[local.client_id] = local
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
            self.send({"type": "set-enabled", "track_sid": local.sid, "enabled": enabled})

    def unpublish_track(self, local: LocalTrackPublication | LocalDataTrack) -> None:
        """Stop publishing one of our tracks; the others get track_unpublished."""
        self.local_tracks.pop(local.client_id, None)
        if isinstance(local, LocalDataTrack):
            self.local_data.pop(local.client_id, None)
            local.close()
        if local.sid is not None:
            self.send({"type": "unpublish", "track_sid": local.sid})

    def set_render_size(self, track_sid: str, width: int, height: int) -> None:
        """Ask for the layer of a subscribed video track that fits ``width`` x ``height``."""
        self.send(
            {"type": "set-render-size", "track_sid": track_sid, "width": width, "height": height}
        )

    async def disconnect(self) -> None:
        """Leave the room for good and release everything."""
        ws = self._ws
        if ws is not None and not ws.closed and self.state != "disconnected":
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(json.dumps({"type": "leave"}))
        await self._finish(None, "left")
        await self.close()

    async def close(self) -> None:
        """Close sockets, the peer connection and tasks without saying goodbye."""
        self.state = "disconnected"
        if self._ws is not None:
            await self._ws.close()
        for task in [t for t in (self._reader, *self._tasks) if t is not None]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.media is not None:
            await self.media.close()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _json(msg: aiohttp.WSMessage) -> dict[str, Any] | None:
    if msg.type is not aiohttp.WSMsgType.TEXT:
        return None
    try:
        data = json.loads(msg.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


async def connect(
    url: str,
    token: str,
    *,
    room: str | None = None,
    tracks: list[MediaStreamTrack] | None = None,
    reconnect: bool = True,
    ssl: SSLContext | bool = True,
) -> Room:
    """Join a room over ``url`` (``ws://unit:port/v1/signaling``) with an access token.

    ``tracks`` are published right away. ``ssl`` is for ``wss://``: an ``SSLContext`` that
    trusts the other unit's certificate (units use self-signed ones), or False to skip
    verification on a trusted LAN. Raises ``ConnectError`` with Twilio's code when
    the server refuses (20101 bad token, 53105 room full, 53118 room completed ...).
    """
    client = Room(url, reconnect=reconnect, ssl=ssl)
    for track in tracks or []:
        client._add_local(track, track.kind, None)
    join: dict[str, Any] = {"token": token}
    if room is not None:
        join["room"] = room
    try:
        await client._start(join)
    except BaseException:
        await client.close()
        raise
    return client
