"""The join page: invite links, names shown as text, refusals shown with their code, and the
browser client's own reconnection within the window (same participant SID)."""

from __future__ import annotations

import asyncio

import pytest

from edge_sfu.client import connect
from edge_sfu.invites import create_invite
from tests.support.browser import INBOUND_JS, chromium, open_page, require_chromium
from tests.support.media import PatternVideoTrack
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NASTY = '<img src=x onerror="window.pwned=1">'
CONNECTED = "() => document.body.dataset.state === 'connected'"


async def test_invite_names_refusals_and_reconnect(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu:
        watcher = await connect(sfu.ws_url, sfu.token("watcher"))
        try:
            async with chromium() as browser:
                # An invite: the page asks a name, redeems the invite, joins.
                invite = create_invite(sfu.identity.auth_token, "room1")
                guest = await open_page(
                    browser, f"{sfu.base}/join/room1?invite={invite}", bypass_csp=True
                )
                assert "invite=" not in guest.url  # kept out of the address bar
                await guest.fill("#identity", NASTY)
                joined = watcher.expect("participant_connected")
                await guest.click("#invite-form button")
                await guest.wait_for_function(CONNECTED, timeout=60_000)
                assert not await guest.locator("#invite-form").is_visible()
                assert await guest.locator("#leave").is_visible()
                (who,) = await asyncio.wait_for(joined, 30)
                assert who.identity == NASTY
                # The name is text, never markup.
                assert await guest.locator(".tile.local .name").text_content() == f"{NASTY} (you)"
                assert await guest.evaluate("() => window.pwned === undefined")
                assert await guest.locator(".tile img").count() == 0

                # The same invite cannot give the same name twice.
                again = await open_page(
                    browser, f"{sfu.base}/join/room1?invite={invite}", bypass_csp=True
                )
                await again.fill("#identity", NASTY)
                await again.click("#invite-form button")
                await again.wait_for_function(
                    "() => document.getElementById('invite-error').textContent.length > 0"
                )

                # A bad token: the page says why, with Twilio's code.
                refused = await open_page(
                    browser, f"{sfu.base}/join/room1?token=abc", bypass_csp=True
                )
                await refused.click("#join-button")
                await refused.wait_for_function(
                    "() => document.body.dataset.state === 'disconnected'", timeout=30_000
                )
                assert "20101" in await refused.locator("#status").text_content()
                assert not await refused.locator("#invite-form").is_visible()
                assert not await refused.locator("#controls").is_visible()

                # The browser client reconnects by itself and keeps its SID.
                sid = await guest.evaluate("() => window.edgeRoom.localParticipant.sid")
                reconnecting = watcher.expect("participant_reconnecting")
                reconnected = watcher.expect("participant_reconnected")
                await guest.evaluate("() => window.edgeRoom._ws.close()")
                (who,) = await asyncio.wait_for(reconnecting, 30)
                assert who.sid == sid
                (who,) = await asyncio.wait_for(reconnected, 30)
                assert who.sid == sid
                await guest.wait_for_function(CONNECTED, timeout=30_000)
                assert await guest.evaluate("() => window.edgeRoom.localParticipant.sid") == sid

                # Away for a while (reconnect attempts delayed): the watcher publishes
                # meanwhile; after the reconnect the page has the track and plays it.
                await guest.evaluate(
                    """() => {
                      const room = window.edgeRoom;
                      const open = room._open.bind(room);
                      room._open = async (join) => {
                        await new Promise((r) => setTimeout(r, 1500));
                        return open(join);
                      };
                      room._ws.close();
                    }"""
                )
                await asyncio.sleep(0.5)
                await watcher.publish_track(PatternVideoTrack(320, 240), "camera")
                await guest.wait_for_function(
                    """() => [...window.edgeRoom.participants.values()].some((p) =>
                         p.identity === 'watcher' &&
                         [...p.tracks.values()].some((t) => t.track && t.kind === 'video'))""",
                    timeout=30_000,
                )
                entries = await wait_for(
                    lambda: guest.evaluate(INBOUND_JS),
                    lambda e: any(x["identity"] == "watcher" and x["framesDecoded"] > 0 for x in e),
                    30,
                )
                (video,) = [x for x in entries if x["identity"] == "watcher"]
                assert video["framesDecoded"] > 0 and video["frameWidth"] == 320
                assert await guest.evaluate("() => window.edgeRoom.localParticipant.sid") == sid

                # Leave: the others see it at once.
                left = watcher.expect("participant_disconnected")
                await guest.click("#leave")
                (who,) = await asyncio.wait_for(left, 10)
                assert who.sid == sid
        finally:
            await watcher.close()
