"""The join page shows when the room is being recorded, and the browser client says it as
Twilio's does (``room.isRecording``, ``recordingStarted`` / ``recordingStopped``)."""

from __future__ import annotations

import pytest

from edge_sfu.client import connect
from edge_sfu.rooms import RoomSettings
from edge_sfu.rooms.model import RoomDefaults
from tests.support.browser import chromium, open_page, require_chromium
from tests.support.media import H264TestSource
from tests.support.sfu import running_sfu

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

CONNECTED = "() => document.body.dataset.state === 'connected'"
BADGE = "() => !document.getElementById('recording').hidden && window.edgeRoom.isRecording"
NO_BADGE = "() => document.getElementById('recording').hidden && !window.edgeRoom.isRecording"


async def test_the_join_page_shows_the_recording(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu:
        settings = RoomSettings.from_defaults(RoomDefaults(record_participants_on_connect=True))
        await sfu.context.rooms.create_room("room1", settings)
        async with chromium() as browser:
            page = await open_page(
                browser, f"{sfu.base}/join/room1?token={sfu.token('browser')}", bypass_csp=True
            )
            await page.click("#join-button")  # the page shows a preview first
            await page.wait_for_function(CONNECTED, timeout=60_000)
            field = await connect(sfu.ws_url, sfu.token("field"))
            try:
                camera = await field.publish_encoded_video("camera")
                source = H264TestSource(camera, 320, 240)
                await page.wait_for_function(BADGE, timeout=30_000)
                assert await page.locator("#recording").is_visible()
                # rules changed live stop every recording of the room: the badge goes
                await sfu.context.rooms.set_recording_rules(
                    sfu.context.rooms.live_room_by_name("room1").sid,
                    [{"type": "exclude", "all": True}],
                )
                await page.wait_for_function(NO_BADGE, timeout=30_000)
                await source.close()
            finally:
                await field.close()
