"""The join page's stage: it fits the viewport with the controls visible at desktop and phone
sizes for 1, 2, 4 and 9 participants (then pages), hostile names stay text and never break
the layout, speaker view and pin, and the hooks for room signals (speaker, network quality,
switched-off tracks, recording). Screenshots of each state are saved and checked."""

from __future__ import annotations

import asyncio
import json

import pytest

from edge_sfu.client import Room, connect
from tests.browser.provisioning.pagehelpers import ROOT, snap
from tests.browser.signals.speech import write_wav
from tests.support.browser import (
    THREE_FAKE_DEVICES,
    chromium,
    join_now,
    joined_page,
    open_page,
    require_chromium,
)
from tests.support.media import PatternVideoTrack
from tests.support.sfu import running_sfu

pytestmark = [pytest.mark.browser, pytest.mark.timeout(400)]

ARTIFACTS = ROOT / "test-artifacts" / "join"
#: Everything that must be on screen, and what must not overlap.
INSIDE = ("header", "footer#controls", "#controls button", ".tile:not([hidden])")
APART = ("header", "footer#controls", "#stage .tile")
HOSTILE = [
    '<script>window.pwned=1</script><img src=x onerror="window.pwned=1">',
    "W" * 121,  # the longest identity there is, in one unbreakable word
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645"
    " \u05e9\u05dc\u05d5\u05dd",  # Arabic and Hebrew, right to left
    "\U0001f469\U0001f3fd \U0001f389\U0001f680 Zo\u00eb",
    "dana",
    "eli",
    "fay",
    "gus",
    "hal",
]
UNNAMED = """() => [...document.querySelectorAll('button, input, select')]
  .filter((e) => e.offsetParent !== null)
  .filter((e) => !(e.getAttribute('aria-label') || e.textContent.trim() || e.labels?.length))
  .map((e) => e.outerHTML)"""
TILES = "() => [...document.querySelectorAll('#stage .tile')].filter((t) => !t.hidden).length"
#: How many of the others' data tracks the page has subscribed to, with their channels open.
SUBSCRIBED_CHATS = """() => [...window.edgeRoom.participants.values()].flatMap((p) =>
  [...p.tracks.values()].filter((t) => t.kind === 'data' && t.track &&
    t.track._channel && t.track._channel.readyState === 'open')).length"""
#: Shown tiles whose network-quality bars or shown badges are not wholly on the tile.
SIGNALS_OFF_TILE = """() => {
  const faults = [];
  for (const tile of document.querySelectorAll('#stage .tile')) {
    if (tile.hidden) continue;
    const box = tile.getBoundingClientRect();
    const name = tile.querySelector('.name').textContent.slice(0, 20);
    const badges = tile.querySelectorAll('.badges > span:not([hidden])');
    const signs = [tile.querySelector('.nq'), ...badges];
    for (const sign of signs) {
      const r = sign.getBoundingClientRect();
      const shown = sign.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true });
      const inside = r.width > 0 && r.height > 0 && r.left >= box.left - 0.5 &&
        r.right <= box.right + 0.5 && r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5;
      const where = (b) => [b.left, b.top, b.right, b.bottom].map(Math.round).join();
      if (!shown || !inside) faults.push(`${name} ${sign.className} ${where(r)} in ${where(box)}`);
    }
  }
  return faults;
}"""
#: Every participant's bars at 3; everyone else's mic and camera off, one reconnecting.
ALL_SIGNALS = """() => {
  const room = window.edgeRoom;
  const everyone = [room.localParticipant, ...room.participants.values()];
  for (const p of everyone) p.emit('networkQualityLevelChanged', 3);
  for (const p of room.participants.values()) {
    room.emit('trackDisabled', {kind: 'audio', trackName: 'microphone'}, p);
    room.emit('trackDisabled', {kind: 'video', trackName: 'camera'}, p);
  }
  room.emit('participantReconnecting', [...room.participants.values()][0]);
}"""
INITIALS = r"""async () => {
  const { initials } = await import('/static/join-stage.js');
  return ['\u{1F469}\u{1F3FD}\u200D\u{1F4BB} Dev', '\u{1F1EB}\u{1F1F7}', 'e\u0301lise b',
          '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}'].map(initials);
}"""


async def _snap(page, name: str) -> None:
    await snap(page, name, directory=ARTIFACTS, inside=INSIDE, apart=APART, settle_ms=300)


