"""The browser client's bandwidth profile and track priority API, against the SFU's
allocation: a presentation-mode page whose downlink estimate drops sees its lower-priority
track switched off (``trackSwitchedOff``, ``isSwitchedOff``) while the high-priority one plays
on, and switched on again when the estimate lifts; ``setPriority`` turns it around; a track
detached from every element is switched off for it; bad profiles throw as twilio-video.js's.
The same behind a real capped link (a network namespace shaped with ``tbf``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edge_sfu.media import MediaSettings
from edge_sfu.signaling.member import RoomMember
from tests.support.browser import (
    CHROMIUM,
    H264,
    H264TestSource,
    chromium,
    open_page,
    require_chromium,
)
from tests.support.netns import scratch_dir, slow_host
from tests.support.sfu import running_sfu, set_downlink, settled_costs
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


BAD_PROFILES_JS = """
async () => {
  const m = await import('/static/edge-video.js');
  const out = [];
  for (const profile of [
    'grid', { video: 'grid' }, { video: { mode: 'theatre' } }, { video: { mode: 3 } },
    { video: { maxSubscriptionBitrate: '1M' } }, { video: { maxSubscriptionBitrate: -5 } },
    { video: { trackSwitchOffMode: 'sometimes' } },
  ]) {
    try {
      await m.connect('not-used', { name: 'room1', tracks: [], bandwidthProfile: profile });
      out.push('connected');
    } catch (err) {
      out.push(err.name);
    }
  }
  return out;
}
"""

JOIN_JS = """
async (token) => {
  const m = await import('/static/edge-video.js');
  window.events = [];
  const room = await m.connect(token, {
    name: 'room1', tracks: [],
    bandwidthProfile: { video: { mode: 'presentation' } },
  });
  window.edgeRoom = room;
  window.tracks = {};
  room.on('trackSubscribed', (track) => {
    if (track.kind !== 'video') return;
    window.tracks[track.name] = track;
    document.body.append(track.attach());
    const note = (kind, t, why) => window.events.push([kind, t.name, why, t.isSwitchedOff]);
    track.on('switchedOff', (t, reason) => note('off', t, reason));
    track.on('switchedOn', (t) => note('on', t, null));
  });
  const seen = (kind) => (track, publication, participant) =>
    window.events.push([kind, track.name, participant.identity, publication.isTrackSwitchedOff]);
  room.on('trackSwitchedOff', seen('room-off'));
  room.on('trackSwitchedOn', seen('room-on'));
  room.on('warning', (err) => window.events.push(['warning', err.code, err.message, null]));
  room.on('trackPublishPriorityChanged', (priority, publication) =>
    window.events.push(['priority', publication.trackName, priority, null]));
  return room.localParticipant.sid;
}
"""

DECODED_JS = """
async () => {
  const stats = await window.edgeRoom.getStats();
  const out = {};
  for (const s of stats) {
    if (s.type !== 'inbound-rtp' || s.kind !== 'video') continue;
    for (const [name, track] of Object.entries(window.tracks)) {
      if (track.mediaStreamTrack.id === s.trackIdentifier) out[name] = s.framesDecoded || 0;
    }
  }
  return out;
}
"""


async def events(page: Any) -> list[list[Any]]:
    return await page.evaluate("() => window.events")


async def decoding(page: Any, name: str, frames: int = 10) -> None:
    start = (await page.evaluate(DECODED_JS)).get(name, 0)
    await wait_for(
        lambda: page.evaluate(DECODED_JS),
        lambda got: got.get(name, 0) >= start + frames,
        60,
        what=f"{name} decoding",
    )


async def test_switch_off_and_priorities_in_the_browser(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu:
        # in-process sources: what they send follows no subscriber, so the test holds it
        kiosk = await sfu.signaling.connect_local("room1", "kiosk")
        camera = await kiosk.publish("camera", H264)
        screen = await kiosk.publish("screen", H264, priority="high")
        sources = [H264TestSource(camera, 320, 240), H264TestSource(screen, 320, 240)]
        try:
            async with chromium() as browser:
                page = await open_page(browser, f"{sfu.base}/join/room1", bypass_csp=True)
                refused = await page.evaluate(BAD_PROFILES_JS)
                assert refused == [
                    "TypeError",
                    "TypeError",
                    "RangeError",
                    "TypeError",
                    "TypeError",
                    "RangeError",
                    "RangeError",
                ]

                sid = await page.evaluate(JOIN_JS, sfu.token("ann"))
                await page.wait_for_function(
                    "() => Object.keys(window.tracks).length === 2", timeout=30_000
                )
                await decoding(page, "camera")
                member = sfu.signaling.sessions[sid].participation
                assert isinstance(member, RoomMember)
                transport = member.bridge.transport
                assert transport.allocation.profile.mode == "presentation"
                assert ["priority", "screen", "high", None] in await events(page)

                # room for the dearer track and half the cheaper one (costs once each rate
                # window has filled): either fits alone, not both, so the camera goes off
                cost = await settled_costs({c.producer.id: c for c in transport.consumers.values()})
                dearer, cheaper = max(cost.values()), min(cost.values())
                set_downlink(transport, dearer + cheaper // 2)
                got = await wait_for(lambda: events(page), lambda e: len(e) >= 3, 20)
                assert ["off", "camera", "network-congestion", True] in got
                assert ["room-off", "camera", "kiosk", True] in got
                assert await page.evaluate("() => window.tracks.camera.switchOffReason") == (
                    "network-congestion"
                )
                assert not await page.evaluate("() => window.tracks.screen.isSwitchedOff")
                await decoding(page, "screen")

                # ann raises the camera and lowers the screen: they change places
                await page.evaluate(
                    "() => { window.tracks.camera.setPriority('high');"
                    " window.tracks.screen.setPriority('low'); }"
                )
                await wait_for(
                    lambda: events(page),
                    lambda e: (
                        ["off", "screen", "network-congestion", True] in e
                        and ["on", "camera", None, False] in e
                    ),
                    20,
                )
                await decoding(page, "camera")

                # unlimited again (after the hold): both play; a detached track goes off
                set_downlink(transport, None)
                await wait_for(
                    lambda: events(page), lambda e: ["on", "screen", None, False] in e, 20
                )
                await decoding(page, "screen")
                await page.evaluate("() => window.tracks.screen.detach()")
                await wait_for(
                    lambda: events(page),
                    lambda e: ["off", "screen", "disabled-by-subscriber", True] in e,
                    20,
                )
                with pytest.raises(Exception, match="manual"):
                    await page.evaluate("() => window.tracks.camera.switchOff()")
                await asyncio.sleep(0.5)
                warnings = await page.evaluate(
                    "() => window.events.filter((e) => e[0] === 'warning')"
                )
                assert warnings == []
                await page.context.close()
        finally:
            for source in sources:
                await source.close()
            await kiosk.disconnect()


async def test_presentation_mode_behind_a_capped_link(tmp_path):
    """The same page behind a real ``tbf`` cap (a network namespace), not a set estimate: a
    cap that takes the high-priority track with room to spare, and not both, switches the
    other off, and it is switched on again when the cap lifts. The SFU finds both from the
    page's own transport-cc feedback."""
    require_chromium()
    with slow_host() as host, scratch_dir() as scripts:
        media = MediaSettings(host_addresses=(host.gateway,))
        async with running_sfu(tmp_path, host=host.gateway, media=media) as sfu:
            kiosk = await sfu.signaling.connect_local("room1", "kiosk")
            camera = await kiosk.publish("camera", H264)
            screen = await kiosk.publish("screen", H264, priority="high")
            sources = [H264TestSource(camera, 640, 480), H264TestSource(screen, 320, 240)]
            secure = f"--unsafely-treat-insecure-origin-as-secure={sfu.base}"
            try:
                async with chromium(secure, executable=host.executable(CHROMIUM, scripts)) as b:
                    page = await open_page(b, f"{sfu.base}/join/room1", bypass_csp=True)
                    sid = await page.evaluate(JOIN_JS, sfu.token("ann"))
                    await page.wait_for_function(
                        "() => Object.keys(window.tracks).length === 2", timeout=30_000
                    )
                    await decoding(page, "camera")
                    await decoding(page, "screen")
                    member = sfu.signaling.sessions[sid].participation
                    assert isinstance(member, RoomMember)
                    transport = member.bridge.transport
                    consumers = {c.producer.id: c for c in transport.consumers.values()}
                    cost = await settled_costs(consumers)
                    # The link carries IP, UDP and SRTP too: the costs count them already.
                    # At a cap's onset the estimate dips to 0.6-0.7 of the link (cuts to
                    # 0.85 of what got through while the queue drains, and loss's): the
                    # screen alone fits in half the cap; the dearer camera beside it does
                    # not fit in 1.2 times it.
                    cap = int(cost[screen.id] / 0.5)
                    assert 1.2 * cap < sum(cost.values()), cost
                    host.set_rate(cap // 1000)
                    got = await wait_for(
                        lambda: events(page),
                        lambda e: ["off", "camera", "network-congestion", True] in e,
                        30,
                        what=f"the camera switched off under {cap // 1000} kbit/s",
                    )
                    assert ["room-off", "camera", "kiosk", True] in got
                    assert not any(e[:2] == ["off", "screen"] for e in got), got
                    await decoding(page, "screen")
                    host.set_rate(None)
                    await wait_for(
                        lambda: events(page),
                        lambda e: ["on", "camera", None, False] in e,
                        40,
                        what="the camera switched on again once the cap lifted",
                    )
                    await decoding(page, "camera")
                    await page.context.close()
            finally:
                for source in sources:
                    await source.close()
                await kiosk.disconnect()
