"""A WHIP publisher seen through the REST API (twilio-python), status callbacks and recordings,
as any participant is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edge_sfu.tokens import mint_access_token
from tests.integration.control.receiver import Receiver
from tests.integration.recording.test_recordings_rest import twilio, wait_recordings
from tests.support.media import PatternVideoTrack, ToneAudioTrack
from tests.support.sfu import Unit, start_unit
from tests.support.waiting import wait_for

from .aiortc_whip import AiortcWhip

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def unit(tmp_path: Path) -> AsyncIterator[Unit]:
    started = await start_unit(tmp_path)
    yield started
    await started.client.close()


async def test_whip_publisher_in_rest_callbacks_and_recordings(
    unit: Unit, receiver: Receiver
) -> None:
    client = twilio(unit)
    url = str(receiver.server.make_url("/status")) if receiver.server else ""
    room = await asyncio.to_thread(
        client.video.v1.rooms.create,
        unique_name="yard",
        record_participants_on_connect=True,
        status_callback=url,
    )
    token = mint_access_token(
        unit.identity.signing_key, unit.identity.account_sid, "cam1", room="yard"
    )
    whip = AiortcWhip()
    try:
        result = await whip.publish(
            unit.base, "yard", token, PatternVideoTrack(320, 240, 15), ToneAudioTrack()
        )
        assert result.status == 201, result.body
        participants = client.video.v1.rooms(room.sid).participants

        async def published() -> list:
            (cam,) = await asyncio.to_thread(participants.list, status="connected")
            return await asyncio.to_thread(participants(cam.sid).published_tracks.list)

        tracks = await wait_for(published, lambda t: len(t) == 2, 20, "two published tracks")
        assert sorted(t.kind for t in tracks) == ["audio", "video"]
        await asyncio.sleep(2)  # something to record
        assert await whip.delete() == 200
    finally:
        await whip.close()
    (gone,) = await asyncio.to_thread(participants.list, identity="cam1")
    assert gone.status == "disconnected"
    recordings = await wait_recordings(unit, room.sid, "completed", 2)
    assert sorted(r.codec for r in recordings) == ["OPUS", "VP8"]
    events = await wait_for(
        lambda: [
            r.params["StatusCallbackEvent"]
            for r in receiver.received
            if r.params.get("ParticipantIdentity") == "cam1"
        ],
        lambda e: "participant-disconnected" in e,
        20,
    )
    assert events[0] == "participant-connected"
    assert events.count("track-added") == 2
    assert "recording-started" in events
