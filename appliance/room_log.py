"""Logs what happens in rooms with structured fields (``ROOM_SID``, ``PARTICIPANT_SID``...).

Under systemd these become journal fields (``journalctl ROOM_SID=RM...`` tells one room's
story); on stderr they are appended to the line. See ``appliance.service_manager``.
"""

from __future__ import annotations

import logging

from edge_sfu.rooms import events as ev

log = logging.getLogger("edge_appliance.rooms")


def log_room_event(event: object) -> None:
    """A room listener: one log line per lifecycle event."""
    match event:
        case ev.RoomCreated(room=room) | ev.RoomCompleted(room=room):
            what = "created" if isinstance(event, ev.RoomCreated) else "completed"
            log.info("room %s %s", room.unique_name, what, extra={"ROOM_SID": room.sid})
        case ev.ParticipantConnected(room=room, participant=who):
            log.info(
                "%s joined %s", who.identity, room.unique_name, extra=_fields(room.sid, who.sid)
            )
        case ev.ParticipantDisconnected(room=room, participant=who, reason_code=code):
            reason = f" ({code})" if code else ""
            log.info(
                "%s left %s%s",
                who.identity,
                room.unique_name,
                reason,
                extra=_fields(room.sid, who.sid),
            )
        case ev.TrackPublished(room=room, participant=who, track=track):
            log.info(
                "%s published %s %r",
                who.identity,
                track.kind,
                track.name,
                extra={**_fields(room.sid, who.sid), "TRACK_SID": track.sid},
            )
        case _:
            pass


def _fields(room_sid: str, participant_sid: str) -> dict[str, str]:
    return {"ROOM_SID": room_sid, "PARTICIPANT_SID": participant_sid}
