"""Recording a whole room with the SFU's recorder: every audio and video track in it.

A field unit records its own camera into a room of its own while its link is down; a hub
records every field unit's stream. Both say so with the room's Recording Rules (Twilio's
``{"type": "include", "all": true}``), so the recordings are the SFU's like any other: the
same files, quota, REST listing and callbacks (``docs/recordings.md``).
"""

from __future__ import annotations

from edge_sfu.rooms import RoomService
from edge_sfu.rooms.rules import parse_recording_rules

RECORD_EVERYTHING = '[{"type": "include", "all": true}]'


async def record_everything(rooms: RoomService, room_sid: str) -> None:
    """Record every audio and video track of the live room ``room_sid`` from now on."""
    room = rooms.live_room(room_sid)
    rules = parse_recording_rules(RECORD_EVERYTHING)
    if room is not None and room.recording_rules != rules:
        await rooms.set_recording_rules(room_sid, rules)
