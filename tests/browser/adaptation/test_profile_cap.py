"""A presentation-mode page behind a real link cap (tbf in a network namespace): the
high-priority track keeps its top layer while the standard camera is switched off
(``trackSwitchedOff`` in the page), and the camera is switched back on when the cap lifts.

The two tracks come from in-process sources that do not adapt, so what they send is known:
their rates are measured first and the cap is set between one and both of them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from edge_sfu.media import MediaSettings
from edge_sfu.signaling.member import RoomMember
from tests.browser.media.test_bandwidth_profile import JOIN_JS, decoding, events
from tests.support.browser import (
    CHROMIUM,
    H264,
    H264TestSource,
    chromium,
    open_page,
    require_chromium,
)
from tests.support.netns import scratch_dir, slow_host
from tests.support.sfu import running_sfu, settled_costs

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

#: The cap, as a multiple of the larger track's rate: room for one with its RTP overhead and
#: the estimator's margin, not for both.
CAP_SHARE = 1.6
SWITCH_OFF_S = 30.0
SWITCH_ON_S = 30.0


async def test_presentation_mode_keeps_the_high_track_under_a_real_cap(tmp_path) -> None:
    require_chromium()
    with slow_host() as host, scratch_dir() as scripts:
        media = MediaSettings(host_addresses=(host.gateway,))
        async with running_sfu(tmp_path, host=host.gateway, media=media) as sfu:
            kiosk = await sfu.signaling.connect_local("room1", "kiosk")
            camera = await kiosk.publish("camera", H264)
            screen = await kiosk.publish("screen", H264, priority="high")
            sources = [H264TestSource(camera, 320, 240), H264TestSource(screen, 320, 240)]
            try:
                secure = f"--unsafely-treat-insecure-origin-as-secure={sfu.base}"
                inside = host.executable(CHROMIUM, scripts)
                async with chromium(secure, executable=inside) as browser:
                    page = await open_page(browser, f"{sfu.base}/join/room1", bypass_csp=True)
                    sid = await page.evaluate(JOIN_JS, sfu.token("ann"))
                    await page.wait_for_function(
                        "() => Object.keys(window.tracks).length === 2", timeout=30_000
                    )
                    await decoding(page, "camera")
                    await decoding(page, "screen")
                    member = sfu.signaling.sessions[sid].participation
                    assert isinstance(member, RoomMember)
                    transport = member.bridge.transport
                    by_name = {
                        c.producer.id: c for c in transport.consumers.values() if c.kind == "video"
                    }
                    consumers = {
                        name: by_name[producer.id]
                        for name, producer in (("camera", camera), ("screen", screen))
                    }
                    top = consumers["screen"].current_layer
                    assert top is not None

                    costs = await settled_costs(consumers)
                    cap_kbit = int(max(costs.values()) * CAP_SHARE) // 1000
                    assert cap_kbit * 1000 < sum(costs.values()), costs
                    host.set_rate(cap_kbit)
                    got = await _until(page, ["room-off", "camera", "kiosk", True], SWITCH_OFF_S)
                    assert ["off", "camera", "network-congestion", True] in got, got

                    # under the cap: the screen plays on its top layer, never switched off
                    layers = set()
                    for _ in range(3):
                        await decoding(page, "screen", 15)
                        layers.add(consumers["screen"].current_layer)
                    assert layers == {top}, (layers, costs, cap_kbit)
                    assert not consumers["screen"].switched_off
                    assert consumers["camera"].switched_off
                    assert not await page.evaluate("() => window.tracks.screen.isSwitchedOff")
                    seen = await events(page)
                    assert all(e[1] != "screen" for e in seen if e[0] != "priority"), seen

                    host.set_rate(None)
                    await _until(page, ["room-on", "camera", "kiosk", False], SWITCH_ON_S)
                    await decoding(page, "camera")
                    assert not await page.evaluate("() => window.tracks.camera.isSwitchedOff")
                    await page.context.close()
            finally:
                for source in sources:
                    await source.close()
                await kiosk.disconnect()


async def _until(page: Any, event: list[Any], seconds: float) -> list[list[Any]]:
    """The page's events once ``event`` is among them (fails after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        got = await events(page)
        if event in got:
            return got
        assert time.monotonic() < deadline, f"no {event} within {seconds} s: {got}"
        await asyncio.sleep(0.25)
