"""Status callbacks: Twilio's parameters, signatures twilio-python accepts, per-room order,
retries with backoff, and an outbox that survives a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from edge_sfu.context import SfuSettings
from edge_sfu.rooms import RoomDefaults
from tests.support.sfu import Unit, start_unit

from .receiver import Receiver

EXPECTED = [
    "room-created",
    "participant-connected",
    "track-added",
    "track-disabled",
    "track-enabled",
    "participant-connected",
    "track-removed",
    "participant-disconnected",
    "participant-disconnected",
    "room-ended",
]


async def drive_a_room(unit: Unit, url: str) -> None:
    c = unit.client
    resp = await c.post(
        "/v1/Rooms", data={"UniqueName": "cb", "StatusCallback": url}, headers=unit.auth
    )
    assert resp.status == 201
    svc = unit.context.rooms
    alice = await svc.connect("alice", "cb")
    mic = await svc.publish_track(alice.sid, "audio", "mic")
    await svc.set_track_enabled(alice.sid, mic.sid, False)
    await svc.set_track_enabled(alice.sid, mic.sid, True)
    await svc.connect("bob", "cb")
    await svc.disconnect(alice.sid)
    room = svc.live_room_by_name("cb")
    assert room is not None
    await svc.complete_room(room.sid)


async def test_every_event_once_in_order_after_failures(unit: Unit) -> None:
    receiver = Receiver(fail_first=3)
    url = await receiver.start()
    try:
        await drive_a_room(unit, url)
        await receiver.wait_for(len(EXPECTED))
        await asyncio.sleep(0.2)  # nothing more (no duplicates) arrives
    finally:
        await receiver.close()
    events = [r.params["StatusCallbackEvent"] for r in receiver.received]
    assert events == EXPECTED
    assert [int(r.params["SequenceNumber"]) for r in receiver.received] == list(
        range(len(EXPECTED))
    )
    assert receiver.attempts == len(EXPECTED) + 3
    validator = RequestValidator(unit.identity.auth_token)
    for r in receiver.received:
        assert validator.validate(r.url, r.params, r.signature), r.params["StatusCallbackEvent"]
    first = receiver.received[0].params
    assert first["AccountSid"] == unit.identity.account_sid
    assert (
        first["RoomName"] == "cb"
        and first["RoomType"] == "group"
        and first["RoomStatus"] == "in-progress"
    )
    track = receiver.received[2].params
    assert (
        track["TrackKind"] == "audio"
        and track["TrackName"] == "mic"
        and track["ParticipantIdentity"] == "alice"
    )
    left = receiver.received[7].params
    assert left["ParticipantStatus"] == "disconnected" and "ParticipantDuration" in left
    assert receiver.received[-1].params["RoomStatus"] == "completed"
    assert unit.context.callbacks.pending() == 0


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_retry_is_the_same_request(unit: Unit, method: str) -> None:
    receiver = Receiver(fail_first=2)
    url = await receiver.start()
    try:
        data = {"UniqueName": "again", "StatusCallback": url, "StatusCallbackMethod": method}
        resp = await unit.client.post("/v1/Rooms", data=data, headers=unit.auth)
        assert resp.status == 201
        await unit.context.rooms.connect("alice", "again")
        await receiver.wait_for(2)
    finally:
        await receiver.close()
    # Three deliveries of room-created (two refused), byte for byte the same request, with a
    # token a receiver can drop duplicates by; the next event has a token of its own.
    first, second, third, other = receiver.raw[:4]
    assert first == second == third
    assert first[3] and other[3] and other[3] != first[3]


async def test_get_callbacks_are_signed_over_the_query(unit: Unit) -> None:
    receiver = Receiver()
    url = await receiver.start()
    try:
        data = {
            "UniqueName": "g",
            "StatusCallback": url + "?tenant=7",
            "StatusCallbackMethod": "GET",
        }
        resp = await unit.client.post("/v1/Rooms", data=data, headers=unit.auth)
        assert resp.status == 201
        await receiver.wait_for(1)
    finally:
        await receiver.close()
    got = receiver.received[0]
    assert got.method == "GET" and "StatusCallbackEvent=room-created" in got.url
    assert RequestValidator(unit.identity.auth_token).validate(got.url, {}, got.signature)


async def test_rooms_do_not_wait_for_each_other(unit: Unit) -> None:
    dead = "http://127.0.0.1:9/never"  # discard port: nothing listens, every attempt fails
    receiver = Receiver()
    url = await receiver.start()
    try:
        await unit.client.post(
            "/v1/Rooms", data={"UniqueName": "stuck", "StatusCallback": dead}, headers=unit.auth
        )
        await unit.client.post(
            "/v1/Rooms", data={"UniqueName": "fine", "StatusCallback": url}, headers=unit.auth
        )
        await receiver.wait_for(1)
    finally:
        await receiver.close()
    assert receiver.received[0].params["RoomName"] == "fine"


async def test_outbox_survives_a_restart(tmp_path: Path) -> None:
    settings = SfuSettings(sweep_interval=0.05, callback_base_delay=0.05)
    first = await start_unit(tmp_path, RoomDefaults(), settings)
    receiver = Receiver(fail_first=10**6)  # the backend is down
    url = await receiver.start()
    port = receiver.server.port
    await first.client.post(
        "/v1/Rooms", data={"UniqueName": "r", "StatusCallback": url}, headers=first.auth
    )
    await first.context.rooms.connect("alice", "r")
    await first.client.close()  # the daemon stops (the room ends: room-ended is queued too)
    await receiver.close()

    receiver = Receiver()
    await receiver.start(port=port)  # the backend comes back on the same URL
    second = await start_unit(tmp_path, RoomDefaults(), settings)
    try:
        await receiver.wait_for(4)
        await asyncio.sleep(0.2)
    finally:
        await second.client.close()
        await receiver.close()
    events = [r.params["StatusCallbackEvent"] for r in receiver.received]
    assert events == [
        "room-created",
        "participant-connected",
        "participant-disconnected",
        "room-ended",
    ]
    assert [r.params["SequenceNumber"] for r in receiver.received] == ["0", "1", "2", "3"]
