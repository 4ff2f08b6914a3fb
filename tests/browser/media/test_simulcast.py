"""Browser simulcast end to end, in real headless Chromium.

One page publishes its camera with ``edge-video.js`` as simulcast layers (VP8, and H.264
through OpenH264); two join pages render that tile at different sizes and each receives the
layer that fits. When every subscriber renders it small, the publisher's top encoding is
paused at the browser (``active: false``, its ``outbound-rtp`` stops growing), and it
resumes within 2 s of a subscriber enlarging the tile.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support.browser import INBOUND_JS, chromium, joined_page, open_page, require_chromium
from tests.support.qoe import INBOUND_VIDEO_JS, until_view
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

# A page of the unit's origin that imports the client and connects as an application would.
CONNECT_JS = """
async ([token, codecs]) => {
  const { connect } = await import('/static/edge-video.js');
  window.edgeRoom = await connect(token, {
    audio: false, video: {width: 640, height: 480}, preferredVideoCodecs: codecs});
  return window.edgeRoom.state;
}
"""

# The publisher's camera sender: its encodings and, per rid, what it has sent.
SENDER_JS = """
async () => {
  const sender = window.edgeRoom._pc.getSenders().find((s) => s.track && s.track.kind === 'video');
  if (!sender) return null;
  const stats = [...(await sender.getStats()).values()].filter((s) => s.type === 'outbound-rtp');
  return {
    active: Object.fromEntries(sender.getParameters().encodings.map((e) => [e.rid, e.active])),
    maxBitrate: Object.fromEntries(
      sender.getParameters().encodings.map((e) => [e.rid, e.maxBitrate || 0])),
    degradation: sender.getParameters().degradationPreference,
    bytes: Object.fromEntries(stats.map((s) => [s.rid, s.bytesSent || 0])),
  };
}
"""

# Resize the <video> of `identity`'s tile on a join page (its ResizeObserver reports it).
TILE_JS = """
([identity, width, height]) => {
  for (const tile of document.querySelectorAll('figure.tile')) {
    const name = tile.querySelector('.name');
    const video = tile.querySelector('video');
    if (name && video && name.textContent === identity) {
      video.style.width = `${width}px`;
      video.style.height = `${height}px`;
      return true;
    }
  }
  return false;
}
"""

SMALL = (160, 120)  # CSS pixels: the 320x240 layer covers it
LARGE = (600, 450)  # only the full 640x480 picture covers it


def _width_of(entries, identity: str) -> int:
    video = [e for e in entries or [] if e["identity"] == identity and e["kind"] == "video"]
    return video[0]["frameWidth"] if video and video[0]["framesDecoded"] > 0 else 0


async def _size_tile(page, identity: str, size: tuple[int, int]) -> None:
    await wait_for(
        lambda: page.evaluate(TILE_JS, [identity, *size]), what=f"{identity}'s tile", timeout=60
    )


@pytest.mark.parametrize("codec", ["VP8", "H264"])
async def test_layers_follow_render_size_and_unwanted_layers_pause_at_the_source(
    tmp_path, codec: str
):
    require_chromium()
    async with running_sfu(tmp_path) as sfu, chromium() as browser:
        ann = await open_page(browser, f"{sfu.base}/static/join.css", bypass_csp=True)
        state = await ann.evaluate(
            CONNECT_JS, [sfu.token("ann"), [{"codec": codec, "simulcast": True}]]
        )
        assert state == "connected"
        ben = await joined_page(browser, sfu.base, sfu.token("ben"))
        cat = await joined_page(browser, sfu.base, sfu.token("cat"))
        await _size_tile(ben, "ann", SMALL)
        await _size_tile(cat, "ann", LARGE)

        # each subscriber gets the layer that fits how large it renders ann
        await wait_for(
            lambda: ben.evaluate(INBOUND_JS), lambda e: _width_of(e, "ann") == 320, 60, "small"
        )
        await wait_for(
            lambda: cat.evaluate(INBOUND_JS), lambda e: _width_of(e, "ann") == 640, 60, "large"
        )
        router = next(iter(sfu.signaling.routers.values()))
        ann_sid = sfu.context.rooms.live_room_by_name("room1").by_identity("ann").sid
        (producer,) = [
            p
            for p in router.producers.values()
            if p.participant_id == ann_sid and p.kind == "video"
        ]
        assert producer.codec.name == codec
        assert [(s.name, s.width, s.height) for s in producer.available_layers()] == [
            ("h", 320, 240),
            ("f", 640, 480),
        ]
        assert all(layer.bitrate_bps > 0 for layer in producer.layers.values())

        # nobody renders ann large: the top encoding is paused at ann's browser
        await _size_tile(cat, "ann", SMALL)
        await wait_for(
            lambda: ann.evaluate(SENDER_JS),
            lambda s: s and s["active"] == {"h": True, "f": False},
            20,
            "the top encoding paused",
        )
        await asyncio.sleep(1.0)  # what was queued before the pause goes out
        before = await ann.evaluate(SENDER_JS)
        await asyncio.sleep(2.0)
        after = await ann.evaluate(SENDER_JS)
        assert after["bytes"]["f"] == before["bytes"]["f"], (before, after)
        assert after["bytes"]["h"] > before["bytes"]["h"], (before, after)
        # the small layer is now the whole picture its viewers get: it has the alone budget
        # (2 bits per pixel) and keeps its frame rate rather than its size
        assert after["maxBitrate"]["h"] == 320 * 240 * 2, after
        assert after["degradation"] == "maintain-framerate", after
        assert _width_of(await cat.evaluate(INBOUND_JS), "ann") == 320

        # cat enlarges the tile: the top layer is sent again within 2 s
        paused_bytes = after["bytes"]["f"]
        started = time.monotonic()
        await cat.evaluate(TILE_JS, ["ann", *LARGE])
        await wait_for(
            lambda: ann.evaluate(SENDER_JS),
            lambda s: s["active"]["f"] and s["bytes"]["f"] > paused_bytes,
            5,
            "the top encoding resumed",
            interval=0.05,
        )
        resumed_after = time.monotonic() - started
        assert resumed_after <= 2.0, resumed_after
        await wait_for(
            lambda: cat.evaluate(INBOUND_JS), lambda e: _width_of(e, "ann") == 640, 20, "resumed"
        )
        # beside the top layer the small one is a thumbnail again, at its own budget
        both = await ann.evaluate(SENDER_JS)
        assert both["maxBitrate"]["h"] == 80_000, both  # 1 bit per pixel, at least 80 kbit/s
        assert both["degradation"] == "balanced", both


# A shared screen (a canvas marked as detail, as a screen capture is) next to the camera.
SCREEN_JS = """
async (token) => {
  const { connect, LocalTrack } = await import('/static/edge-video.js');
  const canvas = Object.assign(document.createElement('canvas'), {width: 640, height: 480});
  const ctx = canvas.getContext('2d');
  setInterval(() => { ctx.fillStyle = `hsl(${Date.now() % 360}, 60%, 50%)`;
    ctx.fillRect(0, 0, 640, 480); }, 50);
  const screen = canvas.captureStream(20).getVideoTracks()[0];
  screen.contentHint = 'detail';
  window.edgeRoom = await connect(token, {audio: false, video: {width: 640, height: 480}});
  await window.edgeRoom.localParticipant.publishTrack(new LocalTrack(screen, 'screen'));
  const senders = window.edgeRoom._pc.getSenders()
    .filter((s) => s.track && s.track.kind === 'video');
  return senders.map((s) => {
    const params = s.getParameters();
    return {hint: s.track.contentHint, encodings: params.encodings.length,
      degradation: params.degradationPreference};
  });
}
"""


async def test_camera_video_is_simulcast_and_a_shared_screen_is_not(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu, chromium() as browser:
        page = await open_page(browser, f"{sfu.base}/static/join.css", bypass_csp=True)
        senders = await page.evaluate(SCREEN_JS, sfu.token("ann"))
        assert sorted(senders, key=lambda s: s["hint"]) == [
            {"hint": "", "encodings": 2, "degradation": "balanced"},
            {"hint": "detail", "encodings": 1, "degradation": "maintain-resolution"},
        ]
        router = next(iter(sfu.signaling.routers.values()))
        layers = await wait_for(
            lambda: sorted(len(p.layers) for p in router.producers.values() if p.kind == "video"),
            lambda n: len(n) == 2,
            30,
            "both video producers",
        )
        assert layers == [1, 2]


# The uplink guard's decisions, driven with made-up estimates (bit/s) and times (ms).
GUARD_JS = """
async () => {
  const m = await import('/static/edge-video-simulcast.js');
  const { UplinkGuard, UPLINK_LOW_BPS, aloneBitrate } = m;
  const g = new UplinkGuard();
  const log = [];
  const step = (bps, t) => { const changed = g.sample(bps, t);
    log.push({t, changed, limited: g.limited, trial: g.trialUntil !== null, hold: g.hold,
      mode: g.mode}); };
  step(200000, 0); step(200000, 2000); step(200000, 4000);   // start-up: no verdict
  step(300000, 6000); step(300000, 8000);                    // low twice: paused
  step(900000, 12000);                                       // paused: samples do not resume
  step(450000, 18000);                                       // hold over: trial
  step(300000, 18500);                                       // estimate falls: trial fails
  step(300000, 39000);                                       // twice the hold: trial again
  step(700000, 40000);                                       // careful: upper layers held low
  step(700000, 42000); step(700000, 47500);                  // then whole; at the bar after
  step(700000, 50000);
  step(300000, 52000); step(300000, 54000);                  // low again: paused, hold reset
  const big = new UplinkGuard();
  [400000, 400000, 400000, 2000000, 2000000].forEach((bps, i) => big.sample(bps, i * 2000));
  return {log, low: UPLINK_LOW_BPS, bigLimited: big.limited,
    alone: aloneBitrate({rid: 'h', width: 320, height: 240, max_bitrate: 80000}),
    aloneTiny: aloneBitrate({rid: 'q', width: 160, height: 90, max_bitrate: 80000}),
    aloneHuge: aloneBitrate({rid: 'h', width: 960, height: 540, max_bitrate: 130000})};
}
"""


async def test_a_weak_uplink_runs_the_lowest_layer_alone_and_tries_the_others_again(tmp_path):
    """``UplinkGuard``: under ``UPLINK_LOW_BPS`` twice (after the start-up seconds) only the
    lowest layer runs; after a hold the others are tried, carefully for their first seconds; a
    trial whose estimate falls ends at once and doubles the hold, one at the bar after its
    seconds succeeds and resets it."""
    require_chromium()
    async with running_sfu(tmp_path) as sfu, chromium() as browser:
        page = await open_page(browser, f"{sfu.base}/static/join.css", bypass_csp=True)
        out = await page.evaluate(GUARD_JS)
    log = {entry["t"]: entry for entry in out["log"]}
    assert not any(log[t]["limited"] for t in (0, 2000, 4000, 6000)), out
    assert log[8000]["changed"] and log[8000]["limited"], out
    assert log[12000]["limited"] and not log[12000]["changed"], out
    assert log[18000]["changed"] and not log[18000]["limited"] and log[18000]["trial"], out
    assert log[18000]["mode"] == "careful" and log[12000]["mode"] == "limited", out
    assert log[18500]["changed"] and log[18500]["limited"] and log[18500]["hold"] == 20000, out
    assert log[39000]["changed"] and log[39000]["trial"], out
    assert log[40000]["mode"] == "careful" and not log[40000]["changed"], out
    assert log[42000]["changed"] and log[42000]["trial"] and log[42000]["mode"] == "clear", out
    assert not log[47500]["trial"] and not log[47500]["limited"] and log[47500]["hold"] == 10000
    assert not log[52000]["limited"] and log[54000]["limited"], out
    assert not out["bigLimited"]  # a link that grows past the bar is never limited
    # the lowest layer alone gets twice its usual bits per pixel, within bounds
    assert out["alone"] == 153600 and out["aloneTiny"] == 80000 and out["aloneHuge"] == 300000


async def _steady(page, identity: str, width: int) -> dict:
    """``page``'s view of ``identity`` once it ran a whole second at ``width``, at 10 frames
    or more and with no freeze."""
    deadline = time.monotonic() + 30
    last = (await page.evaluate(INBOUND_VIDEO_JS))[identity]
    while True:
        await asyncio.sleep(1)
        view = (await page.evaluate(INBOUND_VIDEO_JS))[identity]
        if (
            view["frameWidth"] == width
            and view["framesDecoded"] - last["framesDecoded"] >= 10
            and view["totalFreezesDuration"] == last["totalFreezesDuration"]
        ):
            return view
        assert time.monotonic() < deadline, f"{identity} not steady at {width}: {view}"
        last = view


# The guard's verdict on a weak uplink (as two low samples after the start-up seconds give
# it), or the end of it, applied as the client applies its own.
UPLINK_JS = """
async (limited) => {
  const room = window.edgeRoom;
  room._uplink.limited = limited;
  room._uplink.resumeAt = limited ? Date.now() + 600000 : null;
  await room._applyUplink();
}
"""


async def test_a_layer_paused_for_the_uplink_is_left_by_its_viewers_at_once(tmp_path):
    """When the uplink guard pauses the top encoding, the client says which layers run
    (``sending-layers``) and the SFU moves the viewer of the top layer down at the lower
    layer's next keyframe: its picture does not freeze for the paused layer's silence (a
    second, then a keyframe's round trip). When the guard lets it run again, the viewer is
    back on it."""
    require_chromium()
    async with running_sfu(tmp_path) as sfu, chromium() as browser:
        ann = await open_page(browser, f"{sfu.base}/static/join.css", bypass_csp=True)
        state = await ann.evaluate(
            CONNECT_JS, [sfu.token("ann"), [{"codec": "VP8", "simulcast": True}]]
        )
        assert state == "connected"
        cat = await joined_page(browser, sfu.base, sfu.token("cat"))
        await _size_tile(cat, "ann", LARGE)
        assert await until_view(cat, "ann", lambda v: v["frameWidth"] == 640, 60) is not None
        router = next(iter(sfu.signaling.routers.values()))
        ann_sid = sfu.context.rooms.live_room_by_name("room1").by_identity("ann").sid
        (producer,) = [
            p
            for p in router.producers.values()
            if p.participant_id == ann_sid and p.kind == "video"
        ]
        # a steady picture before the switch: the sender's estimate ramps up at the start,
        # and Chromium's own allocator drops the top layer for a moment on the way
        before = await _steady(cat, "ann", 640)
        await ann.evaluate(UPLINK_JS, True)
        await wait_for(lambda: producer.paused_layers, lambda p: p == {"f"}, 5, "f paused")
        assert await until_view(cat, "ann", lambda v: v["frameWidth"] == 320, 10) is not None
        await asyncio.sleep(3)  # a freeze is counted once it ended
        after = (await cat.evaluate(INBOUND_VIDEO_JS))["ann"]
        frozen = after["totalFreezesDuration"] - before["totalFreezesDuration"]
        assert frozen < 0.5, (before, after)

        await ann.evaluate(UPLINK_JS, False)
        await wait_for(lambda: producer.paused_layers, lambda p: not p, 5, "f running")
        assert await until_view(cat, "ann", lambda v: v["frameWidth"] == 640, 20) is not None