async def test_stage_fits_with_controls_for_1_2_4_9_and_pages(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu:
        others: list[Room] = []
        try:
            async with chromium() as browser:
                page = await joined_page(browser, sfu.base, sfu.token("ann"))
                await page.set_viewport_size({"width": 1280, "height": 800})
                assert await page.locator("#room-name").text_content() == "room1"
                await page.wait_for_function(f"() => ({TILES})() === 1")
                # Alone: one tile, the controls on screen (no longer below the fold).
                await _snap(page, "stage-1")
                # Keyboard: every control is named; Tab reaches them with a visible focus ring.
                assert await page.evaluate(UNNAMED) == []
                for _ in range(20):
                    await page.keyboard.press("Tab")
                    if await page.evaluate("() => document.activeElement.id") == "chat-toggle":
                        break
                ring = await page.evaluate(
                    "() => getComputedStyle(document.activeElement).outlineStyle"
                )
                assert ring == "solid"
                await page.keyboard.press("Enter")
                assert await page.locator("#chat").is_visible()
                await page.keyboard.press("Escape")
                assert not await page.locator("#panel").is_visible()
                for count, name in ((2, None), (4, None), (9, None)):
                    while len(others) + 1 < count:
                        who = HOSTILE[len(others)]
                        room = await connect(sfu.ws_url, sfu.token(who))
                        others.append(room)
                        if len(others) == 1:  # one of them with a picture (4:3, letterboxed)
                            await room.publish_track(PatternVideoTrack(320, 240), "camera")
                    await page.wait_for_function(f"() => ({TILES})() === {count}", timeout=30_000)
                    await _snap(page, name or f"stage-{count}")

                # Hostile names are text: no markup ran, none was made.
                assert await page.evaluate("() => window.pwned === undefined")
                assert await page.locator("#stage img, #stage script").count() == 0
                names = await page.locator("#stage .tile .name").all_text_contents()
                assert set(HOSTILE[:8]) <= set(names), names
                # Camera-off tiles show initials.
                dana = page.locator(".tile", has=page.locator(".name", has_text="dana"))
                assert await dana.locator(".initials").text_content() == "D"
                assert await dana.locator(".avatar").is_visible()
                # The picture is letterboxed: the whole of it, centred in its tile.
                fit = await page.locator(".tile video").first.evaluate(
                    "v => getComputedStyle(v).objectFit + ' ' + getComputedStyle(v).objectPosition"
                )
                assert fit == "contain 50% 50%"

                # The people list and count.
                await page.click("#count")
                assert await page.locator("#count").text_content() == "9 people"
                assert await page.locator("#people-list li").count() == 9
                await _snap(page, "people-9")
                await page.click("#panel-close")

                # Chat from the hostile names: the senders' names are text, the layout holds.
                await page.click("#chat-toggle")
                for index, room in enumerate(others[:4]):
                    chat = await room.publish_data("chat")
                    await page.wait_for_function(
                        f"() => ({SUBSCRIBED_CHATS})() === {index + 1}", timeout=30_000
                    )
                    await asyncio.sleep(0.5)  # the unit's side of the channel opens about then
                    chat.send(json.dumps({"type": "chat", "text": "hello"}))
                    await asyncio.sleep(0.2)
                await page.wait_for_function(
                    "() => document.querySelectorAll('#chat-log li').length === 4", timeout=20_000
                )
                assert await page.locator("#chat-log .who").all_text_contents() == HOSTILE[:4]
                assert await page.evaluate("() => window.pwned === undefined")
                assert await page.locator("#chat-log img, #chat-log script").count() == 0
                await _snap(page, "chat-hostile-names")
                await page.click("#panel-close")

                # Speaker view: one large tile and a filmstrip; a pinned tile is the large one.
                await page.click("#view")
                assert await page.locator("#featured .tile").count() == 1
                # The large tile is the remote speaker: one's own speech outlines one's own
                # tile and leaves the last other speaker large.
                featured_name = page.locator("#featured .tile .name")
                await page.evaluate(
                    """() => window.edgeRoom.emit('dominantSpeakerChanged',
                         [...window.edgeRoom.participants.values()]
                           .find((p) => p.identity === 'eli'))"""
                )
                assert await featured_name.text_content() == "eli"
                await page.evaluate(
                    """() => window.edgeRoom.emit('dominantSpeakerChanged',
                         window.edgeRoom.localParticipant)"""
                )
                assert await featured_name.text_content() == "eli"
                assert "speaking" in (await page.get_attribute(".tile.local", "class") or "")
                await page.evaluate("() => window.edgeRoom.emit('dominantSpeakerChanged', null)")
                assert await featured_name.text_content() == "eli"
                await _snap(page, "speaker-view-9")
                dana_pin = dana.locator(".pin")
                await dana.hover()
                await dana_pin.click()
                assert await page.locator("#featured .tile .name").text_content() == "dana"
                assert await dana_pin.get_attribute("aria-pressed") == "true"
                await _snap(page, "pinned")
                await dana_pin.click()
                await page.click("#view")
                assert await page.locator("#featured .tile").count() == 0

                # Room signals, shown as the client emits them (twilio-video's event names).
                await page.evaluate(
                    """() => {
                      const room = window.edgeRoom;
                      const dana = [...room.participants.values()]
                        .find((p) => p.identity === 'dana');
                      room.emit('dominantSpeakerChanged', dana);
                      dana.emit('networkQualityLevelChanged', 2);
                      room.emit('recordingStarted');
                      for (const p of room.participants.values())
                        for (const pub of p.tracks.values())
                          if (pub.track && pub.kind === 'video')
                            pub.track.emit('switchedOff', pub.track);
                    }"""
                )
                assert "speaking" in (await dana.get_attribute("class") or "")
                assert await dana.locator(".nq").get_attribute("data-level") == "2"
                assert await page.locator("#recording").is_visible()
                assert await page.locator(".tile .paused:not([hidden])").count() == 1
                await _snap(page, "signals-9")

                # Bars and badges on every tile, compact on small ones: a phone's 3x3 grid
                # and speaker view's filmstrip (both sizes), four badges on one tile.
                await page.evaluate(ALL_SIGNALS)
                await page.set_viewport_size({"width": 390, "height": 844})
                await page.wait_for_timeout(300)
                assert await page.locator(".tile.small").count() == 9
                assert await page.evaluate(SIGNALS_OFF_TILE) == []
                assert await page.locator(".tile .badges > span:not([hidden])").count() == 18
                await page.click("#view")
                for width, height in ((1280, 800), (390, 844)):
                    await page.set_viewport_size({"width": width, "height": height})
                    await page.wait_for_timeout(300)
                    assert await page.locator("#grid .tile.small").count() == 8
                    assert await page.evaluate(SIGNALS_OFF_TILE) == []
                await _snap(page, "signals-speaker-view-9")
                await page.click("#view")
                await _snap(page, "signals-small-9")

                # Initials are whole graphemes: a skin tone, a flag, a family, an accent.
                woman = page.locator(".tile", has=page.locator(".name", has_text="Zo\u00eb"))
                assert await woman.locator(".initials").text_content() == "\U0001f469\U0001f3fdZ"
                assert await page.evaluate(INITIALS) == [
                    "\U0001f469\U0001f3fd\u200d\U0001f4bbD",
                    "\U0001f1eb\U0001f1f7",
                    "E\u0301B",
                    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
                ]

                # A tenth participant: at phone size (3x3 a page) the stage has two pages.
                others.append(await connect(sfu.ws_url, sfu.token("ivy")))
                await page.set_viewport_size({"width": 390, "height": 844})
                await page.wait_for_function("() => !document.getElementById('pager').hidden")
                assert await page.locator("#page-label").text_content() == "Page 1 of 2"
                assert await page.evaluate(TILES) == 9
                await page.click("#page-next")
                assert await page.evaluate(TILES) == 1
                await snap(page, "stage-10-pages", directory=ARTIFACTS, inside=INSIDE, apart=APART)
        finally:
            for room in others:
                await room.close()


SENT_CAMERA = """() => [...window.edgeRoom.localParticipant.tracks.values()]
  .find((t) => t.kind === 'video' && t.name === 'camera').mediaStreamTrack.label"""


async def _tab_to(page, test: str, limit: int = 80) -> None:
    """Press Tab until ``test`` (a JS function of the focused element) holds."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(f"() => ({test})(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached {test}")


async def test_more_than_25_on_pages_and_the_keyboard_path(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu, chromium(THREE_FAKE_DEVICES) as browser:
        others: list[Room] = []
        try:
            page = await joined_page(browser, sfu.base, sfu.token("ann"))
            await page.set_viewport_size({"width": 1280, "height": 800})
            # 28 in the room (27 without media): 25 tiles a page on a desktop, then a page.
            # The 27 take no video either: a subscription budget under any layer switches
            # ann's camera off for them. Each would otherwise decode it (aiortc decodes every
            # received track), and 27 decoders in this process starved the event loop that
            # drives the page: a Tab press took seconds and the test over 10 minutes.
            silent = {"video": {"max_subscription_bitrate": 10_000}}
            for index in range(27):
                others.append(
                    await connect(
                        sfu.ws_url, sfu.token(f"guest{index:02}"), bandwidth_profile=silent
                    )
                )
            await page.wait_for_function(f"() => ({TILES})() === 25", timeout=60_000)
            assert await page.locator("#page-label").text_content() == "Page 1 of 2"
            assert await page.locator("#pager").is_visible()
            await _snap(page, "stage-28-pages")

            # The keyboard alone: the pager, ...
            await _tab_to(page, "(e) => e.id === 'page-next'")
            await page.keyboard.press("Enter")
            assert await page.locator("#page-label").text_content() == "Page 2 of 2"
            assert await page.evaluate(TILES) == 3
            await _tab_to(page, "(e) => e.id === 'page-prev'")
            await page.keyboard.press("Enter")
            assert await page.evaluate(TILES) == 25

            # ... a tile's pin (the focus stays on it as the tile moves, so Enter unpins) ...
            await _tab_to(page, "(e) => e.classList.contains('pin') && !e.closest('.local')")
            pinned = await page.evaluate(
                "() => document.activeElement.closest('.tile').dataset.key"
            )
            await page.keyboard.press("Enter")
            assert await page.evaluate("() => document.activeElement.closest('#featured')")
            featured = page.locator("#featured .tile")
            assert await featured.get_attribute("data-key") == pinned
            await page.keyboard.press("Enter")
            await featured.wait_for(state="detached")

            # ... and the device selects, in the call.
            await _tab_to(page, "(e) => e.id === 'settings-toggle'")
            await page.keyboard.press("Enter")
            await _tab_to(page, "(e) => e.id === 'camera-select'")
            before = await page.evaluate(SENT_CAMERA)
            await page.keyboard.press("End")
            await page.wait_for_function(
                f"() => ({SENT_CAMERA})() === 'fake_device_2'", timeout=20_000
            )
            assert before != "fake_device_2"
            await page.keyboard.press("Escape")

            # Speaker view with 27 in the filmstrip: tiny tiles keep their bars (no name).
            await page.evaluate(
                """() => { const room = window.edgeRoom;
                  [room.localParticipant, ...room.participants.values()]
                    .forEach((p) => p.emit('networkQualityLevelChanged', 4)); }"""
            )
            await page.click("#view")
            for width, height in ((1280, 800), (390, 844)):
                await page.set_viewport_size({"width": width, "height": height})
                await page.wait_for_timeout(300)
                assert await page.locator("#grid .tile.tiny").count() == 27
                assert await page.evaluate(SIGNALS_OFF_TILE) == []
            await _snap(page, "speaker-view-28")
        finally:
            for room in others:
                await room.close()


async def test_speaking_oneself_leaves_the_others_large(tmp_path):
    """The unit names this page's own participant the dominant speaker (its microphone speaks,
    nobody else's does): speaker view outlines its own tile and keeps another large."""
    require_chromium()
    wav = write_wav(tmp_path / "ann.wav", 40.0, speech=[(1.0, 39.0)])
    async with (
        running_sfu(tmp_path) as sfu,
        chromium(f"--use-file-for-fake-audio-capture={wav}%noloop") as browser,
    ):
        others = [await connect(sfu.ws_url, sfu.token(name)) for name in ("bob", "cy")]
        try:
            page = await open_page(
                browser, f"{sfu.base}/join/room1?token={sfu.token('ann')}", bypass_csp=True
            )
            await page.uncheck("#want-camera")
            await join_now(page)
            await page.set_viewport_size({"width": 1280, "height": 800})
            await page.click("#view")
            await page.wait_for_function(
                "() => window.edgeRoom.dominantSpeaker === window.edgeRoom.localParticipant",
                timeout=30_000,
            )
            await page.locator(".tile.local.speaking").wait_for()
            assert await page.locator("#featured .tile").count() == 1
            assert await page.locator("#featured .tile .name").text_content() == "bob"
            await _snap(page, "speaker-view-own-speech")
        finally:
            for room in others:
                await room.close()
