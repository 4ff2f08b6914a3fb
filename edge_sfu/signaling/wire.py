"""The room model as the signaling protocol shows it to clients, inside its messages.

Only what a client needs: SIDs, identity, state, and each publication's name, kind and
``enabled`` flag. Server-internal fields (dates, rules, store state) never go on the wire.
The messages themselves are built in ``protocol``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..media.settings import IceServer
    from ..rooms import Participant, PublishedTrack, Room


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
