"""Room events are logged with the fields the journal indexes."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from appliance.room_log import log_room_event
from appliance.service_manager import configure_logging
from edge_sfu.rooms import RoomService
from edge_sfu.store import Store


async def test_room_story_carries_structured_fields(tmp_path: Path):
    stream = io.StringIO()
    configure_logging(logging.INFO, env={}, stream=stream)
    rooms = RoomService(Store.in_data_dir(tmp_path))
    rooms.add_listener(log_room_event)
    await rooms.start()
    try:
        who = await rooms.connect("alice", "standup")
        await rooms.publish_track(who.sid, "audio", "mic")
        await rooms.disconnect(who.sid)
    finally:
        await rooms.close()
        rooms.store.close()
    lines = stream.getvalue().splitlines()
    joined = next(line for line in lines if "alice joined standup" in line)
    assert f"PARTICIPANT_SID={who.sid}" in joined and f"ROOM_SID={who.room_sid}" in joined
    assert any("alice published audio 'mic'" in line and "TRACK_SID=MT" in line for line in lines)
    assert any("alice left standup" in line for line in lines)
    assert any("room standup created" in line for line in lines)
