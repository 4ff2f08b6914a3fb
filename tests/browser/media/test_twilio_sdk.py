"""The official twilio-video.js SDK (npm, pinned in package.json), unmodified, in headless
Chromium against the unit's ``/twilio/signaling``: two SDK pages and the Python client in one
room decode each other's video, hear each other, exchange data-track messages, see mute and
a publication made after connect, and the pages contact nothing but the unit."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VideoGrant

from edge_sfu.client import connect
from tests.support.browser import chromium, require_chromium
from tests.support.media import PatternVideoTrack, ToneAudioTrack, receive_frames
from tests.support.sfu import running_sfu
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SDK = Path(__file__).resolve().parents[3] / "node_modules/twilio-video/dist/twilio-video.min.js"

PAGE = """<!doctype html><meta charset="utf-8"><title>sdk</title>
<script src="/sdk-test/twilio-video.min.js"></script>
<script>
window.log = [];
window.messages = [];
function record(room) {
  const note = (...args) => window.log.push(args.join(' '));
  room.on('participantConnected', (p) => note('participantConnected', p.identity));
  room.on('participantDisconnected', (p) => note('participantDisconnected', p.identity));
  room.on('trackSubscribed', (track, pub, p) => {
    note('trackSubscribed', p.identity, track.kind, pub.trackName);
    const got = (m) => window.messages.push(p.identity + ':' + m);
    if (track.kind === 'data') track.on('message', got);
    else document.body.appendChild(track.attach());
  });
  room.on('trackUnsubscribed', (t, pub, p) => note('trackUnsubscribed', p.identity, t.kind));
  room.on('trackDisabled', (pub, p) => note('trackDisabled', p.identity, pub.kind));
  room.on('trackEnabled', (pub, p) => note('trackEnabled', p.identity, pub.kind));
  room.on('reconnecting', (e) => note('reconnecting', e && e.code));
  room.on('reconnected', () => note('reconnected'));
  room.on('disconnected', (r, e) => note('disconnected', e ? e.code : 'none'));
}
async function join(token, wsServer) {
  const data = new Twilio.Video.LocalDataTrack({name: 'chat'});
  window.data = data;
  const room = await Twilio.Video.connect(token, {
    wsServer, insights: false, iceServers: [], audio: true, video: {width: 640, height: 480},
    tracks: undefined,
  });
  window.room = room;
  record(room);
  room.participants.forEach((p) => p.tracks.forEach((pub) => {
    if (pub.track) room.emit('trackSubscribed', pub.track, pub, p);  // before record()
  }));
  await room.localParticipant.publishTrack(data);
  return room.localParticipant.sid;
}
async function inbound() {
  const out = [];
  const pc = window.room._signaling._peerConnectionManager._peerConnections.values().next().value
    ._peerConnection;
  for (const r of pc.getReceivers()) {
    const s = [...(await r.getStats()).values()].find((x) => x.type === 'inbound-rtp');
    if (s) out.push({kind: s.kind, frames: s.framesDecoded || 0,
      width: s.frameWidth || 0, energy: s.totalAudioEnergy || 0, packets: s.packetsReceived});
  }
  return out;
}
</script><body></body>
"""


def sdk_token(sfu, identity: str, room: str = "room1", ttl: int = 600) -> str:
    """A token minted by twilio-python from the unit's key, as an app's backend does."""
    key = sfu.identity.signing_key
    token = AccessToken(sfu.identity.account_sid, key.sid, key.secret, identity=identity, ttl=ttl)
    token.add_grant(VideoGrant(room=room))
    return token.to_jwt()


@contextlib.asynccontextmanager
async def app_server() -> AsyncIterator[str]:
    """The app's own web server (on loopback): the test page and the SDK's dist file."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def sdk(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(SDK, headers={"Content-Type": "text/javascript"})

    app = web.Application()
    app.router.add_get("/sdk-test/page.html", page)
    app.router.add_get("/sdk-test/twilio-video.min.js", sdk)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def sdk_page(browser, origin: str, requests: list[str]):
    context = await browser.new_context()
    page = await context.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    await page.goto(f"{origin}/sdk-test/page.html")
    return page


async def join(page, sfu, identity: str) -> str:
    ws = f"ws://127.0.0.1:{sfu.port}/twilio/signaling"
    return await page.evaluate(f"join({json.dumps(sdk_token(sfu, identity))}, {json.dumps(ws)})")


def decoded(entries, kind: str) -> list[dict]:
    return [e for e in entries or [] if e["kind"] == kind and (e["frames"] or e["energy"])]


