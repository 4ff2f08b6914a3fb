"""Server messages: one builder per type in ``protocol``, and nobody else writes a ``type``."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import edge_sfu.signaling
from edge_sfu.rooms.model import (
    Participant,
    PublishedTrack,
    Room,
    RoomDefaults,
    RoomSettings,
    utcnow,
)
from edge_sfu.signaling import protocol as p

PA, MT = "PA" + "1" * 32, "MT" + "2" * 32


def _room() -> tuple[Room, Participant, Participant]:
    now = utcnow()
    settings = RoomSettings.from_defaults(RoomDefaults())
    room = Room("RM" + "3" * 32, "lobby", "in-progress", settings, now, now)
    me = Participant(PA, room.sid, "ann", "connected", now, now, now)
    other = Participant("PA" + "4" * 32, room.sid, "kiosk", "connected", now, now, now)
    other.published[MT] = PublishedTrack(MT, other.sid, room.sid, "cam", "video", True, now, now)
    room.participants = {me.sid: me, other.sid: other}
    return room, me, other


def test_joined_carries_state_token_and_timers() -> None:
    room, me, other = _room()
    sub = p.subscription(other.sid, MT, mid="0")
    state = p.joined_state(room, me, (), [sub], 16384)
    joined = p.joined_message(state, "tok", {"heartbeat_interval": 5.0})
    assert joined["type"] == p.MSG_JOINED == "joined" and joined["version"] == 1
    assert joined["reconnect_token"] == "tok" and joined["heartbeat_interval"] == 5.0
    assert joined["room"] == {"sid": room.sid, "name": "lobby"}
    assert joined["participant"]["identity"] == "ann"
    track = {"sid": MT, "name": "cam", "kind": "video", "enabled": True}
    assert [o["tracks"] for o in joined["participants"]] == [[track]]
    assert joined["subscriptions"] == [{"participant_sid": other.sid, "track_sid": MT, "mid": "0"}]
    assert joined["ice_servers"] == [] and joined["max_data_message_bytes"] == 16384


def test_track_and_participant_events() -> None:
    *_, other = _room()
    assert p.participant_connected_message(other)["participant"]["sid"] == other.sid
    assert p.participant_disconnected_message(PA) == {
        "type": "participant-disconnected",
        "participant_sid": PA,
    }
    published = p.track_published_message(other.sid, other.published[MT])
    assert published["type"] == "track-published" and published["track"]["name"] == "cam"
    for build, kind in (
        (p.track_unpublished_message, "track-unpublished"),
        (p.track_enabled_message, "track-enabled"),
        (p.track_disabled_message, "track-disabled"),
        (p.track_unsubscribed_message, "track-unsubscribed"),
    ):
        assert build(PA, MT) == {"type": kind, "participant_sid": PA, "track_sid": MT}


def test_subscriptions_and_publications() -> None:
    channel = {"id": 3, "ordered": True, "max_retransmits": None, "max_packet_life_time": None}
    data = p.subscription(PA, MT, channel=channel)
    assert p.track_subscribed_message(data) == {
        "type": "track-subscribed",
        "participant_sid": PA,
        "track_sid": MT,
        "channel": channel,
    }
    with pytest.raises(ValueError):
        p.subscription(PA, MT)
    with pytest.raises(ValueError):
        p.subscription(PA, MT, mid="0", channel=channel)
    assert p.published_message("cam1", MT) == {
        "type": "published",
        "tracks": [{"client_id": "cam1", "sid": MT}],
    }
    assert p.published_message("chat", MT, channel)["tracks"][0]["channel"] == channel
    offer = p.offer_message(2, "v=0\r\n", {"1": "cam1"})
    assert offer == {"type": "offer", "negotiation": 2, "sdp": "v=0\r\n", "publish": {"1": "cam1"}}
    assert p.room_completed_message() == {"type": "room-completed"}
    assert p.send_layers_message(MT, ("h", "f")) == {
        "type": "send-layers",
        "track_sid": MT,
        "rids": ["h", "f"],
    }
    assert p.send_layers_message(MT, [])["rids"] == []


def test_every_server_type_has_one_builder() -> None:
    builders = {
        name
        for name, fn in inspect.getmembers(p, inspect.isfunction)
        if name.endswith("_message") and name != "parse_client_message"
    }
    assert builders == {f"{kind.replace('-', '_')}_message" for kind in p.SERVER_MESSAGE_TYPES}
    for kind in p.SERVER_MESSAGE_TYPES:
        source = inspect.getsource(getattr(p, f"{kind.replace('-', '_')}_message"))
        constant = "MSG_" + kind.replace("-", "_").upper()
        assert getattr(p, constant) == kind and constant in source
    names = {name for name in dir(p) if name.startswith("MSG_")}
    assert {getattr(p, n) for n in names} == p.SERVER_MESSAGE_TYPES | p.CLIENT_MESSAGE_TYPES


def test_no_other_signaling_module_writes_a_message_type() -> None:
    package = Path(edge_sfu.signaling.__file__).parent
    for path in package.glob("*.py"):
        if path.name != "protocol.py":
            assert '"type"' not in path.read_text(), f"{path.name} builds a message itself"
