"""M-lines are reused both ways with Chromium: a page that receives a publisher which publishes
and unpublishes again and again keeps one m-line for it, and a page that publishes and
unpublishes again and again keeps one m-line per kind for its own tracks; each new
publication plays at its own size."""

from __future__ import annotations

import asyncio

import pytest

from edge_sfu.client import connect
from tests.support.browser import INBOUND_JS, chromium, joined_page, require_chromium
from tests.support.media import PatternVideoTrack
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TRANSCEIVERS_JS = "() => window.edgeRoom._pc.getTransceivers().length"


def _video_from_py(entries):
    return [e for e in entries or [] if e["identity"] == "py" and e["kind"] == "video"]


async def test_browser_plays_each_publication_on_a_reused_m_line(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu:
        py = await connect(sfu.ws_url, sfu.token("py"))
        try:
            async with chromium() as browser:
                page = await joined_page(browser, sfu.base, sfu.token("ann"))
                counts = []
                for width, height in ((320, 240), (160, 120), (320, 240), (160, 120)):
                    camera = await py.publish_track(PatternVideoTrack(width, height), "camera")

                    def plays(entries, size=(width, height)):
                        video = _video_from_py(entries)
                        return (
                            bool(video)
                            and (
                                video[0]["frameWidth"],
                                video[0]["frameHeight"],
                            )
                            == size
                        )

                    entries = await wait_for(lambda: page.evaluate(INBOUND_JS), plays, 60)
                    assert plays(entries), entries
                    before = _video_from_py(entries)[0]["framesDecoded"]
                    later = await wait_for(
                        lambda: page.evaluate(INBOUND_JS),
                        lambda e, n=before: (
                            (_video_from_py(e) or [{}])[0].get("framesDecoded", 0) > n + 5
                        ),
                        30,
                    )
                    assert _video_from_py(later)[0]["framesDecoded"] > before + 5
                    counts.append(await page.evaluate(TRANSCEIVERS_JS))
                    py.unpublish_track(camera)
                    await wait_for(
                        lambda: page.evaluate(INBOUND_JS),
                        lambda e: not _video_from_py(e),
                        30,
                    )
                    await asyncio.sleep(0.5)
                # The page's own camera and microphone, and one m-line for py's video.
                assert len(set(counts)) == 1, counts
                await page.context.close()
        finally:
            await py.close()


# A video track of the page's own: a canvas of the given size, redrawn so frames keep coming.
CANVAS_TRACK_JS = """
async ([width, height]) => {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  let n = 0;
  setInterval(() => {
    ctx.fillStyle = `rgb(${(n += 8) % 256}, 90, 160)`;
    ctx.fillRect(0, 0, width, height);
  }, 50);
  const track = canvas.captureStream(15).getVideoTracks()[0];
  const local = await window.edgeRoom.localParticipant.publishTrack(track);
  return local.sid;
}
"""

UNPUBLISH_VIDEO_JS = """
() => {
  const participant = window.edgeRoom.localParticipant;
  const video = [...participant.tracks.values()].find((t) => t.kind === 'video');
  participant.unpublishTrack(video);
  return video.mediaStreamTrack.id;
}
"""

# What the page's own senders carry now (ids of the tracks they send).
SENT_JS = """
() => window.edgeRoom._pc.getTransceivers()
  .filter((t) => t.sender.track).map((t) => t.sender.track.id)
"""


async def test_browser_publishes_each_new_track_on_its_reused_m_line(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu:
        py = await connect(sfu.ws_url, sfu.token("py"))
        try:
            async with chromium() as browser:
                first = py.expect("track_subscribed", lambda track, *_: track.kind == "video")
                page = await joined_page(browser, sfu.base, sfu.token("ann"))
                await asyncio.wait_for(first, 60)
                # the page's camera and microphone
                transceivers = await page.evaluate(TRANSCEIVERS_JS)
                assert transceivers == 2
                ann = next(p for p in py.participants.values() if p.identity == "ann")
                server = sfu.signaling.sessions[ann.sid].participation.bridge.transport
                for width, height in ((160, 120), (320, 240), (160, 120)):
                    gone = py.expect("track_unsubscribed", lambda track, *_: track.kind == "video")
                    old = await page.evaluate(UNPUBLISH_VIDEO_JS)
                    await asyncio.wait_for(gone, 30)
                    await wait_for(
                        lambda: page.evaluate(SENT_JS), lambda ids, o=old: o not in ids, 10
                    )
                    assert old not in await page.evaluate(SENT_JS)  # no longer encoded

                    subscribed = py.expect(
                        "track_subscribed", lambda track, *_: track.kind == "video"
                    )
                    sid = await page.evaluate(CANVAS_TRACK_JS, [width, height])
                    track, pub, _who = await asyncio.wait_for(subscribed, 30)
                    assert pub.sid == sid

                    async def plays(track=track, size=(width, height)) -> None:
                        count = 0
                        while count < 3:
                            frame = await track.recv()
                            count = count + 1 if (frame.width, frame.height) == size else 0

                    await asyncio.wait_for(plays(), 30)
                    assert await page.evaluate(TRANSCEIVERS_JS) == transceivers
                    assert len(server.pc.getTransceivers()) == transceivers
                await page.context.close()
        finally:
            await py.close()
