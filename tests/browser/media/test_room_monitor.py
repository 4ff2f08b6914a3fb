"""The join page's room monitor: a toggle opens a table of every track sent and received,
with live figures from the browser's getStats(); names in it are text, never markup."""

from __future__ import annotations

import pytest

from edge_sfu.client import Room, connect
from tests.support.browser import chromium, join_now, open_page, require_chromium
from tests.support.media import PatternVideoTrack, ToneAudioTrack
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NASTY = '<img src=x onerror="window.pwned=1">'
CONNECTED = "() => document.body.dataset.state === 'connected'"

ROWS_JS = """
() => [...document.querySelectorAll('#monitor tbody tr')].map((tr) => {
  const cell = (name) => tr.querySelector('td.' + name).textContent;
  return {direction: tr.dataset.direction, participant: cell('participant'),
    track: cell('track'), kind: cell('kind'), bitrate: cell('bitrate'), fps: cell('fps'),
    size: cell('size'), loss: cell('loss'), jitter: cell('jitter'), rtt: cell('rtt')};
})
"""


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _live(rows: list[dict[str, str]]) -> bool:
    inbound = [r for r in rows if r["direction"] == "in"]
    return len(inbound) == 4 and all((_number(r["bitrate"]) or 0) > 0 for r in inbound)


async def test_monitor_shows_remote_tracks_with_live_numbers(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu:
        publishers: list[Room] = []
        try:
            for identity, camera in ((NASTY, "<b>cam</b>"), ("bob", "camera")):
                room = await connect(sfu.ws_url, sfu.token(identity))
                publishers.append(room)
                await room.publish_track(PatternVideoTrack(320, 240), camera)
                await room.publish_track(ToneAudioTrack(), "mic")
            async with chromium() as browser:
                page = await open_page(
                    browser, f"{sfu.base}/join/room1?token={sfu.token('browser')}"
                )
                await join_now(page)
                monitor = page.locator("#monitor")
                assert not await monitor.is_visible()

                await page.click("#monitor-toggle")
                assert await monitor.is_visible()
                assert await page.get_attribute("#monitor-toggle", "aria-pressed") == "true"
                rows = await wait_for(lambda: page.evaluate(ROWS_JS), _live, timeout=60)
                assert _live(rows), rows
                inbound = [r for r in rows if r["direction"] == "in"]
                assert {(r["participant"], r["track"], r["kind"]) for r in inbound} == {
                    (NASTY, "<b>cam</b>", "video"),
                    (NASTY, "mic", "audio"),
                    ("bob", "camera", "video"),
                    ("bob", "mic", "audio"),
                }
                for row in inbound:
                    if row["kind"] == "video":
                        assert row["size"] == "320\u00d7240"  # 320 by 240
                        assert (_number(row["fps"]) or 0) > 0
                    assert row["loss"].startswith("0 ")
                    assert _number(row["jitter"]) is not None
                    rtt = _number(row["rtt"])  # 0.0 on loopback is a fine figure
                    assert rtt is not None and rtt >= 0, row
                # The page's own camera and microphone, going up.
                outbound = {r["kind"] for r in rows if r["direction"] == "out"}
                assert outbound == {"audio", "video"}
                assert all(
                    r["participant"] == "browser (you)" for r in rows if r["direction"] == "out"
                )

                # The figures are live: the received byte counts move between refreshes.
                first = await page.evaluate("() => window.edgeRoom.getStats()")
                await page.wait_for_timeout(2500)
                second = await page.evaluate("() => window.edgeRoom.getStats()")

                def received(stats):
                    return sum(
                        s.get("bytesReceived", 0) for s in stats if s["type"] == "inbound-rtp"
                    )

                assert received(second) > received(first)
                again = await page.evaluate(ROWS_JS)
                assert _live(again)

                # Names are text: nothing of them became markup.
                assert await page.evaluate("() => window.pwned === undefined")
                assert await page.locator("#monitor img, #monitor b").count() == 0

                await page.click("#monitor-toggle")
                assert not await monitor.is_visible()
                assert await page.get_attribute("#monitor-toggle", "aria-pressed") == "false"
                await page.context.close()
        finally:
            for room in publishers:
                await room.close()
