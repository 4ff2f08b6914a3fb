"""The join page in a call, as people use it: the set-up before joining (preview, level meter,
devices), device switching in the call, screen share seen large by the others at its size,
chat both ways in order, the banner while signaling is down, audio-only and watch-only when
the browser refuses the devices, and rejoining after Leave, a reload and a closed tab."""

from __future__ import annotations

import asyncio
import re

import pytest

from edge_sfu.invites import create_invite
from tests.browser.provisioning.pagehelpers import ROOT, snap
from tests.support.browser import (
    CONNECTED,
    INBOUND_JS,
    THREE_FAKE_DEVICES,
    chromium,
    join_now,
    open_page,
    require_chromium,
)
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(400)]

ARTIFACTS = ROOT / "test-artifacts" / "join"
#: On screen without scrolling: the header, the controls, the tiles, the banner, Join, Rejoin.
INSIDE = ("header", "footer#controls", "#controls button", ".tile:not([hidden])", "#banner")
INSIDE += ("#join-button", "#rejoin")
APART = ("header", "footer#controls", "#stage .tile", "#banner")
SENT_CAMERA = """() => {
  const t = [...window.edgeRoom.localParticipant.tracks.values()]
    .find((t) => t.kind === 'video' && t.name === 'camera');
  return t ? t.mediaStreamTrack.label : null;
}"""
#: The page's CSP forbids eval; Playwright's probes need it (the page's own code does not).
CSP = {"bypass_csp": True}
SENDERS = """() => window.edgeRoom._pc.getSenders()
  .filter((s) => s.track && s.track.kind === 'video')
  .map((s) => `video:${s.track.label}:${s.track.readyState}`)"""
SENT_MIC = """() => [...window.edgeRoom.localParticipant.tracks.values()]
  .find((t) => t.kind === 'audio').mediaStreamTrack.label"""
CAMERA_SID = """() => [...window.edgeRoom.localParticipant.tracks.values()]
  .find((t) => t.name === 'camera').sid"""
MEDIA_KINDS = """() => [...window.edgeRoom.localParticipant.tracks.values()]
  .filter((t) => t.kind !== 'data').map((t) => t.kind).sort()"""
PREVIEW_CAMERA = """() => {
  const stream = document.getElementById('preview').srcObject;
  return stream ? stream.getVideoTracks()[0].label : null;
}"""
#: The width and height the sharer's browser captures its screen at.
SCREEN_SETTINGS = """() => {
  const t = [...window.edgeRoom.localParticipant.tracks.values()].find((t) => t.name === 'screen');
  if (!t) return null;
  const { width, height } = t.mediaStreamTrack.getSettings();
  return width && height ? { width, height } : null;
}"""


async def _snap(page, name: str) -> None:
    await snap(page, name, directory=ARTIFACTS, inside=INSIDE, apart=APART, settle_ms=300)


def _video_from(entries, identity, width=None, height=None):
    return [
        e
        for e in entries or []
        if e["identity"] == identity
        and e["kind"] == "video"
        and e["framesDecoded"] > 0
        and (width is None or e["frameWidth"] == width)
        and (height is None or e["frameHeight"] == height)
    ]


