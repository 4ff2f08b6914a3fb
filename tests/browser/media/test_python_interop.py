"""Interop with an independent WebRTC stack: the Python client (aiortc) and Chromium in one
room, each decoding the other's video at the sent size and hearing the other's audio."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from edge_sfu.client import connect
from tests.support.browser import INBOUND_JS, chromium, joined_page, require_chromium
from tests.support.media import (
    PatternVideoTrack,
    ToneAudioTrack,
    receive_frames,
)
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def _from(entries, identity, kind):
    return [e for e in entries or [] if e["identity"] == identity and e["kind"] == kind]


def _receiving(entries) -> bool:
    video, audio = _from(entries, "py", "video"), _from(entries, "py", "audio")
    return bool(
        video and audio and video[0]["framesDecoded"] > 0 and audio[0]["totalAudioEnergy"] > 0
    )


async def test_python_client_and_browser(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu:
        py = await connect(sfu.ws_url, sfu.token("py"))
        try:
            camera = await py.publish_track(PatternVideoTrack(320, 240), "camera")
            await py.publish_track(ToneAudioTrack(), "microphone")
            async with chromium() as browser:
                page = await joined_page(browser, sfu.base, sfu.token("ann"))
                # Chromium decodes aiortc's VP8 at the size it was sent and hears the tone.
                entries = await wait_for(lambda: page.evaluate(INBOUND_JS), _receiving, 90)
                assert _receiving(entries), entries
                await asyncio.sleep(2)
                later = await page.evaluate(INBOUND_JS)
                (before,), (after,) = _from(entries, "py", "video"), _from(later, "py", "video")
                assert after["framesDecoded"] > before["framesDecoded"] + 5
                assert (after["frameWidth"], after["frameHeight"]) == (320, 240)

                # aiortc decodes Chromium's fake camera and microphone.
                async def ann_tracks():
                    return {
                        pub.kind: pub.track
                        for who in py.participants.values()
                        if who.identity == "ann"
                        for pub in who.tracks.values()
                        # The join page's chat is a data track: only its media counts here.
                        if pub.track is not None and pub.kind != "data"
                    }

                tracks = await wait_for(ann_tracks, lambda t: len(t) == 2, 60)
                assert set(tracks) == {"audio", "video"}
                frames = await receive_frames(tracks["video"], 10, timeout=60)
                assert {(f.width, f.height) for f in frames[-3:]} == {(640, 480)}
                audio = await receive_frames(tracks["audio"], 150, timeout=60)
                peak = max(int(np.abs(f.to_ndarray()).max()) for f in audio)
                assert peak > 1000  # Chromium's fake microphone beeps

                # Mute both ways.
                muted = py.expect("track_disabled", lambda pub, who: pub.kind == "audio")
                await page.click("#mic")
                pub, who = await asyncio.wait_for(muted, 20)
                assert who.identity == "ann" and not pub.enabled
                py.set_track_enabled(camera, False)
                disabled = await wait_for(
                    lambda: page.evaluate(INBOUND_JS),
                    lambda e: _from(e, "py", "video") and not _from(e, "py", "video")[0]["enabled"],
                    20,
                )
                assert not _from(disabled, "py", "video")[0]["enabled"]
                ann_tile = page.locator(
                    "figure.tile", has=page.locator(".name", has_text=re.compile("^py$"))
                )
                assert await ann_tile.locator(".cam-off").is_visible()
                await page.context.close()
        finally:
            await py.close()
