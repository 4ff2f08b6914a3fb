"""What the Python client knows of a room: participants, their publications, our own tracks.

``RemoteParticipants`` applies the server's participant and track messages (and the
snapshot a ``joined`` carries after a reconnect) to the model and announces each change
through the room's ``emit``. It knows no sockets and no peer connection: the room gives it
``receive``, which finds the track a subscription delivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import MediaStreamTrack

from ..signaling.protocol import (
    MSG_PARTICIPANT_CONNECTED,
    MSG_PARTICIPANT_DISCONNECTED,
    MSG_PARTICIPANT_RECONNECTED,
    MSG_PARTICIPANT_RECONNECTING,
    MSG_TRACK_DISABLED,
    MSG_TRACK_ENABLED,
    MSG_TRACK_PRIORITY_CHANGED,
    MSG_TRACK_PUBLISHED,
    MSG_TRACK_SUBSCRIBED,
    MSG_TRACK_SWITCHED_OFF,
    MSG_TRACK_SWITCHED_ON,
    MSG_TRACK_UNPUBLISHED,
    MSG_TRACK_UNSUBSCRIBED,
)
from .data import RemoteDataTrack

#: ``emit(event, *args)`` of the room.
Emit = Callable[..., None]
#: The track a ``track-subscribed`` body (``mid`` or ``channel``) delivers, or None.
Receive = Callable[
    [dict[str, Any], "RemoteTrackPublication"], MediaStreamTrack | RemoteDataTrack | None
]


@dataclass
class RemoteTrackPublication:
    """A track another participant publishes; ``track`` is set while subscribed."""

    sid: str
    name: str
    kind: str
    enabled: bool
    track: MediaStreamTrack | RemoteDataTrack | None = None
    #: Whether the server stopped sending the subscribed track, and why (Twilio's
    #: ``isSwitchedOff`` / ``switchOffReason``).
    is_switched_off: bool = False
    switch_off_reason: str | None = None
    #: The priority the publisher gave the track (``publishPriority``).
    publish_priority: str = "standard"


@dataclass
class RemoteParticipant:
    """Another participant: identity, SID, state and publications by track SID."""

    sid: str
    identity: str
    state: str = "connected"
    tracks: dict[str, RemoteTrackPublication] = field(default_factory=dict)
    #: Network quality 0 to 5 (None until the server said, or when not asked for) and the
    #: ``network-quality`` message's further fields at the verbosity asked for.
    network_quality_level: int | None = None
    network_quality_stats: dict[str, Any] | None = None


@dataclass
class LocalTrackPublication:
    """One of our tracks: ``sid`` is set once the server published it."""

    client_id: str
    name: str
    track: MediaStreamTrack
    enabled: bool = True
    codec: str | None = None
    #: ``low``, ``standard`` or ``high``: what subscribers give the track by default.
    priority: str = "standard"
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
        if self.priority != "standard":
            out["priority"] = self.priority
        return out


class RemoteParticipants:
    """The other participants by SID, kept in step with the server's messages."""

    def __init__(self, emit: Emit, receive: Receive) -> None:
        self.by_sid: dict[str, RemoteParticipant] = {}
        self._emit = emit
        self._receive = receive

    def apply(self, kind: str, msg: dict[str, Any]) -> None:
        """One ``participant-*`` or ``track-*`` message (others are ignored)."""
        if kind == MSG_PARTICIPANT_CONNECTED:
            self._connected(msg["participant"], emit=True)
            return
        who = self.by_sid.get(str(msg.get("participant_sid")))
        if who is None:
            return
        if kind == MSG_PARTICIPANT_DISCONNECTED:
            self._gone(who.sid)
        elif kind in (MSG_PARTICIPANT_RECONNECTING, MSG_PARTICIPANT_RECONNECTED):
            who.state = "reconnecting" if kind.endswith("reconnecting") else "connected"
            self._emit(kind.replace("-", "_"), who)
        else:
            self._track_event(kind, msg, who)

    def sync(self, participants: list[dict[str, Any]], *, emit: bool) -> None:
        """Make the model match a ``joined`` snapshot; ``emit`` the differences (after a
        reconnect) or not (the first join)."""
        seen = set()
        for info in participants:
            seen.add(info["sid"])
            if info["sid"] not in self.by_sid:
                self._connected(info, emit=emit)
            else:
                self.by_sid[info["sid"]].state = info.get("state", "connected")
                self._sync_tracks(self.by_sid[info["sid"]], info.get("tracks", []))
        for sid in [s for s in self.by_sid if s not in seen]:
            self._gone(sid)

    def sync_subscriptions(self, subscriptions: list[dict[str, Any]]) -> None:
        """After a reconnect: track-subscribed / -unsubscribed may have been sent while away."""
        current = {(s["participant_sid"], s["track_sid"]): s for s in subscriptions}
        for who in list(self.by_sid.values()):
            for pub in list(who.tracks.values()):
                subscription = current.get((who.sid, pub.sid))
                if subscription is None:
                    self._unsubscribed(who, pub)
                elif pub.track is None:
                    self._track_event(MSG_TRACK_SUBSCRIBED, subscription, who)

    def _sync_tracks(self, who: RemoteParticipant, tracks: list[dict[str, Any]]) -> None:
        # Publications changed while we were away: replay what we missed as events.
        seen = {t["sid"] for t in tracks}
        for sid in [s for s in who.tracks if s not in seen]:
            self._track_event(MSG_TRACK_UNPUBLISHED, {"track_sid": sid}, who)
        for info in tracks:
            pub = who.tracks.get(info["sid"])
            if pub is None:
                self._add_publication(who, info, emit=True)
            elif pub.enabled != info["enabled"]:
                kind = MSG_TRACK_ENABLED if info["enabled"] else MSG_TRACK_DISABLED
                self._track_event(kind, {"track_sid": pub.sid}, who)

    def _track_event(self, kind: str, msg: dict[str, Any], who: RemoteParticipant) -> None:
        if kind == MSG_TRACK_PUBLISHED:
            self._add_publication(who, msg["track"], emit=True)
            return
        pub = who.tracks.get(str(msg.get("track_sid")))
        if pub is None:
            return
        if kind == MSG_TRACK_UNPUBLISHED:
            self._unsubscribed(who, pub)
            del who.tracks[pub.sid]
            self._emit("track_unpublished", pub, who)
        elif kind in (MSG_TRACK_ENABLED, MSG_TRACK_DISABLED):
            pub.enabled = kind == MSG_TRACK_ENABLED
            self._emit(kind.replace("-", "_"), pub, who)
        elif kind == MSG_TRACK_SUBSCRIBED:
            self._subscribed(msg, pub, who)
        elif kind == MSG_TRACK_UNSUBSCRIBED:
            self._unsubscribed(who, pub)
        elif kind in (MSG_TRACK_SWITCHED_OFF, MSG_TRACK_SWITCHED_ON):
            self._switched(kind == MSG_TRACK_SWITCHED_OFF, msg, pub, who)
        elif kind == MSG_TRACK_PRIORITY_CHANGED:
            priority = str(msg.get("priority"))
            if priority != pub.publish_priority:
                pub.publish_priority = priority
                self._emit("track_publish_priority_changed", priority, pub, who)

    def _switched(
        self, off: bool, msg: dict[str, Any], pub: RemoteTrackPublication, who: RemoteParticipant
    ) -> None:
        if pub.track is None or pub.is_switched_off == off:
            return
        pub.is_switched_off = off
        pub.switch_off_reason = str(msg.get("reason") or "") if off else None
        self._emit("track_switched_off" if off else "track_switched_on", pub.track, pub, who)

    def _connected(self, info: dict[str, Any], *, emit: bool) -> None:
        who = RemoteParticipant(info["sid"], info["identity"], info.get("state", "connected"))
        self.by_sid[who.sid] = who
        if emit:
            self._emit("participant_connected", who)
        for track in info.get("tracks", []):
            self._add_publication(who, track, emit=emit)

    def _add_publication(self, who: RemoteParticipant, info: dict[str, Any], *, emit: bool) -> None:
        pub = RemoteTrackPublication(info["sid"], info["name"], info["kind"], info["enabled"])
        who.tracks[pub.sid] = pub
        if emit:
            self._emit("track_published", pub, who)

    def _gone(self, sid: str) -> None:
        who = self.by_sid.pop(sid)
        for pub in list(who.tracks.values()):
            self._unsubscribed(who, pub)
        who.state = "disconnected"
        self._emit("participant_disconnected", who)

    def _subscribed(
        self, msg: dict[str, Any], pub: RemoteTrackPublication, who: RemoteParticipant
    ) -> None:
        if pub.track is not None:
            return
        track = self._receive(msg, pub)
        if track is None:
            return
        pub.track = track
        self._emit("track_subscribed", pub.track, pub, who)

    def _unsubscribed(self, who: RemoteParticipant, pub: RemoteTrackPublication) -> None:
        pub.is_switched_off, pub.switch_off_reason = False, None
        if pub.track is not None:
            track, pub.track = pub.track, None
            if isinstance(track, RemoteDataTrack):
                track.close()
            self._emit("track_unsubscribed", track, pub, who)