async def test_prejoin_devices_share_chat_and_banner(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu, chromium(THREE_FAKE_DEVICES) as browser:
        ann = await open_page(browser, f"{sfu.base}/join/room1?token={sfu.token('ann')}", **CSP)
        # Before joining: the preview plays, the microphone moves the meter, devices listed.
        await ann.wait_for_function(
            "() => document.getElementById('preview').videoWidth > 0", timeout=30_000
        )
        await ann.wait_for_function(
            "() => document.getElementById('mic-level').value > 0", timeout=30_000
        )
        cameras = await ann.locator("#camera-select option").all_text_contents()
        assert {"fake_device_0", "fake_device_1", "fake_device_2"} <= set(cameras), cameras
        assert await ann.locator("#mic-select option").count() >= 3
        assert await ann.locator("#speaker-select").is_visible()  # Chromium has setSinkId
        # Another camera chosen before joining: the preview captures it (and back).
        assert await ann.evaluate(PREVIEW_CAMERA) == "fake_device_0"
        for label in ("fake_device_2", "fake_device_0"):
            await ann.select_option("#camera-select", label=label)
            await ann.wait_for_function(f"() => ({PREVIEW_CAMERA})() === '{label}'", timeout=20_000)
        await _snap(ann, "prejoin")
        await join_now(ann)
        ben = await open_page(browser, f"{sfu.base}/join/room1?token={sfu.token('ben')}", **CSP)
        await join_now(ben)
        await wait_for(
            lambda: ben.evaluate(INBOUND_JS), lambda e: _video_from(e, "ann"), 60, "ann seen"
        )

        # Another camera in the call: same publication, the new device's picture.
        await ann.click("#settings-toggle")
        before = await ann.evaluate(SENT_CAMERA)
        camera_sid = await ann.evaluate(CAMERA_SID)
        assert before == "fake_device_0"
        other = "fake_device_2"
        await ann.select_option("#camera-select", label=other)
        await ann.wait_for_function(f"() => ({SENT_CAMERA})() === '{other}'", timeout=20_000)
        # ... under the same publication (no unpublish, no new track for the others), and
        # ben keeps decoding it.
        assert await ann.evaluate(SENDERS) == [f"video:{other}:live"]
        assert await ann.evaluate(CAMERA_SID) == camera_sid
        first = _video_from(await ben.evaluate(INBOUND_JS), "ann")[0]["framesDecoded"]
        await wait_for(
            lambda: ben.evaluate(INBOUND_JS),
            lambda e: (
                _video_from(e, "ann") and _video_from(e, "ann")[0]["framesDecoded"] > first + 10
            ),
            60,
            "frames from the new camera",
        )
        # Another microphone, and another speaker for what ann hears (setSinkId).
        await ann.select_option("#mic-select", label="Fake Audio Input 2")
        await ann.wait_for_function(
            f"() => ({SENT_MIC})() === 'Fake Audio Input 2'", timeout=20_000
        )
        await ann.select_option("#speaker-select", label="Fake Audio Output 1")
        sink = await ann.locator("#speaker-select").input_value()
        await ann.wait_for_function(
            "(id) => [...document.querySelectorAll('#stage audio')].every((a) => a.sinkId === id)"
            " && document.querySelectorAll('#stage audio').length === 1",
            arg=sink,
        )
        await _snap(ann, "devices-in-call")
        await ann.click("#panel-close")

        # Screen share: a second video track named 'screen', large at ben's, at the size
        # ann's browser captures it at.
        await ann.click("#share")
        await ann.wait_for_function(SCREEN_SETTINGS, timeout=20_000)
        size = await ann.evaluate(SCREEN_SETTINGS)
        await wait_for(
            lambda: ben.evaluate(INBOUND_JS),
            lambda e: (
                len(_video_from(e, "ann")) == 2
                and _video_from(e, "ann", size["width"], size["height"])
            ),
            60,
            f"the shared screen at {size['width']}x{size['height']}",
        )
        featured = ben.locator("#featured .tile.screen .name")
        await featured.wait_for(timeout=10_000)
        assert await featured.text_content() == "ann (screen)"
        assert await ann.get_attribute("#share", "aria-pressed") == "true"
        await _snap(ben, "screen-share-received")
        await ann.click("#share")
        await ben.locator("#featured .tile").wait_for(state="detached", timeout=20_000)

        # ann turns her camera off: ben sees her initials and the badge instead of a picture.
        ann_at_ben = ben.locator(".tile", has=ben.locator(".name", has_text=re.compile("^ann$")))
        await ann.click("#camera")
        await ann_at_ben.locator(".avatar").wait_for(state="visible", timeout=20_000)
        assert await ann_at_ben.locator(".initials").text_content() == "A"
        assert await ann_at_ben.locator(".cam-off").is_visible()
        await ann.click("#camera")
        await ann_at_ben.locator(".avatar").wait_for(state="hidden", timeout=20_000)

        # Chat both ways, in order, names and times; hostile text stays text.
        hostile = '<img src=x onerror="window.pwned=1">'
        await ann.click("#chat-toggle")
        await ben.click("#chat-toggle")
        sent = [("ann", "one"), ("ben", "two"), ("ann", hostile), ("ben", "x" * 10_000)]
        sent += [("ann", "\u05e9\u05dc\u05d5\u05dd \U0001f389")]
        for who, text in sent:
            page = ann if who == "ann" else ben
            await page.fill("#chat-input", text)
            await page.press("#chat-input", "Enter")
            await asyncio.sleep(0.2)
        for page in (ann, ben):
            await page.wait_for_function(
                f"() => document.querySelectorAll('#chat-log li').length === {len(sent)}",
                timeout=20_000,
            )
            texts = await page.locator("#chat-log .text").all_text_contents()
            assert texts == [text for _, text in sent]
            whos = await page.locator("#chat-log .who").all_text_contents()
            me = "ann" if page is ann else "ben"
            assert whos == [w + (" (you)" if w == me else "") for w, _ in sent]
            assert all(await page.locator("#chat-log time").all_text_contents())
            assert await page.evaluate("() => window.pwned === undefined")
            assert await page.locator("#chat-log img").count() == 0
        await _snap(ben, "chat")
        await ben.click("#panel-close")

        # Signaling drops (reconnect attempts held back): the banner says so, then goes.
        await ann.evaluate(
            """() => {
                  const room = window.edgeRoom;
                  const open = room._open.bind(room);
                  room._open = async (join) => {
                    await new Promise((r) => setTimeout(r, 4000));
                    return open(join);
                  };
                  room._ws.close();
                }"""
        )
        banner = ann.locator("#banner")
        await banner.wait_for(state="visible", timeout=10_000)
        assert "Reconnecting" in (await banner.text_content() or "")
        # ... and ben sees it on ann's tile.
        reconnecting = ann_at_ben.locator(".state")
        await reconnecting.wait_for(state="visible", timeout=10_000)
        assert await reconnecting.text_content() == "reconnecting"
        await _snap(ann, "reconnecting")
        await ann.wait_for_function(CONNECTED, timeout=30_000)
        assert not await banner.is_visible()
        await reconnecting.wait_for(state="hidden", timeout=20_000)


async def test_denied_devices_join_audio_only_and_watch_only(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu, chromium(grant_media=False) as browser:
        url = f"{sfu.base}/join/room1?token="
        # Only the microphone allowed: the page explains and offers the microphone only.
        mic_only = await open_page(
            browser, url + sfu.token("mic"), permissions=["microphone"], **CSP
        )
        advice = mic_only.locator("#advice")
        await advice.wait_for(state="visible", timeout=30_000)
        assert "camera was not allowed" in (await advice.text_content() or "")
        assert await mic_only.locator("#join-audio-only").is_visible()
        await _snap(mic_only, "prejoin-camera-denied")
        # Allowed afterwards: "Try again" captures them and the advice goes.
        retry = await open_page(browser, url + sfu.token("retry"), **CSP)
        await retry.locator("#advice").wait_for(state="visible", timeout=30_000)
        await retry.context.grant_permissions(["camera", "microphone"])
        await retry.click("#retry-devices")
        await retry.locator("#advice").wait_for(state="hidden", timeout=30_000)
        await retry.wait_for_function(
            "() => document.getElementById('preview').videoWidth > 0", timeout=30_000
        )
        assert await retry.is_checked("#want-camera") and await retry.is_checked("#want-mic")
        await retry.context.close()
        await mic_only.click("#join-audio-only")
        await mic_only.wait_for_function(CONNECTED, timeout=60_000)
        assert await mic_only.evaluate(MEDIA_KINDS) == ["audio"]

        # Nothing allowed: watch and listen.
        watcher = await open_page(browser, url + sfu.token("watcher"), **CSP)
        await watcher.locator("#advice").wait_for(state="visible", timeout=30_000)
        assert not await watcher.locator("#join-audio-only").is_visible()
        await watcher.click("#join-watch-only")
        await watcher.wait_for_function(CONNECTED, timeout=60_000)
        assert await watcher.evaluate(MEDIA_KINDS) == []
        # Both are in the room; the watcher hears the other.
        await wait_for(
            lambda: watcher.evaluate(INBOUND_JS),
            lambda e: any(x["identity"] == "mic" and x["packetsReceived"] > 0 for x in e),
            30,
            "audio from the microphone-only guest",
        )
        room = sfu.context.rooms.live_room_by_name("room1")
        assert room is not None
        assert room.by_identity("mic") is not None and room.by_identity("watcher") is not None
        await _snap(watcher, "watch-only")


async def test_rejoin_after_leave_reload_and_closed_tab(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu:
        invite = create_invite(sfu.identity.auth_token, "room1")
        link = f"{sfu.base}/join/room1?invite={invite}"
        async with chromium() as browser:
            guest = await open_page(browser, link, **CSP)
            assert await guest.locator("#room-name").text_content() == "room1"
            await guest.fill("#identity", "Zo\u00eb")
            await join_now(guest)

            # Leave: tiles cleared, a Rejoin button; it gets the same name back.
            await guest.click("#leave")
            await guest.locator("#rejoin").wait_for(state="visible")
            assert await guest.locator("#stage .tile").count() == 0
            await _snap(guest, "left")
            await guest.click("#rejoin")
            await guest.wait_for_function(CONNECTED, timeout=60_000)
            who = await guest.evaluate("() => window.edgeRoom.localParticipant.identity")
            assert who == "Zo\u00eb"
            await _snap(guest, "rejoined")

            # A reload: the address has no invite any more, the tab still has it.
            await guest.reload()
            assert "invite=" not in guest.url
            await guest.locator("#identity").wait_for(state="visible")
            assert await guest.input_value("#identity") == "Zo\u00eb"
            await join_now(guest)

            # Another browser cannot take the name while Zoë is in the room.
            # (The room's name comes from the invite, whatever the address says.)
            other = await open_page(browser, f"{sfu.base}/join/elsewhere?invite={invite}", **CSP)
            assert await other.locator("#room-name").text_content() == "room1"
            await other.fill("#identity", "Zo\u00eb")
            await other.click("#join-button")
            error = other.locator("#invite-error")
            await other.wait_for_function(
                "() => document.getElementById('invite-error').textContent.length > 0"
            )
            assert "53200" in (await error.text_content() or "")
            # Nor a name longer than any identity: refused, shown as text.
            await other.evaluate(
                "() => document.getElementById('identity').removeAttribute('maxlength')"
            )
            await other.fill("#identity", "<b>" + "y" * 10_000)
            await other.click("#join-button")
            await other.wait_for_function(
                "() => document.getElementById('invite-error').textContent.includes('53200')"
                " && !document.getElementById('invite-error').textContent.includes('Zo')"
            )
            await _snap(other, "prejoin-name-refused")

            # A closed tab: the same link in a new tab of this browser, the same name again.
            context = guest.context
            await guest.close()
            room = sfu.context.rooms.live_room_by_name("room1")
            await wait_for(
                lambda: asyncio.sleep(0, room.by_identity("Zo\u00eb") if room else None),
                lambda p: p is None,
                20,
                "Zoë gone with the tab",
            )
            again = await context.new_page()
            await again.goto(link)
            await again.locator("#identity").wait_for(state="visible")
            assert await again.input_value("#identity") == "Zo\u00eb"
            await join_now(again)
            who = await again.evaluate("() => window.edgeRoom.localParticipant.identity")
            assert who == "Zo\u00eb"


async def test_join_with_camera_and_microphone_off_then_turn_them_on(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu, chromium() as browser:
        page = await open_page(browser, f"{sfu.base}/join/room1?token={sfu.token('ann')}", **CSP)
        await page.wait_for_function(
            "() => document.getElementById('preview').videoWidth > 0", timeout=30_000
        )
        await page.uncheck("#want-camera")
        await page.uncheck("#want-mic")
        assert await page.locator("#preview-off").is_visible()
        await join_now(page)
        # Nothing captured or sent: the tile shows initials, the buttons offer to start.
        assert await page.evaluate(MEDIA_KINDS) == []
        assert await page.locator(".tile.local .avatar").is_visible()
        assert await page.locator("#camera").text_content() == "Start camera"
        assert await page.locator("#mic").text_content() == "Unmute mic"
        await _snap(page, "camera-mic-off")
        await page.click("#camera")
        await page.wait_for_function(f"() => ({MEDIA_KINDS})().join() === 'video'")
        await page.locator(".tile.local .avatar").wait_for(state="hidden")
        assert await page.locator("#camera").text_content() == "Stop camera"
        await page.click("#mic")
        await page.wait_for_function(f"() => ({MEDIA_KINDS})().join() === 'audio,video'")
        assert await page.locator("#mic").text_content() == "Mute mic"
        model = sfu.context.rooms.live_room_by_name("room1")
        assert model is not None
        ann = model.by_identity("ann")
        assert ann is not None
        await wait_for(
            lambda: asyncio.sleep(0, sorted(t.kind for t in ann.published.values())),
            lambda kinds: kinds == ["audio", "data", "video"],
            20,
            "the camera and microphone published",
        )


async def test_no_devices_advice_and_watch_only(tmp_path):
    require_chromium()
    async with running_sfu(tmp_path) as sfu, chromium(fake_devices=False) as browser:
        page = await open_page(browser, f"{sfu.base}/join/room1?token={sfu.token('ann')}", **CSP)
        # No camera or microphone at all: the page says so and offers to watch and listen.
        advice = page.locator("#advice")
        await advice.wait_for(state="visible", timeout=30_000)
        words = await advice.text_content() or ""
        assert "camera was not found" in words, words
        assert "watch and listen" in words
        assert not await page.is_checked("#want-camera")
        await _snap(page, "prejoin-no-devices")
        await page.click("#join-watch-only")
        await page.wait_for_function(CONNECTED, timeout=60_000)
        assert await page.evaluate(MEDIA_KINDS) == []