async def test_sdk_pages_and_python_client_share_a_room(tmp_path):
    require_chromium()
    if not SDK.exists():
        pytest.skip("twilio-video not installed (npm ci)")
    async with running_sfu(tmp_path) as sfu:
        py = await connect(sfu.ws_url, sfu.token("py"))
        requests: list[str] = []
        try:
            await py.publish_track(PatternVideoTrack(320, 240), "camera")
            await py.publish_track(ToneAudioTrack(), "microphone")
            async with chromium() as browser, app_server() as origin:
                alice = await sdk_page(browser, origin, requests)
                bob = await sdk_page(browser, origin, requests)
                assert (await join(alice, sfu, "alice")).startswith("PA")
                assert (await join(bob, sfu, "bob")).startswith("PA")

                # each page decodes two videos (the other page, py) and hears two sources
                for page in (alice, bob):
                    entries = await wait_for(
                        lambda page=page: page.evaluate("inbound()"),
                        lambda e: len(decoded(e, "video")) >= 2 and len(decoded(e, "audio")) >= 2,
                        90,
                    )
                    assert len(decoded(entries, "video")) >= 2, entries

                # the Python client decodes both pages' cameras
                async def sdk_videos():
                    return [
                        pub.track
                        for who in py.participants.values()
                        if who.identity in ("alice", "bob")
                        for pub in who.tracks.values()
                        if pub.track is not None and pub.kind == "video"
                    ]

                videos = await wait_for(sdk_videos, lambda v: len(v) == 2, 60)
                for track in videos:
                    frames = await receive_frames(track, 5, timeout=60)
                    assert frames[-1].width == 640

                # data track messages both ways
                await alice.evaluate("window.data.send('hello from alice')")
                await bob.evaluate("window.data.send('hello from bob')")
                await wait_for(
                    lambda: bob.evaluate("window.messages"),
                    lambda m: "alice:hello from alice" in m,
                    30,
                )
                await wait_for(
                    lambda: alice.evaluate("window.messages"),
                    lambda m: "bob:hello from bob" in m,
                    30,
                )

                # mute and unmute are seen by the other page
                await alice.evaluate(
                    "window.room.localParticipant.audioTracks.forEach((p) => p.track.disable())"
                )
                await wait_for(
                    lambda: bob.evaluate("window.log"),
                    lambda log: "trackDisabled alice audio" in log,
                    30,
                )
                await alice.evaluate(
                    "window.room.localParticipant.audioTracks.forEach((p) => p.track.enable())"
                )
                await wait_for(
                    lambda: bob.evaluate("window.log"),
                    lambda log: "trackEnabled alice audio" in log,
                    30,
                )

                # a publication after connect (the SDK recycles an m-line) reaches the others
                await bob.evaluate(
                    """async () => {
                      const t = await Twilio.Video.createLocalVideoTrack(
                        {width: 320, height: 240, name: 'screen'});
                      await window.room.localParticipant.publishTrack(t);
                    }"""
                )
                log = await wait_for(
                    lambda: alice.evaluate("window.log"),
                    lambda log: "trackSubscribed bob video screen" in log,
                    60,
                )
                assert "trackSubscribed bob video screen" in log
                await wait_for(
                    lambda: alice.evaluate("inbound()"),
                    lambda e: len(decoded(e, "video")) >= 3,
                    60,
                )

                # room.disconnect(): the others see the participant leave
                await bob.evaluate("window.room.disconnect()")
                await wait_for(
                    lambda: alice.evaluate("window.log"),
                    lambda log: "participantDisconnected bob" in log,
                    30,
                )
        finally:
            await py.disconnect()
        # the app's own page and SDK file, and the unit: nothing else
        origins = {f"{origin}/sdk-test/", f"ws://127.0.0.1:{sfu.port}/twilio/"}
        assert requests and all(any(u.startswith(o) for o in origins) for u in requests), requests
        assert any(u.endswith("/twilio/signaling") for u in requests)


async def test_rest_completed_ends_an_sdk_room_with_53118(tmp_path):
    require_chromium()
    if not SDK.exists():
        pytest.skip("twilio-video not installed (npm ci)")
    async with running_sfu(tmp_path) as sfu, chromium() as browser, app_server() as origin:
        alice = await sdk_page(browser, origin, [])
        await join(alice, sfu, "alice")
        room = sfu.context.rooms.live_room_by_name("room1")
        assert room is not None
        await sfu.context.rooms.complete_room(room.sid)
        log = await wait_for(
            lambda: alice.evaluate("window.log"),
            lambda log: any(line.startswith("disconnected") for line in log),
            30,
        )
        assert "disconnected 53118" in log
        await asyncio.sleep(0)
