"""The room model as the signaling protocol shows it to clients.

Only what a client needs: SIDs, identity, state, and each publication's name, kind and
``enabled`` flag. Server-internal fields (dates, rules, store state) never go on the wire.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..rooms import Participant, PublishedTrack, Room

if TYPE_CHECKING:
    from ..media.settings import IceServer


def track_json(track: PublishedTrack) -> dict[str, Any]:
    """A publication as clients see it."""
    return {"sid": track.sid, "name": track.name, "kind": track.kind, "enabled": track.enabled}


def participant_json(participant: Participant) -> dict[str, Any]:
    """A participant and its publications."""
    return {
        "sid": participant.sid,
        "identity": participant.identity,
        "state": participant.status,
        "tracks": [track_json(t) for t in participant.published.values()],
    }


def room_json(room: Room) -> dict[str, Any]:
    """The room itself."""
    return {"sid": room.sid, "name": room.unique_name}


def ice_servers_json(servers: tuple[IceServer, ...]) -> list[dict[str, Any]]:
    """ICE servers in the shape ``RTCPeerConnection`` takes (``urls``, credentials)."""
    out: list[dict[str, Any]] = []
    for server in servers:
        entry: dict[str, Any] = {"urls": list(server.urls)}
        if server.username is not None:
            entry["username"] = server.username
        if server.credential is not None:
            entry["credential"] = server.credential
        out.append(entry)
    return out


def snapshot(room: Room, me: Participant, ice_servers: tuple[IceServer, ...]) -> dict[str, Any]:
    """The body of ``joined``: the room, this participant, the others, the ICE servers."""
    return {
        "room": room_json(room),
        "participant": participant_json(me),
        "participants": [
            participant_json(p) for p in room.participants.values() if p.sid != me.sid
        ],
        "ice_servers": ice_servers_json(ice_servers),
    }


def participant_event(kind: str, participant: Participant) -> dict[str, Any]:
    """``participant-connected`` (full participant) or a state change (SID only)."""
    if kind == "participant-connected":
        return {"type": kind, "participant": participant_json(participant)}
    return {"type": kind, "participant_sid": participant.sid}


def track_event(kind: str, participant_sid: str, track: PublishedTrack) -> dict[str, Any]:
    """``track-published`` (full track) or another track event (SID only)."""
    if kind == "track-published":
        return {"type": kind, "participant_sid": participant_sid, "track": track_json(track)}
    return {"type": kind, "participant_sid": participant_sid, "track_sid": track.sid}
