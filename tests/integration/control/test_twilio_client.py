"""The real twilio-python library talks to the unit: its tokens, its REST client, its
request validator (see ``test_callbacks`` for the validator)."""

from __future__ import annotations

import asyncio

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant
from twilio.rest import Client

from edge_sfu.tokens import verify_access_token
from tests.support.sfu import Unit

from .twilio_adapter import LocalVideoHttpClient


def twilio_client(unit: Unit) -> Client:
    return Client(
        unit.key.sid,
        unit.key.secret,
        unit.identity.account_sid,
        http_client=LocalVideoHttpClient(unit.base),
    )


async def test_twilio_access_token_joins_a_room(unit: Unit) -> None:
    token = AccessToken(unit.identity.account_sid, unit.key.sid, unit.key.secret, identity="alice")
    token.add_grant(VideoGrant(room="lobby"))
    claims = verify_access_token(
        token.to_jwt(), unit.context.keys, unit.identity.account_sid, room="lobby"
    )
    participant = await unit.context.rooms.connect(claims.identity, claims.room or "lobby")
    assert participant.identity == "alice"


async def test_twilio_rest_client_drives_rooms(unit: Unit) -> None:
    client = twilio_client(unit)
    rooms = client.video.v1.rooms

    created = await asyncio.to_thread(
        rooms.create, unique_name="standup", max_participants=2, status_callback_method="POST"
    )
    assert created.sid.startswith("RM") and created.status == "in-progress"
    assert created.max_participants == 2 and created.type == "group"

    fetched = await asyncio.to_thread(rooms(created.sid).fetch)
    assert fetched.unique_name == "standup" and fetched.date_created is not None
    by_name = await asyncio.to_thread(rooms("standup").fetch)
    assert by_name.sid == created.sid

    svc = unit.context.rooms
    await svc.connect("alice", "standup")
    await svc.connect("bob", "standup")
    participants = await asyncio.to_thread(rooms(created.sid).participants.list)
    assert sorted(p.identity for p in participants) == ["alice", "bob"]
    assert all(p.status == "connected" for p in participants)

    listed = await asyncio.to_thread(rooms.list, status="in-progress")
    assert [r.sid for r in listed] == [created.sid]

    completed = await asyncio.to_thread(rooms(created.sid).update, status="completed")
    assert completed.status == "completed" and completed.end_time is not None
    done = await asyncio.to_thread(rooms.list, status="completed", limit=20)
    assert [r.sid for r in done] == [created.sid]
    gone = await asyncio.to_thread(rooms(created.sid).participants.list, status="connected")
    assert gone == []


async def test_twilio_client_pages_through_many_rooms(unit: Unit) -> None:
    client = twilio_client(unit)
    for i in range(7):
        await unit.context.rooms.connect("alice", f"room-{i}")
    listed = await asyncio.to_thread(client.video.v1.rooms.list, page_size=3)
    assert len({r.sid for r in listed}) == 7


async def test_twilio_client_sees_twilio_errors(unit: Unit) -> None:
    client = twilio_client(unit)
    with pytest.raises(TwilioRestException) as info:
        await asyncio.to_thread(client.video.v1.rooms.create, type="go")
    assert info.value.status == 400 and info.value.code == 53108
    with pytest.raises(TwilioRestException) as info:
        await asyncio.to_thread(client.video.v1.rooms("RM" + "0" * 32).fetch)
    assert info.value.status == 404 and info.value.code == 20404


async def test_twilio_client_participant_kick_and_rules(unit: Unit) -> None:
    client = twilio_client(unit)
    alice = await unit.context.rooms.connect("alice", "lobby")
    room = client.video.v1.rooms(alice.room_sid)
    rules = await asyncio.to_thread(
        room.participants(alice.sid).subscribe_rules.update,
        rules=[{"type": "include", "kind": "audio"}],
    )
    assert rules.rules == [{"type": "include", "kind": "audio"}]
    fetched = await asyncio.to_thread(room.participants("alice").fetch)
    assert fetched.sid == alice.sid
    kicked = await asyncio.to_thread(room.participants(alice.sid).update, status="disconnected")
    assert kicked.status == "disconnected"
    assert alice.status == "disconnected"
    rec = await asyncio.to_thread(
        room.recording_rules.update, rules=[{"type": "include", "all": True}]
    )
    assert rec.rules == [{"type": "include", "all": True}]
