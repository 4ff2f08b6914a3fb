"""Chromium keeps one m-line for a publisher that publishes and unpublishes again and again:
the SFU reuses it for each new publication, and each one plays at its own size."""

from __future__ import annotations

import asyncio

import pytest

from edge_sfu.client import connect
from tests.support.browser import INBOUND_JS, chromium, require_chromium
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
                context = await browser.new_context(bypass_csp=True)
                page = await context.new_page()
                await page.goto(f"{sfu.base}/join/room1?token={sfu.token('ann')}")
                await page.wait_for_function(
                    "() => document.body.dataset.state === 'connected'", timeout=60_000
                )
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
                await context.close()
        finally:
            await py.close()
