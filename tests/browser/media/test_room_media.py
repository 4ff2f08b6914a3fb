"""Real headless Chromium: two pages and an in-process H.264 producer in one room.

Every participant decodes every other participant's video at the size it was sent, audio
arrives with energy, mute and unmute propagate, and a page that dies is gone for the others
within the documented reconnect window (30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time

import pytest

from edge_sfu.signaling import SignalingSettings
from tests.support.browser import (
    H264,
    INBOUND_JS,
    OUTBOUND_JS,
    H264TestSource,
    LocalDecoder,
    chromium,
    join_now,
    require_chromium,
)
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(400)]

KIOSK_SIZE = (320, 240)
ANN = re.compile("^ann$")
FAKE_CAMERA = (640, 480)  # Chromium's fake capture device


async def _join(browser, sfu, identity: str, logs: list[str]):
    # The page's CSP forbids eval; Playwright's probes need it (the page's own code does not).
    context = await browser.new_context(bypass_csp=True)
    page = await context.new_page()
    page.on("console", lambda m: logs.append(f"{identity}: {m.type}: {m.text}"))
    await page.goto(f"{sfu.base}/join/room1?token={sfu.token(identity)}")
    await join_now(page)
    return context, page


def _by(entries, identity, kind):
    return [e for e in entries or [] if e["identity"] == identity and e["kind"] == kind]


def _complete(entries, other):
    return bool(
        _by(entries, other, "video")
        and _by(entries, other, "audio")
        and _by(entries, "kiosk", "video")
        and all(e["framesDecoded"] > 0 for e in entries if e["kind"] == "video")
        and all(e["totalAudioEnergy"] > 0 for e in entries if e["kind"] == "audio")
    )


async def _check_media(page, other: str) -> None:
    entries = await wait_for(lambda: page.evaluate(INBOUND_JS), lambda e: _complete(e, other), 90)
    assert _complete(entries, other), entries

    # A browser publishes simulcast and its sender enables the full layer only once its own
    # bandwidth estimate has ramped up (it starts low), so the full size comes within seconds
    # rather than with the first frame.
    def full_size(entries) -> bool:
        return all(
            (e["frameWidth"], e["frameHeight"]) == size
            for identity, size in ((other, FAKE_CAMERA), ("kiosk", KIOSK_SIZE))
            for e in _by(entries, identity, "video")
        )

    entries = await wait_for(lambda: page.evaluate(INBOUND_JS), full_size, 60)

    # ... and frames keep coming at that size (a layer the sender just enabled starts at a
    # low frame rate while its encoder ramps up: a few seconds are allowed)
    def flowing(later) -> bool:
        for identity, size in ((other, FAKE_CAMERA), ("kiosk", KIOSK_SIZE)):
            (before,) = _by(entries, identity, "video")
            (after,) = _by(later, identity, "video")
            if after["framesDecoded"] <= before["framesDecoded"] + 5:
                return False
            if (after["frameWidth"], after["frameHeight"]) != size:
                return False
        audio = _by(later, other, "audio")
        return bool(audio) and audio[0]["totalAudioEnergy"] > 0 and audio[0]["packetsReceived"] > 50

    later = await wait_for(lambda: page.evaluate(INBOUND_JS), flowing, 15)
    assert flowing(later), (entries, later)
    (audio,) = _by(later, other, "audio")
    assert audio["totalAudioEnergy"] > 0 and audio["packetsReceived"] > 50, audio


async def _local_decodes(sfu, local_sid: str) -> dict[str, LocalDecoder]:
    """The kiosk's side: decode each browser's video from an in-process consumer."""
    router = next(iter(sfu.signaling.routers.values()))
    decoders = {}
    for producer in list(router.producers.values()):
        if producer.participant_id != local_sid and producer.kind == "video":
            decoder = LocalDecoder(producer.codec.name.lower())
            router.consume_local(producer, decoder)
            decoders[producer.participant_id] = decoder
    return decoders


async def _mute_roundtrip(sfu, pages) -> None:
    ann, ben = pages["ann"], pages["ben"]
    for button, kind in (("#mic", "audio"), ("#camera", "video")):
        await ann.click(button)
        entries = await wait_for(
            lambda: ben.evaluate(INBOUND_JS),
            lambda e, k=kind: _by(e, "ann", k) and not _by(e, "ann", k)[0]["enabled"],
            20,
        )
        assert not _by(entries, "ann", kind)[0]["enabled"]
        badge = ".mic-off" if kind == "audio" else ".cam-off"
        ann_tile = ben.locator("figure.tile", has=ben.locator(".name", has_text=ANN))
        assert await ann_tile.locator(badge).is_visible()
        room = sfu.context.rooms.live_room_by_name("room1")
        ann_model = room.by_identity("ann")
        assert [t.enabled for t in ann_model.published.values() if t.kind == kind] == [False]
        await ann.click(button)
        entries = await wait_for(
            lambda: ben.evaluate(INBOUND_JS),
            lambda e, k=kind: _by(e, "ann", k) and _by(e, "ann", k)[0]["enabled"],
            20,
        )
        assert _by(entries, "ann", kind)[0]["enabled"]
        assert not await ann_tile.locator(badge).is_visible()


async def _crash(context, page) -> None:
    cdp = await context.new_cdp_session(page)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(cdp.send("Page.crash"), 5)


async def test_two_pages_and_a_local_producer(tmp_path):
    require_chromium()
    # A short reconnect window, so the crash below is noticed in seconds rather than half a
    # minute (tests/integration/signaling covers the window itself);
    # heartbeats short enough that a dead socket is noticed within it.
    settings = SignalingSettings(
        heartbeat_interval=1.0, heartbeat_timeout=4.0, reconnect_window=5.0
    )
    async with running_sfu(tmp_path, settings) as sfu:
        local = await sfu.signaling.connect_local("room1", "kiosk")
        producer = await local.publish("camera", H264)
        source = H264TestSource(producer, *KIOSK_SIZE)
        logs: list[str] = []
        try:
            async with chromium() as browser:
                contexts, pages = {}, {}
                for name in ("ann", "ben"):
                    contexts[name], pages[name] = await _join(browser, sfu, name, logs)
                await _check_media(pages["ann"], "ben")
                await _check_media(pages["ben"], "ann")
                sent = await pages["ann"].evaluate(OUTBOUND_JS)
                assert [(s["frameWidth"], s["frameHeight"]) for s in sent] == [FAKE_CAMERA]

                decoders = await _local_decodes(sfu, local.sid)
                assert len(decoders) == 2
                await wait_for(
                    _async(lambda: decoders),
                    lambda d: all(len(x.sizes) > 10 for x in d.values()),
                    30,
                )
                for decoder in decoders.values():
                    assert len(decoder.sizes) > 10 and set(decoder.sizes) == {FAKE_CAMERA}

                await _mute_roundtrip(sfu, pages)

                # ben's tab dies: no goodbye, no unload handlers.
                crashed = time.monotonic()
                await _crash(contexts["ben"], pages["ben"])
                gone = await wait_for(
                    lambda: pages["ann"].evaluate(
                        "() => [...window.edgeRoom.participants.values()].map(p => p.identity)"
                    ),
                    lambda ids: "ben" not in ids,
                    settings.reconnect_window + 15,
                )
                elapsed = time.monotonic() - crashed
                assert "ben" not in gone and "kiosk" in gone
                assert elapsed <= settings.reconnect_window + 3, elapsed
                room = sfu.context.rooms.live_room_by_name("room1")
                assert room.by_identity("ben") is None
                # ann still receives the kiosk after ben left.
                await _check_kiosk_only(pages["ann"])
        except AssertionError:
            print("\n".join(logs[-50:]))
            print(_diagnose(sfu))
            raise
        finally:
            await source.close()
            await local.disconnect()


async def _check_kiosk_only(page) -> None:
    first = _by(await page.evaluate(INBOUND_JS), "kiosk", "video")[0]
    await asyncio.sleep(1.5)
    second = _by(await page.evaluate(INBOUND_JS), "kiosk", "video")[0]
    assert second["framesDecoded"] > first["framesDecoded"]


def _diagnose(sfu) -> str:
    """The forwarding engine's counters, to tell a publisher problem from a subscriber one."""
    lines = []
    for router in sfu.signaling.routers.values():
        for producer in router.producers.values():
            lines.append(
                f"producer {producer.id} of {producer.participant_id}: "
                f"{producer.codec.mime_type} packets={producer.packets_received}"
            )
        for transport in router.transports.values():
            allocation = transport.allocation
            lines.append(
                f"transport of {transport.participant_id}: {transport.connection_state} "
                f"estimate={transport.estimate} congested={allocation.congested} "
                f"available={allocation.last_available_bps}"
            )
            for row in allocation.status():
                lines.append(f"  allocation {row}")
            for mid, track in transport.incoming.items():
                lines.append(
                    f"  incoming {mid}: started={track.started} "
                    f"dropped={track.packets_dropped} producer={track.producer}"
                )
            for consumer in transport.consumers.values():
                lines.append(
                    f"  consumer of {consumer.producer.id}: ready={consumer.ready} "
                    f"sent={consumer.packets_sent} layer={consumer.current_layer}"
                )
    return "\n".join(lines)


def _async(fn):
    async def call():
        return fn()

    return call
